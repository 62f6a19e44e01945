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
      bad_arguments          n = 0, index >= n

    Growing trees and proofs over a stored tree (the reference adds RFC 9162
    2.1.4.1: SUBPROOF(m, D[n], b), k the largest power of two < n,
        = []                                       if m = n and b
        = [MTH(D[n])]                              if m = n and not b
        = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])     if m <= k
        = SUBPROOF(m - k, D[k:n], 0) : MTH(D[0:k]) if m > k
    and PROOF(m, D[n]) = SUBPROOF(m, D[n], 1)):
      peaks_roots            gbx_merkle_peaks_* over n = 1..300 appends: root ==
                             gbx_merkle_build's, npeaks == popcount(size), every
                             peak (and gbx_merkle_peak_level) == reference MTH of its
                             range; the empty tree gives GBX_E_STATE
      peaks_nodes            on_node sees each complete aligned subtree exactly once,
                             lowest first, with its reference MTH; n - popcount(n)
                             in all
      path_by                gbx_merkle_path_by == gbx_merkle_path == reference PATH
                             for every leaf of every n = 1..70; root_from_path takes it
      consistency            gbx_merkle_consistency_by == reference PROOF and
                             check_consistency accepts, every 1 <= m <= n <= 70; a
                             flipped, short or long proof, a wrong root, m and n
                             swapped, m = 0: rejected; another size (or m) with
                             the same roots: the library agrees with a reference
                             recursive verifier (a proof, like a path, may also
                             fit a size of the same shape; see wrong_tree_size)
      rfc_example            the 7-leaf tree of RFC 9162 2.1.5: its paths and its
                             proofs from sizes 3, 4 and 6, hash by hash
      proof_bad_arguments    NULL callback / buffers, index >= n, m = 0, m > n, a
                             callback error passed through */
#include "tu_cmocka.h"

#include <inttypes.h>
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

/*  SUBPROOF(m, D[n], b) appended at OUT[LEN]; returns the new length. */
static size_t s_ref_subproof(const gbx_hash_t *leaves, size_t n, size_t m, int b, gbx_hash_t *out,
                             size_t len)
{
    if (m == n) {
        if (!b)
            s_ref_mth(leaves, n, out[len++]);
        return len;
    }
    size_t k = s_split(n);
    if (m <= k) {
        len = s_ref_subproof(leaves, k, m, b, out, len);
        s_ref_mth(leaves + k, n - k, out[len]);
    } else {
        len = s_ref_subproof(leaves + k, n - k, m - k, 0, out, len);
        s_ref_mth(leaves, k, out[len]);
    }
    return len + 1;
}

/*  PROOF(m, D[n]), 0 < m <= n. Returns its length. */
static size_t s_ref_proof(const gbx_hash_t *leaves, size_t n, size_t m, gbx_hash_t *out)
{
    return m == n ? 0 : s_ref_subproof(leaves, n, m, 1, out, 0);
}

/*  Undoes SUBPROOF(m, D[n], b): the MTH of the first M leaves and of all N
    leaves of the subtree, from PROOF[0..LEN) read from its end (FIRST is the
    old root, for b); -1 if LEN is not the length the shape needs. */
static int s_ref_unproof(size_t m, size_t n, int b, const uint8_t first[32],
                         const gbx_hash_t *proof, size_t len, uint8_t old_out[32],
                         uint8_t new_out[32])
{
    if (m == n) {
        if (len != (b ? 0u : 1u))
            return -1;
        memcpy(old_out, b ? first : proof[0], 32);
        memcpy(new_out, b ? first : proof[0], 32);
        return 0;
    }
    if (len == 0)
        return -1;
    size_t k = s_split(n);
    uint8_t o[32], nw[32];
    if (m <= k) {
        if (s_ref_unproof(m, k, b, first, proof, len - 1, o, nw) != 0)
            return -1;
        memcpy(old_out, o, 32);
        s_ref_node(nw, proof[len - 1], new_out);
    } else {
        if (s_ref_unproof(m - k, n - k, 0, first, proof, len - 1, o, nw) != 0)
            return -1;
        s_ref_node(proof[len - 1], o, old_out);
        s_ref_node(proof[len - 1], nw, new_out);
    }
    return 0;
}

/*  0 if PROOF shows that (N, ROOT_N) extends (M, ROOT_M), by the recursion. */
static int s_ref_consistent(size_t m, const uint8_t root_m[32], size_t n, const uint8_t root_n[32],
                            const gbx_hash_t *proof, size_t len)
{
    if (m == 0 || m > n)
        return -1;
    if (m == n)
        return len == 0 && memcmp(root_m, root_n, 32) == 0 ? 0 : -1;
    uint8_t o[32], nw[32];
    if (s_ref_unproof(m, n, 1, root_m, proof, len, o, nw) != 0)
        return -1;
    return memcmp(o, root_m, 32) == 0 && memcmp(nw, root_n, 32) == 0 ? 0 : -1;
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

/* ------------------------------------------- growing trees, stored trees */

#define S_PEAKS_N 300 /* appends in peaks_roots / peaks_nodes */
#define S_PROOF_N 70  /* largest tree in path_by / consistency */
#define S_MAX_LVL 10  /* > log2(S_PEAKS_N) */

/*  N leaf hashes: gbx_merkle_leaf of 16 seeded random bytes each. */
static gbx_hash_t *s_rand_leaves(size_t n, const char *what)
{
    gbx_hash_t *leaves = malloc(n * sizeof *leaves);
    assert_non_null(leaves);
    tu_rng_t r;
    tu_rng_init(&r, tu_seed(what, 9162));
    for (size_t i = 0; i < n; i++) {
        uint8_t data[16];
        tu_rng_bytes(&r, data, sizeof data);
        gbx_merkle_leaf(data, sizeof data, leaves[i]);
    }
    return leaves;
}

static unsigned s_popcount(uint64_t x)
{
    unsigned c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

static unsigned s_ctz(uint64_t x)
{
    unsigned c = 0;
    for (; x && !(x & 1); x >>= 1)
        c++;
    return c;
}

static void test_peaks_roots(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(S_PEAKS_N, "merkle peaks");
    gbx_merkle_peaks_t pk;
    gbx_hash_t root;
    gbx_merkle_peaks_init(&pk);
    assert_int_equal(pk.size, 0);
    assert_int_equal(pk.npeaks, 0);
    assert_rc(gbx_merkle_peaks_root(&pk, root), GBX_E_STATE);
    for (uint64_t n = 1; n <= S_PEAKS_N; n++) {
        gbx_merkle_peaks_append(&pk, leaves[n - 1], NULL, NULL);
        assert_int_equal(pk.size, n);
        if (pk.npeaks != s_popcount(n))
            fail_msg("n=%" PRIu64 ": npeaks %u, popcount %u", n, pk.npeaks, s_popcount(n));
        /* peak p is the p-th set bit of n from the top, over the leaves after
           the peaks before it */
        uint64_t lo = 0;
        unsigned p = 0;
        for (unsigned bit = 64; bit-- > 0;) {
            if (!(n >> bit & 1))
                continue;
            if (gbx_merkle_peak_level(n, p) != bit)
                fail_msg("n=%" PRIu64 ": peak_level(%u) = %u, want %u", n, p,
                         gbx_merkle_peak_level(n, p), bit);
            uint8_t ref[32];
            s_ref_mth(leaves + lo, (size_t)1 << bit, ref);
            if (memcmp(pk.peak[p], ref, 32) != 0)
                fail_msg("n=%" PRIu64 ": peak %u is not MTH(D[%" PRIu64 ":%" PRIu64 "])", n, p, lo,
                         lo + ((uint64_t)1 << bit));
            lo += (uint64_t)1 << bit;
            p++;
        }
        assert_int_equal(lo, n);
        assert_rc(gbx_merkle_peaks_root(&pk, root), GBX_OK);
        gbx_merkle_t *t = s_build(leaves, (size_t)n);
        if (memcmp(root, gbx_merkle_root(t), 32) != 0)
            fail_msg("n=%" PRIu64 ": peaks root differs from gbx_merkle_build's", n);
        gbx_merkle_destroy(&t);
    }
    /* peak_level beyond what a 300-leaf tree reaches */
    assert_int_equal(gbx_merkle_peak_level(UINT64_MAX, 0), 63);
    assert_int_equal(gbx_merkle_peak_level(UINT64_MAX, 63), 0);
    assert_int_equal(gbx_merkle_peak_level(((uint64_t)1 << 40) | 5, 0), 40);
    assert_int_equal(gbx_merkle_peak_level(((uint64_t)1 << 40) | 5, 1), 2);
    assert_int_equal(gbx_merkle_peak_level(((uint64_t)1 << 40) | 5, 2), 0);
    free(leaves);
}

typedef struct {
    const gbx_hash_t *leaves;
    uint64_t size;       /* of the tree once the append in progress is done */
    unsigned last_level; /* reported last in this append; 0 before the first */
    size_t count;
    uint8_t seen[S_MAX_LVL][S_PEAKS_N];
} s_nodes_t;

static void s_on_node(void *arg, unsigned level, uint64_t index, const gbx_hash_t h)
{
    s_nodes_t *c = arg;
    if (level < 1 || level >= S_MAX_LVL)
        fail_msg("size=%" PRIu64 ": on_node level %u", c->size, level);
    uint64_t lo = index << level, hi = (index + 1) << level;
    if (hi != c->size) /* a subtree this append completes ends at the new leaf */
        fail_msg("size=%" PRIu64 ": on_node (%u, %" PRIu64 ") covers [%" PRIu64 ", %" PRIu64 ")",
                 c->size, level, index, lo, hi);
    if (level != c->last_level + 1)
        fail_msg("size=%" PRIu64 ": on_node level %u after level %u", c->size, level,
                 c->last_level);
    c->last_level = level;
    if (c->seen[level][index]++)
        fail_msg("size=%" PRIu64 ": on_node (%u, %" PRIu64 ") twice", c->size, level, index);
    uint8_t ref[32];
    s_ref_mth(c->leaves + lo, (size_t)(hi - lo), ref);
    if (memcmp(h, ref, 32) != 0)
        fail_msg("size=%" PRIu64 ": on_node (%u, %" PRIu64 ") hash is not MTH(D[%" PRIu64
                 ":%" PRIu64 "])",
                 c->size, level, index, lo, hi);
    c->count++;
}

static void test_peaks_nodes(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(S_PEAKS_N, "merkle peaks");
    s_nodes_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->leaves = leaves;
    gbx_merkle_peaks_t pk, bare;
    gbx_merkle_peaks_init(&pk);
    gbx_merkle_peaks_init(&bare);
    for (uint64_t n = 1; n <= S_PEAKS_N; n++) {
        c->size = n;
        c->last_level = 0;
        gbx_merkle_peaks_append(&pk, leaves[n - 1], s_on_node, c);
        gbx_merkle_peaks_append(&bare, leaves[n - 1], NULL, NULL);
        /* the append completes one subtree per trailing zero of the new size */
        if (c->last_level != s_ctz(n))
            fail_msg("n=%" PRIu64 ": on_node reached level %u, want %u", n, c->last_level,
                     s_ctz(n));
        if (c->count != n - s_popcount(n))
            fail_msg("n=%" PRIu64 ": %zu on_node calls, want %" PRIu64, n, c->count,
                     n - s_popcount(n));
        /* every complete aligned subtree of level >= 1 so far, exactly once */
        for (unsigned l = 1; l < S_MAX_LVL; l++)
            for (uint64_t i = 0; i < S_PEAKS_N; i++)
                if (c->seen[l][i] != (i < (n >> l)))
                    fail_msg("n=%" PRIu64 ": subtree (%u, %" PRIu64 ") seen %u times", n, l, i,
                             c->seen[l][i]);
        /* the callback changes nothing */
        assert_int_equal(pk.size, bare.size);
        assert_int_equal(pk.npeaks, bare.npeaks);
        assert_memory_equal(pk.peak, bare.peak, pk.npeaks * sizeof pk.peak[0]);
    }
    assert_int_equal(c->count, S_PEAKS_N - s_popcount(S_PEAKS_N));
    free(c);
    free(leaves);
}

/*  A stored tree: MTH(D[lo:hi]) by gbx_merkle_build over its leaves. */
typedef struct {
    const gbx_hash_t *leaves;
    uint64_t n;   /* leaves the proof may ask about */
    size_t calls; /* answered */
    gbx_err_t rc; /* what the callback returns */
} s_store_t;

static gbx_err_t s_store_mth(void *arg, uint64_t lo, uint64_t hi, gbx_hash_t out)
{
    s_store_t *st = arg;
    if (lo >= hi || hi > st->n)
        fail_msg("mth asked for D[%" PRIu64 ":%" PRIu64 "] of a tree of %" PRIu64, lo, hi, st->n);
    if (st->rc != GBX_OK)
        return st->rc;
    gbx_merkle_t *t = s_build(st->leaves + lo, (size_t)(hi - lo));
    memcpy(out, gbx_merkle_root(t), 32);
    gbx_merkle_destroy(&t);
    st->calls++;
    return GBX_OK;
}

static void test_path_by(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(S_PROOF_N, "merkle path_by");
    gbx_hash_t by[GBX_MERKLE_MAX_DEPTH], path[GBX_MERKLE_MAX_DEPTH], ref[GBX_MERKLE_MAX_DEPTH];
    for (size_t n = 1; n <= S_PROOF_N; n++) {
        gbx_merkle_t *t = s_build(leaves, n);
        s_store_t st = {leaves, n, 0, GBX_OK};
        for (size_t i = 0; i < n; i++) {
            size_t len = 999, tlen = 999;
            st.calls = 0;
            assert_rc(gbx_merkle_path_by(s_store_mth, &st, i, n, by, &len), GBX_OK);
            assert_rc(gbx_merkle_path(t, i, path, &tlen), GBX_OK);
            size_t ref_len = s_ref_path(leaves, n, i, ref);
            if (len != tlen || memcmp(by, path, len * 32) != 0)
                fail_msg("n=%zu i=%zu: path_by (%zu hashes) differs from gbx_merkle_path (%zu)", n,
                         i, len, tlen);
            if (len != ref_len || memcmp(by, ref, len * 32) != 0)
                fail_msg("n=%zu i=%zu: path_by differs from RFC 9162 PATH", n, i);
            if (st.calls != len)
                fail_msg("n=%zu i=%zu: %zu mth calls for %zu hashes", n, i, st.calls, len);
            gbx_hash_t root;
            assert_rc(gbx_merkle_root_from_path(leaves[i], i, n, by, len, root), GBX_OK);
            if (memcmp(root, gbx_merkle_root(t), 32) != 0)
                fail_msg("n=%zu i=%zu: root from path_by is not the root", n, i);
        }
        gbx_merkle_destroy(&t);
    }
    free(leaves);
}

/*  check_consistency must say GBX_E_BAD_INCLUSION_PATH. */
#define s_reject(what, m, rm, n, rn, proof, len)                                                   \
    do {                                                                                           \
        gbx_err_t rc_ = gbx_merkle_check_consistency((m), (rm), (n), (rn), (proof), (len));        \
        if (rc_ != GBX_E_BAD_INCLUSION_PATH)                                                       \
            fail_msg("%s: m=%zu n=%zu len=%zu: got %s, want BAD_INCLUSION_PATH", (what),           \
                     (size_t)(m), (size_t)(n), (size_t)(len), gbx_err_name(rc_));                  \
    } while (0)

/*  check_consistency must agree with the reference verifier; counts in
 *ACCEPTED the cases both take. */
static void s_agree(const char *what, size_t m, const uint8_t root_m[32], size_t n,
                    const uint8_t root_n[32], const gbx_hash_t *proof, size_t len, size_t *accepted)
{
    gbx_err_t rc = gbx_merkle_check_consistency(m, root_m, n, root_n, proof, len);
    int ref = s_ref_consistent(m, root_m, n, root_n, proof, len);
    if (rc != GBX_OK && rc != GBX_E_BAD_INCLUSION_PATH)
        fail_msg("%s: m=%zu n=%zu len=%zu: %s", what, m, n, len, gbx_err_name(rc));
    if ((rc == GBX_OK) != (ref == 0))
        fail_msg("%s: m=%zu n=%zu len=%zu: library says %s, reference says %s", what, m, n, len,
                 gbx_err_name(rc), ref == 0 ? "consistent" : "not");
    if (rc == GBX_OK)
        (*accepted)++;
}

static void test_consistency(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(S_PROOF_N, "merkle consistency");
    gbx_hash_t roots[S_PROOF_N + 1]; /* roots[n] = MTH(D[0:n]) */
    for (size_t n = 1; n <= S_PROOF_N; n++)
        s_ref_mth(leaves, n, roots[n]);
    gbx_hash_t proof[GBX_MERKLE_MAX_DEPTH + 2], ref[GBX_MERKLE_MAX_DEPTH + 1], bad, zero;
    memset(zero, 0, sizeof zero);
    size_t longest = 0, wrong_ok = 0, wrong_total = 0;
    for (size_t n = 1; n <= S_PROOF_N; n++) {
        s_store_t st = {leaves, n, 0, GBX_OK};
        for (size_t m = 1; m <= n; m++) {
            size_t len = 999;
            st.calls = 0;
            assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, m, n, proof, &len), GBX_OK);
            size_t ref_len = s_ref_proof(leaves, n, m, ref);
            if (len != ref_len || memcmp(proof, ref, len * 32) != 0)
                fail_msg("m=%zu n=%zu: consistency_by (%zu hashes) differs from RFC 9162 PROOF "
                         "(%zu)",
                         m, n, len, ref_len);
            if (st.calls != len)
                fail_msg("m=%zu n=%zu: %zu mth calls for %zu hashes", m, n, st.calls, len);
            if (len > longest)
                longest = len;
            gbx_err_t rc = gbx_merkle_check_consistency(m, roots[m], n, roots[n], proof, len);
            if (rc != GBX_OK)
                fail_msg("m=%zu n=%zu: check_consistency says %s", m, n, gbx_err_name(rc));
            assert_int_equal(s_ref_consistent(m, roots[m], n, roots[n], proof, len), 0);
            s_reject("m = 0", 0, roots[m], n, roots[n], proof, len);
            memcpy(bad, roots[m], 32);
            bad[7] ^= 0x10;
            s_reject("wrong root_m", m, bad, n, roots[n], proof, len);
            memcpy(bad, roots[n], 32);
            bad[31] ^= 0x01;
            s_reject("wrong root_n", m, roots[m], n, bad, proof, len);
            if (m == n) {
                assert_int_equal(len, 0);
                memcpy(proof[0], roots[n], 32);
                s_reject("m = n, one hash", m, roots[m], n, roots[n], proof, 1);
                if (n > 1)
                    s_reject("m = n, roots of other trees", m, roots[m], n, roots[n - 1], proof, 0);
                continue;
            }
            assert_true(len >= 1);
            s_reject("swapped", n, roots[n], m, roots[m], proof, len);
            s_reject("n's root as m's", m, roots[n], n, roots[n], proof, len);
            s_reject("empty proof", m, roots[m], n, roots[n], proof, 0);
            for (size_t i = 0; i < len; i++) {
                size_t byte = (i * 13 + m) % 32;
                proof[i][byte] ^= 0x04;
                if (gbx_merkle_check_consistency(m, roots[m], n, roots[n], proof, len) !=
                    GBX_E_BAD_INCLUSION_PATH)
                    fail_msg("m=%zu n=%zu: proof hash %zu byte %zu flipped, accepted", m, n, i,
                             byte);
                proof[i][byte] ^= 0x04;
            }
            s_reject("last hash dropped", m, roots[m], n, roots[n], proof, len - 1);
            s_reject("first hash dropped", m, roots[m], n, roots[n], proof + 1, len - 1);
            memcpy(proof[len], zero, 32);
            s_reject("zero hash appended", m, roots[m], n, roots[n], proof, len + 1);
            memcpy(proof[len], roots[n], 32);
            s_reject("root_n appended", m, roots[m], n, roots[n], proof, len + 1);
            memmove(proof[1], proof[0], len * 32);
            memcpy(proof[0], roots[m], 32);
            s_reject("root_m prepended", m, roots[m], n, roots[n], proof, len + 1);
            memmove(proof[0], proof[1], len * 32);
            /* still the proof it was */
            assert_rc(gbx_merkle_check_consistency(m, roots[m], n, roots[n], proof, len), GBX_OK);
            /* the proof of (m, n) is not one of (m, n +- 1) */
            if (n + 1 <= S_PROOF_N)
                s_reject("n + 1", m, roots[m], n + 1, roots[n + 1], proof, len);
            if (m < n - 1)
                s_reject("n - 1", m, roots[m], n - 1, roots[n - 1], proof, len);
            /* another size with n's root: like an inclusion path, the proof
               may also fit a size whose shape is the same (PROOF(1, D[3]) =
               [d1, d2] checks as size 4 with root MTH(D[0:3])), so the library
               must agree with the reference verifier */
            static const long dn[] = {1, 2, 3, -1, -2};
            for (size_t d = 0; d < sizeof dn / sizeof dn[0]; d++) {
                long n2 = (long)n + dn[d];
                if (n2 >= (long)m && n2 != (long)n) {
                    s_agree("another size, n's root", m, roots[m], (size_t)n2, roots[n], proof, len,
                            &wrong_ok);
                    wrong_total++;
                }
            }
            s_agree("size 2n, n's root", m, roots[m], 2 * n, roots[n], proof, len, &wrong_ok);
            wrong_total++;
            if (m + 1 < n) {
                s_agree("size m + 1, m's root", m + 1, roots[m], n, roots[n], proof, len,
                        &wrong_ok);
                wrong_total++;
            }
        }
    }
    assert_true(longest >= 7); /* e.g. m = 63, n = 70 */
    print_message("consistency, wrong size: %zu of %zu accepted (same proof shape)\n", wrong_ok,
                  wrong_total);
    /* The known case, asserted so that the note above stays true. */
    memcpy(proof[0], leaves[1], 32);
    memcpy(proof[1], leaves[2], 32);
    assert_rc(gbx_merkle_check_consistency(1, roots[1], 3, roots[3], proof, 2), GBX_OK);
    assert_rc(gbx_merkle_check_consistency(1, roots[1], 4, roots[3], proof, 2), GBX_OK);
    free(leaves);
}

/*  PROOF[0..LEN) must be the MTH of RANGES[0..COUNT), in that order. */
static void s_expect_ranges(const char *what, const gbx_hash_t *leaves, const gbx_hash_t *proof,
                            size_t len, const size_t (*ranges)[2], size_t count)
{
    if (len != count)
        fail_msg("%s: %zu hashes, want %zu", what, len, count);
    for (size_t i = 0; i < count; i++) {
        uint8_t ref[32];
        s_ref_mth(leaves + ranges[i][0], ranges[i][1] - ranges[i][0], ref);
        if (memcmp(proof[i], ref, 32) != 0)
            fail_msg("%s: hash %zu is not MTH(D[%zu:%zu])", what, i, ranges[i][0], ranges[i][1]);
    }
}

/*  RFC 9162 2.1.5, the tree of 7 leaves d0..d6 (hash = MTH(D[0:7])):

                  hash
                 /    \
                /      \
               /        \
              k          l
             / \        / \
            g   h      i   j
           / \ / \    / \  |
           a b c d    e f  d6
           | | | |    | |
          d0 d1 d2 d3 d4 d5

    Paths: d0 [b, h, l], d3 [c, g, l], d4 [f, j, k], d6 [i, k]. Proofs:
    from 3 [c, d, g, l], from 4 [l], from 6 [i, j, k]. By the definitions:
    PROOF(3, D[7]) = SUBPROOF(3, D[0:4], 1) : l (k = 4, 3 <= 4)
                   = SUBPROOF(1, D[2:4], 0) : g : l (k = 2, 3 > 2)
                   = SUBPROOF(1, D[2:3], 0) : d : g : l = [c, d, g, l];
    PROOF(4, D[7]) = SUBPROOF(4, D[0:4], 1) : l = [l];
    PROOF(6, D[7]) = SUBPROOF(2, D[4:7], 0) : k = SUBPROOF(2, D[4:6], 0) : j : k
                   = [i, j, k]. */
static void test_rfc_example(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(7, "merkle rfc example");
    s_store_t st = {leaves, 7, 0, GBX_OK};
    gbx_hash_t proof[GBX_MERKLE_MAX_DEPTH + 1], root7, rootm;
    s_ref_mth(leaves, 7, root7);
    size_t len = 0;

    /* the nodes as leaf ranges: b D[1:2], c D[2:3], d D[3:4], f D[5:6], g D[0:2],
       h D[2:4], i D[4:6], j D[6:7], k D[0:4], l D[4:7] */
    static const size_t path0[][2] = {{1, 2}, {2, 4}, {4, 7}};         /* b h l */
    static const size_t path3[][2] = {{2, 3}, {0, 2}, {4, 7}};         /* c g l */
    static const size_t path4[][2] = {{5, 6}, {6, 7}, {0, 4}};         /* f j k */
    static const size_t path6[][2] = {{4, 6}, {0, 4}};                 /* i k */
    static const size_t from3[][2] = {{2, 3}, {3, 4}, {0, 2}, {4, 7}}; /* c d g l */
    static const size_t from4[][2] = {{4, 7}};                         /* l */
    static const size_t from6[][2] = {{4, 6}, {6, 7}, {0, 4}};         /* i j k */

    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 0, 7, proof, &len), GBX_OK);
    s_expect_ranges("path of d0", leaves, proof, len, path0, 3);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 3, 7, proof, &len), GBX_OK);
    s_expect_ranges("path of d3", leaves, proof, len, path3, 3);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 4, 7, proof, &len), GBX_OK);
    s_expect_ranges("path of d4", leaves, proof, len, path4, 3);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 6, 7, proof, &len), GBX_OK);
    s_expect_ranges("path of d6", leaves, proof, len, path6, 2);

    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 3, 7, proof, &len), GBX_OK);
    s_expect_ranges("proof from 3", leaves, proof, len, from3, 4);
    s_ref_mth(leaves, 3, rootm);
    assert_rc(gbx_merkle_check_consistency(3, rootm, 7, root7, proof, len), GBX_OK);

    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 4, 7, proof, &len), GBX_OK);
    s_expect_ranges("proof from 4", leaves, proof, len, from4, 1);
    s_ref_mth(leaves, 4, rootm);
    assert_rc(gbx_merkle_check_consistency(4, rootm, 7, root7, proof, len), GBX_OK);
    /* size 4 is a power of two: its root is the first node, not in the proof */
    uint8_t want[32];
    gbx_merkle_node(rootm, proof[0], want);
    assert_memory_equal(want, root7, 32);

    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 6, 7, proof, &len), GBX_OK);
    s_expect_ranges("proof from 6", leaves, proof, len, from6, 3);
    s_ref_mth(leaves, 6, rootm);
    assert_rc(gbx_merkle_check_consistency(6, rootm, 7, root7, proof, len), GBX_OK);
    free(leaves);
}

static void test_proof_bad_arguments(void **state)
{
    gbx_hash_t *leaves = s_rand_leaves(4, "merkle bad arguments");
    s_store_t st = {leaves, 4, 0, GBX_OK};
    gbx_hash_t proof[GBX_MERKLE_MAX_DEPTH + 2], r1, r4;
    size_t len = 999;
    s_ref_mth(leaves, 1, r1);
    s_ref_mth(leaves, 4, r4);

    assert_rc(gbx_merkle_path_by(NULL, &st, 0, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 4, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 5, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, UINT64_MAX, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 0, 0, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 0, 4, NULL, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 0, 4, proof, NULL), GBX_E_ARG);

    assert_rc(gbx_merkle_consistency_by(NULL, &st, 1, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 0, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 5, 4, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 0, 0, proof, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 1, 4, NULL, &len), GBX_E_ARG);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 1, 4, proof, NULL), GBX_E_ARG);
    assert_int_equal(st.calls, 0);

    /* an error of the store comes back as it is */
    st.rc = GBX_E_STORE_FAILED;
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 2, 4, proof, &len), GBX_E_STORE_FAILED);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 1, 4, proof, &len), GBX_E_STORE_FAILED);
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 3, 4, proof, &len), GBX_E_STORE_FAILED);
    /* m = n asks the store nothing */
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 4, 4, proof, &len), GBX_OK);
    assert_int_equal(len, 0);
    /* a tree of one leaf has an empty path */
    st.rc = GBX_OK;
    len = 999;
    assert_rc(gbx_merkle_path_by(s_store_mth, &st, 0, 1, proof, &len), GBX_OK);
    assert_int_equal(len, 0);

    /* the checker: no proof buffer, a proof longer than any tree needs */
    assert_rc(gbx_merkle_consistency_by(s_store_mth, &st, 1, 4, proof, &len), GBX_OK);
    assert_int_equal(len, 2);
    assert_rc(gbx_merkle_check_consistency(1, r1, 4, r4, proof, len), GBX_OK);
    assert_rc(gbx_merkle_check_consistency(1, r1, 4, r4, NULL, len), GBX_E_BAD_INCLUSION_PATH);
    memset(proof, 0, sizeof proof);
    assert_rc(gbx_merkle_check_consistency(1, r1, UINT64_MAX, r4, proof, GBX_MERKLE_MAX_DEPTH + 2),
              GBX_E_BAD_INCLUSION_PATH);
    assert_rc(gbx_merkle_check_consistency(0, r1, 0, r1, NULL, 0), GBX_E_BAD_INCLUSION_PATH);
    /* m > n with a proof the bit arithmetic would take: m = 3 (fn = 2), n = 2
       (sn = 1) and [d0, d1] give fr = d0 and sr = H(d0, d1) = MTH(D[0:2]) */
    gbx_hash_t r2, pair[2];
    s_ref_mth(leaves, 2, r2);
    memcpy(pair[0], leaves[0], 32);
    memcpy(pair[1], leaves[1], 32);
    assert_rc(gbx_merkle_check_consistency(3, leaves[0], 2, r2, pair, 2), GBX_E_BAD_INCLUSION_PATH);
    /* a proof that ends before the size is used up (RFC 9162: sn must be 0):
       PROOF(1, D[2]) = [d1] checked as size 3 with root MTH(D[0:2]) */
    assert_rc(gbx_merkle_check_consistency(1, leaves[0], 2, r2, pair + 1, 1), GBX_OK);
    assert_rc(gbx_merkle_check_consistency(1, leaves[0], 3, r2, pair + 1, 1),
              GBX_E_BAD_INCLUSION_PATH);
    assert_rc(gbx_merkle_check_consistency(4, r4, 4, r4, NULL, 0), GBX_OK);
    free(leaves);
}

static int s_setup(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_flipped_path),
        cmocka_unit_test(test_wrong_index),
        cmocka_unit_test(test_wrong_tree_size),
        cmocka_unit_test(test_path_length),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_peaks_roots),
        cmocka_unit_test(test_peaks_nodes),
        cmocka_unit_test(test_path_by),
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_proof_bad_arguments),
    };
    return cmocka_run_group_tests_name("merkle", tests, s_setup, NULL);
}
