/* kvsim-shim: command line, JSON writer, helpers, and the TCP side channel.
 *
 *   kvsim-shim                     host DRAM latency, memcpy bandwidth, CUDA copies (if built)
 *   kvsim-shim --server [--port P] wait for one client: echo its TCP pings, serve RDMA
 *   kvsim-shim --client HOST       the local measurements, then TCP round trips and
 *                                  RDMA READ/WRITE/CAS against the server
 *
 * JSON goes to stdout, notices to stderr. Exit status 0 when every section is ok or
 * skipped for a stated reason (no RDMA device, no CUDA device), 1 on an error, 2 on usage.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ JSON writer */
void jw_init(jw_t *w, FILE *f) {
    w->f = f;
    w->depth = 0;
    w->first[0] = 1;
}

static void jw_indent(jw_t *w) {
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
}

static void jw_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void jw_key(jw_t *w, const char *key) {
    if (w->depth == 0) return;
    if (!w->first[w->depth]) fputc(',', w->f);
    w->first[w->depth] = 0;
    jw_indent(w);
    if (key) {
        jw_string(w->f, key);
        fputs(": ", w->f);
    }
}

void jw_begin(jw_t *w, const char *key) {
    jw_key(w, key);
    fputc('{', w->f);
    w->depth++;
    w->first[w->depth] = 1;
}

void jw_end(jw_t *w) {
    int empty = w->first[w->depth];
    w->depth--;
    if (!empty) jw_indent(w);
    fputc('}', w->f);
    if (w->depth == 0) fputc('\n', w->f);
    fflush(w->f);
}

void jw_num(jw_t *w, const char *key, double v) {
    jw_key(w, key);
    if (isfinite(v)) fprintf(w->f, "%.6g", v);
    else fputs("null", w->f);
}

void jw_int(jw_t *w, const char *key, long long v) {
    jw_key(w, key);
    fprintf(w->f, "%lld", v);
}

void jw_str(jw_t *w, const char *key, const char *s) {
    jw_key(w, key);
    jw_string(w->f, s ? s : "");
}

void jw_bool(jw_t *w, const char *key, int b) {
    jw_key(w, key);
    fputs(b ? "true" : "false", w->f);
}

void jw_skipped(jw_t *w, const char *section, const char *reason) {
    jw_begin(w, section);
    jw_str(w, "status", "skipped");
    jw_str(w, "reason", reason);
    jw_end(w);
    fprintf(stderr, "kvsim-shim: %s: %s: skipped\n", section, reason);
}

/* ------------------------------------------------------------------ helpers */
double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double percentile(double *sorted, long n, double q) {
    if (n <= 0) return NAN;
    long i = (long)ceil(q * (double)n) - 1; /* nearest rank */
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return sorted[i];
}

uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void jw_latency(jw_t *w, const char *prefix, double *samples, long n) {
    char key[64];
    double sum = 0;
    for (long i = 0; i < n; i++) sum += samples[i];
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    snprintf(key, sizeof key, "%s_p50_s", prefix);
    jw_num(w, key, percentile(samples, n, 0.50));
    snprintf(key, sizeof key, "%s_p99_s", prefix);
    jw_num(w, key, percentile(samples, n, 0.99));
    snprintf(key, sizeof key, "%s_p999_s", prefix);
    jw_num(w, key, percentile(samples, n, 0.999));
    snprintf(key, sizeof key, "%s_mean_s", prefix);
    jw_num(w, key, n ? sum / (double)n : NAN);
    snprintf(key, sizeof key, "%s_min_s", prefix);
    jw_num(w, key, n ? samples[0] : NAN);
    snprintf(key, sizeof key, "%s_samples", prefix);
    jw_int(w, key, n);
}

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

/* ------------------------------------------------------------------ TCP side channel */
#define MAGIC "KVSIMSH1"
#define HELLO_BYTES 136
#define PING_BYTES 64

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void put32(uint8_t *b, uint32_t v) { v = htole32(v); memcpy(b, &v, 4); }
static void put64(uint8_t *b, uint64_t v) { v = htole64(v); memcpy(b, &v, 8); }
static uint32_t get32(const uint8_t *b) { uint32_t v; memcpy(&v, b, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *b) { uint64_t v; memcpy(&v, b, 8); return le64toh(v); }

static void pack_hello(uint8_t *b, const qp_info *q, uint32_t pings) {
    memset(b, 0, HELLO_BYTES);
    memcpy(b, MAGIC, 8);
    put32(b + 8, SHIM_FORMAT);
    put32(b + 12, (q->ready ? 1u : 0u) | (q->atomics ? 2u : 0u));
    put32(b + 16, pings);
    put32(b + 20, q->qpn);
    put32(b + 24, q->psn);
    put32(b + 28, q->rkey);
    put64(b + 32, q->addr);
    put64(b + 40, q->size);
    b[48] = (uint8_t)(q->lid & 0xff);
    b[49] = (uint8_t)(q->lid >> 8);
    b[50] = q->mtu;
    b[51] = q->gid_valid;
    b[52] = q->rd_atom;
    b[53] = q->init_rd_atom;
    memcpy(b + 56, q->gid, 16);
    memcpy(b + 72, q->reason, QP_INFO_REASON);
    b[72 + QP_INFO_REASON - 1] = 0;
}

static int unpack_hello(const uint8_t *b, qp_info *q, uint32_t *pings) {
    if (memcmp(b, MAGIC, 8) != 0 || get32(b + 8) != SHIM_FORMAT) return -1;
    memset(q, 0, sizeof *q);
    uint32_t flags = get32(b + 12);
    q->ready = flags & 1u;
    q->atomics = (flags >> 1) & 1u;
    *pings = get32(b + 16);
    q->qpn = get32(b + 20);
    q->psn = get32(b + 24);
    q->rkey = get32(b + 28);
    q->addr = get64(b + 32);
    q->size = get64(b + 40);
    q->lid = (uint16_t)(b[48] | (b[49] << 8));
    q->mtu = b[50];
    q->gid_valid = b[51];
    q->rd_atom = b[52];
    q->init_rd_atom = b[53];
    memcpy(q->gid, b + 56, 16);
    memcpy(q->reason, b + 72, QP_INFO_REASON);
    q->reason[QP_INFO_REASON - 1] = 0;
    return 0;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int tcp_listen_accept(const shim_opts *o) {
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->bind_addr, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "kvsim-shim: %s: %s\n", o->bind_addr ? o->bind_addr : "*", gai_strerror(rc));
        return -1;
    }
    int ls = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        ls = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (ls < 0) continue;
        int one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(ls, a->ai_addr, a->ai_addrlen) == 0 && listen(ls, 1) == 0) break;
        close(ls);
        ls = -1;
    }
    freeaddrinfo(res);
    if (ls < 0) {
        fprintf(stderr, "kvsim-shim: cannot listen on port %d: %s\n", o->port, strerror(errno));
        return -1;
    }
    fprintf(stderr, "kvsim-shim: server listening on port %d\n", o->port);
    int fd = accept(ls, NULL, NULL);
    close(ls);
    if (fd < 0) {
        fprintf(stderr, "kvsim-shim: accept: %s\n", strerror(errno));
        return -1;
    }
    nodelay(fd);
    return fd;
}

static int tcp_connect(const shim_opts *o) {
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    double deadline = now_s() + o->connect_timeout_s;
    for (;;) { /* the server may still be starting: retry until the deadline */
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(o->client, port, &hints, &res);
        if (rc) {
            fprintf(stderr, "kvsim-shim: %s: %s\n", o->client, gai_strerror(rc));
            return -1;
        }
        for (struct addrinfo *a = res; a; a = a->ai_next) {
            int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
            if (fd < 0) continue;
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                freeaddrinfo(res);
                nodelay(fd);
                return fd;
            }
            close(fd);
        }
        freeaddrinfo(res);
        if (now_s() > deadline) {
            fprintf(stderr, "kvsim-shim: cannot connect to %s:%d within %d s\n", o->client, o->port,
                    o->connect_timeout_s);
            return -1;
        }
        usleep(100000);
    }
}

/* Client: `pings` round trips of 64 bytes; the first tenth (at most 1000) warm up. */
static int tcp_pings(int fd, long pings, jw_t *w) {
    long warm = pings / 10 < 1000 ? pings / 10 : 1000;
    double *s = calloc((size_t)(pings > 0 ? pings : 1), sizeof(double));
    uint8_t msg[PING_BYTES] = {0};
    long n = 0;
    for (long i = 0; i < pings; i++) {
        put64(msg, (uint64_t)i);
        double t0 = now_s();
        if (write_full(fd, msg, sizeof msg) || read_full(fd, msg, sizeof msg)) {
            free(s);
            return -1;
        }
        double t1 = now_s();
        if (get64(msg) != (uint64_t)i) {
            free(s);
            return -1;
        }
        if (i >= warm) s[n++] = t1 - t0;
    }
    jw_str(w, "status", "ok");
    jw_int(w, "message_bytes", PING_BYTES);
    jw_int(w, "warmup", warm);
    jw_latency(w, "rtt", s, n);
    free(s);
    return 0;
}

static int tcp_echo(int fd, long pings) {
    uint8_t msg[PING_BYTES];
    for (long i = 0; i < pings; i++)
        if (read_full(fd, msg, sizeof msg) || write_full(fd, msg, sizeof msg)) return -1;
    return 0;
}

/* Both sides write one byte and read the other's: a barrier. */
static int sync_byte(int fd, char c) {
    char got;
    if (write_full(fd, &c, 1) || read_full(fd, &got, 1)) return -1;
    return got == c ? 0 : -1;
}

/* ------------------------------------------------------------------ peer modes */
static int peer_session(const shim_opts *o, jw_t *w) {
    int err = 0;
    qp_info mine = {0}, peer = {0};
    rdma_ctx *r = NULL;
    if (o->skip & SKIP_RDMA) snprintf(mine.reason, sizeof mine.reason, "not requested (--skip)");
    else r = rdma_open(o, &mine);
    int local_failed = !mine.ready && r == NULL && strncmp(mine.reason, "error:", 6) == 0;

    int fd = o->server ? tcp_listen_accept(o) : tcp_connect(o);
    if (fd < 0) {
        rdma_close(r);
        jw_skipped(w, "tcp", "no connection to the peer");
        jw_begin(w, "rdma");
        jw_str(w, "status", "error");
        jw_str(w, "reason", "no connection to the peer");
        jw_end(w);
        return -1;
    }
    uint8_t hello[HELLO_BYTES], theirs[HELLO_BYTES];
    int skip_tcp = !o->server && (o->skip & SKIP_TCP);
    uint32_t pings = skip_tcp ? 0 : (uint32_t)o->pings, peer_pings = 0;
    pack_hello(hello, &mine, o->server ? 0 : pings);
    if (write_full(fd, hello, sizeof hello) || read_full(fd, theirs, sizeof theirs) ||
        unpack_hello(theirs, &peer, &peer_pings)) {
        fprintf(stderr, "kvsim-shim: bad hello from the peer (another program, or another shim version?)\n");
        close(fd);
        rdma_close(r);
        return -1;
    }

    if (skip_tcp) {
        jw_skipped(w, "tcp", "not requested (--skip)");
    } else if (o->server) {
        jw_begin(w, "tcp");
        err |= tcp_echo(fd, peer_pings);
        jw_str(w, "status", err ? "error" : "ok");
        jw_int(w, "echoed", peer_pings);
        jw_end(w);
    } else {
        jw_begin(w, "tcp");
        if (tcp_pings(fd, pings, w)) {
            jw_str(w, "status", "error");
            jw_str(w, "reason", "the peer closed the connection");
            err = 1;
        }
        jw_end(w);
    }

    if (!err && mine.ready && peer.ready) {
        int ok = rdma_connect(r, &peer) == 0;
        char c = ok ? 'R' : 'X';
        if (sync_byte(fd, c)) ok = 0;  /* both sides connected their QPs */
        jw_begin(w, "rdma");
        rdma_describe(r, w);
        if (!ok) {
            jw_str(w, "status", "error");
            jw_str(w, "reason", "could not connect the queue pairs (see stderr)");
            err = 1;
        } else if (o->server) {
            jw_str(w, "status", "ok");
            jw_str(w, "role", "target of the client's one-sided operations");
        } else if (rdma_bench(r, &peer, o, w)) {
            err = 1;
        }
        jw_end(w);
    } else if (!mine.ready) {
        if (local_failed) {
            jw_begin(w, "rdma");
            jw_str(w, "status", "error");
            jw_str(w, "reason", mine.reason);
            jw_end(w);
            err = 1;
        } else {
            jw_skipped(w, "rdma", mine.reason);
        }
    } else {
        char why[QP_INFO_REASON + 32];
        snprintf(why, sizeof why, "peer: %s", peer.reason[0] ? peer.reason : "not ready");
        jw_skipped(w, "rdma", why);
    }
    /* The client says it is done; the server waits for that before tearing down. */
    if (sync_byte(fd, 'D') && !o->server) err = 1;
    close(fd);
    rdma_close(r);
    return err ? -1 : 0;
}

static void local_rdma(const shim_opts *o, jw_t *w) {
    if (o->skip & SKIP_RDMA) {
        jw_skipped(w, "rdma", "not requested (--skip)");
        return;
    }
#if HAVE_IBVERBS
    char first[64] = "";
    int n = rdma_list_devices(first, sizeof first);
    if (n <= 0) {
        jw_skipped(w, "rdma", "no RDMA device");
        return;
    }
    char why[256];
    snprintf(why, sizeof why,
             "%d RDMA device(s) (%s); RDMA needs a peer: run `kvsim-shim --server` on one host and "
             "`kvsim-shim --client HOST` on the other",
             n, first);
    jw_skipped(w, "rdma", why);
#else
    jw_skipped(w, "rdma", "built without libibverbs (install libibverbs-dev and rebuild)");
#endif
}

/* ------------------------------------------------------------------ options */
static size_t parse_size(const char *s) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (end && (*end == 'k' || *end == 'K')) v *= 1024;
    else if (end && (*end == 'm' || *end == 'M')) v *= 1024 * 1024;
    else if (end && (*end == 'g' || *end == 'G')) v *= 1024.0 * 1024 * 1024;
    return (size_t)v;
}

static unsigned parse_skip(const char *s) {
    unsigned m = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "dram")) m |= SKIP_DRAM;
        else if (!strcmp(tok, "memcpy")) m |= SKIP_MEMCPY;
        else if (!strcmp(tok, "tcp")) m |= SKIP_TCP;
        else if (!strcmp(tok, "rdma")) m |= SKIP_RDMA;
        else if (!strcmp(tok, "cuda")) m |= SKIP_CUDA;
        else {
            fprintf(stderr, "kvsim-shim: --skip: unknown section '%s' (dram, memcpy, tcp, rdma, cuda)\n", tok);
            exit(2);
        }
    }
    return m;
}

static void usage(FILE *f) {
    fputs(
        "usage: kvsim-shim [options]                 local: DRAM latency, memcpy, CUDA copies\n"
        "       kvsim-shim --server [--port P]       serve one client (TCP echo, RDMA target)\n"
        "       kvsim-shim --client HOST [--port P]  local + TCP round trips + RDMA READ/WRITE/CAS\n"
        "options (sizes take k/M/G suffixes):\n"
        "  --dram-bytes N       pointer-chasing buffer (256M)\n"
        "  --dram-accesses N    dependent loads timed per repeat (4000000)\n"
        "  --dram-repeats N     repeats, the median is reported (3)\n"
        "  --memcpy-bytes N     source and destination size each (256M)\n"
        "  --memcpy-repeats N   (5)\n"
        "  --port P             TCP side channel (18515)   --bind ADDR  server address (all)\n"
        "  --connect-timeout S  client retries connecting for S seconds (10)\n"
        "  --pings N            TCP round trips (10000)\n"
        "  --rdma-dev NAME      --ib-port N (1)   --gid-idx N (auto: RoCE v2, IPv4-mapped)\n"
        "  --rdma-iters N       latency samples per operation (10000)\n"
        "  --rdma-bw-bytes N    message size for bandwidth (64k)   --rdma-bw-msgs N (20000)\n"
        "  --rdma-window N      outstanding messages for bandwidth (64)\n"
        "  --rdma-rate-msgs N   small READs for the message rate (200000), --rdma-rate-window N (16)\n"
        "  --cuda-dev N (0)     --cuda-bytes N (256M)   --cuda-repeats N (10)\n"
        "  --skip LIST          comma list of dram,memcpy,tcp,rdma,cuda\n"
        "  --seed N             --version   --help\n",
        f);
}

int main(int argc, char **argv) {
    shim_opts o = {
        .dram_bytes = 256u << 20, .dram_accesses = 4000000, .dram_repeats = 3,
        .memcpy_bytes = 256u << 20, .memcpy_repeats = 5, .seed = 42,
        .port = 18515, .connect_timeout_s = 10, .pings = 10000,
        .ib_port = 1, .gid_idx = -1, .rdma_iters = 10000, .rdma_lat_bytes = 8,
        .rdma_bw_bytes = 64u << 10, .rdma_bw_msgs = 20000, .rdma_bw_window = 64,
        .rdma_rate_msgs = 200000, .rdma_rate_window = 16,
        .cuda_dev = 0, .cuda_bytes = 256u << 20, .cuda_repeats = 10, .cuda_small_iters = 2000,
    };
    enum { O_DRAM_BYTES = 256, O_DRAM_ACC, O_DRAM_REP, O_MC_BYTES, O_MC_REP, O_SEED, O_SERVER, O_CLIENT,
           O_BIND, O_PORT, O_CTO, O_PINGS, O_DEV, O_IBPORT, O_GID, O_ITERS, O_BWB, O_BWM, O_WIN, O_RATEM,
           O_RATEW, O_CDEV, O_CBYTES, O_CREP, O_SKIP, O_VERSION, O_HELP };
    static const struct option longopts[] = {
        {"dram-bytes", required_argument, 0, O_DRAM_BYTES}, {"dram-accesses", required_argument, 0, O_DRAM_ACC},
        {"dram-repeats", required_argument, 0, O_DRAM_REP}, {"memcpy-bytes", required_argument, 0, O_MC_BYTES},
        {"memcpy-repeats", required_argument, 0, O_MC_REP}, {"seed", required_argument, 0, O_SEED},
        {"server", no_argument, 0, O_SERVER}, {"client", required_argument, 0, O_CLIENT},
        {"bind", required_argument, 0, O_BIND}, {"port", required_argument, 0, O_PORT},
        {"connect-timeout", required_argument, 0, O_CTO}, {"pings", required_argument, 0, O_PINGS},
        {"rdma-dev", required_argument, 0, O_DEV}, {"ib-port", required_argument, 0, O_IBPORT},
        {"gid-idx", required_argument, 0, O_GID}, {"rdma-iters", required_argument, 0, O_ITERS},
        {"rdma-bw-bytes", required_argument, 0, O_BWB}, {"rdma-bw-msgs", required_argument, 0, O_BWM},
        {"rdma-window", required_argument, 0, O_WIN}, {"rdma-rate-msgs", required_argument, 0, O_RATEM},
        {"rdma-rate-window", required_argument, 0, O_RATEW}, {"cuda-dev", required_argument, 0, O_CDEV},
        {"cuda-bytes", required_argument, 0, O_CBYTES}, {"cuda-repeats", required_argument, 0, O_CREP},
        {"skip", required_argument, 0, O_SKIP}, {"version", no_argument, 0, O_VERSION},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DRAM_BYTES: o.dram_bytes = parse_size(optarg); break;
        case O_DRAM_ACC: o.dram_accesses = atol(optarg); break;
        case O_DRAM_REP: o.dram_repeats = atoi(optarg); break;
        case O_MC_BYTES: o.memcpy_bytes = parse_size(optarg); break;
        case O_MC_REP: o.memcpy_repeats = atoi(optarg); break;
        case O_SEED: o.seed = strtoull(optarg, NULL, 10); break;
        case O_SERVER: o.server = 1; break;
        case O_CLIENT: o.client = optarg; break;
        case O_BIND: o.bind_addr = optarg; break;
        case O_PORT: o.port = atoi(optarg); break;
        case O_CTO: o.connect_timeout_s = atoi(optarg); break;
        case O_PINGS: o.pings = atol(optarg); break;
        case O_DEV: o.rdma_dev = optarg; break;
        case O_IBPORT: o.ib_port = atoi(optarg); break;
        case O_GID: o.gid_idx = atoi(optarg); break;
        case O_ITERS: o.rdma_iters = atol(optarg); break;
        case O_BWB: o.rdma_bw_bytes = parse_size(optarg); break;
        case O_BWM: o.rdma_bw_msgs = atol(optarg); break;
        case O_WIN: o.rdma_bw_window = atoi(optarg); break;
        case O_RATEM: o.rdma_rate_msgs = atol(optarg); break;
        case O_RATEW: o.rdma_rate_window = atoi(optarg); break;
        case O_CDEV: o.cuda_dev = atoi(optarg); break;
        case O_CBYTES: o.cuda_bytes = parse_size(optarg); break;
        case O_CREP: o.cuda_repeats = atoi(optarg); break;
        case O_SKIP: o.skip |= parse_skip(optarg); break;
        case O_VERSION: printf("kvsim-shim %s (format %d, rdma %d, cuda %d)\n", SHIM_VERSION, SHIM_FORMAT,
                               HAVE_IBVERBS, HAVE_CUDA); return 0;
        case 'h': case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (o.server && o.client) || o.dram_repeats < 1 || o.memcpy_repeats < 1 ||
        o.cuda_repeats < 1 || o.pings < 1 || o.rdma_iters < 1 || o.rdma_bw_window < 1 ||
        o.rdma_rate_window < 1 || o.port <= 0 || o.port > 65535 || o.dram_bytes < 4096 ||
        o.memcpy_bytes < 4096 || o.dram_accesses < 1) {
        usage(stderr);
        return 2;
    }

    char host[256] = "unknown", date[32], cpu[256];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    cpu_model(cpu, sizeof cpu);

    jw_t w;
    jw_init(&w, stdout);
    jw_begin(&w, NULL);
    jw_str(&w, "tool", "kvsim-shim");
    jw_int(&w, "format", SHIM_FORMAT);
    jw_str(&w, "version", SHIM_VERSION);
    jw_str(&w, "hostname", host);
    jw_str(&w, "date_utc", date);
    jw_str(&w, "cpu", cpu);
    jw_str(&w, "role", o.server ? "server" : o.client ? "client" : "local");
    if (o.client) jw_str(&w, "peer", o.client);
    jw_begin(&w, "build");
    jw_bool(&w, "rdma", HAVE_IBVERBS);
    jw_bool(&w, "cuda", HAVE_CUDA);
    jw_end(&w);

    int err = 0;
    if (!o.server) {
        if (o.skip & SKIP_DRAM) jw_skipped(&w, "dram", "not requested (--skip)");
        else err |= run_dram(&w, &o) != 0;
        if (o.skip & SKIP_MEMCPY) jw_skipped(&w, "memcpy", "not requested (--skip)");
        else err |= run_memcpy(&w, &o) != 0;
        if (o.skip & SKIP_CUDA) jw_skipped(&w, "cuda", "not requested (--skip)");
        else err |= run_cuda(&w, &o) != 0;
    }
    if (o.server || o.client) {
        err |= peer_session(&o, &w) != 0;
    } else {
        jw_skipped(&w, "tcp", "no peer (run `kvsim-shim --server` on another host, `--client HOST` here)");
        local_rdma(&o, &w);
    }
    jw_end(&w);
    return err ? 1 : 0;
}
