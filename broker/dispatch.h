/*  gbx_dispatch: delivery at a node (issue 3, deliverable 4;
    proto/spec/5-adapter.md sections 5, 7, 8, 9): sessions and their credit,
    which queued message goes to which session, acks, ack timeouts,
    redelivery with backoff, dead letters, expiry, notices, heartbeats.

    It runs on gbxd's loop thread and has no socket and no thread of its
    own. It reads the store (messages to deliver, queue entries, due keys)
    but never writes it: every durable change is a job (broker/job.h) it
    gives to opts.job (the writer), and it acts on the result when gbxd
    hands the job back (gbx_dispatch_done). Frames go out through opts.send.

    Memory is bounded by windows, not by queue depth: per destination at
    most opts.window queued entries are in memory (read from the queues
    keyspace in sequence order when the window runs low), plus the
    deliveries in flight (opts.inflight_window per session, at most 64
    sessions per agency: the least recently heard goes) and the jobs
    pending (acks for messages not in memory are ignored beyond 65536 jobs;
    they come again with the redelivery). A queue of a million messages
    costs its window.

    A message's life here:
        queued --credit--> marking (job MARK) --done--> in flight (Deliver
        sent, ack timer) --Ack--> acking (job ACK) --done--> gone
        in flight --ack timeout or session closed--> queued again after a
        backoff (100 ms doubling to 30 s), or expired (job EXPIRE, Notice
        EXPIRED) once past expires_at_ms, or dead-lettered (job DEADLETTER,
        Notice DEAD_LETTERED) after max_attempts deliveries
        queued past expires_at_ms (found by the due-key sweep) --> expired
    The Deliver is sent only after its MARK is durable, so delivery ids are
    never reused and attempts survive restarts (broker/queue.h). An Ack
    that arrives while its MARK is pending wins: the Deliver is not sent. */
#ifndef GBX_DISPATCH_H
#define GBX_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/frame.h"
#include "job.h"
#include "registry.h"
#include "store.h"

/*  Sends [routing id RID, "GBX1", PART1, payload] to a session; PAYLOAD
    (PLEN bytes, may be 0) lies inside OWNER, a malloc'ed buffer the
    callee takes over (frees it, also on failure). Returns 0;
    GBX_DISPATCH_GONE when the session's connection is gone (EHOSTUNREACH:
    the dispatcher closes the session); GBX_DISPATCH_BUSY when it would
    block (the connection's pipe is full: a Deliver goes back to the queue,
    not counted as an attempt, and the session stays). */
#define GBX_DISPATCH_GONE (-1)
#define GBX_DISPATCH_BUSY (-2)
typedef int (*gbx_dispatch_send_fn)(void *arg, const uint8_t *rid, size_t rid_len,
                                    const uint8_t *part1, size_t len1, const uint8_t *payload,
                                    size_t plen, void *owner);
/*  Takes over JOB (to the writer). */
typedef void (*gbx_dispatch_job_fn)(void *arg, gbx_job_t *job);
typedef uint64_t (*gbx_dispatch_clock_fn)(void *arg);

typedef struct {
    gbx_store_t *store;             /* borrowed; read only */
    const gbx_registry_t *registry; /* borrowed */
    const char *node_id;            /* agencies of this node get deliveries */
    uint64_t ack_timeout_ms;        /* ACK_TIMEOUT */
    uint64_t session_timeout_ms;    /* SESSION_TIMEOUT */
    uint32_t max_attempts;          /* MAX_ATTEMPTS */
    size_t window;                  /* queued entries in memory per destination; 0 = 1024 */
    size_t inflight_window;         /* deliveries in flight per session; 0 = 64 */
    uint64_t backoff_min_ms;        /* 0 = 100 */
    uint64_t backoff_max_ms;        /* 0 = 30000 */
    gbx_dispatch_send_fn send;
    gbx_dispatch_job_fn job;
    void *arg;                   /* of send and job */
    gbx_dispatch_clock_fn clock; /* NULL = CLOCK_REALTIME, ms */
    void *clock_arg;
    void (*log)(void *arg, const char *line); /* optional, one event per line */
    void *log_arg;
} gbx_dispatch_opts_t;

typedef struct {
    uint64_t sessions_opened, sessions_closed;
    uint64_t delivered;   /* Deliver frames sent */
    uint64_t redelivered; /* of which attempt > 1 */
    uint64_t acked, expired, dead_lettered;
    uint64_t notices_sent, notices_dropped;
    uint64_t inflight;  /* now */
    uint64_t in_memory; /* queue entries in memory now */
} gbx_dispatch_stats_t;

typedef struct gbx_dispatch gbx_dispatch_t;

gbx_err_t gbx_dispatch_new(const gbx_dispatch_opts_t *opts, gbx_dispatch_t **out);
/*  NULL-safe. Jobs still at the writer must have come back first. */
void gbx_dispatch_destroy(gbx_dispatch_t **self_p);

/*  A frame other than Submit from session RID of AGENCY (Credit, Ack,
    Ping, Pong): acts on it. Any message at all from a session, Submit
    included, must also be reported with gbx_dispatch_seen. */
void gbx_dispatch_frame(gbx_dispatch_t *self, const uint8_t *rid, size_t rid_len,
                        const char *agency, const gbx_frame_t *frame);
/*  Session RID of AGENCY sent something now (opens the session if new). */
void gbx_dispatch_seen(gbx_dispatch_t *self, const uint8_t *rid, size_t rid_len,
                       const char *agency);
/*  A SUBMIT job came back from the writer: a new message may wait for
    delivery. Does not free JOB. */
void gbx_dispatch_accepted(gbx_dispatch_t *self, const gbx_job_t *job);
/*  Hands a RELEASE or REFUSE job (an operator's decision on a held
    message, broker/control.h) to the writer through opts.job; it comes
    back to gbx_dispatch_done like the dispatcher's own, which acts on the
    result (queues the message again, or notifies its sender). */
void gbx_dispatch_give(gbx_dispatch_t *self, gbx_job_t *job);
/*  A job of the dispatcher's came back from the writer: acts on it and
    frees it. */
void gbx_dispatch_done(gbx_dispatch_t *self, gbx_job_t *job);
/*  A job of the dispatcher's that will never reach the writer (shutting
    down): forgets it and frees it, with no other effect (the store keeps
    the message in its last durable state). Never calls back into gbxd. */
void gbx_dispatch_drop(gbx_dispatch_t *self, gbx_job_t *job);
/*  gbxd stopped (PAUSED 1) or resumed (0) reading the socket: while it does
    not read, silence does not end sessions, and on resume every session
    counts as just heard from. */
void gbx_dispatch_pause(gbx_dispatch_t *self, int paused);
/*  Shutting down: no new delivery starts. */
void gbx_dispatch_stop(gbx_dispatch_t *self);
/*  Timers: ack and session timeouts, backoffs, the expiry sweep, then
    delivers what credit allows. Call at least every 100 ms. */
void gbx_dispatch_tick(gbx_dispatch_t *self);
void gbx_dispatch_stats(const gbx_dispatch_t *self, gbx_dispatch_stats_t *out);
/*  What the dispatcher knows of one agency now (gbxctl agencies). */
typedef struct {
    size_t sessions;           /* open */
    uint64_t last_seen_ago_ms; /* since a session of it last sent anything;
                                  UINT64_MAX: never since gbxd started */
    uint64_t credit_msgs;      /* granted and unused, over its sessions */
    uint64_t credit_bytes;
    uint64_t inflight; /* deliveries not yet acked */
    uint64_t inflight_bytes;
    size_t notices;   /* waiting for a session of it */
    size_t in_memory; /* queued entries in its window */
} gbx_dispatch_agency_t;
void gbx_dispatch_agency(const gbx_dispatch_t *self, const char *agency,
                         gbx_dispatch_agency_t *out);
/*  Jobs given to the writer and not yet back. */
size_t gbx_dispatch_pending(const gbx_dispatch_t *self);

#endif
