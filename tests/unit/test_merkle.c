/*  test_merkle: RFC 6962 Merkle trees (include/gbx/merkle.h) against an
    independent recursive implementation written here.

    Reference (RFC 6962 section 2.1), with k the largest power of two < n:
        MTH({d0})     = H(0x00 || d0)
        MTH(D[n])     = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
        PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])        if m < k
                      = PATH(m - k, D[k:n]) : MTH(D[0:k])    if m >= k
    and a recursive verifier that follows the same split.

    Cases (s_sizes):
      roots                  gbx_merkle_build == reference MTH
      paths                  gbx_merkle_path == reference PATH, and root_from_path
                             gives the root, for every leaf (>= 50 sampled at 1000)
      flipped_path           one flipped path byte gives another root
      wrong_index            another index: error or another root, never the root
      wrong_tree_size        another tree size: the library agrees with the reference
                             verifier (see the note in that test)
      path_length            a path one hash short or long: error or another root
      bad_arguments          n = 0, index >= n */
#include "tu_cmocka.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const size_t s_sizes[] = {1, 2, 3, 4, 5, 7, 8, 64, 1000};
#define S_NSIZES (sizeof s_sizes / sizeof s_sizes[0])
#define S_SAMPLE 60 /* leaves checked at n = 1000 */

/* ------------------------------------------------------------- reference */

static void s_ref_leaf(const char *data, size_t len, uint8_t out[32])
{
    uint8_t buf[64];
    buf[0] = 0x00;
    memcpy(buf + 1, data, len);
    crypto_generichash(out, 32, buf, 1 + len, NULL, 0);
}

static void s_ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    crypto_generichash_state st;
    const uint8_t one = 0x01;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, &one, 1);
    crypto_generichash_update(&st, l, 32);
    crypto_generichash_update(&st, r, 32);
    crypto_generichash_final(&st, out, 32);
}

static size_t s_split(size_t n)
{
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static void s_ref_mth(const gbx_hash_t *leaves, size_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    size_t k = s_split(n);
    uint8_t l[32], r[32];
    s_ref_mth(leaves, k, l);
    s_ref_mth(leaves + k, n - k, r);
    s_ref_node(l, r, out);
}

/*  PATH(m, D[n]), leaf to root. Returns its length. */
static size_t s_ref_path(const gbx_hash_t *leaves, size_t n, size_t m, gbx_hash_t *out)
{
    if (n == 1)
        return 0;
    size_t k = s_split(n), len;
    if (m < k) {
        len = s_ref_path(leaves, k, m, out);
        s_ref_mth(leaves + k, n - k, out[len]);
    } else {
        len = s_ref_path(leaves + k, n - k, m - k, out);
        s_ref_mth(leaves, k, out[len]);
    }
    return len + 1;
}

/*  Root from (leaf, m, n, path) by the same recursion; -1 if the path does
    not have the length the tree shape needs. */
static int s_ref_verify(const uint8_t leaf[32], size_t m, size_t n, const gbx_hash_t *path,
                        size_t len, uint8_t out[32])
{
    if (m >= n)
        return -1;
    if (n == 1) {
        if (len != 0)
            return -1;
        memcpy(out, leaf, 32);
        return 0;
    }
    if (len == 0)
        return -1;
    size_t k = s_split(n);
    uint8_t sub[32];
    if (m < k) {
        if (s_ref_verify(leaf, m, k, path, len - 1, sub) != 0)
            return -1;
        s_ref_node(sub, path[len - 1], out);
    } else {
        if (s_ref_verify(leaf, m - k, n - k, path, len - 1, sub) != 0)
            return -1;
        s_ref_node(path[len - 1], sub, out);
    }
    return 0;
}

/* ------------------------------------------------------------- fixtures */

static gbx_hash_t *s_leaves(size_t n)
{
    gbx_hash_t *leaves = malloc(n * sizeof *leaves);
    assert_non_null(leaves);
    for (size_t i = 0; i < n; i++) {
        char data[32];
        int len = snprintf(data, sizeof data, "leaf-%zu", i);
        gbx_merkle_leaf((const uint8_t *)data, (size_t)len, leaves[i]);
        uint8_t ref[32];
        s_ref_leaf(data, (size_t)len, ref);
        assert_memory_equal(leaves[i], ref, 32);
    }
    return leaves;
}

static gbx_merkle_t *s_build(const gbx_hash_t *leaves, size_t n)
{
    gbx_merkle_t *t = NULL;
    assert_rc(gbx_merkle_build(leaves, n, &t), GBX_OK);
    assert_non_null(t);
    return t;
}

/*  The leaves of a tree of N to check: all up to 64, else a spread sample
    that includes the first, the last and the leaves around powers of two. */
static size_t s_indexes(size_t n, size_t *out)
{
    size_t k = 0;
    if (n <= 64) {
        for (size_t i = 0; i < n; i++)
            out[k++] = i;
        return k;
    }
    static const size_t fixed[] = {0, 1, 2, 255, 256, 511, 512, 513, 767, 768, 991, 992, 998};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        out[k++] = fixed[i];
    out[k++] = n - 1;
    tu_rng_t r;
    tu_rng_init(&r, tu_seed("merkle sample", 6962));
    while (k < S_SAMPLE)
        out[k++] = (size_t)tu_rng_below(&r, n);
    return k;
}

/* ----------------------------------------------------------------- cases */

static void test_roots(void **state)
{
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        uint8_t ref[32];
        s_ref_mth(leaves, n, ref);
        if (memcmp(gbx_merkle_root(t), ref, 32) != 0)
            fail_msg("n=%zu: root differs from RFC 6962 MTH", n);
        gbx_merkle_destroy(&t);
        assert_null(t);
        free(leaves);
    }
    /* Hand-checked shapes: n=1 is the leaf, n=3 is H(H(l0,l1), l2). */
    gbx_hash_t *leaves = s_leaves(3);
    gbx_merkle_t *t = s_build(leaves, 1);
    assert_memory_equal(gbx_merkle_root(t), leaves[0], 32);
    gbx_merkle_destroy(&t);
    uint8_t a[32], b[32];
    gbx_merkle_node(leaves[0], leaves[1], a);
    gbx_merkle_node(a, leaves[2], b);
    t = s_build(leaves, 3);
    assert_memory_equal(gbx_merkle_root(t), b, 32);
    gbx_merkle_destroy(&t);
    free(leaves);
}

static void test_paths(void **state)
{
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH], ref[GBX_MERKLE_MAX_DEPTH];
    size_t idx[S_SAMPLE > 64 ? S_SAMPLE : 64];
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        size_t count = s_indexes(n, idx);
        if (n == 1000)
            assert_true(count >= 50);
        for (size_t c = 0; c < count; c++) {
            size_t i = idx[c], len = 999;
            assert_rc(gbx_merkle_path(t, i, path, &len), GBX_OK);
            size_t ref_len = s_ref_path(leaves, n, i, ref);
            if (len != ref_len || memcmp(path, ref, len * 32) != 0)
                fail_msg("n=%zu i=%zu: audit path differs from RFC 6962 PATH", n, i);
            gbx_hash_t root;
            assert_rc(gbx_merkle_root_from_path(leaves[i], i, n, path, len, root), GBX_OK);
            if (memcmp(root, gbx_merkle_root(t), 32) != 0)
                fail_msg("n=%zu i=%zu: root from path is not the root", n, i);
        }
        gbx_merkle_destroy(&t);
        free(leaves);
    }
}

static void test_flipped_path(void **state)
{
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        size_t i = n / 2, len = 0;
        assert_rc(gbx_merkle_path(t, i, path, &len), GBX_OK);
        for (size_t b = 0; b < len * 32; b++) {
            ((uint8_t *)path)[b] ^= 0x01;
            gbx_hash_t root;
            assert_rc(gbx_merkle_root_from_path(leaves[i], i, n, path, len, root), GBX_OK);
            if (memcmp(root, gbx_merkle_root(t), 32) == 0)
                fail_msg("n=%zu i=%zu: path byte %zu flipped, same root", n, i, b);
            ((uint8_t *)path)[b] ^= 0x01;
        }
        /* and a flipped leaf */
        gbx_hash_t leaf, root;
        memcpy(leaf, leaves[i], 32);
        leaf[31] ^= 0x80;
        assert_rc(gbx_merkle_root_from_path(leaf, i, n, path, len, root), GBX_OK);
        assert_memory_not_equal(root, gbx_merkle_root(t), 32);
        gbx_merkle_destroy(&t);
        free(leaves);
    }
}

/*  Checks root_from_path(LEAF, M, N, PATH, LEN): it must never give ROOT, and
    it must agree with the reference verifier (same error / same hash). */
static void s_check_wrong(const char *what, const uint8_t leaf[32], size_t m, size_t n,
                          const gbx_hash_t *path, size_t len, const uint8_t root[32],
                          int same_root_allowed)
{
    gbx_hash_t got;
    uint8_t ref[32];
    gbx_err_t rc = gbx_merkle_root_from_path(leaf, m, n, path, len, got);
    int ref_rc = s_ref_verify(leaf, m, n, path, len, ref);
    if (rc != GBX_OK && rc != GBX_E_BAD_INCLUSION_PATH)
        fail_msg("%s m=%zu n=%zu len=%zu: %s", what, m, n, len, gbx_err_name(rc));
    if ((rc == GBX_OK) != (ref_rc == 0))
        fail_msg("%s m=%zu n=%zu len=%zu: library says %s, reference says %s", what, m, n, len,
                 gbx_err_name(rc), ref_rc == 0 ? "a root" : "no root");
    if (rc == GBX_OK && memcmp(got, ref, 32) != 0)
        fail_msg("%s m=%zu n=%zu len=%zu: library and reference roots differ", what, m, n, len);
    if (rc == GBX_OK && !same_root_allowed && memcmp(got, root, 32) == 0)
        fail_msg("%s m=%zu n=%zu len=%zu: accepted with the true root", what, m, n, len);
}

static void test_wrong_index(void **state)
{
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    size_t idx[64];
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        size_t count = s_indexes(n, idx);
        for (size_t c = 0; c < count; c++) {
            size_t i = idx[c], len = 0;
            assert_rc(gbx_merkle_path(t, i, path, &len), GBX_OK);
            static const long deltas[] = {1, -1, 2, -2, 3, 7, 64};
            for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
                long m = (long)i + deltas[d];
                if (m < 0)
                    continue;
                s_check_wrong("wrong index", leaves[i], (size_t)m, n, path, len, gbx_merkle_root(t),
                              0);
            }
            s_check_wrong("index n", leaves[i], n, n, path, len, gbx_merkle_root(t), 0);
            s_check_wrong("index 2^32", leaves[i], (size_t)1 << 32, n, path, len,
                          gbx_merkle_root(t), 0);
        }
        gbx_merkle_destroy(&t);
        free(leaves);
    }
}

/*  A wrong tree size cannot always be told from the path alone: in RFC 9162
    the path is valid for every tree size whose shape along the path is the
    same (leaf 0 of 3 and leaf 0 of 4 both have the path [l1, l2]), so
    root_from_path may give the true root for another size. That is why the
    batch signature covers tree_size (test_batch checks it). Here the library
    must agree with the reference verifier, and the cases that give the true
    root are counted. */
static void test_wrong_tree_size(void **state)
{
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    size_t idx[64], same = 0, total = 0;
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        size_t count = s_indexes(n, idx);
        for (size_t c = 0; c < count; c++) {
            size_t i = idx[c], len = 0;
            assert_rc(gbx_merkle_path(t, i, path, &len), GBX_OK);
            static const long deltas[] = {1, -1, 2, -2, 5, 100, 1000};
            for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
                long m = (long)n + deltas[d];
                if (m < 1)
                    continue;
                s_check_wrong("wrong tree size", leaves[i], i, (size_t)m, path, len,
                              gbx_merkle_root(t), 1);
                gbx_hash_t got;
                total++;
                if (gbx_merkle_root_from_path(leaves[i], i, (size_t)m, path, len, got) == GBX_OK &&
                    memcmp(got, gbx_merkle_root(t), 32) == 0)
                    same++;
            }
            s_check_wrong("tree size 0", leaves[i], i, 0, path, len, gbx_merkle_root(t), 0);
        }
        gbx_merkle_destroy(&t);
        free(leaves);
    }
    print_message("wrong tree size: %zu of %zu give the true root (same path shape)\n", same,
                  total);
    /* The known case, asserted so that the note above stays true. */
    gbx_hash_t *leaves = s_leaves(3), p[2], got;
    memcpy(p[0], leaves[1], 32);
    memcpy(p[1], leaves[2], 32);
    gbx_merkle_t *t = s_build(leaves, 3);
    assert_rc(gbx_merkle_root_from_path(leaves[0], 0, 4, p, 2, got), GBX_OK);
    assert_memory_equal(got, gbx_merkle_root(t), 32);
    gbx_merkle_destroy(&t);
    free(leaves);
}

static void test_path_length(void **state)
{
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH + 2];
    size_t idx[64];
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        gbx_hash_t *leaves = s_leaves(n);
        gbx_merkle_t *t = s_build(leaves, n);
        size_t count = s_indexes(n, idx);
        for (size_t c = 0; c < count; c++) {
            size_t i = idx[c], len = 0;
            assert_rc(gbx_merkle_path(t, i, path, &len), GBX_OK);
            if (len > 0)
                s_check_wrong("path one short", leaves[i], i, n, path, len - 1, gbx_merkle_root(t),
                              0);
            if (len > 1) /* the first hash dropped */
                s_check_wrong("path without its first hash", leaves[i], i, n, path + 1, len - 1,
                              gbx_merkle_root(t), 0);
            memcpy(path[len], leaves[0], 32);
            s_check_wrong("path one long", leaves[i], i, n, path, len + 1, gbx_merkle_root(t), 0);
            memcpy(path[len], gbx_merkle_root(t), 32);
            s_check_wrong("path + root", leaves[i], i, n, path, len + 1, gbx_merkle_root(t), 0);
        }
        gbx_merkle_destroy(&t);
        free(leaves);
    }
    /* Longer than any tree can need. */
    gbx_hash_t leaf, root;
    memset(path, 0, sizeof path);
    memset(leaf, 0, sizeof leaf);
    assert_rc(gbx_merkle_root_from_path(leaf, 0, UINT64_MAX, path, GBX_MERKLE_MAX_DEPTH + 1, root),
              GBX_E_BAD_INCLUSION_PATH);
}

static void test_bad_arguments(void **state)
{
    gbx_hash_t *leaves = s_leaves(4), path[GBX_MERKLE_MAX_DEPTH], root;
    gbx_merkle_t *t = NULL;
    assert_rc(gbx_merkle_build(leaves, 0, &t), GBX_E_ARG);
    assert_null(t);
    assert_rc(gbx_merkle_build(NULL, 4, &t), GBX_E_ARG);
    t = s_build(leaves, 4);
    size_t len = 0;
    assert_rc(gbx_merkle_path(t, 4, path, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_root_from_path(leaves[0], 4, 4, path, 2, root), GBX_E_BAD_INCLUSION_PATH);
    assert_rc(gbx_merkle_root_from_path(leaves[0], 0, 0, path, 0, root), GBX_E_BAD_INCLUSION_PATH);
    gbx_merkle_destroy(&t);
    gbx_merkle_destroy(&t); /* NULL-safe */
    free(leaves);
}

static int s_setup(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots),           cmocka_unit_test(test_paths),
        cmocka_unit_test(test_flipped_path),    cmocka_unit_test(test_wrong_index),
        cmocka_unit_test(test_wrong_tree_size), cmocka_unit_test(test_path_length),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("merkle", tests, s_setup, NULL);
}
