/*  gbx/merkle.h: RFC 6962 / RFC 9162 Merkle trees over BLAKE2b-256.
    Spec: proto/spec/2-envelope.md section 6.

        leaf hash  = BLAKE2b-256(0x00 || data)
        node hash  = BLAKE2b-256(0x01 || left || right)

    The tree of n leaves splits at the largest power of two below n (RFC 6962
    section 2.1); built bottom-up, the last node of an odd level moves up
    unchanged. Used for batch signatures and, later, the audit trail. */
#ifndef GBX_MERKLE_H
#define GBX_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"

#define GBX_MERKLE_HASH      32u
#define GBX_MERKLE_MAX_DEPTH 64u

typedef uint8_t gbx_hash_t[GBX_MERKLE_HASH];

void gbx_merkle_leaf(const uint8_t *data, size_t len, gbx_hash_t out);
void gbx_merkle_node(const gbx_hash_t left, const gbx_hash_t right, gbx_hash_t out);

typedef struct gbx_merkle gbx_merkle_t;
/*  Builds the tree over N >= 1 leaf hashes (copied). On GBX_OK the caller
    owns *out. */
gbx_err_t gbx_merkle_build(const gbx_hash_t *leaves, size_t n, gbx_merkle_t **out);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_merkle_destroy(gbx_merkle_t **self_p);
const uint8_t *gbx_merkle_root(const gbx_merkle_t *self);
/*  Writes the audit path of leaf INDEX into PATH (room for
    GBX_MERKLE_MAX_DEPTH hashes) and its length into *PATH_LEN. */
gbx_err_t gbx_merkle_path(const gbx_merkle_t *self, size_t index, gbx_hash_t *path,
                          size_t *path_len);

/*  Recomputes the root from a leaf hash and its audit path (RFC 9162
    section 2.1.3.2). GBX_E_BAD_INCLUSION_PATH if INDEX >= N or the path has
    the wrong length for (INDEX, N). */
gbx_err_t gbx_merkle_root_from_path(const gbx_hash_t leaf, uint64_t index, uint64_t n,
                                    const gbx_hash_t *path, size_t path_len, gbx_hash_t root_out);

#endif
