/*  test_crash_live: exactly-once across kill -9 (proto/spec/5-adapter.md
    7.6, 6.2, 6.3) with the real gbxd binary (GBXD_PATH), real RocksDB,
    ZeroMQ over TCP loopback and CurveZMQ, and libgbx on both sides.

    Processes (all children die with the test: PR_SET_PDEATHSIG, and are
    SIGKILLed in teardown):
      gbxd       --home DIR (the demo config, listen.adapter moved to a free
                 port); SIGKILLed K times at seeded random moments spread
                 over the run and restarted on the same DIR and port
      producer   hk.kiosk -> gd.tax, N messages, up to S_WINDOW submits
                 outstanding. Message id = run nonce (8) || be32 try || be32
                 seq; plaintext "gbx-crash run=.. seq=.. try=..". It logs
                 each submit (S), and each Accepted (A) / Rejected (R)
                 answer; a group of answers is written and fdatasync'ed
                 BEFORE it counts them. A Rejected seq is sent again under
                 the next try (a new id: a rejected id is not stored).
                 Unanswered submits are resent by libgbx after reconnection.
      consumer   gd.tax; for each delivery it checks the plaintext against
                 the id, writes a D record and an A (ack) record, fdatasyncs,
                 then gbx_client_ack. Redeliveries that libgbx recognises
                 (its dedupe memory; GBX-CLI-DUPLICATE in its log) are
                 recorded as H (and libgbx acks them again).
    N = 100000 and K = 4; GBX_TEST_QUICK=1: N = 1000, K = 1.

    Accounting (by the parent, from the logs; the GBX-CRASH-ACCOUNT line):
      lost        ids accepted (receipt logged by the producer) and never
                  delivered                                       MUST be 0
      corrupt     deliveries whose plaintext does not match the id, ids
                  of another run, ids never submitted, refused
                  deliveries (GBX-CLI-DELIVERY-REFUSED)           MUST be 0
      dup_violation  a delivery of an id after an ack of a delivery from
                  the same broker instance (no kill between): the node had
                  the ack and redelivered anyway                  MUST be 0
      dup_allowed a delivery after an ack of a delivery from an earlier
                  instance: that ack may have died with the broker (7.6)
      dup_suspect of dup_allowed, those whose ack was logged more than
                  S_SUSPECT_MS before the kill (an ack that old should have
                  been durable; reported, not asserted: the client cannot
                  see durability)
      redelivered_unacked  deliveries again before any ack (at least once)
      unexpected  delivered ids whose receipt the producer never logged
                  (stored, receipt lost in a crash; normally 0 because the
                  producer resends until it gets the duplicate receipt)
    "Instance" of an event: the broker generation that was listening when
    the consumer read it (kill at t_k, next one listening at t_up; events
    in [t_k, t_up] belong to the killed one). All times CLOCK_MONOTONIC.

    Nothing half-written: after the consumer has had S_QUIET_MS without a
    delivery, it stops, gbxd gets SIGTERM (exit 0 required) and the test
    opens the store (broker/store.h): no queue entry, no dead letter, no
    message body left, and one dedupe record per accepted id.

    Bounded: S_DEADLINE_S (full) / S_DEADLINE_QUICK_S for the whole run;
    on failure the logs' tails are printed and DIR is kept.
    Environment: GBX_TEST_SEED (kill moments), GBX_TEST_QUICK, GBX_CRASH_N
    and GBX_CRASH_KILLS (override N and K), GBX_CRASH_KEEP=1 (keep DIR). */
#include "tu_cmocka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "registry.h"
#include "store.h"
#include "gbx/client.h"

#ifndef GBXD_PATH
#error "GBXD_PATH must be defined (tests/broker/CMakeLists.txt)"
#endif

#define S_FROM             "hk.kiosk"
#define S_TO               "gd.tax"
#define S_WINDOW           256
#define S_MAX_TRY          4
#define S_MAX_KILLS        16
#define S_DEADLINE_S       480
#define S_DEADLINE_QUICK_S 300 /* under valgrind the producer and consumer are too */
#define S_QUIET_MS         2000
#define S_SUSPECT_MS       1000
#define S_BATCH            256

/*  One log record, producer and consumer alike. */
typedef struct {
    char type;    /* S A R (producer), D H A X (consumer) */
    uint8_t flag; /* A: duplicate; D: 1 when the plaintext is wrong */
    uint16_t pad;
    uint32_t attempt; /* D: the delivery's attempt; R: the reason */
    uint64_t t_ns;    /* CLOCK_MONOTONIC */
    uint64_t delivery_id;
    uint8_t id[GBX_MSG_ID_BYTES];
} s_rec_t;

/*  Shared with the children (MAP_SHARED). */
typedef struct {
    volatile uint64_t accepted;      /* producer: distinct seqs accepted, durable in its log */
    volatile uint64_t rejected;      /* producer: Rejected answers */
    volatile uint64_t unique;        /* consumer: distinct seqs delivered */
    volatile uint64_t last_event_ns; /* consumer: last delivery or duplicate */
    volatile int stop;               /* parent -> consumer */
    char error[2][256];              /* producer, consumer */
} s_shm_t;

typedef struct {
    char *dir, *home, *cfg, *data;
    char *prod_log, *cons_log, *prod_txt, *cons_txt, *gbxd_txt;
    int port;
    char endpoint[64];
    pid_t gbxd, prod, cons;
    gbx_config_t *config;
    gbx_identity_t *kiosk, *tax;
    gbx_pubid_t node;
    uint8_t nonce[8];
    uint32_t n;
    int kills_wanted;
    s_shm_t *shm;
    /* kill k ended instance k at kill_ns[k]; instance k+1 listened at up_ns[k] */
    uint64_t kill_ns[S_MAX_KILLS], up_ns[S_MAX_KILLS];
    int kills;
    int ok; /* keep DIR unless the test passed */
} s_cr_t;

/* ------------------------------------------------------------------ misc */

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void s_make_id(const s_cr_t *cr, uint32_t seq, uint32_t try, uint8_t id[GBX_MSG_ID_BYTES])
{
    memcpy(id, cr->nonce, 8);
    s_put_be32(id + 8, try);
    s_put_be32(id + 12, seq);
}

/*  The key (seq * S_MAX_TRY + try) of an id of this run, or -1. */
static long s_key(const s_cr_t *cr, const uint8_t id[GBX_MSG_ID_BYTES])
{
    if (memcmp(id, cr->nonce, 8) != 0)
        return -1;
    uint32_t try = s_be32(id + 8), seq = s_be32(id + 12);
    if (try >= S_MAX_TRY || seq >= cr->n)
        return -1;
    return (long)seq * S_MAX_TRY + (long)try;
}

static int s_plain(const s_cr_t *cr, uint32_t seq, uint32_t try, char *out, size_t cap)
{
    return snprintf(out, cap, "gbx-crash run=%02x%02x%02x%02x%02x%02x%02x%02x seq=%u try=%u",
                    cr->nonce[0], cr->nonce[1], cr->nonce[2], cr->nonce[3], cr->nonce[4],
                    cr->nonce[5], cr->nonce[6], cr->nonce[7], seq, try);
}

static void s_set_port(s_cr_t *cr)
{
    size_t len = 0;
    char *text = (char *)tu_read_file(cr->cfg, &len);
    assert_non_null(text);
    const char *old = "adapter: tcp://127.0.0.1:7400\n  metrics: 127.0.0.1:9400";
    char *at = strstr(text, old);
    assert_non_null(at);
    char *out = NULL;
    assert_true(asprintf(&out, "%.*sadapter: %s\n  metrics: off%s", (int)(at - text), text,
                         cr->endpoint, at + strlen(old)) > 0);
    assert_int_equal(tu_write_file(cr->cfg, out, strlen(out), 0600), 0);
    free(out);
    free(text);
}

/*  In a child right after fork: die with the parent. */
static void s_child_init(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(99);
}

static void s_reap(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/*  Prints the last MAX bytes of PATH to stderr. */
static void s_tail(const char *what, const char *path, size_t max)
{
    size_t len = 0;
    char *text = path ? (char *)tu_read_file(path, &len) : NULL;
    if (!text)
        return;
    size_t from = len > max ? len - max : 0;
    fprintf(stderr, "# ---- %s (%s), last %zu bytes\n%.*s\n", what, path, len - from,
            (int)(len - from), text + from);
    free(text);
}

static void s_fail_dump(s_cr_t *cr)
{
    s_tail("gbxd stderr", cr->gbxd_txt, 4000);
    s_tail("producer log", cr->prod_txt, 2000);
    s_tail("consumer log", cr->cons_txt, 2000);
    if (cr->shm->error[0][0])
        fprintf(stderr, "# producer error: %s\n", cr->shm->error[0]);
    if (cr->shm->error[1][0])
        fprintf(stderr, "# consumer error: %s\n", cr->shm->error[1]);
}

/* ------------------------------------------------------------------ gbxd */

/*  Starts gbxd --home and waits (at most 10 s) until it listens; 0 or -1. */
static int s_gbxd_start(s_cr_t *cr)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        s_child_init(parent);
        int devnull = open("/dev/null", O_WRONLY);
        int log = open(cr->gbxd_txt, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        if (log >= 0)
            dup2(log, STDERR_FILENO);
        execl(GBXD_PATH, "gbxd", "--home", cr->home, "-v", (char *)NULL);
        _exit(127);
    }
    cr->gbxd = pid;
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            cr->gbxd = 0;
            fprintf(stderr, "# gbxd exited during start-up (status %d)\n", status);
            return -1;
        }
        if (tu_port_open(cr->port))
            return 0;
        tu_sleep_ms(10);
    }
    fprintf(stderr, "# gbxd did not listen on %s within 10 s\n", cr->endpoint);
    return -1;
}

/* ------------------------------------------------------------- children */

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    s_cr_t *cr = arg;
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(cr->config), id);
    return a ? &a->pub : NULL;
}

typedef struct {
    int fd;     /* the text log */
    int rec_fd; /* consumer: the record log (H records) */
    s_cr_t *cr;
    uint64_t refused; /* consumer: GBX-CLI-DELIVERY-REFUSED */
} s_logctx_t;

static int s_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void s_log_line(void *arg, const char *line)
{
    s_logctx_t *lc = arg;
    char buf[600];
    int n =
        snprintf(buf, sizeof buf, "%llu %s\n", (unsigned long long)(s_mono_ns() / 1000000u), line);
    if (n > 0)
        (void)s_write_all(lc->fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    if (lc->rec_fd < 0)
        return;
    if (strncmp(line, "GBX-CLI-DELIVERY-REFUSED", 24) == 0) {
        lc->refused++;
        s_rec_t r = {.type = 'X', .t_ns = s_mono_ns()};
        (void)s_write_all(lc->rec_fd, &r, sizeof r);
        return;
    }
    if (strncmp(line, "GBX-CLI-DUPLICATE", 17) != 0)
        return;
    /* "GBX-CLI-DUPLICATE delivery=%llu from=%s id=%s action=ack|drop" */
    const char *d = strstr(line, "delivery="), *id = strstr(line, " id=");
    if (!d || !id)
        return;
    s_rec_t r = {.type = 'H', .t_ns = s_mono_ns()};
    r.delivery_id = strtoull(d + 9, NULL, 10);
    r.flag = strstr(line, "action=drop") != NULL;
    for (size_t i = 0; i < GBX_MSG_ID_BYTES; i++) {
        unsigned v = 0;
        if (sscanf(id + 4 + 2 * i, "%2x", &v) != 1)
            return;
        r.id[i] = (uint8_t)v;
    }
    (void)s_write_all(lc->rec_fd, &r, sizeof r);
    __atomic_store_n(&lc->cr->shm->last_event_ns, s_mono_ns(), __ATOMIC_SEQ_CST);
}

static void s_child_fail(s_cr_t *cr, int who, const char *what, gbx_err_t rc)
{
    snprintf(cr->shm->error[who], sizeof cr->shm->error[who], "%s: %s (errno %d)", what,
             gbx_err_name(rc), errno);
    _exit(3);
}

static gbx_client_t *s_client(s_cr_t *cr, const gbx_identity_t *me, s_logctx_t *lc)
{
    gbx_client_opts_t o = {.endpoint = cr->endpoint,
                           .identity = me,
                           .node = &cr->node,
                           .peer = s_peer,
                           .peer_arg = cr,
                           .credit_messages = 256,
                           .submit_timeout_ms = 10000,
                           .heartbeat_ivl_ms = 2000,
                           .log = s_log_line,
                           .log_arg = lc};
    gbx_client_t *c = NULL;
    if (gbx_client_new(&o, &c) != GBX_OK)
        return NULL;
    return c;
}

static void s_producer(s_cr_t *cr, uint64_t deadline_ns)
{
    s_logctx_t lc = {
        .fd = open(cr->prod_txt, O_WRONLY | O_CREAT | O_APPEND, 0600), .rec_fd = -1, .cr = cr};
    int fd = open(cr->prod_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || lc.fd < 0)
        s_child_fail(cr, 0, "open log", GBX_E_IO);
    gbx_client_t *c = s_client(cr, cr->kiosk, &lc);
    if (!c)
        s_child_fail(cr, 0, "gbx_client_new", GBX_E_IO);
    uint8_t *done = calloc(cr->n, 1);
    uint8_t *tries = calloc(cr->n, 1);
    uint32_t *retry = calloc(cr->n, sizeof *retry);
    s_rec_t *recs = calloc(2 * S_BATCH + S_WINDOW, sizeof *recs);
    if (!done || !tries || !retry || !recs)
        s_child_fail(cr, 0, "calloc", GBX_E_NOMEM);
    size_t nretry = 0;
    uint32_t next = 0;
    uint64_t accepted = 0;
    gbx_header_t h;
    gbx_header_init(&h);
    h.to_agency = (char *)S_TO;
    h.service_code = (char *)"GD-SI-PAYCERT";
    h.service_version = 1;
    h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h.data_class = GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL;
    h.hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h.purpose_code = (char *)"SOCIAL-INSURANCE";
    while (accepted < cr->n) {
        if (s_mono_ns() > deadline_ns)
            s_child_fail(cr, 0, "deadline", GBX_E_IO);
        size_t nrec = 0;
        /* keep the window full */
        while (gbx_client_pending(c) < S_WINDOW && (nretry > 0 || next < cr->n)) {
            uint32_t seq = nretry > 0 ? retry[--nretry] : next++;
            uint32_t try = tries[seq];
            if (try >= S_MAX_TRY)
                s_child_fail(cr, 0, "too many rejections of one seq", GBX_E_STATE);
            uint8_t id[GBX_MSG_ID_BYTES];
            char plain[128];
            s_make_id(cr, seq, try, id);
            int len = s_plain(cr, seq, try, plain, sizeof plain);
            h.message_id.data = id;
            h.message_id.len = GBX_MSG_ID_BYTES;
            gbx_msg_t *m = NULL;
            gbx_err_t rc = gbx_client_msg(c, &h, plain, (size_t)len, &m);
            if (rc != GBX_OK)
                s_child_fail(cr, 0, "gbx_client_msg", rc);
            s_rec_t *r = &recs[nrec++];
            *r = (s_rec_t){.type = 'S', .t_ns = s_mono_ns()};
            memcpy(r->id, id, sizeof id);
            rc = gbx_client_submit(c, &m, NULL);
            if (rc != GBX_OK)
                s_child_fail(cr, 0, "gbx_client_submit", rc);
            if (nrec >= S_BATCH) {
                if (s_write_all(fd, recs, nrec * sizeof *recs) != 0)
                    s_child_fail(cr, 0, "write", GBX_E_IO);
                nrec = 0;
            }
        }
        /* a group of answers */
        size_t first_answer = nrec, answers = 0;
        gbx_event_t ev;
        int wait = 100;
        while (answers < S_BATCH && gbx_client_poll(c, wait, &ev) == GBX_OK) {
            wait = 0;
            if (ev.kind == GBX_EV_ACCEPTED || ev.kind == GBX_EV_REJECTED) {
                s_rec_t *r = &recs[nrec++];
                answers++;
                *r = (s_rec_t){.type = ev.kind == GBX_EV_ACCEPTED ? 'A' : 'R',
                               .flag = (uint8_t)ev.duplicate,
                               .attempt = (uint32_t)ev.reason,
                               .t_ns = s_mono_ns()};
                memcpy(r->id, ev.message_id, GBX_MSG_ID_BYTES);
            }
            gbx_event_clear(&ev);
        }
        if (nrec > 0 && s_write_all(fd, recs, nrec * sizeof *recs) != 0)
            s_child_fail(cr, 0, "write", GBX_E_IO);
        if (answers > 0 && fdatasync(fd) != 0)
            s_child_fail(cr, 0, "fdatasync", GBX_E_IO);
        /* durable: now they count */
        for (size_t i = first_answer; i < nrec; i++) {
            s_rec_t *r = &recs[i];
            long key = s_key(cr, r->id);
            if (key < 0)
                s_child_fail(cr, 0, "answer for an unknown id", GBX_E_STATE);
            uint32_t seq = (uint32_t)(key / S_MAX_TRY), try = (uint32_t)(key % S_MAX_TRY);
            if (r->type == 'A' && !done[seq]) {
                done[seq] = 1;
                accepted++;
            } else if (r->type == 'R') {
                __atomic_add_fetch(&cr->shm->rejected, 1, __ATOMIC_SEQ_CST);
                if (!done[seq] && tries[seq] == try) {
                    tries[seq]++;
                    retry[nretry++] = seq;
                }
            }
        }
        __atomic_store_n(&cr->shm->accepted, accepted, __ATOMIC_SEQ_CST);
    }
    gbx_client_destroy(&c);
    fdatasync(fd);
    close(fd);
    close(lc.fd);
    _exit(0);
}

static void s_consumer(s_cr_t *cr, uint64_t deadline_ns)
{
    int fd = open(cr->cons_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    s_logctx_t lc = {
        .fd = open(cr->cons_txt, O_WRONLY | O_CREAT | O_APPEND, 0600), .rec_fd = fd, .cr = cr};
    if (fd < 0 || lc.fd < 0)
        s_child_fail(cr, 1, "open log", GBX_E_IO);
    gbx_client_t *c = s_client(cr, cr->tax, &lc);
    if (!c)
        s_child_fail(cr, 1, "gbx_client_new", GBX_E_IO);
    uint8_t *seen = calloc(cr->n, 1);
    s_rec_t *recs = calloc(2 * S_BATCH, sizeof *recs);
    uint64_t *dids = calloc(S_BATCH, sizeof *dids);
    if (!seen || !recs || !dids)
        s_child_fail(cr, 1, "calloc", GBX_E_NOMEM);
    uint64_t unique = 0;
    while (!__atomic_load_n(&cr->shm->stop, __ATOMIC_SEQ_CST)) {
        if (s_mono_ns() > deadline_ns)
            s_child_fail(cr, 1, "deadline", GBX_E_IO);
        size_t nd = 0, nrec = 0;
        gbx_event_t ev;
        int wait = 100;
        while (nd < S_BATCH && gbx_client_poll(c, wait, &ev) == GBX_OK) {
            wait = 0;
            if (ev.kind == GBX_EV_DELIVERY) {
                const gbx_delivery_t *d = ev.delivery;
                s_rec_t *r = &recs[nrec++];
                *r = (s_rec_t){.type = 'D', .attempt = d->attempt, .t_ns = s_mono_ns()};
                r->delivery_id = d->delivery_id;
                memcpy(r->id, d->header->message_id.data, GBX_MSG_ID_BYTES);
                long key = s_key(cr, r->id);
                char want[128];
                int wl = key < 0 ? -1
                                 : s_plain(cr, (uint32_t)(key / S_MAX_TRY),
                                           (uint32_t)(key % S_MAX_TRY), want, sizeof want);
                if (key < 0 || strcmp(d->header->from_agency, S_FROM) != 0 ||
                    d->len != (size_t)wl || memcmp(d->data, want, (size_t)wl) != 0)
                    r->flag = 1;
                else if (!seen[key / S_MAX_TRY]) {
                    seen[key / S_MAX_TRY] = 1;
                    unique++;
                }
                dids[nd++] = d->delivery_id;
            }
            gbx_event_clear(&ev);
        }
        /* H records went to fd from the log callback meanwhile */
        if (nd > 0) {
            /* the ack records, written and synced BEFORE the acks leave */
            size_t ndel = nrec;
            for (size_t i = 0; i < ndel; i++) {
                s_rec_t *a = &recs[nrec++];
                *a = recs[i];
                a->type = 'A';
                a->t_ns = s_mono_ns();
            }
            if (s_write_all(fd, recs, nrec * sizeof *recs) != 0)
                s_child_fail(cr, 1, "write", GBX_E_IO);
        }
        if (fdatasync(fd) != 0)
            s_child_fail(cr, 1, "fdatasync", GBX_E_IO);
        for (size_t i = 0; i < nd; i++) {
            gbx_err_t rc = gbx_client_ack(c, dids[i]);
            if (rc != GBX_OK)
                s_child_fail(cr, 1, "gbx_client_ack", rc);
        }
        if (nd > 0)
            (void)gbx_client_flush(c); /* a dead broker: sent on the next poll */
        if (nd > 0 || lc.refused > 0)
            __atomic_store_n(&cr->shm->last_event_ns, s_mono_ns(), __ATOMIC_SEQ_CST);
        __atomic_store_n(&cr->shm->unique, unique, __ATOMIC_SEQ_CST);
    }
    gbx_client_destroy(&c); /* sends the acks not yet sent */
    fdatasync(fd);
    close(fd);
    close(lc.fd);
    _exit(0);
}

static pid_t s_fork_child(s_cr_t *cr, int consumer, uint64_t deadline_ns)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        s_child_init(parent);
        signal(SIGPIPE, SIG_IGN);
        if (consumer)
            s_consumer(cr, deadline_ns);
        else
            s_producer(cr, deadline_ns);
        _exit(4);
    }
    return pid;
}

/* ------------------------------------------------------------- accounting */

typedef struct {
    uint64_t submitted, accepted, delivered, deliveries, lost, corrupt, unexpected;
    uint64_t dup_allowed, dup_suspect, dup_violation, redelivered_unacked, hidden, refused;
    uint64_t rejected;
} s_acct_t;

typedef struct {
    uint8_t sent, accepted;
    uint32_t deliveries;
    int32_t last_d_inst; /* instance of the last surfaced delivery, -1 none */
    int32_t acked_inst;  /* highest instance of an acked delivery, -1 none */
    uint64_t acked_ns;   /* when that ack was logged */
} s_key_t;

/*  The broker generation that was listening at T. */
static int s_instance(const s_cr_t *cr, uint64_t t)
{
    int inst = 0;
    for (int k = 0; k < cr->kills; k++)
        if (t >= cr->up_ns[k])
            inst = k + 1;
    return inst;
}

static s_rec_t *s_load(const char *path, size_t *n)
{
    size_t len = 0;
    uint8_t *buf = tu_read_file(path, &len);
    *n = buf ? len / sizeof(s_rec_t) : 0;
    return (s_rec_t *)buf;
}

static void s_account(s_cr_t *cr, s_acct_t *ac)
{
    memset(ac, 0, sizeof *ac);
    size_t nkeys = (size_t)cr->n * S_MAX_TRY;
    s_key_t *k = calloc(nkeys, sizeof *k);
    assert_non_null(k);
    for (size_t i = 0; i < nkeys; i++)
        k[i].last_d_inst = k[i].acked_inst = -1;
    size_t np = 0, nc = 0;
    s_rec_t *p = s_load(cr->prod_log, &np), *c = s_load(cr->cons_log, &nc);
    assert_non_null(p);
    assert_non_null(c);
    for (size_t i = 0; i < np; i++) {
        long key = s_key(cr, p[i].id);
        assert_true(key >= 0);
        if (p[i].type == 'S')
            k[key].sent = 1;
        else if (p[i].type == 'A')
            k[key].accepted = 1;
        else if (p[i].type == 'R')
            ac->rejected++;
    }
    int reported = 0;
    for (size_t i = 0; i < nc; i++) {
        const s_rec_t *r = &c[i];
        if (r->type == 'X') {
            ac->refused++;
            continue;
        }
        long key = s_key(cr, r->id);
        if (key < 0) {
            ac->corrupt++;
            continue;
        }
        s_key_t *e = &k[key];
        int inst = s_instance(cr, r->t_ns);
        if (r->type == 'A') {
            if (e->last_d_inst > e->acked_inst) {
                e->acked_inst = e->last_d_inst;
                e->acked_ns = r->t_ns;
            }
            continue;
        }
        /* D or H: a delivery (H: one libgbx recognised and acked or dropped) */
        ac->deliveries++;
        if (r->type == 'H')
            ac->hidden++;
        if (r->type == 'D' && r->flag)
            ac->corrupt++;
        if (!e->sent)
            ac->corrupt++; /* an id of this run never submitted */
        if (e->acked_inst >= 0) {
            if (e->acked_inst >= inst) {
                ac->dup_violation++;
                if (reported++ < 10)
                    fprintf(stderr,
                            "# DUP-VIOLATION seq=%ld try=%ld delivery_id=%llu attempt=%u "
                            "t=%.3f s: acked at %.3f s (instance %d), redelivered by instance "
                            "%d\n",
                            key / S_MAX_TRY, key % S_MAX_TRY, (unsigned long long)r->delivery_id,
                            r->attempt, (double)r->t_ns / 1e9, (double)e->acked_ns / 1e9,
                            e->acked_inst, inst);
            } else {
                ac->dup_allowed++;
                if (e->acked_ns + (uint64_t)S_SUSPECT_MS * 1000000u < cr->kill_ns[e->acked_inst])
                    ac->dup_suspect++;
            }
        } else if (e->deliveries > 0)
            ac->redelivered_unacked++;
        e->deliveries++;
        if (r->type == 'D')
            e->last_d_inst = inst;
        else if (r->flag == 0 && inst > e->acked_inst) { /* action=ack: libgbx acked it */
            e->acked_inst = inst;
            e->acked_ns = r->t_ns;
        }
    }
    for (size_t i = 0; i < nkeys; i++) {
        s_key_t *e = &k[i];
        ac->submitted += e->sent;
        ac->accepted += e->accepted;
        ac->delivered += e->deliveries > 0;
        if (e->accepted && e->deliveries == 0) {
            if (ac->lost++ < 10)
                fprintf(stderr, "# LOST seq=%zu try=%zu\n", i / S_MAX_TRY, i % S_MAX_TRY);
        }
        if (!e->accepted && e->deliveries > 0 && e->sent)
            ac->unexpected++;
    }
    free(p);
    free(c);
    free(k);
}

/*  Counts the keys of KS (with PREFIX) in the store of the stopped broker;
    for messages also checks each value's framing. */
static uint64_t s_count(gbx_store_t *st, gbx_keyspace_t ks, const char *prefix, size_t plen,
                        uint64_t *bad)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, ks, prefix, plen, &it), GBX_OK);
    uint64_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        n++;
        size_t vlen = 0;
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        if (ks == GBX_KS_MESSAGES && (vlen < 4 || s_be32(v) > vlen - 4))
            (*bad)++;
    }
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/* ------------------------------------------------------------------ test */

static int s_setup(void **state)
{
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
    s_cr_t *cr = calloc(1, sizeof *cr);
    assert_non_null(cr);
    *state = cr;
    cr->shm =
        mmap(NULL, sizeof *cr->shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(cr->shm != MAP_FAILED);
    memset(cr->shm, 0, sizeof *cr->shm);
    cr->dir = tu_tmpdir();
    assert_non_null(cr->dir);
    assert_true(asprintf(&cr->home, "%s/home", cr->dir) > 0);
    assert_true(asprintf(&cr->data, "%s/home/data", cr->dir) > 0);
    assert_true(asprintf(&cr->prod_log, "%s/producer.rec", cr->dir) > 0);
    assert_true(asprintf(&cr->cons_log, "%s/consumer.rec", cr->dir) > 0);
    assert_true(asprintf(&cr->prod_txt, "%s/producer.log", cr->dir) > 0);
    assert_true(asprintf(&cr->cons_txt, "%s/consumer.log", cr->dir) > 0);
    assert_true(asprintf(&cr->gbxd_txt, "%s/gbxd.log", cr->dir) > 0);
    assert_rc(gbx_config_write_default(cr->home, &cr->cfg), GBX_OK);
    assert_int_equal(tu_policy_open(cr->home), 0); /* delivery mechanics, not policy */
    cr->port = tu_free_port();
    assert_true(cr->port > 0);
    snprintf(cr->endpoint, sizeof cr->endpoint, "tcp://127.0.0.1:%d", cr->port);
    s_set_port(cr);
    char err[256], *p = NULL;
    assert_rc(gbx_config_load(cr->cfg, &cr->config, err, sizeof err), GBX_OK);
    assert_true(asprintf(&p, "%s/keys/%s.secret", cr->home, S_FROM) > 0);
    assert_rc(gbx_identity_load(p, &cr->kiosk), GBX_OK);
    free(p);
    assert_true(asprintf(&p, "%s/keys/%s.secret", cr->home, S_TO) > 0);
    assert_rc(gbx_identity_load(p, &cr->tax), GBX_OK);
    free(p);
    assert_true(asprintf(&p, "%s/keys/demo-1.pub", cr->home) > 0);
    assert_rc(gbx_pubid_load(p, &cr->node), GBX_OK);
    free(p);
    randombytes_buf(cr->nonce, sizeof cr->nonce);
    return 0;
}

static int s_teardown(void **state)
{
    s_cr_t *cr = *state;
    if (!cr)
        return 0;
    s_reap(&cr->prod);
    s_reap(&cr->cons);
    s_reap(&cr->gbxd);
    gbx_identity_destroy(&cr->kiosk);
    gbx_identity_destroy(&cr->tax);
    gbx_config_destroy(&cr->config);
    const char *keep = getenv("GBX_CRASH_KEEP");
    if (cr->dir && !cr->ok)
        fprintf(stderr, "# kept %s\n", cr->dir);
    if (cr->dir && cr->ok && !(keep && *keep && *keep != '0'))
        tu_rmtree_path(cr->dir);
    free(cr->dir);
    free(cr->home);
    free(cr->data);
    free(cr->cfg);
    free(cr->prod_log);
    free(cr->cons_log);
    free(cr->prod_txt);
    free(cr->cons_txt);
    free(cr->gbxd_txt);
    munmap(cr->shm, sizeof *cr->shm);
    free(cr);
    return 0;
}

/*  Fails the test (after dumping logs) unless COND. */
#define s_check(cr, cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            s_fail_dump(cr);                                                                       \
            fail_msg(__VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

/*  1 when PID has exited (sets *status, clears *pid). */
static int s_exited(pid_t *pid, int *status)
{
    if (*pid > 0 && waitpid(*pid, status, WNOHANG) == *pid) {
        *pid = 0;
        return 1;
    }
    return 0;
}

static void test_crash(void **state)
{
    s_cr_t *cr = *state;
    int quick = tu_quick();
    const char *env_n = getenv("GBX_CRASH_N"), *env_k = getenv("GBX_CRASH_KILLS");
    cr->n = env_n && *env_n ? (uint32_t)strtoul(env_n, NULL, 10) : quick ? 1000 : 100000;
    cr->kills_wanted = env_k && *env_k ? atoi(env_k) : quick ? 1 : 4;
    assert_true(cr->n > 0 && cr->kills_wanted >= 0 && cr->kills_wanted <= S_MAX_KILLS);
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("crash kill moments", (uint64_t)time(NULL) ^ (uint64_t)getpid()));
    /* kill k when the producer has this many accepted, within the k-th
       K-th of 5%..90% of N, then after a further 0..30 ms */
    uint64_t thr[S_MAX_KILLS];
    for (int k = 0; k < cr->kills_wanted; k++) {
        double lo = 0.05 + 0.85 * k / cr->kills_wanted, span = 0.85 / cr->kills_wanted;
        thr[k] = (uint64_t)(cr->n * (lo + span * (double)tu_rng_below(&rng, 1000) / 1000.0));
    }
    uint64_t t0 = s_mono_ns();
    uint64_t deadline = t0 + (uint64_t)(quick ? S_DEADLINE_QUICK_S : S_DEADLINE_S) * 1000000000u;

    s_check(cr, s_gbxd_start(cr) == 0, "gbxd did not start");
    cr->cons = s_fork_child(cr, 1, deadline);
    cr->prod = s_fork_child(cr, 0, deadline);

    uint64_t kill_at = 0, quiet_since = 0, done_ns = 0;
    int st = 0;
    for (;;) {
        uint64_t now = s_mono_ns();
        s_check(cr, now < deadline,
                "deadline: accepted %llu/%u, consumer has %llu distinct, %d kills",
                (unsigned long long)cr->shm->accepted, cr->n, (unsigned long long)cr->shm->unique,
                cr->kills);
        if (s_exited(&cr->prod, &st))
            s_check(cr, WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer failed (status %d)", st);
        if (s_exited(&cr->cons, &st))
            s_check(cr, 0, "consumer exited early (status %d)", st);
        if (s_exited(&cr->gbxd, &st))
            s_check(cr, 0, "gbxd died on its own (status %d): a crash", st);
        uint64_t acc = __atomic_load_n(&cr->shm->accepted, __ATOMIC_SEQ_CST);
        uint64_t uniq = __atomic_load_n(&cr->shm->unique, __ATOMIC_SEQ_CST);
        if (cr->kills < cr->kills_wanted && !kill_at && acc >= thr[cr->kills])
            kill_at = now + tu_rng_below(&rng, 31) * 1000000u;
        if (kill_at && now >= kill_at) {
            cr->kill_ns[cr->kills] = s_mono_ns();
            kill(cr->gbxd, SIGKILL);
            waitpid(cr->gbxd, NULL, 0);
            cr->gbxd = 0;
            tu_sleep_ms((long)tu_rng_below(&rng, 101));
            s_check(cr, s_gbxd_start(cr) == 0, "gbxd did not restart after kill %d", cr->kills + 1);
            cr->up_ns[cr->kills] = s_mono_ns();
            fprintf(stderr,
                    "# kill %d at %.3f s (accepted %llu, delivered %llu), up again after "
                    "%.0f ms\n",
                    cr->kills + 1, (double)(cr->kill_ns[cr->kills] - t0) / 1e9,
                    (unsigned long long)acc, (unsigned long long)uniq,
                    (double)(cr->up_ns[cr->kills] - cr->kill_ns[cr->kills]) / 1e6);
            cr->kills++;
            kill_at = 0;
        }
        if (cr->kills == cr->kills_wanted && cr->prod == 0 && uniq >= cr->n) {
            if (!done_ns)
                done_ns = now;
            uint64_t last = __atomic_load_n(&cr->shm->last_event_ns, __ATOMIC_SEQ_CST);
            quiet_since = last > done_ns ? last : done_ns;
            if (now - quiet_since >= (uint64_t)S_QUIET_MS * 1000000u)
                break;
        }
        tu_sleep_ms(5);
    }
    double elapsed = (double)(done_ns - t0) / 1e9;

    /* the consumer stops (sends its last acks); then a clean stop of gbxd */
    __atomic_store_n(&cr->shm->stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 1000 && cr->cons > 0; i++) {
        if (s_exited(&cr->cons, &st))
            s_check(cr, WIFEXITED(st) && WEXITSTATUS(st) == 0, "consumer failed (status %d)", st);
        else
            tu_sleep_ms(10);
    }
    s_check(cr, cr->cons == 0, "consumer did not stop within 10 s");
    tu_sleep_ms(200);
    kill(cr->gbxd, SIGTERM);
    for (int i = 0; i < 1000 && cr->gbxd > 0; i++)
        if (!s_exited(&cr->gbxd, &st))
            tu_sleep_ms(10);
    s_check(cr, cr->gbxd == 0, "gbxd did not exit within 10 s of SIGTERM");
    s_check(cr, WIFEXITED(st) && WEXITSTATUS(st) == 0, "gbxd exit status %d after SIGTERM", st);

    s_acct_t ac;
    s_account(cr, &ac);

    /* nothing half-written, nothing left behind */
    gbx_store_t *store = NULL;
    assert_rc(gbx_store_open(cr->data, NULL, &store), GBX_OK);
    uint64_t bad = 0;
    uint64_t queued = s_count(store, GBX_KS_QUEUES, S_TO, strlen(S_TO) + 1, &bad);
    uint64_t queued_all = s_count(store, GBX_KS_QUEUES, NULL, 0, &bad);
    uint64_t dlq = s_count(store, GBX_KS_DLQ, NULL, 0, &bad);
    uint64_t bodies = s_count(store, GBX_KS_MESSAGES, NULL, 0, &bad);
    uint64_t dedupe = s_count(store, GBX_KS_DEDUPE, NULL, 0, &bad);
    gbx_store_destroy(&store);

    printf("GBX-CRASH-ACCOUNT n=%u accepted=%llu submitted=%llu rejected=%llu delivered=%llu "
           "deliveries=%llu lost=%llu dup_after_ack_allowed=%llu dup_suspect=%llu "
           "dup_violations=%llu redelivered_unacked=%llu hidden_by_libgbx=%llu unexpected=%llu "
           "corrupt=%llu refused=%llu kills=%d elapsed=%.1fs msgs_per_s=%.0f store_queued=%llu "
           "store_dlq=%llu store_bodies=%llu store_dedupe=%llu store_bad=%llu\n",
           cr->n, (unsigned long long)ac.accepted, (unsigned long long)ac.submitted,
           (unsigned long long)ac.rejected, (unsigned long long)ac.delivered,
           (unsigned long long)ac.deliveries, (unsigned long long)ac.lost,
           (unsigned long long)ac.dup_allowed, (unsigned long long)ac.dup_suspect,
           (unsigned long long)ac.dup_violation, (unsigned long long)ac.redelivered_unacked,
           (unsigned long long)ac.hidden, (unsigned long long)ac.unexpected,
           (unsigned long long)ac.corrupt, (unsigned long long)ac.refused, cr->kills, elapsed,
           elapsed > 0 ? (double)ac.accepted / elapsed : 0.0, (unsigned long long)queued,
           (unsigned long long)dlq, (unsigned long long)bodies, (unsigned long long)dedupe,
           (unsigned long long)bad);
    fflush(stdout);

    s_check(cr, ac.accepted >= cr->n, "accepted %llu < %u", (unsigned long long)ac.accepted, cr->n);
    s_check(cr, ac.lost == 0, "%llu accepted messages lost", (unsigned long long)ac.lost);
    s_check(cr, ac.dup_violation == 0, "%llu deliveries after an ack to the same instance",
            (unsigned long long)ac.dup_violation);
    s_check(cr, ac.corrupt == 0 && ac.refused == 0, "%llu corrupt, %llu refused deliveries",
            (unsigned long long)ac.corrupt, (unsigned long long)ac.refused);
    s_check(cr, cr->kills == cr->kills_wanted, "%d kills, wanted %d", cr->kills, cr->kills_wanted);
    s_check(cr, queued == 0 && queued_all == 0 && dlq == 0 && bodies == 0 && bad == 0,
            "store not clean: %llu queued, %llu dead letters, %llu bodies, %llu bad",
            (unsigned long long)queued_all, (unsigned long long)dlq, (unsigned long long)bodies,
            (unsigned long long)bad);
    s_check(cr, dedupe == ac.accepted + ac.unexpected, "%llu dedupe records for %llu ids stored",
            (unsigned long long)dedupe, (unsigned long long)(ac.accepted + ac.unexpected));
    cr->ok = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
