/*  test_payload: end-to-end payload encryption (include/gbx/payload.h), the
    payload check of an envelope, and signed receipts (include/gbx/receipt.h).

    Encrypted payload: sealed_key (80) || stream header (24) || chunks, each
    chunk = plaintext (GBX_CHUNK, the last one shorter) + 17 bytes.

    Cases:
      round_trips       s_sizes: seal + open gives the plaintext; sizes and hashes
      stream_64mib      64 MiB through sealer -> opener with sinks that hash (no
                        buffer of the payload); skipped with GBX_TEST_QUICK=1
      odd_splits        ciphertext fed in pieces of 1, 7, 65553 bytes and random
                        sizes gives the same plaintext
      tampering         s_flip_cases: a flipped byte in the sealed key, the stream
                        header, the first, a middle or the last chunk: DECRYPT_FAILED
      length            truncated by a byte / a chunk, extra bytes, a declared
                        length that does not match: PAYLOAD_LENGTH_MISMATCH (and
                        the dropped-last-chunk attack with a matching declared
                        length: DECRYPT_FAILED)
      wrong_key         another recipient, another binding: DECRYPT_FAILED
      sealer            rewind gives the same bytes; write past the length and
                        finish short: PAYLOAD_LENGTH_MISMATCH; call order
      check_payload     gbx_envelope_check_payload: OK, length and hash mismatch
      receipts          sign / verify round trip; every flipped byte, another
                        node, suite, signature length refused */
#include "tu_cmocka.h"

#include "gbx/receipt.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    gbx_identity_t *a;  /* sender gd.qh-amr */
    gbx_identity_t *b;  /* recipient hk.cr */
    gbx_identity_t *b2; /* hk.cr, another key */
    uint8_t mid[GBX_MSG_ID_BYTES];
    gbx_binding_t bind;
} s_fix_t;

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->a = tu_identity_fixed("gd.qh-amr", NULL);
    f->b = tu_identity_fixed("hk.cr", NULL);
    f->b2 = tu_identity_fixed("hk.cr", "rotated");
    for (unsigned i = 0; i < GBX_MSG_ID_BYTES; i++)
        f->mid[i] = (uint8_t)(0x30 + i);
    f->bind.message_id = f->mid;
    f->bind.from_agency = "gd.qh-amr";
    f->bind.to_agency = "hk.cr";
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->a);
    gbx_identity_destroy(&f->b);
    gbx_identity_destroy(&f->b2);
    free(f);
    return 0;
}

static const uint8_t *s_box_pk(const gbx_identity_t *id)
{
    return gbx_identity_public(id)->box_pk;
}

/*  Deterministic plaintext: byte i of stream SEED. */
static void s_plain(uint64_t seed, uint64_t offset, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (offset + i) * 0x9e3779b97f4a7c15ull ^ seed;
        out[i] = (uint8_t)(x >> 29);
    }
}

static uint8_t *s_make_plain(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    s_plain(seed, 0, p, n);
    return p;
}

/* ------------------------------------------------------------- sinks */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} s_mem_t;

static gbx_err_t s_mem_sink(void *arg, const uint8_t *data, size_t len)
{
    s_mem_t *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len)
            cap *= 2;
        m->buf = realloc(m->buf, cap);
        if (!m->buf)
            return GBX_E_NOMEM;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    return GBX_OK;
}

/*  Opens SEALED for RECIPIENT, feeding it in pieces of STEP bytes (0: random
    pieces from RNG). Returns the first error of write or finish. */
static gbx_err_t s_open_split(const gbx_identity_t *recipient, const gbx_binding_t *bind,
                              const uint8_t *sealed, size_t len, uint64_t plain_len,
                              const uint8_t *hash, size_t step, tu_rng_t *rng, s_mem_t *out)
{
    gbx_opener_t *o = NULL;
    gbx_err_t rc = gbx_opener_new(recipient, bind, plain_len, s_mem_sink, out, &o);
    if (rc != GBX_OK)
        return rc;
    size_t off = 0;
    while (rc == GBX_OK && off < len) {
        size_t k = step ? step : 1 + (size_t)tu_rng_below(rng, 70000);
        if (k > len - off)
            k = len - off;
        rc = gbx_opener_write(o, sealed + off, k);
        off += k;
    }
    if (rc == GBX_OK)
        rc = gbx_opener_finish(o, hash);
    gbx_opener_destroy(&o);
    assert_null(o);
    return rc;
}

/* ---------------------------------------------------------- round trips */

static const size_t s_sizes[] = {0, 1, 1024, 65535, 65536, 65537, 1 << 20};

static void test_round_trips(void **state)
{
    s_fix_t *f = *state;
    for (size_t s = 0; s < sizeof s_sizes / sizeof s_sizes[0]; s++) {
        size_t n = s_sizes[s];
        uint8_t *plain = s_make_plain(n, n), *sealed = NULL, *opened = NULL, hash[32], h2[32];
        size_t sealed_len = 0, opened_len = 99;
        assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &sealed, &sealed_len, hash),
                  GBX_OK);
        uint64_t chunks = n == 0 ? 1 : (n + GBX_CHUNK - 1) / GBX_CHUNK;
        assert_int_equal(sealed_len, 104 + n + 17 * chunks);
        assert_int_equal(sealed_len, gbx_payload_sealed_size(n));
        gbx_payload_hash(sealed, sealed_len, h2);
        assert_memory_equal(hash, h2, 32);
        crypto_generichash(h2, 32, sealed, sealed_len, NULL, 0);
        assert_memory_equal(hash, h2, 32);
        assert_rc(
            gbx_payload_open(f->b, &f->bind, sealed, sealed_len, n, hash, &opened, &opened_len),
            GBX_OK);
        assert_int_equal(opened_len, n);
        if (n)
            assert_memory_equal(opened, plain, n);
        free(opened);
        opened = NULL;
        assert_rc(
            gbx_payload_open(f->b, &f->bind, sealed, sealed_len, n, NULL, &opened, &opened_len),
            GBX_OK);
        free(opened);
        /* Sealing is randomized: a second seal differs. */
        uint8_t *again = NULL, h3[32];
        size_t again_len = 0;
        assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &again, &again_len, h3),
                  GBX_OK);
        assert_int_equal(again_len, sealed_len);
        assert_memory_not_equal(again, sealed, 104);
        assert_memory_not_equal(h3, hash, 32);
        free(again);
        free(sealed);
        free(plain);
    }
}

/* --------------------------------------------------------------- 64 MiB */

typedef struct {
    gbx_opener_t *opener;
    crypto_generichash_state cipher_hash;
    uint64_t cipher_len;
    gbx_err_t opener_rc;
} s_pipe_t;

/*  Sealer sink: hashes the ciphertext and passes it straight to the opener. */
static gbx_err_t s_pipe_sink(void *arg, const uint8_t *data, size_t len)
{
    s_pipe_t *p = arg;
    crypto_generichash_update(&p->cipher_hash, data, len);
    p->cipher_len += len;
    if (p->opener_rc == GBX_OK)
        p->opener_rc = gbx_opener_write(p->opener, data, len);
    return GBX_OK;
}

typedef struct {
    crypto_generichash_state hash;
    uint64_t len;
} s_hash_sink_t;

static gbx_err_t s_hash_sink(void *arg, const uint8_t *data, size_t len)
{
    s_hash_sink_t *h = arg;
    crypto_generichash_update(&h->hash, data, len);
    h->len += len;
    return GBX_OK;
}

static void test_stream_64mib(void **state)
{
    if (tu_quick()) {
        print_message("GBX_TEST_QUICK set: 64 MiB stream skipped\n");
        skip();
    }
    s_fix_t *f = *state;
    const uint64_t total = 64ull << 20;
    s_hash_sink_t plain_out;
    crypto_generichash_init(&plain_out.hash, NULL, 0, 32);
    plain_out.len = 0;
    s_pipe_t pipe;
    memset(&pipe, 0, sizeof pipe);
    crypto_generichash_init(&pipe.cipher_hash, NULL, 0, 32);
    assert_rc(gbx_opener_new(f->b, &f->bind, total, s_hash_sink, &plain_out, &pipe.opener), GBX_OK);
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, total, s_pipe_sink, &pipe, &s), GBX_OK);

    crypto_generichash_state plain_in;
    crypto_generichash_init(&plain_in, NULL, 0, 32);
    size_t piece = 50000; /* not a divisor of GBX_CHUNK */
    uint8_t *buf = malloc(piece);
    for (uint64_t off = 0; off < total; off += piece) {
        size_t k = total - off < piece ? (size_t)(total - off) : piece;
        s_plain(64, off, buf, k);
        crypto_generichash_update(&plain_in, buf, k);
        assert_rc(gbx_sealer_write(s, buf, k), GBX_OK);
    }
    free(buf);
    uint8_t hash[32], cipher_hash[32], in_hash[32], out_hash[32];
    assert_rc(gbx_sealer_finish(s, hash), GBX_OK);
    gbx_sealer_destroy(&s);
    assert_rc(pipe.opener_rc, GBX_OK);
    assert_rc(gbx_opener_finish(pipe.opener, hash), GBX_OK);
    gbx_opener_destroy(&pipe.opener);

    assert_int_equal(pipe.cipher_len, gbx_payload_sealed_size(total));
    assert_int_equal(pipe.cipher_len, 104 + total + 17 * (total / GBX_CHUNK));
    crypto_generichash_final(&pipe.cipher_hash, cipher_hash, 32);
    assert_memory_equal(cipher_hash, hash, 32);
    assert_int_equal(plain_out.len, total);
    crypto_generichash_final(&plain_in, in_hash, 32);
    crypto_generichash_final(&plain_out.hash, out_hash, 32);
    assert_memory_equal(in_hash, out_hash, 32);
}

/* ------------------------------------------------------------ odd splits */

#define S_SPLIT_LEN (3 * GBX_CHUNK + 1000) /* four chunks */

static void test_odd_splits(void **state)
{
    s_fix_t *f = *state;
    uint8_t *plain = s_make_plain(S_SPLIT_LEN, 7), *sealed = NULL, hash[32];
    size_t sealed_len = 0;
    assert_rc(
        gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, S_SPLIT_LEN, &sealed, &sealed_len, hash),
        GBX_OK);
    static const size_t steps[] = {1, 7, 65553, 104, 105, 65536, 0};
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("payload splits", 65553));
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        s_mem_t out = {NULL, 0, 0};
        gbx_err_t rc = s_open_split(f->b, &f->bind, sealed, sealed_len, S_SPLIT_LEN, hash, steps[k],
                                    &rng, &out);
        if (rc != GBX_OK)
            fail_msg("pieces of %zu bytes: %s", steps[k], gbx_err_name(rc));
        assert_int_equal(out.len, S_SPLIT_LEN);
        assert_memory_equal(out.buf, plain, S_SPLIT_LEN);
        free(out.buf);
    }
    /* The sealer takes any split too: the same content key, so rewind and
       write in other pieces gives the same bytes. */
    s_mem_t c1 = {NULL, 0, 0}, c2 = {NULL, 0, 0};
    gbx_sealer_t *s = NULL;
    uint8_t h1[32], h2[32];
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, S_SPLIT_LEN, s_mem_sink, &c1, &s), GBX_OK);
    for (size_t off = 0; off < S_SPLIT_LEN; off += 7)
        assert_rc(gbx_sealer_write(s, plain + off, S_SPLIT_LEN - off < 7 ? S_SPLIT_LEN - off : 7),
                  GBX_OK);
    assert_rc(gbx_sealer_finish(s, h1), GBX_OK);
    assert_rc(gbx_sealer_rewind(s, s_mem_sink, &c2), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, S_SPLIT_LEN), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h2), GBX_OK);
    gbx_sealer_destroy(&s);
    assert_int_equal(c1.len, sealed_len);
    assert_int_equal(c1.len, c2.len);
    assert_memory_equal(c1.buf, c2.buf, c1.len);
    assert_memory_equal(h1, h2, 32);
    free(c1.buf);
    free(c2.buf);
    free(sealed);
    free(plain);
}

/* ------------------------------------------------------------- tampering */

/*  Where to flip, for a payload of S_SPLIT_LEN bytes (four chunks). */
#define S_C1 104u                                        /* first chunk */
#define S_C2 (S_C1 + GBX_CHUNK + GBX_CHUNK_ABYTES)       /* second (a middle) chunk */
#define S_C4 (S_C1 + 3 * (GBX_CHUNK + GBX_CHUNK_ABYTES)) /* last chunk */

static const struct {
    const char *name;
    size_t offset; /* SIZE_MAX: the last byte */
} s_flip_cases[] = {
    {"sealed key: first byte (ephemeral key)", 0},
    {"sealed key: byte 40 (sealed content key)", 40},
    {"sealed key: last byte (tag)", 79},
    {"stream header: first byte", 80},
    {"stream header: last byte", 103},
    {"first chunk: first byte", S_C1},
    {"first chunk: a plaintext byte", S_C1 + 1000},
    {"first chunk: last byte (MAC)", S_C2 - 1},
    {"middle chunk: first byte", S_C2},
    {"middle chunk: a plaintext byte", S_C2 + 30000},
    {"last chunk: first byte", S_C4},
    {"last chunk: a plaintext byte", S_C4 + 500},
    {"last chunk: last byte (MAC)", SIZE_MAX},
};

static void test_tampering(void **state)
{
    s_fix_t *f = *state;
    uint8_t *plain = s_make_plain(S_SPLIT_LEN, 9), *sealed = NULL, hash[32];
    size_t len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, S_SPLIT_LEN, &sealed, &len, hash),
              GBX_OK);
    assert_int_equal(len, S_C4 + 1000 + 17);
    for (size_t k = 0; k < sizeof s_flip_cases / sizeof s_flip_cases[0]; k++) {
        size_t at = s_flip_cases[k].offset == SIZE_MAX ? len - 1 : s_flip_cases[k].offset;
        for (int bit = 0; bit < 8; bit += 7) {
            sealed[at] ^= (uint8_t)(1u << bit);
            uint8_t *out = NULL;
            size_t out_len = 0;
            /* with the hash checked, and without (the chunk MACs alone) */
            assert_case_rc(
                s_flip_cases[k].name,
                gbx_payload_open(f->b, &f->bind, sealed, len, S_SPLIT_LEN, hash, &out, &out_len),
                GBX_E_DECRYPT_FAILED);
            assert_null(out);
            s_mem_t m = {NULL, 0, 0};
            assert_case_rc(
                s_flip_cases[k].name,
                s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, NULL, 4096, NULL, &m),
                GBX_E_DECRYPT_FAILED);
            free(m.buf);
            sealed[at] ^= (uint8_t)(1u << bit);
        }
    }
    /* The untouched payload still opens. */
    s_mem_t m = {NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, hash, 4096, NULL, &m), GBX_OK);
    free(m.buf);
    /* A valid payload under another hash: HASH_MISMATCH from finish. */
    uint8_t other[32];
    memcpy(other, hash, 32);
    other[5] ^= 1;
    m = (s_mem_t){NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, other, 4096, NULL, &m),
              GBX_E_PAYLOAD_HASH_MISMATCH);
    free(m.buf);
    free(sealed);
    free(plain);
}

/* ---------------------------------------------------------------- length */

static void test_length(void **state)
{
    s_fix_t *f = *state;
    uint8_t *plain = s_make_plain(S_SPLIT_LEN, 11), *sealed = NULL, hash[32];
    size_t len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, S_SPLIT_LEN, &sealed, &len, hash),
              GBX_OK);
    s_mem_t m = {NULL, 0, 0};
    /* Streamed, cut short: the opener waits for more, finish says it ended early. */
    assert_rc(s_open_split(f->b, &f->bind, sealed, len - 1, S_SPLIT_LEN, hash, 4096, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    m.len = 0;
    size_t last_chunk = 1000 + 17;
    assert_rc(
        s_open_split(f->b, &f->bind, sealed, len - last_chunk, S_SPLIT_LEN, hash, 4096, NULL, &m),
        GBX_E_PAYLOAD_LENGTH_MISMATCH);
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, len - last_chunk - 1, S_SPLIT_LEN, hash, 4096,
                           NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, 0, S_SPLIT_LEN, hash, 4096, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    /* Whole buffer: the length is checked first. */
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len - 1, S_SPLIT_LEN, hash, &out, &out_len),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len - last_chunk, S_SPLIT_LEN, hash, &out,
                               &out_len),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    /* Extra bytes: refused by write, whether in the same call or after. */
    uint8_t *longer = malloc(len + 10);
    memcpy(longer, sealed, len);
    memset(longer + len, 0, 10);
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, longer, len + 1, S_SPLIT_LEN, hash, 4096, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, longer, len + 10, S_SPLIT_LEN, hash, len + 10, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    gbx_opener_t *o = NULL;
    m.len = 0;
    assert_rc(gbx_opener_new(f->b, &f->bind, S_SPLIT_LEN, s_mem_sink, &m, &o), GBX_OK);
    assert_rc(gbx_opener_write(o, sealed, len), GBX_OK);
    assert_rc(gbx_opener_write(o, longer + len, 1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_opener_finish(o, hash), GBX_E_STATE); /* a failed stream stays failed */
    gbx_opener_destroy(&o);
    assert_rc(gbx_payload_open(f->b, &f->bind, longer, len + 1, S_SPLIT_LEN, hash, &out, &out_len),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    free(longer);
    /* Declared length other than the payload's. */
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN + 1, hash, 4096, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    /* Dropping the last chunk and declaring the shorter length: the third
       chunk is not FINAL, so the stream does not authenticate as complete. */
    m.len = 0;
    assert_rc(
        s_open_split(f->b, &f->bind, sealed, len - last_chunk, 3 * GBX_CHUNK, NULL, 4096, NULL, &m),
        GBX_E_DECRYPT_FAILED);
    /* Declaring one byte less: the last chunk has a byte too many. */
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, len - 1, S_SPLIT_LEN - 1, NULL, 4096, NULL, &m),
              GBX_E_DECRYPT_FAILED);
    free(m.buf);
    /* A payload over the suite limit. */
    assert_int_equal(gbx_payload_sealed_size(0), 104 + 17);
    assert_int_equal(gbx_payload_sealed_size(GBX_CHUNK), 104 + GBX_CHUNK + 17);
    assert_int_equal(gbx_payload_sealed_size(GBX_CHUNK + 1), 104 + GBX_CHUNK + 1 + 34);
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, GBX_PAYLOAD_MAX + 1, s_mem_sink, &m, &s),
              GBX_E_PAYLOAD_TOO_LARGE);
    assert_rc(gbx_opener_new(f->b, &f->bind, GBX_PAYLOAD_MAX + 1, s_mem_sink, &m, &o),
              GBX_E_PAYLOAD_TOO_LARGE);
    free(sealed);
    free(plain);
}

/* ------------------------------------------------------------- wrong key */

static void test_wrong_key(void **state)
{
    s_fix_t *f = *state;
    size_t n = GBX_CHUNK + 10;
    uint8_t *plain = s_make_plain(n, 13), *sealed = NULL, hash[32], *out = NULL;
    size_t len = 0, out_len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &sealed, &len, hash), GBX_OK);
    assert_rc(gbx_payload_open(f->b2, &f->bind, sealed, len, n, hash, &out, &out_len),
              GBX_E_DECRYPT_FAILED);
    assert_rc(gbx_payload_open(f->a, &f->bind, sealed, len, n, hash, &out, &out_len),
              GBX_E_DECRYPT_FAILED);

    uint8_t other_mid[GBX_MSG_ID_BYTES];
    memcpy(other_mid, f->mid, sizeof other_mid);
    other_mid[15] ^= 1;
    const gbx_binding_t wrong[] = {
        {other_mid, "gd.qh-amr", "hk.cr"}, {f->mid, "gd.qh-amr2", "hk.cr"},
        {f->mid, "gd.qh-amr", "hk.cr2"},   {f->mid, "hk.cr", "gd.qh-amr"}, /* from and to swapped */
        {f->mid, "gd.qh-am", "rhk.cr"}, /* the same bytes, split elsewhere */
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "binding %zu", i);
        assert_case_rc(name,
                       gbx_payload_open(f->b, &wrong[i], sealed, len, n, hash, &out, &out_len),
                       GBX_E_DECRYPT_FAILED);
        assert_null(out);
    }
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len, n, hash, &out, &out_len), GBX_OK);
    assert_memory_equal(out, plain, n);
    free(out);
    /* No binding, or a bad recipient key. */
    gbx_sealer_t *s = NULL;
    s_mem_t m = {NULL, 0, 0};
    assert_rc(gbx_sealer_new(s_box_pk(f->b), NULL, 1, s_mem_sink, &m, &s), GBX_E_ARG);
    gbx_binding_t nulls = {f->mid, NULL, "hk.cr"};
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &nulls, 1, s_mem_sink, &m, &s), GBX_E_ARG);
    free(m.buf);
    free(sealed);
    free(plain);
}

/* ---------------------------------------------------------------- sealer */

static void test_sealer(void **state)
{
    s_fix_t *f = *state;
    size_t n = 2 * GBX_CHUNK + 3;
    uint8_t *plain = s_make_plain(n, 17), h1[32], h2[32], h3[32];
    s_mem_t c1 = {NULL, 0, 0}, c2 = {NULL, 0, 0}, c3 = {NULL, 0, 0};
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, n, s_mem_sink, &c1, &s), GBX_OK);
    assert_int_equal(c1.len, GBX_PAYLOAD_PREFIX); /* the prefix before new returns */
    assert_rc(gbx_sealer_write(s, plain, n), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, 1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_sealer_finish(s, h1), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h1), GBX_E_STATE);
    assert_rc(gbx_sealer_write(s, plain, 1), GBX_E_STATE);
    /* Rewind after the first pass: the same bytes. */
    assert_rc(gbx_sealer_rewind(s, s_mem_sink, &c2), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, n), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h2), GBX_OK);
    assert_int_equal(c1.len, c2.len);
    assert_memory_equal(c1.buf, c2.buf, c1.len);
    assert_memory_equal(h1, h2, 32);
    /* Rewind in the middle of a pass. */
    assert_rc(gbx_sealer_rewind(s, s_mem_sink, &c3), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, GBX_CHUNK + 5), GBX_OK);
    c3.len = 0;
    assert_rc(gbx_sealer_rewind(s, s_mem_sink, &c3), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, n), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h3), GBX_OK);
    assert_int_equal(c3.len, c1.len);
    assert_memory_equal(c3.buf, c1.buf, c1.len);
    assert_memory_equal(h3, h1, 32);
    assert_rc(gbx_sealer_rewind(s, NULL, NULL), GBX_E_ARG);
    gbx_sealer_destroy(&s);
    assert_null(s);
    gbx_sealer_destroy(&s); /* NULL-safe */
    /* Finish before all bytes came. */
    c1.len = 0;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, n, s_mem_sink, &c1, &s), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, n - 1), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    gbx_sealer_destroy(&s);
    /* The opener decrypts what rewind produced. */
    s_mem_t out = {NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, c2.buf, c2.len, n, h2, 1000, NULL, &out), GBX_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.buf, plain, n);
    free(out.buf);
    free(c1.buf);
    free(c2.buf);
    free(c3.buf);
    free(plain);
}

/* --------------------------------------------------------- check_payload */

static void test_check_payload(void **state)
{
    s_fix_t *f = *state;
    tu_header_t t;
    tu_header_fixture(&t, 77);
    size_t n = 1024;
    uint8_t *plain = s_make_plain(n, 19), *sealed = NULL;
    size_t len = 0;
    gbx_binding_t bind = {t.message_id, t.h.from_agency, t.h.to_agency};
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &bind, plain, n, &sealed, &len, t.payload_hash),
              GBX_OK);
    t.h.payload_length = n;
    gbx_envelope_t *e = NULL;
    assert_rc(gbx_envelope_sign(f->a, &t.h, &e), GBX_OK);
    assert_rc(gbx_envelope_check_payload(e, sealed, len), GBX_OK);
    assert_rc(gbx_envelope_check_payload(e, sealed, len - 1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_envelope_check_payload(e, sealed, 0), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    for (size_t at = 0; at < len; at += 97) {
        sealed[at] ^= 0x20;
        assert_rc(gbx_envelope_check_payload(e, sealed, len), GBX_E_PAYLOAD_HASH_MISMATCH);
        sealed[at] ^= 0x20;
    }
    /* The binding from the envelope opens it. */
    gbx_binding_t eb;
    gbx_envelope_binding(e, &eb);
    uint8_t *out = NULL;
    size_t out_len = 0;
    const gbx_header_t *h = gbx_envelope_header(e);
    assert_rc(gbx_payload_open(f->b, &eb, sealed, len, h->payload_length, h->payload_hash.data,
                               &out, &out_len),
              GBX_OK);
    assert_int_equal(out_len, n);
    assert_memory_equal(out, plain, n);
    free(out);
    /* Another payload of the same length. */
    uint8_t *other = NULL, oh[32];
    size_t other_len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &bind, plain, n, &other, &other_len, oh), GBX_OK);
    assert_rc(gbx_envelope_check_payload(e, other, other_len), GBX_E_PAYLOAD_HASH_MISMATCH);
    free(other);
    gbx_envelope_destroy(&e);
    free(sealed);
    free(plain);
}

/* --------------------------------------------------------------- receipts */

static void test_receipts(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_t *node = tu_identity_fixed("gbx-node-1", NULL);
    gbx_identity_t *node2 = tu_identity_fixed("gbx-node-1", "rotated");
    uint8_t mid[16], hh[32], ph[32];
    memset(mid, 0x31, sizeof mid);
    memset(hh, 0x32, sizeof hh);
    memset(ph, 0x33, sizeof ph);
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id.data = mid;
    r.message_id.len = sizeof mid;
    r.header_hash.data = hh;
    r.header_hash.len = sizeof hh;
    r.node_id = "gbx-node-1";
    r.accepted_at_ms = 1790000000123ull;
    r.sequence = 42;
    r.status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r.rule_id = "allow-hk-cr-coextract";
    r.policy_hash.data = ph;
    r.policy_hash.len = sizeof ph;

    uint8_t *packed = NULL;
    size_t len = 0;
    assert_rc(gbx_receipt_sign(node, &r, &packed, &len), GBX_OK);
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, len, packed);
    assert_non_null(sr);
    assert_int_equal(sr->suite, 1);
    assert_int_equal(sr->signature.len, 64);
    Gbx__V1__Receipt *got = NULL;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), &got), GBX_OK);
    assert_non_null(got);
    assert_memory_equal(got->message_id.data, mid, 16);
    assert_memory_equal(got->header_hash.data, hh, 32);
    assert_string_equal(got->node_id, "gbx-node-1");
    assert_int_equal(got->accepted_at_ms, 1790000000123ull);
    assert_int_equal(got->sequence, 42);
    assert_int_equal(got->status, GBX__V1__RECEIPT_STATUS__ACCEPTED);
    assert_string_equal(got->rule_id, "allow-hk-cr-coextract");
    assert_memory_equal(got->policy_hash.data, ph, 32);
    gbx__v1__receipt__free_unpacked(got, NULL);
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_OK);

    /* The signature is Ed25519 over "gbx1-receipt\0" || receipt bytes. */
    uint8_t *msg = malloc(13 + sr->receipt.len);
    memcpy(msg, "gbx1-receipt", 13);
    memcpy(msg + 13, sr->receipt.data, sr->receipt.len);
    assert_int_equal(crypto_sign_verify_detached(sr->signature.data, msg, 13 + sr->receipt.len,
                                                 gbx_identity_public(node)->sign_pk),
                     0);
    free(msg);

    /* Other keys. */
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node2), NULL), GBX_E_BAD_SIGNATURE);
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(f->a), NULL), GBX_E_BAD_SIGNATURE);
    /* Every bit of the receipt bytes and of the signature. */
    for (size_t i = 0; i < sr->receipt.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            sr->receipt.data[i] ^= (uint8_t)(1u << bit);
            got = NULL;
            gbx_err_t rc = gbx_receipt_verify(sr, gbx_identity_public(node), &got);
            sr->receipt.data[i] ^= (uint8_t)(1u << bit);
            if (rc != GBX_E_BAD_SIGNATURE)
                fail_msg("receipt byte %zu bit %d: %s", i, bit, gbx_err_name(rc));
            assert_null(got);
        }
    for (size_t i = 0; i < 64; i++) {
        sr->signature.data[i] ^= 0x10;
        assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
        sr->signature.data[i] ^= 0x10;
    }
    sr->suite = 2;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_UNKNOWN_SUITE);
    sr->suite = 1;
    sr->signature.len = 63;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
    sr->signature.len = 64;
    size_t rl = sr->receipt.len;
    sr->receipt.len = rl - 1;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_E_BAD_SIGNATURE);
    sr->receipt.len = rl;
    assert_rc(gbx_receipt_verify(sr, gbx_identity_public(node), NULL), GBX_OK);
    assert_rc(gbx_receipt_verify(NULL, gbx_identity_public(node), NULL), GBX_E_ARG);
    assert_rc(gbx_receipt_sign(node, NULL, &packed, &len), GBX_E_ARG);

    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    free(packed);
    gbx_identity_destroy(&node);
    gbx_identity_destroy(&node2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_stream_64mib),
        cmocka_unit_test(test_odd_splits),  cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_length),      cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_sealer),      cmocka_unit_test(test_check_payload),
        cmocka_unit_test(test_receipts),
    };
    return cmocka_run_group_tests_name("payload", tests, s_setup, s_teardown);
}
