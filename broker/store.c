/*  store.c: owns the broker's RocksDB database (keyspaces, atomic synced
    batches, sequence counter). Implements issue 3, item 3 and 6 (storage). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "trail.h"

#define S_DEFAULT_CACHE ((size_t)16 * 1024 * 1024)
/*  Memory: when all memtables together reach S_WRITE_BUFFERS RocksDB's write
    buffer manager flushes the largest (a trigger, not a hard cap: eight
    keyspaces x 2 x S_MEMTABLE is the worst case), each at most S_MEMTABLE; the WAL is flushed away
   beyond S_WAL_MAX. With the block cache this keeps the store's memory under ~70 MiB whatever the
   queue depth (RocksDB's defaults: 64 MiB per memtable, two per keyspace, eight keyspaces, and no
   WAL limit); the tables' index and filter blocks are in the block cache too. */
#define S_WRITE_BUFFERS ((size_t)48 * 1024 * 1024)
#define S_MEMTABLE      ((size_t)16 * 1024 * 1024)
#define S_WAL_MAX       ((uint64_t)256 * 1024 * 1024)
#define S_ERR_MAX       512

static const char *const s_ks_names[GBX_KS_COUNT_] = {
    "messages", "queues", "dedupe", "audit", "dlq", "expiry", "meta", "held", "counters", "trail"};

struct gbx_store {
    char *dir;
    gbx_store_opts_t opts;
    rocksdb_t *db;
    rocksdb_options_t *dbopts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_options_t *audit_opts; /* the audit keyspace's (no bloom filters) */
    rocksdb_block_based_table_options_t *audit_bbto;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    /* every open column family ("default", ours, any a newer schema added) */
    rocksdb_column_family_handle_t **cfh;
    int ncf;
    rocksdb_column_family_handle_t *ks[GBX_KS_COUNT_];
    pthread_mutex_t commit_mx; /* serialises commits */
    uint64_t persisted_next;   /* meta next_seq as written; under commit_mx */
    rocksdb_writeoptions_t *wopts_nosync;
    _Atomic uint64_t durable_next; /* every seq below is synced (or sync is off) */
    _Atomic int broken;            /* a sync failed: nothing is written any more */
    _Atomic uint64_t next_seq;     /* next number gbx_store_next_seq hands out */
    pthread_mutex_t err_mx;
    char last_err[S_ERR_MAX];
    gbx_trail_t *trail; /* the audit trail; sealed under commit_mx */
};

struct gbx_batch {
    gbx_store_t *store;
    rocksdb_writebatch_wi_t *wb; /* indexed: gbx_batch_get sees what it holds */
    uint64_t seq_hi;             /* highest seq marked by gbx_batch_put_seq; 0 if none */
    unsigned marks;              /* save points set and not yet rolled back to */
    /* records appended for the trail (gbx_batch_append), in order: record
       k is text[off[k] .. off[k + 1]) */
    char *text;
    size_t text_len, text_cap;
    size_t *off; /* nrec + 1 entries once nrec > 0 */
    size_t nrec, off_cap;
    size_t *mark_nrec; /* nrec at each live mark */
    size_t mark_cap;
    int checkpoint; /* gbx_batch_checkpoint */
};

struct gbx_store_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    uint8_t *prefix;
    size_t plen;
    uint8_t *upper; /* exclusive upper bound of the prefix; NULL if none */
    uint8_t *lower; /* inclusive lower bound (gbx_store_iter_from); NULL if none */
    size_t llen;
};

/* ----------------------------------------------------------------- errors */

/*  Formats one error line, gives it to the logger and keeps it as the last
    error of SELF (may be NULL during open). Frees ROCKS_ERR (RocksDB's
    malloc'ed message, may be NULL). Returns RC. */
static gbx_err_t s_fail(gbx_store_t *self, const gbx_store_opts_t *opts, gbx_err_t rc,
                        char *rocks_err, const char *fmt, ...)
{
    char line[S_ERR_MAX];
    char what[S_ERR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "GBX-STORE-%s %s%s%s", gbx_err_name(rc), what,
             rocks_err ? " err=" : "", rocks_err ? rocks_err : "");
    if (rocks_err)
        rocksdb_free(rocks_err);
    if (self) {
        pthread_mutex_lock(&self->err_mx);
        snprintf(self->last_err, sizeof self->last_err, "%s", line);
        pthread_mutex_unlock(&self->err_mx);
    }
    if (opts && opts->log)
        opts->log(opts->log_arg, line);
    return rc;
}

void gbx_store_last_error(gbx_store_t *self, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    if (!self)
        return;
    pthread_mutex_lock(&self->err_mx);
    snprintf(buf, len, "%s", self->last_err);
    pthread_mutex_unlock(&self->err_mx);
}

/* ---------------------------------------------------------------- helpers */

gbx_trail_t *gbx_store_trail(gbx_store_t *self)
{
    return self ? self->trail : NULL;
}

const char *gbx_keyspace_name(gbx_keyspace_t ks)
{
    if ((int)ks < 0 || ks >= GBX_KS_COUNT_)
        return NULL;
    return s_ks_names[ks];
}

void gbx_store_seq_key(uint64_t seq, uint8_t key[GBX_STORE_SEQ_KEY_BYTES])
{
    for (int i = 7; i >= 0; i--) {
        key[i] = (uint8_t)(seq & 0xff);
        seq >>= 8;
    }
}

uint64_t gbx_store_seq_from_key(const uint8_t key[GBX_STORE_SEQ_KEY_BYTES])
{
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = (seq << 8) | key[i];
    return seq;
}

gbx_err_t gbx_store_queue_key(const char *dest, uint64_t seq, uint8_t *out, size_t cap, size_t *len)
{
    if (!dest || !out || !len)
        return GBX_E_ARG;
    size_t dlen = strnlen(dest, GBX_STORE_DEST_MAX + 1);
    if (dlen == 0 || dlen > GBX_STORE_DEST_MAX || cap < dlen + 1 + GBX_STORE_SEQ_KEY_BYTES)
        return GBX_E_ARG;
    memcpy(out, dest, dlen);
    out[dlen] = 0x00;
    gbx_store_seq_key(seq, out + dlen + 1);
    *len = dlen + 1 + GBX_STORE_SEQ_KEY_BYTES;
    return GBX_OK;
}

void gbx_store_opts_init(gbx_store_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->sync = true;
    opts->cache_bytes = S_DEFAULT_CACHE;
}

/*  Raises the atomic counter to at least V. */
static void s_raise_next(gbx_store_t *self, uint64_t v)
{
    uint64_t cur = atomic_load(&self->next_seq);
    while (cur < v && !atomic_compare_exchange_weak(&self->next_seq, &cur, v))
        ;
}

/*  Reads an 8-byte big-endian meta value; *found = 0 if absent. */
static gbx_err_t s_meta_u64(gbx_store_t *self, const char *name, uint64_t *v, int *found)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    *found = 0;
    *v = 0;
    gbx_err_t rc = gbx_store_get(self, GBX_KS_META, name, strlen(name), &val, &vlen);
    if (rc != GBX_OK)
        goto out;
    if (!val)
        goto out;
    if (vlen != 8) {
        rc = s_fail(self, &self->opts, GBX_E_STORE_FAILED, NULL,
                    "op=open dir=%s reason=meta-%s-length-%zu", self->dir, name, vlen);
        goto out;
    }
    *v = gbx_store_seq_from_key(val);
    *found = 1;
out:
    free(val);
    return rc;
}

/*  Checks (or, in a fresh database, writes) the schema version and
    recovers the sequence counter. */
static gbx_err_t s_recover(gbx_store_t *self)
{
    uint64_t schema = 0, next = 0;
    int have_schema = 0, have_next = 0;
    gbx_batch_t *batch = NULL;
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = s_meta_u64(self, GBX_STORE_META_SCHEMA, &schema, &have_schema);
    if (rc != GBX_OK)
        goto out;
    if (have_schema && schema > GBX_STORE_SCHEMA_VERSION) {
        rc = s_fail(self, &self->opts, GBX_E_STATE, NULL,
                    "op=open dir=%s reason=newer-schema found=%llu supported=%u", self->dir,
                    (unsigned long long)schema, GBX_STORE_SCHEMA_VERSION);
        goto out;
    }
    if (!have_schema) {
        uint8_t v[8];
        gbx_store_seq_key(GBX_STORE_SCHEMA_VERSION, v);
        rc = gbx_batch_new(self, &batch);
        if (rc == GBX_OK)
            rc = gbx_batch_put(batch, GBX_KS_META, GBX_STORE_META_SCHEMA,
                               strlen(GBX_STORE_META_SCHEMA), v, sizeof v);
        if (rc == GBX_OK)
            rc = gbx_store_commit(self, &batch);
        if (rc != GBX_OK)
            goto out;
    }
    rc = s_meta_u64(self, GBX_STORE_META_NEXT_SEQ, &next, &have_next);
    if (rc != GBX_OK)
        goto out;
    if (next < 1)
        next = 1;
    self->persisted_next = next;
    atomic_store(&self->durable_next, next);
    /* belt and braces: never below the last stored message */
    rc = gbx_store_iter_new(self, GBX_KS_MESSAGES, NULL, 0, &it);
    if (rc != GBX_OK)
        goto out;
    rocksdb_iter_seek_to_last(it->it);
    if (rocksdb_iter_valid(it->it)) {
        size_t klen = 0;
        const char *k = rocksdb_iter_key(it->it, &klen);
        if (klen == GBX_STORE_SEQ_KEY_BYTES) {
            uint64_t last = gbx_store_seq_from_key((const uint8_t *)k);
            if (last + 1 > next)
                next = last + 1;
        }
    }
    rc = gbx_store_iter_error(it);
    if (rc != GBX_OK)
        goto out;
    atomic_store(&self->next_seq, next);
out:
    gbx_store_iter_destroy(&it);
    gbx_batch_destroy(&batch);
    return rc;
}

/* ------------------------------------------------------------- open/close */

gbx_err_t gbx_store_open(const char *dir, const gbx_store_opts_t *opts, gbx_store_t **out)
{
    gbx_err_t rc = GBX_OK;
    gbx_store_t *self = NULL;
    char *err = NULL;
    char **listed = NULL;
    size_t nlisted = 0;
    const char **names = NULL;
    const rocksdb_options_t **cfopts = NULL;

    if (!dir || !*dir || !out)
        return GBX_E_ARG;
    *out = NULL;
    gbx_store_opts_t defaults;
    if (!opts) {
        gbx_store_opts_init(&defaults);
        opts = &defaults;
    }

    if (!opts->read_only && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s_fail(NULL, opts, GBX_E_IO, NULL, "op=mkdir dir=%s errno=%d (%s)", dir, errno,
                      strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return s_fail(NULL, opts, GBX_E_IO, NULL, "op=stat dir=%s reason=not-a-directory", dir);

    self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    pthread_mutex_init(&self->commit_mx, NULL);
    pthread_mutex_init(&self->err_mx, NULL);
    self->opts = *opts;
    self->dir = strdup(dir);
    if (!self->dir) {
        rc = GBX_E_NOMEM;
        goto out;
    }

    self->dbopts = rocksdb_options_create();
    self->bbto = rocksdb_block_based_options_create();
    self->cache = rocksdb_cache_create_lru(opts->cache_bytes ? opts->cache_bytes : S_DEFAULT_CACHE);
    self->wopts = rocksdb_writeoptions_create();
    self->wopts_nosync = rocksdb_writeoptions_create();
    self->ropts = rocksdb_readoptions_create();
    rocksdb_block_based_options_set_block_cache(self->bbto, self->cache);
    /* most point reads look for what is not there (a new message id in
       dedupe): bloom filters answer those without searching every table,
       in the SST files and in the memtables */
    rocksdb_block_based_options_set_filter_policy(self->bbto,
                                                  rocksdb_filterpolicy_create_bloom(10));
    /* the tables' index and filter blocks live in the block cache, so the
       store's memory does not grow with the number of tables on disk */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(self->bbto, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(self->bbto, 1);
    rocksdb_options_set_block_based_table_factory(self->dbopts, self->bbto);
    rocksdb_options_set_create_if_missing(self->dbopts, 1);
    rocksdb_options_set_create_missing_column_families(self->dbopts, 1);
    rocksdb_options_increase_parallelism(self->dbopts, 2);
    rocksdb_options_set_db_write_buffer_size(self->dbopts, S_WRITE_BUFFERS);
    rocksdb_options_set_write_buffer_size(self->dbopts, S_MEMTABLE);
    rocksdb_options_set_max_write_buffer_number(self->dbopts, 2);
    rocksdb_options_set_max_total_wal_size(self->dbopts, S_WAL_MAX);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(self->dbopts, 0.05);
    rocksdb_options_set_memtable_whole_key_filtering(self->dbopts, 1);
    /* RocksDB's own LOG file stays in the data dir, small */
    rocksdb_options_set_keep_log_file_num(self->dbopts, 3);
    rocksdb_options_set_max_log_file_size(self->dbopts, 1024 * 1024);
    rocksdb_writeoptions_set_sync(self->wopts, opts->sync ? 1 : 0);
    /* The audit trail's records are appended in key order and read by
       iterators and by index, never asked for a key that is not there:
       no bloom filters (memtable or tables), whose upkeep is most of a
       put's cost for a record nobody probes. */
    self->audit_opts = rocksdb_options_create_copy(self->dbopts);
    self->audit_bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(self->audit_bbto, self->cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(self->audit_bbto, 1);
    rocksdb_options_set_block_based_table_factory(self->audit_opts, self->audit_bbto);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(self->audit_opts, 0);
    rocksdb_options_set_memtable_whole_key_filtering(self->audit_opts, 0);

    /* Open every column family on disk (a newer schema may have added some:
       RocksDB refuses to open a database without all of them) plus ours. */
    listed = rocksdb_list_column_families(self->dbopts, dir, &nlisted, &err);
    if (err) { /* a fresh database: nothing to list */
        rocksdb_free(err);
        err = NULL;
        if (listed)
            rocksdb_list_column_families_destroy(listed, 0);
        listed = NULL;
        nlisted = 0;
    }
    size_t cap = 1 + GBX_KS_COUNT_ + nlisted;
    names = calloc(cap, sizeof *names);
    cfopts = calloc(cap, sizeof *cfopts);
    self->cfh = calloc(cap, sizeof *self->cfh);
    if (!names || !cfopts || !self->cfh) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    int n = 0;
    names[n++] = "default";
    for (int k = 0; k < GBX_KS_COUNT_; k++)
        names[n++] = s_ks_names[k];
    for (size_t i = 0; i < nlisted; i++) {
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strcmp(names[j], listed[i]) == 0;
        if (!dup)
            names[n++] = listed[i];
    }
    for (int j = 0; j < n; j++)
        cfopts[j] =
            strcmp(names[j], s_ks_names[GBX_KS_AUDIT]) == 0 ? self->audit_opts : self->dbopts;
    if (opts->read_only) /* beside a running gbxd: no lock, no writes */
        self->db = rocksdb_open_for_read_only_column_families(self->dbopts, dir, n, names, cfopts,
                                                              self->cfh, 0, &err);
    else
        self->db =
            rocksdb_open_column_families(self->dbopts, dir, n, names, cfopts, self->cfh, &err);
    if (err || !self->db) {
        rc = s_fail(self, opts, GBX_E_STORE_FAILED, err, "op=open dir=%s", dir);
        err = NULL;
        self->db = NULL;
        goto out;
    }
    self->ncf = n;
    for (int k = 0; k < GBX_KS_COUNT_; k++)
        self->ks[k] = self->cfh[1 + k];

    if (!opts->read_only)
        rc = s_recover(self);
    if (rc == GBX_OK)
        rc = gbx_trail_open(self, &self->trail);
out:
    if (listed)
        rocksdb_list_column_families_destroy(listed, nlisted);
    free(names);
    free(cfopts);
    if (rc != GBX_OK) {
        /* the last error text has been logged already */
        gbx_store_destroy(&self);
        return rc;
    }
    *out = self;
    return GBX_OK;
}

void gbx_store_destroy(gbx_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_store_t *self = *self_p;
    gbx_trail_destroy(&self->trail);
    if (self->db) {
        for (int i = 0; i < self->ncf; i++)
            rocksdb_column_family_handle_destroy(self->cfh[i]);
        rocksdb_close(self->db);
    }
    free(self->cfh);
    if (self->ropts)
        rocksdb_readoptions_destroy(self->ropts);
    if (self->wopts)
        rocksdb_writeoptions_destroy(self->wopts);
    if (self->wopts_nosync)
        rocksdb_writeoptions_destroy(self->wopts_nosync);
    if (self->dbopts)
        rocksdb_options_destroy(self->dbopts);
    if (self->bbto)
        rocksdb_block_based_options_destroy(self->bbto);
    if (self->audit_opts)
        rocksdb_options_destroy(self->audit_opts);
    if (self->audit_bbto)
        rocksdb_block_based_options_destroy(self->audit_bbto);
    if (self->cache)
        rocksdb_cache_destroy(self->cache);
    pthread_mutex_destroy(&self->commit_mx);
    pthread_mutex_destroy(&self->err_mx);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------------ reads */

gbx_err_t gbx_store_get(gbx_store_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        uint8_t **val, size_t *vlen)
{
    if (!self || !gbx_keyspace_name(ks) || (!key && klen) || !val || !vlen)
        return GBX_E_ARG;
    *val = NULL;
    *vlen = 0;
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(self->db, self->ropts, self->ks[ks], key ? key : "", klen, &len, &err);
    if (err)
        return s_fail(self, &self->opts, GBX_E_STORE_FAILED, err, "op=get ks=%s", s_ks_names[ks]);
    if (!v)
        return GBX_OK;
    /* copy into a buffer of our allocator: rocksdb_free and free may differ */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        rocksdb_free(v);
        return GBX_E_NOMEM;
    }
    memcpy(copy, v, len);
    rocksdb_free(v);
    *val = copy;
    *vlen = len;
    return GBX_OK;
}

uint64_t gbx_store_next_seq(gbx_store_t *self)
{
    return atomic_fetch_add(&self->next_seq, 1);
}

/* ---------------------------------------------------------------- batches */

gbx_err_t gbx_batch_new(gbx_store_t *self, gbx_batch_t **out)
{
    if (!self || !out)
        return GBX_E_ARG;
    *out = NULL;
    gbx_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return GBX_E_NOMEM;
    b->store = self;
    /* overwrite_key off: a put appends an index entry instead of first
       searching for the key's earlier one (a quarter of the writer's time
       in a profile); a get still returns the latest of a key's entries, as
       long as nothing uses Merge (batch_reads in test_store) */
    b->wb = rocksdb_writebatch_wi_create(0, 0);
    *out = b;
    return GBX_OK;
}

void gbx_batch_destroy(gbx_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rocksdb_writebatch_wi_destroy((*self_p)->wb);
    free((*self_p)->text);
    free((*self_p)->off);
    free((*self_p)->mark_nrec);
    free(*self_p);
    *self_p = NULL;
}

gbx_err_t gbx_batch_put(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    if (!self || !gbx_keyspace_name(ks) || (!key && klen) || (!val && vlen))
        return GBX_E_ARG;
    rocksdb_writebatch_wi_put_cf(self->wb, self->store->ks[ks], key ? key : "", klen,
                                 val ? val : "", vlen);
    return GBX_OK;
}

gbx_err_t gbx_batch_delete(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen)
{
    if (!self || !gbx_keyspace_name(ks) || (!key && klen))
        return GBX_E_ARG;
    rocksdb_writebatch_wi_delete_cf(self->wb, self->store->ks[ks], key ? key : "", klen);
    return GBX_OK;
}

void gbx_batch_put_seq(gbx_batch_t *self, uint64_t seq)
{
    if (self && seq > self->seq_hi)
        self->seq_hi = seq;
}

gbx_err_t gbx_batch_append(gbx_batch_t *self, const char *rec, size_t len)
{
    if (!self || (!rec && len))
        return GBX_E_ARG;
    if (self->nrec + 2 > self->off_cap) {
        size_t cap = self->off_cap ? 2 * self->off_cap : 16;
        size_t *o = realloc(self->off, cap * sizeof *o);
        if (!o)
            return GBX_E_NOMEM;
        self->off = o;
        self->off_cap = cap;
    }
    if (len > self->text_cap - self->text_len) {
        size_t cap = self->text_cap ? self->text_cap : 1024;
        while (cap - self->text_len < len)
            cap *= 2;
        char *t = realloc(self->text, cap);
        if (!t)
            return GBX_E_NOMEM;
        self->text = t;
        self->text_cap = cap;
    }
    if (self->nrec == 0)
        self->off[0] = 0;
    memcpy(self->text + self->text_len, rec, len);
    self->text_len += len;
    self->off[++self->nrec] = self->text_len;
    return GBX_OK;
}

size_t gbx_batch_appended(const gbx_batch_t *self)
{
    return self ? self->nrec : 0;
}

void gbx_batch_checkpoint(gbx_batch_t *self)
{
    if (self)
        self->checkpoint = 1;
}

size_t gbx_batch_count(const gbx_batch_t *self)
{
    return self ? (size_t)rocksdb_writebatch_wi_count(self->wb) : 0;
}

gbx_err_t gbx_batch_get(gbx_batch_t *self, gbx_keyspace_t ks, const void *key, size_t klen,
                        uint8_t **val, size_t *vlen)
{
    if (!self || !gbx_keyspace_name(ks) || (!key && klen) || !val || !vlen)
        return GBX_E_ARG;
    gbx_store_t *st = self->store;
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(
        self->wb, st->db, st->ropts, st->ks[ks], key ? key : "", klen, &len, &err);
    if (err)
        return s_fail(st, &st->opts, GBX_E_STORE_FAILED, err, "op=batch_get ks=%s", s_ks_names[ks]);
    *val = NULL;
    *vlen = 0;
    if (v) {
        /* RocksDB's buffer comes from its allocator: copy it into ours */
        *val = malloc(len ? len : 1);
        if (!*val) {
            rocksdb_free(v);
            return GBX_E_NOMEM;
        }
        memcpy(*val, v, len);
        *vlen = len;
        rocksdb_free(v);
    }
    return GBX_OK;
}

void gbx_batch_mark(gbx_batch_t *self)
{
    if (!self)
        return;
    if (self->marks == self->mark_cap) {
        size_t cap = self->mark_cap ? 2 * self->mark_cap : 8;
        size_t *m = realloc(self->mark_nrec, cap * sizeof *m);
        if (!m)
            abort(); /* a few words; a lost mark would roll back the wrong records */
        self->mark_nrec = m;
        self->mark_cap = cap;
    }
    rocksdb_writebatch_wi_set_save_point(self->wb);
    self->mark_nrec[self->marks++] = self->nrec;
}

gbx_err_t gbx_batch_rollback(gbx_batch_t *self)
{
    if (!self || self->marks == 0)
        return GBX_E_STATE;
    char *err = NULL;
    rocksdb_writebatch_wi_rollback_to_save_point(self->wb, &err);
    self->marks--;
    self->nrec = self->mark_nrec[self->marks];
    self->text_len = self->nrec ? self->off[self->nrec] : 0;
    if (err)
        return s_fail(self->store, &self->store->opts, GBX_E_STORE_FAILED, err,
                      "op=batch_rollback");
    return GBX_OK;
}

/*  Commits *BATCH_P, synced or not. */
static gbx_err_t s_commit(gbx_store_t *self, gbx_batch_t **batch_p, int sync)
{
    if (self && atomic_load(&self->broken))
        return GBX_E_STORE_FAILED;
    if (!self || !batch_p || !*batch_p)
        return GBX_E_ARG;
    gbx_batch_t *b = *batch_p;
    if (b->store != self)
        return GBX_E_ARG;
    gbx_err_t rc = GBX_OK;
    char *err = NULL;
    uint64_t next = 0;

    pthread_mutex_lock(&self->commit_mx);
    int sealed = 0;
    if (b->nrec || b->checkpoint) {
        /* numbered here, under the lock: the trail's order is the order in
           which batches reach the disk */
        rc = gbx_trail_seal(self->trail, b, b->text, b->off, b->nrec, b->checkpoint);
        if (rc != GBX_OK) {
            pthread_mutex_unlock(&self->commit_mx);
            return rc;
        }
        sealed = 1;
    }
    if (b->seq_hi && b->seq_hi + 1 > self->persisted_next) {
        /* the counter moves with the message, in the same WAL record; a retry
           after a failed write puts the same key again, which is harmless */
        uint8_t v[8];
        next = b->seq_hi + 1;
        gbx_store_seq_key(next, v);
        rocksdb_writebatch_wi_put_cf(b->wb, self->ks[GBX_KS_META], GBX_STORE_META_NEXT_SEQ,
                                     strlen(GBX_STORE_META_NEXT_SEQ), (const char *)v, sizeof v);
    }
    rocksdb_write_writebatch_wi(self->db, sync ? self->wopts : self->wopts_nosync, b->wb, &err);
    if (sealed)
        gbx_trail_settle(self->trail, !err, sync || !self->opts.sync);
    if (!err && next)
        self->persisted_next = next;
    if (!err && (sync || !self->opts.sync))
        atomic_store(&self->durable_next, self->persisted_next);
    pthread_mutex_unlock(&self->commit_mx);
    if (err) {
        rc = s_fail(self, &self->opts, GBX_E_STORE_FAILED, err, "op=commit count=%d",
                    rocksdb_writebatch_wi_count(b->wb));
        goto out;
    }
    if (next)
        s_raise_next(self, next);
    gbx_batch_destroy(batch_p);
out:
    return rc;
}

gbx_err_t gbx_store_commit(gbx_store_t *self, gbx_batch_t **batch_p)
{
    return s_commit(self, batch_p, 1);
}

gbx_err_t gbx_store_write(gbx_store_t *self, gbx_batch_t **batch_p)
{
    return s_commit(self, batch_p, 0);
}

gbx_err_t gbx_store_sync(gbx_store_t *self)
{
    if (!self)
        return GBX_E_ARG;
    pthread_mutex_lock(&self->commit_mx);
    uint64_t next = self->persisted_next; /* everything written so far */
    uint64_t records = gbx_trail_size(self->trail);
    pthread_mutex_unlock(&self->commit_mx);
    if (atomic_load(&self->broken))
        return GBX_E_STORE_FAILED;
    if (self->opts.sync) {
        char *err = NULL;
        rocksdb_flush_wal(self->db, 1, &err); /* FlushWAL(sync): fsync of the WAL */
        if (err) {
            /* After a failed fsync the kernel may have dropped the dirty pages
               and a later fsync may succeed without them: nothing written
               since the last good sync can be trusted, so nothing more is
               written or synced, and durable_next stays where it is. */
            atomic_store(&self->broken, 1);
            return s_fail(self, &self->opts, GBX_E_STORE_FAILED, err, "op=sync broken=1");
        }
    }
    uint64_t cur = atomic_load(&self->durable_next);
    while (cur < next && !atomic_compare_exchange_weak(&self->durable_next, &cur, next))
        ;
    gbx_trail_synced(self->trail, records);
    return GBX_OK;
}

int gbx_store_broken(gbx_store_t *self)
{
    return self ? atomic_load(&self->broken) : 1;
}

uint64_t gbx_store_durable_next(gbx_store_t *self)
{
    return self ? atomic_load(&self->durable_next) : 0;
}

/* -------------------------------------------------------------- iterators */

/*  gbx_store_iter_new, starting at FROM (FLEN bytes, 0: the prefix). */
static gbx_err_t s_iter_open(gbx_store_t *self, gbx_keyspace_t ks, const void *prefix, size_t plen,
                             const void *from, size_t flen, gbx_store_iter_t **out)
{
    if (!self || !gbx_keyspace_name(ks) || (!prefix && plen) || (!from && flen) || !out ||
        (flen && (flen < plen || (plen && memcmp(from, prefix, plen) != 0))))
        return GBX_E_ARG;
    *out = NULL;
    gbx_err_t rc = GBX_OK;
    gbx_store_iter_t *it = calloc(1, sizeof *it);
    if (!it)
        return GBX_E_NOMEM;
    it->plen = plen;
    if (plen) {
        it->prefix = malloc(plen);
        if (!it->prefix) {
            rc = GBX_E_NOMEM;
            goto out;
        }
        memcpy(it->prefix, prefix, plen);
    }
    it->ro = rocksdb_readoptions_create();
    if (flen) {
        /* a lower bound: RocksDB need not even look at what lies before,
           deleted entries included */
        it->lower = malloc(flen);
        if (!it->lower) {
            rc = GBX_E_NOMEM;
            goto out;
        }
        memcpy(it->lower, from, flen);
        it->llen = flen;
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)it->lower, flen);
    }
    /* upper bound = prefix with its last byte below 0xff incremented and the
       rest dropped; a prefix of only 0xff bytes has none */
    size_t ulen = plen;
    while (ulen > 0 && it->prefix[ulen - 1] == 0xff)
        ulen--;
    if (ulen > 0) {
        it->upper = malloc(ulen);
        if (!it->upper) {
            rc = GBX_E_NOMEM;
            goto out;
        }
        memcpy(it->upper, it->prefix, ulen);
        it->upper[ulen - 1]++;
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->upper, ulen);
    }
    it->it = rocksdb_create_iterator_cf(self->db, it->ro, self->ks[ks]);
    if (flen)
        rocksdb_iter_seek(it->it, (const char *)it->lower, flen);
    else if (plen)
        rocksdb_iter_seek(it->it, (const char *)it->prefix, plen);
    else
        rocksdb_iter_seek_to_first(it->it);
out:
    if (rc != GBX_OK) {
        gbx_store_iter_destroy(&it);
        return rc;
    }
    *out = it;
    return GBX_OK;
}

gbx_err_t gbx_store_iter_new(gbx_store_t *self, gbx_keyspace_t ks, const void *prefix, size_t plen,
                             gbx_store_iter_t **out)
{
    return s_iter_open(self, ks, prefix, plen, NULL, 0, out);
}

gbx_err_t gbx_store_iter_from(gbx_store_t *self, gbx_keyspace_t ks, const void *prefix, size_t plen,
                              const void *from, size_t flen, gbx_store_iter_t **out)
{
    return s_iter_open(self, ks, prefix, plen, from, flen, out);
}

void gbx_store_iter_destroy(gbx_store_iter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_store_iter_t *it = *self_p;
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ro)
        rocksdb_readoptions_destroy(it->ro);
    free(it->prefix);
    free(it->upper);
    free(it->lower);
    free(it);
    *self_p = NULL;
}

void gbx_store_iter_seek(gbx_store_iter_t *self, const void *key, size_t klen)
{
    if (!key)
        klen = 0;
    /* never before the prefix */
    size_t m = klen < self->plen ? klen : self->plen;
    int cmp = m ? memcmp(key, self->prefix, m) : 0;
    if (cmp < 0 || (cmp == 0 && klen < self->plen))
        rocksdb_iter_seek(self->it, self->plen ? (const char *)self->prefix : "", self->plen);
    else
        rocksdb_iter_seek(self->it, key, klen);
}

void gbx_store_iter_seek_for_prev(gbx_store_iter_t *self, const void *key, size_t klen)
{
    rocksdb_iter_seek_for_prev(self->it, key ? (const char *)key : "", key ? klen : 0);
}

bool gbx_store_iter_valid(gbx_store_iter_t *self)
{
    if (!self || !rocksdb_iter_valid(self->it))
        return false;
    size_t klen = 0;
    const char *k = rocksdb_iter_key(self->it, &klen);
    return klen >= self->plen && (self->plen == 0 || memcmp(k, self->prefix, self->plen) == 0);
}

const uint8_t *gbx_store_iter_key(gbx_store_iter_t *self, size_t *klen)
{
    return (const uint8_t *)rocksdb_iter_key(self->it, klen);
}

const uint8_t *gbx_store_iter_value(gbx_store_iter_t *self, size_t *vlen)
{
    return (const uint8_t *)rocksdb_iter_value(self->it, vlen);
}

void gbx_store_iter_next(gbx_store_iter_t *self)
{
    if (rocksdb_iter_valid(self->it))
        rocksdb_iter_next(self->it);
}

gbx_err_t gbx_store_iter_error(gbx_store_iter_t *self)
{
    char *err = NULL;
    rocksdb_iter_get_error(self->it, &err);
    if (!err)
        return GBX_OK;
    rocksdb_free(err);
    return GBX_E_STORE_FAILED;
}
