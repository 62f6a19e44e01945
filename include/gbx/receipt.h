/*  gbx/receipt.h: the broker's signed receipt. Spec: proto/spec/2-envelope.md
    section 7.

    Signed message (Ed25519, suite 1):
        single:  "gbx1-receipt\0"       || receipt bytes
        batch:   "gbx1-receipt-batch\0" || be32(tree_size) || merkle root
    where the Merkle leaves are BLAKE2b-256(0x00 || receipt bytes), the tree
    and the BatchProof rules those of envelope batches (section 6).
    A sender keeps the SignedReceipt as proof of what the exchange accepted. */
#ifndef GBX_RECEIPT_H
#define GBX_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/v1/envelope.pb-c.h"

/*  Serializes R and signs it with NODE (a single signature, no BatchProof).
    On GBX_OK *out is a malloc'ed serialized SignedReceipt of *out_len bytes
    (caller frees). */
gbx_err_t gbx_receipt_sign(const gbx_identity_t *node, const Gbx__V1__Receipt *r, uint8_t **out,
                           size_t *out_len);
/*  Signs the N receipts RS[0..n-1] (a group commit) under one Merkle root
    with one Ed25519 signature (section 7.1). N in 1..GBX_BATCH_MAX, else
    GBX_E_ARG; N = 1 gives a batch of one (tree_size 1, empty path), which
    is not the same as gbx_receipt_sign. On GBX_OK OUTS[i] is a malloc'ed
    serialized SignedReceipt of OUT_LENS[i] bytes carrying receipt i and its
    BatchProof (leaf_index i); the caller frees each. On error no OUTS[i] is
    set. */
gbx_err_t gbx_receipt_sign_batch(const gbx_identity_t *node, const Gbx__V1__Receipt *const *rs,
                                 size_t n, uint8_t **outs, size_t *out_lens);
/*  Spec steps 2 to 4: suite, NODE's signature (single, or inclusion path
    and batch signature) over the receipt bytes, and their parse. SR comes
    parsed from its frame (step 1). On GBX_OK and when R_OUT is not NULL,
    *r_out is the parsed receipt, owned by the caller (free with
    gbx__v1__receipt__free_unpacked(*r_out, NULL)); on error *r_out is NULL.
    GBX_E_UNKNOWN_SUITE, GBX_E_BAD_SIGNATURE, GBX_E_BAD_INCLUSION_PATH,
    GBX_E_MALFORMED. */
gbx_err_t gbx_receipt_verify(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                             Gbx__V1__Receipt **r_out);
/*  gbx_receipt_verify through CACHE (may be NULL) for batch signatures
    (section 7.1, the cache of 6.4): the receipts of one batch then cost one
    Ed25519 verification in all. Single signatures bypass the cache. */
gbx_err_t gbx_receipt_verify_cached(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                                    gbx_vcache_t *cache, Gbx__V1__Receipt **r_out);
/*  Spec steps 5 and 6: R speaks of SUBMITTED, as accepted by node NODE_ID:
    same message id, node id, a known status, and the hash of the exact
    header bytes submitted. GBX_E_FIELD_INVALID otherwise. */
gbx_err_t gbx_receipt_check(const Gbx__V1__Receipt *r, const gbx_envelope_t *submitted,
                            const char *node_id);

#endif
