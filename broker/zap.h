/*  gbx_zap: the node's ZeroMQ ZAP handler (ZeroMQ RFC 27, ZAP 1.0), which
    admits CurveZMQ clients by the registry (issue 3, deliverable 2;
    proto/spec/3-keys.md section 4, proto/spec/5-adapter.md section 2).

    One handler per ZeroMQ context: it binds a REP socket at
    inproc://zeromq.zap.01 in that context and answers on its own thread.

    ORDER MATTERS. libzmq admits every CURVE client when no ZAP handler is
    bound in the context, so start the handler BEFORE any CURVE server socket
    binds or accepts, and refuse to run if gbx_zap_start fails. Likewise
    close every CURVE server socket BEFORE gbx_zap_destroy: a server that
    outlives its handler admits anyone again.

    Server sockets set (3-keys.md section 4):
        ZMQ_CURVE_SERVER    1
        ZMQ_CURVE_SECRETKEY the node's curve secret key
        ZMQ_ZAP_DOMAIN      one of the GBX_ZAP_DOMAIN_* strings below

    Decisions, per request:
      domain    GBX_ZAP_DOMAIN_ADAPTER admits agency keys only,
                GBX_ZAP_DOMAIN_PEER node keys only, GBX_ZAP_DOMAIN_CONTROL
                operator keys only (User-Id = the operator's id, "X-Gbx-Role"
                = its role: viewer, operator, approver, admin),
                GBX_ZAP_DOMAIN ("gbx")
                either kind (the role tells them apart). Any other domain,
                including none, is refused (400 "unknown domain").
      CURVE     a 32-byte client key that gbx_registry_by_curve knows:
                200, User-Id = the agency's or node's id, metadata property
                "X-Gbx-Role" = "agency" or "node" (read both on any received
                message with zmq_msg_gets). An unknown key: 400
                "unknown key"; a known key of the wrong kind for the
                domain: 400 "wrong role". libzmq then drops the connection
                in the handshake: no message from it is ever read.
      others    NULL, PLAIN or any other mechanism: 400 "mechanism not
                allowed". (A NULL socket asks ZAP only if it has a
                ZMQ_ZAP_DOMAIN; a NULL client never completes a handshake
                with a CURVE server at all.)
      malformed fewer than 6 frames, a version other than "1.0", more than
                GBX_ZAP_MAX_FRAMES frames, a CURVE request without exactly
                one 32-byte credential: 500 "malformed request", echoing the
                request id when there is one (else an empty id). The
                handler keeps serving.

    Not checked here: whether an agency is served by THIS node (the handler
    does not know the node's id; the session layer compares
    gbx_agency_t.node when it binds the connection to the agency).

    The registry is borrowed and MUST stay alive and unchanged (read-only)
    until gbx_zap_destroy returns; reloading it is a later problem.

    The handler never prints. Refusal reasons stay local (the status text
    names a class of reason, never key material). */
#ifndef GBX_ZAP_H
#define GBX_ZAP_H

#include <stdint.h>

#include "gbx/err.h"
#include "registry.h"

#define GBX_ZAP_ENDPOINT       "inproc://zeromq.zap.01"
#define GBX_ZAP_DOMAIN         "gbx"         /* agencies and nodes */
#define GBX_ZAP_DOMAIN_ADAPTER "gbx.adapter" /* agencies only */
#define GBX_ZAP_DOMAIN_PEER    "gbx.peer"    /* nodes only */
#define GBX_ZAP_DOMAIN_CONTROL "gbx.control" /* operators only (broker/control.h) */
#define GBX_ZAP_ROLE_PROPERTY  "X-Gbx-Role"  /* "agency" or "node" */
#define GBX_ZAP_MAX_FRAMES     16            /* more: malformed */

typedef struct gbx_zap gbx_zap_t;

/*  What the handler answered since it started. Every request counts
    exactly once: accepted (200), refused (400) or malformed (500). */
typedef struct {
    uint64_t accepted;
    uint64_t refused;
    uint64_t malformed;
} gbx_zap_stats_t;

/*  Binds the ZAP socket in ZMQ_CTX and starts the handler thread. REG is
    borrowed (see above). On GBX_OK the caller owns *out. Errors: GBX_E_ARG
    (a NULL argument), GBX_E_STATE (a handler is already bound in this
    context), GBX_E_IO (another ZeroMQ or thread failure), GBX_E_NOMEM. */
gbx_err_t gbx_zap_start(void *zmq_ctx, const gbx_registry_t *reg, gbx_zap_t **out);

/*  Stops the thread, unbinds and closes the socket; waits for it. NULL-safe;
    sets *self_p to NULL. The context may be terminated afterwards. */
void gbx_zap_destroy(gbx_zap_t **self_p);

/*  The counters; safe from any thread while the handler runs. */
void gbx_zap_stats(const gbx_zap_t *self, gbx_zap_stats_t *out);

#endif
