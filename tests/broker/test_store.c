/*  test_store: the durable store (broker/store.h) on a real RocksDB in a
    temporary directory.

    Cases:
      open_create        creates a missing data dir and the keyspaces; a file or
                         a missing parent is GBX_E_IO, logged, nothing printed
      put_get_delete     per keyspace, the same key in two keyspaces is two keys,
                         absent = GBX_OK with NULL, delete
      batch_atomic       a batch over four keyspaces is invisible before commit,
                         all visible after, nothing after destroy-without-commit;
                         a batch of another store is refused
      batch_reads        gbx_batch_get sees the batch's latest write of a key
                         over the store's (put over put, delete over a stored
                         value, put after delete), and a rollback to a mark
                         brings back what the key was at the mark
      iter_prefix        queue keys of three destinations: one prefix scans only
                         its own, in numeric sequence order (big-endian), seek,
                         snapshot, whole keyspace
      reopen_persists    values survive close and reopen
      seq_recovery       the counter resumes after the highest committed seq,
                         never goes backwards on out-of-order commits
      schema_refused     a data dir with a newer schema is GBX_E_STATE
      crash_kill9        a child process (this program, re-executed) commits
                         synced batches over four keyspaces and reports each seq
                         after its commit; it is killed with SIGKILL at a seeded
                         random point, several rounds on the same dir; after each,
                         every reported seq is present and complete, every
                         message present is complete, seqs are contiguous
      bench_synced       prints synced (and unsynced) commits/s; not asserted */
#include "tu_cmocka.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define S_CRASH_N      2000 /* batches the crash child commits per round */
#define S_CRASH_ROUNDS 4
#define S_DEST         "hk.cr"

static char s_last_log[1024];
static char s_self[4096] = "/proc/self/exe"; /* this program, for the crash child */
static int s_log_lines;

static void s_log(void *arg, const char *line)
{
    (void)arg;
    snprintf(s_last_log, sizeof s_last_log, "%s", line);
    s_log_lines++;
}

static gbx_store_t *s_open(const char *dir, bool sync)
{
    gbx_store_opts_t o;
    gbx_store_opts_init(&o);
    o.sync = sync;
    o.log = s_log;
    gbx_store_t *st = NULL;
    assert_rc(gbx_store_open(dir, &o, &st), GBX_OK);
    assert_non_null(st);
    return st;
}

static void s_put1(gbx_store_t *st, gbx_keyspace_t ks, const char *k, const char *v)
{
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, ks, k, strlen(k), v, strlen(v)), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    assert_null(b);
}

/*  Asserts KEY of KS holds the text WANT (NULL: absent). */
static void s_expect(gbx_store_t *st, gbx_keyspace_t ks, const void *k, size_t klen,
                     const char *want)
{
    uint8_t *v = (uint8_t *)"sentinel";
    size_t vlen = 99;
    assert_rc(gbx_store_get(st, ks, k, klen, &v, &vlen), GBX_OK);
    if (!want) {
        assert_null(v);
        assert_int_equal(vlen, 0);
        return;
    }
    assert_non_null(v);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(v, want, vlen);
    free(v);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ cases */

static void open_create(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char *sub = NULL, *file = NULL, *orphan = NULL;
    assert_true(asprintf(&sub, "%s/data", root) > 0);
    assert_true(asprintf(&file, "%s/plain", root) > 0);
    assert_true(asprintf(&orphan, "%s/no/such/dir", root) > 0);

    gbx_store_t *st = s_open(sub, true);
    for (int k = 0; k < GBX_KS_COUNT_; k++)
        assert_non_null(gbx_keyspace_name((gbx_keyspace_t)k));
    assert_null(gbx_keyspace_name(GBX_KS_COUNT_));
    char err[64];
    gbx_store_last_error(st, err, sizeof err);
    assert_string_equal(err, "");
    gbx_store_destroy(&st);
    assert_null(st);
    gbx_store_destroy(&st); /* NULL-safe */
    gbx_store_destroy(NULL);
    struct stat sb;
    char *current = NULL;
    assert_true(asprintf(&current, "%s/CURRENT", sub) > 0);
    assert_int_equal(stat(current, &sb), 0);
    free(current);

    /* a second open of an open dir is refused by RocksDB's lock */
    st = s_open(sub, true);
    gbx_store_t *st2 = NULL;
    s_log_lines = 0;
    gbx_store_opts_t o;
    gbx_store_opts_init(&o);
    o.log = s_log;
    assert_rc(gbx_store_open(sub, &o, &st2), GBX_E_STORE_FAILED);
    assert_null(st2);
    assert_int_equal(s_log_lines, 1);
    assert_non_null(strstr(s_last_log, "GBX-STORE-STORE_FAILED op=open"));
    gbx_store_destroy(&st);

    assert_int_equal(tu_write_file(file, "x", 1, 0600), 0);
    s_log_lines = 0;
    assert_rc(gbx_store_open(file, &o, &st), GBX_E_IO);
    assert_null(st);
    assert_int_equal(s_log_lines, 1);
    assert_non_null(strstr(s_last_log, "GBX-STORE-IO"));
    assert_rc(gbx_store_open(orphan, NULL, &st), GBX_E_IO);
    assert_rc(gbx_store_open(NULL, NULL, &st), GBX_E_ARG);
    assert_rc(gbx_store_open("", NULL, &st), GBX_E_ARG);

    free(file);
    free(orphan);
    tu_rmtree(&sub);
    tu_rmtree(&root);
}

static void put_get_delete(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);

    for (int k = 0; k < GBX_KS_COUNT_; k++) {
        char val[32];
        snprintf(val, sizeof val, "value-of-%s", gbx_keyspace_name((gbx_keyspace_t)k));
        s_put1(st, (gbx_keyspace_t)k, "k1", val);
    }
    for (int k = 0; k < GBX_KS_COUNT_; k++) {
        char val[32];
        snprintf(val, sizeof val, "value-of-%s", gbx_keyspace_name((gbx_keyspace_t)k));
        s_expect(st, (gbx_keyspace_t)k, "k1", 2, val);
    }
    s_expect(st, GBX_KS_MESSAGES, "k2", 2, NULL);

    /* binary keys and an empty value */
    uint8_t bk[3] = {0x00, 0xff, 0x00};
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, bk, sizeof bk, NULL, 0), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_COUNT_, "x", 1, "y", 1), GBX_E_ARG);
    assert_rc(gbx_batch_delete(b, (gbx_keyspace_t)-1, "x", 1), GBX_E_ARG);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    uint8_t *v = NULL;
    size_t vlen = 1;
    assert_rc(gbx_store_get(st, GBX_KS_AUDIT, bk, sizeof bk, &v, &vlen), GBX_OK);
    assert_non_null(v); /* present, empty */
    assert_int_equal(vlen, 0);
    free(v);

    /* delete in one keyspace leaves the others */
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_delete(b, GBX_KS_QUEUES, "k1", 2), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    s_expect(st, GBX_KS_QUEUES, "k1", 2, NULL);
    s_expect(st, GBX_KS_DEDUPE, "k1", 2, "value-of-dedupe");

    assert_rc(gbx_store_get(st, GBX_KS_COUNT_, "k1", 2, &v, &vlen), GBX_E_ARG);
    gbx_store_destroy(&st);
    tu_rmtree(&dir);
}

static void batch_atomic(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *dir2 = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);
    static const gbx_keyspace_t kss[] = {GBX_KS_MESSAGES, GBX_KS_QUEUES, GBX_KS_DEDUPE,
                                         GBX_KS_AUDIT};

    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    for (size_t i = 0; i < 4; i++)
        assert_rc(gbx_batch_put(b, kss[i], "m", 1, "v1", 2), GBX_OK);
    assert_int_equal(gbx_batch_count(b), 4);
    for (size_t i = 0; i < 4; i++)
        s_expect(st, kss[i], "m", 1, NULL); /* not before commit */
    gbx_batch_destroy(&b);
    assert_null(b);
    gbx_batch_destroy(&b);
    for (size_t i = 0; i < 4; i++)
        s_expect(st, kss[i], "m", 1, NULL); /* dropped */

    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    for (size_t i = 0; i < 4; i++)
        assert_rc(gbx_batch_put(b, kss[i], "m", 1, "v2", 2), GBX_OK);
    /* later operations in a batch win over earlier ones */
    assert_rc(gbx_batch_put(b, GBX_KS_META, "tmp", 3, "t", 1), GBX_OK);
    assert_rc(gbx_batch_delete(b, GBX_KS_META, "tmp", 3), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    assert_null(b);
    for (size_t i = 0; i < 4; i++)
        s_expect(st, kss[i], "m", 1, "v2");
    s_expect(st, GBX_KS_META, "tmp", 3, NULL);

    /* an iterator created before a commit sees none of it; after, all of it */
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, GBX_KS_AUDIT, NULL, 0, &it), GBX_OK);
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, "n", 1, "a", 1), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, "n", 1, "a", 1), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    int seen = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        seen++;
    assert_int_equal(seen, 1); /* only "m" */
    gbx_store_iter_destroy(&it);

    /* a batch of another store is refused and still owned by the caller */
    gbx_store_t *other = s_open(dir2, true);
    assert_rc(gbx_batch_new(other, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, "z", 1, "z", 1), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_E_ARG);
    assert_non_null(b);
    gbx_batch_destroy(&b);
    assert_rc(gbx_store_commit(st, &b), GBX_E_ARG); /* NULL batch */
    s_expect(st, GBX_KS_AUDIT, "z", 1, NULL);
    s_expect(other, GBX_KS_AUDIT, "z", 1, NULL);
    gbx_store_destroy(&other);

    gbx_store_destroy(&st);
    tu_rmtree(&dir);
    tu_rmtree(&dir2);
}

/*  *V of gbx_batch_get for KEY in KS equals WANT (NULL: absent). */
static void s_expect_batch(gbx_batch_t *b, gbx_keyspace_t ks, const char *key, const char *want)
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_batch_get(b, ks, key, strlen(key), &v, &vlen), GBX_OK);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(v, want, vlen);
    free(v);
}

static void batch_reads(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);
    s_put1(st, GBX_KS_QUEUES, "k", "stored");
    s_put1(st, GBX_KS_QUEUES, "gone", "stored");

    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "k", "stored"); /* the store's, through the batch */
    assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, "k", 1, "v1", 2), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, "k", 1, "v2", 2), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "k", "v2");
    s_expect_batch(b, GBX_KS_DLQ, "k", NULL); /* another keyspace */
    assert_rc(gbx_batch_delete(b, GBX_KS_QUEUES, "gone", 4), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "gone", NULL);
    assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, "gone", 4, "back", 4), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "gone", "back");

    gbx_batch_mark(b);
    assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, "k", 1, "v3", 2), GBX_OK);
    assert_rc(gbx_batch_delete(b, GBX_KS_QUEUES, "k", 1), GBX_OK);
    assert_rc(gbx_batch_delete(b, GBX_KS_QUEUES, "gone", 4), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "k", NULL);
    assert_rc(gbx_batch_rollback(b), GBX_OK);
    s_expect_batch(b, GBX_KS_QUEUES, "k", "v2");
    s_expect_batch(b, GBX_KS_QUEUES, "gone", "back");

    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    s_expect(st, GBX_KS_QUEUES, "k", 1, "v2");
    s_expect(st, GBX_KS_QUEUES, "gone", 4, "back");
    gbx_store_destroy(&st);
    tu_rmtree(&dir);
}

static void iter_prefix(void **state)
{
    (void)state;
    static const uint64_t seqs[] = {256, 1, 4294967296ull, 255, 65536, 2, 65535, 1ull << 56};
    static const uint64_t sorted[] = {1, 2, 255, 256, 65535, 65536, 4294967296ull, 1ull << 56};
    static const char *dests[] = {"hk.cr2", S_DEST, "gd.qh", "hk.c"};
    const size_t nseq = sizeof seqs / sizeof seqs[0];
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, false);

    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    for (size_t d = 0; d < 4; d++) {
        for (size_t i = 0; i < nseq; i++) {
            uint8_t key[64];
            size_t klen = 0;
            assert_rc(gbx_store_queue_key(dests[d], seqs[i], key, sizeof key, &klen), GBX_OK);
            assert_int_equal(klen, strlen(dests[d]) + 9);
            assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, key, klen, dests[d], strlen(dests[d])),
                      GBX_OK);
        }
    }
    assert_rc(gbx_store_commit(st, &b), GBX_OK);

    uint8_t prefix[16];
    size_t plen = strlen(S_DEST) + 1;
    memcpy(prefix, S_DEST, plen); /* with the 0x00 separator */
    gbx_store_iter_t *it = NULL;
    assert_rc(gbx_store_iter_new(st, GBX_KS_QUEUES, prefix, plen, &it), GBX_OK);
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it), n++) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        assert_int_equal(klen, plen + 8);
        assert_true(n < nseq);
        assert_int_equal(gbx_store_seq_from_key(k + plen), sorted[n]);
        assert_int_equal(vlen, strlen(S_DEST));
        assert_memory_equal(v, S_DEST, vlen);
    }
    assert_int_equal(n, nseq);
    assert_rc(gbx_store_iter_error(it), GBX_OK);

    /* seek to seq 256, to a key between entries, and before the prefix */
    uint8_t key[64];
    size_t klen = 0;
    assert_rc(gbx_store_queue_key(S_DEST, 256, key, sizeof key, &klen), GBX_OK);
    gbx_store_iter_seek(it, key, klen);
    assert_true(gbx_store_iter_valid(it));
    assert_int_equal(gbx_store_seq_from_key(gbx_store_iter_key(it, &klen) + plen), 256);
    assert_rc(gbx_store_queue_key(S_DEST, 257, key, sizeof key, &klen), GBX_OK);
    gbx_store_iter_seek(it, key, klen);
    assert_int_equal(gbx_store_seq_from_key(gbx_store_iter_key(it, &klen) + plen), 65535);
    gbx_store_iter_seek(it, "a", 1);
    assert_int_equal(gbx_store_seq_from_key(gbx_store_iter_key(it, &klen) + plen), 1);
    assert_rc(gbx_store_queue_key(S_DEST, UINT64_MAX, key, sizeof key, &klen), GBX_OK);
    gbx_store_iter_seek(it, key, klen);
    assert_false(gbx_store_iter_valid(it));
    gbx_store_iter_destroy(&it);
    assert_null(it);

    /* the whole keyspace; a prefix with no entries; a prefix of 0xff bytes */
    assert_rc(gbx_store_iter_new(st, GBX_KS_QUEUES, NULL, 0, &it), GBX_OK);
    for (n = 0; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        n++;
    assert_int_equal(n, 4 * nseq);
    gbx_store_iter_destroy(&it);
    assert_rc(gbx_store_iter_new(st, GBX_KS_QUEUES, "zz", 2, &it), GBX_OK);
    assert_false(gbx_store_iter_valid(it));
    gbx_store_iter_destroy(&it);
    assert_rc(gbx_store_iter_new(st, GBX_KS_QUEUES, "\xff\xff", 2, &it), GBX_OK);
    assert_false(gbx_store_iter_valid(it));
    gbx_store_iter_destroy(&it);

    /* queue key arguments */
    assert_rc(gbx_store_queue_key("", 1, key, sizeof key, &klen), GBX_E_ARG);
    assert_rc(gbx_store_queue_key(S_DEST, 1, key, strlen(S_DEST) + 8, &klen), GBX_E_ARG);
    char longdest[GBX_STORE_DEST_MAX + 2];
    memset(longdest, 'a', sizeof longdest - 1);
    longdest[sizeof longdest - 1] = '\0';
    uint8_t big[GBX_STORE_DEST_MAX + 16];
    assert_rc(gbx_store_queue_key(longdest, 1, big, sizeof big, &klen), GBX_E_ARG);
    longdest[GBX_STORE_DEST_MAX] = '\0';
    assert_rc(gbx_store_queue_key(longdest, 1, big, sizeof big, &klen), GBX_OK);

    gbx_store_destroy(&st);
    tu_rmtree(&dir);
}

static void reopen_persists(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);
    s_put1(st, GBX_KS_DEDUPE, "msg-id-1", "receipt-1");
    s_put1(st, GBX_KS_AUDIT, "a1", "accepted");
    gbx_store_destroy(&st);
    st = s_open(dir, true);
    s_expect(st, GBX_KS_DEDUPE, "msg-id-1", 8, "receipt-1");
    s_expect(st, GBX_KS_AUDIT, "a1", 2, "accepted");
    s_expect(st, GBX_KS_MESSAGES, "a1", 2, NULL);
    gbx_store_destroy(&st);
    /* also when written without sync: a clean close flushes */
    st = s_open(dir, false);
    s_put1(st, GBX_KS_AUDIT, "a2", "unsynced");
    gbx_store_destroy(&st);
    st = s_open(dir, true);
    s_expect(st, GBX_KS_AUDIT, "a2", 2, "unsynced");
    gbx_store_destroy(&st);
    tu_rmtree(&dir);
}

static void s_commit_msg(gbx_store_t *st, uint64_t seq)
{
    uint8_t key[8];
    gbx_store_seq_key(seq, key);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, key, 8, "m", 1), GBX_OK);
    gbx_batch_put_seq(b, seq);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
}

static uint64_t s_meta_next(gbx_store_t *st)
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(st, GBX_KS_META, GBX_STORE_META_NEXT_SEQ,
                            strlen(GBX_STORE_META_NEXT_SEQ), &v, &vlen),
              GBX_OK);
    assert_non_null(v);
    assert_int_equal(vlen, 8);
    uint64_t n = gbx_store_seq_from_key(v);
    free(v);
    return n;
}

static void seq_recovery(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);
    assert_int_equal(gbx_store_next_seq(st), 1);
    assert_int_equal(gbx_store_next_seq(st), 2);
    uint64_t s3 = gbx_store_next_seq(st);
    assert_int_equal(s3, 3);
    s_commit_msg(st, 1);
    s_commit_msg(st, s3);
    assert_int_equal(s_meta_next(st), 4);
    (void)gbx_store_next_seq(st); /* 4 handed out, never committed */
    gbx_store_destroy(&st);

    st = s_open(dir, true);
    assert_int_equal(gbx_store_next_seq(st), 4); /* after the highest committed */
    /* out of order: 10 then 7; the counter never goes backwards */
    s_commit_msg(st, 10);
    s_commit_msg(st, 7);
    assert_int_equal(s_meta_next(st), 11);
    assert_int_equal(gbx_store_next_seq(st), 11); /* raised by the commit of 10 */
    gbx_store_destroy(&st);

    st = s_open(dir, true);
    assert_int_equal(gbx_store_next_seq(st), 11);
    /* a message written without put_seq still raises the counter on open */
    uint8_t key[8];
    gbx_store_seq_key(41, key);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, key, 8, "m", 1), GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    gbx_store_destroy(&st);
    st = s_open(dir, true);
    assert_int_equal(gbx_store_next_seq(st), 42);
    gbx_store_destroy(&st);

    uint8_t k[8];
    gbx_store_seq_key(0x0102030405060708ull, k);
    assert_int_equal(k[0], 1);
    assert_int_equal(k[7], 8);
    assert_int_equal(gbx_store_seq_from_key(k), 0x0102030405060708ull);
    tu_rmtree(&dir);
}

static void schema_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    gbx_store_t *st = s_open(dir, true);
    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(st, GBX_KS_META, GBX_STORE_META_SCHEMA, strlen(GBX_STORE_META_SCHEMA),
                            &v, &vlen),
              GBX_OK);
    assert_non_null(v);
    assert_int_equal(gbx_store_seq_from_key(v), GBX_STORE_SCHEMA_VERSION);
    free(v);
    uint8_t newer[8];
    gbx_store_seq_key(GBX_STORE_SCHEMA_VERSION + 1, newer);
    gbx_batch_t *b = NULL;
    assert_rc(gbx_batch_new(st, &b), GBX_OK);
    assert_rc(gbx_batch_put(b, GBX_KS_META, GBX_STORE_META_SCHEMA, strlen(GBX_STORE_META_SCHEMA),
                            newer, 8),
              GBX_OK);
    assert_rc(gbx_store_commit(st, &b), GBX_OK);
    gbx_store_destroy(&st);

    gbx_store_opts_t o;
    gbx_store_opts_init(&o);
    o.log = s_log;
    s_log_lines = 0;
    assert_rc(gbx_store_open(dir, &o, &st), GBX_E_STATE);
    assert_null(st);
    assert_int_equal(s_log_lines, 1);
    assert_non_null(strstr(s_last_log, "GBX-STORE-STATE"));
    assert_non_null(strstr(s_last_log, "newer-schema"));
    /* the refusal closed the database: a second try is refused for the same
       reason, not by RocksDB's lock (GBX_E_STORE_FAILED) */
    assert_rc(gbx_store_open(dir, &o, &st), GBX_E_STATE);
    tu_rmtree(&dir);
}

/* ------------------------------------------------------------- crash test */

/*  The message bytes of SEQ: deterministic, 64..575 bytes. */
static size_t s_msg_bytes(uint64_t seq, uint8_t *buf)
{
    size_t len = 64 + (size_t)(seq % 512);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i * 7);
    return len;
}

static void s_dedupe_key(uint64_t seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "msgid-%016llx", (unsigned long long)seq);
}

/*  The crash child: commits S_CRASH_N synced batches to DIR, each over four
    keyspaces, and writes each committed seq (8 bytes) to FD. Exit codes:
    0 done, 2 store error, 3 pipe error. */
static int s_crash_child(const char *dir, int fd)
{
    gbx_store_t *st = NULL;
    if (gbx_store_open(dir, NULL, &st) != GBX_OK)
        return 2;
    uint8_t buf[1024];
    for (int i = 0; i < S_CRASH_N; i++) {
        uint64_t seq = gbx_store_next_seq(st);
        uint8_t mkey[8], qkey[64], sval[8];
        size_t qlen = 0;
        char dkey[32], audit[64];
        gbx_store_seq_key(seq, mkey);
        gbx_store_seq_key(seq, sval);
        size_t mlen = s_msg_bytes(seq, buf);
        s_dedupe_key(seq, dkey, sizeof dkey);
        int alen = snprintf(audit, sizeof audit, "accepted seq=%llu", (unsigned long long)seq);
        gbx_batch_t *b = NULL;
        gbx_err_t rc = gbx_batch_new(st, &b);
        if (rc == GBX_OK)
            rc = gbx_store_queue_key(S_DEST, seq, qkey, sizeof qkey, &qlen);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_MESSAGES, mkey, 8, buf, mlen);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_QUEUES, qkey, qlen, sval, 8);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_DEDUPE, dkey, strlen(dkey), sval, 8);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_AUDIT, mkey, 8, audit, (size_t)alen);
        gbx_batch_put_seq(b, seq);
        if (rc == GBX_OK)
            rc = gbx_store_commit(st, &b);
        if (rc != GBX_OK)
            return 2;
        if (write(fd, &seq, sizeof seq) != (ssize_t)sizeof seq)
            return 3;
    }
    gbx_store_destroy(&st);
    return 0;
}

/*  Checks that message SEQ is stored completely in all four keyspaces. */
static void s_check_complete(gbx_store_t *st, uint64_t seq)
{
    uint8_t mkey[8], qkey[64], want[1024];
    size_t qlen = 0;
    char dkey[32], audit[64];
    gbx_store_seq_key(seq, mkey);
    size_t mlen = s_msg_bytes(seq, want);
    s_dedupe_key(seq, dkey, sizeof dkey);
    snprintf(audit, sizeof audit, "accepted seq=%llu", (unsigned long long)seq);
    assert_rc(gbx_store_queue_key(S_DEST, seq, qkey, sizeof qkey, &qlen), GBX_OK);

    uint8_t *v = NULL;
    size_t vlen = 0;
    assert_rc(gbx_store_get(st, GBX_KS_MESSAGES, mkey, 8, &v, &vlen), GBX_OK);
    if (!v)
        fail_msg("seq %llu: message missing", (unsigned long long)seq);
    assert_int_equal(vlen, mlen);
    assert_memory_equal(v, want, mlen);
    free(v);
    assert_rc(gbx_store_get(st, GBX_KS_QUEUES, qkey, qlen, &v, &vlen), GBX_OK);
    if (!v)
        fail_msg("seq %llu: queue entry missing", (unsigned long long)seq);
    assert_int_equal(vlen, 8);
    assert_int_equal(gbx_store_seq_from_key(v), seq);
    free(v);
    assert_rc(gbx_store_get(st, GBX_KS_DEDUPE, dkey, strlen(dkey), &v, &vlen), GBX_OK);
    if (!v)
        fail_msg("seq %llu: dedupe entry missing", (unsigned long long)seq);
    assert_int_equal(gbx_store_seq_from_key(v), seq);
    free(v);
    s_expect(st, GBX_KS_AUDIT, mkey, 8, audit);
}

static size_t s_count(gbx_store_t *st, gbx_keyspace_t ks)
{
    gbx_store_iter_t *it = NULL;
    size_t n = 0;
    assert_rc(gbx_store_iter_new(st, ks, NULL, 0, &it), GBX_OK);
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it))
        n++;
    assert_rc(gbx_store_iter_error(it), GBX_OK);
    gbx_store_iter_destroy(&it);
    return n;
}

static void crash_kill9(void **state)
{
    (void)state;
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("store crash", 0x5eedc0de));
    char *dir = tu_tmpdir();
    uint64_t *reported = calloc((size_t)S_CRASH_ROUNDS * S_CRASH_N, sizeof *reported);
    assert_non_null(reported);
    size_t nrep = 0;
    double t0 = s_now();

    for (int round = 0; round < S_CRASH_ROUNDS; round++) {
        uint64_t kill_after = 1 + tu_rng_below(&rng, S_CRASH_N - 1);
        unsigned delay_us = (unsigned)tu_rng_below(&rng, 2000);
        int p[2];
        assert_int_equal(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* a fresh process image: no RocksDB threads or locks inherited */
            close(p[0]);
            char fdarg[16];
            snprintf(fdarg, sizeof fdarg, "%d", p[1]);
            execl(s_self, "test_store", "--crash-child", dir, fdarg, (char *)NULL);
            _exit(4);
        }
        close(p[1]);
        size_t got = 0, before = nrep;
        uint64_t seq;
        ssize_t r;
        int killed = 0;
        while ((r = read(p[0], &seq, sizeof seq)) == (ssize_t)sizeof seq) {
            reported[nrep++] = seq;
            if (++got == kill_after && !killed) {
                if (delay_us)
                    usleep(delay_us);
                kill(pid, SIGKILL);
                killed = 1;
            }
        }
        assert_true(r == 0); /* EOF once the child is gone */
        close(p[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* finished first */

        gbx_store_t *st = s_open(dir, true);
        uint64_t max = 0;
        for (size_t i = 0; i < nrep; i++) {
            s_check_complete(st, reported[i]);
            if (reported[i] > max)
                max = reported[i];
        }
        /* nothing half-written: every stored message is complete, and the
           messages are exactly 1..last (the child commits in order) */
        size_t nmsg = s_count(st, GBX_KS_MESSAGES);
        assert_true(nmsg >= nrep);
        for (uint64_t s = 1; s <= nmsg; s++)
            s_check_complete(st, s);
        assert_int_equal(s_count(st, GBX_KS_QUEUES), nmsg);
        assert_int_equal(s_count(st, GBX_KS_DEDUPE), nmsg);
        assert_int_equal(s_count(st, GBX_KS_AUDIT), nmsg);
        assert_true(gbx_store_next_seq(st) == nmsg + 1);
        gbx_store_destroy(&st);
        print_message("store crash round %d: kill after %llu (+%u us), reported %zu, "
                      "stored %zu, unreported but durable %zu\n",
                      round, (unsigned long long)kill_after, delay_us, nrep - before, nmsg,
                      nmsg - nrep);
        (void)max;
    }
    print_message("store crash: %d rounds in %.2f s\n", S_CRASH_ROUNDS, s_now() - t0);
    free(reported);
    tu_rmtree(&dir);
}

/* ------------------------------------------------------------------ bench */

static double s_bench(const char *dir, bool sync, int n)
{
    gbx_store_t *st = s_open(dir, sync);
    uint8_t payload[1024];
    memset(payload, 0xab, sizeof payload);
    double t0 = s_now();
    for (int i = 0; i < n; i++) {
        uint64_t seq = gbx_store_next_seq(st);
        uint8_t mkey[8], qkey[64];
        size_t qlen = 0;
        gbx_store_seq_key(seq, mkey);
        assert_rc(gbx_store_queue_key(S_DEST, seq, qkey, sizeof qkey, &qlen), GBX_OK);
        gbx_batch_t *b = NULL;
        assert_rc(gbx_batch_new(st, &b), GBX_OK);
        assert_rc(gbx_batch_put(b, GBX_KS_MESSAGES, mkey, 8, payload, sizeof payload), GBX_OK);
        assert_rc(gbx_batch_put(b, GBX_KS_QUEUES, qkey, qlen, mkey, 8), GBX_OK);
        assert_rc(gbx_batch_put(b, GBX_KS_DEDUPE, payload, 16, mkey, 8), GBX_OK);
        assert_rc(gbx_batch_put(b, GBX_KS_AUDIT, mkey, 8, payload, 64), GBX_OK);
        gbx_batch_put_seq(b, seq);
        assert_rc(gbx_store_commit(st, &b), GBX_OK);
    }
    double dt = s_now() - t0;
    gbx_store_destroy(&st);
    return n / dt;
}

static void bench_synced(void **state)
{
    (void)state;
    int n = tu_quick() ? 100 : 1000;
    char *dir = tu_tmpdir();
    double synced = s_bench(dir, true, n);
    char *dir2 = tu_tmpdir();
    double unsynced = s_bench(dir2, false, n * 10);
    print_message("store bench: 1 KiB message + queue + dedupe + audit per batch, one thread: "
                  "%.0f synced commits/s (%d), %.0f unsynced commits/s (%d)\n",
                  synced, n, unsynced, n * 10);
    tu_rmtree(&dir);
    tu_rmtree(&dir2);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
        return s_crash_child(argv[2], atoi(argv[3]));
    /* argv[0], not /proc/self/exe, which is valgrind's under valgrind */
    char real[4096];
    if (argc > 0 && realpath(argv[0], real))
        snprintf(s_self, sizeof s_self, "%s", real);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_create),  cmocka_unit_test(put_get_delete),
        cmocka_unit_test(batch_atomic), cmocka_unit_test(batch_reads),
        cmocka_unit_test(iter_prefix),  cmocka_unit_test(reopen_persists),
        cmocka_unit_test(seq_recovery), cmocka_unit_test(schema_refused),
        cmocka_unit_test(crash_kill9),  cmocka_unit_test(bench_synced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
