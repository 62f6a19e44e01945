/*  test_envelope: single-signature envelopes (include/gbx/envelope.h):
    header checks, signing, decoding untrusted bytes, verification.

    Identities are made from fixed seeds (testutil), so every signature and
    every packed byte is the same on each run; random inputs come from a
    seeded generator (GBX_TEST_SEED).

    Cases:
      round_trip           sign, pack, decode, verify; header bytes and accessors
      header_cases         s_header_cases: each mutation of a valid header gives the
                           listed result from gbx_header_check (with the field named),
                           gbx_envelope_sign, and from decode when signed by hand
      flip_envelope        every bit of the packed envelope flipped: never accepted
      flip_header          every bit (and 0xff) of the header bytes flipped inside a
                           re-packed envelope: never accepted
      flip_signature       every bit of the signature flipped: BAD_SIGNATURE
      wrong_key            s_key_cases: verifying with other keys: WRONG_KEY /
                           BAD_SIGNATURE
      truncations          every prefix: rejected; cuts inside a field: TRUNCATED
      garbage              random buffers: rejected with a decode error
      mutations            random multi-byte edits: never accepted with other
                           header bytes or signature
      crafted              s_crafted_cases: hand-made envelopes (sizes, version,
                           suite, signature length, broken header protobuf) each
                           with its exact error */
#include "tu_cmocka.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char s_ctx_header[] = "gbx1-header"; /* signed with its NUL */

typedef struct {
    gbx_identity_t *a;  /* gd.qh-amr */
    gbx_identity_t *a2; /* gd.qh-amr, another key (rotated) */
    gbx_identity_t *b;  /* hk.cr */
    uint8_t *wire;      /* the fixture header, signed by a and packed */
    size_t wire_len;
    const uint8_t *hdr; /* its header bytes inside wire */
    size_t hdr_len;
    size_t hdr_off;
} s_fix_t;

static s_fix_t *s_fix;

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->a = tu_identity_fixed("gd.qh-amr", NULL);
    f->a2 = tu_identity_fixed("gd.qh-amr", "rotated");
    f->b = tu_identity_fixed("hk.cr", NULL);
    tu_header_t t;
    tu_header_fixture(&t, 0);
    gbx_envelope_t *e = NULL;
    if (gbx_envelope_sign(f->a, &t.h, &e) != GBX_OK)
        return -1;
    f->wire = tu_pack(e, &f->wire_len);
    size_t hl = 0;
    const uint8_t *h = gbx_envelope_header_bytes(e, &hl);
    uint8_t *at = memmem(f->wire, f->wire_len, h, hl);
    if (!at)
        return -1;
    f->hdr = at;
    f->hdr_len = hl;
    f->hdr_off = (size_t)(at - f->wire);
    gbx_envelope_destroy(&e);
    s_fix = f;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->a);
    gbx_identity_destroy(&f->a2);
    gbx_identity_destroy(&f->b);
    free(f->wire);
    free(f);
    return 0;
}

static const gbx_pubid_t *s_pub(const gbx_identity_t *id)
{
    return gbx_identity_public(id);
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
    s_fix_t *f = *state;
    tu_header_t t;
    tu_header_fixture(&t, 0);
    gbx_envelope_t *e = NULL, *d = NULL;
    assert_rc(gbx_envelope_sign(f->a, &t.h, &e), GBX_OK);
    assert_int_equal(gbx_envelope_is_batch(e), 0);

    size_t len = 0;
    uint8_t *wire = tu_pack(e, &len);
    assert_int_equal(len, gbx_envelope_size(e));
    assert_true(len <= GBX_ENVELOPE_MAX);
    assert_rc(gbx_envelope_decode(wire, len, &d), GBX_OK);
    assert_rc(gbx_envelope_verify(d, s_pub(f->a), NULL), GBX_OK);
    assert_rc(gbx_envelope_verify(e, s_pub(f->a), NULL), GBX_OK);

    /* The exact signed bytes travel: same in the signed and decoded envelope,
       equal to the header packed with the signer's key id, and the signature
       is Ed25519 over "gbx1-header\0" || those bytes. */
    size_t hl1 = 0, hl2 = 0;
    const uint8_t *h1 = gbx_envelope_header_bytes(e, &hl1);
    const uint8_t *h2 = gbx_envelope_header_bytes(d, &hl2);
    assert_int_equal(hl1, hl2);
    assert_memory_equal(h1, h2, hl1);
    uint8_t key_id[GBX_KEY_ID_BYTES];
    gbx_pubid_key_id(s_pub(f->a), key_id);
    t.h.signer_key_id.data = key_id;
    t.h.signer_key_id.len = sizeof key_id;
    size_t plen = gbx__v1__header__get_packed_size(&t.h);
    uint8_t *packed = malloc(plen);
    gbx__v1__header__pack(&t.h, packed);
    assert_int_equal(plen, hl1);
    assert_memory_equal(packed, h1, plen);
    uint8_t *msg = malloc(sizeof s_ctx_header + plen), sig[64];
    memcpy(msg, s_ctx_header, sizeof s_ctx_header);
    memcpy(msg + sizeof s_ctx_header, packed, plen);
    crypto_sign_detached(sig, NULL, msg, sizeof s_ctx_header + plen, gbx_identity_sign_sk(f->a));
    const Gbx__V1__Envelope *m = gbx_envelope_message(d);
    assert_int_equal(m->version, 1);
    assert_int_equal(m->suite, 1);
    assert_null(m->batch);
    assert_int_equal(m->signature.len, 64);
    assert_memory_equal(m->signature.data, sig, 64);
    free(msg);
    free(packed);

    /* Packing what was decoded gives the same bytes; the fixture matches. */
    size_t len2 = 0;
    uint8_t *wire2 = tu_pack(d, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(wire, wire2, len);
    assert_int_equal(len, f->wire_len);
    assert_memory_equal(wire, f->wire, len);

    /* Accessors. */
    const gbx_header_t *h = gbx_envelope_header(d);
    assert_memory_equal(h->message_id.data, t.message_id, GBX_MSG_ID_BYTES);
    assert_string_equal(h->from_agency, "gd.qh-amr");
    assert_string_equal(h->to_agency, "hk.cr");
    assert_string_equal(h->service_code, "HK-CR-COEXTRACT");
    assert_int_equal(h->kind, GBX__V1__MESSAGE_KIND__REQUEST);
    assert_int_equal(h->data_class, GBX__V1__DATA_CLASS__PERSONAL);
    assert_int_equal(h->hk_marking, GBX__V1__HK_MARKING__UNCLASSIFIED);
    assert_int_equal(h->legal_route, GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT);
    assert_int_equal(h->consent_type, GBX__V1__CONSENT_TYPE__CONSENT);
    assert_string_equal(h->case_ref, "QH-2026-09-0042");
    assert_int_equal(h->created_at_ms, 1790000000000ull);
    assert_int_equal(h->payload_length, 1024);
    assert_int_equal(h->signer_key_id.len, GBX_KEY_ID_BYTES);
    assert_memory_equal(h->signer_key_id.data, key_id, GBX_KEY_ID_BYTES);
    uint8_t hh[32], ref[32];
    gbx_envelope_header_hash(d, hh);
    crypto_generichash(ref, 32, h2, hl2, NULL, 0);
    assert_memory_equal(hh, ref, 32);
    gbx_binding_t b;
    gbx_envelope_binding(d, &b);
    assert_memory_equal(b.message_id, t.message_id, GBX_MSG_ID_BYTES);
    assert_string_equal(b.from_agency, "gd.qh-amr");
    assert_string_equal(b.to_agency, "hk.cr");

    /* Arguments. */
    gbx_envelope_t *x = NULL;
    assert_rc(gbx_envelope_sign(NULL, &t.h, &x), GBX_E_ARG);
    assert_rc(gbx_envelope_sign(f->a, NULL, &x), GBX_E_ARG);
    assert_rc(gbx_envelope_verify(d, NULL, NULL), GBX_E_ARG);
    assert_rc(gbx_envelope_decode(NULL, 10, &x), GBX_E_TRUNCATED);

    free(wire);
    free(wire2);
    gbx_envelope_destroy(&e);
    gbx_envelope_destroy(&d);
    assert_null(d);
    gbx_envelope_destroy(&d); /* NULL-safe */
}

/* ---------------------------------------------------------- header table */

static char s_text256[257], s_text257[258], s_id64[65], s_id65[66], s_code64[65], s_code65[66];
static uint8_t s_bytes[64];

#define MUT(fn, body)                                                                              \
    static void fn(tu_header_t *t)                                                                 \
    {                                                                                              \
        gbx_header_t *h = &t->h;                                                                   \
        (void)h;                                                                                   \
        body;                                                                                      \
    }

MUT(m_none, (void)0)
MUT(m_msgid_15, h->message_id.len = 15)
MUT(m_msgid_17, h->message_id.data = s_bytes; h->message_id.len = 17)
MUT(m_msgid_0, h->message_id.len = 0)
MUT(m_corr_3, h->correlation_id.data = t->correlation_id; h->correlation_id.len = 3)
MUT(m_corr_16, h->correlation_id.data = t->correlation_id; h->correlation_id.len = 16)
MUT(m_response_no_corr, h->kind = GBX__V1__MESSAGE_KIND__RESPONSE)
MUT(m_response_corr, h->kind = GBX__V1__MESSAGE_KIND__RESPONSE;
    h->correlation_id.data = t->correlation_id; h->correlation_id.len = 16)
MUT(m_from_empty, h->from_agency = "")
MUT(m_from_upper, h->from_agency = "GD.QH-AMR")
MUT(m_from_dot, h->from_agency = ".gd")
MUT(m_from_space, h->from_agency = "gd qh")
MUT(m_from_65, h->from_agency = s_id65)
MUT(m_from_64, h->from_agency = s_id64)
MUT(m_to_empty, h->to_agency = "")
MUT(m_to_upper, h->to_agency = "HK.CR")
MUT(m_to_underscore, h->to_agency = "hk_cr")
MUT(m_to_65, h->to_agency = s_id65)
MUT(m_svc_empty, h->service_code = "")
MUT(m_svc_lower, h->service_code = "hk-cr-coextract")
MUT(m_svc_underscore, h->service_code = "HK_CR")
MUT(m_svc_65, h->service_code = s_code65)
MUT(m_svc_64, h->service_code = s_code64)
MUT(m_version_0, h->service_version = 0)
MUT(m_version_max, h->service_version = UINT32_MAX)
MUT(m_kind_0, h->kind = 0)
MUT(m_kind_4, h->kind = 4)
MUT(m_kind_verify, h->kind = GBX__V1__MESSAGE_KIND__VERIFY)
MUT(m_class_0, h->data_class = 0)
MUT(m_class_7, h->data_class = 7)
MUT(m_class_core, h->data_class = GBX__V1__DATA_CLASS__CORE)
MUT(m_class_public, h->data_class = GBX__V1__DATA_CLASS__PUBLIC)
MUT(m_mark_0, h->hk_marking = 0)
MUT(m_mark_6, h->hk_marking = 6)
MUT(m_mark_top, h->hk_marking = GBX__V1__HK_MARKING__TOP_SECRET)
MUT(m_route_7, h->legal_route = 7)
MUT(m_route_neg, h->legal_route = (Gbx__V1__LegalRoute)-1)
MUT(m_route_none, h->legal_route = GBX__V1__LEGAL_ROUTE__LEGAL_ROUTE_NONE)
MUT(m_route_model, h->legal_route = GBX__V1__LEGAL_ROUTE__MODEL_CLAUSES)
MUT(m_consent_4, h->consent_type = 4)
MUT(m_consent_sep, h->consent_type = GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT)
MUT(m_purpose_257, h->purpose_code = s_text257)
MUT(m_purpose_256, h->purpose_code = s_text256)
MUT(m_case_bad_utf8, h->case_ref = "QH-\xc3\x28")
MUT(m_case_overlong, h->case_ref = "QH-\xc0\xaf")
MUT(m_case_surrogate, h->case_ref = "QH-\xed\xa0\x80")
MUT(m_case_cut, h->case_ref = "QH-\xe6\xa1")
MUT(m_case_above_max, h->case_ref = "QH-\xf4\x90\x80\x80")
MUT(m_case_lone_cont, h->case_ref = "QH-\x80")
MUT(m_case_utf8, h->case_ref = "\xe6\xa1\x88\xe4\xbb\xb6-2026-\xf0\x9f\x93\x84")
MUT(m_end_user_257, h->end_user_ref = s_text257)
MUT(m_route_ref_257, h->legal_route_ref = s_text257)
MUT(m_consent_ref_257, h->consent_ref = s_text257)
MUT(m_pia_257, h->impact_assessment_ref = s_text257)
MUT(m_release_257, h->release_authority_ref = s_text257)
MUT(m_agreement_257, h->agreement_ref = s_text257)
MUT(m_agreement_bad_utf8, h->agreement_ref = "\xff")
MUT(m_created_0, h->created_at_ms = 0)
MUT(m_expires_eq, h->expires_at_ms = h->created_at_ms)
MUT(m_expires_lt, h->expires_at_ms = h->created_at_ms - 1)
MUT(m_expires_0, h->expires_at_ms = 0)
MUT(m_expires_plus1, h->expires_at_ms = h->created_at_ms + 1)
MUT(m_length_over, h->payload_length = (1ull << 30) + 1)
MUT(m_length_max, h->payload_length = 1ull << 30)
MUT(m_length_0, h->payload_length = 0)
MUT(m_hash_31, h->payload_hash.len = 31)
MUT(m_hash_33, h->payload_hash.data = s_bytes; h->payload_hash.len = 33)
MUT(m_hash_0, h->payload_hash.len = 0)
MUT(m_keyid_7, h->signer_key_id.data = s_bytes; h->signer_key_id.len = 7)
MUT(m_keyid_9, h->signer_key_id.data = s_bytes; h->signer_key_id.len = 9)

static const struct {
    const char *name;
    void (*mutate)(tu_header_t *);
    gbx_err_t want;
    const char *why; /* the field gbx_header_check names */
} s_header_cases[] = {
    {"valid fixture", m_none, GBX_OK, NULL},
    {"message_id 15 bytes", m_msgid_15, GBX_E_FIELD_INVALID, "message_id"},
    {"message_id 17 bytes", m_msgid_17, GBX_E_FIELD_INVALID, "message_id"},
    {"message_id empty", m_msgid_0, GBX_E_FIELD_INVALID, "message_id"},
    {"correlation_id 3 bytes", m_corr_3, GBX_E_FIELD_INVALID, "correlation_id"},
    {"correlation_id 16 bytes on a REQUEST", m_corr_16, GBX_OK, NULL},
    {"RESPONSE without correlation_id", m_response_no_corr, GBX_E_FIELD_INVALID, "correlation_id"},
    {"RESPONSE with correlation_id", m_response_corr, GBX_OK, NULL},
    {"from_agency empty", m_from_empty, GBX_E_FIELD_INVALID, "from_agency"},
    {"from_agency upper case", m_from_upper, GBX_E_FIELD_INVALID, "from_agency"},
    {"from_agency starts with a dot", m_from_dot, GBX_E_FIELD_INVALID, "from_agency"},
    {"from_agency with a space", m_from_space, GBX_E_FIELD_INVALID, "from_agency"},
    {"from_agency 65 chars", m_from_65, GBX_E_FIELD_INVALID, "from_agency"},
    {"from_agency 64 chars", m_from_64, GBX_OK, NULL},
    {"to_agency empty", m_to_empty, GBX_E_FIELD_INVALID, "to_agency"},
    {"to_agency upper case", m_to_upper, GBX_E_FIELD_INVALID, "to_agency"},
    {"to_agency with '_'", m_to_underscore, GBX_E_FIELD_INVALID, "to_agency"},
    {"to_agency 65 chars", m_to_65, GBX_E_FIELD_INVALID, "to_agency"},
    {"service_code empty", m_svc_empty, GBX_E_FIELD_INVALID, "service_code"},
    {"service_code lower case", m_svc_lower, GBX_E_FIELD_INVALID, "service_code"},
    {"service_code with '_'", m_svc_underscore, GBX_E_FIELD_INVALID, "service_code"},
    {"service_code 65 chars", m_svc_65, GBX_E_FIELD_INVALID, "service_code"},
    {"service_code 64 chars", m_svc_64, GBX_OK, NULL},
    {"service_version 0", m_version_0, GBX_E_FIELD_INVALID, "service_version"},
    {"service_version 2^32-1", m_version_max, GBX_OK, NULL},
    {"kind 0", m_kind_0, GBX_E_FIELD_INVALID, "kind"},
    {"kind 4", m_kind_4, GBX_E_FIELD_INVALID, "kind"},
    {"kind VERIFY", m_kind_verify, GBX_OK, NULL},
    {"data_class 0", m_class_0, GBX_E_FIELD_INVALID, "data_class"},
    {"data_class 7", m_class_7, GBX_E_FIELD_INVALID, "data_class"},
    {"data_class CORE", m_class_core, GBX_OK, NULL},
    {"data_class PUBLIC", m_class_public, GBX_OK, NULL},
    {"hk_marking 0", m_mark_0, GBX_E_FIELD_INVALID, "hk_marking"},
    {"hk_marking 6", m_mark_6, GBX_E_FIELD_INVALID, "hk_marking"},
    {"hk_marking TOP_SECRET", m_mark_top, GBX_OK, NULL},
    {"legal_route 7", m_route_7, GBX_E_FIELD_INVALID, "legal_route"},
    {"legal_route -1", m_route_neg, GBX_E_FIELD_INVALID, "legal_route"},
    {"legal_route NONE", m_route_none, GBX_OK, NULL},
    {"legal_route MODEL_CLAUSES", m_route_model, GBX_OK, NULL},
    {"consent_type 4", m_consent_4, GBX_E_FIELD_INVALID, "consent_type"},
    {"consent_type SEPARATE_CONSENT", m_consent_sep, GBX_OK, NULL},
    {"purpose_code 257 bytes", m_purpose_257, GBX_E_FIELD_INVALID, "purpose_code"},
    {"purpose_code 256 bytes", m_purpose_256, GBX_OK, NULL},
    {"case_ref invalid UTF-8", m_case_bad_utf8, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref overlong UTF-8", m_case_overlong, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref UTF-8 surrogate", m_case_surrogate, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref UTF-8 cut short", m_case_cut, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref above U+10FFFF", m_case_above_max, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref lone continuation byte", m_case_lone_cont, GBX_E_FIELD_INVALID, "case_ref"},
    {"case_ref valid UTF-8 (CJK, emoji)", m_case_utf8, GBX_OK, NULL},
    {"end_user_ref 257 bytes", m_end_user_257, GBX_E_FIELD_INVALID, "end_user_ref"},
    {"legal_route_ref 257 bytes", m_route_ref_257, GBX_E_FIELD_INVALID, "legal_route_ref"},
    {"consent_ref 257 bytes", m_consent_ref_257, GBX_E_FIELD_INVALID, "consent_ref"},
    {"impact_assessment_ref 257 bytes", m_pia_257, GBX_E_FIELD_INVALID, "impact_assessment_ref"},
    {"release_authority_ref 257 bytes", m_release_257, GBX_E_FIELD_INVALID,
     "release_authority_ref"},
    {"agreement_ref 257 bytes", m_agreement_257, GBX_E_FIELD_INVALID, "agreement_ref"},
    {"agreement_ref invalid UTF-8", m_agreement_bad_utf8, GBX_E_FIELD_INVALID, "agreement_ref"},
    {"created_at 0", m_created_0, GBX_E_FIELD_INVALID, "created_at_ms"},
    {"expires_at == created_at", m_expires_eq, GBX_E_FIELD_INVALID, "expires_at_ms"},
    {"expires_at < created_at", m_expires_lt, GBX_E_FIELD_INVALID, "expires_at_ms"},
    {"expires_at 0", m_expires_0, GBX_E_FIELD_INVALID, "expires_at_ms"},
    {"expires_at == created_at + 1", m_expires_plus1, GBX_OK, NULL},
    /* Over the suite limit: FIELD_INVALID (2-envelope.md section 2 field 20; 4-reasons.md
       code 105); PAYLOAD_TOO_LARGE is for a receiver's own lower limit. */
    {"payload_length 2^30 + 1", m_length_over, GBX_E_FIELD_INVALID, "payload_length"},
    {"payload_length 2^30", m_length_max, GBX_OK, NULL},
    {"payload_length 0", m_length_0, GBX_OK, NULL},
    {"payload_hash 31 bytes", m_hash_31, GBX_E_FIELD_INVALID, "payload_hash"},
    {"payload_hash 33 bytes", m_hash_33, GBX_E_FIELD_INVALID, "payload_hash"},
    {"payload_hash empty", m_hash_0, GBX_E_FIELD_INVALID, "payload_hash"},
    {"signer_key_id 7 bytes", m_keyid_7, GBX_E_FIELD_INVALID, "signer_key_id"},
    {"signer_key_id 9 bytes", m_keyid_9, GBX_E_FIELD_INVALID, "signer_key_id"},
};
#define S_NHEADER_CASES (sizeof s_header_cases / sizeof s_header_cases[0])

static void s_init_texts(void)
{
    memset(s_text256, 't', 256);
    memset(s_text257, 't', 257);
    memset(s_id64, 'a', 64);
    memset(s_id65, 'a', 65);
    memset(s_code64, 'A', 64);
    memset(s_code65, 'A', 65);
    for (size_t i = 0; i < sizeof s_bytes; i++)
        s_bytes[i] = (uint8_t)(0x5a + i);
}

/*  The header of a case packed as it is (no key id filled in), so that a
    peer's invalid header can be signed by hand. */
static uint8_t *s_pack_raw(const gbx_header_t *h, size_t *len)
{
    *len = gbx__v1__header__get_packed_size(h);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    gbx__v1__header__pack(h, buf);
    return buf;
}

static void test_header_cases(void **state)
{
    s_fix_t *f = *state;
    s_init_texts();
    int fails = 0;
    for (size_t i = 0; i < S_NHEADER_CASES; i++) {
        char name[160];
        gbx_err_t want = s_header_cases[i].want;
        tu_header_t t;
        tu_header_fixture(&t, (uint32_t)i);
        s_header_cases[i].mutate(&t);
        /* a's keys under the id the header names, for the cases that change it */
        gbx_pubid_t signer = *s_pub(f->a);
        snprintf(signer.id, sizeof signer.id, "%s", t.h.from_agency);

        const char *why = "unset";
        snprintf(name, sizeof name, "%s [gbx_header_check]", s_header_cases[i].name);
        check_case_rc(fails, name, gbx_header_check(&t.h, &why), want);
        if ((why == NULL) != (s_header_cases[i].why == NULL) ||
            (why && strcmp(why, s_header_cases[i].why) != 0)) {
            print_error("case \"%s\": names %s, want %s\n", name, why ? why : "(none)",
                        s_header_cases[i].why ? s_header_cases[i].why : "(none)");
            fails++;
        }

        /* Only the sender may sign: a case that renames it signs as that id. */
        gbx_identity_t *own = NULL;
        if (gbx_id_valid(t.h.from_agency) && strcmp(t.h.from_agency, s_pub(f->a)->id) != 0)
            own = tu_identity_fixed(t.h.from_agency, NULL);
        const gbx_identity_t *who = own ? own : f->a;
        gbx_envelope_t *e = NULL;
        snprintf(name, sizeof name, "%s [gbx_envelope_sign]", s_header_cases[i].name);
        gbx_err_t rc = gbx_envelope_sign(who, &t.h, &e);
        check_case_rc(fails, name, rc, want);
        if (rc == GBX_OK) {
            size_t len = 0;
            uint8_t *wire = tu_pack(e, &len);
            snprintf(name, sizeof name, "%s [decode + verify of the signed envelope]",
                     s_header_cases[i].name);
            check_case_rc(fails, name, tu_decode_verify(wire, len, s_pub(who), NULL), GBX_OK);
            free(wire);
        } else if (e) {
            print_error("case \"%s\": an envelope was handed out on error\n", name);
            fails++;
        }
        gbx_envelope_destroy(&e);
        gbx_identity_destroy(&own);

        /* A peer that signs such a header anyway: decode must refuse it. */
        uint8_t key_id[GBX_KEY_ID_BYTES];
        if (t.h.signer_key_id.len == 0) {
            gbx_pubid_key_id(s_pub(f->a), key_id);
            t.h.signer_key_id.data = key_id;
            t.h.signer_key_id.len = sizeof key_id;
        }
        size_t hl = 0, len = 0;
        uint8_t *hdr = s_pack_raw(&t.h, &hl);
        uint8_t *wire = tu_envelope_by_hand(f->a, hdr, hl, 1, 1, &len);
        snprintf(name, sizeof name, "%s [decode + verify, signed by hand]", s_header_cases[i].name);
        check_case_rc(fails, name, tu_decode_verify(wire, len, &signer, NULL), want);
        free(wire);
        free(hdr);
    }
    if (fails)
        fail_msg("%d header case checks failed (listed above)", fails);
}

/* --------------------------------------------------------- flipped bytes */

static void test_flip_envelope(void **state)
{
    s_fix_t *f = *state;
    uint8_t *buf = malloc(f->wire_len);
    size_t accepted = 0, tried = 0;
    for (size_t i = 0; i < f->wire_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, f->wire, f->wire_len);
            buf[i] ^= (uint8_t)(1u << bit);
            gbx_err_t rc = tu_decode_verify(buf, f->wire_len, s_pub(f->a), NULL);
            tried++;
            if (rc == GBX_OK) {
                print_error("flip byte %zu bit %d: accepted\n", i, bit);
                accepted++;
            }
        }
    }
    free(buf);
    print_message("%zu single-bit flips of a %zu-byte envelope, %zu accepted\n", tried, f->wire_len,
                  accepted);
    assert_int_equal(accepted, 0);
}

static uint8_t *s_repack_header(const s_fix_t *f, const uint8_t *hdr, size_t hdr_len, size_t *len)
{
    gbx_envelope_t *e = NULL;
    assert_rc(gbx_envelope_decode(f->wire, f->wire_len, &e), GBX_OK);
    Gbx__V1__Envelope m = *gbx_envelope_message(e);
    m.header.data = (uint8_t *)hdr;
    m.header.len = hdr_len;
    uint8_t *out = tu_pack_msg(&m, len);
    gbx_envelope_destroy(&e);
    return out;
}

static void test_flip_header(void **state)
{
    s_fix_t *f = *state;
    uint8_t *hdr = malloc(f->hdr_len);
    size_t accepted = 0, tried = 0, bad_sig = 0;
    static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    for (size_t i = 0; i < f->hdr_len; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(hdr, f->hdr, f->hdr_len);
            hdr[i] ^= masks[k];
            size_t len = 0;
            uint8_t *wire = s_repack_header(f, hdr, f->hdr_len, &len);
            gbx_err_t rc = tu_decode_verify(wire, len, s_pub(f->a), NULL);
            free(wire);
            tried++;
            bad_sig += rc == GBX_E_BAD_SIGNATURE;
            if (rc == GBX_OK) {
                print_error("header byte %zu ^ 0x%02x: accepted\n", i, masks[k]);
                accepted++;
            }
        }
    }
    free(hdr);
    print_message("%zu header flips, %zu caught by the signature, %zu accepted\n", tried, bad_sig,
                  accepted);
    assert_int_equal(accepted, 0);
    assert_true(bad_sig > 0);
}

static void test_flip_signature(void **state)
{
    s_fix_t *f = *state;
    uint8_t *buf = malloc(f->wire_len);
    size_t sig_off = f->wire_len - GBX_SIG_BYTES; /* the last field */
    gbx_envelope_t *e = NULL;
    assert_rc(gbx_envelope_decode(f->wire, f->wire_len, &e), GBX_OK);
    assert_memory_equal(f->wire + sig_off, gbx_envelope_message(e)->signature.data, 64);
    gbx_envelope_destroy(&e);
    for (size_t i = 0; i < GBX_SIG_BYTES; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, f->wire, f->wire_len);
            buf[sig_off + i] ^= (uint8_t)(1u << bit);
            assert_rc(gbx_envelope_decode(buf, f->wire_len, &e), GBX_OK);
            gbx_err_t rc = gbx_envelope_verify(e, s_pub(f->a), NULL);
            gbx_envelope_destroy(&e);
            if (rc != GBX_E_BAD_SIGNATURE)
                fail_msg("signature byte %zu bit %d: got %s, want BAD_SIGNATURE", i, bit,
                         gbx_err_name(rc));
        }
    }
    free(buf);
}

/* ------------------------------------------------------------ wrong keys */

static void test_wrong_key(void **state)
{
    s_fix_t *f = *state;
    /* The fixture names a's key id. */
    assert_rc(tu_decode_verify(f->wire, f->wire_len, s_pub(f->a), NULL), GBX_OK);
    assert_rc(tu_decode_verify(f->wire, f->wire_len, s_pub(f->a2), NULL), GBX_E_WRONG_KEY);
    assert_rc(tu_decode_verify(f->wire, f->wire_len, s_pub(f->b), NULL), GBX_E_WRONG_KEY);
    /* a's keys under another id. */
    gbx_pubid_t renamed = *s_pub(f->a);
    snprintf(renamed.id, sizeof renamed.id, "%s", "gd.other");
    assert_rc(tu_decode_verify(f->wire, f->wire_len, &renamed, NULL), GBX_E_WRONG_KEY);
    /* a2's key id in the header but a's signature, and the reverse. */
    tu_header_t t;
    tu_header_fixture(&t, 1);
    uint8_t kid[GBX_KEY_ID_BYTES];
    gbx_pubid_key_id(s_pub(f->a2), kid);
    t.h.signer_key_id.data = kid;
    t.h.signer_key_id.len = sizeof kid;
    gbx_envelope_t *e = NULL;
    assert_rc(gbx_envelope_sign(f->a, &t.h, &e), GBX_OK);
    size_t len = 0;
    uint8_t *wire = tu_pack(e, &len);
    gbx_envelope_destroy(&e);
    assert_rc(tu_decode_verify(wire, len, s_pub(f->a), NULL), GBX_E_WRONG_KEY);
    assert_rc(tu_decode_verify(wire, len, s_pub(f->a2), NULL), GBX_E_BAD_SIGNATURE);
    free(wire);
    /* No key id in the header: it decodes (the field may be empty), but a
       verifier refuses it with WRONG_KEY (2-envelope.md section 8 step 8). */
    tu_header_fixture(&t, 2);
    size_t hl = gbx__v1__header__get_packed_size(&t.h);
    uint8_t *hdr = malloc(hl);
    gbx__v1__header__pack(&t.h, hdr);
    wire = tu_envelope_by_hand(f->a, hdr, hl, 1, 1, &len);
    assert_rc(gbx_envelope_decode(wire, len, &e), GBX_OK);
    gbx_envelope_destroy(&e);
    assert_rc(tu_decode_verify(wire, len, s_pub(f->a), NULL), GBX_E_WRONG_KEY);
    assert_rc(tu_decode_verify(wire, len, s_pub(f->a2), NULL), GBX_E_WRONG_KEY);
    assert_rc(tu_decode_verify(wire, len, s_pub(f->b), NULL), GBX_E_WRONG_KEY);
    free(wire);
    free(hdr);
}

/* ------------------------------------------------------------ truncation */

static void test_truncations(void **state)
{
    s_fix_t *f = *state;
    size_t sig_off = f->wire_len - GBX_SIG_BYTES;
    size_t counts[1000] = {0};
    for (size_t n = 0; n < f->wire_len; n++) {
        /* A copy of exactly n bytes, so that a read past it is caught by
           valgrind or ASan. */
        uint8_t *buf = malloc(n ? n : 1);
        memcpy(buf, f->wire, n);
        gbx_envelope_t *e = NULL;
        gbx_err_t rc = gbx_envelope_decode(buf, n, &e);
        if (rc == GBX_OK) {
            rc = gbx_envelope_verify(e, s_pub(f->a), NULL);
            gbx_envelope_destroy(&e);
            if (rc == GBX_OK)
                fail_msg("envelope cut to %zu of %zu bytes: accepted", n, f->wire_len);
        } else {
            assert_null(e);
        }
        int inside =
            (n > f->hdr_off && n < f->hdr_off + f->hdr_len) || (n > sig_off && n < f->wire_len);
        if (inside && rc != GBX_E_TRUNCATED)
            fail_msg("cut to %zu bytes (inside a field): got %s, want TRUNCATED", n,
                     gbx_err_name(rc));
        if ((int)rc >= 0 && (int)rc < 1000)
            counts[rc]++;
        free(buf);
    }
    assert_int_equal(counts[GBX_OK], 0);
    print_message("truncations: %zu TRUNCATED, %zu MALFORMED, %zu BAD_SIGNATURE, "
                  "%zu UNSUPPORTED_VERSION, %zu UNKNOWN_SUITE\n",
                  counts[GBX_E_TRUNCATED], counts[GBX_E_MALFORMED], counts[GBX_E_BAD_SIGNATURE],
                  counts[GBX_E_UNSUPPORTED_VERSION], counts[GBX_E_UNKNOWN_SUITE]);
}

/* --------------------------------------------------------------- garbage */

static int s_decode_error(gbx_err_t rc)
{
    switch (rc) {
    case GBX_E_MALFORMED:
    case GBX_E_TRUNCATED:
    case GBX_E_UNSUPPORTED_VERSION:
    case GBX_E_UNKNOWN_SUITE:
    case GBX_E_HEADER_TOO_LARGE:
    case GBX_E_FIELD_INVALID:
    case GBX_E_BAD_SIGNATURE:
    case GBX_E_BAD_INCLUSION_PATH:
        return 1;
    default:
        return 0;
    }
}

static void test_garbage(void **state)
{
    tu_rng_t r;
    tu_rng_init(&r, tu_seed("envelope garbage", 20260921));
    size_t counts[1000] = {0};
    for (int i = 0; i < 1000; i++) {
        /* mostly short, some near and above the envelope limit */
        size_t n =
            i % 10 == 9 ? 1 + tu_rng_below(&r, GBX_ENVELOPE_MAX + 4096) : 1 + tu_rng_below(&r, 600);
        uint8_t *buf = malloc(n);
        tu_rng_bytes(&r, buf, n);
        if (i % 3 == 0) /* start like an envelope: version 1, suite 1, a header */
            memcpy(buf, "\x08\x01\x10\x01\x1a", n < 5 ? n : 5);
        gbx_envelope_t *e = NULL;
        gbx_err_t rc = gbx_envelope_decode(buf, n, &e);
        if (rc == GBX_OK) {
            gbx_err_t v = gbx_envelope_verify(e, s_pub(s_fix->a), NULL);
            gbx_envelope_destroy(&e);
            if (v == GBX_OK)
                fail_msg("garbage buffer %d (%zu bytes) accepted", i, n);
        } else if (!s_decode_error(rc)) {
            fail_msg("garbage buffer %d (%zu bytes): %s is not a decode error", i, n,
                     gbx_err_name(rc));
        }
        if (n > GBX_ENVELOPE_MAX)
            assert_rc(rc, GBX_E_HEADER_TOO_LARGE);
        counts[rc]++;
        free(buf);
    }
    print_message("garbage: %zu MALFORMED, %zu TRUNCATED, %zu HEADER_TOO_LARGE, %zu other\n",
                  counts[GBX_E_MALFORMED], counts[GBX_E_TRUNCATED], counts[GBX_E_HEADER_TOO_LARGE],
                  1000 - counts[GBX_E_MALFORMED] - counts[GBX_E_TRUNCATED] -
                      counts[GBX_E_HEADER_TOO_LARGE]);
}

/*  Random edits (overwrite, insert, delete) of 1..4 bytes of a valid envelope.
    Outside the signed parts protobuf may re-encode the same values (e.g. a
    longer varint for version 1), so an accepted envelope is a failure only
    when its header bytes or signature differ from the original. */
static void test_mutations(void **state)
{
    s_fix_t *f = *state;
    tu_rng_t r;
    tu_rng_init(&r, tu_seed("envelope mutations", 6962));
    size_t accepted_same = 0;
    uint8_t *buf = malloc(f->wire_len + 8);
    for (int i = 0; i < 3000; i++) {
        size_t n = f->wire_len;
        memcpy(buf, f->wire, n);
        int edits = 1 + (int)tu_rng_below(&r, 4);
        for (int k = 0; k < edits; k++) {
            size_t at = tu_rng_below(&r, n);
            uint8_t byte = (uint8_t)tu_rng_next(&r);
            switch (tu_rng_below(&r, 3)) {
            case 0:
                buf[at] = byte;
                break;
            case 1:
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = byte;
                n++;
                break;
            default:
                if (n > 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
            }
        }
        if (n == f->wire_len && memcmp(buf, f->wire, n) == 0)
            continue;
        gbx_envelope_t *e = NULL;
        if (gbx_envelope_decode(buf, n, &e) != GBX_OK)
            continue;
        if (gbx_envelope_verify(e, s_pub(f->a), NULL) == GBX_OK) {
            size_t hl = 0;
            const uint8_t *h = gbx_envelope_header_bytes(e, &hl);
            const Gbx__V1__Envelope *m = gbx_envelope_message(e);
            if (hl != f->hdr_len || memcmp(h, f->hdr, hl) != 0 ||
                memcmp(m->signature.data, f->wire + f->wire_len - 64, 64) != 0)
                fail_msg("mutation %d: accepted with other header bytes or signature", i);
            accepted_same++;
        }
        gbx_envelope_destroy(&e);
    }
    free(buf);
    print_message("mutations: %zu accepted, each with the original header and signature\n",
                  accepted_same);
}

/* -------------------------------------------------------- crafted bytes */

static size_t s_varint_len(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/*  BASE (a valid header or envelope) followed by an unknown length-delimited
    field 1000 that pads it to exactly TOTAL bytes. */
static uint8_t *s_padded(const uint8_t *base, size_t base_len, size_t total)
{
    size_t pad = 0, lb;
    for (lb = 1; lb <= 4; lb++) { /* tag of field 1000, wire type 2: c2 3e */
        assert_true(total >= base_len + 2 + lb);
        pad = total - base_len - 2 - lb;
        if (s_varint_len(pad) == lb)
            break;
    }
    assert_true(lb <= 4);
    uint8_t *out = malloc(total);
    memcpy(out, base, base_len);
    uint8_t *p = out + base_len;
    *p++ = 0xc2;
    *p++ = 0x3e;
    for (size_t v = pad; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(0x80 | (v & 0x7f));
    *p++ = (uint8_t)(pad >> (7 * (lb - 1)));
    memset(p, 'p', pad);
    assert_int_equal((size_t)(p + pad - out), total);
    return out;
}

typedef enum {
    C_VERSION,      /* arg: version */
    C_SUITE,        /* arg: suite */
    C_HEADER_SIZE,  /* arg: header bytes, padded with an unknown field */
    C_ENV_SIZE,     /* arg: envelope bytes, padded with an unknown field */
    C_SIG_LEN,      /* arg: signature length */
    C_RAW_HEADER,   /* text: header bytes (escaped), signed by hand */
    C_HEADER_PLUS,  /* text: bytes appended to the valid header, signed by hand */
    C_HEADER_CUT,   /* arg: header bytes dropped at the end, signed by hand */
    C_RAW_ENVELOPE, /* text: the whole envelope */
    C_ENV_PLUS,     /* text: bytes appended to the valid envelope */
} s_craft_t;

static const struct {
    const char *name;
    s_craft_t kind;
    long arg;
    const char *text;
    size_t text_len;
    gbx_err_t want_decode;
    gbx_err_t want_verify; /* when decode is GBX_OK */
} s_crafted_cases[] = {
    {"version 2", C_VERSION, 2, NULL, 0, GBX_E_UNSUPPORTED_VERSION, 0},
    {"version 0 (absent)", C_VERSION, 0, NULL, 0, GBX_E_UNSUPPORTED_VERSION, 0},
    {"suite 2", C_SUITE, 2, NULL, 0, GBX_E_UNKNOWN_SUITE, 0},
    {"suite 0 (absent)", C_SUITE, 0, NULL, 0, GBX_E_UNKNOWN_SUITE, 0},
    {"header of GBX_HEADER_MAX bytes", C_HEADER_SIZE, GBX_HEADER_MAX, NULL, 0, GBX_OK, GBX_OK},
    {"header of GBX_HEADER_MAX + 1 bytes", C_HEADER_SIZE, GBX_HEADER_MAX + 1, NULL, 0,
     GBX_E_HEADER_TOO_LARGE, 0},
    {"header of 20000 bytes", C_HEADER_SIZE, 20000, NULL, 0, GBX_E_HEADER_TOO_LARGE, 0},
    {"envelope of GBX_ENVELOPE_MAX bytes", C_ENV_SIZE, GBX_ENVELOPE_MAX, NULL, 0, GBX_OK, GBX_OK},
    {"envelope of GBX_ENVELOPE_MAX + 1 bytes", C_ENV_SIZE, GBX_ENVELOPE_MAX + 1, NULL, 0,
     GBX_E_HEADER_TOO_LARGE, 0},
    /* A signature of the wrong length: BAD_SIGNATURE (2-envelope.md section 1.1 and
       section 8 step 4; 4-reasons.md code 200). */
    {"signature 63 bytes", C_SIG_LEN, 63, NULL, 0, GBX_E_BAD_SIGNATURE, 0},
    {"signature 65 bytes", C_SIG_LEN, 65, NULL, 0, GBX_E_BAD_SIGNATURE, 0},
    {"signature absent", C_SIG_LEN, 0, NULL, 0, GBX_E_BAD_SIGNATURE, 0},
    {"header empty", C_RAW_HEADER, 0, "", 0, GBX_E_MALFORMED, 0},
    {"header: wire type 7", C_RAW_HEADER, 0, "\x0f\x01", 2, GBX_E_MALFORMED, 0},
    {"header: field number 0", C_RAW_HEADER, 0, "\x02\x01\x00", 3, GBX_E_MALFORMED, 0},
    {"header: group wire type", C_RAW_HEADER, 0, "\x0b\x0c", 2, GBX_E_MALFORMED, 0},
    {"header: 11-byte varint key", C_RAW_HEADER, 0,
     "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01\x00", 12, GBX_E_MALFORMED, 0},
    {"header: 11-byte varint value", C_HEADER_PLUS, 0,
     "\xb0\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 13, GBX_E_MALFORMED, 0},
    {"header: length beyond the end", C_HEADER_PLUS, 0, "\x82\x01\x05xy", 5, GBX_E_TRUNCATED, 0},
    {"header: varint cut", C_HEADER_PLUS, 0, "\xb0\x01\x80", 3, GBX_E_TRUNCATED, 0},
    {"header: fixed64 cut", C_HEADER_PLUS, 0, "\xb1\x01\x01\x02", 4, GBX_E_TRUNCATED, 0},
    {"header cut inside its last field", C_HEADER_CUT, 3, NULL, 0, GBX_E_TRUNCATED, 0},
    {"header: from_agency as a varint", C_HEADER_PLUS, 0, "\x18\x01", 2, GBX_E_MALFORMED, 0},
    {"header: message_id as fixed32", C_HEADER_PLUS, 0, "\x0d\x01\x02\x03\x04", 5, GBX_E_MALFORMED,
     0},
    {"header: unknown field, signed", C_HEADER_PLUS, 0, "\xa2\x06\x03xyz", 6, GBX_OK, GBX_OK},
    {"header: second message_id of 15 bytes", C_HEADER_PLUS, 0,
     "\x0a\x0f"
     "0123456789abcde",
     17, GBX_E_FIELD_INVALID, 0},
    {"header: second from_agency, invalid", C_HEADER_PLUS, 0, "\x1a\x05HK.CR", 7,
     GBX_E_FIELD_INVALID, 0},
    /* Protobuf strings may hold NUL; C sees only the part before it. The id
       "gd.qh-amr\0x" is not [a-z0-9.-]{1,64}, so it must be refused. */
    {"header: from_agency with an embedded NUL", C_HEADER_PLUS, 0, "\x1a\x0bgd.qh-amr\0x", 13,
     GBX_E_FIELD_INVALID, 0},
    {"header: case_ref with an embedded NUL", C_HEADER_PLUS, 0, "\x5a\x04QH\0\xff", 6,
     GBX_E_FIELD_INVALID, 0},
    {"envelope: version as fixed64", C_RAW_ENVELOPE, 0, "\x09\x01\x00\x00\x00\x00\x00\x00\x00", 9,
     GBX_E_MALFORMED, 0},
    {"envelope: header as a varint", C_RAW_ENVELOPE, 0, "\x08\x01\x10\x01\x18\x01", 6,
     GBX_E_MALFORMED, 0},
    {"envelope: only version and suite", C_RAW_ENVELOPE, 0, "\x08\x01\x10\x01", 4, GBX_E_MALFORMED,
     0},
    {"envelope: header length beyond the end", C_RAW_ENVELOPE, 0, "\x08\x01\x10\x01\x1a\x7f", 6,
     GBX_E_TRUNCATED, 0},
    {"envelope: field number 0", C_RAW_ENVELOPE, 0, "\x00\x01", 2, GBX_E_MALFORMED, 0},
    {"envelope: one byte", C_RAW_ENVELOPE, 0, "\x08", 1, GBX_E_TRUNCATED, 0},
    {"envelope: batch is a varint", C_ENV_PLUS, 0, "\x28\x01", 2, GBX_E_MALFORMED, 0},
    {"envelope: trailing unknown field", C_ENV_PLUS, 0, "\xa0\x06\x01", 3, GBX_OK, GBX_OK},
    {"envelope: trailing tag without value", C_ENV_PLUS, 0, "\xa0\x06", 2, GBX_E_TRUNCATED, 0},
    {"envelope: second version 2", C_ENV_PLUS, 0, "\x08\x02", 2, GBX_E_UNSUPPORTED_VERSION, 0},
};

static uint8_t *s_craft(const s_fix_t *f, size_t i, size_t *len)
{
    s_craft_t kind = s_crafted_cases[i].kind;
    long arg = s_crafted_cases[i].arg;
    const uint8_t *text = (const uint8_t *)s_crafted_cases[i].text;
    size_t text_len = s_crafted_cases[i].text_len;
    uint8_t *out = NULL, *hdr = NULL;
    switch (kind) {
    case C_VERSION:
        return tu_envelope_by_hand(f->a, f->hdr, f->hdr_len, (uint32_t)arg, 1, len);
    case C_SUITE:
        return tu_envelope_by_hand(f->a, f->hdr, f->hdr_len, 1, (uint32_t)arg, len);
    case C_HEADER_SIZE:
        hdr = s_padded(f->hdr, f->hdr_len, (size_t)arg);
        out = tu_envelope_by_hand(f->a, hdr, (size_t)arg, 1, 1, len);
        free(hdr);
        return out;
    case C_ENV_SIZE:
        return s_padded(f->wire, f->wire_len, (size_t)(*len = (size_t)arg));
    case C_SIG_LEN: {
        gbx_envelope_t *e = NULL;
        assert_rc(gbx_envelope_decode(f->wire, f->wire_len, &e), GBX_OK);
        Gbx__V1__Envelope m = *gbx_envelope_message(e);
        uint8_t sig[80];
        memset(sig, 0x11, sizeof sig);
        memcpy(sig, m.signature.data, 64);
        m.signature.data = sig;
        m.signature.len = (size_t)arg;
        out = tu_pack_msg(&m, len);
        gbx_envelope_destroy(&e);
        return out;
    }
    case C_RAW_HEADER:
        return tu_envelope_by_hand(f->a, text, text_len, 1, 1, len);
    case C_HEADER_PLUS:
        hdr = malloc(f->hdr_len + text_len);
        memcpy(hdr, f->hdr, f->hdr_len);
        memcpy(hdr + f->hdr_len, text, text_len);
        out = tu_envelope_by_hand(f->a, hdr, f->hdr_len + text_len, 1, 1, len);
        free(hdr);
        return out;
    case C_HEADER_CUT:
        return tu_envelope_by_hand(f->a, f->hdr, f->hdr_len - (size_t)arg, 1, 1, len);
    case C_RAW_ENVELOPE:
        out = malloc(text_len);
        memcpy(out, text, text_len);
        *len = text_len;
        return out;
    case C_ENV_PLUS:
        out = malloc(f->wire_len + text_len);
        memcpy(out, f->wire, f->wire_len);
        memcpy(out + f->wire_len, text, text_len);
        *len = f->wire_len + text_len;
        return out;
    }
    return NULL;
}

static void test_crafted(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_crafted_cases / sizeof s_crafted_cases[0]; i++) {
        const char *name = s_crafted_cases[i].name;
        size_t len = 0;
        uint8_t *buf = s_craft(f, i, &len);
        /* Under the envelope limit, so that the header is what is too large. */
        if (s_crafted_cases[i].kind == C_HEADER_SIZE)
            assert_true(len <= GBX_ENVELOPE_MAX);
        gbx_envelope_t *e = NULL;
        gbx_err_t rc = gbx_envelope_decode(buf, len, &e);
        check_case_rc(fails, name, rc, s_crafted_cases[i].want_decode);
        if (rc == GBX_OK && s_crafted_cases[i].want_decode == GBX_OK)
            check_case_rc(fails, name, gbx_envelope_verify(e, s_pub(f->a), NULL),
                          s_crafted_cases[i].want_verify);
        else if (rc != GBX_OK)
            assert_null(e);
        gbx_envelope_destroy(&e);
        free(buf);
    }
    if (fails)
        fail_msg("%d crafted envelopes gave another result (listed above)", fails);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_header_cases),
        cmocka_unit_test(test_flip_envelope),  cmocka_unit_test(test_flip_header),
        cmocka_unit_test(test_flip_signature), cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_truncations),    cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_mutations),      cmocka_unit_test(test_crafted),
    };
    return cmocka_run_group_tests_name("envelope", tests, s_setup, s_teardown);
}
