/*  audit-tamper: what an attacker with write access to a stopped node's
    data dir would do to its audit trail, for tests/tools/audit.sh. Writes
    straight into the store's keyspaces (no trail sealing: a batch without
    appended records), as a forger with RocksDB and the format would: the
    records are read, changed, and written back one per segment.

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
      junk-cp S       an unreadable value stored as a checkpoint of S records
      move-anchor N [drop]
                      the retention anchor moved to checkpoint N (its honest
                      chain and peaks), the records below kept, or with
                      "drop" deleted
    Exit 0 done, 2 usage or store errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/checkpoint.h"
#include "gbx/identity.h"
#include "store.h"
#include "trail.h"

static gbx_store_t *s_store;

/*  The trail's records, loaded: record k's text and the position it is
    written back at (its own segment: what a forger editing values writes). */
typedef struct {
    uint8_t *text;
    size_t len;
    uint64_t pos;
} s_rec_t;
static s_rec_t *s_recs;
static size_t s_n;

static int s_die(const char *what)
{
    fprintf(stderr, "audit-tamper: %s\n", what);
    gbx_store_destroy(&s_store);
    return 2;
}

static int s_load(void)
{
    gbx_trail_iter_t *it = NULL;
    if (gbx_trail_iter_new(s_store, 0, &it) != GBX_OK)
        return 0;
    const uint8_t *v;
    size_t len, cap = 0;
    while (gbx_trail_iter_next(it, &v, &len)) {
        gbx_trail_rec_t r;
        if (s_n == cap) {
            cap = cap ? 2 * cap : 256;
            s_recs = realloc(s_recs, cap * sizeof *s_recs);
        }
        s_recs[s_n].text = malloc(len);
        memcpy(s_recs[s_n].text, v, len);
        s_recs[s_n].len = len;
        s_recs[s_n].pos = gbx_trail_parse(v, len, &r) == GBX_OK ? r.index : s_n;
        s_n++;
    }
    gbx_trail_iter_destroy(&it);
    return 1;
}

/*  The loaded record at position I; NULL if none. */
static s_rec_t *s_at(uint64_t i)
{
    for (size_t k = 0; k < s_n; k++)
        if (s_recs[k].pos == i)
            return &s_recs[k];
    return NULL;
}

/*  Every segment deleted, the loaded records written back one per segment. */
static int s_rewrite(gbx_batch_t *b)
{
    gbx_store_iter_t *it = NULL;
    int ok = gbx_store_iter_new(s_store, GBX_KS_AUDIT, NULL, 0, &it) == GBX_OK;
    for (; ok && gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        ok = gbx_batch_delete(b, GBX_KS_AUDIT, k, klen) == GBX_OK;
    }
    gbx_store_iter_destroy(&it);
    for (size_t k = 0; ok && k < s_n; k++) {
        uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
        gbx_store_seq_key(s_recs[k].pos, key);
        ok = gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, s_recs[k].text, s_recs[k].len) ==
             GBX_OK;
    }
    return ok;
}

/*  Drops the loaded records at positions >= N (or == N when ONE). */
static void s_drop(uint64_t n, int one)
{
    size_t w = 0;
    for (size_t k = 0; k < s_n; k++)
        if (one ? s_recs[k].pos != n : s_recs[k].pos < n)
            s_recs[w++] = s_recs[k];
        else
            free(s_recs[k].text);
    s_n = w;
}

/*  Changes one character of the record's event name (its first field after v=1). */
static void s_edit(uint8_t *v, size_t len)
{
    uint8_t *e = memmem(v, len, "event=", 6);
    if (e && e + 6 < v + len)
        e[6] = e[6] == 'X' ? 'Y' : 'X';
}

/*  The head ('h', broker/trail.c's layout): cp size, cp ms, then be64
    size, chain, npeaks, peaks. */
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

/*  Record FROM edited and the chain lines from it on rebuilt, the head too. */
static int s_rechain(gbx_batch_t *b, uint64_t from)
{
    gbx_hash_t chain = {0};
    gbx_merkle_peaks_t pk;
    gbx_merkle_peaks_init(&pk);
    for (size_t k = 0; k < s_n; k++) {
        s_rec_t *r = &s_recs[k];
        gbx_trail_rec_t p;
        if (r->pos == from)
            s_edit(r->text, r->len);
        if (gbx_trail_parse(r->text, r->len, &p) != GBX_OK)
            return 0;
        gbx_trail_chain(chain, p.leaf, chain);
        gbx_merkle_peaks_append(&pk, p.leaf, NULL, NULL);
        if (r->pos >= from) {
            gbx_hex(chain, 32, (char *)r->text + r->len - 65); /* "chain=" 64 hex "\n" */
            r->text[r->len - 1] = '\n';
        }
    }
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(s_store), &h);
    return s_rewrite(b) && s_put_head(b, &pk, chain, h.checkpoint);
}

static void s_cp_key(uint64_t size, uint8_t key[9])
{
    key[0] = 'c';
    for (int j = 0; j < 8; j++)
        key[1 + j] = (uint8_t)(size >> (56 - 8 * j));
}

/*  Records N and after gone, the head rewritten to N, later checkpoints deleted. */
static int s_cut(gbx_batch_t *b, uint64_t n)
{
    gbx_merkle_peaks_t pk;
    gbx_hash_t chain = {0};
    s_rec_t *last = n ? s_at(n - 1) : NULL;
    gbx_trail_rec_t r;
    if (last && gbx_trail_parse(last->text, last->len, &r) == GBX_OK)
        memcpy(chain, r.chain, 32);
    uint64_t cp_size = 0;
    gbx_checkpoint_t cp;
    int ok = gbx_trail_peaks_at(s_store, n, &pk) == GBX_OK;
    for (uint64_t at = 0; ok && gbx_trail_checkpoint_after(s_store, at, &cp) == GBX_OK;
         at = cp.size) {
        uint8_t key[9];
        s_cp_key(cp.size, key);
        if (cp.size > n)
            ok = gbx_batch_delete(b, GBX_KS_TRAIL, key, sizeof key) == GBX_OK;
        else
            cp_size = cp.size;
    }
    s_drop(n, 0);
    return ok && s_rewrite(b) && s_put_head(b, &pk, chain, cp_size);
}

/*  The checkpoint of S records given another root, signed with a fresh key. */
static int s_forge_cp(gbx_batch_t *b, uint64_t size)
{
    gbx_checkpoint_t cp;
    gbx_identity_t *fake = NULL;
    char text[GBX_CHECKPOINT_TEXT_MAX];
    uint8_t key[9];
    s_cp_key(size, key);
    int ok = gbx_trail_checkpoint(s_store, size, &cp) == GBX_OK &&
             gbx_identity_generate(cp.node, &fake) == GBX_OK;
    if (ok) {
        cp.root[0] ^= 1;
        ok = gbx_checkpoint_sign(&cp, gbx_identity_sign_sk(fake)) == GBX_OK &&
             gbx_checkpoint_format(&cp, text, sizeof text) == GBX_OK &&
             gbx_batch_put(b, GBX_KS_TRAIL, key, sizeof key, text, strlen(text)) == GBX_OK;
    }
    gbx_identity_destroy(&fake);
    return ok;
}

/*  The anchor ('a', broker/trail.c's layout: be64 size, chain, npeaks,
    peaks) moved to N; the records below N dropped when DROP. */
static int s_move_anchor(gbx_batch_t *b, uint64_t n, int drop)
{
    gbx_merkle_peaks_t pk;
    s_rec_t *last = n ? s_at(n - 1) : NULL;
    gbx_trail_rec_t r;
    if (!last || gbx_trail_parse(last->text, last->len, &r) != GBX_OK ||
        gbx_trail_peaks_at(s_store, n, &pk) != GBX_OK)
        return 0;
    uint8_t v[9 + 32 + sizeof pk.peak];
    uint64_t size = pk.size;
    for (int j = 7; j >= 0; j--, size >>= 8)
        v[j] = (uint8_t)size;
    memcpy(v + 8, r.chain, 32);
    v[40] = (uint8_t)pk.npeaks;
    memcpy(v + 41, pk.peak, pk.npeaks * 32u);
    uint8_t key = 'a';
    if (gbx_batch_put(b, GBX_KS_TRAIL, &key, 1, v, 41 + pk.npeaks * 32u) != GBX_OK)
        return 0;
    if (!drop)
        return 1;
    size_t w = 0;
    for (size_t k = 0; k < s_n; k++)
        if (s_recs[k].pos >= n)
            s_recs[w++] = s_recs[k];
        else
            free(s_recs[k].text);
    s_n = w;
    return s_rewrite(b);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return s_die("usage: audit-tamper DATA_DIR ACTION ARGS (see the source)");
    if (gbx_store_open(argv[1], NULL, &s_store) != GBX_OK || !s_load())
        return s_die("cannot open the store");
    const char *act = argv[2];
    uint64_t a = strtoull(argv[3], NULL, 10), bidx = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    gbx_batch_t *b = NULL;
    if (gbx_batch_new(s_store, &b) != GBX_OK)
        return s_die("no batch");
    int ok = 0;
    s_rec_t *ra = s_at(a), *rb = s_at(bidx);
    if (strcmp(act, "edit") == 0 && ra) {
        s_edit(ra->text, ra->len);
        ok = s_rewrite(b);
    } else if (strcmp(act, "delete") == 0 && ra) {
        s_drop(a, 1);
        ok = s_rewrite(b);
    } else if (strcmp(act, "swap") == 0 && ra && rb && argc > 4) {
        uint64_t p = ra->pos;
        ra->pos = rb->pos;
        rb->pos = p;
        ok = s_rewrite(b);
    } else if (strcmp(act, "truncate") == 0) {
        s_drop(a, 0);
        ok = s_rewrite(b);
    } else if (strcmp(act, "cut") == 0) {
        ok = s_cut(b, a);
    } else if (strcmp(act, "rechain") == 0) {
        ok = s_rechain(b, a);
    } else if (strcmp(act, "forge-cp") == 0) {
        ok = s_forge_cp(b, a);
    } else if (strcmp(act, "junk-cp") == 0) {
        uint8_t key[9];
        s_cp_key(a, key);
        ok = gbx_batch_put(b, GBX_KS_TRAIL, key, sizeof key, "x", 1) == GBX_OK;
    } else if (strcmp(act, "move-anchor") == 0) {
        ok = s_move_anchor(b, a, argc > 4 && strcmp(argv[4], "drop") == 0);
    }
    for (size_t k = 0; k < s_n; k++)
        free(s_recs[k].text);
    free(s_recs);
    if (!ok || gbx_store_commit(s_store, &b) != GBX_OK) {
        gbx_batch_destroy(&b);
        return s_die("the change could not be made (bad action or index?)");
    }
    gbx_store_destroy(&s_store);
    return 0;
}
