/*  gbx/payload.h: end-to-end payload encryption, streamed in chunks.
    Spec: proto/spec/2-envelope.md section 4.

    Suite 1 (GBX1) seals a fresh 32-byte content key to the recipient's box key
    (crypto_box_seal) and encrypts the plaintext with
    crypto_secretstream_xchacha20poly1305 in GBX_CHUNK-byte chunks, the last
    one tagged FINAL. The first chunk carries additional data that binds the
    ciphertext to (message id, sender, recipient). The encrypted payload is

        sealed_key (80) || secretstream header (24) || chunk_1 || ... || chunk_n

    chunk_i = plaintext_i + 17 bytes; every chunk but the last is GBX_CHUNK
    plaintext bytes; a zero-length payload is one empty FINAL chunk. The
    header's payload_hash is BLAKE2b-256 of these bytes, so a broker can check
    it without the key. Memory use of a sealer or opener is about two chunks,
    whatever the payload size. */
#ifndef GBX_PAYLOAD_H
#define GBX_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"

#define GBX_CHUNK          65536u
#define GBX_CHUNK_ABYTES   17u
#define GBX_PAYLOAD_PREFIX 104u /* sealed key 80 + stream header 24 */
#define GBX_HASH_BYTES     32u
#define GBX_MSG_ID_BYTES   16u
#define GBX_PAYLOAD_MAX    (1ull << 30) /* suite limit; brokers set lower */

/*  What the first chunk is bound to. */
typedef struct {
    const uint8_t *message_id; /* GBX_MSG_ID_BYTES */
    const char *from_agency;
    const char *to_agency;
} gbx_binding_t;

/*  Receives output bytes; returns GBX_OK or an error that stops the stream. */
typedef gbx_err_t (*gbx_sink_fn)(void *arg, const uint8_t *data, size_t len);

/*  Size of the encrypted payload for PLAINTEXT_LEN bytes. */
uint64_t gbx_payload_sealed_size(uint64_t plaintext_len);

typedef struct gbx_sealer gbx_sealer_t;
/*  Starts encrypting PLAINTEXT_LEN bytes to RECIPIENT_BOX_PK. Output goes to
    SINK as it is produced (the 104-byte prefix before this returns).
    A sealer keeps its content key so that gbx_sealer_rewind can produce the
    same ciphertext again (two passes: hash first, send after signing). */
gbx_err_t gbx_sealer_new(const uint8_t recipient_box_pk[32], const gbx_binding_t *binding,
                         uint64_t plaintext_len, gbx_sink_fn sink, void *arg, gbx_sealer_t **out);
/*  Feeds LEN plaintext bytes, any split. GBX_E_PAYLOAD_LENGTH_MISMATCH when
    more than PLAINTEXT_LEN bytes are fed in total. */
gbx_err_t gbx_sealer_write(gbx_sealer_t *self, const void *data, size_t len);
/*  Emits the last chunk and sets HASH_OUT to the payload hash.
    GBX_E_PAYLOAD_LENGTH_MISMATCH when fewer bytes than declared were fed. */
gbx_err_t gbx_sealer_finish(gbx_sealer_t *self, uint8_t hash_out[GBX_HASH_BYTES]);
/*  Starts again with the same keys and the given sink; output is byte-for-byte
    the same as the first pass. */
gbx_err_t gbx_sealer_rewind(gbx_sealer_t *self, gbx_sink_fn sink, void *arg);
/*  NULL-safe; wipes keys; sets *self_p to NULL. */
void gbx_sealer_destroy(gbx_sealer_t **self_p);

typedef struct gbx_opener gbx_opener_t;
/*  Starts decrypting a payload of PLAINTEXT_LEN bytes for RECIPIENT. Plaintext
    goes to SINK chunk by chunk, each chunk authenticated before it is emitted;
    still, discard all output unless gbx_opener_finish returns GBX_OK. */
gbx_err_t gbx_opener_new(const gbx_identity_t *recipient, const gbx_binding_t *binding,
                         uint64_t plaintext_len, gbx_sink_fn sink, void *arg, gbx_opener_t **out);
/*  Feeds LEN ciphertext bytes, any split. GBX_E_DECRYPT_FAILED on a chunk that
    does not authenticate, GBX_E_PAYLOAD_LENGTH_MISMATCH on bytes past the end. */
gbx_err_t gbx_opener_write(gbx_opener_t *self, const void *data, size_t len);
/*  Checks that the payload ended where declared, with a FINAL chunk, and that
    its hash equals EXPECTED_HASH (NULL to skip when it was checked already). */
gbx_err_t gbx_opener_finish(gbx_opener_t *self, const uint8_t expected_hash[GBX_HASH_BYTES]);
void gbx_opener_destroy(gbx_opener_t **self_p);

/*  Whole-buffer helpers. On GBX_OK *out is malloc'ed, caller frees. */
gbx_err_t gbx_payload_seal(const uint8_t recipient_box_pk[32], const gbx_binding_t *binding,
                           const uint8_t *plain, size_t plain_len, uint8_t **out, size_t *out_len,
                           uint8_t hash_out[GBX_HASH_BYTES]);
gbx_err_t gbx_payload_open(const gbx_identity_t *recipient, const gbx_binding_t *binding,
                           const uint8_t *sealed, size_t sealed_len, uint64_t plaintext_len,
                           const uint8_t expected_hash[GBX_HASH_BYTES], uint8_t **out,
                           size_t *out_len);
/*  BLAKE2b-256 of an encrypted payload (what a broker checks). */
void gbx_payload_hash(const uint8_t *sealed, size_t len, uint8_t out[GBX_HASH_BYTES]);

#endif
