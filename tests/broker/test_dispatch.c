/*  test_dispatch: the dispatcher's state machine (broker/dispatch.h;
    proto/spec/5-adapter.md sections 5, 7, 8, 9) without sockets, against a
    real RocksDB in a temporary directory and real signed, sealed messages.

    Fixture: registry with node hk-1 serving hk.cr (the destination) and
    gd.qh-amr (the sender); messages are tu_header_fixture (gd.qh-amr ->
    hk.cr, 1024-byte plaintext), admitted through the real stage 1
    (gbx_checker_run) and stage 2 (gbx_ingress_admit / seal / finish) as
    SUBMIT jobs, then reported with gbx_dispatch_accepted, as gbxd does.
    The writer is played synchronously by s_writer_round, exactly as
    broker/writer.c does it (one batch per group, one commit, rc / commit
    set, gbx_ingress_dequeued for ACK / EXPIRE / DEADLETTER) and every job
    goes back through gbx_dispatch_done. opts.send decodes part 1 with
    gbx_frame_decode_at(AT_ADAPTER), checks a Deliver's payload bytes and
    envelope against what was submitted, records the frame and frees OWNER;
    it can be told to return GBX_DISPATCH_GONE or GBX_DISPATCH_BUSY. The
    wall clock (expiry) is injected; timers run on CLOCK_MONOTONIC, so the
    cases use small real timeouts and poll gbx_dispatch_tick (S_WAIT, with
    a deadline). Sessions: r1, r2, ... of hk.cr; g1, g2 of gd.qh-amr.

    Cases (each checks the exact frames sent and the store):
      credit_then_deliver   no Deliver without credit; byte credit one short
                            of the payload: nothing; credit == payload size
                            (7.1: the payload only): exactly one Deliver
                            (attempt 1, id seq<<16|1, the submitted envelope
                            and payload bytes); message credit 1 = one message
      ack                   another agency's Ack is ignored; an unknown id is
                            ignored; an Ack from another session of hk.cr
                            (7.3) deletes entry, message and due key, depth 0;
                            no redelivery after the ack timeout
      foreign_ack           another agency acks the next 300 sequences before
                            they exist: nothing reaches the writer, and
                            hk.cr's next messages are delivered (an entry in
                            memory blocks its sequence from refills)
      ack_never_issued      Acks naming ids of an in-flight message that were
                            never issued (number 0, 7) are ignored (7.3): the
                            delivery stays in flight, no redelivery
      ack_timeout           redelivery after ACK_TIMEOUT + backoff (doubling):
                            attempts 1, 2, 3, new ids, store counts follow
      ack_earlier_id        after a redelivery, the first delivery's id acks
      dead_letter           after max_attempts: dlq entry, message kept, no
                            queue entry; Notice DEAD_LETTERED to the sender's
                            session; no more Deliver
      dead_letter_later     no session of the sender: notice kept, sent when
                            one opens, once
      session_timeout       a silent session closes; its delivery goes to the
                            other session with attempt 2
      session_closed_marking  the session closes while its MARK is at the
                            writer: no Deliver, UNMARK (stored attempts 0),
                            then attempt 1 on another session
      send_gone             send GONE on Deliver: session closed, UNMARK
                            (stored attempts 0, deliveries 1); next Deliver to
                            another session has the SAME attempt 1, id |2
      send_busy             send BUSY three times: session kept, attempts not
                            counted, then delivered with attempt 1, id |4
      ack_while_marking     an Ack (guessed id, then an earlier delivery's id
                            during a redelivery's MARK) wins: no Deliver, acked
      commit_fails          a MARK whose commit failed: nothing sent, the
                            store decides: delivered as id |1 afterwards
      expiry_sweep          past expires_at_ms, no credit: the sweep expires it
                            (EXPIRE job from the sweep), Notice EXPIRED; never
                            delivered to a later credit
      expiry_credit         credit after expiry: never delivered; expired by
                            the pump, one notice
      expiry_inflight       in flight past expiry, ack timeout: expired, not
                            redelivered (7.5)
      expiry_inflight_ack   in flight past expiry, Ack in time: acked (7.4)
      expiry_while_marking  expiry passes while the MARK is at the writer: no
                            Deliver may leave (7.2 "MUST NOT deliver")
      window                window 4, inflight_window 2, 20 queued: all 20
                            delivered once, in order; in_memory <= window +
                            inflight + pending at every step, <= 6 when idle
      inflight_window       inflight_window 3, two sessions, huge credit: at
                            most 3 outstanding per session; an Ack frees a
                            slot (credit is not restored, it was large)
      sessions_cap          70 sessions of hk.cr: 64 stay, the least recently
                            heard (with a delivery in flight) closes first and
                            its delivery returns; the newest gets it
      pause                 paused: silence ends no session; resumed: it does
      stop_and_drop         after stop no Credit starts a delivery;
                            gbx_dispatch_drop frees a pending MARK with no
                            callback and no store change
      ping                  Pong with the same tag and nonce; GONE on it closes
      notice_busy           send BUSY on a Notice: the notice is sent later on
                            the same session (as a Deliver would be) */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dispatch.h"
#include "gbx/frame.h"
#include "ingress.h"
#include "job.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "tb_fixture.h"

#define S_FROM    "gd.qh-amr"
#define S_TO      "hk.cr"
#define S_NODE    "hk-1"
#define S_DAY     (24ull * 3600 * 1000)
#define S_SKEW    120000ull
#define S_MAXPAY  4096u
#define S_MAXMSG  32
#define S_MAXSENT 2048
#define S_BIG     (1ull << 40)

/* ------------------------------------------------------------- fixtures */

static uint64_t s_now; /* the wall clock of ingress, writer and dispatcher */

static uint64_t s_clock(void *arg)
{
    (void)arg;
    return s_now;
}

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t s_wait_ms(void)
{
    return tu_quick() ? 60000 : 10000;
}

typedef struct {
    gbx_envelope_t *env;
    uint8_t *frame;
    size_t frame_len;
    uint8_t *sealed;
    size_t sealed_len;
    uint8_t msg_id[GBX_MSG_ID_BYTES];
    uint64_t expires_at_ms;
    uint64_t seq; /* after admission */
} s_msg_t;

/*  One frame opts.send was given. */
typedef struct {
    char rid[32];
    gbx_frame_kind_t kind;
    int rc; /* what send returned */
    uint64_t mono;
    uint64_t tag;
    uint64_t delivery_id; /* Deliver */
    uint32_t attempt;
    uint8_t msg_id[GBX_MSG_ID_BYTES]; /* Deliver, Notice */
    gbx_err_t reason;                 /* Notice */
    uint64_t nonce;                   /* Pong */
    int acked;                        /* by s_ack_outstanding */
} s_sent_t;

typedef struct {
    char *dir;
    gbx_store_t *store;
    gbx_registry_t *reg;
    gbx_identity_t *node;
    gbx_identity_t *sender;
    gbx_ingress_opts_t io;
    gbx_ingress_t *ing;
    gbx_checker_t *chk;
    gbx_dispatch_opts_t o;
    gbx_dispatch_t *d;
    s_msg_t msgs[S_MAXMSG];
    size_t nmsgs;
    s_sent_t sent[S_MAXSENT];
    size_t nsent;
    gbx_job_t **jobs; /* at the "writer", FIFO */
    size_t njobs, capjobs;
    size_t by_kind[GBX_JOB_FORGET + 1]; /* dispatcher's jobs given, per kind */
    size_t sweep_jobs;
    /* send failures: FAIL_N frames of FAIL_KIND (to FAIL_RID if set) get
       FAIL_RC; FAIL_N < 0: all of them */
    gbx_frame_kind_t fail_kind;
    int fail_rc;
    int fail_n;
    char fail_rid[32];
    int fail_commit; /* the next writer round's commit fails */
    /* sessions that speak on every s_round */
    const char *alive_rid[4];
    const char *alive_agency[4];
    size_t nalive;
    /* window checks */
    int check_mem;
    uint64_t max_idle_mem;
} s_fix_t;

static void s_check_mem(s_fix_t *fx)
{
    if (!fx->check_mem || !fx->d)
        return;
    gbx_dispatch_stats_t st;
    gbx_dispatch_stats(fx->d, &st);
    size_t pending = gbx_dispatch_pending(fx->d);
    if (st.in_memory > fx->o.window + st.inflight + pending)
        fail_msg("in_memory %llu > window %zu + inflight %llu + pending %zu",
                 (unsigned long long)st.in_memory, fx->o.window, (unsigned long long)st.inflight,
                 pending);
    if (pending == 0 && st.in_memory > fx->max_idle_mem)
        fx->max_idle_mem = st.in_memory;
}

static const s_msg_t *s_msg_by_id(const s_fix_t *fx, const uint8_t *id)
{
    for (size_t i = 0; i < fx->nmsgs; i++)
        if (memcmp(fx->msgs[i].msg_id, id, GBX_MSG_ID_BYTES) == 0)
            return &fx->msgs[i];
    return NULL;
}

static int s_send(void *arg, const uint8_t *rid, size_t rid_len, const uint8_t *part1, size_t len1,
                  const uint8_t *payload, size_t plen, void *owner)
{
    s_fix_t *fx = arg;
    assert_true(fx->nsent < S_MAXSENT);
    s_sent_t *r = &fx->sent[fx->nsent++];
    memset(r, 0, sizeof *r);
    assert_true(rid_len > 0 && rid_len < sizeof r->rid);
    memcpy(r->rid, rid, rid_len);
    r->mono = s_ms();
    gbx_part_t parts[3] = {{(const uint8_t *)GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN},
                           {part1, len1},
                           {payload, plen}};
    gbx_frame_t *f = NULL;
    assert_rc(gbx_frame_decode_at(parts, plen ? 3 : 2, GBX_FRAME_AT_ADAPTER, &f, NULL), GBX_OK);
    const Gbx__V1__Frame *m = gbx_frame_message(f);
    r->kind = gbx_frame_kind(f);
    r->tag = m->tag;
    switch (r->kind) {
    case GBX_FRAME_DELIVER: {
        r->delivery_id = m->deliver->delivery_id;
        r->attempt = m->deliver->attempt;
        const gbx_envelope_t *env = gbx_frame_envelope(f);
        const gbx_header_t *h = gbx_envelope_header(env);
        assert_int_equal(h->message_id.len, GBX_MSG_ID_BYTES);
        memcpy(r->msg_id, h->message_id.data, GBX_MSG_ID_BYTES);
        const s_msg_t *sm = s_msg_by_id(fx, r->msg_id);
        assert_non_null(sm);
        /* the envelope as submitted (header bytes), the payload byte for byte */
        size_t hl1 = 0, hl2 = 0;
        const uint8_t *h1 = gbx_envelope_header_bytes(env, &hl1);
        const uint8_t *h2 = gbx_envelope_header_bytes(sm->env, &hl2);
        assert_int_equal(hl1, hl2);
        assert_memory_equal(h1, h2, hl1);
        assert_int_equal(plen, sm->sealed_len);
        assert_memory_equal(payload, sm->sealed, plen);
        assert_rc(gbx_frame_check_payload(f), GBX_OK);
        assert_int_equal(gbx_delivery_seq(r->delivery_id), sm->seq);
        break;
    }
    case GBX_FRAME_NOTICE:
        assert_int_equal(m->notice->message_id.len, GBX_MSG_ID_BYTES);
        memcpy(r->msg_id, m->notice->message_id.data, GBX_MSG_ID_BYTES);
        r->reason = (gbx_err_t)m->notice->reason;
        assert_int_equal(plen, 0);
        break;
    case GBX_FRAME_PONG:
        r->nonce = m->pong->nonce;
        assert_int_equal(plen, 0);
        break;
    default:
        fail_msg("the dispatcher sent a frame of kind %d", (int)r->kind);
    }
    gbx_frame_destroy(&f);
    free(owner); /* ours, also on failure */
    int rc = 0;
    if (fx->fail_n != 0 && r->kind == fx->fail_kind &&
        (!fx->fail_rid[0] || strcmp(fx->fail_rid, r->rid) == 0)) {
        rc = fx->fail_rc;
        if (fx->fail_n > 0)
            fx->fail_n--;
    }
    r->rc = rc;
    return rc;
}

static void s_push_job(s_fix_t *fx, gbx_job_t *job)
{
    if (fx->njobs == fx->capjobs) {
        size_t cap = fx->capjobs ? 2 * fx->capjobs : 64;
        gbx_job_t **j = realloc(fx->jobs, cap * sizeof *j);
        assert_non_null(j);
        fx->jobs = j;
        fx->capjobs = cap;
    }
    fx->jobs[fx->njobs++] = job;
}

static void s_job(void *arg, gbx_job_t *job)
{
    s_fix_t *fx = arg;
    assert_non_null(job);
    assert_true(job->kind >= GBX_JOB_MARK && job->kind <= GBX_JOB_FORGET);
    fx->by_kind[job->kind]++;
    if (job->sweep)
        fx->sweep_jobs++;
    s_push_job(fx, job);
}

static void s_fix_ingress(s_fix_t *fx)
{
    gbx_ingress_opts_init(&fx->io);
    fx->io.store = fx->store;
    fx->io.registry = fx->reg;
    fx->io.node = fx->node;
    fx->io.node_id = S_NODE;
    fx->io.max_payload_bytes = S_MAXPAY;
    fx->io.max_ttl_ms = 7 * S_DAY;
    fx->io.clock_skew_ms = S_SKEW;
    fx->io.clock = s_clock;
    assert_rc(gbx_ingress_new(&fx->io, &fx->ing), GBX_OK);
    assert_rc(gbx_checker_new(&fx->io, &fx->chk), GBX_OK);
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tmpdir();
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    fx->reg = tb_registry();
    assert_non_null(fx->reg);
    fx->node = tu_identity_fixed(S_NODE, NULL);
    fx->sender = tu_identity_fixed(S_FROM, NULL);
    tu_header_t t;
    tu_header_fixture(&t, 0);
    s_now = t.h.created_at_ms + 1000;
    s_fix_ingress(fx);
    /* dispatcher defaults; cases change them before s_disp */
    fx->o.store = fx->store;
    fx->o.registry = fx->reg;
    fx->o.node_id = S_NODE;
    fx->o.ack_timeout_ms = 30000;
    fx->o.session_timeout_ms = 60000;
    fx->o.max_attempts = 5;
    fx->o.backoff_min_ms = 20;
    fx->o.backoff_max_ms = 200;
    fx->o.send = s_send;
    fx->o.job = s_job;
    fx->o.arg = fx;
    fx->o.clock = s_clock;
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    /* jobs still at the "writer": dropped, no callbacks */
    for (size_t i = 0; i < fx->njobs; i++) {
        if (fx->jobs[i]->kind == GBX_JOB_SUBMIT || !fx->d)
            gbx_job_free(fx->jobs[i]);
        else
            gbx_dispatch_drop(fx->d, fx->jobs[i]);
    }
    free(fx->jobs);
    gbx_dispatch_destroy(&fx->d);
    gbx_checker_destroy(&fx->chk);
    gbx_ingress_destroy(&fx->ing);
    gbx_store_destroy(&fx->store);
    gbx_registry_destroy(&fx->reg);
    gbx_identity_destroy(&fx->node);
    gbx_identity_destroy(&fx->sender);
    for (size_t i = 0; i < fx->nmsgs; i++) {
        gbx_envelope_destroy(&fx->msgs[i].env);
        free(fx->msgs[i].frame);
        free(fx->msgs[i].sealed);
    }
    tu_rmtree(&fx->dir);
    free(fx);
    return 0;
}

static void s_disp(s_fix_t *fx)
{
    assert_rc(gbx_dispatch_new(&fx->o, &fx->d), GBX_OK);
}

/* --------------------------------------------------------------- writer */

/*  A SUBMIT came back: it must be a new Accepted; remember its sequence. */
static void s_submit_back(s_fix_t *fx, gbx_job_t *job)
{
    assert_rc(job->commit, GBX_OK);
    assert_non_null(job->reply);
    Gbx__V1__Frame *ans = gbx__v1__frame__unpack(NULL, job->reply_len, job->reply);
    assert_non_null(ans);
    assert_int_equal(ans->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    gbx__v1__frame__free_unpacked(ans, NULL);
    assert_rc(job->sub.result.reason, GBX_OK);
    assert_false(job->sub.result.duplicate);
    assert_string_equal(job->sub.result.dest, S_TO);
    s_msg_t *m = (s_msg_t *)s_msg_by_id(fx, job->sub.msg_id);
    assert_non_null(m);
    m->seq = job->sub.result.seq;
    assert_true(m->seq > 0);
}

/*  One group: every job waiting, one batch, one commit, each job handed
    back (gbx_dispatch_accepted for SUBMIT, gbx_dispatch_done else). Jobs
    the dispatcher makes meanwhile wait for the next round. */
static size_t s_writer_round(s_fix_t *fx)
{
    size_t n = fx->njobs;
    if (n == 0)
        return 0;
    gbx_job_t **jobs = malloc(n * sizeof *jobs);
    assert_non_null(jobs);
    memcpy(jobs, fx->jobs, n * sizeof *jobs);
    fx->njobs = 0;
    int fail = fx->fail_commit;
    fx->fail_commit = 0;

    uint64_t now = s_now;
    gbx_batch_t *batch = NULL;
    gbx_err_t commit = gbx_batch_new(fx->store, &batch);
    for (size_t i = 0; commit == GBX_OK && i < n; i++) {
        if (jobs[i]->kind == GBX_JOB_SUBMIT)
            jobs[i]->rc = gbx_ingress_admit(fx->ing, &jobs[i]->sub, batch);
        else
            gbx_job_apply(jobs[i], fx->store, batch, now);
    }
    if (commit == GBX_OK)
        commit = gbx_ingress_seal(fx->ing, batch);
    if (commit == GBX_OK)
        commit = fail ? GBX_E_STORE_FAILED : gbx_store_commit(fx->store, &batch);
    gbx_batch_destroy(&batch);
    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = jobs[i];
        job->commit = commit;
        if (job->kind == GBX_JOB_SUBMIT)
            gbx_ingress_finish(fx->ing, &job->sub, commit, &job->reply, &job->reply_len);
        else if (commit == GBX_OK && job->rc == GBX_OK &&
                 (job->kind == GBX_JOB_ACK || job->kind == GBX_JOB_EXPIRE ||
                  job->kind == GBX_JOB_DEADLETTER))
            gbx_ingress_dequeued(fx->ing, job->dest, job->entry.size);
    }
    gbx_ingress_group_end(fx->ing);
    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = jobs[i];
        if (job->kind == GBX_JOB_SUBMIT) {
            s_submit_back(fx, job);
            gbx_dispatch_accepted(fx->d, job);
            gbx_job_free(job);
        } else {
            gbx_dispatch_done(fx->d, job);
        }
        s_check_mem(fx);
    }
    free(jobs);
    return n;
}

/*  Runs the writer until no job waits. */
static void s_settle(s_fix_t *fx)
{
    for (int i = 0; fx->njobs > 0; i++) {
        assert_true(i < 10000);
        s_writer_round(fx);
    }
    if (fx->d)
        assert_int_equal(gbx_dispatch_pending(fx->d), 0);
}

/* ------------------------------------------------------------- messages */

/*  Signs and seals the fixture message VARIANT and admits it (SUBMIT job, writer,
   gbx_dispatch_accepted). Returns its index in fx->msgs. */
static size_t s_submit(s_fix_t *fx, uint32_t variant)
{
    assert_true(fx->nmsgs < S_MAXMSG);
    size_t idx = fx->nmsgs++;
    s_msg_t *m = &fx->msgs[idx];
    memset(m, 0, sizeof *m);
    tu_header_t t;
    tu_header_fixture(&t, variant);
    gbx_pubid_t to = tb_pub(S_TO);
    size_t plen = (size_t)t.h.payload_length;
    uint8_t *plain = malloc(plen);
    assert_non_null(plain);
    memset(plain, 0x40 + (int)(variant & 0x3f), plen);
    gbx_binding_t b = {t.message_id, t.h.from_agency, t.h.to_agency};
    assert_rc(
        gbx_payload_seal(to.box_pk, &b, plain, plen, &m->sealed, &m->sealed_len, t.payload_hash),
        GBX_OK);
    free(plain);
    memcpy(m->msg_id, t.message_id, GBX_MSG_ID_BYTES);
    m->expires_at_ms = t.h.expires_at_ms;
    assert_rc(gbx_envelope_sign(fx->sender, &t.h, &m->env), GBX_OK);
    assert_rc(gbx_frame_submit(variant, m->env, &m->frame, &m->frame_len), GBX_OK);

    gbx_job_t *job = gbx_job_new(GBX_JOB_SUBMIT);
    assert_non_null(job);
    gbx_part_t parts[3] = {{(const uint8_t *)GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN},
                           {m->frame, m->frame_len},
                           {m->sealed, m->sealed_len}};
    assert_rc(gbx_checker_run(fx->chk, S_FROM, parts, 3, &job->sub), GBX_OK);
    s_push_job(fx, job);
    s_settle(fx);
    assert_true(m->seq > 0);
    return idx;
}

/* ------------------------------------------------------------- sessions */

static void s_seen(s_fix_t *fx, const char *rid, const char *agency)
{
    gbx_dispatch_seen(fx->d, (const uint8_t *)rid, strlen(rid), agency);
}

/*  A frame from session RID of AGENCY: part 1 P1 (freed here). */
static void s_in(s_fix_t *fx, const char *rid, const char *agency, uint8_t *p1, size_t l1)
{
    gbx_part_t parts[2] = {{(const uint8_t *)GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN}, {p1, l1}};
    gbx_frame_t *f = NULL;
    assert_rc(gbx_frame_decode_at(parts, 2, GBX_FRAME_AT_NODE, &f, NULL), GBX_OK);
    free(p1);
    s_seen(fx, rid, agency);
    gbx_dispatch_frame(fx->d, (const uint8_t *)rid, strlen(rid), agency, f);
    gbx_frame_destroy(&f);
    s_check_mem(fx);
}

static void s_credit(s_fix_t *fx, const char *rid, const char *agency, uint32_t msgs,
                     uint64_t bytes)
{
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    assert_rc(gbx_frame_credit(msgs, bytes, &p1, &l1), GBX_OK);
    s_in(fx, rid, agency, p1, l1);
}

static void s_ack(s_fix_t *fx, const char *rid, const char *agency, const uint64_t *ids, size_t n)
{
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    assert_rc(gbx_frame_ack(ids, n, &p1, &l1), GBX_OK);
    s_in(fx, rid, agency, p1, l1);
}

static void s_ack1(s_fix_t *fx, const char *rid, const char *agency, uint64_t id)
{
    s_ack(fx, rid, agency, &id, 1);
}

static void s_alive(s_fix_t *fx, const char *rid, const char *agency)
{
    assert_true(fx->nalive < 4);
    fx->alive_rid[fx->nalive] = rid;
    fx->alive_agency[fx->nalive++] = agency;
}

/*  One turn of gbxd's loop: the live sessions speak, timers, the writer. */
static void s_round(s_fix_t *fx)
{
    for (size_t i = 0; i < fx->nalive; i++)
        s_seen(fx, fx->alive_rid[i], fx->alive_agency[i]);
    gbx_dispatch_tick(fx->d);
    s_check_mem(fx);
    s_settle(fx);
}

/*  Turns for MS milliseconds. */
static void s_idle(s_fix_t *fx, unsigned ms)
{
    uint64_t end = s_ms() + ms;
    do {
        s_round(fx);
        s_sleep_ms(2);
    } while (s_ms() < end);
}

#define S_WAIT(fx, cond)                                                                           \
    do {                                                                                           \
        uint64_t end_ = s_ms() + s_wait_ms();                                                      \
        for (;;) {                                                                                 \
            s_round(fx);                                                                           \
            if (cond)                                                                              \
                break;                                                                             \
            if (s_ms() > end_)                                                                     \
                fail_msg("timed out waiting for %s", #cond);                                       \
            s_sleep_ms(2);                                                                         \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------- observations */

/*  Frames of KIND sent with rc 0 (to RID if not NULL). */
static size_t s_nsent(const s_fix_t *fx, gbx_frame_kind_t kind, const char *rid)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->nsent; i++)
        if (fx->sent[i].kind == kind && fx->sent[i].rc == 0 &&
            (!rid || strcmp(rid, fx->sent[i].rid) == 0))
            n++;
    return n;
}

/*  Frames of KIND send was asked for, whatever it returned. */
static size_t s_ntried(const s_fix_t *fx, gbx_frame_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->nsent; i++)
        if (fx->sent[i].kind == kind)
            n++;
    return n;
}

/*  The I-th frame of KIND sent with rc 0. */
static s_sent_t *s_sent_at(s_fix_t *fx, gbx_frame_kind_t kind, size_t i)
{
    for (size_t k = 0; k < fx->nsent; k++)
        if (fx->sent[k].kind == kind && fx->sent[k].rc == 0 && i-- == 0)
            return &fx->sent[k];
    fail_msg("no frame %zu of kind %d", i, (int)kind);
    return NULL;
}

static void s_expect_deliver(const s_sent_t *r, const char *rid, const s_msg_t *m,
                             uint32_t deliveries, uint32_t attempt)
{
    assert_int_equal(r->kind, GBX_FRAME_DELIVER);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->rid, rid);
    assert_int_equal(r->tag, 0);
    assert_int_equal(r->delivery_id, gbx_delivery_id(m->seq, deliveries));
    assert_int_equal(r->attempt, attempt);
    assert_memory_equal(r->msg_id, m->msg_id, GBX_MSG_ID_BYTES);
}

static void s_expect_notice(const s_sent_t *r, const char *rid, const s_msg_t *m, gbx_err_t reason)
{
    assert_int_equal(r->kind, GBX_FRAME_NOTICE);
    assert_string_equal(r->rid, rid);
    assert_int_equal(r->tag, 0);
    assert_memory_equal(r->msg_id, m->msg_id, GBX_MSG_ID_BYTES);
    assert_rc(r->reason, reason);
}

static gbx_dispatch_stats_t s_stats(const s_fix_t *fx)
{
    gbx_dispatch_stats_t st;
    gbx_dispatch_stats(fx->d, &st);
    return st;
}

/*  The entry of M in keyspace KS (queues or dlq): 1 and *Q, or 0. */
static int s_entry(s_fix_t *fx, gbx_keyspace_t ks, const s_msg_t *m, gbx_qentry_t *q)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    assert_rc(gbx_store_queue_key(S_TO, m->seq, key, sizeof key, &klen), GBX_OK);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(fx->store, ks, key, klen, &v, &vlen), GBX_OK);
    if (!v)
        return 0;
    gbx_qentry_t tmp;
    assert_rc(gbx_qentry_decode(v, vlen, q ? q : &tmp), GBX_OK);
    free(v);
    return 1;
}

/*  M is queued (or in flight) with these counts in the store. */
static void s_expect_stored(s_fix_t *fx, const s_msg_t *m, uint32_t deliveries, uint32_t attempts)
{
    gbx_qentry_t q;
    assert_true(s_entry(fx, GBX_KS_QUEUES, m, &q));
    assert_int_equal(q.deliveries, deliveries);
    assert_int_equal(q.attempts, attempts);
    assert_int_equal(q.payload, m->sealed_len);
    assert_string_equal(q.from, S_FROM);
}

static int s_has_message(s_fix_t *fx, const s_msg_t *m)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(m->seq, key);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(fx->store, GBX_KS_MESSAGES, key, sizeof key, &v, &vlen), GBX_OK);
    free(v);
    return v != NULL;
}

/*  Due keys of KIND in the expiry keyspace. */
static size_t s_count_due(s_fix_t *fx, gbx_due_kind_t kind)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_EXPIRY, NULL, 0, &it), GBX_OK);
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t kl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        uint64_t at = 0, seq = 0;
        gbx_due_kind_t kd;
        assert_rc(gbx_due_parse(k, kl, &at, &seq, &kd), GBX_OK);
        if (kd == kind)
            n++;
    }
    gbx_store_iter_destroy(&it);
    return n;
}

/*  M is gone for good (acked or expired): no entry, no message, no due key;
    the ingress no longer counts it. */
static void s_expect_gone(s_fix_t *fx, const s_msg_t *m)
{
    assert_false(s_entry(fx, GBX_KS_QUEUES, m, NULL));
    assert_false(s_entry(fx, GBX_KS_DLQ, m, NULL));
    assert_false(s_has_message(fx, m));
}

static uint64_t s_depth(s_fix_t *fx)
{
    uint64_t n = 99;
    gbx_ingress_queue_depth(fx->ing, S_TO, &n, NULL);
    return n;
}

/* ---------------------------------------------------------------- cases */

static void test_credit_then_deliver(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    const s_msg_t *b = &fx->msgs[s_submit(fx, 2)];
    uint64_t plen = a->sealed_len;
    assert_int_equal(b->sealed_len, plen);
    assert_true(plen > 1024); /* the payload, not the plaintext */

    /* a session without credit gets nothing */
    s_seen(fx, "r1", S_TO);
    s_idle(fx, 40);
    assert_int_equal(fx->nsent, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK], 0);
    /* one byte short of the payload: nothing */
    s_credit(fx, "r1", S_TO, 1, plen - 1);
    s_idle(fx, 40);
    assert_int_equal(fx->nsent, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK], 0);
    s_expect_stored(fx, a, 0, 0);
    /* exactly the payload's size (the Frame does not count): one Deliver */
    s_credit(fx, "r1", S_TO, 0, 1);
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    s_expect_stored(fx, a, 1, 1);
    s_expect_stored(fx, b, 0, 0);
    /* credit used up (message and bytes): b waits */
    s_idle(fx, 40);
    assert_int_equal(fx->nsent, 1);
    s_credit(fx, "r1", S_TO, 1, plen - 1);
    s_idle(fx, 40);
    assert_int_equal(fx->nsent, 1);
    s_credit(fx, "r1", S_TO, 0, 1);
    s_settle(fx);
    assert_int_equal(fx->nsent, 2);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 1), "r1", b, 1, 1);
    s_expect_stored(fx, b, 1, 1);
    /* message credit 1 with ample bytes: exactly one more message */
    const s_msg_t *c = &fx->msgs[s_submit(fx, 3)];
    const s_msg_t *d = &fx->msgs[s_submit(fx, 4)];
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    s_idle(fx, 40);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 3);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 2), "r1", c, 1, 1);
    s_expect_stored(fx, d, 0, 0);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.delivered, 3);
    assert_int_equal(st.redelivered, 0);
    assert_int_equal(st.inflight, 3);
    assert_int_equal(st.sessions_opened, 1);
    assert_int_equal(st.sessions_closed, 0);
}

/*  Acks from one agency naming sequences it does not own (here: those the
    next messages will get) must not keep another agency's messages from
    being delivered: an entry in memory blocks its sequence from refills. */
static void test_foreign_ack(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    s_seen(fx, "r1", S_TO);
    s_credit(fx, "r1", S_TO, 100, S_BIG);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_settle(fx);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, "r1"), 1);
    /* g1 (the other agency) acks delivery 1 of the next 300 sequences */
    s_seen(fx, "g1", S_FROM);
    uint64_t ids[300];
    for (size_t i = 0; i < 300; i++)
        ids[i] = gbx_delivery_id(a->seq + 1 + i, 1);
    s_ack(fx, "g1", S_FROM, ids, 300);
    s_settle(fx);
    /* hk.cr's next messages still arrive */
    const s_msg_t *b = &fx->msgs[s_submit(fx, 2)];
    const s_msg_t *c = &fx->msgs[s_submit(fx, 3)];
    s_settle(fx);
    assert_true(b->seq > a->seq && b->seq <= a->seq + 300);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, "r1"), 3);
    s_expect_stored(fx, b, 1, 1);
    s_expect_stored(fx, c, 1, 1);
    assert_int_equal(fx->by_kind[GBX_JOB_ACK], 0); /* nothing went to the writer */
}

static void test_ack(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 100;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    assert_int_equal(s_depth(fx), 1);
    s_seen(fx, "r2", S_TO);
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    s_sent_t *d1 = s_sent_at(fx, GBX_FRAME_DELIVER, 0);
    s_expect_deliver(d1, "r1", a, 1, 1);
    uint64_t id = d1->delivery_id;

    /* the sender agency cannot ack hk.cr's delivery; an unknown id is nothing */
    s_ack1(fx, "g1", S_FROM, id);
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq + 1000, 1));
    s_settle(fx);
    s_expect_stored(fx, a, 1, 1);
    assert_int_equal(s_stats(fx).acked, 0);
    assert_int_equal(s_stats(fx).inflight, 1);

    /* any session of the agency may ack (7.3) */
    s_ack1(fx, "r2", S_TO, id);
    s_settle(fx);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.in_memory, 0);
    s_expect_gone(fx, a);
    assert_int_equal(s_count_due(fx, GBX_DUE_EXPIRE), 0);
    assert_int_equal(s_count_due(fx, GBX_DUE_DEDUPE), 1); /* the dedupe record stays */
    assert_int_equal(s_depth(fx), 0);
    /* a second ack of the same id is ignored */
    s_ack1(fx, "r1", S_TO, id);
    s_settle(fx);
    assert_int_equal(s_stats(fx).acked, 1);
    /* no redelivery after the ack timeout */
    s_idle(fx, 350);
    assert_int_equal(fx->nsent, 1);
    assert_int_equal(s_stats(fx).delivered, 1);
}

static void test_ack_never_issued(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    /* ids of this message that were never issued (delivery number 0, 7):
       unknown, ignored (7.3); the delivery stays in flight */
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 0));
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 7));
    s_settle(fx);
    s_idle(fx, 100);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.inflight, 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 1);
    s_expect_stored(fx, a, 1, 1);
    /* the real id still acks */
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    s_settle(fx);
    s_expect_gone(fx, a);
}

static void test_ack_timeout(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 100;
    fx->o.backoff_min_ms = 50;
    fx->o.backoff_max_ms = 1000;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 3);
    s_sent_t *d1 = s_sent_at(fx, GBX_FRAME_DELIVER, 0);
    s_sent_t *d2 = s_sent_at(fx, GBX_FRAME_DELIVER, 1);
    s_sent_t *d3 = s_sent_at(fx, GBX_FRAME_DELIVER, 2);
    s_expect_deliver(d1, "r1", a, 1, 1);
    s_expect_deliver(d2, "r1", a, 2, 2);
    s_expect_deliver(d3, "r1", a, 3, 3);
    /* ACK_TIMEOUT, then the backoff: 50 ms after attempt 1, 100 after 2 */
    assert_true(d2->mono - d1->mono >= 100 + 50);
    assert_true(d3->mono - d2->mono >= 100 + 100);
    s_expect_stored(fx, a, 3, 3);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.delivered, 3);
    assert_int_equal(st.redelivered, 2);
    assert_int_equal(st.inflight, 1);
    assert_int_equal(fx->nsent, 3);
}

static void test_ack_earlier_id(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 100;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 2);
    uint64_t id1 = s_sent_at(fx, GBX_FRAME_DELIVER, 0)->delivery_id;
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 1), "r1", a, 2, 2);
    /* the first delivery's id, while the second is in flight */
    s_ack1(fx, "r1", S_TO, id1);
    s_settle(fx);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.inflight, 0);
    s_expect_gone(fx, a);
    assert_int_equal(s_depth(fx), 0);
    s_idle(fx, 300);
    assert_int_equal(fx->nsent, 2);
}

static void s_dead_letter_run(s_fix_t *fx, int sender_session)
{
    fx->o.ack_timeout_ms = 60;
    fx->o.max_attempts = 2;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    if (sender_session)
        s_seen(fx, "g1", S_FROM);
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    S_WAIT(fx, s_stats(fx).dead_lettered == 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 2);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 1), "r1", a, 2, 2);
    /* store: dlq entry, message kept, no queue entry, no expiry key */
    gbx_qentry_t q;
    assert_false(s_entry(fx, GBX_KS_QUEUES, a, NULL));
    assert_true(s_entry(fx, GBX_KS_DLQ, a, &q));
    assert_int_equal(q.attempts, 2);
    assert_int_equal(q.deliveries, 2);
    assert_true(s_has_message(fx, a));
    assert_int_equal(s_count_due(fx, GBX_DUE_EXPIRE), 0);
    assert_int_equal(s_depth(fx), 0);
    assert_int_equal(fx->by_kind[GBX_JOB_DEADLETTER], 1);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.in_memory, 0);
    if (sender_session) {
        assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
        s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_DEAD_LETTERED);
        assert_int_equal(st.notices_sent, 1);
    } else {
        assert_int_equal(s_ntried(fx, GBX_FRAME_NOTICE), 0);
        assert_int_equal(st.notices_sent, 0);
        /* kept; sent as soon as a session of gd.qh-amr opens, once */
        s_seen(fx, "g1", S_FROM);
        assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
        s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_DEAD_LETTERED);
        s_seen(fx, "g2", S_FROM);
        s_seen(fx, "g1", S_FROM);
        assert_int_equal(s_stats(fx).notices_sent, 1);
    }
    /* no more deliveries */
    s_idle(fx, 250);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 2);
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
    assert_int_equal(s_stats(fx).dead_lettered, 1);
}

static void test_dead_letter(void **state)
{
    s_dead_letter_run(*state, 1);
}

static void test_dead_letter_later(void **state)
{
    s_dead_letter_run(*state, 0);
}

static void test_session_timeout(void **state)
{
    s_fix_t *fx = *state;
    fx->o.session_timeout_ms = 150;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    s_settle(fx);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    s_credit(fx, "r2", S_TO, 10, S_BIG);
    s_alive(fx, "r2", S_TO); /* r1 falls silent */
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, "r2") == 1);
    assert_int_equal(s_stats(fx).sessions_closed, 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 2);
    s_sent_t *d2 = s_sent_at(fx, GBX_FRAME_DELIVER, 1);
    s_expect_deliver(d2, "r2", a, 2, 2);
    assert_true(d2->mono - s_sent_at(fx, GBX_FRAME_DELIVER, 0)->mono >= 150);
    s_expect_stored(fx, a, 2, 2);
    /* r1 is closed: its late ack still counts (any session of the agency) */
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    s_settle(fx);
    s_expect_gone(fx, a);
    assert_int_equal(s_stats(fx).inflight, 0);
}

static void test_session_closed_marking(void **state)
{
    s_fix_t *fx = *state;
    fx->o.session_timeout_ms = 100;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    assert_int_equal(fx->njobs, 1); /* the MARK, at the writer */
    assert_int_equal(fx->jobs[0]->kind, GBX_JOB_MARK);
    s_sleep_ms(150);
    gbx_dispatch_tick(fx->d); /* r1 times out */
    assert_int_equal(s_stats(fx).sessions_closed, 1);
    s_settle(fx);
    assert_int_equal(fx->nsent, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_UNMARK], 1);
    s_expect_stored(fx, a, 1, 0); /* the id is spent, the attempt is not */
    s_credit(fx, "r2", S_TO, 1, S_BIG);
    s_alive(fx, "r2", S_TO);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r2", a, 2, 1);
    s_expect_stored(fx, a, 2, 1);
}

static void test_send_gone(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    fx->fail_kind = GBX_FRAME_DELIVER;
    fx->fail_rc = GBX_DISPATCH_GONE;
    fx->fail_n = -1;
    snprintf(fx->fail_rid, sizeof fx->fail_rid, "r1");
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    assert_int_equal(fx->sent[0].rc, GBX_DISPATCH_GONE);
    assert_int_equal(fx->sent[0].attempt, 1);
    assert_int_equal(fx->sent[0].delivery_id, gbx_delivery_id(a->seq, 1));
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.sessions_closed, 1);
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_UNMARK], 1);
    s_expect_stored(fx, a, 1, 0); /* UNMARK: the unsent one does not count */
    /* another session: the same attempt number, a new id */
    s_credit(fx, "r2", S_TO, 10, S_BIG);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r2", a, 2, 1);
    s_expect_stored(fx, a, 2, 1);
    st = s_stats(fx);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.redelivered, 0);
    assert_int_equal(st.sessions_closed, 1);
    assert_int_equal(fx->nsent, 2);
}

static void test_send_busy(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    fx->fail_kind = GBX_FRAME_DELIVER;
    fx->fail_rc = GBX_DISPATCH_BUSY;
    fx->fail_n = 3;
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    assert_int_equal(fx->sent[0].rc, GBX_DISPATCH_BUSY);
    s_expect_stored(fx, a, 1, 0);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 1);
    assert_int_equal(fx->nsent, 4);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(fx->sent[i].rc, GBX_DISPATCH_BUSY);
        assert_string_equal(fx->sent[i].rid, "r1");
        assert_int_equal(fx->sent[i].attempt, 1);
        assert_int_equal(fx->sent[i].delivery_id, gbx_delivery_id(a->seq, (uint32_t)i + 1));
    }
    /* the session stayed; its credit of one message came back each time */
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 4, 1);
    s_expect_stored(fx, a, 4, 1);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.sessions_closed, 0);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.redelivered, 0);
    assert_int_equal(st.inflight, 1);
    assert_int_equal(fx->by_kind[GBX_JOB_UNMARK], 3);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK], 4);
}

static void test_ack_while_marking(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 100;
    s_disp(fx);
    /* 1: the id the MARK will give, acked before the writer ran */
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    assert_int_equal(fx->njobs, 1);
    assert_int_equal(fx->jobs[0]->kind, GBX_JOB_MARK);
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    assert_int_equal(fx->njobs, 1); /* no ACK job yet: the MARK's return decides */
    s_settle(fx);
    assert_int_equal(fx->nsent, 0);
    s_expect_gone(fx, a);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.in_memory, 0);

    /* 2: delivered, timed out, and the first id acked while the
       redelivery's MARK is at the writer */
    const s_msg_t *b = &fx->msgs[s_submit(fx, 2)];
    s_settle(fx);
    assert_int_equal(fx->nsent, 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", b, 1, 1);
    uint64_t end = s_ms() + s_wait_ms();
    while (fx->njobs == 0) {
        assert_true(s_ms() < end);
        s_sleep_ms(2);
        gbx_dispatch_tick(fx->d);
    }
    assert_int_equal(fx->njobs, 1);
    assert_int_equal(fx->jobs[0]->kind, GBX_JOB_MARK);
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(b->seq, 1));
    s_settle(fx);
    assert_int_equal(fx->nsent, 1); /* no second Deliver */
    s_expect_gone(fx, b);
    st = s_stats(fx);
    assert_int_equal(st.acked, 2);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.in_memory, 0);
    s_idle(fx, 250);
    assert_int_equal(fx->nsent, 1);
}

static void test_commit_fails(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    assert_int_equal(fx->njobs, 1);
    fx->fail_commit = 1;
    s_writer_round(fx); /* the MARK is not durable: nothing may be sent */
    assert_int_equal(fx->nsent, 0);
    s_expect_stored(fx, a, 0, 0);
    s_settle(fx); /* read back from the store, marked again */
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 1);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    s_expect_stored(fx, a, 1, 1);
    /* an ACK whose commit failed: not acked, the message is not lost */
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    fx->fail_commit = 1;
    s_writer_round(fx);
    assert_int_equal(s_stats(fx).acked, 0);
    s_expect_stored(fx, a, 1, 1);
    s_settle(fx);
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    s_settle(fx);
    s_expect_gone(fx, a);
    assert_int_equal(s_stats(fx).acked, 1);
}

static void test_expiry_sweep(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    const s_msg_t *b = &fx->msgs[s_submit(fx, 2)];
    s_seen(fx, "g1", S_FROM);
    assert_int_equal(s_count_due(fx, GBX_DUE_EXPIRE), 2);
    s_now = a->expires_at_ms; /* now >= expires_at_ms: expired */
    gbx_dispatch_tick(fx->d);
    s_settle(fx);
    assert_int_equal(fx->sweep_jobs, 2);
    assert_int_equal(fx->by_kind[GBX_JOB_EXPIRE], 2);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.notices_sent, 2);
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 2);
    s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_EXPIRED);
    s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 1), "g1", b, GBX_E_EXPIRED);
    s_expect_gone(fx, a);
    s_expect_gone(fx, b);
    assert_int_equal(s_count_due(fx, GBX_DUE_EXPIRE), 0);
    assert_int_equal(s_depth(fx), 0);
    /* a credit now finds nothing */
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_idle(fx, 250);
    assert_int_equal(s_ntried(fx, GBX_FRAME_DELIVER), 0);
    assert_int_equal(fx->nsent, 2);
    assert_int_equal(s_stats(fx).expired, 2);
}

static void test_expiry_credit(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_seen(fx, "g1", S_FROM);
    s_now = a->expires_at_ms + 1;
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(s_ntried(fx, GBX_FRAME_DELIVER), 0);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK], 0);
    assert_int_equal(fx->by_kind[GBX_JOB_EXPIRE], 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
    s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_EXPIRED);
    s_expect_gone(fx, a);
    s_idle(fx, 250); /* the sweep finds nothing more */
    assert_int_equal(fx->nsent, 1);
    assert_int_equal(s_stats(fx).expired, 1);
    assert_int_equal(fx->by_kind[GBX_JOB_EXPIRE], 1);
}

static void test_expiry_inflight(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 100;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_seen(fx, "g1", S_FROM);
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 1);
    s_now = a->expires_at_ms;
    S_WAIT(fx, s_stats(fx).expired == 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 1);
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
    s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_EXPIRED);
    s_expect_gone(fx, a);
    assert_int_equal(s_stats(fx).inflight, 0);
    s_idle(fx, 250);
    assert_int_equal(fx->nsent, 2);
}

static void test_expiry_inflight_ack(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_seen(fx, "g1", S_FROM);
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_settle(fx);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 1);
    s_now = a->expires_at_ms + 5;
    s_idle(fx, 250); /* the sweep leaves a delivery in flight alone */
    assert_int_equal(s_stats(fx).expired, 0);
    assert_int_equal(s_stats(fx).inflight, 1);
    s_ack1(fx, "r1", S_TO, gbx_delivery_id(a->seq, 1));
    s_settle(fx);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.expired, 0);
    assert_int_equal(s_ntried(fx, GBX_FRAME_NOTICE), 0);
    s_expect_gone(fx, a);
}

static void test_expiry_while_marking(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_seen(fx, "g1", S_FROM);
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    assert_int_equal(fx->njobs, 1); /* the MARK, decided before expiry */
    s_now = a->expires_at_ms;       /* passes while the writer commits it */
    s_settle(fx);
    s_idle(fx, 250);
    /* 5-adapter.md 7.2: the node MUST NOT deliver a message whose
       expires_at_ms has passed */
    assert_int_equal(s_ntried(fx, GBX_FRAME_DELIVER), 0);
    assert_int_equal(s_stats(fx).expired, 1);
    s_expect_gone(fx, a);
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
}

static void test_window(void **state)
{
    s_fix_t *fx = *state;
    enum { N = 20 };
    fx->o.window = 4;
    fx->o.inflight_window = 2;
    s_disp(fx);
    fx->check_mem = 1;
    s_seen(fx, "r1", S_TO);
    gbx_dispatch_tick(fx->d); /* the empty queue is read: caught up */
    size_t idx[N];
    for (uint32_t i = 0; i < N; i++)
        idx[i] = s_submit(fx, 100 + i);
    assert_int_equal(s_depth(fx), N);
    assert_true(s_stats(fx).in_memory <= fx->o.window);
    s_credit(fx, "r1", S_TO, N, S_BIG);
    s_settle(fx);
    uint64_t end = s_ms() + s_wait_ms();
    while (s_stats(fx).acked < N) {
        assert_true(s_ms() < end);
        /* ack everything outstanding, one frame */
        uint64_t ids[N];
        size_t n = 0;
        for (size_t i = 0; i < fx->nsent; i++)
            if (fx->sent[i].kind == GBX_FRAME_DELIVER && !fx->sent[i].acked) {
                fx->sent[i].acked = 1;
                ids[n++] = fx->sent[i].delivery_id;
            }
        gbx_dispatch_stats_t st = s_stats(fx);
        assert_true(st.inflight <= fx->o.inflight_window);
        if (n)
            s_ack(fx, "r1", S_TO, ids, n);
        s_round(fx);
    }
    assert_int_equal(fx->nsent, N);
    for (size_t i = 0; i < N; i++)
        s_expect_deliver(&fx->sent[i], "r1", &fx->msgs[idx[i]], 1, 1);
    assert_true(fx->max_idle_mem <= fx->o.window + fx->o.inflight_window);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.delivered, N);
    assert_int_equal(st.in_memory, 0);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(s_depth(fx), 0);
    for (size_t i = 0; i < N; i++)
        s_expect_gone(fx, &fx->msgs[idx[i]]);
}

static size_t s_outstanding(const s_fix_t *fx, const char *rid)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->nsent; i++)
        if (fx->sent[i].kind == GBX_FRAME_DELIVER && fx->sent[i].rc == 0 && !fx->sent[i].acked &&
            strcmp(fx->sent[i].rid, rid) == 0)
            n++;
    return n;
}

static void s_ack_outstanding(s_fix_t *fx, const char *rid, size_t max)
{
    uint64_t ids[64];
    size_t n = 0;
    for (size_t i = 0; i < fx->nsent && n < max && n < 64; i++)
        if (fx->sent[i].kind == GBX_FRAME_DELIVER && fx->sent[i].rc == 0 && !fx->sent[i].acked &&
            strcmp(fx->sent[i].rid, rid) == 0) {
            fx->sent[i].acked = 1;
            ids[n++] = fx->sent[i].delivery_id;
        }
    if (n)
        s_ack(fx, rid, S_TO, ids, n);
}

static void test_inflight_window(void **state)
{
    s_fix_t *fx = *state;
    enum { N = 10 };
    fx->o.inflight_window = 3;
    s_disp(fx);
    for (uint32_t i = 0; i < N; i++)
        s_submit(fx, 200 + i);
    s_credit(fx, "r1", S_TO, 1000, S_BIG);
    s_credit(fx, "r2", S_TO, 1000, S_BIG);
    s_settle(fx);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 6);
    assert_int_equal(s_outstanding(fx, "r1"), 3);
    assert_int_equal(s_outstanding(fx, "r2"), 3);
    assert_int_equal(s_stats(fx).inflight, 6);
    s_idle(fx, 40);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 6);
    /* one ack on r1: one slot on r1 (credit was ample) */
    s_ack_outstanding(fx, "r1", 1);
    s_settle(fx);
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), 7);
    assert_int_equal(s_outstanding(fx, "r1"), 3);
    assert_int_equal(s_outstanding(fx, "r2"), 3);
    uint64_t end = s_ms() + s_wait_ms();
    while (s_stats(fx).acked < N) {
        assert_true(s_ms() < end);
        assert_true(s_outstanding(fx, "r1") <= 3);
        assert_true(s_outstanding(fx, "r2") <= 3);
        s_ack_outstanding(fx, "r1", 64);
        s_ack_outstanding(fx, "r2", 64);
        s_round(fx);
    }
    assert_int_equal(s_nsent(fx, GBX_FRAME_DELIVER, NULL), N);
    assert_int_equal(fx->nsent, N);
    for (size_t i = 0; i < N; i++)
        s_expect_gone(fx, &fx->msgs[i]);
}

static void test_sessions_cap(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r0", S_TO, 1, S_BIG);
    s_settle(fx);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r0", a, 1, 1);
    s_seen(fx, "g1", S_FROM); /* another agency's session is not counted */
    s_sleep_ms(3);            /* r0 is the least recently heard */
    char rid[16];
    for (int i = 1; i < 70; i++) {
        snprintf(rid, sizeof rid, "c%02d", i);
        s_seen(fx, rid, S_TO);
        if (i == 63) /* 64 sessions of hk.cr: none closed yet */
            assert_int_equal(s_stats(fx).sessions_closed, 0);
        if (i == 64) { /* the 65th: r0 goes, its delivery returns */
            gbx_dispatch_stats_t st = s_stats(fx);
            assert_int_equal(st.sessions_closed, 1);
            assert_int_equal(st.inflight, 0);
        }
    }
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.sessions_opened, 71);
    assert_int_equal(st.sessions_closed, 6);
    s_settle(fx);
    /* the newest session is open: it gets the message, attempt 2 */
    s_credit(fx, "c69", S_TO, 1, S_BIG);
    S_WAIT(fx, s_nsent(fx, GBX_FRAME_DELIVER, NULL) == 2);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 1), "c69", a, 2, 2);
    assert_int_equal(s_stats(fx).sessions_closed, 6);
    /* open now: 64 of hk.cr and g1 (another agency's sessions do not count) */
    assert_int_equal(s_stats(fx).sessions_opened - s_stats(fx).sessions_closed, 65);
}

static void test_pause(void **state)
{
    s_fix_t *fx = *state;
    fx->o.session_timeout_ms = 200;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    s_settle(fx);
    s_expect_deliver(s_sent_at(fx, GBX_FRAME_DELIVER, 0), "r1", a, 1, 1);
    gbx_dispatch_pause(fx->d, 1);
    s_idle(fx, 500);
    gbx_dispatch_stats_t st = s_stats(fx);
    assert_int_equal(st.sessions_closed, 0);
    assert_int_equal(st.inflight, 1);
    /* t0 is read before the unpause: the session's silence starts no
       earlier, however slowly this test runs (valgrind) */
    uint64_t t0 = s_ms();
    gbx_dispatch_pause(fx->d, 0); /* every session counts as just heard */
    gbx_dispatch_tick(fx->d);
    if (s_ms() - t0 < 200) /* else this machine stalled past the timeout */
        assert_int_equal(s_stats(fx).sessions_closed, 0);
    /* unpaused, silence ends the session */
    S_WAIT(fx, s_stats(fx).sessions_closed == 1);
    assert_true(s_ms() - t0 >= 200);
    assert_int_equal(s_stats(fx).inflight, 0);
    s_expect_stored(fx, a, 1, 1);
}

static void test_stop_and_drop(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_submit(fx, 2);
    s_credit(fx, "r1", S_TO, 1, S_BIG);
    assert_int_equal(fx->njobs, 1);
    assert_int_equal(gbx_dispatch_pending(fx->d), 1);
    gbx_dispatch_stop(fx->d);
    /* the MARK never reaches the writer */
    gbx_job_t *job = fx->jobs[0];
    fx->njobs = 0;
    size_t jobs0 = fx->by_kind[GBX_JOB_MARK] + fx->by_kind[GBX_JOB_UNMARK];
    gbx_dispatch_drop(fx->d, job);
    assert_int_equal(gbx_dispatch_pending(fx->d), 0);
    assert_int_equal(fx->njobs, 0);
    assert_int_equal(fx->nsent, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK] + fx->by_kind[GBX_JOB_UNMARK], jobs0);
    s_expect_stored(fx, a, 0, 0);
    /* no Credit starts a delivery now */
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    s_credit(fx, "r2", S_TO, 10, S_BIG);
    assert_int_equal(fx->njobs, 0);
    s_idle(fx, 100);
    assert_int_equal(fx->nsent, 0);
    assert_int_equal(fx->by_kind[GBX_JOB_MARK], 1);
    assert_int_equal(s_stats(fx).delivered, 0);
    gbx_dispatch_drop(fx->d, NULL);
    gbx_dispatch_drop(NULL, NULL);
}

static void test_ping(void **state)
{
    s_fix_t *fx = *state;
    s_disp(fx);
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    assert_rc(gbx_frame_ping(7, 99, &p1, &l1), GBX_OK);
    s_in(fx, "r1", S_TO, p1, l1);
    assert_int_equal(fx->nsent, 1);
    assert_int_equal(fx->sent[0].kind, GBX_FRAME_PONG);
    assert_string_equal(fx->sent[0].rid, "r1");
    assert_int_equal(fx->sent[0].tag, 7);
    assert_int_equal(fx->sent[0].nonce, 99);
    /* a Pong from the adapter: no answer */
    assert_rc(gbx_frame_pong(8, 5, &p1, &l1), GBX_OK);
    s_in(fx, "r1", S_TO, p1, l1);
    assert_int_equal(fx->nsent, 1);
    /* the connection is gone: the session ends */
    fx->fail_kind = GBX_FRAME_PONG;
    fx->fail_rc = GBX_DISPATCH_GONE;
    fx->fail_n = 1;
    assert_rc(gbx_frame_ping(9, 100, &p1, &l1), GBX_OK);
    s_in(fx, "r1", S_TO, p1, l1);
    assert_int_equal(fx->nsent, 2);
    assert_int_equal(fx->sent[1].nonce, 100);
    assert_int_equal(s_stats(fx).sessions_closed, 1);
}

static void test_notice_busy(void **state)
{
    s_fix_t *fx = *state;
    fx->o.ack_timeout_ms = 60;
    fx->o.max_attempts = 1;
    s_disp(fx);
    const s_msg_t *a = &fx->msgs[s_submit(fx, 1)];
    s_seen(fx, "g1", S_FROM);
    s_alive(fx, "g1", S_FROM);
    fx->fail_kind = GBX_FRAME_NOTICE;
    fx->fail_rc = GBX_DISPATCH_BUSY;
    fx->fail_n = 1;
    s_credit(fx, "r1", S_TO, 10, S_BIG);
    S_WAIT(fx, s_stats(fx).dead_lettered == 1);
    assert_int_equal(s_ntried(fx, GBX_FRAME_NOTICE), 1); /* the BUSY one */
    /* g1 is open and speaking: the kept notice must reach it without
       waiting for another session of gd.qh-amr to open */
    uint64_t end = s_ms() + 1000;
    while (s_nsent(fx, GBX_FRAME_NOTICE, NULL) == 0 && s_ms() < end) {
        s_round(fx);
        s_sleep_ms(5);
    }
    assert_int_equal(s_nsent(fx, GBX_FRAME_NOTICE, NULL), 1);
    s_expect_notice(s_sent_at(fx, GBX_FRAME_NOTICE, 0), "g1", a, GBX_E_DEAD_LETTERED);
}

static void test_args(void **state)
{
    s_fix_t *fx = *state;
    gbx_dispatch_t *d = NULL;
    assert_rc(gbx_dispatch_new(NULL, &d), GBX_E_ARG);
    gbx_dispatch_opts_t o = fx->o;
    o.max_attempts = 0;
    assert_rc(gbx_dispatch_new(&o, &d), GBX_E_ARG);
    o = fx->o;
    o.send = NULL;
    assert_rc(gbx_dispatch_new(&o, &d), GBX_E_ARG);
    assert_null(d);
    gbx_dispatch_destroy(&d);
    gbx_dispatch_destroy(NULL);
    gbx_dispatch_tick(NULL);
    assert_int_equal(gbx_dispatch_pending(NULL), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_##name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(credit_then_deliver),
        T(ack),
        T(foreign_ack),
        T(ack_never_issued),
        T(ack_timeout),
        T(ack_earlier_id),
        T(dead_letter),
        T(dead_letter_later),
        T(session_timeout),
        T(session_closed_marking),
        T(send_gone),
        T(send_busy),
        T(ack_while_marking),
        T(commit_fails),
        T(expiry_sweep),
        T(expiry_credit),
        T(expiry_inflight),
        T(expiry_inflight_ack),
        T(expiry_while_marking),
        T(window),
        T(inflight_window),
        T(sessions_cap),
        T(pause),
        T(stop_and_drop),
        T(ping),
        T(notice_busy),
        T(args),
    };
#undef T
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
