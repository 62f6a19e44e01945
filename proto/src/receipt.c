/*  receipt.c: owns the broker's signed receipts.
    Implements proto/spec/2-envelope.md section 7. */
#include "gbx/receipt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char s_ctx[] = "gbx1-receipt"; /* signed with its NUL */

gbx_err_t gbx_receipt_sign(const gbx_identity_t *node, const Gbx__V1__Receipt *r, uint8_t **out,
                           size_t *out_len)
{
    if (!node || !r || !out || !out_len)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    size_t n = gbx__v1__receipt__get_packed_size(r);
    uint8_t *buf = malloc(sizeof s_ctx + n);
    if (!buf)
        return GBX_E_NOMEM;
    memcpy(buf, s_ctx, sizeof s_ctx);
    gbx__v1__receipt__pack(r, buf + sizeof s_ctx);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, buf, sizeof s_ctx + n, gbx_identity_sign_sk(node));
    Gbx__V1__SignedReceipt sr = GBX__V1__SIGNED_RECEIPT__INIT;
    sr.suite = 1;
    sr.receipt.data = buf + sizeof s_ctx;
    sr.receipt.len = n;
    sr.signature.data = sig;
    sr.signature.len = sizeof sig;
    size_t m = gbx__v1__signed_receipt__get_packed_size(&sr);
    uint8_t *packed = malloc(m);
    if (!packed) {
        free(buf);
        return GBX_E_NOMEM;
    }
    gbx__v1__signed_receipt__pack(&sr, packed);
    free(buf);
    *out = packed;
    *out_len = m;
    return GBX_OK;
}

gbx_err_t gbx_receipt_verify(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                             Gbx__V1__Receipt **r_out)
{
    if (!sr || !node)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (sr->suite != 1)
        return GBX_E_UNKNOWN_SUITE;
    if (sr->signature.len != crypto_sign_BYTES)
        return GBX_E_BAD_SIGNATURE;
    uint8_t *buf = malloc(sizeof s_ctx + sr->receipt.len);
    if (!buf)
        return GBX_E_NOMEM;
    memcpy(buf, s_ctx, sizeof s_ctx);
    if (sr->receipt.len)
        memcpy(buf + sizeof s_ctx, sr->receipt.data, sr->receipt.len);
    int ok = crypto_sign_verify_detached(sr->signature.data, buf, sizeof s_ctx + sr->receipt.len,
                                         node->sign_pk) == 0;
    free(buf);
    if (!ok)
        return GBX_E_BAD_SIGNATURE;
    if (r_out) {
        *r_out = gbx__v1__receipt__unpack(NULL, sr->receipt.len, sr->receipt.data);
        if (!*r_out)
            return GBX_E_MALFORMED;
    }
    return GBX_OK;
}

gbx_err_t gbx_receipt_check(const Gbx__V1__Receipt *r, const gbx_envelope_t *submitted,
                            const char *node_id)
{
    if (!r || !submitted || !node_id)
        return GBX_E_ARG;
    const gbx_header_t *h = gbx_envelope_header(submitted);
    uint8_t hash[GBX_HASH_BYTES];
    gbx_envelope_header_hash(submitted, hash);
    if (r->message_id.len != GBX_MSG_ID_BYTES ||
        memcmp(r->message_id.data, h->message_id.data, GBX_MSG_ID_BYTES) != 0 ||
        strcmp(r->node_id, node_id) != 0 ||
        (r->status != GBX__V1__RECEIPT_STATUS__ACCEPTED &&
         r->status != GBX__V1__RECEIPT_STATUS__HELD) ||
        r->header_hash.len != GBX_HASH_BYTES ||
        sodium_memcmp(r->header_hash.data, hash, GBX_HASH_BYTES) != 0)
        return GBX_E_FIELD_INVALID;
    return GBX_OK;
}
