/*  test_trail: the audit trail (broker/trail.h) through the store's commits
    (broker/store.h) on a real RocksDB in a temporary directory. Expected
    values are computed here from the records' texts: leaf = gbx_merkle_leaf
    over the text (newline-terminated) and its "i=" line, chain from 32 zero
    bytes by gbx_trail_chain (itself checked against BLAKE2b-256 of
    0x02 || prev || leaf), trees by gbx_merkle_build.

    Fixture: a temp dir with an open store and a node identity "demo-1";
    the fixture keeps the leaf and chain of every record the test appended.

    Reading: records through gbx_trail_iter / gbx_trail_get only; the raw
    audit keyspace (one segment per commit: be64 of its first record's
    index -> its sealed records concatenated) is read to check that layout
    and written to tamper with it, in place or as tests/tools/audit_tamper.c
    does (every segment deleted, each record written back as its own
    segment under its position).

    Cases:
      numbering          empty: no record, no segment; 3 records in one batch,
                         then a batch: append, mark, two appends, rollback
                         (appended count back to 1), append; a record without
                         a trailing newline; two more; batches of 4, 1, 5, 2:
                         20 records, exactly 8 keys be64(0, 3, 5, 6, 8, 12, 13,
                         18), each the concatenation of its commit's records
                         sealed (text, "i=", "chain=", newline added to the
                         one without), nothing rolled back; the iterator from
                         every m in 0..22 and UINT64_MAX (mid-segment too)
                         yields exactly m..19; gbx_trail_get(i) each record,
                         NULL for 20, 21, 1000, UINT64_MAX; parse gives index,
                         text, leaf and chain; head size, chain, durable; a
                         value without the seal lines does not parse
      reopen             signer every 4, 10 records: checkpoints at 4 and 8;
                         destroy, reopen: head (size, chain, checkpoint, its
                         time) equal; 3 more records continue numbering and
                         chain, a checkpoint at 12 once the signer is back;
                         the whole trail checks from record 0
      checkpoints        signer every 5, fixed clock; 12 single-record
                         commits: checkpoints at 5 and 10 only (head follows),
                         each verifies under the node key, root = build over
                         the leaves, chain = record size-1's chain, at_ms =
                         the clock; checkpoint_after(i) = first of more than i
                         records; an empty batch with the flag makes one at
                         12; again (nothing uncovered, clock moved) makes none;
                         2 records with the flag: one at 14; another key does
                         not verify them
      no_signer          12 records and a flagged batch without a signer: no
                         checkpoint stored, head.checkpoint 0
      proofs             300 then 600 records in batches of 1..13: stored nodes
                         of level 8 and 9 equal the built subtrees (none of
                         level 7); prove(index, size) = gbx_merkle_path of the
                         build over the leaves for many pairs, peaks_at(size)
                         root = build root, consistency(m, n) passes
                         gbx_merkle_check_consistency and fails for another root
      check_clean        gbx_trail_check over the store: every record and each
                         checkpoint (5, 10, 15, 20) GBX_OK; 4 segments of 5;
                         rewritten unchanged one per segment: still GBX_OK
      tamper_edit        one byte of record 7's text changed, in its segment
                         (gbx_trail_get sees it), then (segment restored,
                         clean) as audit-tamper: BROKEN at 7, why names record 7
      tamper_delete      record 7 cut out of its segment, then as audit-tamper:
                         BROKEN at 7 ("record 7 expected, record 8 found"),
                         gbx_trail_get(7) NULL
      tamper_swap        records 7 and 8 swapped, in the segment, then as
                         audit-tamper: BROKEN at 7
      tamper_forger      record 7's text changed and every chain line from 7
                         recomputed, written back as audit-tamper: records all
                         pass up to 10, the checkpoint at 10 fails
                         ("checkpoint at 10 records ... root")
      tamper_cut         segment 5..9 truncated in record 7 (its text, its i=
                         line, its chain line, its last newline): BROKEN at 7
                         "not a sealed record", gbx_trail_get(7) NULL, 6 intact;
                         in record 5: at 5; at record 7's start: at 7 ("record
                         10 found"); the last segment in record 17: at 17
      tamper_checkpoint  checkpoint at 10 re-signed by another key: "forged";
                         its root altered (signature kept): BROKEN; its root
                         altered and re-signed with the node key: BROKEN with
                         the root why; its chain altered and re-signed:
                         BROKEN; the good one back: all pass
      retention          every 100, 350 records (synced): prune to 200 then
                         commit (the prune alone in its batch): deleted 200,
                         records 0..199 gone, 200.. kept, anchor (200, chain
                         of 199, peaks whose root is the checkpoint's),
                         head.first 200; a checker from the anchor passes
                         200..349 and the checkpoint at 300; proofs and
                         consistency for records >= 200 equal the full tree;
                         prune to 200, 100 or 0 again: GBX_E_ARG, to 250:
                         GBX_E_STATE, beyond the size: GBX_E_ARG, nothing
                         queued; up to 400 written unsynced (checkpoint at
                         400): prune 400 GBX_E_ARG until gbx_store_sync, then
                         deleted 200; reopen: head.first 400, prune 400
                         GBX_E_ARG, records continue and check from the
                         anchor; after each prune the audit keyspace holds exactly
                         the segments from the first record kept on
                         (gbx_trail_get NULL before it)
      retention_audited  the same with an audit record appended to each prune
                         batch, as gbxd's job does (records shift by one)
      read_only          beside the open writer, a read-only open sees the
                         head and records as of its opening (not the writer's
                         later ones); its commits fail and leave its head; the
                         writer goes on
      put_cosigs         checkpoint at 5 cosigned by peer-2 and stored: read
                         back with the cosig, which verifies (and not under
                         another key); peer-3 merged in, peer-2 again not
                         duplicated; another root: GBX_E_BAD_SIGNATURE, no
                         checkpoint of that size: GBX_E_STATE, nothing queued
      two_prunes_one_batch  prune to 200 then to 300 in one batch (two
                         operators in one writer group): the second starts at
                         the batch's anchor (100 refused, 300 deletes 100
                         records), the trail starts at 300 and verifies */
#include "tu_cmocka.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "gbx/checkpoint.h"
#include "gbx/identity.h"
#include "gbx/merkle.h"
#include "store.h"
#include "trail.h"

#define S_NODE  "demo-1"
#define S_NOW   UINT64_C(1790000001000)
#define S_MAXR  1024u                            /* records a case may append */
#define S_CHAIN (6u + 2u * GBX_MERKLE_HASH + 1u) /* "chain=<hex>\n" */
#define S_NREC  20u                              /* records of the numbering case */

/* ------------------------------------------------------------- fixtures */

typedef struct {
    char *dir;
    gbx_store_t *store;
    gbx_identity_t *id;
    uint64_t n; /* records appended (and committed or written) so far */
    gbx_hash_t leaf[S_MAXR];
    gbx_hash_t chain[S_MAXR];
    uint64_t now; /* the clock */
    int clock_calls;
} s_fix_t;

static uint64_t s_clock(void *arg)
{
    s_fix_t *fx = arg;
    fx->clock_calls++;
    return fx->now;
}

static gbx_store_t *s_open(const char *dir)
{
    gbx_store_t *st = NULL;
    assert_rc(gbx_store_open(dir, NULL, &st), GBX_OK);
    assert_non_null(st);
    assert_non_null(gbx_store_trail(st));
    return st;
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tmpdir();
    fx->store = s_open(fx->dir);
    assert_rc(gbx_identity_generate(S_NODE, &fx->id), GBX_OK);
    fx->now = S_NOW;
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    gbx_store_destroy(&fx->store);
    gbx_identity_destroy(&fx->id);
    tu_rmtree_path(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static const uint8_t *s_pk(const s_fix_t *fx)
{
    return gbx_identity_public(fx->id)->sign_pk;
}

static void s_signer(s_fix_t *fx, uint64_t every)
{
    assert_rc(gbx_trail_set_signer(gbx_store_trail(fx->store), S_NODE, gbx_identity_sign_sk(fx->id),
                                   every, s_clock, fx),
              GBX_OK);
}

/*  The text of the I-th record this test appends (newline-terminated). */
static int s_text(uint64_t i, char *buf, size_t cap)
{
    return snprintf(buf, cap, "v=1\nevent=TEST\nat_ms=%" PRIu64 "\nn=%" PRIu64 "\n", S_NOW + i, i);
}

/*  Records the leaf and chain of the next record, whose text (with its
    newline) is TEXT (LEN bytes). */
static void s_expect_next(s_fix_t *fx, const char *text, size_t len)
{
    assert_true(fx->n < S_MAXR);
    char buf[512];
    assert_true(len + 32 < sizeof buf);
    memcpy(buf, text, len);
    int k = snprintf(buf + len, sizeof buf - len, "i=%" PRIu64 "\n", fx->n);
    gbx_merkle_leaf((const uint8_t *)buf, len + (size_t)k, fx->leaf[fx->n]);
    static const gbx_hash_t zero = {0};
    gbx_trail_chain(fx->n ? fx->chain[fx->n - 1] : zero, fx->leaf[fx->n], fx->chain[fx->n]);
    fx->n++;
}

/*  Appends the next record to B. */
static void s_append(s_fix_t *fx, gbx_batch_t *b)
{
    char text[128];
    int len = s_text(fx->n, text, sizeof text);
    assert_rc(gbx_batch_append(b, text, (size_t)len), GBX_OK);
    s_expect_next(fx, text, (size_t)len);
}

/*  Appends N records, committing every PER records (synced commits, or
    gbx_store_write when WRITE_ONLY). */
static void s_add_by(s_fix_t *fx, uint64_t n, uint64_t per, int write_only)
{
    gbx_batch_t *b = NULL;
    for (uint64_t k = 0; k < n; k++) {
        if (!b)
            assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
        s_append(fx, b);
        if ((k + 1) % per == 0 || k + 1 == n) {
            if (write_only)
                assert_rc(gbx_store_write(fx->store, &b), GBX_OK);
            else
                assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
            assert_null(b);
        }
    }
}

static void s_add(s_fix_t *fx, uint64_t n, uint64_t per)
{
    s_add_by(fx, n, per, 0);
}

/*  Commits an empty batch, with the checkpoint flag when FLAG. */
static void s_commit_empty(s_fix_t *fx, int flag)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    if (flag)
        gbx_batch_checkpoint(b);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    assert_null(b);
}

static void s_head(s_fix_t *fx, gbx_trail_head_t *h)
{
    gbx_trail_head(gbx_store_trail(fx->store), h);
}

/*  The size the head's latest checkpoint covers. */
static uint64_t s_head_checkpoint(s_fix_t *fx)
{
    gbx_trail_head_t h;
    s_head(fx, &h);
    return h.checkpoint;
}

/*  Record INDEX of ST by gbx_trail_get (malloc'ed, NULL when absent). */
static uint8_t *s_get_rec(gbx_store_t *st, uint64_t index, size_t *len)
{
    uint8_t *v = NULL;
    *len = 0;
    assert_rc(gbx_trail_get(st, index, &v, len), GBX_OK);
    return v;
}

/*  The raw segment stored under be64(AT) in ST's audit keyspace
    (malloc'ed, NULL when absent). */
static uint8_t *s_get_seg(gbx_store_t *st, uint64_t at, size_t *len)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES], *v = NULL;
    gbx_store_seq_key(at, key);
    *len = 0;
    assert_rc(gbx_store_get(st, GBX_KS_AUDIT, key, sizeof key, &v, len), GBX_OK);
    return v;
}

/*  Writes VAL as the segment under be64(AT) (NULL: deletes it), behind the
    trail's back (a batch without records). */
static void s_put_seg(s_fix_t *fx, uint64_t at, const void *val, size_t len)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(at, key);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    if (val)
        assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, val, len), GBX_OK);
    else
        assert_rc(gbx_batch_delete(b, GBX_KS_AUDIT, key, sizeof key), GBX_OK);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
}

/*  The trail's records as a forger loads them (tests/tools/audit_tamper.c):
    each one's bytes and the position it is written back at. */
#define S_MAXT 64u
typedef struct {
    uint8_t *rec[S_MAXT]; /* NULL: dropped */
    size_t len[S_MAXT];
    uint64_t pos[S_MAXT];
    size_t n;
} s_recs_t;

static void s_load(gbx_store_t *st, s_recs_t *rs)
{
    memset(rs, 0, sizeof *rs);
    gbx_trail_iter_t *it = NULL;
    assert_rc(gbx_trail_iter_new(st, 0, &it), GBX_OK);
    const uint8_t *v = NULL;
    size_t len = 0;
    while (gbx_trail_iter_next(it, &v, &len)) {
        assert_true(rs->n < S_MAXT);
        gbx_trail_rec_t r;
        assert_rc(gbx_trail_parse(v, len, &r), GBX_OK);
        rs->rec[rs->n] = malloc(len);
        assert_non_null(rs->rec[rs->n]);
        memcpy(rs->rec[rs->n], v, len);
        rs->len[rs->n] = len;
        rs->pos[rs->n] = r.index;
        rs->n++;
    }
    assert_rc(gbx_trail_iter_error(it), GBX_OK);
    gbx_trail_iter_destroy(&it);
}

/*  What audit-tamper writes: every segment deleted, the records of RS
    written back each as its own segment under its position, in one batch
    without records. Frees RS's records. */
static void s_rewrite(s_fix_t *fx, s_recs_t *rs)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_AUDIT, NULL, 0, &it), GBX_OK);
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        assert_rc(gbx_batch_delete(b, GBX_KS_AUDIT, k, klen), GBX_OK);
    }
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    for (size_t k = 0; k < rs->n; k++) {
        if (!rs->rec[k])
            continue;
        uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
        gbx_store_seq_key(rs->pos[k], key);
        assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, rs->rec[k], rs->len[k]), GBX_OK);
        free(rs->rec[k]);
        rs->rec[k] = NULL;
    }
    assert_int_equal(gbx_batch_appended(b), 0);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    assert_null(b);
}

/*  The number of keys in ST's audit keyspace. */
static unsigned s_count_segs(gbx_store_t *st)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, GBX_KS_AUDIT, NULL, 0, &it), GBX_OK);
    unsigned n = 0;
    for (; gbx_store_iter_valid(it) && n < 100000; gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/*  Writes checkpoint CP's text form under the documented key. */
static void s_put_cp(s_fix_t *fx, const gbx_checkpoint_t *cp)
{
    uint8_t key[9];
    key[0] = 'c';
    for (int i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(cp->size >> (56 - 8 * i));
    char text[GBX_CHECKPOINT_TEXT_MAX];
    assert_rc(gbx_checkpoint_format(cp, text, sizeof text), GBX_OK);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_TRAIL, key, sizeof key, text, strlen(text)), GBX_OK);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
}

/*  The root of the tree over the first SIZE saved leaves. */
static void s_root(const s_fix_t *fx, uint64_t size, gbx_hash_t out)
{
    gbx_merkle_t *t = NULL;
    assert_rc(gbx_merkle_build(fx->leaf, (size_t)size, &t), GBX_OK);
    memcpy(out, gbx_merkle_root(t), GBX_MERKLE_HASH);
    gbx_merkle_destroy(&t);
}

/*  The number of checkpoints stored (keys 'c' of the trail keyspace). */
static unsigned s_count_cps(gbx_store_t *st)
{
    uint8_t prefix = 'c';
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, GBX_KS_TRAIL, &prefix, 1, &it), GBX_OK);
    unsigned n = 0;
    for (; gbx_store_iter_valid(it) && n < 10000; gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

/*  Checks the stored checkpoint of SIZE against the saved leaves and chains. */
static void s_check_cp(s_fix_t *fx, uint64_t size, gbx_checkpoint_t *cp)
{
    assert_rc(gbx_trail_checkpoint(fx->store, size, cp), GBX_OK);
    assert_int_equal(cp->size, size);
    assert_string_equal(cp->node, S_NODE);
    assert_rc(gbx_checkpoint_verify(cp, s_pk(fx)), GBX_OK);
    gbx_hash_t root;
    s_root(fx, size, root);
    assert_memory_equal(cp->root, root, GBX_MERKLE_HASH);
    assert_memory_equal(cp->chain, fx->chain[size - 1], GBX_MERKLE_HASH);
}

/*  Runs the checker over ST's records (gbx_trail_iter) from its anchor: each record,
    and each stored checkpoint once the records it covers are checked.
    Returns the first failure (*CK where it stopped, WHY its sentence). */
static gbx_err_t s_verify(gbx_store_t *st, const uint8_t *pk, gbx_trail_check_t *ck, char *why,
                          size_t why_len)
{
    uint64_t first = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    assert_rc(gbx_trail_anchor(st, &first, chain, &peaks), GBX_OK);
    gbx_trail_check_init(ck, first, chain, &peaks);
    why[0] = '\0';
    gbx_trail_iter_t *it = NULL;
    assert_rc(gbx_trail_iter_new(st, first, &it), GBX_OK);
    gbx_err_t rc = GBX_OK;
    const uint8_t *v = NULL;
    size_t vlen = 0;
    while (rc == GBX_OK && gbx_trail_iter_next(it, &v, &vlen)) {
        rc = gbx_trail_check_record(ck, v, vlen, why, why_len);
        gbx_checkpoint_t cp;
        if (rc == GBX_OK && gbx_trail_checkpoint(st, ck->next, &cp) == GBX_OK)
            rc = gbx_trail_check_checkpoint(ck, &cp, pk, why, why_len);
    }
    assert_rc(gbx_trail_iter_error(it), GBX_OK);
    gbx_trail_iter_destroy(&it);
    return rc;
}

/*  The sealed form of TEXT (LEN bytes, newline-terminated) as record INDEX
    after PREV; its chain into CHAIN. Returns the length written into OUT. */
static size_t s_seal(const char *text, size_t len, uint64_t index, const gbx_hash_t prev,
                     gbx_hash_t chain, char *out, size_t cap)
{
    assert_true(len + 32 + S_CHAIN < cap);
    memcpy(out, text, len);
    size_t n = len + (size_t)snprintf(out + len, cap - len, "i=%" PRIu64 "\n", index);
    gbx_hash_t leaf;
    gbx_merkle_leaf((const uint8_t *)out, n, leaf);
    gbx_trail_chain(prev, leaf, chain);
    memcpy(out + n, "chain=", 6);
    gbx_hex(chain, GBX_MERKLE_HASH, out + n + 6);
    n += 6 + 2 * GBX_MERKLE_HASH;
    out[n++] = '\n';
    return n;
}

/*  The sealed form of record I as the fixture appended it (s_text). */
static size_t s_sealed(const s_fix_t *fx, uint64_t i, char *out, size_t cap)
{
    static const gbx_hash_t zero = {0};
    char text[128];
    int len = s_text(i, text, sizeof text);
    gbx_hash_t ch;
    size_t n = s_seal(text, (size_t)len, i, i ? fx->chain[i - 1] : zero, ch, out, cap);
    assert_memory_equal(ch, fx->chain[i], GBX_MERKLE_HASH);
    return n;
}

/*  The segment under be64(AT) (malloc'ed), asserted to be exactly records
    AT .. AT+N-1 sealed, concatenated; OFF[k] where record AT+k starts in
    it, OFF[N] its length. */
static uint8_t *s_seg(s_fix_t *fx, uint64_t at, uint64_t n, size_t *off)
{
    size_t vlen = 0;
    uint8_t *v = s_get_seg(fx->store, at, &vlen);
    assert_non_null(v);
    off[0] = 0;
    for (uint64_t k = 0; k < n; k++) {
        char want[512];
        size_t wlen = s_sealed(fx, at + k, want, sizeof want);
        assert_true(off[k] + wlen <= vlen);
        assert_memory_equal(v + off[k], want, wlen);
        off[k + 1] = off[k] + wlen;
    }
    assert_int_equal(off[n], vlen);
    return v;
}

/*  The audit keyspace holds segments from FIRST on only, each under its
    first record's index, exactly the fixture's records FIRST .. n-1 sealed
    and concatenated. Returns the number of segments. */
static unsigned s_expect_segs(s_fix_t *fx, uint64_t first)
{
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_AUDIT, NULL, 0, &it), GBX_OK);
    uint64_t next = first;
    unsigned nseg = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it), nseg++) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        assert_int_equal(klen, GBX_STORE_SEQ_KEY_BYTES);
        if (gbx_store_seq_from_key(k) != next)
            fail_msg("segment under %" PRIu64 ", want %" PRIu64, gbx_store_seq_from_key(k), next);
        assert_true(vlen > 0);
        for (size_t p = 0; p < vlen; next++) {
            assert_true(next < fx->n);
            char want[512];
            size_t wlen = s_sealed(fx, next, want, sizeof want);
            assert_true(p + wlen <= vlen);
            assert_memory_equal(v + p, want, wlen);
            p += wlen;
        }
    }
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    assert_int_equal(next, fx->n);
    return nseg;
}

/* ------------------------------------------------------------------ cases */

static void test_numbering(void **state)
{
    s_fix_t *fx = *state;
    static const char *rolled[] = {"v=1\nevent=ROLLED_BACK\nn=1\n",
                                   "v=1\nevent=ROLLED_BACK\nn=2\n"};
    static const char nonl[] = "v=1\nevent=NO_NEWLINE\nn=5";
    char texts[S_NREC][128];
    size_t lens[S_NREC];

    /* gbx_trail_chain is BLAKE2b-256(0x02 || prev || leaf) */
    gbx_hash_t a, b2, want, got;
    memset(a, 0x11, sizeof a);
    memset(b2, 0x22, sizeof b2);
    uint8_t in[1 + 2 * GBX_MERKLE_HASH];
    in[0] = 0x02;
    memcpy(in + 1, a, GBX_MERKLE_HASH);
    memcpy(in + 1 + GBX_MERKLE_HASH, b2, GBX_MERKLE_HASH);
    crypto_generichash(want, sizeof want, in, sizeof in, NULL, 0);
    gbx_trail_chain(a, b2, got);
    assert_memory_equal(got, want, GBX_MERKLE_HASH);

    /* an empty trail: no record, no segment */
    gbx_trail_iter_t *ti0 = NULL;
    const uint8_t *v0 = NULL;
    size_t l0 = 0;
    assert_rc(gbx_trail_iter_new(fx->store, 0, &ti0), GBX_OK);
    assert_int_equal(gbx_trail_iter_next(ti0, &v0, &l0), 0);
    assert_rc(gbx_trail_iter_error(ti0), GBX_OK);
    gbx_trail_iter_destroy(&ti0);
    assert_null(s_get_rec(fx->store, 0, &l0));
    assert_int_equal(s_count_segs(fx->store), 0);

    gbx_batch_t *b = NULL;
    /* batch A: records 0, 1, 2 */
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    for (int k = 0; k < 3; k++) {
        lens[k] = (size_t)s_text(fx->n, texts[k], sizeof texts[k]);
        s_append(fx, b);
    }
    assert_int_equal(gbx_batch_appended(b), 3);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    assert_null(b);

    /* batch B: 3, mark, two rolled back, 4 */
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    lens[3] = (size_t)s_text(fx->n, texts[3], sizeof texts[3]);
    s_append(fx, b);
    gbx_batch_mark(b);
    assert_rc(gbx_batch_append(b, rolled[0], strlen(rolled[0])), GBX_OK);
    assert_rc(gbx_batch_append(b, rolled[1], strlen(rolled[1])), GBX_OK);
    assert_int_equal(gbx_batch_appended(b), 3);
    assert_rc(gbx_batch_rollback(b), GBX_OK);
    assert_int_equal(gbx_batch_appended(b), 1);
    lens[4] = (size_t)s_text(fx->n, texts[4], sizeof texts[4]);
    s_append(fx, b);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);

    /* batch C: record 5 without a trailing newline */
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    assert_rc(gbx_batch_append(b, nonl, strlen(nonl)), GBX_OK);
    lens[5] = (size_t)snprintf(texts[5], sizeof texts[5], "%s\n", nonl);
    s_expect_next(fx, texts[5], lens[5]);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);

    /* batch D: 6, 7 */
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    for (int k = 6; k < 8; k++) {
        lens[k] = (size_t)s_text(fx->n, texts[k], sizeof texts[k]);
        s_append(fx, b);
    }
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    assert_int_equal(fx->n, 8);

    /* batches E..H: 4, 1, 5 and 2 records */
    static const unsigned per[] = {4, 1, 5, 2};
    for (size_t j = 0; j < sizeof per / sizeof per[0]; j++) {
        assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
        for (unsigned k = 0; k < per[j]; k++) {
            lens[fx->n] = (size_t)s_text(fx->n, texts[fx->n], sizeof texts[fx->n]);
            s_append(fx, b);
        }
        assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    }
    assert_int_equal(fx->n, S_NREC);

    /* the sealed records: text, i=, chain= */
    static const gbx_hash_t zero = {0};
    static char sealed[S_NREC][512];
    size_t slen[S_NREC];
    for (uint64_t i = 0; i < S_NREC; i++) {
        gbx_hash_t ch;
        slen[i] = s_seal(texts[i], lens[i], i, i ? fx->chain[i - 1] : zero, ch, sealed[i],
                         sizeof sealed[i]);
        assert_memory_equal(ch, fx->chain[i], GBX_MERKLE_HASH);
    }

    /* the audit keyspace: one segment per commit, under be64 of its first
       record's index, its records sealed and concatenated, nothing rolled
       back */
    static const uint64_t starts[] = {0, 3, 5, 6, 8, 12, 13, 18, S_NREC};
    const size_t nseg = sizeof starts / sizeof starts[0] - 1;
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(fx->store, GBX_KS_AUDIT, NULL, 0, &it), GBX_OK);
    size_t seg = 0;
    for (; gbx_store_iter_valid(it) && seg < 100; gbx_store_iter_next(it), seg++) {
        assert_true(seg < nseg);
        size_t klen = 0, len = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &len);
        uint8_t want_key[GBX_STORE_SEQ_KEY_BYTES];
        gbx_store_seq_key(starts[seg], want_key);
        assert_int_equal(klen, GBX_STORE_SEQ_KEY_BYTES);
        assert_memory_equal(k, want_key, sizeof want_key);
        size_t p = 0;
        for (uint64_t i = starts[seg]; i < starts[seg + 1]; i++) {
            assert_true(p + slen[i] <= len);
            assert_memory_equal(v + p, sealed[i], slen[i]);
            p += slen[i];
        }
        assert_int_equal(p, len);
        assert_null(memmem(v, len, "ROLLED", 6));
    }
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    assert_int_equal(seg, nseg);

    /* the iterator from every position (mid-segment too), and beyond the end */
    for (uint64_t m = 0; m <= S_NREC + 3; m++) {
        uint64_t from = m <= S_NREC + 2 ? m : UINT64_MAX;
        gbx_trail_iter_t *ti = NULL;
        assert_rc(gbx_trail_iter_new(fx->store, from, &ti), GBX_OK);
        assert_non_null(ti);
        uint64_t i = from;
        const uint8_t *v = NULL;
        size_t len = 0;
        while (gbx_trail_iter_next(ti, &v, &len)) {
            if (i >= S_NREC)
                fail_msg("iterator from %" PRIu64 ": more than %u records", from, S_NREC);
            if (len != slen[i] || memcmp(v, sealed[i], len) != 0)
                fail_msg("iterator from %" PRIu64 ": record %" PRIu64 " differs", from, i);
            i++;
        }
        assert_rc(gbx_trail_iter_error(ti), GBX_OK);
        gbx_trail_iter_destroy(&ti);
        assert_null(ti);
        if (from < S_NREC && i != S_NREC)
            fail_msg("iterator from %" PRIu64 ": ended at %" PRIu64, from, i);
        if (from >= S_NREC)
            assert_int_equal(i, from); /* nothing */
    }

    /* gbx_trail_get for every record, and none past the end */
    for (uint64_t i = 0; i < S_NREC; i++) {
        size_t vlen = 0;
        uint8_t *v = s_get_rec(fx->store, i, &vlen);
        assert_non_null(v);
        assert_int_equal(vlen, slen[i]);
        assert_memory_equal(v, sealed[i], slen[i]);

        gbx_trail_rec_t r;
        assert_rc(gbx_trail_parse(v, vlen, &r), GBX_OK);
        assert_int_equal(r.index, i);
        assert_int_equal(r.text_len, lens[i]);
        assert_memory_equal(r.text, texts[i], lens[i]);
        assert_ptr_equal(r.text, (const char *)v);
        assert_memory_equal(r.leaf, fx->leaf[i], GBX_MERKLE_HASH);
        assert_memory_equal(r.chain, fx->chain[i], GBX_MERKLE_HASH);
        /* leaf: over the record up to and including its i= line */
        gbx_hash_t leaf;
        gbx_merkle_leaf(v, vlen - S_CHAIN, leaf);
        assert_memory_equal(leaf, r.leaf, GBX_MERKLE_HASH);
        free(v);
    }
    static const uint64_t past[] = {S_NREC, S_NREC + 1, 1000, UINT64_MAX};
    for (size_t k = 0; k < sizeof past / sizeof past[0]; k++) {
        size_t vlen = 7;
        uint8_t *v = (uint8_t *)"x";
        assert_rc(gbx_trail_get(fx->store, past[k], &v, &vlen), GBX_OK);
        assert_null(v);
    }

    gbx_trail_head_t h;
    s_head(fx, &h);
    assert_int_equal(h.size, S_NREC);
    assert_int_equal(gbx_trail_size(gbx_store_trail(fx->store)), S_NREC);
    assert_int_equal(h.durable, S_NREC);
    assert_int_equal(h.first, 0);
    assert_int_equal(h.checkpoint, 0);
    assert_memory_equal(h.chain, fx->chain[S_NREC - 1], GBX_MERKLE_HASH);

    /* what is not a sealed record */
    gbx_trail_rec_t r;
    static const char plain[] = "v=1\nevent=TEST\n";
    assert_rc(gbx_trail_parse((const uint8_t *)plain, strlen(plain), &r), GBX_E_MALFORMED);
}

static void test_reopen(void **state)
{
    s_fix_t *fx = *state;
    s_signer(fx, 4);
    s_add(fx, 10, 1);
    gbx_trail_head_t before, after;
    s_head(fx, &before);
    assert_int_equal(before.size, 10);
    assert_int_equal(before.checkpoint, 8);
    assert_int_equal(before.checkpoint_ms, S_NOW);
    assert_memory_equal(before.chain, fx->chain[9], GBX_MERKLE_HASH);

    gbx_store_destroy(&fx->store);
    fx->store = s_open(fx->dir);
    s_head(fx, &after);
    assert_int_equal(after.size, before.size);
    assert_int_equal(after.durable, 10);
    assert_int_equal(after.first, 0);
    assert_int_equal(after.checkpoint, 8);
    assert_int_equal(after.checkpoint_ms, S_NOW);
    assert_memory_equal(after.chain, before.chain, GBX_MERKLE_HASH);

    /* numbering and chain continue; the signer is back: due at 12 */
    fx->now = S_NOW + 1;
    s_signer(fx, 4);
    s_add(fx, 3, 1);
    for (uint64_t i = 10; i < 13; i++) {
        size_t vlen = 0;
        uint8_t *v = s_get_rec(fx->store, i, &vlen);
        assert_non_null(v);
        gbx_trail_rec_t r;
        assert_rc(gbx_trail_parse(v, vlen, &r), GBX_OK);
        assert_int_equal(r.index, i);
        assert_memory_equal(r.leaf, fx->leaf[i], GBX_MERKLE_HASH);
        assert_memory_equal(r.chain, fx->chain[i], GBX_MERKLE_HASH);
        free(v);
    }
    s_head(fx, &after);
    assert_int_equal(after.size, 13);
    assert_int_equal(after.checkpoint, 12);
    assert_int_equal(after.checkpoint_ms, S_NOW + 1);
    assert_memory_equal(after.chain, fx->chain[12], GBX_MERKLE_HASH);
    gbx_checkpoint_t cp;
    s_check_cp(fx, 4, &cp);
    s_check_cp(fx, 8, &cp);
    s_check_cp(fx, 12, &cp);
    assert_int_equal(cp.at_ms, S_NOW + 1);

    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.next, 13);
    assert_int_equal(ck.records, 13);
    assert_int_equal(ck.checkpoints, 3);
}

static void test_checkpoints(void **state)
{
    s_fix_t *fx = *state;
    s_signer(fx, 5);
    gbx_trail_head_t h;
    for (uint64_t k = 1; k <= 12; k++) {
        s_add(fx, 1, 1);
        s_head(fx, &h);
        assert_int_equal(h.size, k);
        assert_int_equal(h.checkpoint, k < 5 ? 0 : k < 10 ? 5 : 10);
    }
    assert_int_equal(fx->clock_calls, 2);
    assert_int_equal(h.checkpoint_ms, S_NOW);
    gbx_checkpoint_t cp;
    s_check_cp(fx, 5, &cp);
    assert_int_equal(cp.at_ms, S_NOW);
    assert_int_equal(cp.ncosig, 0);
    s_check_cp(fx, 10, &cp);
    assert_int_equal(cp.at_ms, S_NOW);
    for (uint64_t s = 0; s <= 13; s++)
        if (s != 5 && s != 10)
            assert_rc(gbx_trail_checkpoint(fx->store, s, &cp), GBX_E_STATE);
    assert_int_equal(s_count_cps(fx->store), 2);

    for (uint64_t i = 0; i < 12; i++) {
        gbx_err_t rc = gbx_trail_checkpoint_after(fx->store, i, &cp);
        if (i < 10) {
            assert_rc(rc, GBX_OK);
            assert_int_equal(cp.size, i < 5 ? 5 : 10);
        } else
            assert_rc(rc, GBX_E_STATE);
    }

    /* an empty batch with the flag: a checkpoint of the 12 */
    fx->now = S_NOW + 7;
    s_commit_empty(fx, 1);
    s_check_cp(fx, 12, &cp);
    assert_int_equal(cp.at_ms, S_NOW + 7);
    s_head(fx, &h);
    assert_int_equal(h.size, 12);
    assert_int_equal(h.checkpoint, 12);
    assert_int_equal(h.checkpoint_ms, S_NOW + 7);
    assert_rc(gbx_trail_checkpoint_after(fx->store, 10, &cp), GBX_OK);
    assert_int_equal(cp.size, 12);
    assert_rc(gbx_trail_checkpoint_after(fx->store, 11, &cp), GBX_OK);
    assert_int_equal(cp.size, 12);
    assert_rc(gbx_trail_checkpoint_after(fx->store, 12, &cp), GBX_E_STATE);

    /* again, nothing uncovered: none, the one at 12 unchanged */
    fx->now = S_NOW + 9;
    int calls = fx->clock_calls;
    s_commit_empty(fx, 1);
    s_commit_empty(fx, 0);
    assert_int_equal(fx->clock_calls, calls);
    assert_int_equal(s_count_cps(fx->store), 3);
    s_check_cp(fx, 12, &cp);
    assert_int_equal(cp.at_ms, S_NOW + 7);
    s_head(fx, &h);
    assert_int_equal(h.size, 12);
    assert_int_equal(h.checkpoint, 12);
    assert_int_equal(h.checkpoint_ms, S_NOW + 7);

    /* 2 records with the flag: one at 14, though fewer than 5 are uncovered */
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    s_append(fx, b);
    s_append(fx, b);
    gbx_batch_checkpoint(b);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    s_check_cp(fx, 14, &cp);
    assert_int_equal(cp.at_ms, S_NOW + 9);
    assert_int_equal(s_count_cps(fx->store), 4);

    /* another key does not verify them */
    gbx_identity_t *other = NULL;
    assert_rc(gbx_identity_generate(S_NODE, &other), GBX_OK);
    assert_rc(gbx_checkpoint_verify(&cp, gbx_identity_public(other)->sign_pk), GBX_E_BAD_SIGNATURE);
    gbx_identity_destroy(&other);

    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.records, 14);
    assert_int_equal(ck.checkpoints, 4);
}

static void test_no_signer(void **state)
{
    s_fix_t *fx = *state;
    s_add(fx, 12, 1);
    s_commit_empty(fx, 1);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    s_append(fx, b);
    gbx_batch_checkpoint(b);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    assert_int_equal(s_count_cps(fx->store), 0);
    gbx_checkpoint_t cp;
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &cp), GBX_E_STATE);
    assert_rc(gbx_trail_checkpoint(fx->store, 13, &cp), GBX_E_STATE);
    assert_rc(gbx_trail_checkpoint_after(fx->store, 0, &cp), GBX_E_STATE);
    gbx_trail_head_t h;
    s_head(fx, &h);
    assert_int_equal(h.size, 13);
    assert_int_equal(h.checkpoint, 0);
    assert_int_equal(fx->clock_calls, 0);
}

/*  Proofs of the trail of FX (its first fx->n records) against the build. */
static void s_check_proofs(s_fix_t *fx, const uint64_t *sizes, size_t nsizes, uint64_t low,
                           tu_rng_t *rng)
{
    for (size_t s = 0; s < nsizes; s++) {
        uint64_t size = sizes[s];
        assert_true(size <= fx->n);
        gbx_merkle_t *t = NULL;
        assert_rc(gbx_merkle_build(fx->leaf, (size_t)size, &t), GBX_OK);
        const uint8_t *root = gbx_merkle_root(t);

        gbx_merkle_peaks_t pk;
        assert_rc(gbx_trail_peaks_at(fx->store, size, &pk), GBX_OK);
        assert_int_equal(pk.size, size);
        assert_int_equal(pk.npeaks, __builtin_popcountll(size));
        gbx_hash_t proot;
        assert_rc(gbx_merkle_peaks_root(&pk, proot), GBX_OK);
        assert_memory_equal(proot, root, GBX_MERKLE_HASH);

        uint64_t idx[16];
        size_t nidx = 0;
        uint64_t fixed[] = {0,   1,   size / 3, size / 2, 127,      128,     255,
                            256, 257, 511,      512,      size - 2, size - 1};
        for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
            if (fixed[k] >= low && fixed[k] < size && nidx < 13)
                idx[nidx++] = fixed[k];
        for (int k = 0; k < 3 && size > low; k++)
            idx[nidx++] = low + tu_rng_below(rng, size - low);
        for (size_t k = 0; k < nidx; k++) {
            gbx_hash_t want[GBX_MERKLE_MAX_DEPTH], got[GBX_MERKLE_MAX_DEPTH];
            size_t wlen = 0, glen = 99;
            assert_rc(gbx_merkle_path(t, (size_t)idx[k], want, &wlen), GBX_OK);
            assert_rc(gbx_trail_prove(fx->store, idx[k], size, got, &glen), GBX_OK);
            if (glen != wlen || memcmp(got, want, wlen * GBX_MERKLE_HASH) != 0)
                fail_msg("prove(%" PRIu64 ", %" PRIu64 "): %zu hashes, want %zu, or other hashes",
                         idx[k], size, glen, wlen);
            gbx_hash_t r;
            assert_rc(gbx_merkle_root_from_path(fx->leaf[idx[k]], idx[k], size, got, glen, r),
                      GBX_OK);
            assert_memory_equal(r, root, GBX_MERKLE_HASH);
        }
        /* consistency from each smaller size of the list */
        for (size_t m = 0; m < s; m++) {
            uint64_t msize = sizes[m];
            if (msize >= size || msize < low)
                continue;
            gbx_hash_t proof[GBX_MERKLE_MAX_DEPTH + 1], mroot;
            size_t plen = 0;
            s_root(fx, msize, mroot);
            assert_rc(gbx_trail_consistency(fx->store, msize, size, proof, &plen), GBX_OK);
            gbx_err_t rc = gbx_merkle_check_consistency(msize, mroot, size, root, proof, plen);
            if (rc != GBX_OK)
                fail_msg("consistency(%" PRIu64 ", %" PRIu64 "): %s", msize, size,
                         gbx_err_name(rc));
            mroot[0] ^= 1;
            assert_rc(gbx_merkle_check_consistency(msize, mroot, size, root, proof, plen),
                      GBX_E_BAD_INCLUSION_PATH);
        }
        gbx_merkle_destroy(&t);
    }
}

/*  Asserts the stored node (LEVEL, INDEX) is the built subtree's root (or
    absent when WANT is 0). */
static void s_check_node(s_fix_t *fx, unsigned level, uint64_t index, int want)
{
    uint8_t key[10], *v = NULL;
    size_t vlen = 0;
    key[0] = 'n';
    key[1] = (uint8_t)level;
    for (int i = 0; i < 8; i++)
        key[2 + i] = (uint8_t)(index >> (56 - 8 * i));
    assert_rc(gbx_store_get(fx->store, GBX_KS_TRAIL, key, sizeof key, &v, &vlen), GBX_OK);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_int_equal(vlen, GBX_MERKLE_HASH);
    gbx_merkle_t *t = NULL;
    uint64_t n = (uint64_t)1 << level;
    assert_rc(gbx_merkle_build(fx->leaf + index * n, (size_t)n, &t), GBX_OK);
    assert_memory_equal(v, gbx_merkle_root(t), GBX_MERKLE_HASH);
    gbx_merkle_destroy(&t);
    free(v);
}

static void test_proofs(void **state)
{
    s_fix_t *fx = *state;
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("test_trail proofs", 0x7472616931ull));
    /* batches of 1..13 records */
    while (fx->n < 300)
        s_add(fx, fx->n + 13 <= 300 ? 1 + tu_rng_below(&rng, 13) : 300 - fx->n, 100);
    s_check_node(fx, 8, 0, 1);
    s_check_node(fx, 7, 0, 0);
    s_check_node(fx, 8, 1, 0);
    static const uint64_t s300[] = {1, 2, 3, 7, 8, 100, 128, 255, 256, 257, 299, 300};
    s_check_proofs(fx, s300, sizeof s300 / sizeof s300[0], 0, &rng);

    while (fx->n < 600)
        s_add(fx, fx->n + 13 <= 600 ? 1 + tu_rng_below(&rng, 13) : 600 - fx->n, 100);
    gbx_trail_head_t h;
    s_head(fx, &h);
    assert_int_equal(h.size, 600);
    assert_memory_equal(h.chain, fx->chain[599], GBX_MERKLE_HASH);
    s_check_node(fx, 8, 0, 1);
    s_check_node(fx, 8, 1, 1);
    s_check_node(fx, 9, 0, 1);
    s_check_node(fx, 8, 2, 0);
    static const uint64_t s600[] = {1, 5, 255, 256, 300, 383, 384, 511, 512, 513, 599, 600};
    s_check_proofs(fx, s600, sizeof s600 / sizeof s600[0], 0, &rng);
}

/* ----------------------------------------------------- checker, tampering */

/*  20 records, a checkpoint every 5. */
static void s_trail20(s_fix_t *fx)
{
    s_signer(fx, 5);
    s_add(fx, 20, 5);
    assert_int_equal(s_count_cps(fx->store), 4);
}

static void test_check_clean(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);
    /* by hand: init from zeros, every record, each checkpoint */
    gbx_trail_check_t ck;
    static const gbx_hash_t zero = {0};
    gbx_trail_check_init(&ck, 0, zero, NULL);
    char why[256] = "";
    for (uint64_t i = 0; i < 20; i++) {
        size_t vlen = 0;
        uint8_t *v = s_get_rec(fx->store, i, &vlen);
        assert_non_null(v);
        assert_rc(gbx_trail_check_record(&ck, v, vlen, why, sizeof why), GBX_OK);
        free(v);
        assert_memory_equal(ck.chain, fx->chain[i], GBX_MERKLE_HASH);
        if ((i + 1) % 5 == 0) {
            gbx_checkpoint_t cp;
            assert_rc(gbx_trail_checkpoint(fx->store, i + 1, &cp), GBX_OK);
            assert_rc(gbx_trail_check_checkpoint(&ck, &cp, s_pk(fx), why, sizeof why), GBX_OK);
        }
    }
    assert_int_equal(ck.next, 20);
    assert_int_equal(ck.records, 20);
    assert_int_equal(ck.checkpoints, 4);
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.records, 20);
    assert_int_equal(ck.checkpoints, 4);

    /* the records rewritten unchanged, one per segment (a forger's layout):
       still all pass */
    assert_int_equal(s_expect_segs(fx, 0), 4);
    s_recs_t rs;
    s_load(fx->store, &rs);
    assert_int_equal(rs.n, 20);
    s_rewrite(fx, &rs);
    assert_int_equal(s_count_segs(fx->store), 20);
    assert_int_equal(s_expect_segs(fx, 0), 20);
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.records, 20);
    assert_int_equal(ck.checkpoints, 4);
}

/*  Asserts the checker stops with GBX_E_AUDIT_BROKEN before record AT
    having checked CPS checkpoints, its why holding each of the NEEDLES. */
static void s_expect_broken(s_fix_t *fx, uint64_t at, uint64_t cps, const char *n1, const char *n2)
{
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_E_AUDIT_BROKEN);
    assert_int_equal(ck.next, at);
    assert_int_equal(ck.checkpoints, cps);
    if (n1 && !strstr(why, n1))
        fail_msg("why \"%s\" does not name \"%s\"", why, n1);
    if (n2 && !strstr(why, n2))
        fail_msg("why \"%s\" does not name \"%s\"", why, n2);
}

/*  The checker passes the whole trail of s_trail20. */
static void s_expect_clean(s_fix_t *fx)
{
    gbx_trail_check_t ck;
    char why[256];
    gbx_err_t rc = s_verify(fx->store, s_pk(fx), &ck, why, sizeof why);
    if (rc != GBX_OK)
        fail_msg("the restored trail does not check: %s", why);
    assert_int_equal(ck.records, 20);
    assert_int_equal(ck.checkpoints, 4);
}

/*  Changes "event=TEST" in REC (LEN bytes) to "event=BEST". */
static void s_edit(uint8_t *rec, size_t len)
{
    uint8_t *at = memmem(rec, len, "event=TEST", 10);
    assert_non_null(at);
    at[6] = 'B';
}

static void test_tamper_edit(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);

    /* in place: record 7 edited inside segment 5 (records 5..9) */
    size_t off[6];
    uint8_t *seg = s_seg(fx, 5, 5, off);
    uint8_t *bad = malloc(off[5]);
    assert_non_null(bad);
    memcpy(bad, seg, off[5]);
    s_edit(bad + off[2], off[3] - off[2]);
    s_put_seg(fx, 5, bad, off[5]);
    s_expect_broken(fx, 7, 1, "record 7 ", "chain");
    size_t vlen = 0;
    uint8_t *v = s_get_rec(fx->store, 7, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, off[3] - off[2]);
    assert_memory_equal(v, bad + off[2], vlen);
    free(v);
    free(bad);
    s_put_seg(fx, 5, seg, off[5]);
    free(seg);
    s_expect_clean(fx);

    /* as audit-tamper does: loaded, edited, written back one per segment */
    s_recs_t rs;
    s_load(fx->store, &rs);
    assert_int_equal(rs.n, 20);
    assert_int_equal(rs.pos[7], 7);
    s_edit(rs.rec[7], rs.len[7]);
    s_rewrite(fx, &rs);
    s_expect_broken(fx, 7, 1, "record 7 ", "chain");
}

static void test_tamper_delete(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);

    /* in place: record 7 cut out of segment 5 */
    size_t off[6];
    uint8_t *seg = s_seg(fx, 5, 5, off);
    uint8_t *bad = malloc(off[5]);
    assert_non_null(bad);
    memcpy(bad, seg, off[2]);
    memcpy(bad + off[2], seg + off[3], off[5] - off[3]);
    s_put_seg(fx, 5, bad, off[5] - (off[3] - off[2]));
    free(bad);
    s_expect_broken(fx, 7, 1, "record 7 expected", "record 8 found");
    size_t vlen = 0;
    assert_null(s_get_rec(fx->store, 7, &vlen));
    s_put_seg(fx, 5, seg, off[5]);
    free(seg);
    s_expect_clean(fx);

    /* as audit-tamper does */
    s_recs_t rs;
    s_load(fx->store, &rs);
    assert_int_equal(rs.pos[7], 7);
    free(rs.rec[7]);
    rs.rec[7] = NULL;
    s_rewrite(fx, &rs);
    assert_int_equal(s_count_segs(fx->store), 19);
    s_expect_broken(fx, 7, 1, "record 7 expected", "record 8 found");
    assert_null(s_get_rec(fx->store, 7, &vlen));
    uint8_t *v = s_get_rec(fx->store, 8, &vlen);
    assert_non_null(v);
    free(v);
}

static void test_tamper_swap(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);

    /* in place: records 7 and 8 exchanged inside segment 5 */
    size_t off[6];
    uint8_t *seg = s_seg(fx, 5, 5, off);
    uint8_t *bad = malloc(off[5]);
    assert_non_null(bad);
    size_t l7 = off[3] - off[2], l8 = off[4] - off[3];
    memcpy(bad, seg, off[5]);
    memcpy(bad + off[2], seg + off[3], l8);
    memcpy(bad + off[2] + l8, seg + off[2], l7);
    s_put_seg(fx, 5, bad, off[5]);
    free(bad);
    s_expect_broken(fx, 7, 1, "record 7 expected", "record 8 found");
    s_put_seg(fx, 5, seg, off[5]);
    free(seg);
    s_expect_clean(fx);

    /* as audit-tamper does: each written back at the other's position */
    s_recs_t rs;
    s_load(fx->store, &rs);
    assert_int_equal(rs.pos[7], 7);
    assert_int_equal(rs.pos[8], 8);
    rs.pos[7] = 8;
    rs.pos[8] = 7;
    s_rewrite(fx, &rs);
    s_expect_broken(fx, 7, 1, "record 7 expected", "record 8 found");
}

static void test_tamper_forger(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);
    /* record 7 edited, every chain line from 7 on recomputed, written back
       one per segment */
    s_recs_t rs;
    s_load(fx->store, &rs);
    assert_int_equal(rs.n, 20);
    gbx_hash_t prev;
    memcpy(prev, fx->chain[6], GBX_MERKLE_HASH);
    for (uint64_t i = 7; i < 20; i++) {
        assert_int_equal(rs.pos[i], i);
        gbx_trail_rec_t r;
        assert_rc(gbx_trail_parse(rs.rec[i], rs.len[i], &r), GBX_OK);
        char text[256], out[512];
        assert_true(r.text_len < sizeof text);
        memcpy(text, r.text, r.text_len);
        if (i == 7)
            s_edit((uint8_t *)text, r.text_len);
        gbx_hash_t chain;
        size_t n = s_seal(text, r.text_len, i, prev, chain, out, sizeof out);
        assert_int_equal(n, rs.len[i]);
        if (i > 7) /* only the chain line differs */
            assert_memory_equal(out, rs.rec[i], n - S_CHAIN);
        memcpy(rs.rec[i], out, n);
        memcpy(prev, chain, GBX_MERKLE_HASH);
    }
    s_rewrite(fx, &rs);
    /* every record follows the chain, the checkpoint at 10 does not agree */
    gbx_trail_check_t ck;
    static const gbx_hash_t zero = {0};
    gbx_trail_check_init(&ck, 0, zero, NULL);
    char why[256] = "";
    for (uint64_t i = 0; i < 20; i++) {
        size_t vlen = 0;
        uint8_t *v = s_get_rec(fx->store, i, &vlen);
        assert_non_null(v);
        assert_rc(gbx_trail_check_record(&ck, v, vlen, why, sizeof why), GBX_OK);
        free(v);
    }
    s_expect_broken(fx, 10, 1, "checkpoint at 10 records", "root");
}

/*  Segment AT (N records) of s_trail20 put back cut to its first CUT bytes
    (OFF its record offsets); the checker must stop at record AT_REC having
    checked CPS checkpoints, naming N1 and N2; then the segment is restored. */
static void s_cut(s_fix_t *fx, uint64_t at, const uint8_t *seg, const size_t *off, size_t cut,
                  uint64_t at_rec, uint64_t cps, const char *n1, const char *n2)
{
    s_put_seg(fx, at, seg, cut);
    s_expect_broken(fx, at_rec, cps, n1, n2);
    size_t vlen = 0;
    uint8_t *v = s_get_rec(fx->store, at_rec, &vlen);
    if (v)
        fail_msg("gbx_trail_get(%" PRIu64 ") of a cut record: %zu bytes", at_rec, vlen);
    if (at_rec > at) { /* the records before it in the segment are intact */
        v = s_get_rec(fx->store, at_rec - 1, &vlen);
        assert_non_null(v);
        assert_int_equal(vlen, off[at_rec - at] - off[at_rec - 1 - at]);
        free(v);
    }
    s_put_seg(fx, at, seg, off[5]);
    s_expect_clean(fx);
}

static void test_tamper_cut(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);
    size_t off[6];
    uint8_t *seg = s_seg(fx, 5, 5, off);
    /* in record 7's text, in its i= line, in its chain line, without its
       last newline */
    s_cut(fx, 5, seg, off, off[2] + 10, 7, 1, "record 7 ", "not a sealed record");
    s_cut(fx, 5, seg, off, off[3] - S_CHAIN - 2, 7, 1, "record 7 ", "not a sealed record");
    s_cut(fx, 5, seg, off, off[3] - 20, 7, 1, "record 7 ", "not a sealed record");
    s_cut(fx, 5, seg, off, off[3] - 1, 7, 1, "record 7 ", "not a sealed record");
    /* in record 5, the segment's first */
    s_cut(fx, 5, seg, off, 30, 5, 1, "record 5 ", "not a sealed record");
    /* at a record's end: 7..9 missing */
    s_cut(fx, 5, seg, off, off[2], 7, 1, "record 7 expected", "record 10 found");
    free(seg);
    /* the last segment, in record 17 */
    seg = s_seg(fx, 15, 5, off);
    s_cut(fx, 15, seg, off, off[2] + (off[3] - off[2]) / 2, 17, 3, "record 17 ",
          "not a sealed record");
    free(seg);
}

static void test_tamper_checkpoint(void **state)
{
    s_fix_t *fx = *state;
    s_trail20(fx);
    gbx_checkpoint_t good, cp;
    assert_rc(gbx_trail_checkpoint(fx->store, 10, &good), GBX_OK);

    /* signed by another key under the node's name */
    gbx_identity_t *other = NULL;
    assert_rc(gbx_identity_generate(S_NODE, &other), GBX_OK);
    cp = good;
    assert_rc(gbx_checkpoint_sign(&cp, gbx_identity_sign_sk(other)), GBX_OK);
    gbx_identity_destroy(&other);
    s_put_cp(fx, &cp);
    s_expect_broken(fx, 10, 1, "checkpoint at 10 records", "forged");

    /* its root altered, the signature kept */
    cp = good;
    cp.root[5] ^= 0x40;
    s_put_cp(fx, &cp);
    s_expect_broken(fx, 10, 1, "checkpoint at 10 records", NULL);

    /* its root altered and signed by the node's key: the records disagree */
    assert_rc(gbx_checkpoint_sign(&cp, gbx_identity_sign_sk(fx->id)), GBX_OK);
    s_put_cp(fx, &cp);
    s_expect_broken(fx, 10, 1, "checkpoint at 10 records", "root");

    /* its chain altered and signed by the node's key: the records disagree */
    cp = good;
    cp.chain[9] ^= 0x01;
    assert_rc(gbx_checkpoint_sign(&cp, gbx_identity_sign_sk(fx->id)), GBX_OK);
    s_put_cp(fx, &cp);
    s_expect_broken(fx, 10, 1, "checkpoint at 10 records", NULL);

    /* the good one back: all pass */
    s_put_cp(fx, &good);
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.checkpoints, 4);
}

/* -------------------------------------------------------------- retention */

static void s_expect_gone(s_fix_t *fx, uint64_t from, uint64_t to, int gone)
{
    for (uint64_t i = from; i < to; i++) {
        size_t vlen = 0;
        uint8_t *v = s_get_rec(fx->store, i, &vlen);
        if (gone && v)
            fail_msg("record %" PRIu64 " still stored", i);
        if (!gone && !v)
            fail_msg("record %" PRIu64 " missing", i);
        free(v);
    }
}

static void s_expect_anchor(s_fix_t *fx, uint64_t want_first)
{
    uint64_t first = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    assert_rc(gbx_trail_anchor(fx->store, &first, chain, &peaks), GBX_OK);
    assert_int_equal(first, want_first);
    assert_int_equal(peaks.size, want_first);
    assert_memory_equal(chain, fx->chain[want_first - 1], GBX_MERKLE_HASH);
    gbx_hash_t root;
    assert_rc(gbx_merkle_peaks_root(&peaks, root), GBX_OK);
    gbx_checkpoint_t cp;
    assert_rc(gbx_trail_checkpoint(fx->store, want_first, &cp), GBX_OK);
    assert_memory_equal(root, cp.root, GBX_MERKLE_HASH);
    gbx_hash_t built;
    s_root(fx, want_first, built);
    assert_memory_equal(root, built, GBX_MERKLE_HASH);
}

/*  gbx_trail_prune into a fresh batch expecting WANT; on GBX_OK commits it
    (with an audit record of its own when AUDITED, as gbxd's job does) and
    returns the count deleted, else checks nothing was queued. */
static uint64_t s_prune(s_fix_t *fx, uint64_t upto, gbx_err_t want, int audited)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    uint64_t deleted = 12345;
    gbx_err_t rc = gbx_trail_prune(gbx_store_trail(fx->store), b, upto, &deleted);
    if (rc != want)
        fail_msg("prune(%" PRIu64 "): got %s, want %s", upto, gbx_err_name(rc), gbx_err_name(want));
    if (rc != GBX_OK) {
        assert_int_equal(gbx_batch_count(b), 0);
        gbx_batch_destroy(&b);
        return 0;
    }
    if (audited)
        s_append(fx, b);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    return deleted;
}

/*  Retention: prune batches without records of their own (AUDITED 0), or
    each with one (1). */
static void s_retention(s_fix_t *fx, int audited)
{
    s_signer(fx, 100);
    s_add(fx, 350, 10);
    gbx_trail_head_t h;
    s_head(fx, &h);
    assert_int_equal(h.size, 350);
    assert_int_equal(h.durable, 350);
    assert_int_equal(h.checkpoint, 300);
    assert_int_equal(s_count_cps(fx->store), 3);

    assert_int_equal(s_prune(fx, 200, GBX_OK, audited), 200);
    assert_int_equal(fx->n, 350 + (uint64_t)audited);
    s_expect_gone(fx, 0, 200, 1);
    s_expect_gone(fx, 200, fx->n, 0);
    /* whole segments went: what stays starts with the segment at 200 */
    assert_int_equal(s_expect_segs(fx, 200), 15 + (unsigned)audited);
    s_expect_anchor(fx, 200);
    s_head(fx, &h);
    assert_int_equal(h.size, fx->n);
    assert_int_equal(h.first, 200);
    assert_memory_equal(h.chain, fx->chain[fx->n - 1], GBX_MERKLE_HASH);

    /* a checker from the anchor */
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.next, fx->n);
    assert_int_equal(ck.records, fx->n - 200);
    /* 300, and the one the prune's commit signs (gbx_trail_prune) */
    assert_int_equal(ck.checkpoints, 2);
    assert_int_equal(s_head_checkpoint(fx), fx->n);

    /* proofs of what stays */
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("test_trail retention", 0x7265746eull));
    static const uint64_t sizes[] = {200, 201, 255, 256, 257, 300, 333, 350};
    s_check_proofs(fx, sizes, sizeof sizes / sizeof sizes[0], 200, &rng);

    /* what prune refuses */
    s_prune(fx, 200, GBX_E_ARG, audited);
    s_prune(fx, 100, GBX_E_ARG, audited);
    s_prune(fx, 0, GBX_E_ARG, audited);
    s_prune(fx, 250, GBX_E_STATE, audited);
    s_prune(fx, fx->n + 1, GBX_E_ARG, audited);

    /* written, not synced: not durable, not prunable */
    uint64_t durable = fx->n;
    const uint64_t target = s_head_checkpoint(fx) + 100; /* the next checkpoint */
    s_add_by(fx, target - fx->n, 10, 1);
    s_head(fx, &h);
    assert_int_equal(h.size, target);
    assert_int_equal(h.durable, durable);
    assert_int_equal(h.checkpoint, target);
    s_prune(fx, target, GBX_E_ARG, audited);
    assert_rc(gbx_store_sync(fx->store), GBX_OK);
    s_head(fx, &h);
    assert_int_equal(h.durable, target);
    assert_int_equal(s_prune(fx, target, GBX_OK, audited), target - 200);
    s_expect_gone(fx, 0, target, 1);
    s_expect_gone(fx, target, fx->n, 0);
    s_expect_segs(fx, target);
    s_expect_anchor(fx, target);
    s_head(fx, &h);
    assert_int_equal(h.first, target);

    /* after a reopen */
    gbx_store_destroy(&fx->store);
    fx->store = s_open(fx->dir);
    s_head(fx, &h);
    assert_int_equal(h.first, target);
    assert_int_equal(h.size, fx->n);
    assert_memory_equal(h.chain, fx->chain[fx->n - 1], GBX_MERKLE_HASH);
    s_prune(fx, target, GBX_E_ARG, audited);
    s_add(fx, 10, 3);
    s_expect_segs(fx, target);
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.next, fx->n);
    assert_int_equal(ck.records, fx->n - target);
    static const uint64_t sizes2[] = {0, 1, 10};
    uint64_t sizes2t[3];
    for (size_t k = 0; k < 3; k++)
        sizes2t[k] = target + sizes2[k];
    s_check_proofs(fx, sizes2t, 3, target, &rng);
}

/*  Two prunes in one batch (two operators' requests in one writer group):
    the second starts where the first left the batch, and the trail that
    results verifies from the second's anchor. */
static void test_two_prunes_one_batch(void **state)
{
    s_fix_t *fx = *state;
    s_signer(fx, 100);
    s_add(fx, 350, 10);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    uint64_t d1 = 0, d2 = 0;
    gbx_trail_t *tr = gbx_store_trail(fx->store);
    assert_rc(gbx_trail_prune(tr, b, 200, &d1), GBX_OK);
    assert_int_equal(d1, 200);
    assert_rc(gbx_trail_prune(tr, b, 100, &d2), GBX_E_ARG); /* behind the batch's anchor */
    assert_rc(gbx_trail_prune(tr, b, 300, &d2), GBX_OK);
    assert_int_equal(d2, 100);
    assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    gbx_trail_head_t h;
    s_head(fx, &h);
    assert_int_equal(h.first, 300);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_trail_get(fx->store, 299, &v, &vlen), GBX_OK);
    assert_null(v);
    assert_rc(gbx_trail_get(fx->store, 300, &v, &vlen), GBX_OK);
    assert_non_null(v);
    free(v);
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.next, h.size);
}

static void test_retention(void **state)
{
    s_retention(*state, 0);
}

static void test_retention_audited(void **state)
{
    s_retention(*state, 1);
}

/* -------------------------------------------------------------- read-only */

static void test_read_only(void **state)
{
    s_fix_t *fx = *state;
    s_signer(fx, 4);
    s_add(fx, 10, 2);
    gbx_trail_head_t wh, rh;
    s_head(fx, &wh);

    gbx_store_opts_t o;
    gbx_store_opts_init(&o);
    o.read_only = true;
    gbx_store_t *ro = NULL;
    assert_rc(gbx_store_open(fx->dir, &o, &ro), GBX_OK);
    assert_non_null(ro);
    gbx_trail_head(gbx_store_trail(ro), &rh);
    assert_int_equal(rh.size, 10);
    assert_int_equal(rh.first, 0);
    assert_int_equal(rh.checkpoint, wh.checkpoint);
    assert_int_equal(rh.checkpoint, 8);
    assert_memory_equal(rh.chain, wh.chain, GBX_MERKLE_HASH);
    for (uint64_t i = 0; i < 10; i++) {
        size_t l1 = 0, l2 = 0;
        uint8_t *v1 = s_get_rec(ro, i, &l1), *v2 = s_get_rec(fx->store, i, &l2);
        assert_non_null(v1);
        assert_non_null(v2);
        assert_int_equal(l1, l2);
        assert_memory_equal(v1, v2, l1);
        free(v1);
        free(v2);
    }
    gbx_checkpoint_t cp;
    assert_rc(gbx_trail_checkpoint(ro, 8, &cp), GBX_OK);
    assert_rc(gbx_checkpoint_verify(&cp, s_pk(fx)), GBX_OK);
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(ro, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.records, 10);
    assert_int_equal(ck.checkpoints, 2);

    /* the writer goes on; the read-only store sees the trail as it was */
    s_add(fx, 5, 5);
    size_t vlen = 0;
    uint8_t *v = s_get_rec(ro, 10, &vlen);
    assert_null(v);
    assert_rc(gbx_trail_checkpoint(fx->store, 15, &cp), GBX_OK);
    assert_rc(gbx_trail_checkpoint(ro, 15, &cp), GBX_E_STATE);
    gbx_trail_head(gbx_store_trail(ro), &rh);
    assert_int_equal(rh.size, 10);

    /* it cannot write */
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(ro, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_META, "x", 1, "y", 1), GBX_OK);
    assert_true(gbx_store_commit(ro, &b) != GBX_OK);
    assert_non_null(b);
    gbx_batch_destroy(&b);
    assert_rc(gbx_batch_new(ro, &b), GBX_OK);
    assert_rc(gbx_batch_append(b, "v=1\nevent=RO\n", 13), GBX_OK);
    gbx_batch_checkpoint(b);
    assert_true(gbx_store_commit(ro, &b) != GBX_OK);
    assert_non_null(b);
    gbx_batch_destroy(&b);
    gbx_trail_head(gbx_store_trail(ro), &rh);
    assert_int_equal(rh.size, 10);
    assert_memory_equal(rh.chain, wh.chain, GBX_MERKLE_HASH);
    v = s_get_rec(fx->store, 15, &vlen);
    assert_null(v);
    gbx_store_destroy(&ro);

    /* the writer is undisturbed */
    s_add(fx, 1, 1);
    s_head(fx, &wh);
    assert_int_equal(wh.size, 16);
    assert_memory_equal(wh.chain, fx->chain[15], GBX_MERKLE_HASH);
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.records, 16);
    assert_int_equal(ck.checkpoints, 3);
}

/* ------------------------------------------------------------- put_cosigs */

static void s_put_cosigs(s_fix_t *fx, const gbx_checkpoint_t *cp, gbx_err_t want)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(fx->store, &b), GBX_OK);
    assert_rc(gbx_trail_put_cosigs(fx->store, b, cp), want);
    if (want == GBX_OK)
        assert_rc(gbx_store_commit(fx->store, &b), GBX_OK);
    else {
        assert_int_equal(gbx_batch_count(b), 0);
        gbx_batch_destroy(&b);
    }
}

static void test_put_cosigs(void **state)
{
    s_fix_t *fx = *state;
    s_signer(fx, 5);
    s_add(fx, 7, 1);
    gbx_identity_t *p2 = NULL, *p3 = NULL;
    assert_rc(gbx_identity_generate("peer-2", &p2), GBX_OK);
    assert_rc(gbx_identity_generate("peer-3", &p3), GBX_OK);
    const uint8_t *pk2 = gbx_identity_public(p2)->sign_pk;
    const uint8_t *pk3 = gbx_identity_public(p3)->sign_pk;

    gbx_checkpoint_t cp, back;
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &cp), GBX_OK);
    assert_int_equal(cp.ncosig, 0);
    assert_rc(gbx_checkpoint_cosign(&cp, "peer-2", gbx_identity_sign_sk(p2)), GBX_OK);
    s_put_cosigs(fx, &cp, GBX_OK);
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &back), GBX_OK);
    assert_int_equal(back.ncosig, 1);
    assert_string_equal(back.cosig[0].node, "peer-2");
    assert_rc(gbx_checkpoint_verify_cosig(&back, "peer-2", pk2), GBX_OK);
    assert_rc(gbx_checkpoint_verify_cosig(&back, "peer-2", pk3), GBX_E_BAD_SIGNATURE);
    assert_rc(gbx_checkpoint_verify_cosig(&back, "peer-3", pk3), GBX_E_STATE);
    assert_rc(gbx_checkpoint_verify(&back, s_pk(fx)), GBX_OK);
    s_check_cp(fx, 5, &back);

    /* peer-3 from a copy without peer-2's: merged; peer-2 again: not twice */
    gbx_checkpoint_t c3;
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &c3), GBX_OK);
    c3.ncosig = 0;
    assert_rc(gbx_checkpoint_cosign(&c3, "peer-3", gbx_identity_sign_sk(p3)), GBX_OK);
    s_put_cosigs(fx, &c3, GBX_OK);
    s_put_cosigs(fx, &cp, GBX_OK);
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &back), GBX_OK);
    assert_int_equal(back.ncosig, 2);
    assert_rc(gbx_checkpoint_verify_cosig(&back, "peer-2", pk2), GBX_OK);
    assert_rc(gbx_checkpoint_verify_cosig(&back, "peer-3", pk3), GBX_OK);
    assert_rc(gbx_checkpoint_verify(&back, s_pk(fx)), GBX_OK);

    /* a cosignature of another root */
    gbx_checkpoint_t other = cp;
    other.root[0] ^= 1;
    assert_rc(gbx_checkpoint_cosign(&other, "peer-2", gbx_identity_sign_sk(p2)), GBX_OK);
    s_put_cosigs(fx, &other, GBX_E_BAD_SIGNATURE);
    /* no checkpoint of that size */
    other = cp;
    other.size = 7;
    s_put_cosigs(fx, &other, GBX_E_STATE);
    assert_rc(gbx_trail_checkpoint(fx->store, 7, &back), GBX_E_STATE);
    assert_rc(gbx_trail_checkpoint(fx->store, 5, &back), GBX_OK);
    assert_int_equal(back.ncosig, 2);
    assert_memory_equal(back.root, cp.root, GBX_MERKLE_HASH);

    /* the checker is still happy with the cosigned checkpoint */
    gbx_trail_check_t ck;
    char why[256];
    assert_rc(s_verify(fx->store, s_pk(fx), &ck, why, sizeof why), GBX_OK);
    assert_int_equal(ck.checkpoints, 1);

    gbx_identity_destroy(&p2);
    gbx_identity_destroy(&p3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_numbering, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_no_signer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_proofs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_check_clean, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_edit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_swap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_forger, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_cut, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tamper_checkpoint, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retention, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retention_audited, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_read_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_put_cosigs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_two_prunes_one_batch, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
