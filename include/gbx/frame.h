/*  gbx/frame.h: the adapter-socket framing codec (proto/spec/5-adapter.md
    section 3), shared by the broker and the client library.

    One ZeroMQ message is an array of parts:

        part 0      the 4 bytes "GBX1" (GBX_FRAME_PROTOCOL)
        part 1      one serialized gbx.v1.Frame (at most GBX_FRAME_MAX bytes)
        parts 2..n  Submit and Deliver only: the encrypted payload, the
                    concatenation of these parts in order, any split

    This module does not use libzmq: callers fill gbx_part_t from zmq_msg_t
    (zmq_msg_data, zmq_msg_size) and send the encoder's output as part 1
    after GBX_FRAME_PROTOCOL.

    Order of checks (2-envelope.md section 8). gbx_frame_decode does the
    framing checks of 5-adapter.md section 3 and, for Submit and Deliver,
    envelope steps 1 to 6 (gbx_envelope_decode). The payload length and hash
    are steps 11 and 12, which come AFTER the signature (step 10), so decode
    does not look at payload bytes: the caller verifies the envelope
    (gbx_envelope_verify) and then calls gbx_frame_check_payload. A Submit or
    Deliver without payload parts therefore decodes, and fails
    gbx_frame_check_payload with GBX_E_PAYLOAD_LENGTH_MISMATCH. */
#ifndef GBX_FRAME_H
#define GBX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/v1/adapter.pb-c.h"

#define GBX_FRAME_PROTOCOL     "GBX1" /* part 0, 4 bytes, no NUL on the wire */
#define GBX_FRAME_PROTOCOL_LEN 4u
#define GBX_FRAME_MAX          20544u /* bytes of part 1: GBX_ENVELOPE_MAX + 64 */

/*  One ZeroMQ message part: borrowed bytes. DATA may be NULL when LEN is 0. */
typedef struct {
    const uint8_t *data;
    size_t len;
} gbx_part_t;

/*  The body of a Frame; the numbers are the oneof's field numbers. */
typedef enum {
    GBX_FRAME_NONE = 0,
    GBX_FRAME_SUBMIT = 2,
    GBX_FRAME_ACCEPTED = 3,
    GBX_FRAME_REJECTED = 4,
    GBX_FRAME_DELIVER = 5,
    GBX_FRAME_ACK = 6,
    GBX_FRAME_CREDIT = 7,
    GBX_FRAME_NOTICE = 8,
    GBX_FRAME_PING = 9,
    GBX_FRAME_PONG = 10
} gbx_frame_kind_t;

/*  Who is decoding, for the direction check of section 3 ("a body an
    adapter may not send": MALFORMED). AT_ANY skips that check. */
typedef enum {
    GBX_FRAME_AT_ANY = 0,
    GBX_FRAME_AT_NODE,   /* accepts submit, ack, credit, ping, pong */
    GBX_FRAME_AT_ADAPTER /* accepts accepted, rejected, deliver, notice, ping, pong */
} gbx_frame_at_t;

/*  What a node's Rejected answer to a failed decode carries (5-adapter.md
    sections 3 and 6.2): the tag (0 for protocol-id and parse errors, else
    the frame's tag) and the message id (the header's message_id when
    envelope step 5 passed and it is 16 bytes, else empty). */
typedef struct {
    uint64_t tag;
    uint8_t message_id[GBX_MSG_ID_BYTES];
    size_t message_id_len; /* 0 or GBX_MSG_ID_BYTES */
} gbx_frame_fail_t;

typedef struct gbx_frame gbx_frame_t;

/*  Decodes the N parts of one received ZeroMQ message, checking in this order:
      part 0 is exactly "GBX1" (N = 0 too)           UNSUPPORTED_VERSION
      a part 1 exists                                TRUNCATED
      part 1 at most GBX_FRAME_MAX bytes             HEADER_TOO_LARGE
      part 1 parses as a Frame (empty: TRUNCATED;    TRUNCATED or MALFORMED
        cut inside a top-level field: TRUNCATED)
      Frame.body is set (an unknown body is unset)   MALFORMED
      the body suits AT (see gbx_frame_at_t)         MALFORMED
      payload parts only after Submit or Deliver     MALFORMED
      Submit / Deliver: the envelope is present      MALFORMED
      Submit / Deliver: gbx_envelope_decode          its reason (steps 1 to 6)
    The envelope is re-encoded from the parsed Frame and decoded from those
    bytes (allowed by 5-adapter.md section 6.1); the header bytes are carried
    as they came. The signature is NOT verified and the payload NOT checked.
    On GBX_OK the caller owns *out (gbx_frame_destroy). The frame BORROWS THE
    BYTES of parts 2..n (the payload): they must stay alive and unchanged
    until the frame is destroyed (keep the zmq_msg_t's). The array PARTS and
    the bytes of parts 0 and 1 are not kept (the frame copies what it needs).
    FAIL may be NULL; when not, it is filled on every return (on GBX_OK with
    the frame's tag). GBX_E_NOMEM, GBX_E_CRYPTO_INIT are local errors. */
gbx_err_t gbx_frame_decode_at(const gbx_part_t *parts, size_t n, gbx_frame_at_t at,
                              gbx_frame_t **out, gbx_frame_fail_t *fail);
/*  gbx_frame_decode_at(parts, n, GBX_FRAME_AT_ANY, out, NULL). */
gbx_err_t gbx_frame_decode(const gbx_part_t *parts, size_t n, gbx_frame_t **out);
/*  NULL-safe; sets *self_p to NULL. Does not touch the borrowed parts. */
void gbx_frame_destroy(gbx_frame_t **self_p);

gbx_frame_kind_t gbx_frame_kind(const gbx_frame_t *self);
uint64_t gbx_frame_tag(const gbx_frame_t *self);
/*  The parsed Frame, valid as long as SELF. */
const Gbx__V1__Frame *gbx_frame_message(const gbx_frame_t *self);
/*  Submit and Deliver: the decoded (not yet verified) envelope, valid as long
    as SELF. NULL for other kinds. */
const gbx_envelope_t *gbx_frame_envelope(const gbx_frame_t *self);
/*  The payload parts (a copy of parts 2..n, pointing into the caller's
    bytes) and their count in *n; NULL with *n = 0 when there are none. */
const gbx_part_t *gbx_frame_payload(const gbx_frame_t *self, size_t *n);
/*  Total bytes of the payload parts (saturates at UINT64_MAX). */
uint64_t gbx_frame_payload_size(const gbx_frame_t *self);

/*  Envelope steps 11 and 12, to be called after gbx_envelope_verify passed:
    the payload parts total sealed_size(payload_length) bytes
    (GBX_E_PAYLOAD_LENGTH_MISMATCH), and BLAKE2b-256 streamed over the parts
    in order (never concatenated) equals payload_hash
    (GBX_E_PAYLOAD_HASH_MISMATCH). GBX_E_STATE for kinds without a payload. */
gbx_err_t gbx_frame_check_payload(const gbx_frame_t *self);

/* ---------------------------------------------------------------- encoding

    Each encoder writes part 1: on GBX_OK *out is malloc'ed (caller frees)
    and holds *len bytes; on error nothing is set. Part 0 is
    GBX_FRAME_PROTOCOL; for Submit and Deliver the payload parts follow. Each
    refuses a body-less frame (GBX_E_ARG) and one longer than GBX_FRAME_MAX
    (GBX_E_HEADER_TOO_LARGE), which a receiver would refuse. */

/*  Serializes F (not kept). */
gbx_err_t gbx_frame_encode(const Gbx__V1__Frame *f, uint8_t **out, size_t *len);
/*  Submit{envelope} with TAG. */
gbx_err_t gbx_frame_submit(uint64_t tag, const gbx_envelope_t *env, uint8_t **out, size_t *len);
/*  Deliver{delivery_id, attempt, envelope}, tag 0. */
gbx_err_t gbx_frame_deliver(uint64_t delivery_id, uint32_t attempt, const gbx_envelope_t *env,
                            uint8_t **out, size_t *len);
/*  Accepted{receipt, duplicate}: RECEIPT is a serialized SignedReceipt (as
    from gbx_receipt_sign or the store) and is copied byte for byte into the
    frame, so a duplicate's answer carries the identical receipt. GBX_E_ARG
    when it does not parse as a SignedReceipt. */
gbx_err_t gbx_frame_accepted(uint64_t tag, const uint8_t *receipt, size_t receipt_len,
                             int duplicate, uint8_t **out, size_t *len);
/*  Rejected{message_id, reason, detail, retry_after_ms}. ID_LEN 0 or
    GBX_MSG_ID_BYTES; REASON a wire code other than OK; RETRY_AFTER_MS > 0
    with GBX_E_RETRY_LATER and only with it (else 0); DETAIL may be NULL.
    Else GBX_E_ARG. */
gbx_err_t gbx_frame_rejected(uint64_t tag, const uint8_t *message_id, size_t id_len,
                             gbx_err_t reason, const char *detail, uint64_t retry_after_ms,
                             uint8_t **out, size_t *len);
/*  Notice{message_id (16 bytes), reason (a wire code other than OK), detail},
    tag 0. */
gbx_err_t gbx_frame_notice(const uint8_t message_id[GBX_MSG_ID_BYTES], gbx_err_t reason,
                           const char *detail, uint8_t **out, size_t *len);
/*  Ack{delivery_ids}, tag 0. N may be 0; 2000 ids always fit in one frame. */
gbx_err_t gbx_frame_ack(const uint64_t *ids, size_t n, uint8_t **out, size_t *len);
/*  Credit{messages, bytes}, tag 0. */
gbx_err_t gbx_frame_credit(uint32_t messages, uint64_t bytes, uint8_t **out, size_t *len);
/*  Ping{nonce} and Pong{nonce} with TAG (a Pong echoes the Ping's tag). */
gbx_err_t gbx_frame_ping(uint64_t tag, uint64_t nonce, uint8_t **out, size_t *len);
gbx_err_t gbx_frame_pong(uint64_t tag, uint64_t nonce, uint8_t **out, size_t *len);

#endif
