/*
 * The floor of a postcopy page stream on this machine, in C: what the kernel work alone costs, to set the
 * Java engine's figures against (docs/performance.md, "The floor"). Not our product; a measuring stick.
 *
 * One process, two threads, loopback TCP, our wire shape: 8-byte record header (page offset | flags) + 4096
 * bytes of page, written in 128 KiB batches by a sender that copies each page into its buffer (as the
 * encoder does); a receiver that reads up to 1 MiB at a time, gathers contiguous pages into a 64 KiB staging
 * buffer and places each run with one UFFDIO_COPY into a userfaultfd-registered anonymous region.
 *
 *   floor SIZE_MIB MODE      MODE: uffd (the whole path) | read (receive only, no placement) |
 *                                  place (UFFDIO_COPY from memory, no TCP)
 *
 * Prints wall GB/s of page payload and CPU seconds per GiB of each thread (CLOCK_THREAD_CPUTIME_ID).
 */
#include "floor.h"

static long size;
static char *src, *dst;
static int uffd, lfd;
static double sender_cpu, receiver_cpu;

static void place(long off, char *from, long len) {
    struct uffdio_copy c = {.dst = (unsigned long)(dst + off), .src = (unsigned long)from, .len = len, .mode = 0};
    if (ioctl(uffd, UFFDIO_COPY, &c) < 0) die("UFFDIO_COPY");
}

static void *sender(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int one = 1, sb = SEND_BUF;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char *buf = malloc(SEND_BUF);
    long fill = 0;
    for (long off = 0; off < size; off += PAGE) {
        if (fill + REC > SEND_BUF) {
            for (long w = 0; w < fill;) {
                long n = write(fd, buf + w, fill - w);
                if (n < 0) die("write");
                w += n;
            }
            fill = 0;
        }
        uint64_t h = (uint64_t)off | FLAG_PAGE;
        memcpy(buf + fill, &h, 8);
        memcpy(buf + fill + 8, src + off, PAGE);
        fill += REC;
    }
    for (long w = 0; w < fill;) {
        long n = write(fd, buf + w, fill - w);
        if (n < 0) die("write");
        w += n;
    }
    sender_cpu = now(CLOCK_THREAD_CPUTIME_ID);
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

static void receive(int placing) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    int rb = 128 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    char *buf = malloc(RECV_BUF), *stage = aligned_alloc(PAGE, STAGE);
    long have = 0, runStart = -1, runLen = 0, pages = 0;
    for (;;) {
        long n = read(fd, buf + have, RECV_BUF - have);
        if (n < 0) die("read");
        if (n == 0) break;
        have += n;
        long p = 0;
        while (have - p >= REC) {
            uint64_t h;
            memcpy(&h, buf + p, 8);
            long off = (long)(h & ~(PAGE - 1));
            if (placing) {
                if (runLen > 0 && (off != runStart + runLen || runLen == STAGE)) {
                    place(runStart, stage, runLen);
                    runLen = 0;
                }
                if (runLen == 0) runStart = off;
                memcpy(stage + runLen, buf + p + 8, PAGE);
                runLen += PAGE;
            }
            pages++;
            p += REC;
        }
        memmove(buf, buf + p, have - p);
        have -= p;
    }
    if (placing && runLen > 0) place(runStart, stage, runLen);
    if (pages != size / PAGE) { fprintf(stderr, "got %ld pages of %ld\n", pages, size / PAGE); exit(1); }
    receiver_cpu = now(CLOCK_THREAD_CPUTIME_ID);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: floor SIZE_MIB uffd|read|place\n"); return 2; }
    size = atol(argv[1]) << 20;
    const char *mode = argv[2];
    src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED || dst == MAP_FAILED) die("mmap");
    uint64_t x = 88172645463325252ULL;                 /* xorshift: no zero pages */
    for (long i = 0; i < size; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(src + i, &x, 8);
    }
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0) die("userfaultfd");
    struct uffdio_api api = {.api = UFFD_API};
    if (ioctl(uffd, UFFDIO_API, &api) < 0) die("UFFDIO_API");
    struct uffdio_register r = {.range = {.start = (unsigned long)dst, .len = size}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(uffd, UFFDIO_REGISTER, &r) < 0) die("UFFDIO_REGISTER");

    double t0 = now(CLOCK_MONOTONIC);
    if (strcmp(mode, "place") == 0) {
        char *stage = aligned_alloc(PAGE, STAGE);
        for (long off = 0; off < size; off += STAGE) {
            for (long k = 0; k < STAGE; k += PAGE) memcpy(stage + k, src + off + k, PAGE);  /* the staging copy */
            place(off, stage, STAGE);
        }
        receiver_cpu = now(CLOCK_THREAD_CPUTIME_ID);
    } else {
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0) die("listen");
        double c0 = now(CLOCK_THREAD_CPUTIME_ID);
        pthread_t t;
        pthread_create(&t, NULL, sender, NULL);
        receive(strcmp(mode, "uffd") == 0);
        pthread_join(t, NULL);
        receiver_cpu -= c0;
    }
    double wall = now(CLOCK_MONOTONIC) - t0, gib = size / (double)(1L << 30);
    printf("floor %s %ld MiB: %.2f GB/s, sender %.3f CPU-s/GiB, receiver %.3f CPU-s/GiB\n", mode, size >> 20,
           size / wall / 1e9, sender_cpu / gib, receiver_cpu / gib);
    return 0;
}
