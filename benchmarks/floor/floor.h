/*
 * What floor.c and guestfloor.c share: our wire shape (8-byte record header, page offset | flags, then 4 KiB of
 * page), the buffer sizes that mirror our defaults, and two helpers. One place, so the two sticks measure the same
 * shape (a staging size changed in one only would compare unlike things).
 */
#ifndef POSTCOPY_FLOOR_H
#define POSTCOPY_FLOOR_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096L
#define REC (8 + PAGE)
#define FLAG_PAGE 0x08L
#define SEND_BUF (128 * 1024)       /* the sender's batch and socket buffer */
#define RECV_BUF (1024 * 1024)      /* what the receiver reads at once */
#define STAGE (64 * 1024)           /* the destination's stagingBatchSize default */

static void die(const char *what) { perror(what); exit(1); }

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

#endif
