/*  gbx-bench floor: what the machine itself costs per message, below any
    broker logic (docs/benchmarks.md, "Floors"). See bench_floor.h. */
#include "bench_floor.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "store.h"

#define S_GROUP        256 /* messages per group commit */
#define S_STORE_N      (64 * S_GROUP)
#define S_WIRE_N       40000
#define S_WIRE_WINDOW  512
#define S_REPLY_BYTES  200 /* a receipt, an ack with credit: the small direction */
#define S_ENTRY_BYTES  80  /* a queue entry */
#define S_DEDUPE_BYTES 250 /* a receipt, the dedupe record's value */
#define S_AUDIT_BYTES  200 /* an audit record */
#define S_HEADER_BYTES 400 /* envelope around the payload */

typedef struct {
    double per_s;  /* messages per second, wall clock */
    double cpu_us; /* process CPU per message, every thread (RocksDB's and
                      ZeroMQ's background threads too) */
} s_result_t;

static double s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------ store */

typedef struct {
    gbx_store_t *st;
    uint8_t *msg, *val;
    size_t msg_len;
    int full; /* 1: gbxd's records; 0: the contract's minimum */
    uint64_t next;
} s_store_t;

static gbx_err_t s_put_seq(gbx_batch_t *b, gbx_keyspace_t ks, uint64_t seq, const uint8_t *v,
                           size_t len)
{
    uint8_t k[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, k);
    return gbx_batch_put(b, ks, k, sizeof k, v, len);
}

static gbx_err_t s_queue_key(uint64_t seq, uint8_t *k, size_t *klen)
{
    return gbx_store_queue_key("gd.tax", seq, k, GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES,
                               klen);
}

/*  One group: accept N new messages (messages, queues, dedupe, audit; with
    FULL also the expiry and dedupe due keys), write, fsync. */
static gbx_err_t s_accept(s_store_t *s, uint64_t first, size_t n)
{
    gbx_batch_t *b = NULL;
    gbx_err_t rc = gbx_batch_new(s->st, &b);
    for (size_t i = 0; rc == GBX_OK && i < n; i++) {
        uint64_t seq = first + i;
        uint8_t k[GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES];
        size_t klen = 0;
        uint8_t dk[32];
        memcpy(dk, "hk.kiosk", 8);
        memcpy(dk + 8, &seq, sizeof seq);
        memset(dk + 16, 0x5a, 16);
        rc = s_put_seq(b, GBX_KS_MESSAGES, seq, s->msg, s->msg_len);
        if (rc == GBX_OK)
            rc = s_queue_key(seq, k, &klen);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_QUEUES, k, klen, s->val, S_ENTRY_BYTES);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_DEDUPE, dk, sizeof dk, s->val, S_DEDUPE_BYTES);
        if (rc == GBX_OK)
            rc = s_put_seq(b, GBX_KS_AUDIT, s->next++, s->val, S_AUDIT_BYTES);
        if (rc == GBX_OK && s->full) {
            uint8_t due[17];
            memset(due, 0, sizeof due);
            memcpy(due + 8, &seq, sizeof seq);
            due[16] = 'Q';
            rc = gbx_batch_put(b, GBX_KS_EXPIRY, due, sizeof due, "gd.tax", 6);
            due[16] = 'D';
            if (rc == GBX_OK)
                rc = gbx_batch_put(b, GBX_KS_EXPIRY, due, sizeof due, dk, sizeof dk);
        }
    }
    if (rc == GBX_OK)
        rc = gbx_store_write(s->st, &b);
    gbx_batch_destroy(&b);
    return rc == GBX_OK ? gbx_store_sync(s->st) : rc;
}

/*  One group: with FULL, first the MARK of each (the entry rewritten, an
    audit record; its own fsync, as a Deliver waits for it); then the ack:
    entry and message deleted, audit record (and the expiry due key). */
static gbx_err_t s_ack(s_store_t *s, uint64_t first, size_t n)
{
    gbx_batch_t *b = NULL;
    gbx_err_t rc = GBX_OK;
    if (s->full) {
        rc = gbx_batch_new(s->st, &b);
        for (size_t i = 0; rc == GBX_OK && i < n; i++) {
            uint8_t k[GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES];
            size_t klen = 0;
            uint8_t *v = NULL;
            size_t vlen = 0;
            rc = s_queue_key(first + i, k, &klen);
            if (rc == GBX_OK)
                rc = gbx_batch_get(b, GBX_KS_QUEUES, k, klen, &v, &vlen);
            free(v);
            if (rc == GBX_OK)
                rc = gbx_batch_put(b, GBX_KS_QUEUES, k, klen, s->val, S_ENTRY_BYTES);
            if (rc == GBX_OK)
                rc = s_put_seq(b, GBX_KS_AUDIT, s->next++, s->val, S_AUDIT_BYTES);
        }
        if (rc == GBX_OK)
            rc = gbx_store_write(s->st, &b);
        gbx_batch_destroy(&b);
        if (rc == GBX_OK)
            rc = gbx_store_sync(s->st);
    }
    if (rc == GBX_OK)
        rc = gbx_batch_new(s->st, &b);
    for (size_t i = 0; rc == GBX_OK && i < n; i++) {
        uint64_t seq = first + i;
        uint8_t k[GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES];
        size_t klen = 0;
        rc = s_queue_key(seq, k, &klen);
        if (rc == GBX_OK && s->full) {
            uint8_t *v = NULL;
            size_t vlen = 0;
            rc = gbx_batch_get(b, GBX_KS_QUEUES, k, klen, &v, &vlen);
            free(v);
        }
        if (rc == GBX_OK)
            rc = gbx_batch_delete(b, GBX_KS_QUEUES, k, klen);
        if (rc == GBX_OK) {
            uint8_t mk[GBX_STORE_SEQ_KEY_BYTES];
            gbx_store_seq_key(seq, mk);
            rc = gbx_batch_delete(b, GBX_KS_MESSAGES, mk, sizeof mk);
        }
        if (rc == GBX_OK)
            rc = s_put_seq(b, GBX_KS_AUDIT, s->next++, s->val, S_AUDIT_BYTES);
        if (rc == GBX_OK && s->full) {
            uint8_t due[17];
            memset(due, 0, sizeof due);
            memcpy(due + 8, &seq, sizeof seq);
            due[16] = 'Q';
            rc = gbx_batch_delete(b, GBX_KS_EXPIRY, due, sizeof due);
        }
    }
    if (rc == GBX_OK)
        rc = gbx_store_write(s->st, &b);
    gbx_batch_destroy(&b);
    return rc == GBX_OK ? gbx_store_sync(s->st) : rc;
}

static int s_store_run(size_t size, int full, s_result_t *out)
{
    char dir[] = "/tmp/gbx-floor-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    s_store_t s = {.full = full, .next = 1u << 30};
    gbx_store_opts_t o;
    gbx_store_opts_init(&o);
    int ok = gbx_store_open(dir, &o, &s.st) == GBX_OK;
    s.msg_len = size + S_HEADER_BYTES;
    s.msg = malloc(s.msg_len);
    s.val = malloc(S_DEDUPE_BYTES);
    ok = ok && s.msg && s.val;
    if (ok) {
        randombytes_buf(s.msg, s.msg_len);
        randombytes_buf(s.val, S_DEDUPE_BYTES);
    }
    double t0 = s_clock(CLOCK_MONOTONIC), c0 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
    /* steady state: a group accepted, the one before it acked */
    for (uint64_t g = 0; ok && g <= S_STORE_N / S_GROUP; g++) {
        if (g < S_STORE_N / S_GROUP)
            ok = s_accept(&s, 1 + g * S_GROUP, S_GROUP) == GBX_OK;
        if (ok && g > 0)
            ok = s_ack(&s, 1 + (g - 1) * S_GROUP, S_GROUP) == GBX_OK;
    }
    double t = s_clock(CLOCK_MONOTONIC) - t0, c = s_clock(CLOCK_PROCESS_CPUTIME_ID) - c0;
    gbx_store_destroy(&s.st);
    free(s.msg);
    free(s.val);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        ok = 0;
    out->per_s = S_STORE_N / t;
    out->cpu_us = c * 1e6 / S_STORE_N;
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------- transport */

typedef struct {
    void *ctx;
    char endpoint[128];
    uint8_t server_pub[41], server_sec[41];
    int curve;
    int ready;
    pthread_mutex_t mx;
    pthread_cond_t cv;
} s_wire_t;

/*  The broker's side: a ROUTER answering every message with a small one. */
static void *s_server(void *arg)
{
    s_wire_t *w = arg;
    void *r = zmq_socket(w->ctx, ZMQ_ROUTER);
    int one = 1, hwm = 0;
    if (w->curve) {
        zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, w->server_sec, 40);
    }
    zmq_setsockopt(r, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof hwm);
    int rc = zmq_bind(r, "tcp://127.0.0.1:*");
    size_t len = sizeof w->endpoint;
    if (rc == 0)
        zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, w->endpoint, &len);
    pthread_mutex_lock(&w->mx);
    w->ready = rc == 0 ? 1 : -1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mx);
    uint8_t reply[S_REPLY_BYTES];
    memset(reply, 0x42, sizeof reply);
    for (size_t i = 0; rc == 0 && i < S_WIRE_N; i++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r, 0) < 0 || zmq_msg_recv(&body, r, 0) < 0 ||
            zmq_msg_send(&id, r, ZMQ_SNDMORE) < 0 || zmq_send(r, reply, sizeof reply, 0) < 0)
            rc = -1;
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    zmq_close(r);
    return NULL;
}

/*  The adapter's side: SIZE-byte messages, at most S_WIRE_WINDOW
    unanswered. Its own context, as if another process. */
static int s_wire_run(size_t size, int curve, s_result_t *out)
{
    s_wire_t w = {.curve = curve};
    pthread_mutex_init(&w.mx, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.ctx = zmq_ctx_new();
    void *cctx = zmq_ctx_new();
    uint8_t cpub[41], csec[41];
    zmq_curve_keypair((char *)w.server_pub, (char *)w.server_sec);
    zmq_curve_keypair((char *)cpub, (char *)csec);
    double t0 = s_clock(CLOCK_MONOTONIC), c0 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
    pthread_t th;
    if (pthread_create(&th, NULL, s_server, &w) != 0)
        return -1;
    pthread_mutex_lock(&w.mx);
    while (!w.ready)
        pthread_cond_wait(&w.cv, &w.mx);
    pthread_mutex_unlock(&w.mx);
    int ok = w.ready == 1;
    void *d = zmq_socket(cctx, ZMQ_DEALER);
    int hwm = 0;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (curve) {
        zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, w.server_pub, 40);
        zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cpub, 40);
        zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, csec, 40);
    }
    ok = ok && zmq_connect(d, w.endpoint) == 0;
    uint8_t *msg = malloc(size);
    ok = ok && msg;
    if (ok)
        randombytes_buf(msg, size);
    uint8_t buf[S_REPLY_BYTES];
    size_t sent = 0, got = 0;
    while (ok && got < S_WIRE_N) {
        while (sent < S_WIRE_N && sent - got < S_WIRE_WINDOW)
            if (zmq_send(d, msg, size, 0) < 0)
                ok = 0;
            else
                sent++;
        if (ok && zmq_recv(d, buf, sizeof buf, 0) < 0)
            ok = 0;
        else
            got++;
    }
    pthread_join(th, NULL);
    double t = s_clock(CLOCK_MONOTONIC) - t0, c = s_clock(CLOCK_PROCESS_CPUTIME_ID) - c0;
    int linger = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(d);
    zmq_ctx_term(cctx);
    zmq_ctx_term(w.ctx);
    free(msg);
    pthread_mutex_destroy(&w.mx);
    pthread_cond_destroy(&w.cv);
    out->per_s = S_WIRE_N / t;
    out->cpu_us = c * 1e6 / S_WIRE_N;
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------- all */

typedef int (*s_run_fn)(size_t size, int flag, s_result_t *out);

static int s_report(const char *what, s_run_fn fn, size_t size, int flag, int runs, s_result_t *med)
{
    double per_s[64], cpu[64];
    for (int i = 0; i < runs; i++) {
        s_result_t r;
        if (fn(size, flag, &r) != 0) {
            fprintf(stderr, "gbx-bench floor: %s failed\n", what);
            return -1;
        }
        per_s[i] = r.per_s;
        cpu[i] = r.cpu_us;
    }
    med->per_s = s_median(per_s, runs);
    med->cpu_us = s_median(cpu, runs);
    printf("  %-58s %9.0f msgs/s %7.1f us CPU/msg\n", what, med->per_s, med->cpu_us);
    return 0;
}

int gbx_bench_floor(int runs, size_t size)
{
    if (runs < 1 || runs > 64 || sodium_init() < 0)
        return 2;
    printf("gbx-bench floor: %zu-byte payloads, median of %d runs; CPU = the whole process\n\n",
           size, runs);
    s_result_t min, full, plain, curve;
    printf("store (the real gbx_store, RocksDB, one fsync per group of %d), one thread:\n",
           S_GROUP);
    if (s_report("accept + ack, the contract's minimum (7 ops, 2 fsyncs/group)", s_store_run, size,
                 0, runs, &min) != 0 ||
        s_report("accept + MARK + ack, gbxd's records (15 ops, 3 fsyncs/group)", s_store_run, size,
                 1, runs, &full) != 0)
        return 1;
    printf("\ntransport (ZeroMQ DEALER -> ROUTER over tcp loopback, %d-byte answer each):\n",
           S_REPLY_BYTES);
    if (s_report("one exchange, plain TCP", s_wire_run, size, 0, runs, &plain) != 0 ||
        s_report("one exchange, CurveZMQ", s_wire_run, size, 1, runs, &curve) != 0)
        return 1;
    printf("\nfloor per delivered message (store minimum + 2 CurveZMQ exchanges: submit/receipt,"
           "\ndeliver/ack): %.1f us of CPU = %.0f msgs/s on 2 cores, before any verification,"
           "\npolicy, routing or client work\n",
           min.cpu_us + 2 * curve.cpu_us, 2e6 / (min.cpu_us + 2 * curve.cpu_us));
    printf("floor-median key=value: store_min_us=%.2f store_gbxd_us=%.2f wire_plain_us=%.2f "
           "wire_curve_us=%.2f floor_us=%.2f floor_per_s_2cores=%.0f\n",
           min.cpu_us, full.cpu_us, plain.cpu_us, curve.cpu_us, min.cpu_us + 2 * curve.cpu_us,
           2e6 / (min.cpu_us + 2 * curve.cpu_us));
    return 0;
}
