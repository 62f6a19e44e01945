/*  trail.c: owns the audit trail: numbering, chain, Merkle tree,
    checkpoints, retention, and the checks gbx-audit runs (broker/trail.h). */
#include "trail.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_KEY_HEAD   'h'
#define S_KEY_ANCHOR 'a'
#define S_KEY_NODE   'n'
#define S_KEY_CP     'c'
#define S_HEAD_FIXED (3 * 8 + GBX_MERKLE_HASH + 1) /* size, cp size, cp ms, chain, npeaks */

/*  What the trail has written: the tree (its size is the trail's), the
    chain's head, the latest checkpoint. */
typedef struct {
    gbx_merkle_peaks_t peaks;
    gbx_hash_t chain;
    uint64_t cp_size, cp_ms;
    uint64_t first; /* records before it were pruned */
} s_state_t;

struct gbx_trail {
    gbx_store_t *store;
    pthread_mutex_t mx; /* guards cur for readers on other threads */
    s_state_t cur;      /* as written */
    s_state_t pending;  /* sealed into a batch whose write has not returned */
    int has_pending;
    _Atomic uint64_t durable;
    /* the signer */
    char node[GBX_ID_MAX + 1];
    uint8_t *sign_sk; /* sodium_malloc'ed; NULL: no checkpoints */
    uint64_t every;
    uint64_t (*clock)(void *);
    void *clock_arg;
    char *seg; /* the segment being sealed (reused) */
    size_t seg_len, seg_cap;
};

/* ---------------------------------------------------------------- helpers */

static void s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t s_wall_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t s_node_key(unsigned level, uint64_t index, uint8_t key[10])
{
    key[0] = S_KEY_NODE;
    key[1] = (uint8_t)level;
    s_be64(key + 2, index);
    return 10;
}

static size_t s_cp_key(uint64_t size, uint8_t key[9])
{
    key[0] = S_KEY_CP;
    s_be64(key + 1, size);
    return 9;
}

/*  Peaks and chain as bytes: be64 size, chain, u8 npeaks, peaks. */
static size_t s_put_peaks(uint8_t *p, const gbx_merkle_peaks_t *pk, const gbx_hash_t chain)
{
    s_be64(p, pk->size);
    memcpy(p + 8, chain, GBX_MERKLE_HASH);
    p[8 + GBX_MERKLE_HASH] = (uint8_t)pk->npeaks;
    memcpy(p + 9 + GBX_MERKLE_HASH, pk->peak, pk->npeaks * sizeof pk->peak[0]);
    return 9 + GBX_MERKLE_HASH + pk->npeaks * sizeof pk->peak[0];
}

static int s_get_peaks(const uint8_t *p, size_t len, gbx_merkle_peaks_t *pk, gbx_hash_t chain)
{
    if (len < 9 + GBX_MERKLE_HASH)
        return 0;
    gbx_merkle_peaks_init(pk);
    pk->size = s_get64(p);
    memcpy(chain, p + 8, GBX_MERKLE_HASH);
    pk->npeaks = p[8 + GBX_MERKLE_HASH];
    if (pk->size == UINT64_MAX || pk->npeaks >= GBX_MERKLE_MAX_DEPTH ||
        pk->npeaks != (unsigned)__builtin_popcountll(pk->size) ||
        len != 9 + GBX_MERKLE_HASH + pk->npeaks * sizeof pk->peak[0])
        return 0;
    memcpy(pk->peak, p + 9 + GBX_MERKLE_HASH, pk->npeaks * sizeof pk->peak[0]);
    return 1;
}

void gbx_trail_chain(const gbx_hash_t prev, const gbx_hash_t leaf, gbx_hash_t out)
{
    uint8_t in[1 + 2 * GBX_MERKLE_HASH];
    in[0] = 0x02;
    memcpy(in + 1, prev, GBX_MERKLE_HASH);
    memcpy(in + 1 + GBX_MERKLE_HASH, leaf, GBX_MERKLE_HASH);
    crypto_generichash(out, GBX_MERKLE_HASH, in, sizeof in, NULL, 0);
}

/* ---------------------------------------------------------------- open */

gbx_err_t gbx_trail_open(gbx_store_t *store, gbx_trail_t **out)
{
    if (!store || !out)
        return GBX_E_ARG;
    *out = NULL;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_trail_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->store = store;
    pthread_mutex_init(&self->mx, NULL);
    gbx_merkle_peaks_init(&self->cur.peaks);
    uint8_t key = S_KEY_HEAD, *v = NULL;
    size_t vlen = 0;
    gbx_err_t rc = gbx_store_get(store, GBX_KS_TRAIL, &key, 1, &v, &vlen);
    if (rc == GBX_OK && v) {
        if (vlen < 16 || !s_get_peaks(v + 16, vlen - 16, &self->cur.peaks, self->cur.chain))
            rc = GBX_E_AUDIT_BROKEN; /* the head is ours alone to write */
        else {
            self->cur.cp_size = s_get64(v);
            self->cur.cp_ms = s_get64(v + 8);
        }
    }
    free(v);
    if (rc != GBX_OK) {
        gbx_trail_destroy(&self);
        return rc;
    }
    if (rc == GBX_OK) {
        gbx_hash_t chain;
        gbx_merkle_peaks_t peaks;
        rc = gbx_trail_anchor(store, &self->cur.first, chain, &peaks);
    }
    if (rc != GBX_OK) {
        gbx_trail_destroy(&self);
        return rc;
    }
    atomic_store(&self->durable, self->cur.peaks.size);
    *out = self;
    return GBX_OK;
}

void gbx_trail_destroy(gbx_trail_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_trail_t *self = *self_p;
    if (self->sign_sk)
        sodium_free(self->sign_sk);
    free(self->seg);
    pthread_mutex_destroy(&self->mx);
    free(self);
    *self_p = NULL;
}

gbx_err_t gbx_trail_set_signer(gbx_trail_t *self, const char *node, const uint8_t *sign_sk,
                               uint64_t every, uint64_t (*clock)(void *), void *clock_arg)
{
    if (!self || !node || !gbx_id_valid(node) || !sign_sk || every == 0)
        return GBX_E_ARG;
    if (!self->sign_sk && !(self->sign_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)))
        return GBX_E_NOMEM;
    memcpy(self->sign_sk, sign_sk, crypto_sign_SECRETKEYBYTES);
    snprintf(self->node, sizeof self->node, "%s", node);
    self->every = every;
    self->clock = clock ? clock : s_wall_ms;
    self->clock_arg = clock_arg;
    return GBX_OK;
}

/* ---------------------------------------------------------------- sealing */

typedef struct {
    gbx_batch_t *batch;
    gbx_err_t rc;
} s_nodes_t;

static void s_on_node(void *arg, unsigned level, uint64_t index, const gbx_hash_t h)
{
    s_nodes_t *c = arg;
    if (level < GBX_TRAIL_NODE_MIN_LEVEL || c->rc != GBX_OK)
        return;
    uint8_t key[10];
    c->rc = gbx_batch_put(c->batch, GBX_KS_TRAIL, key, s_node_key(level, index, key), h,
                          GBX_MERKLE_HASH);
}

/*  Room for N more bytes in the trail's segment buffer. */
static int s_seg_room(gbx_trail_t *self, size_t n)
{
    if (n <= self->seg_cap - self->seg_len)
        return 1;
    size_t cap = self->seg_cap ? self->seg_cap : 16384;
    while (cap - self->seg_len < n)
        cap *= 2;
    char *b = realloc(self->seg, cap);
    if (!b)
        return 0;
    self->seg = b;
    self->seg_cap = cap;
    return 1;
}

/*  Seals record REC (LEN bytes) as number st->peaks.size at the end of the
    trail's segment buffer. */
static gbx_err_t s_seal_one(gbx_trail_t *self, s_state_t *st, const char *rec, size_t len,
                            s_nodes_t *nodes)
{
    if (!s_seg_room(self, len + 1 + GBX_TRAIL_SEAL_BYTES))
        return GBX_E_NOMEM;
    char *buf = self->seg + self->seg_len;
    memcpy(buf, rec, len);
    size_t n = len;
    if (n && buf[n - 1] != '\n') /* records end with a newline; make sure */
        buf[n++] = '\n';
    n += (size_t)sprintf(buf + n, "i=%" PRIu64 "\n", st->peaks.size);
    gbx_hash_t leaf;
    gbx_merkle_leaf((const uint8_t *)buf, n, leaf);
    gbx_trail_chain(st->chain, leaf, st->chain);
    memcpy(buf + n, "chain=", 6);
    gbx_hex(st->chain, GBX_MERKLE_HASH, buf + n + 6);
    n += 6 + 2 * GBX_MERKLE_HASH;
    buf[n++] = '\n';
    self->seg_len += n;
    gbx_merkle_peaks_append(&st->peaks, leaf, s_on_node, nodes);
    return nodes->rc;
}

/*  Signs and puts the checkpoint of ST's whole tree. */
static gbx_err_t s_checkpoint(gbx_trail_t *self, s_state_t *st, gbx_batch_t *batch)
{
    gbx_checkpoint_t cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.node, sizeof cp.node, "%s", self->node);
    cp.size = st->peaks.size;
    cp.at_ms = self->clock(self->clock_arg);
    memcpy(cp.chain, st->chain, GBX_MERKLE_HASH);
    gbx_err_t rc = gbx_merkle_peaks_root(&st->peaks, cp.root);
    if (rc == GBX_OK)
        rc = gbx_checkpoint_sign(&cp, self->sign_sk);
    char text[GBX_CHECKPOINT_TEXT_MAX];
    if (rc == GBX_OK)
        rc = gbx_checkpoint_format(&cp, text, sizeof text);
    uint8_t key[9];
    if (rc == GBX_OK)
        rc = gbx_batch_put(batch, GBX_KS_TRAIL, key, s_cp_key(cp.size, key), text, strlen(text));
    if (rc == GBX_OK) {
        st->cp_size = cp.size;
        st->cp_ms = cp.at_ms;
    }
    return rc;
}

gbx_err_t gbx_trail_seal(gbx_trail_t *self, gbx_batch_t *batch, const char *text, const size_t *off,
                         size_t n, int checkpoint)
{
    if (!self || !batch || (n && (!text || !off)))
        return GBX_E_ARG;
    s_state_t st = self->cur; /* only the committer changes cur */
    s_nodes_t nodes = {batch, GBX_OK};
    uint8_t akey = S_KEY_ANCHOR, *av = NULL;
    size_t avlen = 0;
    gbx_err_t rc = gbx_batch_get(batch, GBX_KS_TRAIL, &akey, 1, &av, &avlen);
    if (rc == GBX_OK && av && avlen >= 8) /* this batch may prune (gbx_trail_prune) */
        st.first = s_get64(av);
    free(av);
    /* the batch's records, sealed, are one segment under its first index */
    uint64_t seg_first = st.peaks.size;
    self->seg_len = 0;
    for (size_t k = 0; rc == GBX_OK && k < n; k++)
        rc = s_seal_one(self, &st, text + off[k], off[k + 1] - off[k], &nodes);
    if (rc == GBX_OK && n) {
        uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
        gbx_store_seq_key(seg_first, key);
        rc = gbx_batch_put(batch, GBX_KS_AUDIT, key, sizeof key, self->seg, self->seg_len);
    }
    uint64_t uncovered = st.peaks.size - st.cp_size;
    if (rc == GBX_OK && self->sign_sk && uncovered > 0 && (checkpoint || uncovered >= self->every))
        rc = s_checkpoint(self, &st, batch);
    if (rc == GBX_OK && (n || st.cp_size != self->cur.cp_size)) {
        uint8_t head[16 + 9 + GBX_MERKLE_HASH + sizeof st.peaks.peak];
        s_be64(head, st.cp_size);
        s_be64(head + 8, st.cp_ms);
        size_t len = 16 + s_put_peaks(head + 16, &st.peaks, st.chain);
        uint8_t key = S_KEY_HEAD;
        rc = gbx_batch_put(batch, GBX_KS_TRAIL, &key, 1, head, len);
    }
    if (rc != GBX_OK)
        return rc;
    self->pending = st;
    self->has_pending = 1;
    return GBX_OK;
}

void gbx_trail_settle(gbx_trail_t *self, int written, int durable)
{
    if (!self || !self->has_pending)
        return;
    self->has_pending = 0;
    if (!written)
        return;
    pthread_mutex_lock(&self->mx);
    self->cur = self->pending;
    pthread_mutex_unlock(&self->mx);
    if (durable)
        gbx_trail_synced(self, self->cur.peaks.size);
}

void gbx_trail_synced(gbx_trail_t *self, uint64_t records)
{
    if (!self)
        return;
    uint64_t cur = atomic_load(&self->durable);
    while (cur < records && !atomic_compare_exchange_weak(&self->durable, &cur, records))
        ;
}

/* ------------------------------------------------------------------ head */

uint64_t gbx_trail_size(gbx_trail_t *self)
{
    if (!self)
        return 0;
    pthread_mutex_lock(&self->mx);
    uint64_t n = self->cur.peaks.size;
    pthread_mutex_unlock(&self->mx);
    return n;
}

void gbx_trail_head(gbx_trail_t *self, gbx_trail_head_t *out)
{
    memset(out, 0, sizeof *out);
    if (!self)
        return;
    pthread_mutex_lock(&self->mx);
    out->size = self->cur.peaks.size;
    out->checkpoint = self->cur.cp_size;
    out->checkpoint_ms = self->cur.cp_ms;
    memcpy(out->chain, self->cur.chain, GBX_MERKLE_HASH);
    out->first = self->cur.first;
    pthread_mutex_unlock(&self->mx);
    out->durable = atomic_load(&self->durable);
}

/* ------------------------------------------------------------- reading */

gbx_err_t gbx_trail_parse(const uint8_t *rec, size_t len, gbx_trail_rec_t *out)
{
    static const size_t chain_line = 6 + 2 * GBX_MERKLE_HASH + 1; /* "chain=<hex>\n" */
    if (!rec || !out)
        return GBX_E_ARG;
    const char *t = (const char *)rec;
    if (len < chain_line + 4 || t[len - 1] != '\n' || memcmp(t + len - chain_line, "chain=", 6))
        return GBX_E_MALFORMED;
    if (gbx_unhex(t + len - chain_line + 6, 2 * GBX_MERKLE_HASH, out->chain, GBX_MERKLE_HASH) !=
        GBX_OK)
        return GBX_E_MALFORMED;
    size_t sealed = len - chain_line; /* the leaf covers [0, sealed) */
    if (t[sealed - 1] != '\n')
        return GBX_E_MALFORMED;
    /* the i= line ends at sealed - 1 and starts after the previous newline */
    size_t start = sealed - 1;
    while (start > 0 && t[start - 1] != '\n')
        start--;
    if (sealed - start < 4 || memcmp(t + start, "i=", 2) != 0)
        return GBX_E_MALFORMED;
    uint64_t idx = 0;
    for (size_t k = start + 2; k < sealed - 1; k++) {
        if (t[k] < '0' || t[k] > '9' || idx > (UINT64_MAX - 9) / 10 ||
            (k == start + 2 && t[k] == '0' && k + 1 < sealed - 1))
            return GBX_E_MALFORMED;
        idx = idx * 10 + (uint64_t)(t[k] - '0');
    }
    out->index = idx;
    out->text = t;
    out->text_len = start;
    gbx_merkle_leaf(rec, sealed, out->leaf);
    return GBX_OK;
}

/* ---------------------------------------------------------- record reads */

struct gbx_trail_iter {
    gbx_store_iter_t *it;
    uint64_t skip;   /* records still to pass over in the first segment */
    const char *seg; /* the current segment (the iterator's bytes) */
    size_t len, at;  /* its length; where the next record starts */
    int started;
};

gbx_err_t gbx_trail_iter_new(gbx_store_t *store, uint64_t from, gbx_trail_iter_t **out)
{
    if (!store || !out)
        return GBX_E_ARG;
    *out = NULL;
    gbx_trail_iter_t *t = calloc(1, sizeof *t);
    if (!t)
        return GBX_E_NOMEM;
    gbx_err_t rc = gbx_store_iter_new(store, GBX_KS_AUDIT, NULL, 0, &t->it);
    if (rc != GBX_OK) {
        free(t);
        return rc;
    }
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(from, key);
    gbx_store_iter_seek_for_prev(t->it, key, sizeof key); /* the segment holding FROM */
    if (gbx_store_iter_valid(t->it)) {
        size_t klen = 0;
        const uint8_t *k = gbx_store_iter_key(t->it, &klen);
        uint64_t first = klen == sizeof key ? gbx_store_seq_from_key(k) : from;
        t->skip = from - first;
    } else {
        gbx_store_iter_seek(t->it, key, sizeof key); /* nothing before: the first after */
    }
    *out = t;
    return GBX_OK;
}

void gbx_trail_iter_destroy(gbx_trail_iter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_store_iter_destroy(&(*self_p)->it);
    free(*self_p);
    *self_p = NULL;
}

/*  The end of the record starting at AT in SEG: after its "chain=" line (or
    the segment's end: a malformed record, for the checker to refuse). */
static size_t s_record_end(const char *seg, size_t len, size_t at)
{
    for (size_t p = at; p < len;) {
        const char *nl = memchr(seg + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - seg) + 1 : len;
        if (end - p >= 6 && memcmp(seg + p, "chain=", 6) == 0)
            return end;
        p = end;
    }
    return len;
}

int gbx_trail_iter_next(gbx_trail_iter_t *self, const uint8_t **rec, size_t *len)
{
    for (;;) {
        if (self->seg && self->at < self->len) {
            size_t end = s_record_end(self->seg, self->len, self->at);
            size_t start = self->at;
            self->at = end;
            if (self->skip) {
                self->skip--;
                continue;
            }
            *rec = (const uint8_t *)self->seg + start;
            *len = end - start;
            return 1;
        }
        if (self->started) {
            gbx_store_iter_next(self->it);
            self->skip = 0; /* FROM lay in a gap after the first segment */
        }
        self->started = 1;
        if (!gbx_store_iter_valid(self->it))
            return 0;
        self->seg = (const char *)gbx_store_iter_value(self->it, &self->len);
        self->at = 0;
    }
}

gbx_err_t gbx_trail_grep(gbx_store_t *store, uint64_t from, const void *needle, size_t nlen,
                         gbx_trail_grep_fn fn, void *arg, const atomic_int *stop, uint64_t *scanned)
{
    if (!store || !needle || !nlen || !fn)
        return GBX_E_ARG;
    gbx_trail_iter_t *it = NULL;
    gbx_err_t rc = gbx_trail_iter_new(store, from, &it);
    uint64_t n = 0;
    const uint8_t *rec;
    size_t len;
    while (rc == GBX_OK && gbx_trail_iter_next(it, &rec, &len)) {
        if ((++n & 4095) == 0 && stop && atomic_load(stop))
            break;
        if (memmem(rec, len, needle, nlen) && fn(arg, rec, len))
            break;
    }
    if (rc == GBX_OK)
        rc = gbx_trail_iter_error(it);
    gbx_trail_iter_destroy(&it);
    if (scanned)
        *scanned = n;
    return rc;
}

gbx_err_t gbx_trail_iter_error(gbx_trail_iter_t *self)
{
    return self ? gbx_store_iter_error(self->it) : GBX_E_ARG;
}

gbx_err_t gbx_trail_get(gbx_store_t *store, uint64_t index, uint8_t **rec, size_t *len)
{
    if (!store || !rec || !len)
        return GBX_E_ARG;
    *rec = NULL;
    *len = 0;
    gbx_trail_iter_t *it = NULL;
    gbx_err_t rc = gbx_trail_iter_new(store, index, &it);
    if (rc != GBX_OK)
        return rc;
    const uint8_t *r;
    size_t l;
    gbx_trail_rec_t parsed;
    if (gbx_trail_iter_next(it, &r, &l) && gbx_trail_parse(r, l, &parsed) == GBX_OK &&
        parsed.index == index) {
        *rec = malloc(l);
        if (*rec) {
            memcpy(*rec, r, l);
            *len = l;
        } else {
            rc = GBX_E_NOMEM;
        }
    } else {
        rc = gbx_trail_iter_error(it);
    }
    gbx_trail_iter_destroy(&it);
    return rc;
}

gbx_err_t gbx_trail_anchor(gbx_store_t *store, uint64_t *first, gbx_hash_t chain,
                           gbx_merkle_peaks_t *peaks)
{
    if (!store || !first || !chain || !peaks)
        return GBX_E_ARG;
    *first = 0;
    memset(chain, 0, GBX_MERKLE_HASH);
    gbx_merkle_peaks_init(peaks);
    uint8_t key = S_KEY_ANCHOR, *v = NULL;
    size_t vlen = 0;
    gbx_err_t rc = gbx_store_get(store, GBX_KS_TRAIL, &key, 1, &v, &vlen);
    if (rc == GBX_OK && v) {
        if (s_get_peaks(v, vlen, peaks, chain))
            *first = peaks->size;
        else
            rc = GBX_E_AUDIT_BROKEN;
    }
    free(v);
    return rc;
}

/*  A stored checkpoint's text, which must name the SIZE of its key. */
static gbx_err_t s_read_cp(const uint8_t *v, size_t vlen, uint64_t size, gbx_checkpoint_t *out)
{
    return gbx_checkpoint_parse((const char *)v, vlen, out) == GBX_OK && out->size == size
               ? GBX_OK
               : GBX_E_AUDIT_BROKEN;
}

gbx_err_t gbx_trail_checkpoint(gbx_store_t *store, uint64_t size, gbx_checkpoint_t *out)
{
    if (!store || !out)
        return GBX_E_ARG;
    uint8_t key[9], *v = NULL;
    size_t vlen = 0;
    gbx_err_t rc = gbx_store_get(store, GBX_KS_TRAIL, key, s_cp_key(size, key), &v, &vlen);
    if (rc == GBX_OK)
        rc = v ? s_read_cp(v, vlen, size, out) : GBX_E_STATE;
    free(v);
    return rc;
}

gbx_err_t gbx_trail_checkpoint_after(gbx_store_t *store, uint64_t index, gbx_checkpoint_t *out)
{
    if (!store || !out || index == UINT64_MAX)
        return GBX_E_ARG;
    uint8_t from[9], prefix = S_KEY_CP;
    s_cp_key(index + 1, from);
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_from(store, GBX_KS_TRAIL, &prefix, 1, from, sizeof from, &it);
    if (rc != GBX_OK)
        return rc;
    if (gbx_store_iter_valid(it)) {
        size_t vlen = 0, klen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        rc =
            klen == 9 ? s_read_cp(v, vlen, gbx_store_seq_from_key(k + 1), out) : GBX_E_AUDIT_BROKEN;
    } else {
        rc = gbx_store_iter_error(it);
        if (rc == GBX_OK)
            rc = GBX_E_STATE;
    }
    gbx_store_iter_destroy(&it);
    return rc;
}

gbx_err_t gbx_trail_put_cosigs(gbx_store_t *store, gbx_batch_t *batch, const gbx_checkpoint_t *cp)
{
    if (!store || !batch || !cp)
        return GBX_E_ARG;
    /* through the batch: another COSIGN of the same group may have added some */
    gbx_checkpoint_t have;
    uint8_t ckey[9], *cv = NULL;
    size_t cvlen = 0;
    gbx_err_t rc = gbx_batch_get(batch, GBX_KS_TRAIL, ckey, s_cp_key(cp->size, ckey), &cv, &cvlen);
    if (rc == GBX_OK)
        rc = cv ? s_read_cp(cv, cvlen, cp->size, &have) : GBX_E_STATE;
    free(cv);
    if (rc != GBX_OK)
        return rc;
    if (strcmp(have.node, cp->node) != 0 || have.at_ms != cp->at_ms ||
        sodium_memcmp(have.root, cp->root, GBX_MERKLE_HASH) != 0 ||
        sodium_memcmp(have.chain, cp->chain, GBX_MERKLE_HASH) != 0)
        return GBX_E_BAD_SIGNATURE; /* a cosignature of another checkpoint */
    for (unsigned i = 0; i < cp->ncosig; i++) {
        unsigned j = 0;
        while (j < have.ncosig && strcmp(have.cosig[j].node, cp->cosig[i].node) != 0)
            j++;
        if (j == have.ncosig) {
            if (have.ncosig == GBX_CHECKPOINT_MAX_COSIG)
                return GBX_E_STATE;
            have.ncosig++;
        }
        have.cosig[j] = cp->cosig[i];
    }
    char text[GBX_CHECKPOINT_TEXT_MAX];
    rc = gbx_checkpoint_format(&have, text, sizeof text);
    uint8_t key[9];
    if (rc == GBX_OK)
        rc = gbx_batch_put(batch, GBX_KS_TRAIL, key, s_cp_key(cp->size, key), text, strlen(text));
    return rc;
}

/* ----------------------------------------------------------- tree reads */

typedef struct {
    gbx_store_t *store;
    uint64_t first; /* the anchor */
    gbx_merkle_peaks_t anchor;
} s_reader_t;

static gbx_err_t s_reader_init(s_reader_t *r, gbx_store_t *store)
{
    r->store = store;
    gbx_hash_t chain;
    return gbx_trail_anchor(store, &r->first, chain, &r->anchor);
}

static gbx_err_t s_leaf(s_reader_t *r, uint64_t index, gbx_hash_t out)
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    gbx_err_t rc = gbx_trail_get(r->store, index, &v, &vlen);
    if (rc == GBX_OK && !v)
        rc = index < r->first ? GBX_E_STATE : GBX_E_AUDIT_BROKEN;
    gbx_trail_rec_t rec;
    if (rc == GBX_OK && gbx_trail_parse(v, vlen, &rec) != GBX_OK)
        rc = GBX_E_AUDIT_BROKEN;
    if (rc == GBX_OK)
        memcpy(out, rec.leaf, GBX_MERKLE_HASH);
    free(v);
    return rc;
}

/*  MTH(D[lo:hi]) of the stored tree: a stored node, an anchor peak, or
    the two halves. */
static gbx_err_t s_mth(void *arg, uint64_t lo, uint64_t hi, gbx_hash_t out)
{
    s_reader_t *r = arg;
    uint64_t n = hi - lo;
    if (n == 0)
        return GBX_E_ARG;
    if ((n & (n - 1)) == 0 && lo % n == 0) { /* a complete subtree */
        unsigned level = (unsigned)__builtin_ctzll(n);
        if (level >= GBX_TRAIL_NODE_MIN_LEVEL) {
            uint8_t key[10], *v = NULL;
            size_t vlen = 0;
            gbx_err_t rc = gbx_store_get(r->store, GBX_KS_TRAIL, key,
                                         s_node_key(level, lo >> level, key), &v, &vlen);
            if (rc == GBX_OK && v && vlen == GBX_MERKLE_HASH)
                memcpy(out, v, GBX_MERKLE_HASH);
            free(v);
            if (rc != GBX_OK || (v && vlen == GBX_MERKLE_HASH))
                return rc;
        }
        if (hi <= r->first) { /* pruned: only the anchor's peaks remain */
            uint64_t at = 0;
            for (unsigned p = 0; p < r->anchor.npeaks; p++) {
                uint64_t len = (uint64_t)1 << gbx_merkle_peak_level(r->first, p);
                if (at == lo && len == n) {
                    memcpy(out, r->anchor.peak[p], GBX_MERKLE_HASH);
                    return GBX_OK;
                }
                at += len;
            }
        }
        if (n == 1)
            return s_leaf(r, lo, out);
    }
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    gbx_hash_t left, right;
    gbx_err_t rc = s_mth(r, lo, lo + k, left);
    if (rc == GBX_OK)
        rc = s_mth(r, lo + k, hi, right);
    if (rc == GBX_OK)
        gbx_merkle_node(left, right, out);
    return rc;
}

gbx_err_t gbx_trail_peaks_at(gbx_store_t *store, uint64_t size, gbx_merkle_peaks_t *out)
{
    if (!store || !out)
        return GBX_E_ARG;
    s_reader_t r;
    gbx_err_t rc = s_reader_init(&r, store);
    gbx_merkle_peaks_init(out);
    uint64_t at = 0;
    unsigned np = (unsigned)__builtin_popcountll(size);
    for (unsigned p = 0; rc == GBX_OK && p < np; p++) {
        uint64_t len = (uint64_t)1 << gbx_merkle_peak_level(size, p);
        rc = s_mth(&r, at, at + len, out->peak[p]);
        at += len;
    }
    if (rc == GBX_OK) {
        out->size = size;
        out->npeaks = np;
    }
    return rc;
}

gbx_err_t gbx_trail_prove(gbx_store_t *store, uint64_t index, uint64_t size, gbx_hash_t *path,
                          size_t *path_len)
{
    if (!store)
        return GBX_E_ARG;
    s_reader_t r;
    gbx_err_t rc = s_reader_init(&r, store);
    if (rc == GBX_OK)
        rc = gbx_merkle_path_by(s_mth, &r, index, size, path, path_len);
    return rc;
}

gbx_err_t gbx_trail_consistency(gbx_store_t *store, uint64_t m, uint64_t n, gbx_hash_t *proof,
                                size_t *proof_len)
{
    if (!store)
        return GBX_E_ARG;
    s_reader_t r;
    gbx_err_t rc = s_reader_init(&r, store);
    if (rc == GBX_OK)
        rc = gbx_merkle_consistency_by(s_mth, &r, m, n, proof, proof_len);
    return rc;
}

/* ------------------------------------------------------------ retention */

/*  Queues the deletion of the segments of records FIRST .. UPTO - 1;
    GBX_E_AUDIT_BROKEN if one reaches past UPTO. */
static gbx_err_t s_delete_segments(gbx_store_t *store, gbx_batch_t *batch, uint64_t first,
                                   uint64_t upto)
{
    uint8_t from[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(first, from);
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_from(store, GBX_KS_AUDIT, NULL, 0, from, sizeof from, &it);
    for (; rc == GBX_OK && gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const char *v = (const char *)gbx_store_iter_value(it, &vlen);
        uint64_t at = klen == GBX_STORE_SEQ_KEY_BYTES ? gbx_store_seq_from_key(k) : UINT64_MAX;
        if (at >= upto)
            break;
        uint64_t n = 0;
        for (size_t p = 0; p < vlen; p = s_record_end(v, vlen, p))
            n++;
        if (at + n > upto)
            rc = GBX_E_AUDIT_BROKEN;
        else
            rc = gbx_batch_delete(batch, GBX_KS_AUDIT, k, klen);
    }
    if (rc == GBX_OK)
        rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    return rc;
}

gbx_err_t gbx_trail_prune(gbx_trail_t *self, gbx_batch_t *batch, uint64_t upto, uint64_t *deleted)
{
    if (!self || !batch || !deleted)
        return GBX_E_ARG;
    *deleted = 0;
    /* the first record kept as this batch leaves it (another prune of the
       same group may have moved it) */
    uint64_t first = 0;
    uint8_t akey = S_KEY_ANCHOR, *av = NULL;
    size_t avlen = 0;
    gbx_err_t rc = gbx_batch_get(batch, GBX_KS_TRAIL, &akey, 1, &av, &avlen);
    if (rc == GBX_OK && av && avlen >= 8)
        first = s_get64(av);
    free(av);
    if (rc != GBX_OK)
        return rc;
    if (upto <= first || upto > atomic_load(&self->durable))
        return GBX_E_ARG;
    gbx_checkpoint_t cp;
    if ((rc = gbx_trail_checkpoint(self->store, upto, &cp)) != GBX_OK)
        return rc;
    /* the anchor is what the checkpoint vouches for: check before deleting */
    gbx_merkle_peaks_t peaks;
    gbx_hash_t root;
    if ((rc = gbx_trail_peaks_at(self->store, upto, &peaks)) != GBX_OK)
        return rc;
    uint8_t *v = NULL;
    size_t vlen = 0;
    gbx_trail_rec_t last;
    if ((rc = gbx_trail_get(self->store, upto - 1, &v, &vlen)) != GBX_OK)
        return rc;
    if (!v || gbx_trail_parse(v, vlen, &last) != GBX_OK ||
        sodium_memcmp(last.chain, cp.chain, GBX_MERKLE_HASH) != 0 ||
        gbx_merkle_peaks_root(&peaks, root) != GBX_OK ||
        sodium_memcmp(root, cp.root, GBX_MERKLE_HASH) != 0) {
        free(v);
        return GBX_E_AUDIT_BROKEN;
    }
    free(v);
    /* whole segments: a checkpoint's size is the end of a commit's */
    rc = s_delete_segments(self->store, batch, first, upto);
    uint8_t anchor[9 + GBX_MERKLE_HASH + sizeof peaks.peak];
    if (rc == GBX_OK)
        rc = gbx_batch_put(batch, GBX_KS_TRAIL, &akey, 1, anchor,
                           s_put_peaks(anchor, &peaks, cp.chain));
    if (rc == GBX_OK) {
        *deleted = upto - first;
        /* the commit must seal this batch (the head's first record moves
           with it), and the trail after a prune starts signed */
        gbx_batch_checkpoint(batch);
    }
    return rc;
}

/* ------------------------------------------------------------ verifying */

void gbx_trail_check_init(gbx_trail_check_t *self, uint64_t first, const gbx_hash_t chain,
                          const gbx_merkle_peaks_t *peaks)
{
    memset(self, 0, sizeof *self);
    self->next = first;
    self->vouched = first;
    memcpy(self->chain, chain, GBX_MERKLE_HASH);
    if (peaks)
        self->peaks = *peaks;
    else
        gbx_merkle_peaks_init(&self->peaks);
}

gbx_err_t gbx_trail_check_record(gbx_trail_check_t *self, const uint8_t *rec, size_t len, char *why,
                                 size_t why_len)
{
    gbx_trail_rec_t r;
    if (gbx_trail_parse(rec, len, &r) != GBX_OK) {
        snprintf(why, why_len, "record %" PRIu64 " is not a sealed record (no i= and chain= lines)",
                 self->next);
        return GBX_E_AUDIT_BROKEN;
    }
    if (r.index != self->next) {
        snprintf(why, why_len,
                 "record %" PRIu64 " expected, record %" PRIu64
                 " found: records missing or out of order",
                 self->next, r.index);
        return GBX_E_AUDIT_BROKEN;
    }
    gbx_hash_t chain;
    gbx_trail_chain(self->chain, r.leaf, chain);
    if (sodium_memcmp(chain, r.chain, GBX_MERKLE_HASH) != 0) {
        snprintf(why, why_len,
                 "record %" PRIu64 " does not follow the chain: it was edited, or the record "
                 "before it was",
                 r.index);
        return GBX_E_AUDIT_BROKEN;
    }
    memcpy(self->chain, chain, GBX_MERKLE_HASH);
    gbx_merkle_peaks_append(&self->peaks, r.leaf, NULL, NULL);
    self->next++;
    self->records++;
    return GBX_OK;
}

gbx_err_t gbx_trail_check_checkpoint(gbx_trail_check_t *self, const gbx_checkpoint_t *cp,
                                     const uint8_t node_pk[GBX_KEY_BYTES], char *why,
                                     size_t why_len)
{
    if (cp->size != self->next || cp->size == 0) {
        snprintf(why, why_len, "checkpoint of %" PRIu64 " records checked after %" PRIu64, cp->size,
                 self->next);
        return GBX_E_ARG;
    }
    if (gbx_checkpoint_verify(cp, node_pk) != GBX_OK) {
        snprintf(why, why_len,
                 "checkpoint at %" PRIu64 " records: the signature is not %s's (forged)", cp->size,
                 cp->node);
        return GBX_E_AUDIT_BROKEN;
    }
    gbx_hash_t root;
    if (gbx_merkle_peaks_root(&self->peaks, root) != GBX_OK ||
        sodium_memcmp(root, cp->root, GBX_MERKLE_HASH) != 0 ||
        sodium_memcmp(self->chain, cp->chain, GBX_MERKLE_HASH) != 0) {
        snprintf(why, why_len,
                 "checkpoint at %" PRIu64 " records: the records give another root: some of "
                 "records %" PRIu64 "..%" PRIu64 " were rewritten, their chain too",
                 cp->size, self->vouched < cp->size ? self->vouched : 0, cp->size - 1);
        return GBX_E_AUDIT_BROKEN;
    }
    self->checkpoints++;
    self->vouched = cp->size;
    return GBX_OK;
}
