/*  merkle.c: owns RFC 6962 Merkle trees over BLAKE2b-256.
    Implements proto/spec/2-envelope.md section 6. */
#include "gbx/merkle.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct gbx_merkle {
    size_t n;          /* leaves */
    size_t levels;     /* level 0 = leaves, last = root */
    size_t *offset;    /* first node of each level in nodes */
    size_t *size;      /* nodes in each level */
    gbx_hash_t *nodes; /* all levels, bottom-up */
};

void gbx_merkle_leaf(const uint8_t *data, size_t len, gbx_hash_t out)
{
    static const uint8_t prefix = 0x00;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, GBX_MERKLE_HASH);
    crypto_generichash_update(&st, &prefix, 1);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, out, GBX_MERKLE_HASH);
}

void gbx_merkle_node(const gbx_hash_t left, const gbx_hash_t right, gbx_hash_t out)
{
    uint8_t in[1 + 2 * GBX_MERKLE_HASH];
    in[0] = 0x01;
    memcpy(in + 1, left, GBX_MERKLE_HASH);
    memcpy(in + 1 + GBX_MERKLE_HASH, right, GBX_MERKLE_HASH);
    crypto_generichash(out, GBX_MERKLE_HASH, in, sizeof in, NULL, 0);
}

gbx_err_t gbx_merkle_build(const gbx_hash_t *leaves, size_t n, gbx_merkle_t **out)
{
    if (!leaves || n == 0 || n > SIZE_MAX / (2 * sizeof(gbx_hash_t)))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_merkle_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    size_t levels = 1, total = n;
    for (size_t s = n; s > 1; s = (s + 1) / 2) {
        levels++;
        total += (s + 1) / 2;
    }
    self->n = n;
    self->levels = levels;
    self->offset = calloc(levels, sizeof *self->offset);
    self->size = calloc(levels, sizeof *self->size);
    self->nodes = malloc(total * sizeof *self->nodes);
    if (!self->offset || !self->size || !self->nodes) {
        gbx_merkle_destroy(&self);
        return GBX_E_NOMEM;
    }
    memcpy(self->nodes, leaves, n * sizeof *leaves);
    self->size[0] = n;
    for (size_t l = 1; l < levels; l++) {
        const gbx_hash_t *below = self->nodes + self->offset[l - 1];
        size_t nb = self->size[l - 1];
        self->offset[l] = self->offset[l - 1] + nb;
        self->size[l] = (nb + 1) / 2;
        gbx_hash_t *here = self->nodes + self->offset[l];
        for (size_t i = 0; i < nb / 2; i++)
            gbx_merkle_node(below[2 * i], below[2 * i + 1], here[i]);
        if (nb % 2) /* the last node of an odd level moves up unchanged */
            memcpy(here[nb / 2], below[nb - 1], GBX_MERKLE_HASH);
    }
    *out = self;
    return GBX_OK;
}

void gbx_merkle_destroy(gbx_merkle_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->offset);
    free((*self_p)->size);
    free((*self_p)->nodes);
    free(*self_p);
    *self_p = NULL;
}

const uint8_t *gbx_merkle_root(const gbx_merkle_t *self)
{
    return self->nodes[self->offset[self->levels - 1]];
}

gbx_err_t gbx_merkle_path(const gbx_merkle_t *self, size_t index, gbx_hash_t *path,
                          size_t *path_len)
{
    if (index >= self->n)
        return GBX_E_ARG;
    size_t k = 0;
    for (size_t l = 0; l + 1 < self->levels; l++, index /= 2) {
        size_t sib = index ^ 1;
        if (sib < self->size[l])
            memcpy(path[k++], self->nodes[self->offset[l] + sib], GBX_MERKLE_HASH);
    }
    *path_len = k;
    return GBX_OK;
}

gbx_err_t gbx_merkle_root_from_path(const gbx_hash_t leaf, uint64_t index, uint64_t n,
                                    const gbx_hash_t *path, size_t path_len, gbx_hash_t root_out)
{
    if (index >= n || path_len > GBX_MERKLE_MAX_DEPTH)
        return GBX_E_BAD_INCLUSION_PATH;
    uint64_t fn = index, sn = n - 1;
    gbx_hash_t r;
    memcpy(r, leaf, GBX_MERKLE_HASH);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0)
            return GBX_E_BAD_INCLUSION_PATH;
        if ((fn & 1) || fn == sn) {
            gbx_merkle_node(path[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            gbx_merkle_node(r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return GBX_E_BAD_INCLUSION_PATH;
    memcpy(root_out, r, GBX_MERKLE_HASH);
    return GBX_OK;
}

/* ------------------------------------------------------- growing trees */

void gbx_merkle_peaks_init(gbx_merkle_peaks_t *self)
{
    memset(self, 0, sizeof *self);
}

void gbx_merkle_peaks_append(gbx_merkle_peaks_t *self, const gbx_hash_t leaf,
                             gbx_merkle_node_fn on_node, void *arg)
{
    uint64_t index = self->size; /* of the subtree being carried, at its level */
    memcpy(self->peak[self->npeaks++], leaf, GBX_MERKLE_HASH);
    /* each trailing 1 bit of the old size is a peak the new leaf completes */
    for (unsigned level = 1; index & 1; level++) {
        gbx_hash_t *l = &self->peak[self->npeaks - 2], *r = &self->peak[self->npeaks - 1];
        gbx_merkle_node(*l, *r, *l);
        self->npeaks--;
        index >>= 1;
        if (on_node)
            on_node(arg, level, index, *l);
    }
    self->size++;
}

gbx_err_t gbx_merkle_peaks_root(const gbx_merkle_peaks_t *self, gbx_hash_t root)
{
    if (self->npeaks == 0)
        return GBX_E_STATE;
    gbx_hash_t r;
    memcpy(r, self->peak[self->npeaks - 1], GBX_MERKLE_HASH);
    for (unsigned p = self->npeaks - 1; p-- > 0;)
        gbx_merkle_node(self->peak[p], r, r);
    memcpy(root, r, GBX_MERKLE_HASH);
    return GBX_OK;
}

unsigned gbx_merkle_peak_level(uint64_t size, unsigned p)
{
    for (unsigned level = 64; level-- > 0;)
        if (size >> level & 1) {
            if (p == 0)
                return level;
            p--;
        }
    return 0;
}

/* ------------------------------------------------------------- proofs */

/*  The largest power of two below N (N >= 2). */
static uint64_t s_split(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/*  PATH(m, D[lo:hi]) appended at PATH[*LEN], leaf end first. */
static gbx_err_t s_path(gbx_merkle_subtree_fn mth, void *arg, uint64_t m, uint64_t lo, uint64_t hi,
                        gbx_hash_t *path, size_t *len)
{
    if (hi - lo == 1)
        return GBX_OK;
    uint64_t k = s_split(hi - lo);
    gbx_err_t rc;
    if (m < k) {
        if ((rc = s_path(mth, arg, m, lo, lo + k, path, len)) != GBX_OK)
            return rc;
        rc = mth(arg, lo + k, hi, path[*len]);
    } else {
        if ((rc = s_path(mth, arg, m - k, lo + k, hi, path, len)) != GBX_OK)
            return rc;
        rc = mth(arg, lo, lo + k, path[*len]);
    }
    if (rc == GBX_OK)
        (*len)++;
    return rc;
}

gbx_err_t gbx_merkle_path_by(gbx_merkle_subtree_fn mth, void *arg, uint64_t index, uint64_t n,
                             gbx_hash_t *path, size_t *path_len)
{
    if (!mth || !path || !path_len || index >= n)
        return GBX_E_ARG;
    *path_len = 0;
    return s_path(mth, arg, index, 0, n, path, path_len);
}

/*  SUBPROOF(m, D[lo:hi], b) appended at PROOF[*LEN]. */
static gbx_err_t s_subproof(gbx_merkle_subtree_fn mth, void *arg, uint64_t m, uint64_t lo,
                            uint64_t hi, int b, gbx_hash_t *proof, size_t *len)
{
    gbx_err_t rc = GBX_OK;
    if (m == hi - lo) {
        if (!b && (rc = mth(arg, lo, hi, proof[*len])) == GBX_OK)
            (*len)++;
        return rc;
    }
    uint64_t k = s_split(hi - lo);
    if (m <= k) {
        if ((rc = s_subproof(mth, arg, m, lo, lo + k, b, proof, len)) != GBX_OK)
            return rc;
        rc = mth(arg, lo + k, hi, proof[*len]);
    } else {
        if ((rc = s_subproof(mth, arg, m - k, lo + k, hi, 0, proof, len)) != GBX_OK)
            return rc;
        rc = mth(arg, lo, lo + k, proof[*len]);
    }
    if (rc == GBX_OK)
        (*len)++;
    return rc;
}

gbx_err_t gbx_merkle_consistency_by(gbx_merkle_subtree_fn mth, void *arg, uint64_t m, uint64_t n,
                                    gbx_hash_t *proof, size_t *proof_len)
{
    if (!mth || !proof || !proof_len || m == 0 || m > n)
        return GBX_E_ARG;
    *proof_len = 0;
    if (m == n)
        return GBX_OK;
    return s_subproof(mth, arg, m, 0, n, 1, proof, proof_len);
}

gbx_err_t gbx_merkle_check_consistency(uint64_t m, const gbx_hash_t root_m, uint64_t n,
                                       const gbx_hash_t root_n, const gbx_hash_t *proof,
                                       size_t proof_len)
{
    if (m == 0 || m > n || proof_len > GBX_MERKLE_MAX_DEPTH + 1 || (proof_len && !proof))
        return GBX_E_BAD_INCLUSION_PATH;
    if (m == n)
        return proof_len == 0 && sodium_memcmp(root_m, root_n, GBX_MERKLE_HASH) == 0
                   ? GBX_OK
                   : GBX_E_BAD_INCLUSION_PATH;
    if (proof_len == 0)
        return GBX_E_BAD_INCLUSION_PATH;
    /* RFC 9162 2.1.4.2; a first tree of 2^k leaves is its own first node */
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH + 2];
    size_t len = 0;
    if ((m & (m - 1)) == 0)
        memcpy(path[len++], root_m, GBX_MERKLE_HASH);
    memcpy(path + len, proof, proof_len * sizeof *proof);
    len += proof_len;
    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    gbx_hash_t fr, sr;
    memcpy(fr, path[0], GBX_MERKLE_HASH);
    memcpy(sr, path[0], GBX_MERKLE_HASH);
    for (size_t i = 1; i < len; i++) {
        if (sn == 0)
            return GBX_E_BAD_INCLUSION_PATH;
        if ((fn & 1) || fn == sn) {
            gbx_merkle_node(path[i], fr, fr);
            gbx_merkle_node(path[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            gbx_merkle_node(sr, path[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(fr, root_m, GBX_MERKLE_HASH) != 0 ||
        sodium_memcmp(sr, root_n, GBX_MERKLE_HASH) != 0)
        return GBX_E_BAD_INCLUSION_PATH;
    return GBX_OK;
}
