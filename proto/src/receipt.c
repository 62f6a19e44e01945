/*  receipt.c: owns the broker's signed receipts, single and batch-signed.
    Implements proto/spec/2-envelope.md section 7. */
#include "gbx/receipt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char s_ctx[] = "gbx1-receipt"; /* signed with its NUL */
static const char s_ctx_batch[] = "gbx1-receipt-batch";
#define S_BATCH_MSG_LEN (sizeof s_ctx_batch + 4 + GBX_MERKLE_HASH) /* 55 */

/*  "gbx1-receipt-batch\0" || be32(tree_size) || root (section 7.1). */
static void s_batch_message(uint32_t tree_size, const uint8_t root[GBX_MERKLE_HASH],
                            uint8_t msg[S_BATCH_MSG_LEN])
{
    memcpy(msg, s_ctx_batch, sizeof s_ctx_batch);
    msg[sizeof s_ctx_batch + 0] = (uint8_t)(tree_size >> 24);
    msg[sizeof s_ctx_batch + 1] = (uint8_t)(tree_size >> 16);
    msg[sizeof s_ctx_batch + 2] = (uint8_t)(tree_size >> 8);
    msg[sizeof s_ctx_batch + 3] = (uint8_t)tree_size;
    memcpy(msg + sizeof s_ctx_batch + 4, root, GBX_MERKLE_HASH);
}

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
    sr.suite = GBX_SUITE_GBX1;
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

gbx_err_t gbx_receipt_sign_batch(const gbx_identity_t *node, const Gbx__V1__Receipt *const *rs,
                                 size_t n, uint8_t **outs, size_t *out_lens)
{
    if (!node || !rs || !outs || !out_lens || n == 0 || n > GBX_BATCH_MAX)
        return GBX_E_ARG;
    for (size_t i = 0; i < n; i++)
        if (!rs[i])
            return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_err_t rc = GBX_E_NOMEM;
    size_t done = 0, total = 0;
    gbx_merkle_t *tree = NULL;
    uint8_t *bytes = NULL;
    size_t *off = malloc((n + 1) * sizeof *off);
    gbx_hash_t *leaves = malloc(n * sizeof *leaves);
    if (!off || !leaves)
        goto out;
    /* All receipt bytes in one buffer: receipt i is bytes[off[i]..off[i+1]). */
    for (size_t i = 0; i < n; i++) {
        off[i] = total;
        total += gbx__v1__receipt__get_packed_size(rs[i]);
    }
    off[n] = total;
    if (!(bytes = malloc(total ? total : 1)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        gbx__v1__receipt__pack(rs[i], bytes + off[i]);
        gbx_merkle_leaf(bytes + off[i], off[i + 1] - off[i], leaves[i]);
    }
    if ((rc = gbx_merkle_build(leaves, n, &tree)) != GBX_OK)
        goto out;
    uint8_t msg[S_BATCH_MSG_LEN], sig[crypto_sign_BYTES];
    s_batch_message((uint32_t)n, gbx_merkle_root(tree), msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, gbx_identity_sign_sk(node));
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    Gbx__V1__BatchProof proof = GBX__V1__BATCH_PROOF__INIT;
    proof.tree_size = (uint32_t)n;
    proof.path.data = (uint8_t *)path;
    proof.root.data = (uint8_t *)gbx_merkle_root(tree);
    proof.root.len = GBX_MERKLE_HASH;
    Gbx__V1__SignedReceipt sr = GBX__V1__SIGNED_RECEIPT__INIT;
    sr.suite = GBX_SUITE_GBX1;
    sr.signature.data = sig;
    sr.signature.len = sizeof sig;
    sr.batch = &proof;
    for (; done < n; done++) {
        size_t path_len = 0;
        gbx_merkle_path(tree, done, path, &path_len);
        proof.leaf_index = (uint32_t)done;
        proof.path.len = path_len * GBX_MERKLE_HASH;
        sr.receipt.data = bytes + off[done];
        sr.receipt.len = off[done + 1] - off[done];
        size_t m = gbx__v1__signed_receipt__get_packed_size(&sr);
        rc = GBX_E_NOMEM;
        if (!(outs[done] = malloc(m)))
            goto out;
        gbx__v1__signed_receipt__pack(&sr, outs[done]);
        out_lens[done] = m;
    }
    rc = GBX_OK;
out:
    if (rc != GBX_OK)
        for (size_t i = 0; i < done; i++) {
            free(outs[i]);
            outs[i] = NULL;
        }
    gbx_merkle_destroy(&tree);
    free(bytes);
    free(leaves);
    free(off);
    return rc;
}

gbx_err_t gbx_receipt_verify(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                             Gbx__V1__Receipt **r_out)
{
    return gbx_receipt_verify_cached(sr, node, NULL, r_out);
}

/*  Step 3, single: NODE's signature over "gbx1-receipt\0" || receipt. */
static gbx_err_t s_verify_single(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node)
{
    uint8_t *buf = malloc(sizeof s_ctx + sr->receipt.len);
    if (!buf)
        return GBX_E_NOMEM;
    memcpy(buf, s_ctx, sizeof s_ctx);
    if (sr->receipt.len)
        memcpy(buf + sizeof s_ctx, sr->receipt.data, sr->receipt.len);
    gbx_err_t rc = gbx_vcache_verify(NULL, node->sign_pk, buf, sizeof s_ctx + sr->receipt.len,
                                     sr->signature.data);
    free(buf);
    return rc;
}

/*  Step 3, batch (section 7.1): proof shape, inclusion path, then NODE's
    signature over the batch root, through CACHE. */
static gbx_err_t s_verify_batch(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                                gbx_vcache_t *cache)
{
    const Gbx__V1__BatchProof *b = sr->batch;
    gbx_err_t rc = gbx_batch_proof_check(b);
    if (rc == GBX_OK)
        rc = gbx_batch_proof_verify(b, sr->receipt.data, sr->receipt.len);
    if (rc != GBX_OK)
        return rc;
    uint8_t msg[S_BATCH_MSG_LEN];
    s_batch_message(b->tree_size, b->root.data, msg); /* = the computed root */
    return gbx_vcache_verify(cache, node->sign_pk, msg, sizeof msg, sr->signature.data);
}

gbx_err_t gbx_receipt_verify_cached(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                                    gbx_vcache_t *cache, Gbx__V1__Receipt **r_out)
{
    if (r_out)
        *r_out = NULL;
    if (!sr || !node)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (sr->suite != GBX_SUITE_GBX1)
        return GBX_E_UNKNOWN_SUITE;
    if (sr->signature.len != crypto_sign_BYTES)
        return GBX_E_BAD_SIGNATURE;
    gbx_err_t rc = sr->batch ? s_verify_batch(sr, node, cache) : s_verify_single(sr, node);
    if (rc != GBX_OK)
        return rc;
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
