/*  gbx/checkpoint.h: a signed checkpoint of a node's audit trail.

    A checkpoint says: the audit trail of NODE held SIZE records at AT_MS;
    the RFC 6962 root over them (gbx/merkle.h, BLAKE2b-256) is ROOT and the
    hash chain's head (the chain value of record SIZE - 1) is CHAIN. The
    node signs it with its Ed25519 key; a peer node may countersign it, so
    that neither side can later present another history for the same size.

    Signed bytes (big-endian integers):
        "gbx1-audit-checkpoint\0" || u8 len(node) || node || u64 size ||
        u64 at_ms || root[32] || chain[32]
    A countersignature by node P signs
        "gbx1-audit-cosign\0" || u8 len(P) || P || <the signed bytes above>

    Text form (files, the store, `gbx-audit`), one line:
        gbx-checkpoint v1 node=<id> size=<n> at_ms=<ms> root=<hex> chain=<hex> sig=<hex>
    followed by zero or more " cosig=<peer id>:<hex>". Checking a
    checkpoint needs only the node's public signing key. */
#ifndef GBX_CHECKPOINT_H
#define GBX_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/merkle.h"

#define GBX_CHECKPOINT_SIG_BYTES 64u
#define GBX_CHECKPOINT_MAX_COSIG 4u
/*  Longest text form, NUL included. */
#define GBX_CHECKPOINT_TEXT_MAX                                                                    \
    (512u + GBX_CHECKPOINT_MAX_COSIG * (8u + GBX_ID_MAX + 2u * GBX_CHECKPOINT_SIG_BYTES))

typedef struct {
    char node[GBX_ID_MAX + 1];
    uint8_t sig[GBX_CHECKPOINT_SIG_BYTES];
} gbx_cosig_t;

typedef struct {
    char node[GBX_ID_MAX + 1];
    uint64_t size;
    uint64_t at_ms;
    gbx_hash_t root;
    gbx_hash_t chain;
    uint8_t sig[GBX_CHECKPOINT_SIG_BYTES];
    unsigned ncosig;
    gbx_cosig_t cosig[GBX_CHECKPOINT_MAX_COSIG];
} gbx_checkpoint_t;

/*  Signs CP (node, size, at_ms, root, chain set) with SIGN_SK (the
    node's 64-byte Ed25519 secret key, gbx_identity_sign_sk). GBX_E_ARG if
    the node id is not valid. */
gbx_err_t gbx_checkpoint_sign(gbx_checkpoint_t *cp, const uint8_t *sign_sk);
/*  GBX_OK if CP's signature verifies under SIGN_PK; else GBX_E_BAD_SIGNATURE. */
gbx_err_t gbx_checkpoint_verify(const gbx_checkpoint_t *cp, const uint8_t sign_pk[GBX_KEY_BYTES]);

/*  Adds PEER's countersignature (PEER_SK its Ed25519 secret key) to CP.
    GBX_E_STATE when CP already holds GBX_CHECKPOINT_MAX_COSIG; a second
    one by the same peer replaces the first. */
gbx_err_t gbx_checkpoint_cosign(gbx_checkpoint_t *cp, const char *peer, const uint8_t *peer_sk);
/*  GBX_OK if CP holds PEER's countersignature and it verifies under
    PEER_PK; GBX_E_STATE if CP has none by PEER; else GBX_E_BAD_SIGNATURE. */
gbx_err_t gbx_checkpoint_verify_cosig(const gbx_checkpoint_t *cp, const char *peer,
                                      const uint8_t peer_pk[GBX_KEY_BYTES]);

/*  The text form into BUF (CAP >= GBX_CHECKPOINT_TEXT_MAX), no newline;
    GBX_E_ARG if it would not fit. */
gbx_err_t gbx_checkpoint_format(const gbx_checkpoint_t *cp, char *buf, size_t cap);
/*  Parses the text form (LEN bytes; a trailing newline is allowed).
    GBX_E_MALFORMED for anything else. Does not check signatures. */
gbx_err_t gbx_checkpoint_parse(const char *text, size_t len, gbx_checkpoint_t *cp);

/*  Lowercase hex of LEN bytes into OUT (room for 2 * LEN + 1). */
void gbx_hex(const uint8_t *bin, size_t len, char *out);
/*  Parses exactly 2 * LEN hex digits of TEXT into OUT; GBX_E_MALFORMED if not. */
gbx_err_t gbx_unhex(const char *text, size_t text_len, uint8_t *out, size_t len);

#endif
