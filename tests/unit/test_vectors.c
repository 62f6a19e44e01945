/*  test_vectors: known answers of suite GBX1, stored in tests/vectors/ by
    gen-vectors (tests/vectors/README.md); the identities, envelope, receipt,
    batch and byte-leaf Merkle values are those of proto/spec/vectors.md.
    Everything deterministic is recomputed and compared byte for byte; the
    stored ciphertexts (sealing is randomized) are decrypted with the stored
    recipient key.

    Cases:
      identities     the stored .secret / .pub files give the stored public keys,
                     key ids and fingerprints; the keys follow from the seeds
      header         the header built from the stored fields packs to header.bytes;
                     header.hash; the Ed25519 signature over the stored signed
                     message equals header.signature; gbx_envelope_sign of that
                     header packs to envelope.bytes, which decodes and verifies
      payload        payload.sealed (the header's), payload1k.sealed and
                     payload0.sealed open with b's key to their plaintexts; hashes
      receipt        gbx_receipt_sign by n of the stored fields gives the stored
                     SignedReceipt; the stored one verifies
      receipt_batch  gbx_receipt_sign_batch by n of the 3 receipts (fields from
                     receipt.* and batch.*) gives the stored SignedReceipts;
                     leaves, paths, root, signed message, signature; each stored
                     one verifies, through a cache with one Ed25519 verification
      batch          gbx_envelope_sign_batch of the 3 headers packs to the stored
                     envelopes; leaves, paths, root, signed message, signature
      merkle         roots for 1, 2, 3, 64, 1000 leaves "leaf-<i>" and for 1..8
                     one-byte leaves; the byte-leaf audit paths and their failures */
#include "tu_cmocka.h"

#include "gbx/receipt.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define S_VECTORS GBX_VECTORS_DIR "/gbx1-vectors.txt"

typedef struct {
    tu_vectors_t *v;
    char *dir;
    gbx_identity_t *a, *b, *n;
} s_fix_t;

static gbx_identity_t *s_load_identity(const char *dir, const char *id)
{
    char src[512], dst[512];
    /* Git does not keep mode 0600: copy the stored .secret first. */
    snprintf(src, sizeof src, "%s/%s.secret", GBX_VECTORS_DIR, id);
    snprintf(dst, sizeof dst, "%s/%s.secret", dir, id);
    if (tu_copy_file(src, dst, 0600) != 0)
        return NULL;
    gbx_identity_t *ident = NULL;
    return gbx_identity_load(dst, &ident) == GBX_OK ? ident : NULL;
}

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->v = tu_vectors_load(S_VECTORS);
    if (!f->v) {
        fprintf(stderr, "test_vectors: cannot read %s\n", S_VECTORS);
        return -1;
    }
    f->dir = tu_tmpdir();
    f->a = s_load_identity(f->dir, "gd.qh-amr");
    f->b = s_load_identity(f->dir, "hk.cr");
    f->n = s_load_identity(f->dir, "gd-node-1");
    if (!f->a || !f->b || !f->n) {
        fprintf(stderr, "test_vectors: cannot load the stored identities\n");
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->a);
    gbx_identity_destroy(&f->b);
    gbx_identity_destroy(&f->n);
    tu_rmtree(&f->dir);
    tu_vectors_free(&f->v);
    free(f);
    return 0;
}

/*  The stored hex value NAME; fails the test when it is missing. */
static uint8_t *s_hex(const s_fix_t *f, const char *name, size_t *len)
{
    size_t dummy = 0;
    uint8_t *bin = tu_vec_hex(f->v, name, len ? len : &dummy);
    if (!bin)
        fail_msg("%s: no hex value %s", S_VECTORS, name);
    return bin;
}

static void s_assert_hex(const s_fix_t *f, const char *name, const uint8_t *got, size_t got_len)
{
    size_t len = 0;
    uint8_t *want = s_hex(f, name, &len);
    if (len != got_len || memcmp(want, got, len) != 0) {
        char *hex = tu_hex(got, got_len);
        fail_msg("%s differs from the stored vector:\n  got  %s\n  want %s", name, hex,
                 tu_vec_str(f->v, name));
    }
    free(want);
}

static const char *s_str(const s_fix_t *f, const char *name)
{
    const char *s = tu_vec_str(f->v, name);
    if (!s)
        fail_msg("%s: no value %s", S_VECTORS, name);
    return s;
}

static uint64_t s_u64(const s_fix_t *f, const char *name)
{
    int ok = 0;
    uint64_t x = tu_vec_u64(f->v, name, &ok);
    if (!ok)
        fail_msg("%s: no number %s", S_VECTORS, name);
    return x;
}

/* ------------------------------------------------------------ identities */

static void s_check_identity(const s_fix_t *f, const char *who, const gbx_identity_t *ident)
{
    char name[64];
    const gbx_pubid_t *pub = gbx_identity_public(ident);
    snprintf(name, sizeof name, "%s.id", who);
    assert_string_equal(pub->id, s_str(f, name));
    snprintf(name, sizeof name, "%s.sign_pk", who);
    s_assert_hex(f, name, pub->sign_pk, 32);
    snprintf(name, sizeof name, "%s.box_pk", who);
    s_assert_hex(f, name, pub->box_pk, 32);
    snprintf(name, sizeof name, "%s.curve_pk", who);
    s_assert_hex(f, name, pub->curve_pk, 32);
    snprintf(name, sizeof name, "%s.box_sk", who);
    s_assert_hex(f, name, gbx_identity_box_sk(ident), 32);
    snprintf(name, sizeof name, "%s.curve_sk", who);
    s_assert_hex(f, name, gbx_identity_curve_sk(ident), 32);

    /* The keys follow from the stored seeds. */
    snprintf(name, sizeof name, "%s.sign_seed", who);
    uint8_t *seed = s_hex(f, name, NULL), pk[32], sk[64];
    crypto_sign_seed_keypair(pk, sk, seed);
    assert_memory_equal(pk, pub->sign_pk, 32);
    assert_memory_equal(sk, gbx_identity_sign_sk(ident), 64);
    free(seed);
    crypto_scalarmult_base(pk, gbx_identity_box_sk(ident));
    assert_memory_equal(pk, pub->box_pk, 32);

    uint8_t kid[GBX_KEY_ID_BYTES];
    gbx_pubid_key_id(pub, kid);
    snprintf(name, sizeof name, "%s.key_id", who);
    s_assert_hex(f, name, kid, sizeof kid);
    char fp[GBX_FINGERPRINT_LEN];
    gbx_pubid_fingerprint(pub, fp);
    snprintf(name, sizeof name, "%s.fingerprint", who);
    assert_string_equal(fp, s_str(f, name));

    /* The stored .pub is the registry entry of these keys, as formatted. */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pub", GBX_VECTORS_DIR, pub->id);
    gbx_pubid_t stored;
    assert_rc(gbx_pubid_load(path, &stored), GBX_OK);
    assert_memory_equal(stored.sign_pk, pub->sign_pk, 32);
    assert_memory_equal(stored.box_pk, pub->box_pk, 32);
    assert_memory_equal(stored.curve_pk, pub->curve_pk, 32);
    char *text = NULL;
    assert_rc(gbx_pubid_format(pub, &text), GBX_OK);
    uint8_t *file = tu_read_file(path, NULL);
    assert_non_null(file);
    assert_string_equal((char *)file, text);
    free(file);
    free(text);
}

static void test_identities(void **state)
{
    s_fix_t *f = *state;
    s_check_identity(f, "a", f->a);
    s_check_identity(f, "b", f->b);
    s_check_identity(f, "n", f->n);
}

/* ---------------------------------------------------------------- header */

typedef struct {
    gbx_header_t h;
    uint8_t *mid, *corr, *phash, *kid;
} s_hdr_t;

/*  The header of the stored fields header.*, with MID_NAME's message id
    when not NULL. */
static void s_header(const s_fix_t *f, const char *mid_name, s_hdr_t *x)
{
    gbx_header_t *h = &x->h;
    gbx_header_init(h);
    x->mid = s_hex(f, mid_name ? mid_name : "header.message_id", &h->message_id.len);
    h->message_id.data = x->mid;
    x->corr = s_hex(f, "header.correlation_id", &h->correlation_id.len);
    h->correlation_id.data = x->corr;
    h->from_agency = (char *)s_str(f, "header.from_agency");
    h->to_agency = (char *)s_str(f, "header.to_agency");
    h->service_code = (char *)s_str(f, "header.service_code");
    h->service_version = (uint32_t)s_u64(f, "header.service_version");
    h->kind = (Gbx__V1__MessageKind)s_u64(f, "header.kind");
    h->data_class = (Gbx__V1__DataClass)s_u64(f, "header.data_class");
    h->hk_marking = (Gbx__V1__HkMarking)s_u64(f, "header.hk_marking");
    h->purpose_code = (char *)s_str(f, "header.purpose_code");
    h->case_ref = (char *)s_str(f, "header.case_ref");
    h->end_user_ref = (char *)s_str(f, "header.end_user_ref");
    h->legal_route = (Gbx__V1__LegalRoute)s_u64(f, "header.legal_route");
    h->legal_route_ref = (char *)s_str(f, "header.legal_route_ref");
    h->consent_ref = (char *)s_str(f, "header.consent_ref");
    h->consent_type = (Gbx__V1__ConsentType)s_u64(f, "header.consent_type");
    h->subject_count = (uint32_t)s_u64(f, "header.subject_count");
    h->created_at_ms = s_u64(f, "header.created_at_ms");
    h->expires_at_ms = s_u64(f, "header.expires_at_ms");
    h->payload_length = s_u64(f, "header.payload_length");
    x->phash = s_hex(f, "header.payload_hash", &h->payload_hash.len);
    h->payload_hash.data = x->phash;
    h->impact_assessment_ref = (char *)s_str(f, "header.impact_assessment_ref");
    h->release_authority_ref = (char *)s_str(f, "header.release_authority_ref");
    h->agreement_ref = (char *)s_str(f, "header.agreement_ref");
    x->kid = s_hex(f, "header.signer_key_id", &h->signer_key_id.len);
    h->signer_key_id.data = x->kid;
}

static void s_header_free(s_hdr_t *x)
{
    free(x->mid);
    free(x->corr);
    free(x->phash);
    free(x->kid);
}

static void test_header(void **state)
{
    s_fix_t *f = *state;
    s_hdr_t x;
    s_header(f, NULL, &x);
    assert_rc(gbx_header_check(&x.h, NULL), GBX_OK);

    /* Serialization. */
    size_t len = gbx__v1__header__get_packed_size(&x.h);
    uint8_t *packed = malloc(len);
    gbx__v1__header__pack(&x.h, packed);
    s_assert_hex(f, "header.bytes", packed, len);
    uint8_t hash[32];
    crypto_generichash(hash, 32, packed, len, NULL, 0);
    s_assert_hex(f, "header.hash", hash, 32);
    free(packed);

    /* The signature over the stored bytes, recomputed. */
    size_t hl = 0, ml = 0;
    uint8_t *hdr = s_hex(f, "header.bytes", &hl);
    uint8_t *msg = s_hex(f, "header.signed_message", &ml);
    assert_int_equal(ml, 12 + hl);
    assert_memory_equal(msg, "gbx1-header\0", 12);
    assert_memory_equal(msg + 12, hdr, hl);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, msg, ml, gbx_identity_sign_sk(f->a));
    s_assert_hex(f, "header.signature", sig, 64);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, ml, gbx_identity_public(f->a)->sign_pk),
                     0);

    /* The library signs the same header into the same envelope. */
    gbx_envelope_t *e = NULL;
    assert_rc(gbx_envelope_sign(f->a, &x.h, &e), GBX_OK);
    size_t el = 0;
    uint8_t *env = tu_pack(e, &el);
    s_assert_hex(f, "envelope.bytes", env, el);
    size_t bl = 0;
    const uint8_t *b = gbx_envelope_header_bytes(e, &bl);
    s_assert_hex(f, "header.bytes", b, bl);
    gbx_envelope_header_hash(e, hash);
    s_assert_hex(f, "header.hash", hash, 32);
    gbx_envelope_destroy(&e);
    free(env);

    /* The stored envelope decodes and verifies; its payload checks. */
    uint8_t *stored = s_hex(f, "envelope.bytes", &el);
    assert_rc(gbx_envelope_decode(stored, el, &e), GBX_OK);
    assert_rc(gbx_envelope_verify(e, gbx_identity_public(f->a), NULL), GBX_OK);
    assert_rc(gbx_envelope_verify(e, gbx_identity_public(f->b), NULL), GBX_E_WRONG_KEY);
    size_t sl = 0;
    uint8_t *sealed = s_hex(f, "payload.sealed", &sl);
    assert_rc(gbx_envelope_check_payload(e, sealed, sl), GBX_OK);
    gbx_envelope_destroy(&e);
    free(sealed);
    free(stored);
    free(hdr);
    free(msg);
    s_header_free(&x);
}

/* --------------------------------------------------------------- payload */

/*  Opens the stored PREFIX.sealed (PREFIX.plain, PREFIX.hash) with b's key. */
static void s_open_stored(const s_fix_t *f, const gbx_binding_t *bind, const char *prefix,
                          size_t plain_len)
{
    char name[64];
    size_t sl = 0;
    snprintf(name, sizeof name, "%s.sealed", prefix);
    uint8_t *sealed = s_hex(f, name, &sl);
    assert_int_equal(sl, gbx_payload_sealed_size(plain_len));
    uint8_t hash[32];
    gbx_payload_hash(sealed, sl, hash);
    snprintf(name, sizeof name, "%s.hash", prefix);
    s_assert_hex(f, name, hash, 32);
    uint8_t *out = NULL;
    size_t out_len = 99;
    assert_rc(gbx_payload_open(f->b, bind, sealed, sl, plain_len, hash, &out, &out_len), GBX_OK);
    assert_int_equal(out_len, plain_len);
    if (plain_len) {
        snprintf(name, sizeof name, "%s.plain", prefix);
        s_assert_hex(f, name, out, out_len);
    }
    free(out);
    out = NULL;
    /* Only b's key opens it, and only under its binding. */
    assert_rc(gbx_payload_open(f->a, bind, sealed, sl, plain_len, hash, &out, &out_len),
              GBX_E_DECRYPT_FAILED);
    gbx_binding_t other = *bind;
    other.to_agency = "hk.cr2";
    assert_rc(gbx_payload_open(f->b, &other, sealed, sl, plain_len, hash, &out, &out_len),
              GBX_E_DECRYPT_FAILED);
    free(sealed);
}

static void test_payload(void **state)
{
    s_fix_t *f = *state;
    s_hdr_t x;
    s_header(f, NULL, &x);
    gbx_binding_t bind = {x.h.message_id.data, x.h.from_agency, x.h.to_agency};
    size_t pl = 0;
    uint8_t *plain = s_hex(f, "payload.plain", &pl);
    assert_int_equal(pl, x.h.payload_length);
    s_open_stored(f, &bind, "payload", pl);
    size_t sl = 0;
    uint8_t *sealed = s_hex(f, "payload.sealed", &sl), hash[32];
    gbx_payload_hash(sealed, sl, hash);
    s_assert_hex(f, "header.payload_hash", hash, 32);
    free(sealed);
    free(plain);
    plain = s_hex(f, "payload1k.plain", &pl);
    assert_int_equal(pl, 1024);
    s_open_stored(f, &bind, "payload1k", pl);
    s_open_stored(f, &bind, "payload0", 0);
    free(plain);
    s_header_free(&x);
}

/* --------------------------------------------------------------- receipt */

static void test_receipt(void **state)
{
    s_fix_t *f = *state;
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    uint8_t *mid = s_hex(f, "receipt.message_id", &r.message_id.len);
    uint8_t *hh = s_hex(f, "receipt.header_hash", &r.header_hash.len);
    uint8_t *ph = s_hex(f, "receipt.policy_hash", &r.policy_hash.len);
    r.message_id.data = mid;
    r.header_hash.data = hh;
    r.policy_hash.data = ph;
    r.node_id = (char *)s_str(f, "receipt.node_id");
    r.accepted_at_ms = s_u64(f, "receipt.accepted_at_ms");
    r.sequence = s_u64(f, "receipt.sequence");
    r.status = (Gbx__V1__ReceiptStatus)s_u64(f, "receipt.status");
    r.rule_id = (char *)s_str(f, "receipt.rule_id");
    s_assert_hex(f, "header.hash", hh, r.header_hash.len);
    uint8_t policy[32];
    crypto_generichash(policy, 32, (const uint8_t *)"example policy", 14, NULL, 0);
    assert_memory_equal(policy, ph, 32);

    size_t rl = gbx__v1__receipt__get_packed_size(&r);
    uint8_t *rb = malloc(rl);
    gbx__v1__receipt__pack(&r, rb);
    s_assert_hex(f, "receipt.bytes", rb, rl);
    free(rb);

    uint8_t *packed = NULL;
    size_t len = 0;
    assert_rc(gbx_receipt_sign(f->n, &r, &packed, &len), GBX_OK);
    s_assert_hex(f, "receipt.signed_receipt", packed, len);
    free(packed);

    /* The signature over the stored signed message, recomputed. */
    size_t ml = 0;
    uint8_t *msg = s_hex(f, "receipt.signed_message", &ml), sig[64];
    assert_memory_equal(msg, "gbx1-receipt\0", 13);
    crypto_sign_detached(sig, NULL, msg, ml, gbx_identity_sign_sk(f->n));
    s_assert_hex(f, "receipt.signature", sig, 64);
    free(msg);

    /* The stored SignedReceipt verifies with n's key and no other. */
    uint8_t *stored = s_hex(f, "receipt.signed_receipt", &len);
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, len, stored);
    assert_non_null(sr);
    Gbx__V1__Receipt *got = NULL;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->n), &got), GBX_OK);
    assert_int_equal(got->sequence, r.sequence);
    assert_string_equal(got->node_id, r.node_id);
    gbx__v1__receipt__free_unpacked(got, NULL);
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->a), NULL), GBX_E_BAD_SIGNATURE);
    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    free(stored);
    free(mid);
    free(hh);
    free(ph);
}

/* --------------------------------------------------------- receipt batch */

static void test_receipt_batch(void **state)
{
    s_fix_t *f = *state;
    enum { NR = 3 };
    assert_int_equal(s_u64(f, "receipt_batch.size"), NR);
    size_t len = 0;
    uint8_t *ph = s_hex(f, "receipt.policy_hash", &len), *mid[NR], hh[NR][32];
    Gbx__V1__Receipt r[NR];
    const Gbx__V1__Receipt *rp[NR];
    gbx_hash_t leaves[NR];
    char name[64];
    for (int i = 0; i < NR; i++) {
        gbx__v1__receipt__init(&r[i]);
        snprintf(name, sizeof name, "batch.message_id.%d", i);
        mid[i] = s_hex(f, name, &r[i].message_id.len);
        r[i].message_id.data = mid[i];
        snprintf(name, sizeof name, "batch.header.%d", i);
        size_t hl = 0;
        uint8_t *hdr = s_hex(f, name, &hl);
        crypto_generichash(hh[i], 32, hdr, hl, NULL, 0);
        free(hdr);
        r[i].header_hash.data = hh[i];
        r[i].header_hash.len = 32;
        r[i].node_id = (char *)s_str(f, "receipt.node_id");
        r[i].accepted_at_ms = s_u64(f, "receipt_batch.accepted_at_ms");
        snprintf(name, sizeof name, "receipt_batch.sequence.%d", i);
        r[i].sequence = s_u64(f, name);
        r[i].status = (Gbx__V1__ReceiptStatus)s_u64(f, "receipt.status");
        r[i].rule_id = (char *)s_str(f, "receipt.rule_id");
        r[i].policy_hash.data = ph;
        r[i].policy_hash.len = 32;
        rp[i] = &r[i];
        size_t rl = gbx__v1__receipt__get_packed_size(&r[i]);
        uint8_t *rb = malloc(rl);
        gbx__v1__receipt__pack(&r[i], rb);
        snprintf(name, sizeof name, "receipt_batch.receipt.%d", i);
        s_assert_hex(f, name, rb, rl);
        gbx_merkle_leaf(rb, rl, leaves[i]);
        snprintf(name, sizeof name, "receipt_batch.leaf.%d", i);
        s_assert_hex(f, name, leaves[i], 32);
        free(rb);
    }
    gbx_merkle_t *t = NULL;
    assert_rc(gbx_merkle_build(leaves, NR, &t), GBX_OK);
    s_assert_hex(f, "receipt_batch.root", gbx_merkle_root(t), 32);
    for (int i = 0; i < NR; i++) {
        gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
        size_t pl = 0;
        assert_rc(gbx_merkle_path(t, (size_t)i, path, &pl), GBX_OK);
        snprintf(name, sizeof name, "receipt_batch.path.%d", i);
        s_assert_hex(f, name, (const uint8_t *)path, pl * 32);
    }
    gbx_merkle_destroy(&t);

    /* The signed message and its signature, recomputed. */
    size_t ml = 0;
    uint8_t *msg = s_hex(f, "receipt_batch.signed_message", &ml), sig[64];
    assert_int_equal(ml, 19 + 4 + 32);
    assert_memory_equal(msg, "gbx1-receipt-batch\0\0\0\0\3", 23);
    crypto_sign_detached(sig, NULL, msg, ml, gbx_identity_sign_sk(f->n));
    s_assert_hex(f, "receipt_batch.signature", sig, 64);
    free(msg);

    /* The library signs the same batch to the stored bytes. */
    uint8_t *outs[NR];
    size_t lens[NR];
    assert_rc(gbx_receipt_sign_batch(f->n, rp, NR, outs, lens), GBX_OK);
    gbx_vcache_t *cache = NULL;
    assert_rc(gbx_vcache_new(8, &cache), GBX_OK);
    for (int i = 0; i < NR; i++) {
        snprintf(name, sizeof name, "receipt_batch.signed_receipt.%d", i);
        s_assert_hex(f, name, outs[i], lens[i]);
        free(outs[i]);
        /* The stored SignedReceipt verifies with n's key and no other. */
        uint8_t *stored = s_hex(f, name, &len);
        Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, len, stored);
        assert_non_null(sr);
        assert_non_null(sr->batch);
        Gbx__V1__Receipt *got = NULL;
        assert_rc(gbx_receipt_verify_cached(sr, gbx_identity_public(f->n), cache, &got), GBX_OK);
        assert_int_equal(got->sequence, r[i].sequence);
        gbx__v1__receipt__free_unpacked(got, NULL);
        assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->a), NULL), GBX_E_BAD_SIGNATURE);
        gbx__v1__signed_receipt__free_unpacked(sr, NULL);
        free(stored);
    }
    uint64_t verified = 0, hits = 0;
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 1);
    assert_int_equal(hits, NR - 1);
    gbx_vcache_destroy(&cache);
    for (int i = 0; i < NR; i++)
        free(mid[i]);
    free(ph);
}

/* ----------------------------------------------------------------- batch */

static void test_batch(void **state)
{
    s_fix_t *f = *state;
    size_t n = (size_t)s_u64(f, "batch.size");
    assert_int_equal(n, 3);
    s_hdr_t x[3];
    const gbx_header_t *hs[3];
    gbx_envelope_t *env[3] = {NULL, NULL, NULL};
    char name[64];
    size_t bphl = 0;
    uint8_t *bph = s_hex(f, "batch.payload_hash", &bphl);
    uint64_t bpl = s_u64(f, "batch.payload_length");
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "batch.message_id.%zu", i);
        s_header(f, name, &x[i]);
        snprintf(name, sizeof name, "batch.case_ref.%zu", i);
        x[i].h.case_ref = (char *)s_str(f, name);
        x[i].h.payload_length = bpl;
        x[i].h.payload_hash.data = bph;
        x[i].h.payload_hash.len = bphl;
        hs[i] = &x[i].h;
    }
    assert_rc(gbx_envelope_sign_batch(f->a, hs, n, env), GBX_OK);

    gbx_hash_t leaves[3];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *packed = tu_pack(env[i], &len);
        snprintf(name, sizeof name, "batch.envelope.%zu", i);
        s_assert_hex(f, name, packed, len);
        free(packed);
        const uint8_t *hb = gbx_envelope_header_bytes(env[i], &len);
        snprintf(name, sizeof name, "batch.header.%zu", i);
        s_assert_hex(f, name, hb, len);
        gbx_merkle_leaf(hb, len, leaves[i]);
        snprintf(name, sizeof name, "batch.leaf.%zu", i);
        s_assert_hex(f, name, leaves[i], 32);
        const Gbx__V1__BatchProof *p = gbx_envelope_message(env[i])->batch;
        assert_non_null(p);
        snprintf(name, sizeof name, "batch.path.%zu", i);
        s_assert_hex(f, name, p->path.data, p->path.len);
        s_assert_hex(f, "batch.root", p->root.data, p->root.len);
        s_assert_hex(f, "batch.signature", gbx_envelope_message(env[i])->signature.data, 64);
    }
    gbx_merkle_t *t = NULL;
    assert_rc(gbx_merkle_build(leaves, n, &t), GBX_OK);
    s_assert_hex(f, "batch.root", gbx_merkle_root(t), 32);
    uint8_t msg[47], sig[64];
    memcpy(msg, "gbx1-batch", 11);
    msg[11] = 0;
    msg[12] = 0;
    msg[13] = 0;
    msg[14] = (uint8_t)n;
    memcpy(msg + 15, gbx_merkle_root(t), 32);
    s_assert_hex(f, "batch.signed_message", msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, gbx_identity_sign_sk(f->a));
    s_assert_hex(f, "batch.signature", sig, 64);
    gbx_merkle_destroy(&t);

    /* The stored envelopes verify: one signature verification for three. */
    gbx_vcache_t *cache = NULL;
    assert_rc(gbx_vcache_new(16, &cache), GBX_OK);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        snprintf(name, sizeof name, "batch.envelope.%zu", i);
        uint8_t *stored = s_hex(f, name, &len);
        assert_rc(tu_decode_verify(stored, len, gbx_identity_public(f->a), cache), GBX_OK);
        free(stored);
        gbx_envelope_destroy(&env[i]);
        s_header_free(&x[i]);
    }
    uint64_t verified = 0, hits = 0;
    gbx_vcache_stats(cache, &verified, &hits);
    assert_int_equal(verified, 1);
    assert_int_equal(hits, 2);
    gbx_vcache_destroy(&cache);
    free(bph);
}

/* ---------------------------------------------------------------- merkle */

static void test_merkle(void **state)
{
    s_fix_t *f = *state;
    static const size_t sizes[] = {1, 2, 3, 64, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        gbx_hash_t *leaves = malloc(n * sizeof *leaves);
        for (size_t i = 0; i < n; i++) {
            char data[32];
            int len = snprintf(data, sizeof data, "leaf-%zu", i);
            gbx_merkle_leaf((const uint8_t *)data, (size_t)len, leaves[i]);
        }
        gbx_merkle_t *t = NULL;
        assert_rc(gbx_merkle_build(leaves, n, &t), GBX_OK);
        char name[64];
        snprintf(name, sizeof name, "merkle.%zu.root", n);
        s_assert_hex(f, name, gbx_merkle_root(t), 32);
        gbx_merkle_destroy(&t);
        free(leaves);
    }
    /* One-byte leaves u8(i) (vectors.md section 4). */
    gbx_hash_t u8[8], path[GBX_MERKLE_MAX_DEPTH], root;
    for (int i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)i;
        gbx_merkle_leaf(&b, 1, u8[i]);
    }
    for (size_t n = 1; n <= 8; n++) {
        gbx_merkle_t *t = NULL;
        assert_rc(gbx_merkle_build(u8, n, &t), GBX_OK);
        char name[64];
        snprintf(name, sizeof name, "merkle_u8.%zu.root", n);
        s_assert_hex(f, name, gbx_merkle_root(t), 32);
        size_t len = 0;
        if (n == 5 || n == 7) {
            size_t m = n == 5 ? 4 : 2;
            assert_rc(gbx_merkle_path(t, m, path, &len), GBX_OK);
            snprintf(name, sizeof name, "merkle_u8.%zu.path.%zu", n, m);
            s_assert_hex(f, name, (const uint8_t *)path, len * 32);
            assert_rc(gbx_merkle_root_from_path(u8[m], m, n, path, len, root), GBX_OK);
            assert_memory_equal(root, gbx_merkle_root(t), 32);
        }
        if (n == 5) { /* the failures vectors.md lists for tree_size 5, leaf_index 4 */
            memcpy(path[1], u8[0], 32);
            assert_rc(gbx_merkle_root_from_path(u8[4], 4, 5, path, 0, root),
                      GBX_E_BAD_INCLUSION_PATH);
            assert_rc(gbx_merkle_root_from_path(u8[4], 4, 5, path, 2, root),
                      GBX_E_BAD_INCLUSION_PATH);
            assert_rc(gbx_merkle_root_from_path(u8[4], 5, 5, path, 1, root),
                      GBX_E_BAD_INCLUSION_PATH);
            assert_rc(gbx_merkle_root_from_path(u8[4], 4, 0, path, 1, root),
                      GBX_E_BAD_INCLUSION_PATH);
        }
        gbx_merkle_destroy(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identities),    cmocka_unit_test(test_header),
        cmocka_unit_test(test_payload),       cmocka_unit_test(test_receipt),
        cmocka_unit_test(test_batch),         cmocka_unit_test(test_merkle),
        cmocka_unit_test(test_receipt_batch),
    };
    return cmocka_run_group_tests_name("vectors", tests, s_setup, s_teardown);
}
