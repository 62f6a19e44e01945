/*  gbx/envelope.h: signed headers, envelopes, batch signatures.
    Spec: proto/spec/2-envelope.md.

    An envelope carries the header as the exact bytes that were signed, the
    signature, the crypto suite id and, for batch signatures, the inclusion
    path of this header in the signed batch. The encrypted payload travels
    beside the envelope (gbx/payload.h); the header's payload_hash binds it.

    Signed message (Ed25519, suite 1):
        single:  "gbx1-header\0" || header bytes
        batch:   "gbx1-batch\0"  || be32(tree_size) || merkle root
    where the Merkle leaves are BLAKE2b-256(0x00 || header bytes).

    Decoding checks structure and header fields; verifying checks the
    signature. Receivers do both before trusting anything in the header. */
#ifndef GBX_ENVELOPE_H
#define GBX_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/merkle.h"
#include "gbx/payload.h"
#include "gbx/v1/envelope.pb-c.h"

#define GBX_ENVELOPE_VERSION 1u
#define GBX_SUITE_GBX1       1u
#define GBX_SIG_BYTES        64u
#define GBX_HEADER_MAX       16384u /* bytes of a serialized header */
#define GBX_ENVELOPE_MAX     20480u /* bytes of a serialized envelope */
#define GBX_FIELD_MAX        256u   /* bytes of any free-text header field */
#define GBX_BATCH_MAX        65536u /* headers under one batch signature */

typedef Gbx__V1__Header gbx_header_t;

/*  Initialises H to defaults (all empty / zero). */
void gbx_header_init(gbx_header_t *h);
/*  Checks every field against the spec's ranges (ids, lengths, enums, times).
    GBX_E_FIELD_INVALID with *why (static text) naming the field. */
gbx_err_t gbx_header_check(const gbx_header_t *h, const char **why);
/*  Fresh random message id. */
void gbx_message_id_new(uint8_t out[GBX_MSG_ID_BYTES]);

typedef struct gbx_envelope gbx_envelope_t;

/*  Serializes H, checks it and signs it with SIGNER (a single signature).
    Sets signer_key_id from SIGNER if H leaves it empty. GBX_E_ARG when
    H's from_agency is not SIGNER's id. On GBX_OK sets *out; the caller owns
    it (gbx_envelope_destroy). H is not kept. */
gbx_err_t gbx_envelope_sign(const gbx_identity_t *signer, const gbx_header_t *h,
                            gbx_envelope_t **out);
/*  Signs N headers under one Merkle root: OUT[i] receives header i's envelope
    (caller owns and destroys each). N in 1..GBX_BATCH_MAX; every header from
    SIGNER, no message id twice (else GBX_E_ARG). On error no OUT[i] is set. */
gbx_err_t gbx_envelope_sign_batch(const gbx_identity_t *signer, const gbx_header_t *const *hs,
                                  size_t n, gbx_envelope_t **out);

/*  Parses an envelope from untrusted bytes: version, suite, sizes, header
    protobuf, header fields, proof shape (spec section 8 steps 1 to 6). Does
    not verify the signature. BUF is copied; on GBX_OK the caller owns *out. */
gbx_err_t gbx_envelope_decode(const uint8_t *buf, size_t len, gbx_envelope_t **out);
/*  Serialized size, and serialization into BUF (room for gbx_envelope_size). */
size_t gbx_envelope_size(const gbx_envelope_t *self);
size_t gbx_envelope_pack(const gbx_envelope_t *self, uint8_t *buf);
/*  The envelope as a protobuf-c message, for embedding in a frame. Valid as
    long as SELF is. */
const Gbx__V1__Envelope *gbx_envelope_message(const gbx_envelope_t *self);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_envelope_destroy(gbx_envelope_t **self_p);

/*  The parsed header (valid as long as SELF) and the exact signed bytes. */
const gbx_header_t *gbx_envelope_header(const gbx_envelope_t *self);
const uint8_t *gbx_envelope_header_bytes(const gbx_envelope_t *self, size_t *len);
/*  BLAKE2b-256 of the header bytes (what receipts and the audit trail name). */
void gbx_envelope_header_hash(const gbx_envelope_t *self, uint8_t out[GBX_HASH_BYTES]);
/*  1 when signed as part of a batch. */
int gbx_envelope_is_batch(const gbx_envelope_t *self);

/*  Cache of batch roots already verified, so that each further message of a
    batch costs a few hashes instead of an Ed25519 verification. Not
    thread-safe: one per verifying thread. */
typedef struct gbx_vcache gbx_vcache_t;
/*  SLOTS in 1..2^20; on GBX_OK the caller owns *out. Slots are chosen by a
    keyed hash with a random key, so a sender cannot aim at them. */
gbx_err_t gbx_vcache_new(size_t slots, gbx_vcache_t **out);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_vcache_destroy(gbx_vcache_t **self_p);
/*  Signature verifications done and cache hits so far. */
void gbx_vcache_stats(const gbx_vcache_t *self, uint64_t *verified, uint64_t *hits);

/*  Ed25519 verification of SIG (GBX_SIG_BYTES) over MSG by the sign key PK
    (GBX_KEY_BYTES), through CACHE when not NULL: a success is remembered
    under a keyed hash of (PK, SIG, MSG) and a later call with the same three
    is a hit. Meant for batch-signed messages, whose MSG names the tree size
    and root (spec section 6.4); also used for receipt batches (section 7.1).
    GBX_E_BAD_SIGNATURE. */
gbx_err_t gbx_vcache_verify(gbx_vcache_t *cache, const uint8_t *pk, const uint8_t *msg, size_t len,
                            const uint8_t *sig);

/*  The proof shape of spec section 6.2: tree_size in 1..GBX_BATCH_MAX,
    leaf_index below it, path a multiple of 32 bytes and at most 16 hashes,
    root 32 bytes. GBX_E_BAD_INCLUSION_PATH otherwise. */
gbx_err_t gbx_batch_proof_check(const Gbx__V1__BatchProof *b);
/*  Spec section 6.3 for the leaf DATA (LEN bytes) under proof B, whose
    shape has passed gbx_batch_proof_check: recomputes the root from the
    path and compares it with B's root in constant time.
    GBX_E_BAD_INCLUSION_PATH otherwise. */
gbx_err_t gbx_batch_proof_verify(const Gbx__V1__BatchProof *b, const uint8_t *data, size_t len);

/*  Verifies the envelope against SIGNER's public keys (spec section 8 steps
    8 to 10): the key id named in the header, the inclusion path, the
    signature. CACHE may be NULL. GBX_E_WRONG_KEY (also when SIGNER is not
    the header's from_agency: the caller looked up the wrong entry),
    GBX_E_BAD_INCLUSION_PATH or GBX_E_BAD_SIGNATURE. */
gbx_err_t gbx_envelope_verify(const gbx_envelope_t *self, const gbx_pubid_t *signer,
                              gbx_vcache_t *cache);
/*  Checks an encrypted payload against the header: length, then hash. */
gbx_err_t gbx_envelope_check_payload(const gbx_envelope_t *self, const uint8_t *sealed, size_t len);
/*  The binding (message id, from, to) for gbx/payload.h, from the header. */
void gbx_envelope_binding(const gbx_envelope_t *self, gbx_binding_t *out);

#endif
