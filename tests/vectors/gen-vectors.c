/*  gen-vectors: writes the known-answer vectors of suite GBX1 into a directory
    (tests/vectors/README.md). Run by hand, never by ctest:

        build/tests/unit/gen-vectors tests/vectors

    The identities, the single envelope, the receipt, the batch and the
    receipt batch are those of proto/spec/vectors.md (repeated-byte test seeds). Everything
   deterministic is computed here from those fixed seeds with libsodium and protobuf-c directly (the
   signed-message layouts, the Merkle tree, the key id and fingerprint are written out again below),
   and then checked against libgbxproto: the generator stops if the two disagree, so stored vectors
   are never just "what the library did". Payload sealing is randomized (an ephemeral key and a
   fresh content key): the payload of the single envelope is the ciphertext printed in vectors.md
   (its hash is in the signed header); the 1 KiB and empty payloads are sealed afresh and so change
   each time the generator runs. Tests decrypt them with the stored recipient key. The key
   commitment of every payload is recomputed here from the content key in its sealed key. */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/envelope.h"
#include "gbx/identity.h"
#include "gbx/merkle.h"
#include "gbx/payload.h"
#include "gbx/receipt.h"
#include "testutil.h"

static FILE *s_out;

static void s_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "gen-vectors: library and generator disagree: %s\n", what);
        exit(1);
    }
}

static void s_comment(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", s_out);
    vfprintf(s_out, fmt, ap);
    fputc('\n', s_out);
    va_end(ap);
}

static void s_hex(const char *name, const uint8_t *bin, size_t len)
{
    char *hex = tu_hex(bin, len);
    fprintf(s_out, "%s =%s%s\n", name, len ? " " : "", hex); /* no trailing blank */
    free(hex);
}

static void s_text(const char *name, const char *value)
{
    fprintf(s_out, "%s =%s%s\n", name, *value ? " " : "", value);
}

static void s_num(const char *name, uint64_t value)
{
    fprintf(s_out, "%s = %llu\n", name, (unsigned long long)value);
}

/* ------------------------------------------------- independent reference */

static void s_blake(uint8_t *out, size_t out_len, const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen, const uint8_t *c, size_t clen)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, out_len);
    crypto_generichash_update(&st, a, alen);
    if (b)
        crypto_generichash_update(&st, b, blen);
    if (c)
        crypto_generichash_update(&st, c, clen);
    crypto_generichash_final(&st, out, out_len);
}

static void s_leaf(const uint8_t *data, size_t len, uint8_t out[32])
{
    const uint8_t zero = 0x00;
    s_blake(out, 32, &zero, 1, data, len, NULL, 0);
}

static void s_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    const uint8_t one = 0x01;
    s_blake(out, 32, &one, 1, l, 32, r, 32);
}

static size_t s_split(size_t n)
{
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

/*  RFC 6962 MTH and PATH (section 2.1). */
static void s_mth(const gbx_hash_t *leaves, size_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    size_t k = s_split(n);
    uint8_t l[32], r[32];
    s_mth(leaves, k, l);
    s_mth(leaves + k, n - k, r);
    s_node(l, r, out);
}

static size_t s_path(const gbx_hash_t *leaves, size_t n, size_t m, gbx_hash_t *out)
{
    if (n == 1)
        return 0;
    size_t k = s_split(n), len;
    if (m < k) {
        len = s_path(leaves, k, m, out);
        s_mth(leaves + k, n - k, out[len]);
    } else {
        len = s_path(leaves + k, n - k, m - k, out);
        s_mth(leaves, k, out[len]);
    }
    return len + 1;
}

/* ------------------------------------------------------------ identities */

typedef struct {
    const char *who, *id;
    uint8_t sign_seed[32], box_sk[32], curve_sk[32];
    uint8_t sign_pk[32], sign_sk[64], box_pk[32], curve_pk[32];
    uint8_t key_id[8];
    char fingerprint[GBX_FINGERPRINT_LEN];
    gbx_identity_t *ident;
} s_party_t;

/*  The identity ID of proto/spec/vectors.md section 1: each 32-byte secret is
    one repeated byte (SIGN for the Ed25519 seed, SIGN + 1 for the box secret,
    SIGN + 2 for the curve secret). */
static void s_party(const char *dir, const char *who, const char *id, uint8_t sign, s_party_t *p)
{
    memset(p, 0, sizeof *p);
    p->who = who;
    p->id = id;
    memset(p->sign_seed, sign, 32);
    memset(p->box_sk, sign + 1, 32);
    memset(p->curve_sk, sign + 2, 32);
    crypto_sign_seed_keypair(p->sign_pk, p->sign_sk, p->sign_seed);
    crypto_scalarmult_base(p->box_pk, p->box_sk);
    crypto_scalarmult_base(p->curve_pk, p->curve_sk);
    /* key id = first 8 bytes of BLAKE2b-256("gbx1-key-id\0" || sign_pk) */
    uint8_t kh[32];
    s_blake(kh, 32, (const uint8_t *)"gbx1-key-id", 12, p->sign_pk, 32, NULL, 0);
    memcpy(p->key_id, kh, 8);
    /* fingerprint = first 8 bytes of BLAKE2b-256("gbx1-fingerprint\0" || sign ||
       box || curve), hex in groups of four */
    uint8_t all[96], h[32];
    memcpy(all, p->sign_pk, 32);
    memcpy(all + 32, p->box_pk, 32);
    memcpy(all + 64, p->curve_pk, 32);
    s_blake(h, 32, (const uint8_t *)"gbx1-fingerprint", 17, all, 96, NULL, 0);
    snprintf(p->fingerprint, sizeof p->fingerprint, "%02x%02x-%02x%02x-%02x%02x-%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7]);

    if (tu_write_secret(dir, id, p->sign_seed, p->box_sk, p->curve_sk) != 0) {
        fprintf(stderr, "gen-vectors: cannot write %s/%s.secret: %s\n", dir, id, strerror(errno));
        exit(1);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.secret", dir, id);
    s_check(gbx_identity_load(path, &p->ident) == GBX_OK, "load the written .secret");
    const gbx_pubid_t *pub = gbx_identity_public(p->ident);
    s_check(memcmp(pub->sign_pk, p->sign_pk, 32) == 0, "sign_pk");
    s_check(memcmp(pub->box_pk, p->box_pk, 32) == 0, "box_pk");
    s_check(memcmp(pub->curve_pk, p->curve_pk, 32) == 0, "curve_pk");
    s_check(memcmp(gbx_identity_sign_sk(p->ident), p->sign_sk, 64) == 0, "sign_sk");
    uint8_t kid[8];
    gbx_pubid_key_id(pub, kid);
    s_check(memcmp(kid, p->key_id, 8) == 0, "key id");
    char fp[GBX_FINGERPRINT_LEN];
    gbx_pubid_fingerprint(pub, fp);
    s_check(strcmp(fp, p->fingerprint) == 0, "fingerprint");
    char *text = NULL;
    s_check(gbx_pubid_format(pub, &text) == GBX_OK, "format .pub");
    snprintf(path, sizeof path, "%s/%s.pub", dir, id);
    if (tu_write_file(path, text, strlen(text), 0644) != 0) {
        fprintf(stderr, "gen-vectors: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    free(text);
    gbx_pubid_t loaded;
    s_check(gbx_pubid_load(path, &loaded) == GBX_OK, "load the written .pub");

    char name[64];
    s_comment("%s: %s (files %s.secret, %s.pub)", who, id, id, id);
#define S_HEX_(suffix, v, n)                                                                       \
    snprintf(name, sizeof name, "%s." suffix, who);                                                \
    s_hex(name, v, n)
    snprintf(name, sizeof name, "%s.id", who);
    s_text(name, id);
    S_HEX_("sign_seed", p->sign_seed, 32);
    S_HEX_("sign_pk", p->sign_pk, 32);
    S_HEX_("box_sk", p->box_sk, 32);
    S_HEX_("box_pk", p->box_pk, 32);
    S_HEX_("curve_sk", p->curve_sk, 32);
    S_HEX_("curve_pk", p->curve_pk, 32);
    S_HEX_("key_id", p->key_id, 8);
#undef S_HEX_
    snprintf(name, sizeof name, "%s.fingerprint", who);
    s_text(name, p->fingerprint);
    fputc('\n', s_out);
}

/* ----------------------------------------------------------------- header */

static void s_header_fields(const gbx_header_t *h)
{
    s_comment("The header, field by field (bytes hex, enums and numbers decimal, text UTF-8;");
    s_comment("an empty value is an absent field)");
    s_hex("header.message_id", h->message_id.data, h->message_id.len);
    s_hex("header.correlation_id", h->correlation_id.data, h->correlation_id.len);
    s_text("header.from_agency", h->from_agency);
    s_text("header.to_agency", h->to_agency);
    s_text("header.service_code", h->service_code);
    s_num("header.service_version", h->service_version);
    s_comment("kind 1 = REQUEST, data_class 3 = PERSONAL, hk_marking 1 = UNCLASSIFIED");
    s_num("header.kind", (uint64_t)h->kind);
    s_num("header.data_class", (uint64_t)h->data_class);
    s_num("header.hk_marking", (uint64_t)h->hk_marking);
    s_text("header.purpose_code", h->purpose_code);
    s_text("header.case_ref", h->case_ref);
    s_text("header.end_user_ref", h->end_user_ref);
    s_comment("legal_route 1 = GBA_STANDARD_CONTRACT, consent_type 0 = CONSENT_NONE");
    s_num("header.legal_route", (uint64_t)h->legal_route);
    s_text("header.legal_route_ref", h->legal_route_ref);
    s_text("header.consent_ref", h->consent_ref);
    s_num("header.consent_type", (uint64_t)h->consent_type);
    s_num("header.subject_count", h->subject_count);
    s_num("header.created_at_ms", h->created_at_ms);
    s_num("header.expires_at_ms", h->expires_at_ms);
    s_num("header.payload_length", h->payload_length);
    s_hex("header.payload_hash", h->payload_hash.data, h->payload_hash.len);
    s_text("header.impact_assessment_ref", h->impact_assessment_ref);
    s_text("header.release_authority_ref", h->release_authority_ref);
    s_text("header.agreement_ref", h->agreement_ref);
    s_hex("header.signer_key_id", h->signer_key_id.data, h->signer_key_id.len);
}

static uint8_t *s_pack_header(const gbx_header_t *h, size_t *len)
{
    *len = gbx__v1__header__get_packed_size(h);
    uint8_t *buf = malloc(*len);
    gbx__v1__header__pack(h, buf);
    return buf;
}

static uint8_t *s_pack_env(const uint8_t *hdr, size_t hdr_len, const uint8_t sig[64],
                           Gbx__V1__BatchProof *proof, size_t *len)
{
    Gbx__V1__Envelope m = GBX__V1__ENVELOPE__INIT;
    m.version = 1;
    m.suite = 1;
    m.header.data = (uint8_t *)hdr;
    m.header.len = hdr_len;
    m.signature.data = (uint8_t *)sig;
    m.signature.len = 64;
    m.batch = proof;
    *len = gbx__v1__envelope__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    gbx__v1__envelope__pack(&m, buf);
    return buf;
}

static uint8_t *s_lib_pack(const gbx_envelope_t *e, size_t *len)
{
    *len = gbx_envelope_size(e);
    uint8_t *buf = malloc(*len);
    gbx_envelope_pack(e, buf);
    return buf;
}

static uint8_t *s_unhex(const char *hex, size_t *len)
{
    uint8_t *bin = tu_unhex(hex, len);
    s_check(bin != NULL, "hex constant");
    return bin;
}

/*  The content key in SEALED's sealed key (opened with B's box key pair), and
    checks that bytes 104..135 are its commitment BLAKE2b-256("gbx1-key-commit\0"
    || K): the commitment of 2-envelope.md section 4.2, computed here. */
static void s_key_commit(const s_party_t *b, const uint8_t *sealed, size_t sealed_len,
                         uint8_t key[32], uint8_t commit[32], const char *what)
{
    s_check(sealed_len >= GBX_PAYLOAD_PREFIX &&
                crypto_box_seal_open(key, sealed, 80, b->box_pk, b->box_sk) == 0,
            what);
    s_blake(commit, 32, (const uint8_t *)"gbx1-key-commit", 16, key, 32, NULL, 0);
    s_check(memcmp(commit, sealed + 80 + 24, 32) == 0, what);
}

/*  The encrypted payload of proto/spec/vectors.md section 5 (sealing is
    randomized, so this one ciphertext is copied from there; it opens with
    hk.cr's box key and its hash is the header's payload_hash). */
static const char s_spec_sealed[] =
    "085ddbf880b3e35065259cc4f7d64f6f68107a722e4f0f295a4ed1e10d02967b"
    "e1f65afa88ad5cc592d7b276a17a29c7f45337b9b3536cc18b9ce3eea0f713a4"
    "71348bc9b04fe0a595b807491d6be8abb65715f3398e872b7db1c2666c8d6e6e"
    "fef6aa31f248ee28cdfe06d3d697f0e1d68923955d2f3300dfaa4384a4b430b4"
    "4ebf6452560536027611e47234033a2d3c441ce82898e1930334762609f6ee9d"
    "f856a83c804b762a7e3ce015cf55131a8a";
static const char s_spec_plain[] = "{\"company_no\":\"1234567\"}";

static void s_merkle_u8(void)
{
    s_comment("RFC 6962 roots over the one-byte leaves u8(i), i = 0..n-1 (vectors.md section 4)");
    gbx_hash_t ls[8];
    for (int i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)i;
        s_leaf(&b, 1, ls[i]);
    }
    for (size_t n = 1; n <= 8; n++) {
        uint8_t r[32];
        s_mth(ls, n, r);
        gbx_merkle_t *t = NULL;
        s_check(gbx_merkle_build(ls, n, &t) == GBX_OK && memcmp(gbx_merkle_root(t), r, 32) == 0,
                "merkle u8 root");
        gbx_merkle_destroy(&t);
        char name[64];
        snprintf(name, sizeof name, "merkle_u8.%zu.root", n);
        s_hex(name, r, 32);
    }
    static const size_t cases[][2] = {{5, 4}, {7, 2}};
    for (size_t c = 0; c < 2; c++) {
        gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
        size_t len = s_path(ls, cases[c][0], cases[c][1], path);
        char name[64];
        snprintf(name, sizeof name, "merkle_u8.%zu.path.%zu", cases[c][0], cases[c][1]);
        s_hex(name, (const uint8_t *)path, len * 32);
    }
    s_comment("RFC 6962 roots over leaves BLAKE2b-256(0x00 || \"leaf-<i>\"), i = 0..n-1");
    static const size_t sizes[] = {1, 2, 3, 64, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        gbx_hash_t *lv = malloc(n * sizeof *lv);
        for (size_t i = 0; i < n; i++) {
            char data[32];
            int len = snprintf(data, sizeof data, "leaf-%zu", i);
            s_leaf((const uint8_t *)data, (size_t)len, lv[i]);
        }
        uint8_t r[32];
        s_mth(lv, n, r);
        gbx_merkle_t *t = NULL;
        s_check(gbx_merkle_build(lv, n, &t) == GBX_OK && memcmp(gbx_merkle_root(t), r, 32) == 0,
                "merkle root");
        gbx_merkle_destroy(&t);
        char name[64];
        snprintf(name, sizeof name, "merkle.%zu.root", n);
        s_hex(name, r, 32);
        free(lv);
    }
}

static void s_receipt(const s_party_t *node, const uint8_t hdr_hash[32], const uint8_t mid[16])
{
    uint8_t policy_hash[32];
    s_blake(policy_hash, 32, (const uint8_t *)"example policy", 14, NULL, 0, NULL, 0);
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id.data = (uint8_t *)mid;
    r.message_id.len = 16;
    r.header_hash.data = (uint8_t *)hdr_hash;
    r.header_hash.len = 32;
    r.node_id = (char *)node->id;
    r.accepted_at_ms = 1767225600120ull;
    r.sequence = 42;
    r.status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r.rule_id = "gd-out-personal-gba";
    r.policy_hash.data = policy_hash;
    r.policy_hash.len = 32;
    size_t rl = gbx__v1__receipt__get_packed_size(&r);
    uint8_t *msg = malloc(13 + rl), sig[64];
    memcpy(msg, "gbx1-receipt", 13);
    gbx__v1__receipt__pack(&r, msg + 13);
    crypto_sign_detached(sig, NULL, msg, 13 + rl, node->sign_sk);
    Gbx__V1__SignedReceipt sr = GBX__V1__SIGNED_RECEIPT__INIT;
    sr.suite = 1;
    sr.receipt.data = msg + 13;
    sr.receipt.len = rl;
    sr.signature.data = sig;
    sr.signature.len = 64;
    size_t sl = gbx__v1__signed_receipt__get_packed_size(&sr);
    uint8_t *packed = malloc(sl);
    gbx__v1__signed_receipt__pack(&sr, packed);
    uint8_t *lib = NULL;
    size_t lib_len = 0;
    s_check(gbx_receipt_sign(node->ident, &r, &lib, &lib_len) == GBX_OK && lib_len == sl &&
                memcmp(lib, packed, sl) == 0,
            "signed receipt");
    free(lib);

    s_comment("A receipt by n for the envelope above (vectors.md section 6); status 1 = ACCEPTED,");
    s_comment("policy_hash = BLAKE2b-256(\"example policy\")");
    s_hex("receipt.message_id", mid, 16);
    s_hex("receipt.header_hash", hdr_hash, 32);
    s_text("receipt.node_id", node->id);
    s_num("receipt.accepted_at_ms", r.accepted_at_ms);
    s_num("receipt.sequence", r.sequence);
    s_num("receipt.status", (uint64_t)r.status);
    s_text("receipt.rule_id", r.rule_id);
    s_hex("receipt.policy_hash", policy_hash, 32);
    s_hex("receipt.bytes", msg + 13, rl);
    s_comment("\"gbx1-receipt\\0\" || receipt.bytes");
    s_hex("receipt.signed_message", msg, 13 + rl);
    s_hex("receipt.signature", sig, 64);
    s_comment("SignedReceipt{suite 1, receipt.bytes, receipt.signature}");
    s_hex("receipt.signed_receipt", packed, sl);
    fputc('\n', s_out);
    free(packed);
    free(msg);
}

static void s_batch(const s_party_t *a, const gbx_header_t *h, uint8_t bmid_out[3][16],
                    uint8_t hh_out[3][32])
{
    enum { NB = 3 };
    uint8_t bmid[NB][16], *bhdr[NB], bsig[64], root[32], empty_hash[32];
    char case_ref[NB][32];
    size_t bhdr_len[NB], path_len[NB];
    gbx_header_t bh[NB];
    const gbx_header_t *bhp[NB];
    gbx_hash_t leaves[NB], bpath[NB][GBX_MERKLE_MAX_DEPTH];
    s_blake(empty_hash, 32, (const uint8_t *)"", 0, NULL, 0, NULL, 0);
    for (int i = 0; i < NB; i++) {
        memset(bmid[i], 0, 16);
        bmid[i][15] = (uint8_t)(0x10 + i);
        snprintf(case_ref[i], sizeof case_ref[i], "QH-2026-%06d", 124 + i);
        bh[i] = *h;
        bh[i].message_id.data = bmid[i];
        bh[i].case_ref = case_ref[i];
        bh[i].payload_length = 0;
        bh[i].payload_hash.data = empty_hash;
        bhp[i] = &bh[i];
        bhdr[i] = s_pack_header(&bh[i], &bhdr_len[i]);
        s_leaf(bhdr[i], bhdr_len[i], leaves[i]);
        memcpy(bmid_out[i], bmid[i], 16);
        s_blake(hh_out[i], 32, bhdr[i], bhdr_len[i], NULL, 0, NULL, 0);
    }
    s_mth(leaves, NB, root);
    uint8_t bmsg[11 + 4 + 32];
    memcpy(bmsg, "gbx1-batch", 11);
    bmsg[11] = 0;
    bmsg[12] = 0;
    bmsg[13] = 0;
    bmsg[14] = NB;
    memcpy(bmsg + 15, root, 32);
    crypto_sign_detached(bsig, NULL, bmsg, sizeof bmsg, a->sign_sk);
    gbx_envelope_t *benv[NB] = {NULL};
    s_check(gbx_envelope_sign_batch(a->ident, bhp, NB, benv) == GBX_OK, "sign batch");
    s_comment("A batch of %d signed by a (vectors.md section 7): the header above with", NB);
    s_comment("message_id batch.message_id.<i>, case_ref batch.case_ref.<i>, payload_length");
    s_comment("batch.payload_length (0: absent), payload_hash batch.payload_hash = H(empty).");
    s_comment("Leaves BLAKE2b-256(0x00 || batch.header.<i>), RFC 6962 tree, signed message");
    s_comment("\"gbx1-batch\\0\" || be32(batch.size) || batch.root");
    s_num("batch.size", NB);
    s_num("batch.payload_length", 0);
    s_hex("batch.payload_hash", empty_hash, 32);
    for (int i = 0; i < NB; i++) {
        char name[64];
        path_len[i] = s_path(leaves, NB, (size_t)i, bpath[i]);
        Gbx__V1__BatchProof proof = GBX__V1__BATCH_PROOF__INIT;
        proof.leaf_index = (uint32_t)i;
        proof.tree_size = NB;
        proof.path.data = (uint8_t *)bpath[i];
        proof.path.len = path_len[i] * 32;
        proof.root.data = root;
        proof.root.len = 32;
        size_t el = 0, ll = 0;
        uint8_t *e = s_pack_env(bhdr[i], bhdr_len[i], bsig, &proof, &el);
        uint8_t *lib = s_lib_pack(benv[i], &ll);
        s_check(el == ll && memcmp(e, lib, el) == 0, "batch envelope");
        snprintf(name, sizeof name, "batch.message_id.%d", i);
        s_hex(name, bmid[i], 16);
        snprintf(name, sizeof name, "batch.case_ref.%d", i);
        s_text(name, case_ref[i]);
        snprintf(name, sizeof name, "batch.header.%d", i);
        s_hex(name, bhdr[i], bhdr_len[i]);
        snprintf(name, sizeof name, "batch.leaf.%d", i);
        s_hex(name, leaves[i], 32);
        snprintf(name, sizeof name, "batch.path.%d", i);
        s_hex(name, (const uint8_t *)bpath[i], path_len[i] * 32);
        snprintf(name, sizeof name, "batch.envelope.%d", i);
        s_hex(name, e, el);
        free(e);
        free(lib);
        gbx_envelope_destroy(&benv[i]);
        free(bhdr[i]);
    }
    s_hex("batch.root", root, 32);
    s_hex("batch.signed_message", bmsg, sizeof bmsg);
    s_hex("batch.signature", bsig, 64);
    fputc('\n', s_out);
}

/*  The receipts by NODE for the three batch headers, signed as one receipt
    batch (vectors.md section 8): leaves BLAKE2b-256(0x00 || receipt bytes),
    "gbx1-receipt-batch\0" || be32(3) || root. */
static void s_receipt_batch(const s_party_t *node, uint8_t bmid[3][16], uint8_t hh[3][32])
{
    enum { NR = 3 };
    uint8_t policy_hash[32], *rb[NR], root[32], sig[64];
    size_t rl[NR], path_len[NR];
    gbx_hash_t leaves[NR], path[NR][GBX_MERKLE_MAX_DEPTH];
    Gbx__V1__Receipt r[NR];
    const Gbx__V1__Receipt *rp[NR];
    s_blake(policy_hash, 32, (const uint8_t *)"example policy", 14, NULL, 0, NULL, 0);
    for (int i = 0; i < NR; i++) {
        gbx__v1__receipt__init(&r[i]);
        r[i].message_id.data = bmid[i];
        r[i].message_id.len = 16;
        r[i].header_hash.data = hh[i];
        r[i].header_hash.len = 32;
        r[i].node_id = (char *)node->id;
        r[i].accepted_at_ms = 1767225600130ull;
        r[i].sequence = 43u + (uint64_t)i;
        r[i].status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
        r[i].rule_id = "gd-out-personal-gba";
        r[i].policy_hash.data = policy_hash;
        r[i].policy_hash.len = 32;
        rp[i] = &r[i];
        rl[i] = gbx__v1__receipt__get_packed_size(&r[i]);
        rb[i] = malloc(rl[i]);
        gbx__v1__receipt__pack(&r[i], rb[i]);
        s_leaf(rb[i], rl[i], leaves[i]);
    }
    s_mth(leaves, NR, root);
    uint8_t msg[19 + 4 + 32];
    memcpy(msg, "gbx1-receipt-batch", 19);
    msg[19] = 0;
    msg[20] = 0;
    msg[21] = 0;
    msg[22] = NR;
    memcpy(msg + 23, root, 32);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, node->sign_sk);
    uint8_t *lib[NR] = {NULL};
    size_t lib_len[NR] = {0};
    s_check(gbx_receipt_sign_batch(node->ident, rp, NR, lib, lib_len) == GBX_OK,
            "sign receipt batch");
    s_comment("The receipts by n for the %d batch headers above, signed as one receipt batch", NR);
    s_comment("(vectors.md section 8): message_id batch.message_id.<i>, header_hash");
    s_comment("H(batch.header.<i>), sequence receipt_batch.sequence.<i>, accepted_at_ms");
    s_comment("receipt_batch.accepted_at_ms, the other fields those of receipt.*. Leaves");
    s_comment("BLAKE2b-256(0x00 || receipt_batch.receipt.<i>), RFC 6962 tree, signed message");
    s_comment("\"gbx1-receipt-batch\\0\" || be32(receipt_batch.size) || receipt_batch.root");
    s_num("receipt_batch.size", NR);
    s_num("receipt_batch.accepted_at_ms", r[0].accepted_at_ms);
    for (int i = 0; i < NR; i++) {
        char name[64];
        path_len[i] = s_path(leaves, NR, (size_t)i, path[i]);
        Gbx__V1__BatchProof proof = GBX__V1__BATCH_PROOF__INIT;
        proof.leaf_index = (uint32_t)i;
        proof.tree_size = NR;
        proof.path.data = (uint8_t *)path[i];
        proof.path.len = path_len[i] * 32;
        proof.root.data = root;
        proof.root.len = 32;
        Gbx__V1__SignedReceipt sr = GBX__V1__SIGNED_RECEIPT__INIT;
        sr.suite = 1;
        sr.receipt.data = rb[i];
        sr.receipt.len = rl[i];
        sr.signature.data = sig;
        sr.signature.len = 64;
        sr.batch = &proof;
        size_t sl = gbx__v1__signed_receipt__get_packed_size(&sr);
        uint8_t *packed = malloc(sl);
        gbx__v1__signed_receipt__pack(&sr, packed);
        s_check(lib_len[i] == sl && memcmp(lib[i], packed, sl) == 0, "batch signed receipt");
        Gbx__V1__SignedReceipt *back = gbx__v1__signed_receipt__unpack(NULL, sl, packed);
        s_check(back && gbx_receipt_verify(back, gbx_identity_public(node->ident), NULL) == GBX_OK,
                "batch signed receipt verifies");
        gbx__v1__signed_receipt__free_unpacked(back, NULL);
        snprintf(name, sizeof name, "receipt_batch.sequence.%d", i);
        s_num(name, r[i].sequence);
        snprintf(name, sizeof name, "receipt_batch.receipt.%d", i);
        s_hex(name, rb[i], rl[i]);
        snprintf(name, sizeof name, "receipt_batch.leaf.%d", i);
        s_hex(name, leaves[i], 32);
        snprintf(name, sizeof name, "receipt_batch.path.%d", i);
        s_hex(name, (const uint8_t *)path[i], path_len[i] * 32);
        snprintf(name, sizeof name, "receipt_batch.signed_receipt.%d", i);
        s_hex(name, packed, sl);
        free(packed);
        free(lib[i]);
        free(rb[i]);
    }
    s_hex("receipt_batch.root", root, 32);
    s_hex("receipt_batch.signed_message", msg, sizeof msg);
    s_hex("receipt_batch.signature", sig, 64);
    fputc('\n', s_out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen-vectors OUTDIR\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    const char *dir = argv[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/gbx1-vectors.txt", dir);
    s_out = fopen(path, "w");
    if (!s_out) {
        fprintf(stderr, "gen-vectors: %s: %s\n", path, strerror(errno));
        return 1;
    }
    s_comment("gbx suite GBX1 known-answer vectors, written by tests/vectors/gen-vectors.c.");
    s_comment("Format: 'name = value' lines; bytes as lower-case hex, numbers in decimal,");
    s_comment("text as UTF-8 up to the end of the line. See tests/vectors/README.md.");
    s_comment("Test keys with deliberately weak (repeated-byte) secrets: never use them.");
    fputc('\n', s_out);

    s_party_t a, b, n;
    s_party(dir, "a", "gd.qh-amr", 0x01, &a);
    s_party(dir, "b", "hk.cr", 0x11, &b);
    s_party(dir, "n", "gd-node-1", 0x21, &n);

    /* The single envelope of vectors.md section 5, with its stored payload. */
    static const uint8_t mid[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    gbx_binding_t bind = {mid, a.id, b.id};
    size_t sealed_len = 0;
    uint8_t *sealed = s_unhex(s_spec_sealed, &sealed_len), phash[32];
    size_t plain_len = strlen(s_spec_plain);
    s_check(sealed_len == 80 + 24 + 32 + plain_len + 17 && GBX_PAYLOAD_PREFIX == 136,
            "stored payload size");
    uint8_t ckey[32], commit[32], scratch[32];
    s_key_commit(&b, sealed, sealed_len, ckey, commit, "stored payload key commitment");
    s_blake(phash, 32, sealed, sealed_len, NULL, 0, NULL, 0);
    uint8_t *opened = NULL;
    size_t opened_len = 0;
    s_check(gbx_payload_open(b.ident, &bind, sealed, sealed_len, plain_len, phash, &opened,
                             &opened_len) == GBX_OK &&
                opened_len == plain_len && memcmp(opened, s_spec_plain, plain_len) == 0,
            "open the stored payload");
    free(opened);

    gbx_header_t h;
    gbx_header_init(&h);
    h.message_id.data = (uint8_t *)mid;
    h.message_id.len = 16;
    h.from_agency = (char *)a.id;
    h.to_agency = (char *)b.id;
    h.service_code = "HK-CR-COEXTRACT";
    h.service_version = 1;
    h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h.data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h.hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h.purpose_code = "company-check";
    h.case_ref = "QH-2026-000123";
    h.legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h.legal_route_ref = "GBA-SC-2024-0001";
    h.subject_count = 1;
    h.created_at_ms = 1767225600000ull; /* 2026-01-01T00:00:00Z */
    h.expires_at_ms = 1767225900000ull;
    h.payload_length = plain_len;
    h.payload_hash.data = phash;
    h.payload_hash.len = 32;
    h.signer_key_id.data = a.key_id;
    h.signer_key_id.len = 8;
    s_check(gbx_header_check(&h, NULL) == GBX_OK, "header valid");

    size_t hdr_len = 0;
    uint8_t *hdr = s_pack_header(&h, &hdr_len);
    uint8_t *signed_msg = malloc(12 + hdr_len), sig[64], hdr_hash[32];
    memcpy(signed_msg, "gbx1-header", 12);
    memcpy(signed_msg + 12, hdr, hdr_len);
    crypto_sign_detached(sig, NULL, signed_msg, 12 + hdr_len, a.sign_sk);
    s_blake(hdr_hash, 32, hdr, hdr_len, NULL, 0, NULL, 0);
    size_t env_len = 0;
    uint8_t *env = s_pack_env(hdr, hdr_len, sig, NULL, &env_len);
    {
        gbx_envelope_t *e = NULL;
        s_check(gbx_envelope_sign(a.ident, &h, &e) == GBX_OK, "sign");
        size_t len = 0;
        uint8_t *lib = s_lib_pack(e, &len);
        s_check(len == env_len && memcmp(lib, env, len) == 0, "packed envelope");
        uint8_t hh[32];
        gbx_envelope_header_hash(e, hh);
        s_check(memcmp(hh, hdr_hash, 32) == 0, "header hash");
        free(lib);
        gbx_envelope_destroy(&e);
        s_check(gbx_envelope_decode(env, env_len, &e) == GBX_OK &&
                    gbx_envelope_verify(e, gbx_identity_public(a.ident), NULL) == GBX_OK &&
                    gbx_envelope_check_payload(e, sealed, sealed_len) == GBX_OK,
                "decode, verify, check payload");
        gbx_envelope_destroy(&e);
    }
    s_comment("A request from a to b (vectors.md section 5), signed by a");
    s_header_fields(&h);
    s_comment("The header serialized in field-number order; these exact bytes are signed");
    s_hex("header.bytes", hdr, hdr_len);
    s_comment("BLAKE2b-256(header.bytes)");
    s_hex("header.hash", hdr_hash, 32);
    s_comment("\"gbx1-header\\0\" || header.bytes");
    s_hex("header.signed_message", signed_msg, 12 + hdr_len);
    s_comment("Ed25519 (deterministic) by a.sign_seed over header.signed_message");
    s_hex("header.signature", sig, 64);
    s_comment("Envelope{version 1, suite 1, header.bytes, header.signature}");
    s_hex("envelope.bytes", env, env_len);
    fputc('\n', s_out);

    s_comment("The payload of the header: payload.plain sealed to b.box_pk, bound to");
    s_comment("(header.message_id, header.from_agency, header.to_agency); opens with b's keys");
    s_hex("payload.plain", (const uint8_t *)s_spec_plain, plain_len);
    s_hex("payload.sealed", sealed, sealed_len);
    s_comment("BLAKE2b-256(payload.sealed) = header.payload_hash");
    s_hex("payload.hash", phash, 32);
    s_comment("The content key K in the sealed key (bytes 0..79) and its commitment");
    s_comment("BLAKE2b-256(\"gbx1-key-commit\\0\" || K) = bytes 104..135 of payload.sealed");
    s_hex("payload.key", ckey, 32);
    s_hex("payload.commit", commit, 32);
    sodium_memzero(ckey, sizeof ckey);

    /* 1 KiB and empty payloads, same binding, freshly sealed (randomized). */
    uint8_t plain1k[1024];
    for (size_t i = 0; i < sizeof plain1k; i++)
        plain1k[i] = (uint8_t)(i * 31 + 7);
    uint8_t *sealed1k = NULL, hash1k[32], *sealed0 = NULL, hash0[32], ref[32];
    size_t sealed1k_len = 0, sealed0_len = 0;
    s_check(gbx_payload_seal(b.box_pk, &bind, plain1k, sizeof plain1k, &sealed1k, &sealed1k_len,
                             hash1k) == GBX_OK,
            "seal 1 KiB");
    s_blake(ref, 32, sealed1k, sealed1k_len, NULL, 0, NULL, 0);
    s_check(memcmp(ref, hash1k, 32) == 0 && sealed1k_len == 136 + 1024 + 17, "1 KiB hash");
    s_key_commit(&b, sealed1k, sealed1k_len, scratch, commit, "1 KiB key commitment");
    s_check(gbx_payload_open(b.ident, &bind, sealed1k, sealed1k_len, sizeof plain1k, hash1k,
                             &opened, &opened_len) == GBX_OK &&
                opened_len == sizeof plain1k && memcmp(opened, plain1k, sizeof plain1k) == 0,
            "open 1 KiB");
    free(opened);
    s_check(gbx_payload_seal(b.box_pk, &bind, NULL, 0, &sealed0, &sealed0_len, hash0) == GBX_OK &&
                sealed0_len == 136 + 17,
            "seal empty");
    s_blake(ref, 32, sealed0, sealed0_len, NULL, 0, NULL, 0);
    s_check(memcmp(ref, hash0, 32) == 0, "empty hash");
    s_key_commit(&b, sealed0, sealed0_len, scratch, commit, "empty key commitment");
    s_check(gbx_payload_open(b.ident, &bind, sealed0, sealed0_len, 0, hash0, &opened,
                             &opened_len) == GBX_OK &&
                opened_len == 0,
            "open empty");
    free(opened);
    s_comment("Two more payloads with the same binding, not named by any header: 1 KiB");
    s_comment("(byte i = (31 i + 7) mod 256) and empty. Sealed by gen-vectors (randomized).");
    s_hex("payload1k.plain", plain1k, sizeof plain1k);
    s_hex("payload1k.sealed", sealed1k, sealed1k_len);
    s_hex("payload1k.hash", hash1k, 32);
    s_hex("payload0.sealed", sealed0, sealed0_len);
    s_hex("payload0.hash", hash0, 32);
    fputc('\n', s_out);

    s_receipt(&n, hdr_hash, mid);
    uint8_t bmid[3][16], bhh[3][32];
    s_batch(&a, &h, bmid, bhh);
    s_receipt_batch(&n, bmid, bhh);
    s_merkle_u8();

    free(signed_msg);
    free(hdr);
    free(env);
    free(sealed);
    free(sealed1k);
    free(sealed0);
    gbx_identity_destroy(&a.ident);
    gbx_identity_destroy(&b.ident);
    gbx_identity_destroy(&n.ident);
    if (fclose(s_out) != 0) {
        fprintf(stderr, "gen-vectors: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("gen-vectors: wrote %s and the key files of gd.qh-amr, hk.cr, gd-node-1\n", path);
    return 0;
}
