/*  gbx/payload.h: end-to-end payload encryption, streamed in chunks.
    Spec: proto/spec/2-envelope.md section 4.

    Suite 1 (GBX1) seals a fresh 32-byte content key K to the recipient's box
    key (crypto_box_seal), commits to K, and encrypts the plaintext with
    crypto_secretstream_xchacha20poly1305 in GBX_CHUNK-byte chunks, the last
    one tagged FINAL. The first chunk carries additional data that binds the
    ciphertext to (message id, sender, recipient). The encrypted payload is

        sealed_key (80) || secretstream header (24) || commit (32)
            || chunk_1 || ... || chunk_n

    with commit = BLAKE2b-256("gbx1-key-commit\0" || K) (the label's NUL is
    hashed). chunk_i = plaintext_i + 17 bytes; every chunk but the last is
    GBX_CHUNK plaintext bytes; a zero-length payload is one empty FINAL chunk.
    The header's payload_hash is BLAKE2b-256 of all these bytes, so a broker
    can check it without the key. Memory use of a sealer or opener is about
    two chunks, whatever the payload size.

    Why the commitment: the sealed box is anonymous and XChaCha20-Poly1305 is
    not key-committing, so a sender could craft one ciphertext that opens
    under two content keys to two plaintexts. The opener accepts only the key
    whose commitment is in the payload, and payload_hash (which the sender
    signs) covers the commitment, so a signed header binds exactly one key
    and hence one plaintext. A recipient can then show a third party the
    signed envelope, the payload and K, and the third party gets the same
    plaintext (non-repudiation of the plaintext, not only of the ciphertext).

    Sending a large payload in two passes (hash before signing, send after):
    seal once into a temporary file or other sink, take the hash from
    gbx_sealer_finish, sign the header, then send the stored ciphertext.
    Never encrypt the same message twice under one key: a sealer has no way
    to restart, because a second pass over different plaintext would reuse
    keystream and Poly1305 keys. */
#ifndef GBX_PAYLOAD_H
#define GBX_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"

#define GBX_CHUNK          65536u
#define GBX_CHUNK_ABYTES   17u
#define GBX_PAYLOAD_PREFIX 136u /* sealed key 80 + stream header 24 + key commitment 32 */
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
/*  Starts encrypting PLAINTEXT_LEN bytes to RECIPIENT_BOX_PK under a fresh
    content key. Output goes to SINK as it is produced (the GBX_PAYLOAD_PREFIX
    bytes before this returns). One sealer makes one ciphertext: to send it
    after signing, keep what SINK received (see the two-pass note above). */
gbx_err_t gbx_sealer_new(const uint8_t recipient_box_pk[32], const gbx_binding_t *binding,
                         uint64_t plaintext_len, gbx_sink_fn sink, void *arg, gbx_sealer_t **out);
/*  Feeds LEN plaintext bytes, any split. GBX_E_PAYLOAD_LENGTH_MISMATCH when
    more than PLAINTEXT_LEN bytes are fed in total. */
gbx_err_t gbx_sealer_write(gbx_sealer_t *self, const void *data, size_t len);
/*  Emits the last chunk and sets HASH_OUT to the payload hash.
    GBX_E_PAYLOAD_LENGTH_MISMATCH when fewer bytes than declared were fed. */
gbx_err_t gbx_sealer_finish(gbx_sealer_t *self, uint8_t hash_out[GBX_HASH_BYTES]);
/*  NULL-safe; wipes keys; sets *self_p to NULL. */
void gbx_sealer_destroy(gbx_sealer_t **self_p);

typedef struct gbx_opener gbx_opener_t;
/*  Starts decrypting a payload of PLAINTEXT_LEN bytes for RECIPIENT, whose
    payload hash must be EXPECTED_HASH (the signed header's payload_hash;
    required: GBX_E_ARG when NULL). The hash is what ties the payload to the
    sender's signature (anyone can seal a payload to the recipient that passes
    every chunk MAC under a public binding), so the opener always checks it.
    Plaintext goes to SINK chunk by chunk, each chunk authenticated before it
    is emitted, but the hash is known only at the end: discard all output
    unless gbx_opener_finish returns GBX_OK. */
gbx_err_t gbx_opener_new(const gbx_identity_t *recipient, const gbx_binding_t *binding,
                         uint64_t plaintext_len, const uint8_t expected_hash[GBX_HASH_BYTES],
                         gbx_sink_fn sink, void *arg, gbx_opener_t **out);
/*  Feeds LEN ciphertext bytes, any split. A failure is reported at once,
    before the hash is known: GBX_E_DECRYPT_FAILED when the sealed key does
    not open, the key commitment does not match or a chunk does not
    authenticate (a payload altered on the way would also fail the hash, but
    a streaming receiver learns of the bad chunk first: spec section 4.3);
    GBX_E_PAYLOAD_LENGTH_MISMATCH on bytes past the end. After a failure
    every call gives GBX_E_STATE. */
gbx_err_t gbx_opener_write(gbx_opener_t *self, const void *data, size_t len);
/*  Checks that the payload ended where declared, with a FINAL chunk
    (GBX_E_PAYLOAD_LENGTH_MISMATCH), and that the hash of every byte fed equals
    the expected hash (GBX_E_PAYLOAD_HASH_MISMATCH). The opener hashes its own
    copy of the bytes, the copy it decrypts, so input changed while it is read
    cannot pass. Only GBX_OK makes the output usable. A stream is finished
    once. */
gbx_err_t gbx_opener_finish(gbx_opener_t *self);
void gbx_opener_destroy(gbx_opener_t **self_p);

/*  Whole-buffer helpers. On GBX_OK *out is malloc'ed, caller frees.
    gbx_payload_open checks in the order of spec section 4.3: the length
    (GBX_E_PAYLOAD_LENGTH_MISMATCH), then the hash against EXPECTED_HASH
    (required; GBX_E_PAYLOAD_HASH_MISMATCH), before decrypting anything;
    then GBX_E_DECRYPT_FAILED for the sealed key, the key commitment, a chunk
    or a tag. It hashes SEALED twice: first for that order, then (as the
    opener does) the bytes it decrypts. */
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
