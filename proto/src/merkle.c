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
