/*  payload.c: owns the streamed end-to-end encryption of payloads.
    Implements proto/spec/2-envelope.md section 4 (suite GBX1). */
#include "gbx/payload.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_SEALED_KEY (crypto_box_SEALBYTES + crypto_secretstream_xchacha20poly1305_KEYBYTES)
#define S_SS_HEADER  crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define S_COMMIT     32u /* key commitment */
#define S_KEY        crypto_secretstream_xchacha20poly1305_KEYBYTES
#define S_TAG_MSG    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define S_TAG_FINAL  crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(S_SEALED_KEY + S_SS_HEADER + S_COMMIT == GBX_PAYLOAD_PREFIX, "prefix size");
_Static_assert(crypto_secretstream_xchacha20poly1305_ABYTES == GBX_CHUNK_ABYTES, "chunk overhead");

typedef crypto_secretstream_xchacha20poly1305_state s_stream_t;

uint64_t gbx_payload_sealed_size(uint64_t plaintext_len)
{
    uint64_t chunks = plaintext_len == 0 ? 1 : (plaintext_len + GBX_CHUNK - 1) / GBX_CHUNK;
    return GBX_PAYLOAD_PREFIX + plaintext_len + chunks * GBX_CHUNK_ABYTES;
}

/*  commit = BLAKE2b-256("gbx1-key-commit\0" || K): binds the payload (and so
    the signed payload_hash) to one content key, because the secret stream's
    AEAD is not key-committing. */
static void s_key_commit(const uint8_t key[S_KEY], uint8_t out[S_COMMIT])
{
    static const char ctx[] = "gbx1-key-commit"; /* sizeof includes the NUL */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, S_COMMIT);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx);
    crypto_generichash_update(&st, key, S_KEY);
    crypto_generichash_final(&st, out, S_COMMIT);
    sodium_memzero(&st, sizeof st);
}

/*  AD of the first chunk: binds the ciphertext to message id, sender, recipient. */
static gbx_err_t s_binding_ad(const gbx_binding_t *b, uint8_t ad[32])
{
    static const char ctx[] = "gbx1-payload";
    if (!b || !b->message_id || !b->from_agency || !b->to_agency)
        return GBX_E_ARG;
    size_t lf = strlen(b->from_agency), lt = strlen(b->to_agency);
    if (lf > 255 || lt > 255)
        return GBX_E_ARG;
    uint8_t len;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx);
    len = GBX_MSG_ID_BYTES;
    crypto_generichash_update(&st, &len, 1);
    crypto_generichash_update(&st, b->message_id, GBX_MSG_ID_BYTES);
    len = (uint8_t)lf;
    crypto_generichash_update(&st, &len, 1);
    crypto_generichash_update(&st, (const uint8_t *)b->from_agency, lf);
    len = (uint8_t)lt;
    crypto_generichash_update(&st, &len, 1);
    crypto_generichash_update(&st, (const uint8_t *)b->to_agency, lt);
    crypto_generichash_final(&st, ad, 32);
    return GBX_OK;
}

/* ------------------------------------------------------------------ sealer */

struct gbx_sealer {
    uint64_t total;  /* declared plaintext bytes */
    uint64_t fed;    /* plaintext bytes fed so far */
    size_t buffered; /* bytes in plain */
    int chunks_out;  /* chunks emitted */
    int finished;
    gbx_sink_fn sink;
    void *arg;
    uint8_t ad[32];
    s_stream_t *state; /* sodium_malloc */
    crypto_generichash_state hash;
    uint8_t *plain;  /* sodium_malloc: GBX_CHUNK */
    uint8_t *cipher; /* malloc: GBX_CHUNK + ABYTES */
};

static gbx_err_t s_emit(gbx_sealer_t *self, const uint8_t *data, size_t len)
{
    crypto_generichash_update(&self->hash, data, len);
    gbx_err_t rc = self->sink(self->arg, data, len);
    if (rc != GBX_OK)
        self->finished = 1; /* a lost chunk ends the stream: later calls fail */
    return rc;
}

gbx_err_t gbx_sealer_new(const uint8_t recipient_box_pk[32], const gbx_binding_t *binding,
                         uint64_t plaintext_len, gbx_sink_fn sink, void *arg, gbx_sealer_t **out)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (!recipient_box_pk || !sink || !out)
        return GBX_E_ARG;
    if (plaintext_len > GBX_PAYLOAD_MAX)
        return GBX_E_PAYLOAD_TOO_LARGE;
    gbx_sealer_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    gbx_err_t rc = s_binding_ad(binding, self->ad);
    if (rc != GBX_OK)
        goto fail;
    rc = GBX_E_NOMEM;
    self->state = sodium_malloc(sizeof *self->state);
    self->plain = sodium_malloc(GBX_CHUNK);
    self->cipher = malloc(GBX_CHUNK + GBX_CHUNK_ABYTES);
    uint8_t *key = sodium_malloc(S_KEY);
    if (!self->state || !self->plain || !self->cipher || !key) {
        sodium_free(key);
        goto fail;
    }
    self->total = plaintext_len;
    self->sink = sink;
    self->arg = arg;
    /* prefix = sealed key || stream header || commit(K); the cipher buffer
       holds it until it is emitted. */
    uint8_t *prefix = self->cipher;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    crypto_secretstream_xchacha20poly1305_init_push(self->state, prefix + S_SEALED_KEY, key);
    s_key_commit(key, prefix + S_SEALED_KEY + S_SS_HEADER);
    int sealed = crypto_box_seal(prefix, key, S_KEY, recipient_box_pk);
    sodium_free(key);
    rc = GBX_E_ARG; /* crypto_box_seal fails only on a bad public key */
    if (sealed != 0)
        goto fail;
    crypto_generichash_init(&self->hash, NULL, 0, GBX_HASH_BYTES);
    rc = s_emit(self, prefix, GBX_PAYLOAD_PREFIX);
    if (rc != GBX_OK)
        goto fail;
    *out = self;
    return GBX_OK;
fail:
    gbx_sealer_destroy(&self);
    return rc;
}

/*  Encrypts the buffered plaintext as one chunk and emits it. */
static gbx_err_t s_seal_chunk(gbx_sealer_t *self, unsigned char tag)
{
    unsigned long long clen = 0;
    const uint8_t *ad = self->chunks_out == 0 ? self->ad : NULL;
    crypto_secretstream_xchacha20poly1305_push(self->state, self->cipher, &clen, self->plain,
                                               self->buffered, ad, ad ? sizeof self->ad : 0, tag);
    self->chunks_out++;
    self->buffered = 0;
    return s_emit(self, self->cipher, (size_t)clen);
}

gbx_err_t gbx_sealer_write(gbx_sealer_t *self, const void *data, size_t len)
{
    if (self->finished)
        return GBX_E_STATE;
    if (len > self->total - self->fed)
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    const uint8_t *p = data;
    while (len > 0) {
        if (self->buffered == GBX_CHUNK) {
            /* More input follows, so this full chunk is not the last one. */
            gbx_err_t rc = s_seal_chunk(self, S_TAG_MSG);
            if (rc != GBX_OK)
                return rc;
        }
        size_t take = GBX_CHUNK - self->buffered;
        if (take > len)
            take = len;
        memcpy(self->plain + self->buffered, p, take);
        self->buffered += take;
        self->fed += take;
        p += take;
        len -= take;
    }
    return GBX_OK;
}

gbx_err_t gbx_sealer_finish(gbx_sealer_t *self, uint8_t hash_out[GBX_HASH_BYTES])
{
    if (self->finished)
        return GBX_E_STATE;
    if (self->fed != self->total)
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    gbx_err_t rc = s_seal_chunk(self, S_TAG_FINAL);
    if (rc != GBX_OK)
        return rc;
    self->finished = 1;
    crypto_generichash_final(&self->hash, hash_out, GBX_HASH_BYTES);
    return GBX_OK;
}

void gbx_sealer_destroy(gbx_sealer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_sealer_t *self = *self_p;
    sodium_free(self->state);
    sodium_free(self->plain);
    free(self->cipher);
    sodium_memzero(self, sizeof *self);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------------ opener */

struct gbx_opener {
    uint64_t total;        /* declared plaintext bytes */
    uint64_t sealed_total; /* expected encrypted bytes */
    uint64_t seen;         /* encrypted bytes fed so far */
    uint64_t plain_out;    /* plaintext bytes emitted */
    size_t want;           /* bytes that complete the current unit */
    size_t have;           /* bytes of it in buf */
    int chunks_in;
    int prefix_done;
    int final_seen;
    int failed;
    gbx_sink_fn sink;
    void *arg;
    uint8_t ad[32];
    uint8_t expected_hash[GBX_HASH_BYTES];
    const gbx_identity_t *recipient;
    s_stream_t *state; /* sodium_malloc */
    uint8_t *buf;      /* malloc: GBX_CHUNK + ABYTES (also holds the prefix) */
    uint8_t *plain;    /* sodium_malloc: GBX_CHUNK */
    crypto_generichash_state hash;
};

/*  Cipher bytes of the next chunk. */
static size_t s_next_chunk_size(const gbx_opener_t *self)
{
    uint64_t left = self->total - self->plain_out;
    return (size_t)(left < GBX_CHUNK ? left : GBX_CHUNK) + GBX_CHUNK_ABYTES;
}

gbx_err_t gbx_opener_new(const gbx_identity_t *recipient, const gbx_binding_t *binding,
                         uint64_t plaintext_len, const uint8_t expected_hash[GBX_HASH_BYTES],
                         gbx_sink_fn sink, void *arg, gbx_opener_t **out)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (!recipient || !expected_hash || !sink || !out)
        return GBX_E_ARG;
    if (plaintext_len > GBX_PAYLOAD_MAX)
        return GBX_E_PAYLOAD_TOO_LARGE;
    gbx_opener_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    gbx_err_t rc = s_binding_ad(binding, self->ad);
    if (rc != GBX_OK)
        goto fail;
    rc = GBX_E_NOMEM;
    self->state = sodium_malloc(sizeof *self->state);
    self->plain = sodium_malloc(GBX_CHUNK);
    self->buf = malloc(GBX_CHUNK + GBX_CHUNK_ABYTES);
    if (!self->state || !self->plain || !self->buf)
        goto fail;
    self->recipient = recipient;
    memcpy(self->expected_hash, expected_hash, GBX_HASH_BYTES);
    self->total = plaintext_len;
    self->sealed_total = gbx_payload_sealed_size(plaintext_len);
    self->want = GBX_PAYLOAD_PREFIX;
    self->sink = sink;
    self->arg = arg;
    crypto_generichash_init(&self->hash, NULL, 0, GBX_HASH_BYTES);
    *out = self;
    return GBX_OK;
fail:
    gbx_opener_destroy(&self);
    return rc;
}

/*  Opens the sealed key, checks its commitment, starts the stream. */
static gbx_err_t s_open_prefix(gbx_opener_t *self)
{
    const gbx_pubid_t *pub = gbx_identity_public(self->recipient);
    uint8_t *key = sodium_malloc(S_KEY);
    if (!key)
        return GBX_E_NOMEM;
    uint8_t commit[S_COMMIT];
    gbx_err_t rc = GBX_E_DECRYPT_FAILED;
    if (crypto_box_seal_open(key, self->buf, S_SEALED_KEY, pub->box_pk,
                             gbx_identity_box_sk(self->recipient)) == 0) {
        s_key_commit(key, commit);
        if (sodium_memcmp(commit, self->buf + S_SEALED_KEY + S_SS_HEADER, S_COMMIT) == 0 &&
            crypto_secretstream_xchacha20poly1305_init_pull(self->state, self->buf + S_SEALED_KEY,
                                                            key) == 0)
            rc = GBX_OK;
    }
    sodium_free(key);
    return rc;
}

static gbx_err_t s_open_chunk(gbx_opener_t *self)
{
    unsigned long long plen = 0;
    unsigned char tag = 0;
    const uint8_t *ad = self->chunks_in == 0 ? self->ad : NULL;
    if (crypto_secretstream_xchacha20poly1305_pull(self->state, self->plain, &plen, &tag, self->buf,
                                                   self->have, ad, ad ? sizeof self->ad : 0) != 0)
        return GBX_E_DECRYPT_FAILED;
    self->chunks_in++;
    self->plain_out += plen;
    int last = self->plain_out == self->total;
    /* FINAL exactly on the last chunk: an early FINAL would truncate, a late
       one would extend what the header declared. */
    if ((tag == S_TAG_FINAL) != last || (tag != S_TAG_FINAL && tag != S_TAG_MSG))
        return GBX_E_DECRYPT_FAILED;
    self->final_seen = last;
    return plen ? self->sink(self->arg, self->plain, (size_t)plen) : GBX_OK;
}

gbx_err_t gbx_opener_write(gbx_opener_t *self, const void *data, size_t len)
{
    if (self->failed)
        return GBX_E_STATE;
    if (len > self->sealed_total - self->seen) {
        self->failed = 1;
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    }
    const uint8_t *p = data;
    self->seen += len;
    while (len > 0) {
        size_t take = self->want - self->have;
        if (take > len)
            take = len;
        memcpy(self->buf + self->have, p, take);
        /* Hash the private copy: the bytes hashed are the bytes decrypted,
           even if the caller's buffer changes meanwhile. */
        crypto_generichash_update(&self->hash, self->buf + self->have, take);
        self->have += take;
        p += take;
        len -= take;
        if (self->have < self->want)
            break;
        gbx_err_t rc = self->prefix_done ? s_open_chunk(self) : s_open_prefix(self);
        if (rc != GBX_OK) {
            self->failed = 1;
            return rc;
        }
        self->prefix_done = 1;
        self->have = 0;
        self->want = self->final_seen ? 0 : s_next_chunk_size(self);
    }
    return GBX_OK;
}

gbx_err_t gbx_opener_finish(gbx_opener_t *self)
{
    if (self->failed)
        return GBX_E_STATE;
    if (!self->final_seen || self->seen != self->sealed_total)
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    self->failed = 1; /* a stream is finished once */
    uint8_t h[GBX_HASH_BYTES];
    crypto_generichash_final(&self->hash, h, sizeof h);
    if (sodium_memcmp(h, self->expected_hash, sizeof h) != 0)
        return GBX_E_PAYLOAD_HASH_MISMATCH;
    return GBX_OK;
}

void gbx_opener_destroy(gbx_opener_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_opener_t *self = *self_p;
    sodium_free(self->state);
    sodium_free(self->plain);
    free(self->buf);
    sodium_memzero(self, sizeof *self);
    free(self);
    *self_p = NULL;
}

/* ----------------------------------------------------------- whole buffers */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
} s_membuf_t;

static gbx_err_t s_membuf_sink(void *arg, const uint8_t *data, size_t len)
{
    s_membuf_t *m = arg;
    if (len > m->cap - m->len)
        return GBX_E_STATE; /* the size formula was wrong: a bug, not input */
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    return GBX_OK;
}

gbx_err_t gbx_payload_seal(const uint8_t recipient_box_pk[32], const gbx_binding_t *binding,
                           const uint8_t *plain, size_t plain_len, uint8_t **out, size_t *out_len,
                           uint8_t hash_out[GBX_HASH_BYTES])
{
    if (plain_len > GBX_PAYLOAD_MAX)
        return GBX_E_PAYLOAD_TOO_LARGE;
    s_membuf_t m = {NULL, 0, (size_t)gbx_payload_sealed_size(plain_len)};
    m.buf = malloc(m.cap);
    if (!m.buf)
        return GBX_E_NOMEM;
    gbx_sealer_t *sealer = NULL;
    gbx_err_t rc = gbx_sealer_new(recipient_box_pk, binding, plain_len, s_membuf_sink, &m, &sealer);
    if (rc == GBX_OK)
        rc = gbx_sealer_write(sealer, plain, plain_len);
    if (rc == GBX_OK)
        rc = gbx_sealer_finish(sealer, hash_out);
    gbx_sealer_destroy(&sealer);
    if (rc != GBX_OK) {
        free(m.buf);
        return rc;
    }
    *out = m.buf;
    *out_len = m.len;
    return GBX_OK;
}

gbx_err_t gbx_payload_open(const gbx_identity_t *recipient, const gbx_binding_t *binding,
                           const uint8_t *sealed, size_t sealed_len, uint64_t plaintext_len,
                           const uint8_t expected_hash[GBX_HASH_BYTES], uint8_t **out,
                           size_t *out_len)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (!recipient || (!sealed && sealed_len) || !expected_hash || !out || !out_len)
        return GBX_E_ARG;
    if (plaintext_len > GBX_PAYLOAD_MAX)
        return GBX_E_PAYLOAD_TOO_LARGE;
    /* Spec section 4.3 order: length, hash, and only then decryption. The
       opener hashes again what it decrypts (its own copy of the bytes). */
    if (sealed_len != gbx_payload_sealed_size(plaintext_len))
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    uint8_t h[GBX_HASH_BYTES];
    gbx_payload_hash(sealed, sealed_len, h);
    if (sodium_memcmp(h, expected_hash, sizeof h) != 0)
        return GBX_E_PAYLOAD_HASH_MISMATCH;
    s_membuf_t m = {NULL, 0, (size_t)plaintext_len};
    m.buf = malloc(m.cap ? m.cap : 1);
    if (!m.buf)
        return GBX_E_NOMEM;
    gbx_opener_t *opener = NULL;
    gbx_err_t rc = gbx_opener_new(recipient, binding, plaintext_len, h, s_membuf_sink, &m, &opener);
    if (rc == GBX_OK)
        rc = gbx_opener_write(opener, sealed, sealed_len);
    if (rc == GBX_OK)
        rc = gbx_opener_finish(opener);
    gbx_opener_destroy(&opener);
    if (rc != GBX_OK) {
        sodium_memzero(m.buf, m.len);
        free(m.buf);
        return rc;
    }
    *out = m.buf;
    *out_len = m.len;
    return GBX_OK;
}

void gbx_payload_hash(const uint8_t *sealed, size_t len, uint8_t out[GBX_HASH_BYTES])
{
    crypto_generichash(out, GBX_HASH_BYTES, sealed, len, NULL, 0);
}
