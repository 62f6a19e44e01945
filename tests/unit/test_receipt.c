/*  test_receipt: a sender checks a broker's receipt (2-envelope.md section
    7): the signature (steps 2 to 4, gbx_receipt_verify) and that the receipt
    speaks of what was submitted, to whom (steps 5 and 6, gbx_receipt_check).

    test_sign_verify: round trip, the signed bytes, other keys, every flipped
    bit of the receipt and the signature, suite and lengths.
    Cases (s_cases): each mutates one field of a good receipt; all must give
    FIELD_INVALID from gbx_receipt_check, while the re-signed receipt still
    verifies: a node's valid signature over the wrong facts is still wrong. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_other_envelope),
    };
    return cmocka_run_group_tests_name("receipt", tests, s_setup, s_teardown);
}
