/*  gbx/client.h: libgbx, the client side of the adapter protocol
    (proto/spec/5-adapter.md), for an agency's adapter.

    Model. One gbx_client_t is one DEALER socket, a CURVE client of one node
    (the agency's home node), used from ONE thread. There are no threads in
    the library: the application drives it by calling gbx_client_poll (or
    gbx_client_send, which polls internally) in its loop. To fold it into an
    existing poll loop, poll gbx_client_socket and gbx_client_monitor for
    ZMQ_POLLIN (zmq_poll) and call gbx_client_poll(c, 0, &ev) when either is
    readable, and at least every gbx_client_next_timer_ms.

    Sending. Build a message with gbx_client_msg (or gbx_client_msg_batch for
    many under one signature): the integrator fills the header fields that
    describe the exchange (to_agency, service, data class, marking, purpose,
    legal route, ...) in a gbx_header_t (gbx_header_init first); the library
    sets from_agency, signer_key_id, message_id (unless given),
    created_at_ms, expires_at_ms (unless given), payload_length and
    payload_hash, seals the plaintext to the recipient's box key (found with
    opts.peer) and signs. Then either
      gbx_client_send    blocks until the node answers (Accepted with a
                         verified receipt, or Rejected), or a timeout; or
      gbx_client_submit  queues the message (the client owns it from then)
                         and returns its tag; the answer comes later from
                         gbx_client_poll as GBX_EV_ACCEPTED / _REJECTED.
    Every unanswered Submit is resent byte for byte after a reconnection and
    after opts.submit_timeout_ms without an answer (5-adapter.md 5.2, 6.3).

    Receiving. On every new connection (ZMQ_EVENT_HANDSHAKE_SUCCEEDED, seen
    through a socket monitor) the client grants opts.credit_messages and
    opts.credit_bytes. A Deliver is surfaced as GBX_EV_DELIVERY only after
    2-envelope.md section 8 steps 1 to 13 passed (sender's keys from
    opts.peer, signature, payload length and hash, to_agency = own id,
    decryption with the own identity). A delivery that fails any step is
    NOT surfaced and NOT acked (so that the node dead-letters it where an
    operator sees it); the client logs GBX-CLI-DELIVERY-REFUSED with the
    reason and returns its credit. The application acks a delivery with
    gbx_client_ack once it has processed it; acks are batched and sent,
    with Credit for what was processed, on the next gbx_client_poll or
    gbx_client_flush. A redelivery of a message acked recently (a bounded
    memory of opts.dedupe_size (from_agency, message_id) pairs), or of one
    the application holds and has not acked yet, is acked again or dropped
    without being surfaced (5-adapter.md 7.6).

    Liveness. The client sends a Ping when it sent nothing for
    opts.heartbeat_ivl_ms, answers the node's Pings, and sets ZeroMQ
    heartbeats on the socket.

    Logging. The library writes nothing anywhere unless opts.log is set;
    each line starts with a stable id: GBX-CLI-CONNECTED, -DISCONNECTED,
    -RESEND, -DELIVERY-REFUSED, -DUPLICATE, -RECEIPT-BAD, -UNEXPECTED,
    -SEND-FAILED.

    Errors are gbx_err_t (gbx/err.h). A timeout is GBX_E_IO with errno set
    to ETIMEDOUT. */
#ifndef GBX_CLIENT_H
#define GBX_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/identity.h"

typedef struct gbx_client gbx_client_t;
/*  A signed, sealed message ready to submit. */
typedef struct gbx_msg gbx_msg_t;

/*  Looks up the public keys of AGENCY_ID (the registry copy); NULL when the
    agency is unknown. The result must stay valid until the next call. */
typedef const gbx_pubid_t *(*gbx_peer_fn)(void *arg, const char *agency_id);
/*  Receives one log line (no newline). */
typedef void (*gbx_log_fn)(void *arg, const char *line);

typedef struct {
    const char *endpoint;           /* "tcp://127.0.0.1:7400"; required */
    const gbx_identity_t *identity; /* the agency's keys; borrowed, outlives the client */
    const gbx_pubid_t *node;        /* the node: curve_pk (CURVE server key), sign_pk
                                       (receipts); copied */
    const char *node_id;            /* receipts' node_id; NULL: node->id */
    gbx_peer_fn peer;               /* required: senders' and recipients' keys */
    void *peer_arg;
    uint32_t credit_messages; /* granted per session; 0: 64 */
    uint64_t credit_bytes;    /* 0: 64 MiB */
    int send_only;            /* 1: grant no credit at all, so that the node never
                                 delivers to this client (a sender such as
                                 gbx-send; its messages wait for a receiver) */
    int submit_timeout_ms;    /* resend unanswered Submits after this; 0: 30000 */
    int heartbeat_ivl_ms;     /* Ping when idle this long; 0: 10000 (spec maximum) */
    uint64_t ttl_ms;          /* default expires_at_ms - created_at_ms; 0: 1 hour */
    size_t dedupe_size;       /* recently acked messages remembered; 0: 4096 */
    void *zmq_ctx;            /* NULL: the client makes (and terminates) its own */
    gbx_log_fn log;           /* NULL: silent */
    void *log_arg;
} gbx_client_opts_t;

/*  Checks OPTS and connects (asynchronously: libzmq keeps retrying).
    GBX_E_ARG for missing or invalid options, GBX_E_IO when a ZeroMQ call
    fails. On GBX_OK the caller owns *out. */
gbx_err_t gbx_client_new(const gbx_client_opts_t *opts, gbx_client_t **out);
/*  Sends the acks not yet sent (bounded linger of 1 s), closes the socket.
    Unanswered submits are dropped. NULL-safe; sets *self_p to NULL. */
void gbx_client_destroy(gbx_client_t **self_p);

/*  The DEALER socket and the monitor socket (PAIR), for zmq_poll with
    ZMQ_POLLIN. Borrowed: never read from or write to them. */
void *gbx_client_socket(gbx_client_t *self);
void *gbx_client_monitor(gbx_client_t *self);
/*  Milliseconds until the client's next timer (heartbeat, resend), >= 0. */
int gbx_client_next_timer_ms(gbx_client_t *self);
/*  1 while a connection is up (between HANDSHAKE_SUCCEEDED and DISCONNECTED). */
int gbx_client_connected(const gbx_client_t *self);

/* ---------------------------------------------------------------- messages */

/*  Builds a message from H (not kept) and PLAIN (LEN bytes, copied): sets
    from_agency (own id), signer_key_id, message_id (a fresh one unless H
    has 16 bytes), created_at_ms (now unless set), expires_at_ms
    (created_at_ms + opts.ttl_ms unless set), payload_length, payload_hash;
    seals PLAIN to the box key of H->to_agency and signs the header.
    GBX_E_UNKNOWN_DESTINATION when opts.peer does not know to_agency;
    GBX_E_FIELD_INVALID (logged with the field) for a bad header. On GBX_OK
    the caller owns *out. */
gbx_err_t gbx_client_msg(gbx_client_t *self, const gbx_header_t *h, const void *plain, size_t len,
                         gbx_msg_t **out);
/*  As gbx_client_msg for N messages (1..GBX_BATCH_MAX) under one batch
    signature (2-envelope.md section 6): HS[i] and PLAINS[i] / LENS[i]. On
    GBX_OK the caller owns OUT[0..N-1]; on error none is set. */
gbx_err_t gbx_client_msg_batch(gbx_client_t *self, const gbx_header_t *const *hs,
                               const void *const *plains, const size_t *lens, size_t n,
                               gbx_msg_t **out);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_msg_destroy(gbx_msg_t **self_p);
/*  The message id (16 bytes), the envelope (header and signed bytes) and the
    encrypted payload size; borrowed, valid as long as SELF. */
const uint8_t *gbx_msg_id(const gbx_msg_t *self);
const gbx_envelope_t *gbx_msg_envelope(const gbx_msg_t *self);
size_t gbx_msg_payload_size(const gbx_msg_t *self);

/* ------------------------------------------------------------------ events */

typedef enum {
    GBX_EV_NONE = 0,
    GBX_EV_ACCEPTED,    /* tag, message_id, duplicate, status, sequence, receipt */
    GBX_EV_REJECTED,    /* tag, message_id, reason, detail, retry_after_ms */
    GBX_EV_DELIVERY,    /* delivery */
    GBX_EV_NOTICE,      /* message_id, reason, detail */
    GBX_EV_CONNECTED,   /* a new session: credit granted, submits resent */
    GBX_EV_DISCONNECTED /* the connection dropped; libzmq reconnects */
} gbx_event_kind_t;

/*  A verified delivery (5-adapter.md 7.7). */
typedef struct {
    uint64_t delivery_id; /* pass to gbx_client_ack */
    uint32_t attempt;
    const gbx_header_t *header; /* verified; valid as long as the delivery */
    uint8_t *data;              /* the decrypted plaintext, LEN bytes (+ a NUL) */
    size_t len;
    gbx_envelope_t *envelope; /* the signed envelope as delivered */
} gbx_delivery_t;

typedef struct {
    gbx_event_kind_t kind;
    uint64_t tag; /* ACCEPTED, REJECTED: the submit's tag */
    uint8_t message_id[GBX_MSG_ID_BYTES];
    size_t message_id_len; /* 0 when a Rejected carried none */
    /* ACCEPTED */
    int duplicate;
    int held;                /* receipt status HELD (else ACCEPTED) */
    uint64_t sequence;       /* the receipt's store sequence */
    uint64_t accepted_at_ms; /* the receipt's time */
    uint8_t *receipt;        /* the serialized SignedReceipt, verified; owned */
    size_t receipt_len;
    /* REJECTED, NOTICE */
    gbx_err_t reason;
    uint64_t retry_after_ms;
    char detail[256];
    /* DELIVERY: owned by the event */
    gbx_delivery_t *delivery;
} gbx_event_t;

/*  Frees what EV owns (receipt, delivery) and zeroes it. An event taken
    from poll or send must be cleared. NULL-safe. */
void gbx_event_clear(gbx_event_t *ev);

/* ----------------------------------------------------------------- sending */

/*  Submits MSG and waits at most TIMEOUT_MS (-1: forever) for its answer,
    processing everything else that arrives meanwhile (other events are
    kept for gbx_client_poll). MSG is borrowed and may be sent again later
    (same bytes: the node answers duplicate = 1). On return *result is the
    ACCEPTED or REJECTED event (clear it). Returns GBX_OK when accepted with
    a receipt that verified (gbx_receipt_verify + gbx_receipt_check); the
    reason when rejected (also in result->reason); GBX_E_IO with errno
    ETIMEDOUT when no answer came in time (the message is withdrawn: a late
    answer is dropped). A receipt that does not verify is reported as a
    rejection with the local reason (BAD_SIGNATURE, FIELD_INVALID, ...) and
    logged as GBX-CLI-RECEIPT-BAD. */
gbx_err_t gbx_client_send(gbx_client_t *self, gbx_msg_t *msg, int timeout_ms, gbx_event_t *result);
/*  Queues *MSG_P for submission (sent at once when possible) and sets
    *tag_out (may be NULL) to the tag its answer will carry. On GBX_OK the
    client owns the message and clears *msg_p; it keeps it until answered. */
gbx_err_t gbx_client_submit(gbx_client_t *self, gbx_msg_t **msg_p, uint64_t *tag_out);
/*  Submits that have no answer yet. */
size_t gbx_client_pending(const gbx_client_t *self);

/* --------------------------------------------------------------- receiving */

/*  Waits at most TIMEOUT_MS (0: do not wait; -1: forever) for one event,
    running the protocol meanwhile (answers, deliveries, Pings, resends,
    heartbeats, batched acks). Returns GBX_OK with *ev set, or GBX_E_IO
    with errno ETIMEDOUT (ev->kind GBX_EV_NONE) when nothing happened. */
gbx_err_t gbx_client_poll(gbx_client_t *self, int timeout_ms, gbx_event_t *ev);
/*  Marks the delivery DELIVERY_ID processed: queues an Ack and returns its
    credit (one message and its payload bytes), both sent on the next poll
    or flush, and remembers its (from_agency, message_id) for dedupe.
    GBX_E_ARG when the id was not surfaced by this client (or acked). */
gbx_err_t gbx_client_ack(gbx_client_t *self, uint64_t delivery_id);
/*  Sends queued acks and credit now. */
gbx_err_t gbx_client_flush(gbx_client_t *self);
/*  Builds the RESPONSE to REQUEST (5-adapter.md 6.4: to = its from_agency,
    correlation_id = its message_id, service, data class, marking, purpose
    and legal route copied) with PLAIN and submits it; *tag_out (may be
    NULL) is the submit's tag. The spec asks the server to ack the request
    once the response is Accepted: wait for that tag, then gbx_client_ack. */
gbx_err_t gbx_client_reply(gbx_client_t *self, const gbx_delivery_t *request, const void *plain,
                           size_t len, uint64_t *tag_out);

#endif
