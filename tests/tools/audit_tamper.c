/*  audit-tamper: what an attacker with write access to a stopped node's
    data dir would do to its audit trail, for tests/tools/audit.sh. Writes
    straight into the store's keyspaces (no trail sealing: a batch without
    appended records), as a forger with RocksDB and the format would.

    Usage: audit-tamper DATA_DIR ACTION ARGS
      edit I          one character of record I's text changed (its chain line kept)
      delete I        record I deleted
      swap I J        records I and J exchanged
      truncate N      records N and after deleted (head and checkpoints kept)
      rechain I       record I edited and the chain lines of I and every later
                      record recomputed, the head too: the chain holds again
      cut N           records N and after deleted, the head rewritten to N and
                      the checkpoints beyond N deleted: a clean-looking shorter
                      trail, that only a checkpoint held elsewhere reveals
      forge-cp S      the checkpoint of S records given another root and
                      signed with a fresh key
    Exit 0 done, 2 usage or store errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/checkpoint.h"
#include "gbx/identity.h"
#include "store.h"
#include "trail.h"

static gbx_store_t *s_store;

static int s_die(const char *what)
{
    fprintf(stderr, "audit-tamper: %s\n", what);
    gbx_store_destroy(&s_store);
    return 2;
}

static uint8_t *s_get(uint64_t i, size_t *len)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES], *v = NULL;
    gbx_store_seq_key(i, key);
    if (gbx_store_get(s_store, GBX_KS_AUDIT, key, sizeof key, &v, len) != GBX_OK)
        return NULL;
    return v;
}

static int s_put(gbx_batch_t *b, uint64_t i, const void *v, size_t len)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(i, key);
    return gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, v, len) == GBX_OK;
}

static int s_del(gbx_batch_t *b, uint64_t i)
{
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(i, key);
    return gbx_batch_delete(b, GBX_KS_AUDIT, key, sizeof key) == GBX_OK;
}

/*  Changes one character of the record's event name (its first field after v=1). */
static void s_edit(uint8_t *v, size_t len)
{
    uint8_t *e = memmem(v, len, "event=", 6);
    if (e && e + 6 < v + len)
        e[6] = e[6] == 'X' ? 'Y' : 'X';
}

/*  The head ('h'): cp size, cp ms, then be64 size, chain, npeaks, peaks. */
static int s_put_head(gbx_batch_t *b, const gbx_merkle_peaks_t *pk, const gbx_hash_t chain,
                      uint64_t cp_size)
{
    uint8_t head[16 + 9 + 32 + sizeof pk->peak], *p = head;
    uint64_t vals[3] = {cp_size, 0, pk->size};
    for (int k = 0; k < 3; k++)
        for (int j = 7; j >= 0; j--, vals[k] >>= 8)
            p[k * 8 + j] = (uint8_t)vals[k];
    memcpy(head + 24, chain, 32);
    head[56] = (uint8_t)pk->npeaks;
    memcpy(head + 57, pk->peak, pk->npeaks * 32u);
    uint8_t key = 'h';
    return gbx_batch_put(b, GBX_KS_TRAIL, &key, 1, head, 57 + pk->npeaks * 32u) == GBX_OK;
}

/*  Rebuilds chain lines from record I on (the text of I edited first). */
static int s_rechain(gbx_batch_t *b, uint64_t from, uint64_t size)
{
    gbx_hash_t chain = {0};
    gbx_merkle_peaks_t pk;
    gbx_merkle_peaks_init(&pk);
    for (uint64_t i = 0; i < size; i++) {
        size_t len = 0;
        uint8_t *v = s_get(i, &len);
        gbx_trail_rec_t r;
        if (!v || gbx_trail_parse(v, len, &r) != GBX_OK) {
            free(v);
            return 0;
        }
        if (i == from) {
            s_edit(v, len);
            gbx_trail_parse(v, len, &r); /* the leaf of the edited text */
        }
        gbx_trail_chain(chain, r.leaf, chain);
        gbx_merkle_peaks_append(&pk, r.leaf, NULL, NULL);
        if (i >= from) {
            gbx_hex(chain, 32, (char *)v + len - 65); /* "chain=" + 64 hex + "\n" */
            v[len - 1] = '\n';
            if (!s_put(b, i, v, len)) {
                free(v);
                return 0;
            }
        }
        free(v);
    }
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(s_store), &h);
    return s_put_head(b, &pk, chain, h.checkpoint);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return s_die("usage: audit-tamper DATA_DIR ACTION ARGS (see the source)");
    if (gbx_store_open(argv[1], NULL, &s_store) != GBX_OK)
        return s_die("cannot open the store");
    const char *act = argv[2];
    uint64_t a = strtoull(argv[3], NULL, 10), bidx = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(s_store), &h);
    gbx_batch_t *b = NULL;
    if (gbx_batch_new(s_store, &b) != GBX_OK)
        return s_die("no batch");
    int ok = 1;
    size_t la = 0, lb = 0;
    uint8_t *va = NULL, *vb = NULL;
    if (strcmp(act, "edit") == 0) {
        ok = (va = s_get(a, &la)) != NULL;
        if (ok) {
            s_edit(va, la);
            ok = s_put(b, a, va, la);
        }
    } else if (strcmp(act, "delete") == 0) {
        ok = s_del(b, a);
    } else if (strcmp(act, "swap") == 0 && argc > 4) {
        ok = (va = s_get(a, &la)) && (vb = s_get(bidx, &lb)) && s_put(b, a, vb, lb) &&
             s_put(b, bidx, va, la);
    } else if (strcmp(act, "truncate") == 0 || strcmp(act, "cut") == 0) {
        for (uint64_t i = a; ok && i < h.size; i++)
            ok = s_del(b, i);
        if (ok && strcmp(act, "cut") == 0) {
            gbx_merkle_peaks_t pk;
            gbx_hash_t chain = {0};
            size_t len = 0;
            uint8_t *last = a ? s_get(a - 1, &len) : NULL;
            gbx_trail_rec_t r;
            if (last && gbx_trail_parse(last, len, &r) == GBX_OK)
                memcpy(chain, r.chain, 32);
            free(last);
            uint64_t cp_size = 0;
            gbx_checkpoint_t cp;
            for (uint64_t at = 0; gbx_trail_checkpoint_after(s_store, at, &cp) == GBX_OK;
                 at = cp.size) {
                uint8_t key[9] = {'c'};
                for (int j = 0; j < 8; j++)
                    key[1 + j] = (uint8_t)(cp.size >> (56 - 8 * j));
                if (cp.size > a)
                    ok = ok && gbx_batch_delete(b, GBX_KS_TRAIL, key, sizeof key) == GBX_OK;
                else
                    cp_size = cp.size;
            }
            ok = ok && gbx_trail_peaks_at(s_store, a, &pk) == GBX_OK &&
                 s_put_head(b, &pk, chain, cp_size);
        }
    } else if (strcmp(act, "rechain") == 0) {
        ok = s_rechain(b, a, h.size);
    } else if (strcmp(act, "forge-cp") == 0) {
        gbx_checkpoint_t cp;
        gbx_identity_t *fake = NULL;
        char text[GBX_CHECKPOINT_TEXT_MAX];
        uint8_t key[9] = {'c'};
        for (int j = 0; j < 8; j++)
            key[1 + j] = (uint8_t)(a >> (56 - 8 * j));
        ok = gbx_trail_checkpoint(s_store, a, &cp) == GBX_OK &&
             gbx_identity_generate(cp.node, &fake) == GBX_OK;
        if (ok) {
            cp.root[0] ^= 1;
            ok = gbx_checkpoint_sign(&cp, gbx_identity_sign_sk(fake)) == GBX_OK &&
                 gbx_checkpoint_format(&cp, text, sizeof text) == GBX_OK &&
                 gbx_batch_put(b, GBX_KS_TRAIL, key, sizeof key, text, strlen(text)) == GBX_OK;
        }
        gbx_identity_destroy(&fake);
    } else {
        ok = 0;
    }
    free(va);
    free(vb);
    if (!ok || gbx_store_commit(s_store, &b) != GBX_OK) {
        gbx_batch_destroy(&b);
        return s_die("the change could not be made (bad action or index?)");
    }
    gbx_store_destroy(&s_store);
    return 0;
}
