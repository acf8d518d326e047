/* Host <-> GPU copies over PCIe: pinned-memory bandwidth both ways, and the time of a small
 * copy (the fixed cost of one transfer). Compiled in only when the CUDA runtime is found
 * (HAVE_CUDA); the runtime API is enough, so nvcc is not needed. */
#define _GNU_SOURCE
#include "shim.h"

#include <stdlib.h>
#include <string.h>

#if HAVE_CUDA
#include <cuda_runtime.h>

static int cuda_fail(jw_t *w, const char *what, cudaError_t e) {
    char why[256];
    snprintf(why, sizeof why, "error: %s: %s", what, cudaGetErrorString(e));
    jw_str(w, "status", "error");
    jw_str(w, "reason", why);
    jw_end(w);
    fprintf(stderr, "kvsim-shim: cuda: %s\n", why);
    return -1;
}

static double copy_bw(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, int repeats,
                      cudaEvent_t a, cudaEvent_t b, cudaError_t *err) {
    double *bw = calloc((size_t)repeats, sizeof(double));
    *err = cudaMemcpy(dst, src, n, kind); /* warm */
    for (int r = 0; r < repeats && *err == cudaSuccess; r++) {
        float ms = 0;
        cudaEventRecord(a, 0);
        cudaMemcpyAsync(dst, src, n, kind, 0);
        cudaEventRecord(b, 0);
        *err = cudaEventSynchronize(b);
        if (*err == cudaSuccess) *err = cudaEventElapsedTime(&ms, a, b);
        bw[r] = (double)n / ((double)ms * 1e-3);
    }
    qsort(bw, (size_t)repeats, sizeof(double), cmp_double);
    double med = percentile(bw, repeats, 0.5);
    free(bw);
    return med;
}

int run_cuda(jw_t *w, const shim_opts *o) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        char why[256];
        snprintf(why, sizeof why, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        jw_skipped(w, "cuda", why);
        return 0;
    }
    jw_begin(w, "cuda");
    if (o->cuda_dev >= count) return cuda_fail(w, "--cuda-dev", cudaErrorInvalidDevice);
    if ((e = cudaSetDevice(o->cuda_dev)) != cudaSuccess) return cuda_fail(w, "cudaSetDevice", e);
    struct cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, o->cuda_dev)) != cudaSuccess)
        return cuda_fail(w, "cudaGetDeviceProperties", e);
    size_t n = o->cuda_bytes;
    void *h = NULL, *d = NULL;
    if ((e = cudaMallocHost(&h, n)) != cudaSuccess) return cuda_fail(w, "cudaMallocHost", e);
    if ((e = cudaMalloc(&d, n)) != cudaSuccess) {
        cudaFreeHost(h);
        return cuda_fail(w, "cudaMalloc", e);
    }
    memset(h, 1, n);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    double h2d = copy_bw(d, h, n, cudaMemcpyHostToDevice, o->cuda_repeats, a, b, &e);
    double d2h = e == cudaSuccess ? copy_bw(h, d, n, cudaMemcpyDeviceToHost, o->cuda_repeats, a, b, &e) : 0;
    long iters = o->cuda_small_iters;
    double *s = calloc((size_t)iters, sizeof(double));
    for (long i = 0; i < iters && e == cudaSuccess; i++) { /* 8 bytes, synchronous: one transfer's fixed cost */
        double t0 = now_s();
        e = cudaMemcpy(d, h, 8, cudaMemcpyHostToDevice);
        s[i] = now_s() - t0;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaFree(d);
    cudaFreeHost(h);
    if (e != cudaSuccess) {
        free(s);
        return cuda_fail(w, "copy", e);
    }
    jw_str(w, "status", "ok");
    jw_str(w, "device", prop.name);
    jw_int(w, "device_index", o->cuda_dev);
    jw_str(w, "method", "cudaMemcpyAsync of pinned host memory, timed with CUDA events; median of repeats");
    jw_int(w, "bytes", (long long)n);
    jw_int(w, "repeats", o->cuda_repeats);
    jw_num(w, "h2d_Bps", h2d);
    jw_num(w, "d2h_Bps", d2h);
    jw_latency(w, "small_h2d", s, iters);
    jw_end(w);
    free(s);
    return 0;
}

#else

int run_cuda(jw_t *w, const shim_opts *o) {
    (void)o;
    jw_skipped(w, "cuda", "built without the CUDA runtime (no cuda_runtime.h/libcudart found)");
    return 0;
}

#endif
