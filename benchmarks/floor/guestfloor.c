/*
 * The floor of pure postcopy with one guest thread reading random pages on the destination, in C: what the kernel
 * work of that case costs on this machine, to set the Java engine's "one guest thread" figures against
 * (docs/performance.md, "The floor with a guest"). Not our product; a measuring stick, like floor.c. Two processes
 * (source, destination) on loopback TCP; the source's sender streams every page not yet requested (8-byte header
 * + 4 KiB) on the main connection; the destination's receiver places runs of up to 64 KiB with UFFDIO_COPY; its
 * guest thread reads one byte of a random page flat out; its fault thread polls the userfaultfd and writes each
 * faulting page's offset on the return path; the source's return-path thread reads it and writes the page on a
 * second connection (the preempt channel), which the destination's preempt thread places. A page is sent once
 * unless requested while in flight (a shared bitmap); EEXIST from either placement is skipped.
 *
 * No object, lock or bookkeeping beyond one shared byte per page: the request path is poll + read + write on the
 * destination's fault thread, read + write on the source's return-path thread, read + UFFDIO_COPY on the
 * destination's preempt thread, as ours. Page contents are not checked (floor.c's are not either).
 *
 *   guestfloor SIZE_MIB [cfs|fifo] [noguest|GUESTS]
 *       fifo: the three request threads SCHED_FIFO 1 (ours by default, within a budget); cfs (default): nice 0
 *       noguest: the stream alone through the same code (should match floor.c); GUESTS: that many guest threads
 *       (default 1), each with a random sequence of its own
 *
 * Prints wall GB/s of page payload (from the source's start until every page is placed), the faults, the guest's
 * reads, and each thread's CPU seconds (CLOCK_THREAD_CPUTIME_ID).
 */
#include "floor.h"
#include <poll.h>
#include <sched.h>
#include <sys/wait.h>

static long size, npages;
static char *src, *dst;
static volatile uint8_t *sent;      /* shared between the processes: 1 once a page was claimed by either channel */
static int uffd, fifo;
static int main_s, main_d, rp_s, rp_d, pre_s, pre_d;   /* _s source's end, _d destination's */
static volatile long placedPages;
static volatile int done;
static long guestReads, faults, guestCpuNanos;   /* reads: summed by the guest threads at their end */
static double cpu[5];      /* sender, return path (the source's), receiver, preempt, fault */

static void rt(void) { if (fifo) { struct sched_param p = {.sched_priority = 1}; if (sched_setscheduler(0, SCHED_FIFO, &p)) die("fifo"); } }
static void pair(int *a, int *b) {
    int l = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (void *)&s, sizeof s) || listen(l, 1)) die("listen");
    socklen_t n = sizeof s; getsockname(l, (void *)&s, &n);
    *a = socket(AF_INET, SOCK_STREAM, 0); if (connect(*a, (void *)&s, sizeof s)) die("connect"); *b = accept(l, 0, 0); close(l);
    int y = 1; setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &y, 4); setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &y, 4);
}
static void writeAll(int fd, char *b, long n) { while (n > 0) { long k = write(fd, b, n); if (k < 0) die("write"); b += k; n -= k; } }
static int claim(long pg) { return __atomic_exchange_n(&sent[pg], 1, __ATOMIC_ACQ_REL) == 0; }

/* ---- the source ---- */
static void *sender(void *a) {
    (void)a; char *buf = malloc(SEND_BUF); long fill = 0;
    for (long pg = 0; pg < npages; pg++) {
        if (!claim(pg)) continue;
        if (fill + REC > SEND_BUF) { writeAll(main_s, buf, fill); fill = 0; }
        uint64_t h = pg * PAGE | FLAG_PAGE; memcpy(buf + fill, &h, 8); memcpy(buf + fill + 8, src + pg * PAGE, PAGE); fill += REC;
    }
    writeAll(main_s, buf, fill); shutdown(main_s, SHUT_WR);
    cpu[0] = now(CLOCK_THREAD_CPUTIME_ID); return 0;
}
static void *returnPath(void *a) {
    (void)a; rt(); char rec[REC]; uint64_t req[64];
    for (;;) {
        long n = read(rp_s, req, sizeof req);
        if (n <= 0) break;
        for (long i = 0; i < n / 8; i++) {      /* requests are 8 bytes: a short read of one is not expected on loopback */
            long pg = req[i] / PAGE; claim(pg);  /* sent again even if in flight: the destination keeps the first */
            uint64_t h = pg * PAGE | FLAG_PAGE; memcpy(rec, &h, 8); memcpy(rec + 8, src + pg * PAGE, PAGE); writeAll(pre_s, rec, REC);
        }
    }
    shutdown(pre_s, SHUT_WR);
    cpu[1] = now(CLOCK_THREAD_CPUTIME_ID); return 0;
}

/* ---- the destination ---- */
static void place(long off, char *from, long len) {
    while (len > 0) {
        struct uffdio_copy c = {.dst = (unsigned long)(dst + off), .src = (unsigned long)from, .len = len};
        if (ioctl(uffd, UFFDIO_COPY, &c) == 0) { __atomic_add_fetch(&placedPages, len / PAGE, __ATOMIC_RELAXED); return; }
        if (errno != EEXIST && errno != EAGAIN) die("UFFDIO_COPY");
        long done_ = c.copy > 0 ? c.copy : 0;
        __atomic_add_fetch(&placedPages, done_ / PAGE, __ATOMIC_RELAXED);
        if (errno == EEXIST) done_ += PAGE;         /* that page came on the other channel */
        off += done_; from += done_; len -= done_;
    }
}
static void receiveLoop(int fd, long stageMax, int idx) {
    char *buf = malloc(RECV_BUF), *stage = aligned_alloc(PAGE, STAGE); long have = 0, runStart = -1, runLen = 0;
    for (;;) {
        long n = read(fd, buf + have, RECV_BUF - have);
        if (n < 0) die("read");
        if (n == 0) break;
        have += n; long p = 0;
        while (have - p >= REC) {
            uint64_t h; memcpy(&h, buf + p, 8); long off = (long)(h & ~(PAGE - 1));
            if (stageMax == PAGE) place(off, buf + p + 8, PAGE);   /* a requested page: at once */
            else {
                if (runLen > 0 && (off != runStart + runLen || runLen == stageMax)) { place(runStart, stage, runLen); runLen = 0; }
                if (runLen == 0) runStart = off;
                memcpy(stage + runLen, buf + p + 8, PAGE); runLen += PAGE;
            }
            p += REC;
        }
        if (runLen > 0) { place(runStart, stage, runLen); runLen = 0; }   /* before blocking: a guest may wait */
        memmove(buf, buf + p, have - p); have -= p;
    }
    cpu[idx] = now(CLOCK_THREAD_CPUTIME_ID);
}
static void *receiver(void *a) { (void)a; receiveLoop(main_d, STAGE, 2); return 0; }
static void *preempt(void *a) { (void)a; rt(); receiveLoop(pre_d, PAGE, 3); return 0; }
static void *faultThread(void *a) {
    (void)a; rt(); struct uffd_msg m[16]; uint64_t req[16];
    while (!done) {
        struct pollfd p = {uffd, POLLIN}; if (poll(&p, 1, 10) <= 0) continue;
        long n = read(uffd, m, sizeof m); if (n <= 0) continue;
        int k = 0;
        for (long i = 0; i < n / (long)sizeof m[0]; i++) if (m[i].event == UFFD_EVENT_PAGEFAULT) req[k++] = (m[i].arg.pagefault.address - (unsigned long)dst) & ~(PAGE - 1);
        faults += k; writeAll(rp_d, (char *)req, k * 8);
    }
    cpu[4] = now(CLOCK_THREAD_CPUTIME_ID); return 0;
}
static void *guest(void *a) {
    uint64_t x = 88172645463325252ULL + (uint64_t)(long)a * 0x9E3779B97F4A7C15ULL; long sum = 0, reads = 0;
    while (!done) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; sum += dst[(x % npages) * PAGE]; reads++; }
    __atomic_add_fetch(&guestReads, reads, __ATOMIC_RELAXED);
    __atomic_add_fetch(&guestCpuNanos, (long)(now(CLOCK_THREAD_CPUTIME_ID) * 1e9), __ATOMIC_RELAXED);   /* all guests' */
    return (void *)sum;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: guestfloor SIZE_MIB [cfs|fifo] [noguest|GUESTS]\n"); return 2; }
    size = atol(argv[1]) << 20; npages = size / PAGE; fifo = argc > 2 && strcmp(argv[2], "fifo") == 0;
    dst = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sent = mmap(NULL, npages, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (dst == MAP_FAILED || sent == MAP_FAILED) die("mmap");
    pair(&main_s, &main_d); pair(&rp_d, &rp_s); pair(&pre_s, &pre_d);
    int sb = SEND_BUF; setsockopt(main_s, SOL_SOCKET, SO_SNDBUF, &sb, 4); int rb = RECV_BUF; setsockopt(main_d, SOL_SOCKET, SO_RCVBUF, &rb, 4);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API}; if (ioctl(uffd, UFFDIO_API, &api)) die("UFFDIO_API");
    struct uffdio_register r = {.range = {.start = (unsigned long)dst, .len = size}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(uffd, UFFDIO_REGISTER, &r)) die("UFFDIO_REGISTER");
    int go[2], ready[2], result[2]; if (pipe(go) || pipe(ready) || pipe(result)) die("pipe");
    pid_t child = fork();
    if (child == 0) {                       /* the source: its memory its own, filled after the fork */
        src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (src == MAP_FAILED) die("mmap");
        uint64_t x = 88172645463325252ULL;
        for (long i = 0; i < size; i += 8) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; memcpy(src + i, &x, 8); }
        char c; if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) die("go");
        pthread_t s, p; pthread_create(&p, 0, returnPath, 0); pthread_create(&s, 0, sender, 0);
        pthread_join(s, 0); pthread_join(p, 0);
        if (write(result[1], cpu, 2 * sizeof cpu[0]) != 2 * sizeof cpu[0]) die("result");
        _exit(0);
    }
    pthread_t rv, pr, ft, gt[16];
    pthread_create(&ft, 0, faultThread, 0); pthread_create(&pr, 0, preempt, 0); pthread_create(&rv, 0, receiver, 0);
    char c; if (read(ready[0], &c, 1) != 1) die("ready");
    double t0 = now(CLOCK_MONOTONIC);
    if (write(go[1], "g", 1) != 1) die("go");
    int guests = argc > 3 ? (strcmp(argv[3], "noguest") == 0 ? 0 : atoi(argv[3])) : 1;
    if (guests < 0 || guests > 16) { fprintf(stderr, "guests: 0..16\n"); return 2; }
    for (int i = 0; i < guests; i++) pthread_create(&gt[i], 0, guest, (void *)(long)i);
    pthread_join(rv, 0);
    while (__atomic_load_n(&placedPages, __ATOMIC_RELAXED) < npages) usleep(100);
    double wall = now(CLOCK_MONOTONIC) - t0;
    done = 1; shutdown(rp_d, SHUT_WR);
    for (int i = 0; i < guests; i++) pthread_join(gt[i], 0);
    pthread_join(ft, 0); pthread_join(pr, 0); waitpid(child, 0, 0);
    double srcCpu[2]; if (read(result[0], srcCpu, sizeof srcCpu) != sizeof srcCpu) die("source result");
    printf("guestfloor %s %ld MiB: %.2f GB/s, %ld faults, %ld guest reads; CPU-s: sender %.3f, return path %.3f,"
           " receiver %.3f, preempt %.3f, fault %.3f, guest %.3f\n", fifo ? "fifo" : "cfs", size >> 20,
           size / wall / 1e9, faults, guestReads, srcCpu[0], srcCpu[1], cpu[2], cpu[3], cpu[4], guestCpuNanos / 1e9);
    return 0;
}
