/*  gbx/merkle.h: RFC 6962 / RFC 9162 Merkle trees over BLAKE2b-256.
    Spec: proto/spec/2-envelope.md section 6.

        leaf hash  = BLAKE2b-256(0x00 || data)
        node hash  = BLAKE2b-256(0x01 || left || right)

    The tree of n leaves splits at the largest power of two below n (RFC 6962
    section 2.1); built bottom-up, the last node of an odd level moves up
    unchanged. Used for batch signatures and the audit trail (broker/trail.h). */
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

/* ------------------------------------------------- growing trees (the audit trail) */

/*  A tree that grows one leaf at a time, in O(log n) memory: the roots of
    its "peaks", the complete subtrees that its size's binary digits name,
    largest (leftmost) first. Peak p covers 2^level leaves. */
typedef struct {
    uint64_t size;
    unsigned npeaks;
    gbx_hash_t peak[GBX_MERKLE_MAX_DEPTH];
} gbx_merkle_peaks_t;

/*  Called for every complete subtree an append forms: LEVEL >= 1, covering
    leaves [INDEX << LEVEL, (INDEX + 1) << LEVEL). */
typedef void (*gbx_merkle_node_fn)(void *arg, unsigned level, uint64_t index, const gbx_hash_t h);

void gbx_merkle_peaks_init(gbx_merkle_peaks_t *self);
/*  Appends LEAF (a leaf hash); ON_NODE (may be NULL) sees the subtrees
    this completes, lowest first. */
void gbx_merkle_peaks_append(gbx_merkle_peaks_t *self, const gbx_hash_t leaf,
                             gbx_merkle_node_fn on_node, void *arg);
/*  The root of the tree (RFC 6962 MTH); GBX_E_STATE when it is empty. */
gbx_err_t gbx_merkle_peaks_root(const gbx_merkle_peaks_t *self, gbx_hash_t root);
/*  The level of peak P of a tree of SIZE leaves (0-based from the left). */
unsigned gbx_merkle_peak_level(uint64_t size, unsigned p);

/* --------------------------------------------- proofs over a stored tree */

/*  MTH(D[LO:HI]) of a tree that lives elsewhere (a store): the proof
    builders below ask for exactly the subtrees RFC 9162 names. */
typedef gbx_err_t (*gbx_merkle_subtree_fn)(void *arg, uint64_t lo, uint64_t hi, gbx_hash_t out);

/*  The inclusion path of leaf INDEX in the tree of N leaves (RFC 9162
    2.1.3.1), leaf to root, into PATH (room for GBX_MERKLE_MAX_DEPTH). */
gbx_err_t gbx_merkle_path_by(gbx_merkle_subtree_fn mth, void *arg, uint64_t index, uint64_t n,
                             gbx_hash_t *path, size_t *path_len);
/*  The consistency proof from the tree of M leaves to the tree of N
    (0 < M <= N; RFC 9162 2.1.4.1) into PROOF (room for
    GBX_MERKLE_MAX_DEPTH + 1). */
gbx_err_t gbx_merkle_consistency_by(gbx_merkle_subtree_fn mth, void *arg, uint64_t m, uint64_t n,
                                    gbx_hash_t *proof, size_t *proof_len);
/*  GBX_OK if PROOF shows that the tree of N leaves with root ROOT_N extends
    the tree of M leaves with root ROOT_M (RFC 9162 2.1.4.2); else
    GBX_E_BAD_INCLUSION_PATH. */
gbx_err_t gbx_merkle_check_consistency(uint64_t m, const gbx_hash_t root_m, uint64_t n,
                                       const gbx_hash_t root_n, const gbx_hash_t *proof,
                                       size_t proof_len);

#endif
