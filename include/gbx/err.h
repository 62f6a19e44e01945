/*  gbx/err.h: one error enum for gbx.

    The wire reason codes of proto/gbx/v1/envelope.proto (enum Reason) and the
    library's local errors share one numbering: a function that fails because
    of bad input returns the very code a broker puts in its Rejected frame.
    Codes 9xx never travel on the wire. Table: proto/spec/4-reasons.md. */
#ifndef GBX_ERR_H
#define GBX_ERR_H

/*  X(name, number, on_wire, description) */
#define GBX_ERRORS(X)                                                                              \
    X(OK, 0, 1, "success")                                                                         \
    X(MALFORMED, 100, 1, "input is not a valid frame or protobuf message")                         \
    X(TRUNCATED, 101, 1, "input ends before a declared length")                                    \
    X(UNSUPPORTED_VERSION, 102, 1, "protocol or envelope version not supported")                   \
    X(UNKNOWN_SUITE, 103, 1, "crypto suite id not supported")                                      \
    X(HEADER_TOO_LARGE, 104, 1, "header larger than the protocol limit")                           \
    X(FIELD_INVALID, 105, 1, "a header field is missing or out of range")                          \
    X(PAYLOAD_TOO_LARGE, 106, 1, "payload larger than the limit")                                  \
    X(BAD_SIGNATURE, 200, 1, "signature does not verify")                                          \
    X(WRONG_KEY, 201, 1, "signer key id does not name the sender's key")                           \
    X(PAYLOAD_HASH_MISMATCH, 202, 1, "payload hash differs from the signed header")                \
    X(PAYLOAD_LENGTH_MISMATCH, 203, 1, "payload length differs from the signed header")            \
    X(BAD_INCLUSION_PATH, 204, 1, "batch inclusion path is malformed or does not verify")          \
    X(DECRYPT_FAILED, 205, 1, "payload could not be decrypted")                                    \
    X(SENDER_MISMATCH, 300, 1, "claimed sender is not the authenticated agency")                   \
    X(UNKNOWN_AGENCY, 301, 1, "agency not in the registry")                                        \
    X(UNKNOWN_DESTINATION, 302, 1, "destination agency not in the registry")                       \
    X(EXPIRED, 303, 1, "message expired")                                                          \
    X(NOT_YET_VALID, 304, 1, "created-at lies beyond the allowed clock skew")                      \
    X(DUPLICATE, 305, 1, "message id seen before")                                                 \
    X(TTL_TOO_LONG, 306, 1, "expiry too far after creation")                                       \
    X(POLICY_DENIED, 400, 1, "denied by policy")                                                   \
    X(POLICY_NO_MATCH, 401, 1, "no policy rule matches")                                           \
    X(HOLD_REJECTED, 402, 1, "held message rejected by an approver")                               \
    X(HOLD_TIMEOUT, 403, 1, "held message not approved in time")                                   \
    X(RETRY_LATER, 500, 1, "destination full or broker busy: retry later")                         \
    X(DRAINING, 501, 1, "broker is draining for maintenance")                                      \
    X(INTERNAL_ERROR, 502, 1, "internal error")                                                    \
    X(STORE_FAILED, 503, 1, "store write failed")                                                  \
    X(DEAD_LETTERED, 504, 1, "too many failed deliveries: dead-lettered")                          \
    X(IO, 900, 0, "file or socket i/o failed (see errno)")                                         \
    X(NOMEM, 901, 0, "out of memory")                                                              \
    X(ARG, 902, 0, "invalid argument")                                                             \
    X(KEY_PERMS, 903, 0,                                                                           \
      "secret key file is a symlink, another user's, or open to group or others")                  \
    X(KEY_FORMAT, 904, 0, "key file is not a valid gbx key file")                                  \
    X(CRYPTO_INIT, 905, 0, "libsodium failed to initialise")                                       \
    X(STATE, 906, 0, "call out of order")                                                          \
    X(AUDIT_BROKEN, 907, 0, "audit trail does not verify")

typedef enum {
#define GBX_ERR_ENUM_(name, num, wire, text) GBX_E_##name = num,
    GBX_ERRORS(GBX_ERR_ENUM_)
#undef GBX_ERR_ENUM_
} gbx_err_t;

#define GBX_OK GBX_E_OK

/*  The code's name as in the spec ("BAD_SIGNATURE"); "UNKNOWN" if none. */
const char *gbx_err_name(gbx_err_t err);
/*  One line of English; never NULL. */
const char *gbx_strerror(gbx_err_t err);
/*  1 if the code may travel in a Rejected or Notice frame. */
int gbx_err_on_wire(gbx_err_t err);

#endif
