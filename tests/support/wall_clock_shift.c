/* A wall-clock shifter for one process tree (LD_PRELOAD), for the clock-step tests.
 *
 * Adds an offset to CLOCK_REALTIME as the process reads it (clock_gettime, gettimeofday,
 * time), and leaves CLOCK_MONOTONIC and CLOCK_BOOTTIME alone: what a process sees when
 * the kernel's wall clock is stepped (NTP's first sync on a Pi without a real-time clock).
 * The offset, in nanoseconds, is the first 8 bytes (native endian) of the file named by
 * WALL_CLOCK_SHIFT_FILE, mapped shared, so the test steps the clock while the process runs.
 *
 * Why not libfaketime: Debian 12's 0.9.10 turns Python 3.11's time.sleep
 * (clock_nanosleep on CLOCK_MONOTONIC, TIMER_ABSTIME) into EINVAL when it is told not to
 * fake the monotonic clock (libfaketime issue 426).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int64_t *shift_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void shift_init(void) {
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("WALL_CLOCK_SHIFT_FILE");
    if (path == NULL) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED) shift_ns = (volatile int64_t *)map;
}

static int64_t shift(void) { return shift_ns == NULL ? 0 : *shift_ns; }

static void add(struct timespec *tp, int64_t ns) {
    int64_t total = (int64_t)tp->tv_nsec + ns % 1000000000LL;
    tp->tv_sec += ns / 1000000000LL + total / 1000000000LL;
    tp->tv_nsec = total % 1000000000LL;
    if (tp->tv_nsec < 0) {
        tp->tv_nsec += 1000000000LL;
        tp->tv_sec -= 1;
    }
}

int clock_gettime(clockid_t clock, struct timespec *tp) {
    int result = real_clock_gettime(clock, tp);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        add(tp, shift());
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec now;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    tv->tv_sec = now.tv_sec;
    tv->tv_usec = now.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out != NULL) *out = now.tv_sec;
    return now.tv_sec;
}
