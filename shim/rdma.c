/* RDMA over one reliable-connected queue pair (ibverbs): READ, WRITE and compare-and-swap
 * round trips, bandwidth at a large message size, and the small-READ message rate of one
 * QP with a few READs in flight. The client posts one-sided operations against the
 * server's registered buffer; the server's CPU does nothing. Queue-pair numbers, keys and
 * GIDs are exchanged over the TCP side channel (main.c), as perftest does.
 *
 * Compiled with HAVE_IBVERBS=1 when libibverbs is found; otherwise every entry point says
 * "built without libibverbs" and the RDMA section is skipped. */
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if HAVE_IBVERBS
#include <infiniband/verbs.h>

struct rdma_ctx {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_mr *mr;
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    char *buf;
    size_t size;
    int port;
    int gid_idx;
    int depth; /* send queue and CQ depth */
    int max_inline;
    int init_depth; /* READs/atomics this side may have in flight, after connect */
    uint32_t psn;   /* our first packet sequence number */
    struct ibv_port_attr pattr;
    struct ibv_device_attr dattr;
    char dev[64];
};

int rdma_list_devices(char *first, size_t n) {
    int num = 0;
    struct ibv_device **list = ibv_get_device_list(&num);
    if (!list) return 0; /* no kernel support, no device */
    if (num > 0 && first) snprintf(first, n, "%s", ibv_get_device_name(list[0]));
    ibv_free_device_list(list);
    return num;
}

static int is_zero(const uint8_t *g) {
    for (int i = 0; i < 16; i++)
        if (g[i]) return 0;
    return 1;
}

/* RoCE: prefer a RoCE v2 GID holding an IPv4 address (::ffff:a.b.c.d), as perftest does;
 * then any RoCE v2 GID, then any non-zero GID. sysfs says which type each entry is. */
static int pick_gid(struct rdma_ctx *r) {
    int best = -1, best_rank = 0;
    for (int i = 0; i < r->pattr.gid_tbl_len && i < 256; i++) {
        union ibv_gid g;
        if (ibv_query_gid(r->ctx, (uint8_t)r->port, i, &g) || is_zero(g.raw)) continue;
        char path[256], type[64] = "";
        snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/gid_attrs/types/%d", r->dev, r->port, i);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(type, sizeof type, f)) type[0] = 0;
            fclose(f);
        }
        int v2 = strstr(type, "v2") != NULL;
        static const uint8_t v4pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        int v4 = memcmp(g.raw, v4pfx, 12) == 0;
        int rank = 1 + v2 * 2 + (v2 && v4) * 2;
        if (rank > best_rank) {
            best_rank = rank;
            best = i;
        }
    }
    return best;
}

static rdma_ctx *open_fail(struct rdma_ctx *r, qp_info *info, const char *what) {
    snprintf(info->reason, sizeof info->reason, "error: %s (%s)", what, errno ? strerror(errno) : "failed");
    fprintf(stderr, "kvsim-shim: rdma: %s\n", info->reason);
    rdma_close(r);
    return NULL;
}

rdma_ctx *rdma_open(const shim_opts *o, qp_info *info) {
    memset(info, 0, sizeof *info);
    int num = 0;
    struct ibv_device **list = ibv_get_device_list(&num);
    if (!list || num == 0) {
        if (list) ibv_free_device_list(list);
        snprintf(info->reason, sizeof info->reason, "no RDMA device");
        return NULL;
    }
    struct ibv_device *dev = NULL;
    for (int i = 0; i < num; i++)
        if (!o->rdma_dev || strcmp(ibv_get_device_name(list[i]), o->rdma_dev) == 0) {
            dev = list[i];
            break;
        }
    if (!dev) {
        ibv_free_device_list(list);
        snprintf(info->reason, sizeof info->reason, "error: no RDMA device named %s", o->rdma_dev);
        return NULL;
    }
    struct rdma_ctx *r = calloc(1, sizeof *r);
    snprintf(r->dev, sizeof r->dev, "%s", ibv_get_device_name(dev));
    r->port = o->ib_port;
    errno = 0;
    r->ctx = ibv_open_device(dev);
    ibv_free_device_list(list);
    if (!r->ctx) return open_fail(r, info, "ibv_open_device");
    if (ibv_query_device(r->ctx, &r->dattr)) return open_fail(r, info, "ibv_query_device");
    if (ibv_query_port(r->ctx, (uint8_t)r->port, &r->pattr)) return open_fail(r, info, "ibv_query_port");
    if (r->pattr.state != IBV_PORT_ACTIVE) {
        errno = 0;
        return open_fail(r, info, "port not active");
    }
    r->gid_idx = o->gid_idx;
    if (r->gid_idx < 0 && r->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
        r->gid_idx = pick_gid(r);
        if (r->gid_idx < 0) {
            errno = 0;
            return open_fail(r, info, "RoCE port without a usable GID (give --gid-idx)");
        }
    }
    union ibv_gid gid;
    memset(&gid, 0, sizeof gid);
    if (r->gid_idx >= 0 && ibv_query_gid(r->ctx, (uint8_t)r->port, r->gid_idx, &gid))
        return open_fail(r, info, "ibv_query_gid");

    /* one buffer: [0, bw) for READ/WRITE payloads, then 8 aligned bytes for CAS */
    size_t bw = o->rdma_bw_bytes > o->rdma_lat_bytes ? o->rdma_bw_bytes : o->rdma_lat_bytes;
    r->size = (bw + 63) / 64 * 64 + 64;
    if (posix_memalign((void **)&r->buf, 4096, r->size)) return open_fail(r, info, "posix_memalign");
    memset(r->buf, 0, r->size);
    if (!(r->pd = ibv_alloc_pd(r->ctx))) return open_fail(r, info, "ibv_alloc_pd");
    int atomics = r->dattr.atomic_cap != IBV_ATOMIC_NONE;
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
                 (atomics ? IBV_ACCESS_REMOTE_ATOMIC : 0);
    if (!(r->mr = ibv_reg_mr(r->pd, r->buf, r->size, access))) return open_fail(r, info, "ibv_reg_mr");
    int want = (o->rdma_bw_window > o->rdma_rate_window ? o->rdma_bw_window : o->rdma_rate_window) + 8;
    r->depth = want < r->dattr.max_qp_wr ? want : r->dattr.max_qp_wr;
    if (r->depth > r->dattr.max_cqe) r->depth = r->dattr.max_cqe;
    if (!(r->cq = ibv_create_cq(r->ctx, r->depth, NULL, NULL, 0))) return open_fail(r, info, "ibv_create_cq");
    struct ibv_qp_init_attr qa = {
        .send_cq = r->cq, .recv_cq = r->cq, .qp_type = IBV_QPT_RC, .sq_sig_all = 0,
        .cap = {.max_send_wr = (uint32_t)r->depth, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1,
                .max_inline_data = 64},
    };
    r->qp = ibv_create_qp(r->pd, &qa);
    if (!r->qp) { /* some devices take no inline data */
        qa.cap.max_inline_data = 0;
        r->qp = ibv_create_qp(r->pd, &qa);
    }
    if (!r->qp) return open_fail(r, info, "ibv_create_qp");
    r->max_inline = (int)qa.cap.max_inline_data;
    struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .pkey_index = 0, .port_num = (uint8_t)r->port,
                            .qp_access_flags = (unsigned)access};
    if (ibv_modify_qp(r->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
        return open_fail(r, info, "ibv_modify_qp INIT");

    uint64_t seed = o->seed ^ (uint64_t)r->qp->qp_num;
    info->ready = 1;
    info->atomics = (uint32_t)atomics;
    info->qpn = r->qp->qp_num;
    info->psn = (uint32_t)(rng_next(&seed) & 0xffffff);
    info->rkey = r->mr->rkey;
    info->addr = (uint64_t)(uintptr_t)r->buf;
    info->size = r->size;
    info->lid = r->pattr.lid;
    info->mtu = (uint8_t)r->pattr.active_mtu;
    info->gid_valid = r->gid_idx >= 0;
    info->rd_atom = (uint8_t)(r->dattr.max_qp_rd_atom < 16 ? r->dattr.max_qp_rd_atom : 16);
    info->init_rd_atom = (uint8_t)(r->dattr.max_qp_init_rd_atom < 16 ? r->dattr.max_qp_init_rd_atom : 16);
    memcpy(info->gid, gid.raw, 16);
    r->init_depth = info->init_rd_atom;
    r->psn = info->psn;
    return r;
}

int rdma_connect(rdma_ctx *r, const qp_info *peer) {
    struct ibv_qp_attr a;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = (enum ibv_mtu)(peer->mtu < r->pattr.active_mtu ? peer->mtu : r->pattr.active_mtu);
    a.dest_qp_num = peer->qpn;
    a.rq_psn = peer->psn;
    a.max_dest_rd_atomic = (uint8_t)(r->dattr.max_qp_rd_atom < 16 ? r->dattr.max_qp_rd_atom : 16);
    a.min_rnr_timer = 12;
    a.ah_attr.dlid = peer->lid;
    a.ah_attr.sl = 0;
    a.ah_attr.src_path_bits = 0;
    a.ah_attr.port_num = (uint8_t)r->port;
    if (r->gid_idx >= 0 && peer->gid_valid) {
        a.ah_attr.is_global = 1;
        memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
        a.ah_attr.grh.sgid_index = (uint8_t)r->gid_idx;
        a.ah_attr.grh.hop_limit = 64;
    }
    if (ibv_modify_qp(r->qp, &a,
                      IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                          IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER)) {
        fprintf(stderr, "kvsim-shim: rdma: ibv_modify_qp RTR: %s\n", strerror(errno));
        return -1;
    }
    int depth = r->init_depth < peer->rd_atom ? r->init_depth : peer->rd_atom;
    if (depth < 1) depth = 1;
    r->init_depth = depth;
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    a.timeout = 14;
    a.retry_cnt = 7;
    a.rnr_retry = 7;
    a.sq_psn = r->psn;
    a.max_rd_atomic = (uint8_t)depth;
    if (ibv_modify_qp(r->qp, &a,
                      IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                          IBV_QP_MAX_QP_RD_ATOMIC)) {
        fprintf(stderr, "kvsim-shim: rdma: ibv_modify_qp RTS: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int post(struct rdma_ctx *r, const qp_info *peer, enum ibv_wr_opcode op, size_t off, uint32_t len,
                int inl, uint64_t id) {
    struct ibv_sge sge = {.addr = (uint64_t)(uintptr_t)(r->buf + off), .length = len, .lkey = r->mr->lkey};
    struct ibv_send_wr wr, *bad = NULL;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op;
    wr.send_flags = IBV_SEND_SIGNALED | (inl ? IBV_SEND_INLINE : 0);
    if (op == IBV_WR_ATOMIC_CMP_AND_SWP) {
        wr.wr.atomic.remote_addr = peer->addr + off;
        wr.wr.atomic.rkey = peer->rkey;
        wr.wr.atomic.compare_add = id;      /* the value the previous CAS wrote... */
        wr.wr.atomic.swap = id + 1;         /* ...so every CAS succeeds */
    } else {
        wr.wr.rdma.remote_addr = peer->addr + off;
        wr.wr.rdma.rkey = peer->rkey;
    }
    int rc = ibv_post_send(r->qp, &wr, &bad);
    if (rc) fprintf(stderr, "kvsim-shim: rdma: ibv_post_send: %s\n", strerror(rc));
    return rc ? -1 : 0;
}

/* Busy-poll until n completions arrive; an error completion ends the test. */
static int poll_n(struct rdma_ctx *r, int n) {
    struct ibv_wc wc[32];
    int got = 0;
    while (got < n) {
        int k = ibv_poll_cq(r->cq, n - got < 32 ? n - got : 32, wc);
        if (k < 0) {
            fprintf(stderr, "kvsim-shim: rdma: ibv_poll_cq failed\n");
            return -1;
        }
        for (int i = 0; i < k; i++)
            if (wc[i].status != IBV_WC_SUCCESS) {
                fprintf(stderr, "kvsim-shim: rdma: completion error: %s (opcode %d)\n",
                        ibv_wc_status_str(wc[i].status), (int)wc[i].opcode);
                return -1;
            }
        got += k;
    }
    return 0;
}

/* One operation at a time: post, wait for its completion. Completion of a WRITE means the
 * responder's ACK came back, so this is a round trip for every opcode. */
static int lat(struct rdma_ctx *r, const qp_info *peer, enum ibv_wr_opcode op, size_t off, uint32_t len,
               long iters, jw_t *w, const char *name) {
    long warm = iters / 10 < 1000 ? iters / 10 : 1000;
    double *s = calloc((size_t)iters, sizeof(double));
    int inl = op == IBV_WR_RDMA_WRITE && (int)len <= r->max_inline;
    uint64_t id = 0; /* the remote CAS word starts at 0 (zeroed at rdma_open) */
    long n = 0;
    for (long i = 0; i < warm + iters; i++) {
        double t0 = now_s();
        if (post(r, peer, op, off, len, inl, id) || poll_n(r, 1)) {
            free(s);
            return -1;
        }
        double t1 = now_s();
        if (op == IBV_WR_ATOMIC_CMP_AND_SWP) {
            uint64_t old;
            memcpy(&old, r->buf + off, 8); /* CAS returns the old remote value here */
            if (old != id) {
                fprintf(stderr, "kvsim-shim: rdma: CAS saw %llu, expected %llu\n", (unsigned long long)old,
                        (unsigned long long)id);
                free(s);
                return -1;
            }
        }
        id++;
        if (i >= warm) s[n++] = t1 - t0;
    }
    jw_latency(w, name, s, n);
    free(s);
    return 0;
}

/* `msgs` operations of `len` bytes with up to `window` in flight; bytes and messages per second. */
static int stream(struct rdma_ctx *r, const qp_info *peer, enum ibv_wr_opcode op, uint32_t len, long msgs,
                  int window, double *Bps, double *mps) {
    if (window > r->depth - 1) window = r->depth - 1;
    if (window < 1) window = 1;
    long posted = 0, done = 0;
    struct ibv_wc wc[64];
    double t0 = now_s();
    while (done < msgs) {
        while (posted < msgs && posted - done < window) {
            if (post(r, peer, op, 0, len, 0, (uint64_t)posted)) return -1;
            posted++;
        }
        int k = ibv_poll_cq(r->cq, 64, wc);
        if (k < 0) return -1;
        for (int i = 0; i < k; i++)
            if (wc[i].status != IBV_WC_SUCCESS) {
                fprintf(stderr, "kvsim-shim: rdma: completion error: %s\n", ibv_wc_status_str(wc[i].status));
                return -1;
            }
        done += k;
    }
    double t = now_s() - t0;
    *Bps = (double)len * (double)msgs / t;
    *mps = (double)msgs / t;
    return 0;
}

int rdma_bench(rdma_ctx *r, const qp_info *peer, const shim_opts *o, jw_t *w) {
    uint32_t small = (uint32_t)o->rdma_lat_bytes;
    uint32_t big = (uint32_t)o->rdma_bw_bytes;
    if (big > peer->size - 64 || big > r->size - 64) big = (uint32_t)((peer->size < r->size ? peer->size : r->size) - 64);
    size_t cas_off = r->size - 64; /* 8-byte aligned, the same offset in both buffers when sizes match */
    if (peer->size != r->size) cas_off = (peer->size < r->size ? peer->size : r->size) - 64;
    memset(r->buf + cas_off, 0, 8);
    fprintf(stderr, "kvsim-shim: rdma: %s port %d: latency (%ld x READ, WRITE, CAS)...\n", r->dev, r->port,
            o->rdma_iters);
    jw_int(w, "latency_bytes", small);
    jw_int(w, "latency_iters", o->rdma_iters);
    jw_bool(w, "write_inline", (int)small <= r->max_inline);
    if (lat(r, peer, IBV_WR_RDMA_READ, 0, small, o->rdma_iters, w, "read_rtt")) goto fail;
    if (lat(r, peer, IBV_WR_RDMA_WRITE, 0, small, o->rdma_iters, w, "write_rtt")) goto fail;
    if (peer->atomics && r->dattr.atomic_cap != IBV_ATOMIC_NONE) {
        if (lat(r, peer, IBV_WR_ATOMIC_CMP_AND_SWP, cas_off, 8, o->rdma_iters, w, "cas_rtt")) goto fail;
    } else {
        jw_str(w, "cas_skipped", "a side has no atomics (atomic_cap NONE)");
    }
    double rb = 0, rm = 0, wb = 0, wm = 0, sb = 0, sm = 0;
    fprintf(stderr, "kvsim-shim: rdma: bandwidth (%ld x %u B, %d in flight), message rate...\n", o->rdma_bw_msgs,
            big, o->rdma_bw_window);
    if (stream(r, peer, IBV_WR_RDMA_WRITE, big, o->rdma_bw_msgs, o->rdma_bw_window, &wb, &wm)) goto fail;
    if (stream(r, peer, IBV_WR_RDMA_READ, big, o->rdma_bw_msgs, o->rdma_bw_window, &rb, &rm)) goto fail;
    int rate_window = o->rdma_rate_window;
    if (stream(r, peer, IBV_WR_RDMA_READ, small, o->rdma_rate_msgs, rate_window, &sb, &sm)) goto fail;
    jw_int(w, "bw_bytes", big);
    jw_int(w, "bw_msgs", o->rdma_bw_msgs);
    jw_int(w, "bw_window", o->rdma_bw_window);
    jw_num(w, "write_bw_Bps", wb);
    jw_num(w, "read_bw_Bps", rb);
    jw_int(w, "rate_window", rate_window);
    jw_int(w, "read_depth", r->init_depth);
    jw_num(w, "small_read_rate_per_s", sm);
    jw_str(w, "status", "ok");
    return 0;
fail:
    jw_str(w, "status", "error");
    jw_str(w, "reason", "an RDMA operation failed (see stderr)");
    return -1;
}

void rdma_describe(rdma_ctx *r, jw_t *w) {
    jw_str(w, "device", r->dev);
    jw_int(w, "port", r->port);
    jw_str(w, "link_layer", r->pattr.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand");
    jw_int(w, "gid_index", r->gid_idx);
    jw_int(w, "active_mtu", 128 << r->pattr.active_mtu);
    jw_int(w, "active_speed", r->pattr.active_speed);
    jw_int(w, "active_width", r->pattr.active_width);
}

void rdma_close(rdma_ctx *r) {
    if (!r) return;
    if (r->qp) ibv_destroy_qp(r->qp);
    if (r->cq) ibv_destroy_cq(r->cq);
    if (r->mr) ibv_dereg_mr(r->mr);
    if (r->pd) ibv_dealloc_pd(r->pd);
    if (r->ctx) ibv_close_device(r->ctx);
    free(r->buf);
    free(r);
}

#else /* built without libibverbs */

struct rdma_ctx {
    int unused;
};

int rdma_list_devices(char *first, size_t n) {
    (void)first;
    (void)n;
    return 0;
}

rdma_ctx *rdma_open(const shim_opts *o, qp_info *info) {
    (void)o;
    memset(info, 0, sizeof *info);
    snprintf(info->reason, sizeof info->reason, "built without libibverbs");
    return NULL;
}

int rdma_connect(rdma_ctx *r, const qp_info *peer) {
    (void)r;
    (void)peer;
    return -1;
}

int rdma_bench(rdma_ctx *r, const qp_info *peer, const shim_opts *o, jw_t *w) {
    (void)r;
    (void)peer;
    (void)o;
    (void)w;
    return -1;
}

void rdma_describe(rdma_ctx *r, jw_t *w) {
    (void)r;
    (void)w;
}

void rdma_close(rdma_ctx *r) { (void)r; }

#endif
