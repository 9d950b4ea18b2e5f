/*
 * Guest workload for the QEMU postcopy itests (built by the harness: gcc -static -O2).
 * Fills MIB MiB of anonymous memory with a known pattern (page i, word j = i * 0x9E3779B97F4A7C15 ^ j,
 * generation 0), prints "DIRTIER READY pages=N" on the console, then rewrites random pages forever
 * (xorshift64, a new generation each time: 8 words spread over the page), sleeping 1 ms every BATCH
 * pages, so that precopy always leaves dirty pages behind and QEMU has to send discards.
 * Usage: dirtier [MIB] [BATCH]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

int main(int argc, char **argv) {
    unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 160;
    unsigned long batch = argc > 2 ? strtoul(argv[2], NULL, 0) : 64;
    unsigned long pages = mib * 1024 * 1024 / PAGE;
    uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
        perror("dirtier: mmap");
        return 1;
    }
    for (unsigned long i = 0; i < pages; i++) {
        uint64_t *p = mem + i * (PAGE / 8);
        uint64_t base = i * 0x9E3779B97F4A7C15ULL;
        for (unsigned long j = 0; j < PAGE / 8; j++) {
            p[j] = base ^ j;
        }
    }
    printf("DIRTIER READY pages=%lu\n", pages);
    fflush(stdout);
    uint64_t x = 0x2545F4914F6CDD1DULL, gen = 0, n = 0;
    struct timespec pause = {0, 1000000};
    for (;;) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned long i = x % pages;
        uint64_t *p = mem + i * (PAGE / 8);
        gen++;
        for (unsigned long k = 0; k < 8; k++) {
            p[k * (PAGE / 64)] = (i * 0x9E3779B97F4A7C15ULL) ^ (gen << 20) ^ k;
        }
        if (++n % batch == 0) {
            nanosleep(&pause, NULL);
        }
        if (n % (1UL << 22) == 0) {
            printf("DIRTIER rewrites=%lu\n", (unsigned long)n);
            fflush(stdout);
        }
    }
}
