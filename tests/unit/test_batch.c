/*  test_batch: batch signatures (gbx_envelope_sign_batch) and the
    verification cache (gbx_vcache_t), include/gbx/envelope.h.

    Signed message of a batch: "gbx1-batch\0" || be32(tree_size) || root,
    root = RFC 6962 Merkle root over leaves BLAKE2b-256(0x00 || header bytes).

    Cases (sizes s_sizes):
      batches         every envelope decodes and verifies, without and with a
                      vcache; with a fresh 256-slot cache one batch costs exactly
                      1 signature verification and n-1 hits; the proofs and the
                      signature are what the format says
      tampering       s_tamper_cases, at the first, middle and last leaf, without a
                      cache and with a cache that already holds the batch root:
                      each gives its listed error
      arguments       n = 0, n > GBX_BATCH_MAX, one invalid header: error and no
                      envelope handed out; vcache of 0 slots */
#include "tu_cmocka.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const size_t s_sizes[] = {1, 2, 3, 64, 1000};
#define S_NSIZES (sizeof s_sizes / sizeof s_sizes[0])

typedef struct {
    gbx_identity_t *a, *a2;
} s_fix_t;

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->a = tu_identity_fixed("gd.qh-amr", NULL);
    f->a2 = tu_identity_fixed("gd.qh-amr", "rotated");
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->a);
    gbx_identity_destroy(&f->a2);
    free(f);
    return 0;
}

/*  One signed batch, packed. */
typedef struct {
    size_t n;
    tu_header_t *t;
    gbx_envelope_t **env;
    uint8_t **wire;
    size_t *len;
} s_batch_t;

static void s_batch_make(const gbx_identity_t *signer, size_t n, uint32_t variant0, s_batch_t *b)
{
    b->n = n;
    b->t = calloc(n, sizeof *b->t);
    b->env = calloc(n, sizeof *b->env);
    b->wire = calloc(n, sizeof *b->wire);
    b->len = calloc(n, sizeof *b->len);
    const gbx_header_t **hs = calloc(n, sizeof *hs);
    assert_true(b->t && b->env && b->wire && b->len && hs);
    for (size_t i = 0; i < n; i++) {
        tu_header_fixture(&b->t[i], variant0 + (uint32_t)i);
        hs[i] = &b->t[i].h;
    }
    assert_rc(gbx_envelope_sign_batch(signer, hs, n, b->env), GBX_OK);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(b->env[i]);
        b->wire[i] = tu_pack(b->env[i], &b->len[i]);
    }
    free(hs);
}

static void s_batch_free(s_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        gbx_envelope_destroy(&b->env[i]);
        free(b->wire[i]);
    }
    free(b->t);
    free(b->env);
    free(b->wire);
    free(b->len);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- batches */

static void s_check_format(const s_fix_t *f, const s_batch_t *b)
{
    size_t n = b->n;
    gbx_hash_t *leaves = malloc(n * sizeof *leaves);
    for (size_t i = 0; i < n; i++) {
        size_t hl = 0;
        const uint8_t *h = gbx_envelope_header_bytes(b->env[i], &hl);
        uint8_t *buf = malloc(1 + hl);
        buf[0] = 0x00;
        memcpy(buf + 1, h, hl);
        crypto_generichash(leaves[i], 32, buf, 1 + hl, NULL, 0);
        free(buf);
        /* The header bytes are those a single signature would carry. */
        gbx_envelope_t *single = NULL;
        assert_rc(gbx_envelope_sign(f->a, &b->t[i].h, &single), GBX_OK);
        size_t sl = 0;
        const uint8_t *sh = gbx_envelope_header_bytes(single, &sl);
        assert_int_equal(sl, hl);
        assert_memory_equal(sh, h, hl);
        gbx_envelope_destroy(&single);
    }
    gbx_merkle_t *tree = NULL;
    assert_rc(gbx_merkle_build(leaves, n, &tree), GBX_OK);
    const uint8_t *root = gbx_merkle_root(tree);
    uint8_t msg[11 + 4 + 32];
    memcpy(msg, "gbx1-batch", 11);
    msg[11] = (uint8_t)(n >> 24);
    msg[12] = (uint8_t)(n >> 16);
    msg[13] = (uint8_t)(n >> 8);
    msg[14] = (uint8_t)n;
    memcpy(msg + 15, root, 32);
    const Gbx__V1__Envelope *m0 = gbx_envelope_message(b->env[0]);
    assert_int_equal(crypto_sign_verify_detached(m0->signature.data, msg, sizeof msg,
                                                 gbx_identity_public(f->a)->sign_pk),
                     0);
    for (size_t i = 0; i < n; i++) {
        const Gbx__V1__Envelope *m = gbx_envelope_message(b->env[i]);
        assert_int_equal(gbx_envelope_is_batch(b->env[i]), 1);
        assert_non_null(m->batch);
        assert_int_equal(m->batch->leaf_index, i);
        assert_int_equal(m->batch->tree_size, n);
        assert_int_equal(m->batch->root.len, 32);
        assert_memory_equal(m->batch->root.data, root, 32);
        assert_int_equal(m->signature.len, 64);
        assert_memory_equal(m->signature.data, m0->signature.data, 64);
        gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
        size_t plen = 0;
        assert_rc(gbx_merkle_path(tree, i, path, &plen), GBX_OK);
        assert_int_equal(m->batch->path.len, plen * 32);
        if (plen)
            assert_memory_equal(m->batch->path.data, path, plen * 32);
    }
    gbx_merkle_destroy(&tree);
    free(leaves);
}

static void test_batches(void **state)
{
    s_fix_t *f = *state;
    const gbx_pubid_t *pub = gbx_identity_public(f->a);
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        s_batch_t b;
        s_batch_make(f->a, n, (uint32_t)(n * 10000), &b);
        s_check_format(f, &b);
        for (size_t i = 0; i < n; i++) {
            gbx_envelope_t *d = NULL;
            assert_rc(gbx_envelope_decode(b.wire[i], b.len[i], &d), GBX_OK);
            assert_int_equal(gbx_envelope_is_batch(d), 1);
            if (gbx_envelope_verify(d, pub, NULL) != GBX_OK)
                fail_msg("n=%zu i=%zu: does not verify without a cache", n, i);
            gbx_envelope_destroy(&d);
            assert_rc(gbx_envelope_verify(b.env[i], pub, NULL), GBX_OK);
        }
        gbx_vcache_t *cache = NULL;
        assert_rc(gbx_vcache_new(256, &cache), GBX_OK);
        for (size_t i = 0; i < n; i++)
            if (tu_decode_verify(b.wire[i], b.len[i], pub, cache) != GBX_OK)
                fail_msg("n=%zu i=%zu: does not verify with a cache", n, i);
        uint64_t verified = 0, hits = 0;
        gbx_vcache_stats(cache, &verified, &hits);
        if (verified != 1 || hits != n - 1)
            fail_msg("n=%zu: %llu verifications and %llu hits, want 1 and %zu", n,
                     (unsigned long long)verified, (unsigned long long)hits, n - 1);
        /* Again: all hits. */
        for (size_t i = 0; i < n; i++)
            assert_rc(tu_decode_verify(b.wire[i], b.len[i], pub, cache), GBX_OK);
        gbx_vcache_stats(cache, &verified, &hits);
        assert_int_equal(verified, 1);
        assert_int_equal(hits, 2 * n - 1);
        /* The cache does not stand in for the key: another key is refused. */
        assert_rc(tu_decode_verify(b.wire[0], b.len[0], gbx_identity_public(f->a2), cache),
                  GBX_E_WRONG_KEY);
        gbx_vcache_destroy(&cache);
        assert_null(cache);
        s_batch_free(&b);
    }
}

/* ------------------------------------------------------------- tampering */

typedef struct {
    const s_batch_t *a, *b; /* the batch under test, another of the same size */
    size_t i;
    uint8_t buf[40 * 32]; /* room for replaced bytes fields */
} s_ctx_t;

typedef void (*s_mutate_fn)(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c);

static void t_path_flip(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    memcpy(c->buf, p->path.data, p->path.len);
    c->buf[p->path.len / 2] ^= 0x01;
    p->path.data = c->buf;
}
static void t_path_last_flip(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    memcpy(c->buf, p->path.data, p->path.len);
    c->buf[p->path.len - 1] ^= 0x80;
    p->path.data = c->buf;
}
static void t_root_flip(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    memcpy(c->buf, p->root.data, 32);
    c->buf[0] ^= 0x01;
    p->root.data = c->buf;
}
static void t_index_plus(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->leaf_index++;
}
static void t_index_minus(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->leaf_index--;
}
static void t_index_size(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->leaf_index = p->tree_size;
}
static void t_size_0(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->tree_size = 0;
}
static void t_size_65537(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->tree_size = GBX_BATCH_MAX + 1;
}
static void t_size_plus(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->tree_size++;
}
static void t_size_minus(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->tree_size--;
}
static void t_path_short(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->path.len -= 32;
}
static void t_path_long(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    if (p->path.len)
        memcpy(c->buf, p->path.data, p->path.len);
    memcpy(c->buf + p->path.len, p->root.data, 32);
    p->path.data = c->buf;
    p->path.len += 32;
}
static void t_path_17(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    memset(c->buf, 0x42, 17 * 32);
    p->path.data = c->buf;
    p->path.len = 17 * 32;
}
static void t_path_odd(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    if (p->path.len)
        memcpy(c->buf, p->path.data, p->path.len);
    c->buf[p->path.len] = 0;
    p->path.data = c->buf;
    p->path.len += 1;
}
static void t_root_31(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->root.len = 31;
}
static void t_root_absent(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    p->root.len = 0;
}
static void t_sig_flip(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    memcpy(c->buf, m->signature.data, 64);
    c->buf[17] ^= 0x04;
    m->signature.data = c->buf;
}
static void t_proof_removed(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    m->batch = NULL;
}
/*  Batch B's proof (same index) under batch A's header and signature. */
static void t_proof_from_b(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    const Gbx__V1__BatchProof *o = gbx_envelope_message(c->b->env[c->i])->batch;
    if (o->path.len)
        memcpy(c->buf, o->path.data, o->path.len);
    memcpy(c->buf + o->path.len, o->root.data, 32);
    p->path.data = c->buf;
    p->root.data = c->buf + o->path.len;
}
/*  Batch B's proof and signature under batch A's header. */
static void t_proof_sig_from_b(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    t_proof_from_b(m, p, c);
    m->signature = gbx_envelope_message(c->b->env[c->i])->signature;
}
/*  Batch A's header moved into batch B's envelope. */
static void t_header_from_b(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    m->header = gbx_envelope_message(c->b->env[c->i])->header;
}
/*  Another leaf's header under this leaf's proof. */
static void t_header_neighbour(Gbx__V1__Envelope *m, Gbx__V1__BatchProof *p, s_ctx_t *c)
{
    m->header = gbx_envelope_message(c->a->env[(c->i + 1) % c->a->n])->header;
}

enum { S_ANY_SIZE = 0, S_NEEDS_PATH = 1, S_NEEDS_NEXT = 2, S_NEEDS_PREV = 4, S_NEEDS_N2 = 8 };

static const struct {
    const char *name;
    s_mutate_fn mutate;
    int needs;
    gbx_err_t want_decode;
    gbx_err_t want_verify;  /* when decode gives GBX_OK */
    gbx_err_t want_verify2; /* also accepted (see the case), or GBX_OK for none */
} s_tamper_cases[] = {
    {"path byte flipped", t_path_flip, S_NEEDS_PATH, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"last path byte flipped", t_path_last_flip, S_NEEDS_PATH, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"root byte flipped", t_root_flip, S_ANY_SIZE, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"leaf_index + 1", t_index_plus, S_NEEDS_NEXT, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"leaf_index - 1", t_index_minus, S_NEEDS_PREV, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    /* Proof shape: refused at decode, with the header fields (2-envelope.md section 6.2
       and section 8 step 6). */
    {"leaf_index = tree_size", t_index_size, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"tree_size 0", t_size_0, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"tree_size 65537", t_size_65537, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    /* The path alone may fit another tree size (leaf 0 of 3 and of 4 have the
       same path), so the root may still match: then the signature, which covers
       tree_size, refuses it. */
    {"tree_size + 1", t_size_plus, S_ANY_SIZE, GBX_OK, GBX_E_BAD_INCLUSION_PATH,
     GBX_E_BAD_SIGNATURE},
    {"tree_size - 1", t_size_minus, S_NEEDS_N2, GBX_OK, GBX_E_BAD_INCLUSION_PATH,
     GBX_E_BAD_SIGNATURE},
    {"path one hash short", t_path_short, S_NEEDS_PATH, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"path one hash long", t_path_long, S_ANY_SIZE, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"path of 17 hashes", t_path_17, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"path not a multiple of 32 bytes", t_path_odd, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"root 31 bytes", t_root_31, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"root absent", t_root_absent, S_ANY_SIZE, GBX_E_BAD_INCLUSION_PATH, 0, 0},
    {"signature flipped", t_sig_flip, S_ANY_SIZE, GBX_OK, GBX_E_BAD_SIGNATURE, 0},
    {"proof removed", t_proof_removed, S_ANY_SIZE, GBX_OK, GBX_E_BAD_SIGNATURE, 0},
    {"proof from batch B", t_proof_from_b, S_ANY_SIZE, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"proof and signature from batch B", t_proof_sig_from_b, S_ANY_SIZE, GBX_OK,
     GBX_E_BAD_INCLUSION_PATH, 0},
    {"header from batch B", t_header_from_b, S_ANY_SIZE, GBX_OK, GBX_E_BAD_INCLUSION_PATH, 0},
    {"header of the next leaf", t_header_neighbour, S_NEEDS_N2, GBX_OK, GBX_E_BAD_INCLUSION_PATH,
     0},
};

/*  Packs envelope I of A after MUTATE (on shallow copies). */
static uint8_t *s_tampered(s_ctx_t *c, s_mutate_fn mutate, size_t *len)
{
    const Gbx__V1__Envelope *orig = gbx_envelope_message(c->a->env[c->i]);
    Gbx__V1__Envelope m = *orig;
    Gbx__V1__BatchProof p = *orig->batch;
    m.batch = &p;
    mutate(&m, &p, c);
    return tu_pack_msg(&m, len);
}

static void s_tamper_all(const s_fix_t *f, const s_batch_t *a, const s_batch_t *b, size_t i,
                         gbx_vcache_t *cache, int *fails)
{
    const gbx_pubid_t *pub = gbx_identity_public(f->a);
    s_ctx_t *c = calloc(1, sizeof *c);
    c->a = a;
    c->b = b;
    c->i = i;
    size_t n = a->n;
    size_t path_len = gbx_envelope_message(a->env[i])->batch->path.len;
    for (size_t k = 0; k < sizeof s_tamper_cases / sizeof s_tamper_cases[0]; k++) {
        int needs = s_tamper_cases[k].needs;
        if (((needs & S_NEEDS_PATH) && path_len == 0) || ((needs & S_NEEDS_NEXT) && i + 1 >= n) ||
            ((needs & S_NEEDS_PREV) && i == 0) || ((needs & S_NEEDS_N2) && n < 2) ||
            (s_tamper_cases[k].mutate == t_size_minus && i + 1 >= n))
            continue;
        char name[160];
        snprintf(name, sizeof name, "%s (n=%zu, leaf %zu, %s)", s_tamper_cases[k].name, n, i,
                 cache ? "warm cache" : "no cache");
        size_t len = 0;
        uint8_t *wire = s_tampered(c, s_tamper_cases[k].mutate, &len);
        gbx_envelope_t *e = NULL;
        gbx_err_t rc = gbx_envelope_decode(wire, len, &e);
        check_case_rc(*fails, name, rc, s_tamper_cases[k].want_decode);
        if (rc == GBX_OK && s_tamper_cases[k].want_decode != GBX_OK) {
            /* still never accepted */
            rc = gbx_envelope_verify(e, pub, cache);
            if (rc == GBX_OK) {
                print_error("case \"%s\": accepted\n", name);
                (*fails)++;
            }
        } else if (rc == GBX_OK) {
            rc = gbx_envelope_verify(e, pub, cache);
            if (rc != s_tamper_cases[k].want_verify && s_tamper_cases[k].want_verify2 != GBX_OK &&
                rc == s_tamper_cases[k].want_verify2)
                rc = s_tamper_cases[k].want_verify;
            check_case_rc(*fails, name, rc, s_tamper_cases[k].want_verify);
        }
        gbx_envelope_destroy(&e);
        free(wire);
    }
    free(c);
}

static void test_tampering(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    const gbx_pubid_t *pub = gbx_identity_public(f->a);
    for (size_t s = 0; s < S_NSIZES; s++) {
        size_t n = s_sizes[s];
        s_batch_t a, b;
        s_batch_make(f->a, n, (uint32_t)(n * 10000), &a);
        s_batch_make(f->a, n, (uint32_t)(n * 10000 + 5000), &b);
        /* The cache is direct-mapped under a random key: with 256 slots A's
           and B's roots shared a slot in 1 run of 256 (B evicts A, a third
           verification, a flaky count). 65536 slots make that 1 in 65536. */
        gbx_vcache_t *cache = NULL;
        assert_rc(gbx_vcache_new(65536, &cache), GBX_OK);
        for (size_t i = 0; i < n; i++) { /* warm: A's and B's roots are cached */
            assert_rc(tu_decode_verify(a.wire[i], a.len[i], pub, cache), GBX_OK);
            assert_rc(tu_decode_verify(b.wire[i], b.len[i], pub, cache), GBX_OK);
        }
        size_t idx[3] = {0, n / 2, n - 1};
        for (size_t k = 0; k < 3; k++) {
            if (k > 0 && idx[k] == idx[k - 1])
                continue;
            s_tamper_all(f, &a, &b, idx[k], NULL, &fails);
            s_tamper_all(f, &a, &b, idx[k], cache, &fails);
        }
        /* Nothing tampered was cached as verified. */
        uint64_t verified = 0, hits = 0;
        gbx_vcache_stats(cache, &verified, &hits);
        assert_int_equal(verified, 2);
        gbx_vcache_destroy(&cache);
        s_batch_free(&a);
        s_batch_free(&b);
    }
    if (fails)
        fail_msg("%d tampered envelopes gave another result (listed above)", fails);
}

/* ------------------------------------------------------------- arguments */

/*  Only the sender signs, and a batch names each message once. */
static void test_sender_and_ids(void **state)
{
    (void)state;
    gbx_identity_t *a = tu_identity_fixed("gd.qh-amr", NULL);
    tu_header_t t[3];
    const gbx_header_t *hs[3];
    for (uint32_t i = 0; i < 3; i++) {
        tu_header_fixture(&t[i], 100 + i);
        hs[i] = &t[i].h;
    }
    gbx_envelope_t *out[3] = {NULL, NULL, NULL};
    assert_rc(gbx_envelope_sign_batch(a, hs, 3, out), GBX_OK);
    for (int i = 0; i < 3; i++)
        gbx_envelope_destroy(&out[i]);
    /* the same message id twice */
    t[2].h.message_id.data = t[0].h.message_id.data;
    assert_rc(gbx_envelope_sign_batch(a, hs, 3, out), GBX_E_ARG);
    assert_null(out[0]);
    /* a header of another sender */
    tu_header_fixture(&t[2], 102);
    t[1].h.from_agency = "gd.other";
    assert_rc(gbx_envelope_sign_batch(a, hs, 3, out), GBX_E_ARG);
    assert_rc(gbx_envelope_sign(a, &t[1].h, &out[0]), GBX_E_ARG);
    assert_null(out[0]);
    gbx_identity_destroy(&a);
}

static void test_arguments(void **state)
{
    s_fix_t *f = *state;
    tu_header_t t[3];
    const gbx_header_t *hs[3];
    for (int i = 0; i < 3; i++) {
        tu_header_fixture(&t[i], (uint32_t)i);
        hs[i] = &t[i].h;
    }
    gbx_envelope_t *out[3] = {NULL, NULL, NULL};
    assert_rc(gbx_envelope_sign_batch(f->a, hs, 0, out), GBX_E_ARG);
    assert_rc(gbx_envelope_sign_batch(f->a, hs, (size_t)GBX_BATCH_MAX + 1, out), GBX_E_ARG);
    assert_rc(gbx_envelope_sign_batch(NULL, hs, 3, out), GBX_E_ARG);
    assert_rc(gbx_envelope_sign_batch(f->a, NULL, 3, out), GBX_E_ARG);
    t[2].h.service_version = 0;
    assert_rc(gbx_envelope_sign_batch(f->a, hs, 3, out), GBX_E_FIELD_INVALID);
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);
    t[2].h.service_version = 1;
    t[0].h.message_id.len = 3;
    assert_rc(gbx_envelope_sign_batch(f->a, hs, 3, out), GBX_E_FIELD_INVALID);
    for (int i = 0; i < 3; i++)
        assert_null(out[i]);

    gbx_vcache_t *cache = NULL;
    assert_rc(gbx_vcache_new(0, &cache), GBX_E_ARG);
    assert_null(cache);
    assert_rc(gbx_vcache_new(1, &cache), GBX_OK);
    gbx_vcache_destroy(&cache);
    gbx_vcache_destroy(&cache); /* NULL-safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_sender_and_ids),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests_name("batch", tests, s_setup, s_teardown);
}
