/*  test_receipt: a sender checks a broker's receipt (2-envelope.md section
    7): the signature (steps 2 to 4, gbx_receipt_verify) and that the receipt
    speaks of what was submitted, to whom (steps 5 and 6, gbx_receipt_check).

    test_sign_verify: round trip, the signed bytes, other keys, every flipped
    bit of the receipt and the signature, suite and lengths.
    Cases (s_cases): each mutates one field of a good receipt; all must give
    FIELD_INVALID from gbx_receipt_check, while the re-signed receipt still
    verifies: a node's valid signature over the wrong facts is still wrong.

    Receipt batches (section 7.1, gbx_receipt_sign_batch):
    test_batch_sizes: 1, 2, 3, 64 and 1000 receipts; every SignedReceipt
        verifies, carries its own leaf index, the shared root and signature,
        which is Ed25519 over "gbx1-receipt-batch\0" || be32(n) || root; a
        fresh verify cache runs Ed25519 once per batch.
    Tamper cases (s_tamper): each changes one part of a valid batch receipt
        (leaf 6 of 7: the last leaf, which moves up a level alone; a path of
        2 hashes); the reason
        is that of the first failing step. test_batch_tamper_every_byte
        flips every bit of the receipt bytes, every byte of every path hash,
        of the root and of the signature, for every leaf of the batch, and
        moves every leaf to every other index and every tree size up to 70.
    test_batch_cross: proofs, receipts and signatures swapped between two
        batches of the same shape; a single signature presented as a batch
        of one and back; the envelope batch label over a receipt root.
    test_batch_cache: one Ed25519 verification per batch; a warm cache does
        not let a tampered receipt or a forged tree size through. */
#include "tu_cmocka.h"

#include "gbx/receipt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gbx_identity_t *sender, *node;
    tu_header_t t;
    gbx_envelope_t *env;
    uint8_t msg_id[GBX_MSG_ID_BYTES], hash[GBX_HASH_BYTES];
    Gbx__V1__Receipt r;
} s_fix_t;

static uint8_t s_other[GBX_HASH_BYTES] = {0x42};

static void m_none(Gbx__V1__Receipt *r)
{
    (void)r;
}
static void m_msg_id_other(Gbx__V1__Receipt *r)
{
    r->message_id.data = s_other;
}
static void m_msg_id_short(Gbx__V1__Receipt *r)
{
    r->message_id.len = 15;
}
static void m_node_other(Gbx__V1__Receipt *r)
{
    r->node_id = "hk-node-2";
}
static void m_status_0(Gbx__V1__Receipt *r)
{
    r->status = GBX__V1__RECEIPT_STATUS__RECEIPT_STATUS_UNSPECIFIED;
}
static void m_status_9(Gbx__V1__Receipt *r)
{
    r->status = (Gbx__V1__ReceiptStatus)9;
}
static void m_hash_other(Gbx__V1__Receipt *r)
{
    r->header_hash.data = s_other;
}
static void m_hash_empty(Gbx__V1__Receipt *r)
{
    r->header_hash.len = 0;
}
static void m_held(Gbx__V1__Receipt *r)
{
    r->status = GBX__V1__RECEIPT_STATUS__HELD;
}

static const struct {
    const char *name;
    void (*mutate)(Gbx__V1__Receipt *r);
    gbx_err_t want;
} s_cases[] = {
    {"the receipt as issued", m_none, GBX_OK},
    {"status HELD", m_held, GBX_OK},
    {"another message id", m_msg_id_other, GBX_E_FIELD_INVALID},
    {"message id of 15 bytes", m_msg_id_short, GBX_E_FIELD_INVALID},
    {"another node", m_node_other, GBX_E_FIELD_INVALID},
    {"status unspecified", m_status_0, GBX_E_FIELD_INVALID},
    {"status unknown (9)", m_status_9, GBX_E_FIELD_INVALID},
    {"hash of other header bytes", m_hash_other, GBX_E_FIELD_INVALID},
    {"no header hash", m_hash_empty, GBX_E_FIELD_INVALID},
};

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->sender = tu_identity_fixed("gd.qh-amr", NULL);
    f->node = tu_identity_fixed("hk-node-1", NULL);
    tu_header_fixture(&f->t, 7);
    if (gbx_envelope_sign(f->sender, &f->t.h, &f->env) != GBX_OK)
        return -1;
    memcpy(f->msg_id, f->t.h.message_id.data, GBX_MSG_ID_BYTES);
    gbx_envelope_header_hash(f->env, f->hash);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_envelope_destroy(&f->env);
    gbx_identity_destroy(&f->sender);
    gbx_identity_destroy(&f->node);
    free(f);
    return 0;
}

static void s_good_receipt(s_fix_t *f, Gbx__V1__Receipt *r)
{
    gbx__v1__receipt__init(r);
    r->message_id.data = f->msg_id;
    r->message_id.len = GBX_MSG_ID_BYTES;
    r->header_hash.data = f->hash;
    r->header_hash.len = GBX_HASH_BYTES;
    r->node_id = "hk-node-1";
    r->accepted_at_ms = 1795000000123ull;
    r->sequence = 77;
    r->status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r->rule_id = "R-HK-CR-COEXTRACT-1";
}

static void test_cases(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        Gbx__V1__Receipt r;
        s_good_receipt(f, &r);
        s_cases[i].mutate(&r);
        /* Through the wire: sign, parse, verify, check, as a sender would. */
        uint8_t *packed = NULL;
        size_t len = 0;
        assert_rc(gbx_receipt_sign(f->node, &r, &packed, &len), GBX_OK);
        Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, len, packed);
        assert_non_null(sr);
        Gbx__V1__Receipt *got = NULL;
        assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->node), &got), GBX_OK);
        gbx_err_t rc = gbx_receipt_check(got, f->env, "hk-node-1");
        if (rc != s_cases[i].want) {
            print_error("case \"%s\": got %s, want %s\n", s_cases[i].name, gbx_err_name(rc),
                        gbx_err_name(s_cases[i].want));
            fails++;
        }
        gbx__v1__receipt__free_unpacked(got, NULL);
        gbx__v1__signed_receipt__free_unpacked(sr, NULL);
        free(packed);
    }
    assert_int_equal(fails, 0);
}

/*  The receipt of one message does not vouch for another, even from the
    same sender and node. */
static void test_other_envelope(void **state)
{
    s_fix_t *f = *state;
    Gbx__V1__Receipt r;
    s_good_receipt(f, &r);
    tu_header_t t2;
    tu_header_fixture(&t2, 8);
    gbx_envelope_t *env2 = NULL;
    assert_rc(gbx_envelope_sign(f->sender, &t2.h, &env2), GBX_OK);
    assert_rc(gbx_receipt_check(&r, env2, "hk-node-1"), GBX_E_FIELD_INVALID);
    assert_rc(gbx_receipt_check(&r, f->env, "hk-node-1"), GBX_OK);
    assert_rc(gbx_receipt_check(NULL, f->env, "hk-node-1"), GBX_E_ARG);
    gbx_envelope_destroy(&env2);
}

/*  Signing and the signature: every bit of the receipt and the signature. */
static void test_sign_verify(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_t *node = tu_identity_fixed("gbx-node-1", NULL);
    gbx_identity_t *node2 = tu_identity_fixed("gbx-node-1", "rotated");
    uint8_t mid[16], hh[32], ph[32];
    memset(mid, 0x31, sizeof mid);
    memset(hh, 0x32, sizeof hh);
    memset(ph, 0x33, sizeof ph);
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id.data = mid;
    r.message_id.len = sizeof mid;
    r.header_hash.data = hh;
    r.header_hash.len = sizeof hh;
    r.node_id = "gbx-node-1";
    r.accepted_at_ms = 1790000000123ull;
    r.sequence = 42;
    r.status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r.rule_id = "allow-hk-cr-coextract";
    r.policy_hash.data = ph;
    r.policy_hash.len = sizeof ph;

    uint8_t *packed = NULL;
    size_t len = 0;
    assert_rc(gbx_receipt_sign(node, &r, &packed, &len), GBX_OK);
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, len, packed);
    assert_non_null(sr);
    assert_int_equal(sr->suite, 1);
    assert_int_equal(sr->signature.len, 64);
    Gbx__V1__Receipt *got = NULL;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), &got), GBX_OK);
    assert_non_null(got);
    assert_memory_equal(got->message_id.data, mid, 16);
    assert_memory_equal(got->header_hash.data, hh, 32);
    assert_string_equal(got->node_id, "gbx-node-1");
    assert_int_equal(got->accepted_at_ms, 1790000000123ull);
    assert_int_equal(got->sequence, 42);
    assert_int_equal(got->status, GBX__V1__RECEIPT_STATUS__ACCEPTED);
    assert_string_equal(got->rule_id, "allow-hk-cr-coextract");
    assert_memory_equal(got->policy_hash.data, ph, 32);
    gbx__v1__receipt__free_unpacked(got, NULL);
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_OK);

    /* The signature is Ed25519 over "gbx1-receipt\0" || receipt bytes. */
    uint8_t *msg = malloc(13 + sr->receipt.len);
    memcpy(msg, "gbx1-receipt", 13);
    memcpy(msg + 13, sr->receipt.data, sr->receipt.len);
    assert_int_equal(crypto_sign_verify_detached(sr->signature.data, msg, 13 + sr->receipt.len,
                                                 gbx_identity_public(node)->sign_pk),
                     0);
    free(msg);

    /* Other keys. */
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node2), NULL), GBX_E_BAD_SIGNATURE);
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->sender), NULL), GBX_E_BAD_SIGNATURE);
    /* Every bit of the receipt bytes and of the signature. */
    for (size_t i = 0; i < sr->receipt.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            sr->receipt.data[i] ^= (uint8_t)(1u << bit);
            got = NULL;
            gbx_err_t rc = gbx_receipt_verify(sr, gbx_identity_public(node), &got);
            sr->receipt.data[i] ^= (uint8_t)(1u << bit);
            if (rc != GBX_E_BAD_SIGNATURE)
                fail_msg("receipt byte %zu bit %d: %s", i, bit, gbx_err_name(rc));
            assert_null(got);
        }
    for (size_t i = 0; i < 64; i++) {
        sr->signature.data[i] ^= 0x10;
        assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
        sr->signature.data[i] ^= 0x10;
    }
    sr->suite = 2;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_UNKNOWN_SUITE);
    sr->suite = 1;
    sr->signature.len = 63;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
    sr->signature.len = 64;
    size_t rl = sr->receipt.len;
    sr->receipt.len = rl - 1;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
    sr->receipt.len = rl;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_OK);
    assert_rc(gbx_receipt_verify(NULL, gbx_identity_public(node), NULL), GBX_E_ARG);
    assert_rc(gbx_receipt_sign(node, NULL, &packed, &len), GBX_E_ARG);

    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    free(packed);
    gbx_identity_destroy(&node);
    gbx_identity_destroy(&node2);
}

/* ------------------------------------------------------------ batches */

#define S_BATCH_MAX_TEST 1000

/*  A batch of N receipts by the fixture's node, their SignedReceipts packed
    (wire) and parsed (sr). Receipt i has message id {tag, i}, sequence
    1000 * tag + i, so batches with different TAGs differ in every leaf. */
typedef struct {
    size_t n;
    uint8_t mid[S_BATCH_MAX_TEST][GBX_MSG_ID_BYTES];
    Gbx__V1__Receipt r[S_BATCH_MAX_TEST];
    uint8_t *wire[S_BATCH_MAX_TEST];
    size_t len[S_BATCH_MAX_TEST];
    Gbx__V1__SignedReceipt *sr[S_BATCH_MAX_TEST];
} s_batch_t;

static s_batch_t *s_batch_new(s_fix_t *f, size_t n, uint8_t tag)
{
    s_batch_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->n = n;
    const Gbx__V1__Receipt *rp[S_BATCH_MAX_TEST];
    for (size_t i = 0; i < n; i++) {
        s_good_receipt(f, &b->r[i]);
        memset(b->mid[i], 0, GBX_MSG_ID_BYTES);
        b->mid[i][0] = tag;
        b->mid[i][14] = (uint8_t)(i >> 8);
        b->mid[i][15] = (uint8_t)i;
        b->r[i].message_id.data = b->mid[i];
        b->r[i].sequence = 1000u * tag + i;
        rp[i] = &b->r[i];
    }
    assert_rc(gbx_receipt_sign_batch(f->node, rp, n, b->wire, b->len), GBX_OK);
    for (size_t i = 0; i < n; i++) {
        b->sr[i] = gbx__v1__signed_receipt__unpack(NULL, b->len[i], b->wire[i]);
        assert_non_null(b->sr[i]);
    }
    return b;
}

static void s_batch_destroy(s_batch_t **b_p)
{
    s_batch_t *b = *b_p;
    for (size_t i = 0; i < b->n; i++) {
        gbx__v1__signed_receipt__free_unpacked(b->sr[i], NULL);
        free(b->wire[i]);
    }
    free(b);
    *b_p = NULL;
}

/*  A mutable copy of a batch SignedReceipt with room to grow each field. */
typedef struct {
    Gbx__V1__SignedReceipt sr;
    Gbx__V1__BatchProof bp;
    uint8_t receipt[256], sig[80], path[18 * GBX_MERKLE_HASH], root[48];
} s_copy_t;

static void s_copy(s_copy_t *c, const Gbx__V1__SignedReceipt *sr)
{
    assert_true(sr->receipt.len <= sizeof c->receipt && sr->batch &&
                sr->batch->path.len <= sizeof c->path);
    c->sr = *sr;
    c->bp = *sr->batch;
    memcpy(c->receipt, sr->receipt.data, sr->receipt.len);
    memcpy(c->sig, sr->signature.data, sr->signature.len);
    if (sr->batch->path.len)
        memcpy(c->path, sr->batch->path.data, sr->batch->path.len);
    memcpy(c->root, sr->batch->root.data, sr->batch->root.len);
    c->sr.receipt.data = c->receipt;
    c->sr.signature.data = c->sig;
    c->bp.path.data = c->path;
    c->bp.root.data = c->root;
    c->sr.batch = &c->bp;
}

static gbx_err_t s_verify_copy(s_fix_t *f, const s_copy_t *c)
{
    return gbx_receipt_verify(&c->sr, gbx_identity_public(f->node), NULL);
}

/*  The batch message and its Ed25519 check, by hand (section 7.1). */
static int s_batch_sig_ok(const Gbx__V1__SignedReceipt *sr, const char *label, size_t label_len,
                          const gbx_pubid_t *node)
{
    uint8_t msg[64];
    memcpy(msg, label, label_len);
    uint32_t n = sr->batch->tree_size;
    msg[label_len + 0] = (uint8_t)(n >> 24);
    msg[label_len + 1] = (uint8_t)(n >> 16);
    msg[label_len + 2] = (uint8_t)(n >> 8);
    msg[label_len + 3] = (uint8_t)n;
    memcpy(msg + label_len + 4, sr->batch->root.data, 32);
    return crypto_sign_verify_detached(sr->signature.data, msg, label_len + 36, node->sign_pk) == 0;
}

static void test_batch_sizes(void **state)
{
    s_fix_t *f = *state;
    const gbx_pubid_t *pub = gbx_identity_public(f->node);
    static const size_t sizes[] = {1, 2, 3, 64, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        s_batch_t *b = s_batch_new(f, n, (uint8_t)(k + 1));
        gbx_vcache_t *cache = NULL;
        assert_rc(gbx_vcache_new(64, &cache), GBX_OK);
        for (size_t i = 0; i < n; i++) {
            const Gbx__V1__SignedReceipt *sr = b->sr[i];
            assert_int_equal(sr->suite, 1);
            assert_non_null(sr->batch);
            assert_int_equal(sr->batch->leaf_index, i);
            assert_int_equal(sr->batch->tree_size, n);
            assert_int_equal(sr->batch->root.len, 32);
            assert_int_equal(sr->signature.len, 64);
            assert_memory_equal(sr->signature.data, b->sr[0]->signature.data, 64);
            assert_memory_equal(sr->batch->root.data, b->sr[0]->batch->root.data, 32);
            /* The receipt bytes are those of the receipt, as gbx_receipt_sign packs them. */
            size_t rl = gbx__v1__receipt__get_packed_size(&b->r[i]);
            uint8_t rb[256];
            assert_true(rl <= sizeof rb);
            gbx__v1__receipt__pack(&b->r[i], rb);
            assert_int_equal(sr->receipt.len, rl);
            assert_memory_equal(sr->receipt.data, rb, rl);
            Gbx__V1__Receipt *got = NULL;
            assert_rc(gbx_receipt_verify(sr, pub, &got), GBX_OK);
            assert_non_null(got);
            assert_int_equal(got->sequence, b->r[i].sequence);
            assert_memory_equal(got->message_id.data, b->mid[i], GBX_MSG_ID_BYTES);
            assert_rc(gbx_receipt_check(got, f->env, "hk-node-1"), GBX_E_FIELD_INVALID);
            gbx__v1__receipt__free_unpacked(got, NULL);
            assert_rc(gbx_receipt_verify_cached(sr, pub, cache, NULL), GBX_OK);
        }
        uint64_t verified = 0, hits = 0;
        gbx_vcache_stats(cache, &verified, &hits);
        assert_int_equal(verified, 1);
        assert_int_equal(hits, n - 1);
        /* The signature, checked by hand over the documented message. */
        assert_true(s_batch_sig_ok(b->sr[n - 1], "gbx1-receipt-batch", 19, pub));
        if (n == 1) { /* a batch of one: empty path, root = the leaf hash */
            gbx_hash_t leaf;
            gbx_merkle_leaf(b->sr[0]->receipt.data, b->sr[0]->receipt.len, leaf);
            assert_int_equal(b->sr[0]->batch->path.len, 0);
            assert_memory_equal(b->sr[0]->batch->root.data, leaf, 32);
        }
        if (n == 1000) /* ceil(log2(1000)) = 10 hashes for the first leaf */
            assert_int_equal(b->sr[0]->batch->path.len, 10 * 32);
        gbx_vcache_destroy(&cache);
        s_batch_destroy(&b);
    }
}

static void test_batch_args(void **state)
{
    s_fix_t *f = *state;
    Gbx__V1__Receipt r;
    s_good_receipt(f, &r);
    const Gbx__V1__Receipt *rp[2] = {&r, NULL};
    uint8_t *outs[2] = {NULL, NULL};
    size_t lens[2];
    assert_rc(gbx_receipt_sign_batch(f->node, rp, 0, outs, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(f->node, rp, GBX_BATCH_MAX + 1, outs, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(f->node, rp, 2, outs, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(NULL, rp, 1, outs, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(f->node, NULL, 1, outs, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(f->node, rp, 1, NULL, lens), GBX_E_ARG);
    assert_rc(gbx_receipt_sign_batch(f->node, rp, 1, outs, NULL), GBX_E_ARG);
    assert_null(outs[0]);
    assert_null(outs[1]);
    assert_rc(gbx_receipt_verify_cached(NULL, gbx_identity_public(f->node), NULL, NULL), GBX_E_ARG);
}

/* ------------------------------------------------ tamper cases (table) */

static void t_none(s_copy_t *c)
{
    (void)c;
}
static void t_suite2(s_copy_t *c)
{
    c->sr.suite = 2;
}
static void t_suite2_tree0(s_copy_t *c) /* suite is step 2, the proof step 3 */
{
    c->sr.suite = 2;
    c->bp.tree_size = 0;
}
static void t_sig63(s_copy_t *c)
{
    c->sr.signature.len = 63;
}
static void t_sig63_tree0(s_copy_t *c) /* signature length before proof shape */
{
    c->sr.signature.len = 63;
    c->bp.tree_size = 0;
}
static void t_sig_byte(s_copy_t *c)
{
    c->sig[7] ^= 0x01;
}
static void t_no_batch(s_copy_t *c)
{
    c->sr.batch = NULL;
}
static void t_index_other(s_copy_t *c)
{
    c->bp.leaf_index = 5;
}
static void t_index_eq_size(s_copy_t *c)
{
    c->bp.leaf_index = c->bp.tree_size;
}
static void t_index_max(s_copy_t *c)
{
    c->bp.leaf_index = UINT32_MAX;
}
static void t_tree0(s_copy_t *c)
{
    c->bp.tree_size = 0;
}
static void t_tree_6(s_copy_t *c) /* leaf_index 6 no longer below tree_size */
{
    c->bp.tree_size = 6;
}
static void t_tree_8(s_copy_t *c) /* leaf 6 of 8 needs 3 hashes: too short */
{
    c->bp.tree_size = 8;
}
static void t_tree_big(s_copy_t *c)
{
    c->bp.tree_size = GBX_BATCH_MAX + 1;
}
static void t_tree_max(s_copy_t *c)
{
    c->bp.tree_size = UINT32_MAX;
}
static void t_path_short(s_copy_t *c)
{
    c->bp.path.len -= GBX_MERKLE_HASH;
}
static void t_path_long(s_copy_t *c)
{
    memset(c->path + c->bp.path.len, 0, GBX_MERKLE_HASH);
    c->bp.path.len += GBX_MERKLE_HASH;
}
static void t_path_31(s_copy_t *c)
{
    c->bp.path.len = 31;
}
static void t_path_33(s_copy_t *c)
{
    c->path[32] = 0;
    c->bp.path.len = 33;
}
static void t_path_17(s_copy_t *c)
{
    memset(c->path + c->bp.path.len, 0, 17 * GBX_MERKLE_HASH - c->bp.path.len);
    c->bp.path.len = 17 * GBX_MERKLE_HASH;
}
static void t_path_empty(s_copy_t *c)
{
    c->bp.path.len = 0;
}
static void t_path_swapped(s_copy_t *c)
{
    uint8_t tmp[GBX_MERKLE_HASH];
    memcpy(tmp, c->path, GBX_MERKLE_HASH);
    memcpy(c->path, c->path + GBX_MERKLE_HASH, GBX_MERKLE_HASH);
    memcpy(c->path + GBX_MERKLE_HASH, tmp, GBX_MERKLE_HASH);
}
static void t_root_byte(s_copy_t *c)
{
    c->root[31] ^= 0x80;
}
static void t_root_31(s_copy_t *c)
{
    c->bp.root.len = 31;
}
static void t_root_33(s_copy_t *c)
{
    c->root[32] = 0;
    c->bp.root.len = 33;
}
static void t_root_none(s_copy_t *c)
{
    c->bp.root.len = 0;
}
static void t_receipt_byte(s_copy_t *c)
{
    c->receipt[20] ^= 0x01;
}
static void t_receipt_short(s_copy_t *c)
{
    c->sr.receipt.len--;
}
static void t_receipt_long(s_copy_t *c)
{
    c->receipt[c->sr.receipt.len++] = 0x00;
}
/*  A forger who changes the receipt and recomputes the proof consistently:
    the path checks, only the signature does not. */
static void t_forged_root(s_copy_t *c)
{
    c->receipt[20] ^= 0x01;
    gbx_hash_t leaf;
    gbx_merkle_leaf(c->receipt, c->sr.receipt.len, leaf);
    assert_rc(gbx_merkle_root_from_path(leaf, c->bp.leaf_index, c->bp.tree_size,
                                        (const gbx_hash_t *)c->path,
                                        c->bp.path.len / GBX_MERKLE_HASH, c->root),
              GBX_OK);
}

static const struct {
    const char *name;
    void (*mutate)(s_copy_t *c);
    gbx_err_t want;
} s_tamper[] = {
    {"the batch receipt as issued", t_none, GBX_OK},
    {"suite 2", t_suite2, GBX_E_UNKNOWN_SUITE},
    {"suite 2 and tree_size 0 (suite first)", t_suite2_tree0, GBX_E_UNKNOWN_SUITE},
    {"signature of 63 bytes", t_sig63, GBX_E_BAD_SIGNATURE},
    {"signature of 63 bytes and tree_size 0 (length first)", t_sig63_tree0, GBX_E_BAD_SIGNATURE},
    {"signature byte flipped", t_sig_byte, GBX_E_BAD_SIGNATURE},
    {"proof stripped (read as a single signature)", t_no_batch, GBX_E_BAD_SIGNATURE},
    {"leaf_index 6 -> 5", t_index_other, GBX_E_BAD_INCLUSION_PATH},
    {"leaf_index = tree_size", t_index_eq_size, GBX_E_BAD_INCLUSION_PATH},
    {"leaf_index 2^32 - 1", t_index_max, GBX_E_BAD_INCLUSION_PATH},
    {"tree_size 0", t_tree0, GBX_E_BAD_INCLUSION_PATH},
    {"tree_size 7 -> 6 (below leaf_index)", t_tree_6, GBX_E_BAD_INCLUSION_PATH},
    {"tree_size 7 -> 8 (path too short)", t_tree_8, GBX_E_BAD_INCLUSION_PATH},
    {"tree_size 65537", t_tree_big, GBX_E_BAD_INCLUSION_PATH},
    {"tree_size 2^32 - 1", t_tree_max, GBX_E_BAD_INCLUSION_PATH},
    {"path one hash short", t_path_short, GBX_E_BAD_INCLUSION_PATH},
    {"path one hash long", t_path_long, GBX_E_BAD_INCLUSION_PATH},
    {"path of 31 bytes", t_path_31, GBX_E_BAD_INCLUSION_PATH},
    {"path of 33 bytes", t_path_33, GBX_E_BAD_INCLUSION_PATH},
    {"path of 17 hashes", t_path_17, GBX_E_BAD_INCLUSION_PATH},
    {"path empty", t_path_empty, GBX_E_BAD_INCLUSION_PATH},
    {"path hashes swapped", t_path_swapped, GBX_E_BAD_INCLUSION_PATH},
    {"root byte flipped", t_root_byte, GBX_E_BAD_INCLUSION_PATH},
    {"root of 31 bytes", t_root_31, GBX_E_BAD_INCLUSION_PATH},
    {"root of 33 bytes", t_root_33, GBX_E_BAD_INCLUSION_PATH},
    {"no root", t_root_none, GBX_E_BAD_INCLUSION_PATH},
    {"receipt byte flipped", t_receipt_byte, GBX_E_BAD_INCLUSION_PATH},
    {"receipt one byte short", t_receipt_short, GBX_E_BAD_INCLUSION_PATH},
    {"receipt one byte long", t_receipt_long, GBX_E_BAD_INCLUSION_PATH},
    {"receipt changed, root recomputed to match", t_forged_root, GBX_E_BAD_SIGNATURE},
};

static void test_batch_tamper(void **state)
{
    s_fix_t *f = *state;
    s_batch_t *b = s_batch_new(f, 7, 0x70);
    int fails = 0;
    for (size_t i = 0; i < sizeof s_tamper / sizeof s_tamper[0]; i++) {
        s_copy_t c;
        s_copy(&c, b->sr[6]);
        assert_int_equal(c.bp.path.len, 2 * GBX_MERKLE_HASH);
        s_tamper[i].mutate(&c);
        Gbx__V1__Receipt *got = (Gbx__V1__Receipt *)&c; /* must be reset */
        gbx_err_t rc = gbx_receipt_verify(&c.sr, gbx_identity_public(f->node), &got);
        check_case_rc(fails, s_tamper[i].name, rc, s_tamper[i].want);
        if (rc == GBX_OK)
            gbx__v1__receipt__free_unpacked(got, NULL);
        else if (got != NULL)
            fail_msg("case \"%s\": *r_out not NULL on error", s_tamper[i].name);
    }
    assert_int_equal(fails, 0);
    s_batch_destroy(&b);
}

/*  Every bit of the receipt, every byte of the path, root and signature,
    every other leaf index and tree size, for every leaf of a batch of 7. */
static void test_batch_tamper_every_byte(void **state)
{
    s_fix_t *f = *state;
    s_batch_t *b = s_batch_new(f, 7, 0x71);
    for (size_t leaf = 0; leaf < b->n; leaf++) {
        s_copy_t c;
        s_copy(&c, b->sr[leaf]);
        assert_rc(s_verify_copy(f, &c), GBX_OK);
        for (size_t i = 0; i < c.sr.receipt.len * 8; i++) {
            c.receipt[i / 8] ^= (uint8_t)(1u << (i % 8));
            gbx_err_t rc = s_verify_copy(f, &c);
            c.receipt[i / 8] ^= (uint8_t)(1u << (i % 8));
            if (rc != GBX_E_BAD_INCLUSION_PATH)
                fail_msg("leaf %zu receipt bit %zu: %s", leaf, i, gbx_err_name(rc));
        }
        for (size_t i = 0; i < c.bp.path.len; i++) {
            c.path[i] ^= 0x01;
            gbx_err_t rc = s_verify_copy(f, &c);
            c.path[i] ^= 0x01;
            if (rc != GBX_E_BAD_INCLUSION_PATH)
                fail_msg("leaf %zu path hash %zu byte %zu: %s", leaf, i / 32, i % 32,
                         gbx_err_name(rc));
        }
        for (size_t i = 0; i < GBX_MERKLE_HASH; i++) {
            c.root[i] ^= 0x01;
            gbx_err_t rc = s_verify_copy(f, &c);
            c.root[i] ^= 0x01;
            if (rc != GBX_E_BAD_INCLUSION_PATH)
                fail_msg("leaf %zu root byte %zu: %s", leaf, i, gbx_err_name(rc));
        }
        for (size_t i = 0; i < 64; i++) {
            c.sig[i] ^= 0x01;
            gbx_err_t rc = s_verify_copy(f, &c);
            c.sig[i] ^= 0x01;
            if (rc != GBX_E_BAD_SIGNATURE)
                fail_msg("leaf %zu signature byte %zu: %s", leaf, i, gbx_err_name(rc));
        }
        /* Another position in the same tree: the path no longer leads to the root. */
        for (uint32_t j = 0; j < 70; j++) {
            if (j == leaf)
                continue;
            c.bp.leaf_index = j;
            gbx_err_t rc = s_verify_copy(f, &c);
            if (rc != GBX_E_BAD_INCLUSION_PATH)
                fail_msg("leaf %zu as leaf_index %u: %s", leaf, (unsigned)j, gbx_err_name(rc));
        }
        c.bp.leaf_index = (uint32_t)leaf;
        /* Another tree size: where the path still leads to the same root, only
           the signature (over be32(tree_size)) can tell; else the path fails. */
        for (uint32_t m = 0; m < 70; m++) {
            if (m == b->n)
                continue;
            c.bp.tree_size = m;
            gbx_hash_t lh, r;
            gbx_merkle_leaf(c.receipt, c.sr.receipt.len, lh);
            int same_root = m >= 1 &&
                            gbx_merkle_root_from_path(lh, leaf, m, (const gbx_hash_t *)c.path,
                                                      c.bp.path.len / 32, r) == GBX_OK &&
                            memcmp(r, c.root, 32) == 0;
            gbx_err_t want = same_root ? GBX_E_BAD_SIGNATURE : GBX_E_BAD_INCLUSION_PATH;
            gbx_err_t rc = s_verify_copy(f, &c);
            if (rc != want)
                fail_msg("leaf %zu as tree_size %u: %s, want %s", leaf, (unsigned)m,
                         gbx_err_name(rc), gbx_err_name(want));
        }
        c.bp.tree_size = (uint32_t)b->n;
        assert_rc(s_verify_copy(f, &c), GBX_OK);
    }
    s_batch_destroy(&b);
}

/*  Proofs and signatures do not travel between batches, nor between the
    single and the batch form, nor from envelope batches. */
static void test_batch_cross(void **state)
{
    s_fix_t *f = *state;
    const gbx_pubid_t *pub = gbx_identity_public(f->node);
    s_batch_t *a = s_batch_new(f, 5, 0x0a), *b = s_batch_new(f, 5, 0x0b);
    for (size_t i = 0; i < a->n; i++) {
        s_copy_t c;
        /* Receipt of A with B's proof and signature. */
        s_copy(&c, b->sr[i]);
        memcpy(c.receipt, a->sr[i]->receipt.data, a->sr[i]->receipt.len);
        c.sr.receipt.len = a->sr[i]->receipt.len;
        assert_rc(s_verify_copy(f, &c), GBX_E_BAD_INCLUSION_PATH);
        /* Receipt and proof of A with B's signature. */
        s_copy(&c, a->sr[i]);
        memcpy(c.sig, b->sr[i]->signature.data, 64);
        assert_rc(s_verify_copy(f, &c), GBX_E_BAD_SIGNATURE);
        /* Receipt and signature of A with B's path (and root). */
        s_copy(&c, a->sr[i]);
        memcpy(c.path, b->sr[i]->batch->path.data, b->sr[i]->batch->path.len);
        assert_rc(s_verify_copy(f, &c), GBX_E_BAD_INCLUSION_PATH);
        memcpy(c.root, b->sr[i]->batch->root.data, 32);
        assert_rc(s_verify_copy(f, &c), GBX_E_BAD_INCLUSION_PATH);
        /* A's receipt at B's other positions, with B's proofs. */
        for (size_t j = 0; j < b->n; j++) {
            s_copy(&c, b->sr[j]);
            memcpy(c.receipt, a->sr[i]->receipt.data, a->sr[i]->receipt.len);
            c.sr.receipt.len = a->sr[i]->receipt.len;
            assert_rc(s_verify_copy(f, &c), GBX_E_BAD_INCLUSION_PATH);
        }
    }

    /* The envelope batch label over a receipt root: not a receipt signature. */
    s_copy_t c;
    s_copy(&c, a->sr[2]);
    uint8_t msg[11 + 4 + 32];
    memcpy(msg, "gbx1-batch", 11);
    msg[11] = msg[12] = msg[13] = 0;
    msg[14] = (uint8_t)a->n;
    memcpy(msg + 15, c.root, 32);
    crypto_sign_detached(c.sig, NULL, msg, sizeof msg, gbx_identity_sign_sk(f->node));
    assert_true(s_batch_sig_ok(&c.sr, "gbx1-batch", 11, pub));
    assert_rc(s_verify_copy(f, &c), GBX_E_BAD_SIGNATURE);

    /* A single signature presented as a batch of one, and a batch of one
       presented as a single signature. */
    Gbx__V1__Receipt r;
    s_good_receipt(f, &r);
    uint8_t *single = NULL, *one = NULL;
    size_t single_len = 0, one_len = 0;
    const Gbx__V1__Receipt *rp[1] = {&r};
    assert_rc(gbx_receipt_sign(f->node, &r, &single, &single_len), GBX_OK);
    assert_rc(gbx_receipt_sign_batch(f->node, rp, 1, &one, &one_len), GBX_OK);
    Gbx__V1__SignedReceipt *ss = gbx__v1__signed_receipt__unpack(NULL, single_len, single);
    Gbx__V1__SignedReceipt *so = gbx__v1__signed_receipt__unpack(NULL, one_len, one);
    assert_non_null(ss);
    assert_non_null(so);
    assert_null(ss->batch);
    assert_non_null(so->batch);
    assert_memory_not_equal(ss->signature.data, so->signature.data, 64);
    assert_rc(gbx_receipt_verify(ss, pub, NULL), GBX_OK);
    assert_rc(gbx_receipt_verify(so, pub, NULL), GBX_OK);
    s_copy(&c, so);
    c.sr.batch = NULL;
    assert_rc(s_verify_copy(f, &c), GBX_E_BAD_SIGNATURE);
    c.sr.batch = &c.bp;
    memcpy(c.sig, ss->signature.data, 64);
    assert_rc(s_verify_copy(f, &c), GBX_E_BAD_SIGNATURE);
    /* Another node's key. */
    gbx_identity_t *other = tu_identity_fixed("hk-node-1", "rotated");
    assert_rc(gbx_receipt_verify(so, gbx_identity_public(other), NULL), GBX_E_BAD_SIGNATURE);
    assert_rc(gbx_receipt_verify(a->sr[3], gbx_identity_public(other), NULL), GBX_E_BAD_SIGNATURE);
    gbx_identity_destroy(&other);
    gbx__v1__signed_receipt__free_unpacked(ss, NULL);
    gbx__v1__signed_receipt__free_unpacked(so, NULL);
    free(single);
    free(one);
    s_batch_destroy(&a);
    s_batch_destroy(&b);
}

/*  Step 4 after the signature: a batch whose leaf is not a Receipt. */
static void test_batch_malformed_receipt(void **state)
{
    s_fix_t *f = *state;
    static uint8_t junk[] = {0xff, 0xff, 0xff};
    gbx_hash_t leaf;
    gbx_merkle_leaf(junk, sizeof junk, leaf);
    uint8_t msg[19 + 4 + 32], sig[64];
    memcpy(msg, "gbx1-receipt-batch", 19);
    msg[19] = msg[20] = msg[21] = 0;
    msg[22] = 1;
    memcpy(msg + 23, leaf, 32);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, gbx_identity_sign_sk(f->node));
    Gbx__V1__BatchProof bp = GBX__V1__BATCH_PROOF__INIT;
    bp.tree_size = 1;
    bp.root.data = leaf;
    bp.root.len = 32;
    Gbx__V1__SignedReceipt sr = GBX__V1__SIGNED_RECEIPT__INIT;
    sr.suite = 1;
    sr.receipt.data = junk;
    sr.receipt.len = sizeof junk;
    sr.signature.data = sig;
    sr.signature.len = 64;
    sr.batch = &bp;
    Gbx__V1__Receipt *got = NULL;
    assert_rc(gbx_receipt_verify(&sr, gbx_identity_public(f->node), NULL), GBX_OK);
    assert_rc(gbx_receipt_verify(&sr, gbx_identity_public(f->node), &got), GBX_E_MALFORMED);
    assert_null(got);
}

/*  One Ed25519 verification per batch, and a warm cache lets nothing else by. */
static void test_batch_cache(void **state)
{
    s_fix_t *f = *state;
    const gbx_pubid_t *pub = gbx_identity_public(f->node);
    s_batch_t *a = s_batch_new(f, 64, 0x0c), *b = s_batch_new(f, 64, 0x0d);
    /* two roots in a direct-mapped cache under a random key: enough slots
       that they share one in 1 run of 65536, not 1 of 16 */
    gbx_vcache_t *cache = NULL;
    assert_rc(gbx_vcache_new(65536, &cache), GBX_OK);
    uint64_t verified = 0, hits = 0;
    for (size_t i = 0; i < 64; i++) { /* interleaved, as receipts arrive */
        assert_rc(gbx_receipt_verify_cached(a->sr[i], pub, cache, NULL), GBX_OK);
        assert_rc(gbx_receipt_verify_cached(b->sr[i], pub, cache, NULL), GBX_OK);
    }
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 2);
    assert_int_equal(hits, 126);

    /* Warm: the path is still checked, and the cache key covers tree_size
       and the signer. */
    s_copy_t c;
    s_copy(&c, a->sr[9]);
    c.receipt[20] ^= 0x01;
    assert_rc(gbx_receipt_verify_cached(&c.sr, pub, cache, NULL), GBX_E_BAD_INCLUSION_PATH);
    s_copy(&c, a->sr[63]);
    c.bp.tree_size = 63; /* leaf_index 63 no longer below it */
    assert_rc(gbx_receipt_verify_cached(&c.sr, pub, cache, NULL), GBX_E_BAD_INCLUSION_PATH);
    s_copy(&c, a->sr[0]);
    c.bp.tree_size = 40; /* leaf 0: same path length for 33..64, same root */
    assert_rc(gbx_receipt_verify_cached(&c.sr, pub, cache, NULL), GBX_E_BAD_SIGNATURE);
    gbx_identity_t *other = tu_identity_fixed("hk-node-1", "rotated");
    assert_rc(gbx_receipt_verify_cached(a->sr[1], gbx_identity_public(other), cache, NULL),
              GBX_E_BAD_SIGNATURE);
    gbx_identity_destroy(&other);
    s_copy(&c, a->sr[5]);
    memcpy(c.sig, b->sr[5]->signature.data, 64);
    assert_rc(gbx_receipt_verify_cached(&c.sr, pub, cache, NULL), GBX_E_BAD_SIGNATURE);
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 2);
    assert_int_equal(hits, 126);

    /* Single receipts bypass the cache. */
    Gbx__V1__Receipt r;
    s_good_receipt(f, &r);
    uint8_t *single = NULL;
    size_t single_len = 0;
    assert_rc(gbx_receipt_sign(f->node, &r, &single, &single_len), GBX_OK);
    Gbx__V1__SignedReceipt *ss = gbx__v1__signed_receipt__unpack(NULL, single_len, single);
    assert_non_null(ss);
    assert_rc(gbx_receipt_verify_cached(ss, pub, cache, NULL), GBX_OK);
    assert_rc(gbx_receipt_verify_cached(ss, pub, cache, NULL), GBX_OK);
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 2);
    assert_int_equal(hits, 126);
    gbx__v1__signed_receipt__free_unpacked(ss, NULL);
    free(single);
    gbx_vcache_destroy(&cache);
    s_batch_destroy(&a);
    s_batch_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_other_envelope),
        cmocka_unit_test(test_batch_sizes),
        cmocka_unit_test(test_batch_args),
        cmocka_unit_test(test_batch_tamper),
        cmocka_unit_test(test_batch_tamper_every_byte),
        cmocka_unit_test(test_batch_cross),
        cmocka_unit_test(test_batch_malformed_receipt),
        cmocka_unit_test(test_batch_cache),
    };
    return cmocka_run_group_tests_name("receipt", tests, s_setup, s_teardown);
}
