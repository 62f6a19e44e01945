/*  envelope.c: owns envelopes: header checks, signing (single and batch),
    decoding untrusted bytes, verification.
    Implements proto/spec/2-envelope.md sections 1, 2, 5, 6 and 8. */
#include "gbx/envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char s_ctx_header[] = "gbx1-header"; /* signed with its NUL */
static const char s_ctx_batch[] = "gbx1-batch";
#define S_CTX_HEADER_LEN sizeof s_ctx_header
#define S_CTX_BATCH_LEN  sizeof s_ctx_batch
#define S_BATCH_MSG_LEN  (S_CTX_BATCH_LEN + 4 + GBX_MERKLE_HASH)

struct gbx_envelope {
    Gbx__V1__Envelope *msg; /* as unpacked by protobuf-c */
    gbx_header_t *header;   /* msg->header.data, unpacked */
};

/* ----------------------------------------------------------- header fields */

void gbx_header_init(gbx_header_t *h)
{
    gbx__v1__header__init(h);
}

void gbx_message_id_new(uint8_t out[GBX_MSG_ID_BYTES])
{
    randombytes_buf(out, GBX_MSG_ID_BYTES);
}

static int s_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int s_text_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n <= GBX_FIELD_MAX && s_utf8_valid((const unsigned char *)(s ? s : ""), n);
}

static int s_service_code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/*  Header string fields by number: protobuf-c hands them over NUL-terminated,
    so an embedded U+0000 must be caught on the wire (s_scan) and reported at
    the field's place in the check order. */
#define S_BIT(n) (1u << (n))
#define S_HEADER_STRINGS                                                                           \
    (S_BIT(3) | S_BIT(4) | S_BIT(5) | S_BIT(10) | S_BIT(11) | S_BIT(12) | S_BIT(14) | S_BIT(15) |  \
     S_BIT(22) | S_BIT(23) | S_BIT(24))

/*  Checks H in field-number order (spec 2-envelope.md section 2); NUL_MASK
    has a bit set for each string field that held a NUL byte on the wire. */
static gbx_err_t s_header_check(const gbx_header_t *h, uint32_t nul_mask, const char **why)
{
#define S_TEXT(n, f) ((nul_mask & S_BIT(n)) == 0 && s_text_ok(h->f))
    const char *bad = NULL;
    if (h->message_id.len != GBX_MSG_ID_BYTES)
        bad = "message_id";
    else if (h->correlation_id.len != 0 && h->correlation_id.len != GBX_MSG_ID_BYTES)
        bad = "correlation_id";
    else if (h->kind == GBX__V1__MESSAGE_KIND__RESPONSE && h->correlation_id.len == 0)
        bad = "correlation_id";
    else if ((nul_mask & S_BIT(3)) || !gbx_id_valid(h->from_agency))
        bad = "from_agency";
    else if ((nul_mask & S_BIT(4)) || !gbx_id_valid(h->to_agency))
        bad = "to_agency";
    else if ((nul_mask & S_BIT(5)) || !s_service_code_ok(h->service_code))
        bad = "service_code";
    else if (h->service_version < 1)
        bad = "service_version";
    else if (h->kind < GBX__V1__MESSAGE_KIND__REQUEST || h->kind > GBX__V1__MESSAGE_KIND__VERIFY)
        bad = "kind";
    else if (h->data_class < GBX__V1__DATA_CLASS__PUBLIC ||
             h->data_class > GBX__V1__DATA_CLASS__CORE)
        bad = "data_class";
    else if (h->hk_marking < GBX__V1__HK_MARKING__UNCLASSIFIED ||
             h->hk_marking > GBX__V1__HK_MARKING__TOP_SECRET)
        bad = "hk_marking";
    else if (!S_TEXT(10, purpose_code))
        bad = "purpose_code";
    else if (!S_TEXT(11, case_ref))
        bad = "case_ref";
    else if (!S_TEXT(12, end_user_ref))
        bad = "end_user_ref";
    else if (h->legal_route < GBX__V1__LEGAL_ROUTE__LEGAL_ROUTE_NONE ||
             h->legal_route > GBX__V1__LEGAL_ROUTE__MODEL_CLAUSES)
        bad = "legal_route";
    else if (!S_TEXT(14, legal_route_ref))
        bad = "legal_route_ref";
    else if (!S_TEXT(15, consent_ref))
        bad = "consent_ref";
    else if (h->consent_type < GBX__V1__CONSENT_TYPE__CONSENT_NONE ||
             h->consent_type > GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT)
        bad = "consent_type";
    else if (h->created_at_ms == 0)
        bad = "created_at_ms";
    else if (h->expires_at_ms <= h->created_at_ms)
        bad = "expires_at_ms";
    else if (h->payload_length > GBX_PAYLOAD_MAX)
        bad = "payload_length";
    else if (h->payload_hash.len != GBX_HASH_BYTES)
        bad = "payload_hash";
    else if (!S_TEXT(22, impact_assessment_ref))
        bad = "impact_assessment_ref";
    else if (!S_TEXT(23, release_authority_ref))
        bad = "release_authority_ref";
    else if (!S_TEXT(24, agreement_ref))
        bad = "agreement_ref";
    else if (h->signer_key_id.len != 0 && h->signer_key_id.len != GBX_KEY_ID_BYTES)
        bad = "signer_key_id";
#undef S_TEXT
    if (why)
        *why = bad;
    return bad ? GBX_E_FIELD_INVALID : GBX_OK;
}

gbx_err_t gbx_header_check(const gbx_header_t *h, const char **why)
{
    return s_header_check(h, 0, why);
}

/* ------------------------------------------------------ untrusted bytes */

/*  Walks the top-level fields of a protobuf message without trusting it, so
    that input cut short is told apart from garbage. With NUL_MASK, sets it to
    the length-delimited fields (numbers below 32) that hold a NUL byte. */
static gbx_err_t s_scan(const uint8_t *p, size_t len, uint32_t *nul_mask)
{
    if (nul_mask)
        *nul_mask = 0;
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0, v = 0;
        int shift = 0;
        do { /* key varint */
            if (i >= len)
                return GBX_E_TRUNCATED;
            if (shift > 63)
                return GBX_E_MALFORMED;
            key |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } while (p[i++] & 0x80);
        if ((key >> 3) == 0)
            return GBX_E_MALFORMED;
        switch (key & 7) {
        case 0: /* varint */
            shift = 0;
            do {
                if (i >= len)
                    return GBX_E_TRUNCATED;
                if (shift > 63)
                    return GBX_E_MALFORMED;
                shift += 7;
            } while (p[i++] & 0x80);
            break;
        case 1: /* 64-bit */
            if (len - i < 8)
                return GBX_E_TRUNCATED;
            i += 8;
            break;
        case 5: /* 32-bit */
            if (len - i < 4)
                return GBX_E_TRUNCATED;
            i += 4;
            break;
        case 2: /* length-delimited */
            shift = 0;
            do {
                if (i >= len)
                    return GBX_E_TRUNCATED;
                if (shift > 63)
                    return GBX_E_MALFORMED;
                v |= (uint64_t)(p[i] & 0x7f) << shift;
                shift += 7;
            } while (p[i++] & 0x80);
            if (v > len - i)
                return GBX_E_TRUNCATED;
            if (nul_mask && (key >> 3) < 32 && memchr(p + i, 0, (size_t)v))
                *nul_mask |= S_BIT(key >> 3);
            i += (size_t)v;
            break;
        default: /* groups (3, 4) are not used by gbx; 6, 7 do not exist */
            return GBX_E_MALFORMED;
        }
    }
    return GBX_OK;
}

gbx_err_t gbx_batch_proof_check(const Gbx__V1__BatchProof *b)
{
    if (b->tree_size < 1 || b->tree_size > GBX_BATCH_MAX || b->leaf_index >= b->tree_size ||
        b->path.len % GBX_MERKLE_HASH != 0 || b->path.len / GBX_MERKLE_HASH > 16 ||
        b->root.len != GBX_MERKLE_HASH)
        return GBX_E_BAD_INCLUSION_PATH;
    return GBX_OK;
}

gbx_err_t gbx_envelope_decode(const uint8_t *buf, size_t len, gbx_envelope_t **out)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (!buf || len == 0)
        return GBX_E_TRUNCATED;
    if (len > GBX_ENVELOPE_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    gbx_err_t rc = s_scan(buf, len, NULL);
    if (rc != GBX_OK)
        return rc;
    gbx_envelope_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    rc = GBX_E_MALFORMED;
    self->msg = gbx__v1__envelope__unpack(NULL, len, buf);
    if (!self->msg)
        goto fail;
    const Gbx__V1__Envelope *m = self->msg;
    rc = GBX_E_UNSUPPORTED_VERSION;
    if (m->version != GBX_ENVELOPE_VERSION)
        goto fail;
    rc = GBX_E_UNKNOWN_SUITE;
    if (m->suite != GBX_SUITE_GBX1)
        goto fail;
    rc = GBX_E_MALFORMED;
    if (m->header.len == 0)
        goto fail;
    rc = GBX_E_HEADER_TOO_LARGE;
    if (m->header.len > GBX_HEADER_MAX)
        goto fail;
    rc = GBX_E_BAD_SIGNATURE;
    if (m->signature.len != GBX_SIG_BYTES)
        goto fail;
    uint32_t nul_mask = 0;
    if ((rc = s_scan(m->header.data, m->header.len, &nul_mask)) != GBX_OK)
        goto fail;
    rc = GBX_E_MALFORMED;
    self->header = gbx__v1__header__unpack(NULL, m->header.len, m->header.data);
    if (!self->header)
        goto fail;
    if ((rc = s_header_check(self->header, nul_mask & S_HEADER_STRINGS, NULL)) != GBX_OK)
        goto fail;
    if (m->batch && (rc = gbx_batch_proof_check(m->batch)) != GBX_OK)
        goto fail;
    *out = self;
    return GBX_OK;
fail:
    gbx_envelope_destroy(&self);
    return rc;
}

void gbx_envelope_destroy(gbx_envelope_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_envelope_t *self = *self_p;
    if (self->header)
        gbx__v1__header__free_unpacked(self->header, NULL);
    if (self->msg)
        gbx__v1__envelope__free_unpacked(self->msg, NULL);
    free(self);
    *self_p = NULL;
}

size_t gbx_envelope_size(const gbx_envelope_t *self)
{
    return gbx__v1__envelope__get_packed_size(self->msg);
}

size_t gbx_envelope_pack(const gbx_envelope_t *self, uint8_t *buf)
{
    return gbx__v1__envelope__pack(self->msg, buf);
}

const Gbx__V1__Envelope *gbx_envelope_message(const gbx_envelope_t *self)
{
    return self->msg;
}

const gbx_header_t *gbx_envelope_header(const gbx_envelope_t *self)
{
    return self->header;
}

const uint8_t *gbx_envelope_header_bytes(const gbx_envelope_t *self, size_t *len)
{
    *len = self->msg->header.len;
    return self->msg->header.data;
}

void gbx_envelope_header_hash(const gbx_envelope_t *self, uint8_t out[GBX_HASH_BYTES])
{
    crypto_generichash(out, GBX_HASH_BYTES, self->msg->header.data, self->msg->header.len, NULL, 0);
}

int gbx_envelope_is_batch(const gbx_envelope_t *self)
{
    return self->msg->batch != NULL;
}

void gbx_envelope_binding(const gbx_envelope_t *self, gbx_binding_t *out)
{
    out->message_id = self->header->message_id.data;
    out->from_agency = self->header->from_agency;
    out->to_agency = self->header->to_agency;
}

gbx_err_t gbx_envelope_check_payload(const gbx_envelope_t *self, const uint8_t *sealed, size_t len)
{
    if (len != gbx_payload_sealed_size(self->header->payload_length))
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    uint8_t h[GBX_HASH_BYTES];
    gbx_payload_hash(sealed, len, h);
    if (sodium_memcmp(h, self->header->payload_hash.data, GBX_HASH_BYTES) != 0)
        return GBX_E_PAYLOAD_HASH_MISMATCH;
    return GBX_OK;
}

/* ----------------------------------------------------------------- signing */

/*  Serializes H (with SIGNER's key id filled in when empty) after checking
    it. *out is malloc'ed with ROOM spare bytes in front. */
static gbx_err_t s_pack_header(const gbx_identity_t *signer, const gbx_header_t *h, size_t room,
                               uint8_t **out, size_t *len)
{
    gbx_header_t copy = *h;
    uint8_t key_id[GBX_KEY_ID_BYTES];
    if (copy.signer_key_id.len == 0) {
        gbx_pubid_key_id(gbx_identity_public(signer), key_id);
        copy.signer_key_id.data = key_id;
        copy.signer_key_id.len = sizeof key_id;
    }
    gbx_err_t rc = gbx_header_check(&copy, NULL);
    if (rc != GBX_OK)
        return rc;
    /* Only the sender signs: a header from someone else would never verify. */
    if (strcmp(copy.from_agency, gbx_identity_public(signer)->id) != 0)
        return GBX_E_ARG;
    size_t n = gbx__v1__header__get_packed_size(&copy);
    if (n > GBX_HEADER_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    uint8_t *buf = malloc(room + n);
    if (!buf)
        return GBX_E_NOMEM;
    gbx__v1__header__pack(&copy, buf + room);
    *out = buf;
    *len = n;
    return GBX_OK;
}

/*  Packs an envelope from its parts and decodes it again, so that what we
    hand out is exactly what a receiver will see. */
static gbx_err_t s_assemble(const uint8_t *hdr, size_t hdr_len, const uint8_t sig[GBX_SIG_BYTES],
                            const Gbx__V1__BatchProof *proof, gbx_envelope_t **out)
{
    Gbx__V1__Envelope m = GBX__V1__ENVELOPE__INIT;
    m.version = GBX_ENVELOPE_VERSION;
    m.suite = GBX_SUITE_GBX1;
    m.header.data = (uint8_t *)hdr;
    m.header.len = hdr_len;
    m.signature.data = (uint8_t *)sig;
    m.signature.len = GBX_SIG_BYTES;
    m.batch = (Gbx__V1__BatchProof *)proof;
    size_t n = gbx__v1__envelope__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    if (!buf)
        return GBX_E_NOMEM;
    gbx__v1__envelope__pack(&m, buf);
    gbx_err_t rc = gbx_envelope_decode(buf, n, out);
    free(buf);
    return rc;
}

gbx_err_t gbx_envelope_sign(const gbx_identity_t *signer, const gbx_header_t *h,
                            gbx_envelope_t **out)
{
    if (!signer || !h || !out)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    gbx_err_t rc = s_pack_header(signer, h, S_CTX_HEADER_LEN, &buf, &len);
    if (rc != GBX_OK)
        return rc;
    memcpy(buf, s_ctx_header, S_CTX_HEADER_LEN);
    uint8_t sig[GBX_SIG_BYTES];
    crypto_sign_detached(sig, NULL, buf, S_CTX_HEADER_LEN + len, gbx_identity_sign_sk(signer));
    rc = s_assemble(buf + S_CTX_HEADER_LEN, len, sig, NULL, out);
    free(buf);
    return rc;
}

static int s_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, GBX_MSG_ID_BYTES);
}

/*  A batch must not carry one message id twice (spec section 6). */
static gbx_err_t s_ids_distinct(const gbx_header_t *const *hs, size_t n)
{
    uint8_t(*ids)[GBX_MSG_ID_BYTES] = malloc(n * GBX_MSG_ID_BYTES);
    if (!ids)
        return GBX_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        memcpy(ids[i], hs[i]->message_id.data, GBX_MSG_ID_BYTES);
    qsort(ids, n, GBX_MSG_ID_BYTES, s_cmp_id);
    gbx_err_t rc = GBX_OK;
    for (size_t i = 1; i < n && rc == GBX_OK; i++)
        if (memcmp(ids[i - 1], ids[i], GBX_MSG_ID_BYTES) == 0)
            rc = GBX_E_ARG;
    free(ids);
    return rc;
}

static void s_batch_message(uint32_t tree_size, const uint8_t root[GBX_MERKLE_HASH],
                            uint8_t msg[S_BATCH_MSG_LEN])
{
    memcpy(msg, s_ctx_batch, S_CTX_BATCH_LEN);
    msg[S_CTX_BATCH_LEN + 0] = (uint8_t)(tree_size >> 24);
    msg[S_CTX_BATCH_LEN + 1] = (uint8_t)(tree_size >> 16);
    msg[S_CTX_BATCH_LEN + 2] = (uint8_t)(tree_size >> 8);
    msg[S_CTX_BATCH_LEN + 3] = (uint8_t)tree_size;
    memcpy(msg + S_CTX_BATCH_LEN + 4, root, GBX_MERKLE_HASH);
}

gbx_err_t gbx_envelope_sign_batch(const gbx_identity_t *signer, const gbx_header_t *const *hs,
                                  size_t n, gbx_envelope_t **out)
{
    if (!signer || !hs || !out || n == 0 || n > GBX_BATCH_MAX)
        return GBX_E_ARG;
    gbx_err_t rc = GBX_E_NOMEM;
    size_t done = 0;
    gbx_merkle_t *tree = NULL;
    uint8_t **bufs = calloc(n, sizeof *bufs);
    size_t *lens = calloc(n, sizeof *lens);
    gbx_hash_t *leaves = malloc(n * sizeof *leaves);
    if (!bufs || !lens || !leaves)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((rc = s_pack_header(signer, hs[i], 0, &bufs[i], &lens[i])) != GBX_OK)
            goto out;
        gbx_merkle_leaf(bufs[i], lens[i], leaves[i]);
    }
    if ((rc = s_ids_distinct(hs, n)) != GBX_OK)
        goto out;
    if ((rc = gbx_merkle_build(leaves, n, &tree)) != GBX_OK)
        goto out;
    uint8_t msg[S_BATCH_MSG_LEN], sig[GBX_SIG_BYTES];
    s_batch_message((uint32_t)n, gbx_merkle_root(tree), msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, gbx_identity_sign_sk(signer));
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    for (; done < n; done++) {
        size_t path_len = 0;
        gbx_merkle_path(tree, done, path, &path_len);
        Gbx__V1__BatchProof proof = GBX__V1__BATCH_PROOF__INIT;
        proof.leaf_index = (uint32_t)done;
        proof.tree_size = (uint32_t)n;
        proof.path.data = (uint8_t *)path;
        proof.path.len = path_len * GBX_MERKLE_HASH;
        proof.root.data = (uint8_t *)gbx_merkle_root(tree);
        proof.root.len = GBX_MERKLE_HASH;
        if ((rc = s_assemble(bufs[done], lens[done], sig, &proof, &out[done])) != GBX_OK)
            goto out;
    }
    rc = GBX_OK;
out:
    if (rc != GBX_OK)
        for (size_t i = 0; i < done; i++)
            gbx_envelope_destroy(&out[i]);
    for (size_t i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(lens);
    free(leaves);
    gbx_merkle_destroy(&tree);
    return rc;
}

/* ------------------------------------------------------------ verification */

typedef struct {
    uint8_t key[GBX_HASH_BYTES];
    int used;
} s_slot_t;

struct gbx_vcache {
    uint8_t key[crypto_generichash_KEYBYTES]; /* random: slots cannot be aimed at */
    size_t slots;
    s_slot_t *slot;
    uint64_t verified;
    uint64_t hits;
};

gbx_err_t gbx_vcache_new(size_t slots, gbx_vcache_t **out)
{
    if (slots == 0 || slots > (1u << 20))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_vcache_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->slot = calloc(slots, sizeof *self->slot);
    if (!self->slot) {
        free(self);
        return GBX_E_NOMEM;
    }
    self->slots = slots;
    randombytes_buf(self->key, sizeof self->key);
    *out = self;
    return GBX_OK;
}

void gbx_vcache_destroy(gbx_vcache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slot);
    free(*self_p);
    *self_p = NULL;
}

void gbx_vcache_stats(const gbx_vcache_t *self, uint64_t *verified, uint64_t *hits)
{
    *verified = self->verified;
    *hits = self->hits;
}

gbx_err_t gbx_vcache_verify(gbx_vcache_t *cache, const uint8_t *pk, const uint8_t *msg, size_t len,
                            const uint8_t *sig)
{
    uint8_t key[GBX_HASH_BYTES];
    s_slot_t *slot = NULL;
    if (cache) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, cache->key, sizeof cache->key, sizeof key);
        crypto_generichash_update(&st, pk, GBX_KEY_BYTES);
        crypto_generichash_update(&st, sig, GBX_SIG_BYTES);
        crypto_generichash_update(&st, msg, len);
        crypto_generichash_final(&st, key, sizeof key);
        uint64_t idx;
        memcpy(&idx, key, sizeof idx);
        slot = &cache->slot[idx % cache->slots];
        if (slot->used && memcmp(slot->key, key, sizeof key) == 0) {
            cache->hits++;
            return GBX_OK;
        }
    }
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return GBX_E_BAD_SIGNATURE;
    if (cache) {
        cache->verified++;
        memcpy(slot->key, key, sizeof key);
        slot->used = 1;
    }
    return GBX_OK;
}

gbx_err_t gbx_envelope_verify(const gbx_envelope_t *self, const gbx_pubid_t *signer,
                              gbx_vcache_t *cache)
{
    if (!self || !signer)
        return GBX_E_ARG;
    const gbx_header_t *h = self->header;
    const Gbx__V1__Envelope *m = self->msg;
    if (strcmp(h->from_agency, signer->id) != 0)
        return GBX_E_WRONG_KEY;
    uint8_t want[GBX_KEY_ID_BYTES];
    gbx_pubid_key_id(signer, want);
    if (h->signer_key_id.len != GBX_KEY_ID_BYTES ||
        memcmp(want, h->signer_key_id.data, sizeof want) != 0)
        return GBX_E_WRONG_KEY;
    if (!m->batch) {
        size_t len = S_CTX_HEADER_LEN + m->header.len;
        uint8_t *buf = malloc(len);
        if (!buf)
            return GBX_E_NOMEM;
        memcpy(buf, s_ctx_header, S_CTX_HEADER_LEN);
        memcpy(buf + S_CTX_HEADER_LEN, m->header.data, m->header.len);
        gbx_err_t rc = gbx_vcache_verify(NULL, signer->sign_pk, buf, len, m->signature.data);
        free(buf);
        return rc;
    }
    const Gbx__V1__BatchProof *b = m->batch; /* shape checked by decode */
    gbx_err_t rc = gbx_batch_proof_verify(b, m->header.data, m->header.len);
    if (rc != GBX_OK)
        return rc;
    uint8_t msg[S_BATCH_MSG_LEN];
    s_batch_message(b->tree_size, b->root.data, msg); /* = the computed root */
    return gbx_vcache_verify(cache, signer->sign_pk, msg, sizeof msg, m->signature.data);
}

gbx_err_t gbx_batch_proof_verify(const Gbx__V1__BatchProof *b, const uint8_t *data, size_t len)
{
    if (b->root.len != GBX_MERKLE_HASH || b->path.len % GBX_MERKLE_HASH != 0)
        return GBX_E_BAD_INCLUSION_PATH; /* the caller skipped the shape check */
    gbx_hash_t leaf, root;
    gbx_merkle_leaf(data, len, leaf);
    gbx_err_t rc = gbx_merkle_root_from_path(leaf, b->leaf_index, b->tree_size,
                                             (const gbx_hash_t *)b->path.data,
                                             b->path.len / GBX_MERKLE_HASH, root);
    if (rc != GBX_OK)
        return rc;
    if (sodium_memcmp(root, b->root.data, GBX_MERKLE_HASH) != 0)
        return GBX_E_BAD_INCLUSION_PATH;
    return GBX_OK;
}
