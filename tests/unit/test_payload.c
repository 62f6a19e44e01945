/*  test_payload: end-to-end payload encryption (include/gbx/payload.h) and
    the payload check of an envelope. Receipts: test_receipt.c.

    Encrypted payload: sealed_key (80) || stream header (24) || key commitment
    (32) || chunks, commit = BLAKE2b-256("gbx1-key-commit\0" || K), each chunk
    = plaintext (GBX_CHUNK, the last one shorter) + 17 bytes.

    Cases:
      round_trips       s_sizes: seal + open gives the plaintext; sizes, hashes,
                        the commitment recomputed from the opened sealed key
      stream_64mib      64 MiB sealed into a temporary file (sinks that hash, no
                        buffer of the payload), then streamed from the file into
                        the opener with the hash: the two-pass pattern of
                        payload.h; skipped with GBX_TEST_QUICK=1
      odd_splits        ciphertext fed in pieces of 1, 7, 65553 bytes, at the
                        prefix's inner boundaries and random sizes gives the same
                        plaintext; a sealer fed 7 bytes at a time
      tampering         s_flip_cases: a flipped byte in the sealed key, the stream
                        header, the commitment, the first, a middle or the last
                        chunk: PAYLOAD_HASH_MISMATCH whole-buffer (hash first),
                        DECRYPT_FAILED streamed, and DECRYPT_FAILED whole-buffer
                        when the hash is recomputed (a sender who signed it)
      every_byte        every byte of a 1 KiB payload flipped: PAYLOAD_HASH_MISMATCH
                        from gbx_payload_open
      stream_flips      a 3-chunk payload, every byte of the prefix and of the
                        first and last 32 bytes of each chunk flipped:
                        DECRYPT_FAILED from gbx_opener_write/finish, with no
                        plaintext of the bad chunk emitted
      commitment        the commitment replaced and the hash recomputed (a
                        malicious sender), and payloads built here with libsodium
                        with a wrong commitment (another key, label without its
                        NUL, no label, zeros): DECRYPT_FAILED; built with the
                        right one: opens
      own_copy          a sink that rewrites the caller's not yet consumed
                        ciphertext (with a chunk valid under the same key): the
                        opener hashes the bytes it decrypts, so HASH_MISMATCH
      length            truncated by a byte / a chunk, extra bytes, a declared
                        length that does not match: PAYLOAD_LENGTH_MISMATCH (and
                        the dropped-last-chunk attack with a matching declared
                        length: DECRYPT_FAILED); a NULL expected hash: ARG
      wrong_key         another recipient, another binding: DECRYPT_FAILED
      sealer            write past the length and finish short:
                        PAYLOAD_LENGTH_MISMATCH; call order; its output opens
      check_payload     gbx_envelope_check_payload: OK, length and hash mismatch */
#include "tu_cmocka.h"

#include "gbx/envelope.h"

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

/*  Opens SEALED for RECIPIENT, expecting HASH, feeding it in pieces of STEP
    bytes (0: random pieces from RNG). Returns the first error of write or
    finish. */
static gbx_err_t s_open_split(const gbx_identity_t *recipient, const gbx_binding_t *bind,
                              const uint8_t *sealed, size_t len, uint64_t plain_len,
                              const uint8_t *hash, size_t step, tu_rng_t *rng, s_mem_t *out)
{
    gbx_opener_t *o = NULL;
    gbx_err_t rc = gbx_opener_new(recipient, bind, plain_len, hash, s_mem_sink, out, &o);
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
        rc = gbx_opener_finish(o);
    gbx_opener_destroy(&o);
    assert_null(o);
    return rc;
}

/* ---------------------------------------------- the format, written out */

#define S_COMMIT_AT 104u /* sealed key 80 + stream header 24 */

/*  The spec's commitment, computed here: BLAKE2b-256(LABEL || K). */
static void s_commit(const void *label, size_t label_len, const uint8_t key[32], uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, label, label_len);
    crypto_generichash_update(&st, key, 32);
    crypto_generichash_final(&st, out, 32);
}

/*  The spec's AD (2-envelope.md section 4.1), computed here. */
static void s_ad(const gbx_binding_t *b, uint8_t ad[32])
{
    uint8_t in[13 + 1 + 16 + 1 + 255 + 1 + 255];
    size_t n = 0, lf = strlen(b->from_agency), lt = strlen(b->to_agency);
    memcpy(in, "gbx1-payload", 13);
    n = 13;
    in[n++] = 16;
    memcpy(in + n, b->message_id, 16);
    n += 16;
    in[n++] = (uint8_t)lf;
    memcpy(in + n, b->from_agency, lf);
    n += lf;
    in[n++] = (uint8_t)lt;
    memcpy(in + n, b->to_agency, lt);
    n += lt;
    crypto_generichash(ad, 32, in, n, NULL, 0);
}

/*  The sealed key of SEALED opened with RECIPIENT's box key pair. */
static void s_content_key(const gbx_identity_t *recipient, const uint8_t *sealed, uint8_t key[32])
{
    assert_int_equal(crypto_box_seal_open(key, sealed, 80, gbx_identity_public(recipient)->box_pk,
                                          gbx_identity_box_sk(recipient)),
                     0);
}

enum { S_COMMIT_RIGHT, S_COMMIT_OTHER_KEY, S_COMMIT_NO_NUL, S_COMMIT_NO_LABEL, S_COMMIT_ZERO };

/*  A payload sealed by hand with libsodium (one chunk, PLAIN_LEN <= GBX_CHUNK)
    with the commitment chosen by MODE. Returns its length; *HASH its hash. */
static size_t s_craft(const uint8_t box_pk[32], const gbx_binding_t *bind, const uint8_t *plain,
                      size_t plain_len, int mode, uint8_t **out, uint8_t hash[32])
{
    size_t len = 80 + 24 + 32 + plain_len + 17;
    uint8_t *p = malloc(len), key[32], other[32], ad[32];
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    assert_int_equal(crypto_box_seal(p, key, 32, box_pk), 0);
    crypto_secretstream_xchacha20poly1305_init_push(&st, p + 80, key);
    switch (mode) {
    case S_COMMIT_RIGHT:
        s_commit("gbx1-key-commit\0", 16, key, p + S_COMMIT_AT);
        break;
    case S_COMMIT_OTHER_KEY:
        crypto_secretstream_xchacha20poly1305_keygen(other);
        s_commit("gbx1-key-commit\0", 16, other, p + S_COMMIT_AT);
        break;
    case S_COMMIT_NO_NUL:
        s_commit("gbx1-key-commit", 15, key, p + S_COMMIT_AT);
        break;
    case S_COMMIT_NO_LABEL:
        crypto_generichash(p + S_COMMIT_AT, 32, key, 32, NULL, 0);
        break;
    default:
        memset(p + S_COMMIT_AT, 0, 32);
    }
    s_ad(bind, ad);
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(&st, p + 136, &clen, plain, plain_len, ad, 32,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    assert_int_equal(clen, plain_len + 17);
    crypto_generichash(hash, 32, p, len, NULL, 0);
    *out = p;
    return len;
}

/* ---------------------------------------------------------- round trips */

static const size_t s_sizes[] = {0, 1, 1024, 65535, 65536, 65537, 1 << 20};

static void test_round_trips(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(GBX_PAYLOAD_PREFIX, 136);
    for (size_t s = 0; s < sizeof s_sizes / sizeof s_sizes[0]; s++) {
        size_t n = s_sizes[s];
        uint8_t *plain = s_make_plain(n, n), *sealed = NULL, *opened = NULL, hash[32], h2[32];
        size_t sealed_len = 0, opened_len = 99;
        assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &sealed, &sealed_len, hash),
                  GBX_OK);
        uint64_t chunks = n == 0 ? 1 : (n + GBX_CHUNK - 1) / GBX_CHUNK;
        assert_int_equal(sealed_len, 136 + n + 17 * chunks);
        assert_int_equal(sealed_len, gbx_payload_sealed_size(n));
        gbx_payload_hash(sealed, sealed_len, h2);
        assert_memory_equal(hash, h2, 32);
        crypto_generichash(h2, 32, sealed, sealed_len, NULL, 0);
        assert_memory_equal(hash, h2, 32);
        /* Bytes 104..135 commit to the content key in the sealed key. */
        uint8_t key[32], commit[32];
        s_content_key(f->b, sealed, key);
        s_commit("gbx1-key-commit\0", 16, key, commit);
        assert_memory_equal(sealed + S_COMMIT_AT, commit, 32);
        assert_rc(
            gbx_payload_open(f->b, &f->bind, sealed, sealed_len, n, hash, &opened, &opened_len),
            GBX_OK);
        assert_int_equal(opened_len, n);
        if (n)
            assert_memory_equal(opened, plain, n);
        free(opened);
        opened = NULL;
        /* The hash is not optional. */
        assert_rc(
            gbx_payload_open(f->b, &f->bind, sealed, sealed_len, n, NULL, &opened, &opened_len),
            GBX_E_ARG);
        assert_null(opened);
        /* Sealing is randomized: a second seal differs. */
        uint8_t *again = NULL, h3[32];
        size_t again_len = 0;
        assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &again, &again_len, h3),
                  GBX_OK);
        assert_int_equal(again_len, sealed_len);
        assert_memory_not_equal(again, sealed, GBX_PAYLOAD_PREFIX);
        assert_memory_not_equal(again + S_COMMIT_AT, sealed + S_COMMIT_AT, 32);
        assert_memory_not_equal(h3, hash, 32);
        free(again);
        free(sealed);
        free(plain);
    }
}

/* --------------------------------------------------------------- 64 MiB */

typedef struct {
    FILE *file;
    crypto_generichash_state hash;
    uint64_t len;
} s_hash_sink_t;

/*  Hashes what passes; writes it to FILE if there is one. */
static gbx_err_t s_hash_sink(void *arg, const uint8_t *data, size_t len)
{
    s_hash_sink_t *h = arg;
    crypto_generichash_update(&h->hash, data, len);
    h->len += len;
    if (h->file && fwrite(data, 1, len, h->file) != len)
        return GBX_E_IO;
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
    const size_t piece = 50000; /* not a divisor of GBX_CHUNK */
    uint8_t *buf = malloc(piece);

    /* Pass 1: seal into a temporary file, take the hash. */
    s_hash_sink_t cipher;
    memset(&cipher, 0, sizeof cipher);
    cipher.file = tmpfile();
    assert_non_null(cipher.file);
    crypto_generichash_init(&cipher.hash, NULL, 0, 32);
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, total, s_hash_sink, &cipher, &s), GBX_OK);
    crypto_generichash_state plain_in;
    crypto_generichash_init(&plain_in, NULL, 0, 32);
    for (uint64_t off = 0; off < total; off += piece) {
        size_t k = total - off < piece ? (size_t)(total - off) : piece;
        s_plain(64, off, buf, k);
        crypto_generichash_update(&plain_in, buf, k);
        assert_rc(gbx_sealer_write(s, buf, k), GBX_OK);
    }
    uint8_t hash[32], cipher_hash[32], in_hash[32], out_hash[32];
    assert_rc(gbx_sealer_finish(s, hash), GBX_OK);
    gbx_sealer_destroy(&s);
    assert_int_equal(cipher.len, gbx_payload_sealed_size(total));
    assert_int_equal(cipher.len, 136 + total + 17 * (total / GBX_CHUNK));
    crypto_generichash_final(&cipher.hash, cipher_hash, 32);
    assert_memory_equal(cipher_hash, hash, 32);

    /* Pass 2 (after signing, in real use): stream the stored ciphertext. */
    s_hash_sink_t plain_out;
    memset(&plain_out, 0, sizeof plain_out);
    crypto_generichash_init(&plain_out.hash, NULL, 0, 32);
    gbx_opener_t *o = NULL;
    assert_rc(gbx_opener_new(f->b, &f->bind, total, hash, s_hash_sink, &plain_out, &o), GBX_OK);
    rewind(cipher.file);
    size_t got;
    while ((got = fread(buf, 1, piece, cipher.file)) > 0)
        assert_rc(gbx_opener_write(o, buf, got), GBX_OK);
    assert_false(ferror(cipher.file));
    assert_rc(gbx_opener_finish(o), GBX_OK);
    gbx_opener_destroy(&o);
    fclose(cipher.file);
    free(buf);

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
    /* 80, 104, 136: the ends of the sealed key, the stream header and the
       commitment; 137: one byte into the first chunk. */
    static const size_t steps[] = {1, 7, 65553, 80, 104, 136, 137, 65536, 0};
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
    /* The sealer takes any split too: 7 bytes at a time opens to the same
       plaintext. */
    s_mem_t c = {NULL, 0, 0}, out = {NULL, 0, 0};
    gbx_sealer_t *s = NULL;
    uint8_t h[32], h2[32];
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, S_SPLIT_LEN, s_mem_sink, &c, &s), GBX_OK);
    for (size_t off = 0; off < S_SPLIT_LEN; off += 7)
        assert_rc(gbx_sealer_write(s, plain + off, S_SPLIT_LEN - off < 7 ? S_SPLIT_LEN - off : 7),
                  GBX_OK);
    assert_rc(gbx_sealer_finish(s, h), GBX_OK);
    gbx_sealer_destroy(&s);
    assert_int_equal(c.len, sealed_len);
    gbx_payload_hash(c.buf, c.len, h2);
    assert_memory_equal(h, h2, 32);
    assert_rc(s_open_split(f->b, &f->bind, c.buf, c.len, S_SPLIT_LEN, h, 65537, NULL, &out),
              GBX_OK);
    assert_int_equal(out.len, S_SPLIT_LEN);
    assert_memory_equal(out.buf, plain, S_SPLIT_LEN);
    free(out.buf);
    free(c.buf);
    free(sealed);
    free(plain);
}

/* ------------------------------------------------------------- tampering */

/*  Where to flip, for a payload of S_SPLIT_LEN bytes (four chunks). */
#define S_C1 136u                                        /* first chunk */
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
    {"key commitment: first byte", 104},
    {"key commitment: last byte", 135},
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
            uint8_t *out = NULL, h2[32];
            size_t out_len = 0;
            /* Whole buffer: the hash is checked before anything is decrypted. */
            assert_case_rc(
                s_flip_cases[k].name,
                gbx_payload_open(f->b, &f->bind, sealed, len, S_SPLIT_LEN, hash, &out, &out_len),
                GBX_E_PAYLOAD_HASH_MISMATCH);
            assert_null(out);
            /* Streamed: the bad chunk is found before the hash is known. */
            s_mem_t m = {NULL, 0, 0};
            assert_case_rc(
                s_flip_cases[k].name,
                s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, hash, 4096, NULL, &m),
                GBX_E_DECRYPT_FAILED);
            free(m.buf);
            /* Signed as it is (the hash recomputed): the MACs alone refuse it. */
            gbx_payload_hash(sealed, len, h2);
            assert_case_rc(
                s_flip_cases[k].name,
                gbx_payload_open(f->b, &f->bind, sealed, len, S_SPLIT_LEN, h2, &out, &out_len),
                GBX_E_DECRYPT_FAILED);
            assert_null(out);
            m = (s_mem_t){NULL, 0, 0};
            assert_case_rc(
                s_flip_cases[k].name,
                s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, h2, 4096, NULL, &m),
                GBX_E_DECRYPT_FAILED);
            free(m.buf);
            sealed[at] ^= (uint8_t)(1u << bit);
        }
    }
    /* The untouched payload still opens. */
    s_mem_t m = {NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, hash, 4096, NULL, &m), GBX_OK);
    free(m.buf);
    /* A valid payload under another hash: HASH_MISMATCH from finish
       (streamed) and before decryption (whole buffer). */
    uint8_t other[32], *out = NULL;
    size_t out_len = 0;
    memcpy(other, hash, 32);
    other[5] ^= 1;
    m = (s_mem_t){NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN, other, 4096, NULL, &m),
              GBX_E_PAYLOAD_HASH_MISMATCH);
    free(m.buf);
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len, S_SPLIT_LEN, other, &out, &out_len),
              GBX_E_PAYLOAD_HASH_MISMATCH);
    assert_null(out);
    free(sealed);
    free(plain);
}

/* ------------------------------------------------------------ every byte */

static void test_every_byte(void **state)
{
    s_fix_t *f = *state;
    uint8_t *plain = s_make_plain(1024, 21), *sealed = NULL, hash[32];
    size_t len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, 1024, &sealed, &len, hash), GBX_OK);
    assert_int_equal(len, 136 + 1024 + 17);
    for (size_t at = 0; at < len; at++) {
        sealed[at] ^= 0x01;
        uint8_t *out = NULL;
        size_t out_len = 0;
        gbx_err_t rc = gbx_payload_open(f->b, &f->bind, sealed, len, 1024, hash, &out, &out_len);
        sealed[at] ^= 0x01;
        if (rc != GBX_E_PAYLOAD_HASH_MISMATCH)
            fail_msg("byte %zu flipped: %s", at, gbx_err_name(rc));
        assert_null(out);
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len, 1024, hash, &out, &out_len), GBX_OK);
    assert_memory_equal(out, plain, 1024);
    free(out);
    free(sealed);
    free(plain);
}

/* ---------------------------------------------------------- stream flips */

#define S_THREE_LEN (2 * GBX_CHUNK + 1000) /* three chunks */

static void test_stream_flips(void **state)
{
    s_fix_t *f = *state;
    uint8_t *plain = s_make_plain(S_THREE_LEN, 23), *sealed = NULL, hash[32];
    size_t len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, S_THREE_LEN, &sealed, &len, hash),
              GBX_OK);
    const size_t full = GBX_CHUNK + GBX_CHUNK_ABYTES;
    const size_t chunk_at[3] = {136, 136 + full, 136 + 2 * full};
    const size_t chunk_len[3] = {full, full, 1000 + GBX_CHUNK_ABYTES};
    assert_int_equal(len, chunk_at[2] + chunk_len[2]);
    /* Offsets to flip and the chunk they belong to (-1: the prefix). */
    size_t n = 0, *where = malloc((136 + 3 * 64) * sizeof *where);
    int *chunk = malloc((136 + 3 * 64) * sizeof *chunk);
    for (size_t i = 0; i < 136; i++, n++) {
        where[n] = i;
        chunk[n] = -1;
    }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < 64; i++, n++) {
            where[n] = chunk_at[c] + (i < 32 ? i : chunk_len[c] - 64 + i);
            chunk[n] = c;
        }
    for (size_t k = 0; k < n; k++) {
        sealed[where[k]] ^= 0x80;
        s_mem_t m = {NULL, 0, 0};
        gbx_opener_t *o = NULL;
        assert_rc(gbx_opener_new(f->b, &f->bind, S_THREE_LEN, hash, s_mem_sink, &m, &o), GBX_OK);
        gbx_err_t rc = gbx_opener_write(o, sealed, len);
        if (rc == GBX_OK)
            rc = gbx_opener_finish(o);
        else
            assert_rc(gbx_opener_finish(o), GBX_E_STATE);
        gbx_opener_destroy(&o);
        sealed[where[k]] ^= 0x80;
        if (rc != GBX_E_DECRYPT_FAILED)
            fail_msg("byte %zu (chunk %d) flipped: %s", where[k], chunk[k] + 1, gbx_err_name(rc));
        /* Only the chunks before the bad one were emitted. */
        size_t before = chunk[k] < 0 ? 0 : (size_t)chunk[k] * GBX_CHUNK;
        if (m.len != before)
            fail_msg("byte %zu flipped: %zu plaintext bytes emitted, want %zu", where[k], m.len,
                     before);
        free(m.buf);
    }
    free(where);
    free(chunk);
    free(sealed);
    free(plain);
}

/* ------------------------------------------------------------ commitment */

static void test_commitment(void **state)
{
    s_fix_t *f = *state;
    size_t n = 1000;
    uint8_t *plain = s_make_plain(n, 29), *sealed = NULL, hash[32], *out = NULL;
    size_t len = 0, out_len = 0;
    assert_rc(gbx_payload_seal(s_box_pk(f->b), &f->bind, plain, n, &sealed, &len, hash), GBX_OK);

    /* A malicious sender replaces the commitment and signs the hash of the
       result: every chunk still authenticates under the sealed key, so only
       the commitment check refuses it. */
    uint8_t key[32], other_key[32], commits[3][32];
    s_content_key(f->b, sealed, key);
    memcpy(other_key, key, 32);
    other_key[0] ^= 1;
    s_commit("gbx1-key-commit\0", 16, other_key, commits[0]); /* another key's */
    memcpy(commits[1], sealed + S_COMMIT_AT, 32);             /* one bit off */
    commits[1][31] ^= 0x40;
    randombytes_buf(commits[2], 32); /* random */
    for (int c = 0; c < 3; c++) {
        char name[32];
        snprintf(name, sizeof name, "replaced commitment %d", c);
        uint8_t *bad = malloc(len), bh[32];
        memcpy(bad, sealed, len);
        memcpy(bad + S_COMMIT_AT, commits[c], 32);
        gbx_payload_hash(bad, len, bh);
        assert_case_rc(name, gbx_payload_open(f->b, &f->bind, bad, len, n, bh, &out, &out_len),
                       GBX_E_DECRYPT_FAILED);
        assert_null(out);
        s_mem_t m = {NULL, 0, 0};
        assert_case_rc(name, s_open_split(f->b, &f->bind, bad, len, n, bh, 1, NULL, &m),
                       GBX_E_DECRYPT_FAILED);
        assert_int_equal(m.len, 0);
        free(m.buf);
        free(bad);
    }

    /* Payloads sealed here with libsodium: with the spec's commitment they
       open (so this construction is the format), with any other they don't. */
    static const struct {
        int mode;
        const char *name;
    } crafted[] = {
        {S_COMMIT_OTHER_KEY, "commitment to another key"},
        {S_COMMIT_NO_NUL, "label without its NUL"},
        {S_COMMIT_NO_LABEL, "H(K) without the label"},
        {S_COMMIT_ZERO, "32 zero bytes"},
    };
    uint8_t *p = NULL, ph[32];
    size_t pl = s_craft(s_box_pk(f->b), &f->bind, plain, n, S_COMMIT_RIGHT, &p, ph);
    assert_int_equal(pl, len);
    assert_rc(gbx_payload_open(f->b, &f->bind, p, pl, n, ph, &out, &out_len), GBX_OK);
    assert_int_equal(out_len, n);
    assert_memory_equal(out, plain, n);
    free(out);
    out = NULL;
    free(p);
    for (size_t i = 0; i < sizeof crafted / sizeof crafted[0]; i++) {
        pl = s_craft(s_box_pk(f->b), &f->bind, plain, n, crafted[i].mode, &p, ph);
        assert_case_rc(crafted[i].name,
                       gbx_payload_open(f->b, &f->bind, p, pl, n, ph, &out, &out_len),
                       GBX_E_DECRYPT_FAILED);
        assert_null(out);
        s_mem_t m = {NULL, 0, 0};
        assert_case_rc(crafted[i].name, s_open_split(f->b, &f->bind, p, pl, n, ph, 3, NULL, &m),
                       GBX_E_DECRYPT_FAILED);
        assert_int_equal(m.len, 0);
        free(m.buf);
        free(p);
    }
    free(sealed);
    free(plain);
}

/* -------------------------------------------------------------- own copy */

typedef struct {
    s_mem_t out;
    uint8_t *src;        /* the caller's buffer, being fed */
    const uint8_t *swap; /* written over src + at on the first call */
    size_t at, swap_len;
    int calls;
} s_swap_sink_t;

static gbx_err_t s_swap_sink(void *arg, const uint8_t *data, size_t len)
{
    s_swap_sink_t *s = arg;
    if (s->calls++ == 0)
        memcpy(s->src + s->at, s->swap, s->swap_len);
    return s_mem_sink(&s->out, data, len);
}

static void test_own_copy(void **state)
{
    s_fix_t *f = *state;
    /* Two payloads under one key by hand: the same prefix and first chunk,
       second chunks of different plaintext (a sender could do this). */
    const size_t n = GBX_CHUNK + 100, c2 = 136 + GBX_CHUNK + 17, len = c2 + 100 + 17;
    uint8_t *plain = s_make_plain(n, 31), *p1 = malloc(len), *p2 = malloc(len);
    uint8_t key[32], ad[32], hash1[32];
    crypto_secretstream_xchacha20poly1305_state st, st2;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    assert_int_equal(crypto_box_seal(p1, key, 32, s_box_pk(f->b)), 0);
    crypto_secretstream_xchacha20poly1305_init_push(&st, p1 + 80, key);
    s_commit("gbx1-key-commit\0", 16, key, p1 + S_COMMIT_AT);
    s_ad(&f->bind, ad);
    crypto_secretstream_xchacha20poly1305_push(&st, p1 + 136, NULL, plain, GBX_CHUNK, ad, 32,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    memcpy(p2, p1, c2);
    st2 = st;
    crypto_secretstream_xchacha20poly1305_push(&st, p1 + c2, NULL, plain + GBX_CHUNK, 100, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    uint8_t other[100];
    memset(other, 'X', sizeof other);
    crypto_secretstream_xchacha20poly1305_push(&st2, p2 + c2, NULL, other, 100, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    crypto_generichash(hash1, 32, p1, len, NULL, 0);
    assert_int_equal(len, gbx_payload_sealed_size(n));
    /* Both are well formed: each opens under its own hash. */
    s_mem_t m = {NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, p1, len, n, hash1, len, NULL, &m), GBX_OK);
    assert_memory_equal(m.buf, plain, n);
    free(m.buf);
    /* Fed P1 in one write; after the first chunk, the sink puts P2's second
       chunk into the part of the buffer not yet consumed. The payload hash
       of P1 must not vouch for P2's plaintext. */
    s_swap_sink_t sw;
    memset(&sw, 0, sizeof sw);
    sw.src = p1;
    sw.swap = p2 + c2;
    sw.at = c2;
    sw.swap_len = len - c2;
    gbx_opener_t *o = NULL;
    assert_rc(gbx_opener_new(f->b, &f->bind, n, hash1, s_swap_sink, &sw, &o), GBX_OK);
    assert_rc(gbx_opener_write(o, p1, len), GBX_OK); /* every chunk authenticates */
    assert_rc(gbx_opener_finish(o), GBX_E_PAYLOAD_HASH_MISMATCH);
    gbx_opener_destroy(&o);
    assert_int_equal(sw.calls, 2);
    free(sw.out.buf);
    free(p1);
    free(p2);
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
    /* Whole buffer: the length is checked first (these fail the hash too). */
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
    assert_rc(gbx_opener_new(f->b, &f->bind, S_SPLIT_LEN, hash, s_mem_sink, &m, &o), GBX_OK);
    assert_rc(gbx_opener_write(o, sealed, len), GBX_OK);
    assert_rc(gbx_opener_write(o, longer + len, 1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_opener_finish(o), GBX_E_STATE); /* a failed stream stays failed */
    gbx_opener_destroy(&o);
    assert_rc(gbx_payload_open(f->b, &f->bind, longer, len + 1, S_SPLIT_LEN, hash, &out, &out_len),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    free(longer);
    /* A stream is finished once. */
    m.len = 0;
    assert_rc(gbx_opener_new(f->b, &f->bind, S_SPLIT_LEN, hash, s_mem_sink, &m, &o), GBX_OK);
    assert_rc(gbx_opener_write(o, sealed, len), GBX_OK);
    assert_rc(gbx_opener_finish(o), GBX_OK);
    assert_rc(gbx_opener_finish(o), GBX_E_STATE);
    assert_rc(gbx_opener_write(o, sealed, 1), GBX_E_STATE);
    gbx_opener_destroy(&o);
    /* Declared length other than the payload's. */
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, len, S_SPLIT_LEN + 1, hash, 4096, NULL, &m),
              GBX_E_PAYLOAD_LENGTH_MISMATCH);
    /* Dropping the last chunk and declaring the shorter length: the third
       chunk is not FINAL, so the stream does not authenticate as complete
       (found before the hash, which would not match either). */
    uint8_t h2[32];
    gbx_payload_hash(sealed, len - last_chunk, h2);
    m.len = 0;
    assert_rc(
        s_open_split(f->b, &f->bind, sealed, len - last_chunk, 3 * GBX_CHUNK, h2, 4096, NULL, &m),
        GBX_E_DECRYPT_FAILED);
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len - last_chunk, 3 * GBX_CHUNK, h2, &out,
                               &out_len),
              GBX_E_DECRYPT_FAILED);
    /* Declaring one byte less: the last chunk has a byte too many. */
    gbx_payload_hash(sealed, len - 1, h2);
    m.len = 0;
    assert_rc(s_open_split(f->b, &f->bind, sealed, len - 1, S_SPLIT_LEN - 1, h2, 4096, NULL, &m),
              GBX_E_DECRYPT_FAILED);
    free(m.buf);
    /* Sizes, and a payload over the suite limit. */
    assert_int_equal(gbx_payload_sealed_size(0), 136 + 17);
    assert_int_equal(gbx_payload_sealed_size(GBX_CHUNK), 136 + GBX_CHUNK + 17);
    assert_int_equal(gbx_payload_sealed_size(GBX_CHUNK + 1), 136 + GBX_CHUNK + 1 + 34);
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, GBX_PAYLOAD_MAX + 1, s_mem_sink, &m, &s),
              GBX_E_PAYLOAD_TOO_LARGE);
    assert_rc(gbx_opener_new(f->b, &f->bind, GBX_PAYLOAD_MAX + 1, hash, s_mem_sink, &m, &o),
              GBX_E_PAYLOAD_TOO_LARGE);
    /* The expected hash is required. */
    assert_rc(gbx_opener_new(f->b, &f->bind, S_SPLIT_LEN, NULL, s_mem_sink, &m, &o), GBX_E_ARG);
    assert_null(o);
    assert_rc(gbx_payload_open(f->b, &f->bind, sealed, len, S_SPLIT_LEN, NULL, &out, &out_len),
              GBX_E_ARG);
    assert_null(out);
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
    uint8_t *plain = s_make_plain(n, 17), h1[32], h2[32];
    s_mem_t c1 = {NULL, 0, 0}, c2 = {NULL, 0, 0};
    gbx_sealer_t *s = NULL;
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, n, s_mem_sink, &c1, &s), GBX_OK);
    assert_int_equal(c1.len, GBX_PAYLOAD_PREFIX); /* the prefix before new returns */
    assert_rc(gbx_sealer_write(s, plain, n), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, 1), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    assert_rc(gbx_sealer_finish(s, h1), GBX_OK);
    assert_int_equal(c1.len, gbx_payload_sealed_size(n));
    assert_rc(gbx_sealer_finish(s, h2), GBX_E_STATE);
    assert_rc(gbx_sealer_write(s, plain, 1), GBX_E_STATE);
    assert_int_equal(c1.len, gbx_payload_sealed_size(n)); /* nothing more came out */
    gbx_sealer_destroy(&s);
    assert_null(s);
    gbx_sealer_destroy(&s); /* NULL-safe */
    gbx_sealer_destroy(NULL);
    /* Finish before all bytes came. */
    assert_rc(gbx_sealer_new(s_box_pk(f->b), &f->bind, n, s_mem_sink, &c2, &s), GBX_OK);
    assert_rc(gbx_sealer_write(s, plain, n - 1), GBX_OK);
    assert_rc(gbx_sealer_finish(s, h2), GBX_E_PAYLOAD_LENGTH_MISMATCH);
    gbx_sealer_destroy(&s);
    /* The opener decrypts what the sealer produced. */
    s_mem_t out = {NULL, 0, 0};
    assert_rc(s_open_split(f->b, &f->bind, c1.buf, c1.len, n, h1, 1000, NULL, &out), GBX_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.buf, plain, n);
    free(out.buf);
    free(c1.buf);
    free(c2.buf);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_stream_64mib),
        cmocka_unit_test(test_odd_splits),  cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_every_byte),  cmocka_unit_test(test_stream_flips),
        cmocka_unit_test(test_commitment),  cmocka_unit_test(test_own_copy),
        cmocka_unit_test(test_length),      cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_sealer),      cmocka_unit_test(test_check_payload),
    };
    return cmocka_run_group_tests_name("payload", tests, s_setup, s_teardown);
}
