/* kvsim-shim: native microbenchmarks that calibrate kvsim's per-operation costs.
 *
 * One binary, JSON on stdout, progress and skip notices on stderr. Each section
 * ("dram", "memcpy", "tcp", "rdma", "cuda") has "status": "ok" | "skipped" | "error";
 * a skipped section says why in "reason". kvsim reads this JSON with
 * `python -m kvsim.calibrate shim --json FILE --name NAME`.
 */
#ifndef KVSIM_SHIM_H
#define KVSIM_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SHIM_FORMAT 1 /* bump when the JSON layout changes; the Python reader checks it */
#define SHIM_VERSION "0.1.0"

#ifndef HAVE_IBVERBS
#define HAVE_IBVERBS 0
#endif
#ifndef HAVE_CUDA
#define HAVE_CUDA 0
#endif

typedef struct {
    /* host memory */
    size_t dram_bytes;
    long dram_accesses;
    int dram_repeats;
    size_t memcpy_bytes;
    int memcpy_repeats;
    uint64_t seed;
    /* peer (TCP side channel, RDMA) */
    int server;              /* 1: wait for one client, serve it, exit */
    const char *client;      /* peer host in client mode, else NULL */
    const char *bind_addr;   /* server: address to listen on */
    int port;
    int connect_timeout_s;
    long pings;
    /* RDMA */
    const char *rdma_dev;    /* NULL: the first device */
    int ib_port;
    int gid_idx;             /* < 0: pick (RoCE v2, IPv4-mapped first) */
    long rdma_iters;         /* latency samples per operation */
    size_t rdma_lat_bytes;
    size_t rdma_bw_bytes;
    long rdma_bw_msgs;
    int rdma_bw_window;
    long rdma_rate_msgs;
    int rdma_rate_window;
    /* CUDA */
    int cuda_dev;
    size_t cuda_bytes;
    int cuda_repeats;
    long cuda_small_iters;
    /* sections to skip: bit mask of SKIP_* */
    unsigned skip;
} shim_opts;

enum { SKIP_DRAM = 1, SKIP_MEMCPY = 2, SKIP_TCP = 4, SKIP_RDMA = 8, SKIP_CUDA = 16 };

/* ---- a small JSON writer (objects only, numbers, strings, booleans) ---- */
typedef struct {
    FILE *f;
    int depth;
    int first[32];
} jw_t;

void jw_init(jw_t *w, FILE *f);
void jw_begin(jw_t *w, const char *key); /* key NULL: the top-level object */
void jw_end(jw_t *w);
void jw_num(jw_t *w, const char *key, double v); /* non-finite -> null */
void jw_int(jw_t *w, const char *key, long long v);
void jw_str(jw_t *w, const char *key, const char *s);
void jw_bool(jw_t *w, const char *key, int b);
void jw_skipped(jw_t *w, const char *section, const char *reason); /* whole section */

/* ---- helpers ---- */
double now_s(void);                       /* CLOCK_MONOTONIC seconds */
int cmp_double(const void *a, const void *b);
double percentile(double *sorted, long n, double q); /* sorted ascending, q in [0, 1] */
uint64_t rng_next(uint64_t *state);       /* splitmix64 */
void jw_latency(jw_t *w, const char *prefix, double *samples, long n); /* sorts samples */

/* ---- sections ---- */
int run_dram(jw_t *w, const shim_opts *o);   /* 0 ok, -1 error (written as status error) */
int run_memcpy(jw_t *w, const shim_opts *o);
int run_cuda(jw_t *w, const shim_opts *o);

/* RDMA: one side of an RC queue pair. The peer's info travels over the TCP side channel. */
#define QP_INFO_REASON 64
typedef struct {
    uint32_t ready;          /* 1: QP created, info valid */
    uint32_t atomics;        /* 1: the device does 8-byte atomics */
    uint32_t qpn, psn, rkey;
    uint64_t addr, size;
    uint16_t lid;
    uint8_t mtu;             /* enum ibv_mtu */
    uint8_t gid_valid;
    uint8_t rd_atom;         /* responder depth (max_dest_rd_atomic it accepts) */
    uint8_t init_rd_atom;    /* initiator depth it can use */
    uint8_t gid[16];
    char reason[QP_INFO_REASON]; /* why not ready */
} qp_info;

typedef struct rdma_ctx rdma_ctx;
/* Open the device and create a QP; on failure or no device, info->ready = 0 and
 * info->reason says why (no device is not an error). */
rdma_ctx *rdma_open(const shim_opts *o, qp_info *info);
int rdma_connect(rdma_ctx *r, const qp_info *peer);
int rdma_bench(rdma_ctx *r, const qp_info *peer, const shim_opts *o, jw_t *w); /* writes fields */
void rdma_describe(rdma_ctx *r, jw_t *w);  /* device, port, link layer, gid index */
void rdma_close(rdma_ctx *r);
int rdma_list_devices(char *first, size_t n); /* count; first device name into first */

#endif
