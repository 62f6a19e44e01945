/*  test_writer: the writer thread and its group commit (broker/writer.h)
    over a real RocksDB in a temporary directory and a real ingress, with
    real keys (tu_identity_fixed), signed envelopes and sealed payloads.

    Jobs are built as gbxd builds them: a GBX_JOB_SUBMIT job holds the
    received parts as zmq_msg_t (part 0 "GBX1", part 1 the Submit frame,
    part 2 the sealed payload), stage 1 (gbx_checker_run) has filled its
    submission, as a verify worker does (broker/verifier.c). Jobs are pushed
    on the writer's input channel and taken back from its output channel,
    waiting at most S_WAIT_MS for all of them.

    Registry and messages: those of test_ingress (node hk-1 signs receipts;
    gd.qh-amr -> hk.cr, tu_header_fixture, 1024-byte payload, tag 42);
    now = created + 1 s, for the ingress and the writer.

    Cases:
      group_commit       8 submits pushed at once: one group (stats: 1 group,
                         8 jobs, max_group 8); each job commit OK, rc OK,
                         reply Accepted (not duplicate) with its tag; every
                         receipt verifies (gbx_receipt_verify_cached) and
                         speaks of its envelope; all are batch-signed under
                         the same root (tree_size 8, leaf indexes 0..7): one
                         Ed25519 verification and 7 cache hits; distinct
                         sequences; 8 queue entries; queue depth 8
      duplicate_in_group A, A (the same bytes, two jobs), B in one group: A
                         Accepted, the second A Accepted duplicate = true
                         with the byte-identical SignedReceipt; tree_size 2;
                         one queue entry for A; A again in a later group:
                         duplicate, same receipt bytes
      rejected_in_group  good, tampered payload (stage 1:
                         PAYLOAD_HASH_MISMATCH), expired (stage 2: EXPIRED),
                         good in one group: the good ones Accepted under one
                         root of 2, the others Rejected with their reason,
                         commit OK for all four; 2 messages and queue entries
                         stored, 4 audit records
      mark_ack           on a stored message: MARK (rc OK, entry deliveries
                         1, attempts 1), ACK of that id (rc OK, entry gone,
                         queue depth back to 0), ACK again (GBX_E_STATE,
                         commit OK); MARK and ACK in one group on a second
                         message see each other; an ACK with an id never
                         issued in the same group as a good MARK: the first
                         GBX_E_STATE, the second applied
      op_kinds           UNMARK (attempts back to 0), DEADLETTER (entry in
                         dlq, depth 0), EXPIRE (entry gone), FORGET (dedupe
                         record and its due key gone)
      stats_groups       64 submits pushed at once with max_group 16: all
                         come back OK; groups < jobs, max_group <= 16, jobs
                         64, failed 0
      stop_drains        20 submits pushed and the writer stopped at once
                         (max_group 4): all 20 come back, committed and
                         Accepted; the input channel is closed and done */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "chan.h"
#include "gbx/frame.h"
#include "gbx/receipt.h"
#include "ingress.h"
#include "job.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "tb_fixture.h"
#include "writer.h"

#define S_TAG     42u
#define S_FROM    "gd.qh-amr"
#define S_TO      "hk.cr"
#define S_NODE    "hk-1"
#define S_CREATED 1790000000000ull
#define S_DAY     (24ull * 3600 * 1000)
#define S_SKEW    120000ull
#define S_MAXPAY  4096u
#define S_WAIT_MS 60000
#define S_MAX_N   64

/* ------------------------------------------------------------- fixtures */

static uint64_t s_now;

static uint64_t s_clock(void *arg)
{
    (void)arg;
    return s_now;
}

typedef struct {
    char *dir;
    gbx_store_t *store;
    gbx_registry_t *reg;
    gbx_identity_t *node;
    gbx_identity_t *sender;
    gbx_ingress_t *ing;
    gbx_checker_t *checker;
    gbx_chan_t *in, *out;
    gbx_writer_t *w;
} s_fix_t;

static void s_start(s_fix_t *fx, size_t max_group)
{
    gbx_writer_opts_t o;
    memset(&o, 0, sizeof o);
    o.store = fx->store;
    o.ingress = fx->ing;
    o.in = fx->in;
    o.out = fx->out;
    o.max_group = max_group;
    o.clock = s_clock;
    assert_rc(gbx_writer_start(&o, &fx->w), GBX_OK);
}

static int s_setup_group(void **state, size_t max_group)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tmpdir();
    assert_rc(gbx_store_open(fx->dir, NULL, &fx->store), GBX_OK);
    fx->reg = tb_registry();
    assert_non_null(fx->reg);
    fx->node = tu_identity_fixed(S_NODE, NULL);
    fx->sender = tu_identity_fixed(S_FROM, NULL);
    gbx_ingress_opts_t o;
    gbx_ingress_opts_init(&o);
    o.store = fx->store;
    o.registry = fx->reg;
    o.node = fx->node;
    o.node_id = S_NODE;
    o.max_payload_bytes = S_MAXPAY;
    o.max_ttl_ms = 7 * S_DAY;
    o.clock_skew_ms = S_SKEW;
    o.clock = s_clock;
    assert_rc(gbx_ingress_new(&o, &fx->ing), GBX_OK);
    assert_rc(gbx_checker_new(&o, &fx->checker), GBX_OK);
    assert_rc(gbx_chan_new(&fx->in), GBX_OK);
    assert_rc(gbx_chan_new(&fx->out), GBX_OK);
    s_now = S_CREATED + 1000;
    s_start(fx, max_group);
    *state = fx;
    return 0;
}

static int s_setup(void **state)
{
    return s_setup_group(state, 0);
}

static int s_setup_16(void **state)
{
    return s_setup_group(state, 16);
}

static int s_setup_4(void **state)
{
    return s_setup_group(state, 4);
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    gbx_writer_stop(&fx->w);
    /* jobs left in the channels (a failed test) */
    void *left[64];
    size_t n;
    while ((n = gbx_chan_take(fx->out, left, 64, 0)) > 0)
        for (size_t i = 0; i < n; i++)
            gbx_job_free(left[i]);
    while ((n = gbx_chan_take(fx->in, left, 64, 0)) > 0)
        for (size_t i = 0; i < n; i++)
            gbx_job_free(left[i]);
    gbx_chan_destroy(&fx->in);
    gbx_chan_destroy(&fx->out);
    gbx_checker_destroy(&fx->checker);
    gbx_ingress_destroy(&fx->ing);
    gbx_store_destroy(&fx->store);
    gbx_registry_destroy(&fx->reg);
    gbx_identity_destroy(&fx->node);
    gbx_identity_destroy(&fx->sender);
    tu_rmtree(&fx->dir);
    free(fx);
    return 0;
}

/* -------------------------------------------------------------- messages */

/*  The signed envelope of a message (kept to check its receipt). */
typedef struct {
    gbx_envelope_t *env;
    uint8_t msg_id[GBX_MSG_ID_BYTES];
} s_msg_t;

typedef enum { M_GOOD, M_TAMPERED, M_EXPIRED } s_mod_t;

static void s_part(zmq_msg_t *m, const void *data, size_t len)
{
    assert_int_equal(zmq_msg_init_size(m, len), 0);
    if (len)
        memcpy(zmq_msg_data(m), data, len);
}

/*  A SUBMIT job for the fixture message VARIANT (changed by MOD), checked
    by stage 1; its envelope into *M. */
static gbx_job_t *s_submit_job(s_fix_t *fx, uint32_t variant, s_mod_t mod, s_msg_t *m)
{
    tu_header_t t;
    tu_header_fixture(&t, variant);
    if (mod == M_EXPIRED)
        t.h.expires_at_ms = S_CREATED + 500; /* now = created + 1 s */
    gbx_pubid_t to = tb_pub(S_TO);
    size_t plen = (size_t)t.h.payload_length;
    uint8_t *plain = malloc(plen);
    assert_non_null(plain);
    memset(plain, 0x77, plen);
    gbx_binding_t b = {t.message_id, t.h.from_agency, t.h.to_agency};
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    assert_rc(gbx_payload_seal(to.box_pk, &b, plain, plen, &sealed, &sealed_len, t.payload_hash),
              GBX_OK);
    free(plain);
    memset(m, 0, sizeof *m);
    memcpy(m->msg_id, t.message_id, GBX_MSG_ID_BYTES);
    assert_rc(gbx_envelope_sign(fx->sender, &t.h, &m->env), GBX_OK);
    uint8_t *frame = NULL;
    size_t flen = 0;
    assert_rc(gbx_frame_submit(S_TAG, m->env, &frame, &flen), GBX_OK);
    if (mod == M_TAMPERED)
        sealed[sealed_len / 2] ^= 1;

    gbx_job_t *job = gbx_job_new(GBX_JOB_SUBMIT);
    assert_non_null(job);
    job->msgs = calloc(3, sizeof *job->msgs);
    assert_non_null(job->msgs);
    s_part(&job->msgs[0], GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN);
    s_part(&job->msgs[1], frame, flen);
    s_part(&job->msgs[2], sealed, sealed_len);
    job->nmsgs = 3;
    job->wire_bytes = GBX_FRAME_PROTOCOL_LEN + flen + sealed_len;
    free(frame);
    free(sealed);
    job->rid[0] = 0x01;
    job->rid_len = 1;
    gbx_part_t parts[3];
    for (size_t k = 0; k < 3; k++) {
        parts[k].data = zmq_msg_data(&job->msgs[k]);
        parts[k].len = zmq_msg_size(&job->msgs[k]);
    }
    gbx_checker_run(fx->checker, S_FROM, parts, 3, &job->sub);
    return job;
}

/*  A second job with the same bytes as JOB (a resubmission). */
static gbx_job_t *s_copy_job(s_fix_t *fx, const gbx_job_t *src)
{
    gbx_job_t *job = gbx_job_new(GBX_JOB_SUBMIT);
    assert_non_null(job);
    job->msgs = calloc(src->nmsgs, sizeof *job->msgs);
    assert_non_null(job->msgs);
    gbx_part_t parts[8];
    for (size_t k = 0; k < src->nmsgs; k++) {
        zmq_msg_t *m = (zmq_msg_t *)&src->msgs[k];
        s_part(&job->msgs[k], zmq_msg_data(m), zmq_msg_size(m));
        parts[k].data = zmq_msg_data(&job->msgs[k]);
        parts[k].len = zmq_msg_size(&job->msgs[k]);
    }
    job->nmsgs = src->nmsgs;
    gbx_checker_run(fx->checker, S_FROM, parts, job->nmsgs, &job->sub);
    return job;
}

static gbx_job_t *s_op_job(gbx_job_kind_t kind, uint64_t seq, uint64_t delivery_id)
{
    gbx_job_t *job = gbx_job_new(kind);
    assert_non_null(job);
    snprintf(job->dest, sizeof job->dest, "%s", S_TO);
    job->seq = seq;
    job->delivery_id = delivery_id;
    job->rc = GBX_E_INTERNAL_ERROR; /* the writer must set it */
    job->commit = GBX_E_INTERNAL_ERROR;
    return job;
}

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  Takes N jobs back from the output channel into OUT, in the order
    pushed (the writer keeps the order); fails after S_WAIT_MS. */
static void s_collect(s_fix_t *fx, gbx_job_t **out, size_t n)
{
    size_t got = 0;
    uint64_t end = s_ms() + S_WAIT_MS;
    while (got < n) {
        uint64_t now = s_ms();
        if (now >= end)
            fail_msg("%zu of %zu jobs came back within %d ms", got, n, S_WAIT_MS);
        got += gbx_chan_take(fx->out, (void **)out + got, n - got, (int)(end - now));
    }
}

/*  Pushes the N JOBS at once and takes them back (the same pointers, in
    the same order). */
static void s_run(s_fix_t *fx, gbx_job_t **jobs, size_t n)
{
    gbx_job_t *back[S_MAX_N];
    assert_true(n <= S_MAX_N);
    assert_rc(gbx_chan_push_all(fx->in, (void *const *)jobs, n), GBX_OK);
    s_collect(fx, back, n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(back[i], jobs[i]);
}

static void s_run1(s_fix_t *fx, gbx_job_t *job)
{
    s_run(fx, &job, 1);
}

/*  The answer of a SUBMIT job (free with gbx__v1__frame__free_unpacked). */
static Gbx__V1__Frame *s_answer(const gbx_job_t *job)
{
    assert_non_null(job->reply);
    Gbx__V1__Frame *f = gbx__v1__frame__unpack(NULL, job->reply_len, job->reply);
    assert_non_null(f);
    assert_int_equal(f->tag, S_TAG);
    return f;
}

/*  The packed SignedReceipt of an Accepted answer (malloc'ed). */
static uint8_t *s_receipt_bytes(const Gbx__V1__Frame *f, size_t *len)
{
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    *len = gbx__v1__signed_receipt__get_packed_size(f->accepted->receipt);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    gbx__v1__signed_receipt__pack(f->accepted->receipt, b);
    return b;
}

/*  Checks that JOB was accepted new, committed, and that its receipt
    verifies through CACHE, speaks of M and is batch-signed in a tree of
    TREE; copies the root into ROOT and returns the leaf index. */
static uint32_t s_expect_accepted(s_fix_t *fx, const gbx_job_t *job, const s_msg_t *m,
                                  gbx_vcache_t *cache, uint32_t tree, uint8_t root[32])
{
    assert_rc(job->commit, GBX_OK);
    assert_rc(job->rc, GBX_OK);
    assert_rc(job->sub.result.reason, GBX_OK);
    assert_false(job->sub.result.duplicate);
    assert_string_equal(job->sub.result.dest, S_TO);
    Gbx__V1__Frame *f = s_answer(job);
    assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
    assert_false(f->accepted->duplicate);
    const Gbx__V1__SignedReceipt *sr = f->accepted->receipt;
    assert_non_null(sr);
    Gbx__V1__Receipt *r = NULL;
    assert_rc(gbx_receipt_verify_cached(sr, gbx_identity_public(fx->node), cache, &r), GBX_OK);
    assert_rc(gbx_receipt_check(r, m->env, S_NODE), GBX_OK);
    assert_int_equal(r->sequence, job->sub.result.seq);
    assert_int_equal(r->accepted_at_ms, s_now);
    gbx__v1__receipt__free_unpacked(r, NULL);
    assert_non_null(sr->batch);
    assert_int_equal(sr->batch->tree_size, tree);
    assert_int_equal(sr->batch->root.len, 32);
    memcpy(root, sr->batch->root.data, 32);
    uint32_t leaf = sr->batch->leaf_index;
    gbx__v1__frame__free_unpacked(f, NULL);
    return leaf;
}

static size_t s_count(gbx_store_t *st, gbx_keyspace_t ks)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, ks, NULL, 0, &it), GBX_OK);
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/*  The queue entry of SEQ in KS: 1 and *E, or 0 if absent. */
static int s_entry(s_fix_t *fx, gbx_keyspace_t ks, uint64_t seq, gbx_qentry_t *e)
{
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    assert_rc(gbx_store_queue_key(S_TO, seq, key, sizeof key, &klen), GBX_OK);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(fx->store, ks, key, klen, &v, &vlen), GBX_OK);
    if (!v)
        return 0;
    assert_rc(gbx_qentry_decode(v, vlen, e), GBX_OK);
    free(v);
    return 1;
}

static uint64_t s_depth(s_fix_t *fx)
{
    uint64_t n = 0;
    gbx_ingress_queue_depth(fx->ing, S_TO, &n, NULL);
    return n;
}

static void s_free_all(gbx_job_t **jobs, size_t n, s_msg_t *ms)
{
    for (size_t i = 0; i < n; i++) {
        gbx_job_free(jobs[i]);
        if (ms)
            gbx_envelope_destroy(&ms[i].env);
    }
}

/*  Submits the fixture message VARIANT alone; returns its sequence. */
static uint64_t s_store_one(s_fix_t *fx, uint32_t variant)
{
    s_msg_t m;
    gbx_job_t *job = s_submit_job(fx, variant, M_GOOD, &m);
    s_run1(fx, job);
    assert_rc(job->commit, GBX_OK);
    assert_rc(job->rc, GBX_OK);
    uint64_t seq = job->sub.result.seq;
    assert_true(seq > 0);
    gbx_job_free(job);
    gbx_envelope_destroy(&m.env);
    return seq;
}

/* ----------------------------------------------------------------- cases */

static void test_group_commit(void **state)
{
    s_fix_t *fx = *state;
    enum { N = 8 };
    gbx_job_t *jobs[N];
    s_msg_t ms[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = s_submit_job(fx, 10 + (uint32_t)i, M_GOOD, &ms[i]);
        assert_rc(jobs[i]->sub.reason, GBX_OK);
    }
    s_run(fx, jobs, N);

    gbx_vcache_t *cache = NULL;
    assert_rc(gbx_vcache_new(64, &cache), GBX_OK);
    uint8_t root0[32], root[32];
    unsigned leaves = 0;
    for (int i = 0; i < N; i++) {
        uint32_t leaf = s_expect_accepted(fx, jobs[i], &ms[i], cache, N, i ? root : root0);
        if (i)
            assert_memory_equal(root, root0, 32); /* one batch signature */
        assert_true(leaf < N);
        assert_false(leaves & (1u << leaf));
        leaves |= 1u << leaf;
        for (int k = 0; k < i; k++)
            assert_true(jobs[k]->sub.result.seq != jobs[i]->sub.result.seq);
    }
    uint64_t verified = 0, hits = 0;
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 1);
    assert_int_equal(hits, N - 1);
    gbx_vcache_destroy(&cache);

    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), N);
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), N);
    assert_int_equal(s_count(fx->store, GBX_KS_DEDUPE), N);
    assert_int_equal(s_depth(fx), N);
    gbx_writer_stats_t st;
    gbx_writer_stats(fx->w, &st);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.jobs, N);
    assert_int_equal(st.max_group, N);
    assert_int_equal(st.failed, 0);
    s_free_all(jobs, N, ms);
}

static void test_duplicate_in_group(void **state)
{
    s_fix_t *fx = *state;
    s_msg_t ma, mb;
    gbx_job_t *jobs[3];
    jobs[0] = s_submit_job(fx, 20, M_GOOD, &ma);
    jobs[1] = s_copy_job(fx, jobs[0]);
    jobs[2] = s_submit_job(fx, 21, M_GOOD, &mb);
    s_run(fx, jobs, 3);

    uint8_t root[32], root_b[32];
    s_expect_accepted(fx, jobs[0], &ma, NULL, 2, root);
    s_expect_accepted(fx, jobs[2], &mb, NULL, 2, root_b);
    assert_memory_equal(root, root_b, 32);
    assert_rc(jobs[1]->commit, GBX_OK);
    assert_rc(jobs[1]->sub.result.reason, GBX_OK);
    assert_true(jobs[1]->sub.result.duplicate);
    Gbx__V1__Frame *f0 = s_answer(jobs[0]), *f1 = s_answer(jobs[1]);
    assert_true(f1->accepted->duplicate);
    size_t l0 = 0, l1 = 0;
    uint8_t *r0 = s_receipt_bytes(f0, &l0), *r1 = s_receipt_bytes(f1, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(r0, r1, l0);
    free(r1);
    gbx__v1__frame__free_unpacked(f1, NULL);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 2);
    assert_int_equal(s_depth(fx), 2);

    /* again, in a later group: from the store, the same bytes */
    gbx_job_t *again = s_copy_job(fx, jobs[0]);
    s_run1(fx, again);
    assert_rc(again->commit, GBX_OK);
    assert_true(again->sub.result.duplicate);
    Gbx__V1__Frame *f2 = s_answer(again);
    assert_true(f2->accepted->duplicate);
    size_t l2 = 0;
    uint8_t *r2 = s_receipt_bytes(f2, &l2);
    assert_int_equal(l2, l0);
    assert_memory_equal(r2, r0, l0);
    free(r2);
    free(r0);
    gbx__v1__frame__free_unpacked(f2, NULL);
    gbx__v1__frame__free_unpacked(f0, NULL);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 2);
    gbx_job_free(again);
    gbx_envelope_destroy(&ma.env);
    gbx_envelope_destroy(&mb.env);
    s_free_all(jobs, 3, NULL);
}

static void test_rejected_in_group(void **state)
{
    s_fix_t *fx = *state;
    s_msg_t ms[4];
    gbx_job_t *jobs[4];
    jobs[0] = s_submit_job(fx, 30, M_GOOD, &ms[0]);
    jobs[1] = s_submit_job(fx, 31, M_TAMPERED, &ms[1]);
    jobs[2] = s_submit_job(fx, 32, M_EXPIRED, &ms[2]);
    jobs[3] = s_submit_job(fx, 33, M_GOOD, &ms[3]);
    assert_rc(jobs[1]->sub.reason, GBX_E_PAYLOAD_HASH_MISMATCH); /* stage 1 */
    assert_rc(jobs[2]->sub.reason, GBX_OK);                      /* refused at stage 2 */
    s_run(fx, jobs, 4);

    uint8_t ra[32], rb[32];
    s_expect_accepted(fx, jobs[0], &ms[0], NULL, 2, ra);
    s_expect_accepted(fx, jobs[3], &ms[3], NULL, 2, rb);
    assert_memory_equal(ra, rb, 32);
    const gbx_err_t want[4] = {GBX_OK, GBX_E_PAYLOAD_HASH_MISMATCH, GBX_E_EXPIRED, GBX_OK};
    for (int i = 1; i <= 2; i++) {
        assert_rc(jobs[i]->commit, GBX_OK);
        assert_rc(jobs[i]->rc, want[i]);
        assert_rc(jobs[i]->sub.result.reason, want[i]);
        Gbx__V1__Frame *f = s_answer(jobs[i]);
        assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_REJECTED);
        assert_rc((gbx_err_t)f->rejected->reason, want[i]);
        assert_int_equal(f->rejected->message_id.len, GBX_MSG_ID_BYTES);
        assert_memory_equal(f->rejected->message_id.data, ms[i].msg_id, GBX_MSG_ID_BYTES);
        gbx__v1__frame__free_unpacked(f, NULL);
    }
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 2);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), 2);
    assert_int_equal(s_count(fx->store, GBX_KS_DEDUPE), 2);
    assert_int_equal(tb_audit_count(fx->store), 4);
    assert_int_equal(s_depth(fx), 2);
    s_free_all(jobs, 4, ms);
}

static void test_mark_ack(void **state)
{
    s_fix_t *fx = *state;
    uint64_t seq = s_store_one(fx, 40);
    assert_int_equal(s_depth(fx), 1);
    gbx_qentry_t e;

    gbx_job_t *mark = s_op_job(GBX_JOB_MARK, seq, 0);
    s_run1(fx, mark);
    assert_rc(mark->commit, GBX_OK);
    assert_rc(mark->rc, GBX_OK);
    assert_int_equal(mark->entry.deliveries, 1);
    assert_int_equal(mark->entry.attempts, 1);
    assert_string_equal(mark->entry.from, S_FROM);
    assert_true(s_entry(fx, GBX_KS_QUEUES, seq, &e));
    assert_int_equal(e.deliveries, 1);
    uint64_t id = gbx_delivery_id(seq, mark->entry.deliveries);
    uint64_t size = e.size;
    gbx_job_free(mark);

    gbx_job_t *ack = s_op_job(GBX_JOB_ACK, seq, id);
    s_run1(fx, ack);
    assert_rc(ack->commit, GBX_OK);
    assert_rc(ack->rc, GBX_OK);
    assert_int_equal(ack->entry.size, size);
    assert_false(s_entry(fx, GBX_KS_QUEUES, seq, &e));
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 0);
    assert_int_equal(s_depth(fx), 0); /* gbx_ingress_dequeued after the commit */
    gbx_job_free(ack);

    ack = s_op_job(GBX_JOB_ACK, seq, id);
    s_run1(fx, ack);
    assert_rc(ack->commit, GBX_OK);
    assert_rc(ack->rc, GBX_E_STATE);
    gbx_job_free(ack);
    assert_int_equal(s_depth(fx), 0);

    /* MARK and ACK in one group on a second message */
    uint64_t seq2 = s_store_one(fx, 41);
    gbx_job_t *jobs[2] = {s_op_job(GBX_JOB_MARK, seq2, 0),
                          s_op_job(GBX_JOB_ACK, seq2, gbx_delivery_id(seq2, 1))};
    s_run(fx, jobs, 2);
    for (int i = 0; i < 2; i++) {
        assert_rc(jobs[i]->commit, GBX_OK);
        assert_rc(jobs[i]->rc, GBX_OK);
    }
    assert_false(s_entry(fx, GBX_KS_QUEUES, seq2, &e));
    assert_int_equal(s_depth(fx), 0);
    s_free_all(jobs, 2, NULL);

    /* an ACK with an id never issued does not take a good MARK with it */
    uint64_t seq3 = s_store_one(fx, 42);
    jobs[0] = s_op_job(GBX_JOB_ACK, seq3, gbx_delivery_id(seq3, 5));
    jobs[1] = s_op_job(GBX_JOB_MARK, seq3, 0);
    s_run(fx, jobs, 2);
    assert_rc(jobs[0]->commit, GBX_OK);
    assert_rc(jobs[0]->rc, GBX_E_STATE);
    assert_rc(jobs[1]->commit, GBX_OK);
    assert_rc(jobs[1]->rc, GBX_OK);
    assert_true(s_entry(fx, GBX_KS_QUEUES, seq3, &e));
    assert_int_equal(e.deliveries, 1);
    assert_int_equal(s_depth(fx), 1);
    s_free_all(jobs, 2, NULL);
}

static void test_op_kinds(void **state)
{
    s_fix_t *fx = *state;
    uint64_t a = s_store_one(fx, 50), b = s_store_one(fx, 51), c = s_store_one(fx, 52);
    assert_int_equal(s_depth(fx), 3);
    gbx_qentry_t e;

    gbx_job_t *jobs[4];
    jobs[0] = s_op_job(GBX_JOB_MARK, a, 0);
    jobs[1] = s_op_job(GBX_JOB_UNMARK, a, gbx_delivery_id(a, 1));
    jobs[2] = s_op_job(GBX_JOB_DEADLETTER, b, 0);
    jobs[3] = s_op_job(GBX_JOB_EXPIRE, c, 0);
    s_run(fx, jobs, 4);
    for (int i = 0; i < 4; i++) {
        assert_rc(jobs[i]->commit, GBX_OK);
        assert_rc(jobs[i]->rc, GBX_OK);
    }
    assert_true(s_entry(fx, GBX_KS_QUEUES, a, &e));
    assert_int_equal(e.deliveries, 1);
    assert_int_equal(e.attempts, 0);
    assert_false(s_entry(fx, GBX_KS_QUEUES, b, &e));
    assert_true(s_entry(fx, GBX_KS_DLQ, b, &e));
    assert_false(s_entry(fx, GBX_KS_QUEUES, c, &e));
    assert_int_equal(s_count(fx->store, GBX_KS_MESSAGES), 2); /* a, and b dead-lettered */
    assert_int_equal(s_depth(fx), 1);
    s_free_all(jobs, 4, NULL);

    /* FORGET: a's dedupe record and its due key */
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_EXPIRY, NULL, 0, &it), GBX_OK);
    gbx_job_t *fg = NULL;
    size_t dedupe_keys = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        uint64_t at, seq;
        gbx_due_kind_t kind;
        assert_rc(gbx_due_parse(k, klen, &at, &seq, &kind), GBX_OK);
        if (kind != GBX_DUE_DEDUPE)
            continue;
        dedupe_keys++;
        if (seq != a)
            continue;
        fg = gbx_job_new(GBX_JOB_FORGET);
        assert_non_null(fg);
        memcpy(fg->due, k, GBX_DUE_KEY_LEN);
        fg->val = malloc(vlen);
        assert_non_null(fg->val);
        memcpy(fg->val, v, vlen);
        fg->vlen = vlen;
    }
    gbx_store_iter_destroy(&it);
    assert_int_equal(dedupe_keys, 3);
    assert_non_null(fg);
    uint8_t *dv = NULL;
    size_t dvlen = 0;
    assert_rc(gbx_store_get(fx->store, GBX_KS_DEDUPE, fg->val, fg->vlen, &dv, &dvlen), GBX_OK);
    assert_non_null(dv);
    free(dv);
    s_run1(fx, fg);
    assert_rc(fg->commit, GBX_OK);
    assert_rc(fg->rc, GBX_OK);
    assert_rc(gbx_store_get(fx->store, GBX_KS_DEDUPE, fg->val, fg->vlen, &dv, &dvlen), GBX_OK);
    assert_null(dv);
    assert_rc(gbx_store_get(fx->store, GBX_KS_EXPIRY, fg->due, GBX_DUE_KEY_LEN, &dv, &dvlen),
              GBX_OK);
    assert_null(dv);
    assert_int_equal(s_count(fx->store, GBX_KS_DEDUPE), 2);
    gbx_job_free(fg);
}

static void test_stats_groups(void **state)
{
    s_fix_t *fx = *state;
    enum { N = 64 };
    gbx_job_t *jobs[N];
    s_msg_t ms[N];
    for (int i = 0; i < N; i++)
        jobs[i] = s_submit_job(fx, 100 + (uint32_t)i, M_GOOD, &ms[i]);
    s_run(fx, jobs, N);
    for (int i = 0; i < N; i++) {
        assert_rc(jobs[i]->commit, GBX_OK);
        assert_rc(jobs[i]->rc, GBX_OK);
        assert_rc(jobs[i]->sub.result.reason, GBX_OK);
    }
    gbx_writer_stats_t st;
    gbx_writer_stats(fx->w, &st);
    assert_int_equal(st.jobs, N);
    assert_true(st.groups < st.jobs);
    assert_true(st.groups >= N / 16);
    assert_true(st.max_group <= 16 && st.max_group > 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), N);
    print_message("writer: %llu jobs in %llu groups; apply %llu us, seal %llu us, commit %llu us\n",
                  (unsigned long long)st.jobs, (unsigned long long)st.groups,
                  (unsigned long long)(st.apply_ns / 1000), (unsigned long long)(st.seal_ns / 1000),
                  (unsigned long long)(st.commit_ns / 1000));
    s_free_all(jobs, N, ms);
}

static void test_stop_drains(void **state)
{
    s_fix_t *fx = *state;
    enum { N = 20 };
    gbx_job_t *jobs[N];
    s_msg_t ms[N];
    for (int i = 0; i < N; i++)
        jobs[i] = s_submit_job(fx, 200 + (uint32_t)i, M_GOOD, &ms[i]);
    assert_rc(gbx_chan_push_all(fx->in, (void *const *)jobs, N), GBX_OK);
    gbx_writer_stop(&fx->w); /* at once: most jobs are still in the input */
    assert_null(fx->w);
    assert_true(gbx_chan_done(fx->in));
    assert_int_equal(gbx_chan_len(fx->out), N);
    gbx_job_t *back[N];
    s_collect(fx, back, N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(back[i], jobs[i]);
        assert_rc(jobs[i]->commit, GBX_OK);
        assert_rc(jobs[i]->rc, GBX_OK);
        Gbx__V1__Frame *f = s_answer(jobs[i]);
        assert_int_equal(f->body_case, GBX__V1__FRAME__BODY_ACCEPTED);
        gbx__v1__frame__free_unpacked(f, NULL);
    }
    assert_int_equal(s_count(fx->store, GBX_KS_QUEUES), N);
    s_free_all(jobs, N, ms);
    gbx_writer_stop(&fx->w); /* NULL-safe */
}

static void test_args(void **state)
{
    s_fix_t *fx = *state;
    gbx_writer_opts_t o;
    memset(&o, 0, sizeof o);
    gbx_writer_t *w = NULL;
    assert_rc(gbx_writer_start(NULL, &w), GBX_E_ARG);
    assert_rc(gbx_writer_start(&o, &w), GBX_E_ARG);
    o.store = fx->store;
    o.ingress = fx->ing;
    o.in = fx->in;
    assert_rc(gbx_writer_start(&o, &w), GBX_E_ARG); /* no out */
    assert_null(w);
    gbx_writer_stop(NULL);
    gbx_writer_stats(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_commit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_in_group, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rejected_in_group, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_mark_ack, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_op_kinds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stats_groups, s_setup_16, s_teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains, s_setup_4, s_teardown),
        cmocka_unit_test_setup_teardown(test_args, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
