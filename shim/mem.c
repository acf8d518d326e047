/* Host memory: DRAM random-access latency (pointer chasing) and one-thread memcpy bandwidth. */
#define _GNU_SOURCE
#include "shim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LINE 64 /* one slot per cache line, so every load is a different line */

void *volatile shim_sink; /* keeps the chase from being optimised away */

/* A random cyclic permutation of the buffer's cache lines (Sattolo's algorithm gives a
 * single cycle through all of them); each line holds the address of the next. Every load
 * depends on the one before, so the time per load is the latency of a random access:
 * cache miss, and for buffers far larger than the TLB's reach, a page walk too. */
int run_dram(jw_t *w, const shim_opts *o) {
    size_t n = o->dram_bytes / LINE;
    char *buf = NULL;
    uint32_t *perm = malloc(n * sizeof *perm);
    if (n < 2 || n > UINT32_MAX || posix_memalign((void **)&buf, 4096, n * LINE) || !perm) {
        free(perm);
        jw_begin(w, "dram");
        jw_str(w, "status", "error");
        jw_str(w, "reason", "cannot allocate the buffer");
        jw_end(w);
        return -1;
    }
    uint64_t rng = o->seed;
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) { /* Sattolo: j < i, never i itself */
        size_t j = (size_t)(rng_next(&rng) % i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) *(void **)(buf + i * LINE) = buf + (size_t)perm[i] * LINE;
    free(perm);

    void **p = (void **)buf;
    for (size_t i = 0; i < n; i++) p = (void **)*p; /* warm: one lap touches every line */
    double *ns = calloc((size_t)o->dram_repeats, sizeof(double));
    long steps = o->dram_accesses / 8 * 8;
    if (steps < 8) steps = 8;
    for (int r = 0; r < o->dram_repeats; r++) {
        double t0 = now_s();
        for (long k = 0; k < steps; k += 8) {
            p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
            p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
        }
        ns[r] = (now_s() - t0) / (double)steps * 1e9;
    }
    shim_sink = p;
    qsort(ns, (size_t)o->dram_repeats, sizeof(double), cmp_double);
    jw_begin(w, "dram");
    jw_str(w, "status", "ok");
    jw_str(w, "method", "pointer chase over a random cyclic permutation of 64-byte lines");
    jw_int(w, "buffer_bytes", (long long)(n * LINE));
    jw_int(w, "accesses", steps);
    jw_int(w, "repeats", o->dram_repeats);
    jw_num(w, "latency_s", percentile(ns, o->dram_repeats, 0.5) * 1e-9);
    jw_num(w, "latency_min_s", ns[0] * 1e-9);
    jw_num(w, "latency_max_s", ns[o->dram_repeats - 1] * 1e-9);
    jw_end(w);
    free(ns);
    free(buf);
    return 0;
}

int run_memcpy(jw_t *w, const shim_opts *o) {
    size_t n = o->memcpy_bytes;
    char *src = NULL, *dst = NULL;
    if (posix_memalign((void **)&src, 4096, n) || posix_memalign((void **)&dst, 4096, n)) {
        free(src);
        jw_begin(w, "memcpy");
        jw_str(w, "status", "error");
        jw_str(w, "reason", "cannot allocate the buffers");
        jw_end(w);
        return -1;
    }
    memset(src, 1, n); /* fault every page in before timing */
    memset(dst, 2, n);
    memcpy(dst, src, n);
    double *bw = calloc((size_t)o->memcpy_repeats, sizeof(double));
    for (int r = 0; r < o->memcpy_repeats; r++) {
        src[(size_t)r * 4096 % n] = (char)r; /* a changed source each time */
        double t0 = now_s();
        memcpy(dst, src, n);
        double t = now_s() - t0;
        bw[r] = (double)n / t;
    }
    shim_sink = dst + (dst[n - 1] & 1);
    qsort(bw, (size_t)o->memcpy_repeats, sizeof(double), cmp_double);
    jw_begin(w, "memcpy");
    jw_str(w, "status", "ok");
    jw_str(w, "method", "memcpy of one buffer into another, one thread; bytes copied per second");
    jw_int(w, "bytes", (long long)n);
    jw_int(w, "repeats", o->memcpy_repeats);
    jw_num(w, "bandwidth_Bps", percentile(bw, o->memcpy_repeats, 0.5));
    jw_num(w, "bandwidth_max_Bps", bw[o->memcpy_repeats - 1]);
    jw_num(w, "bandwidth_min_Bps", bw[0]);
    jw_end(w);
    free(bw);
    free(src);
    free(dst);
    return 0;
}
