/*  gbx_control: the operators' control socket of a node (issues 4 and 6;
    docs/control.md is the reference of every command).

    gbxd binds a ROUTER socket on listen.control (a unix socket, ipc://,
    its file mode 0600) as a CurveZMQ server whose ZAP domain
    (GBX_ZAP_DOMAIN_CONTROL) admits only the operators of the registry:
    every request arrives with the operator's id and role (ZAP User-Id and
    "X-Gbx-Role"), so each command is checked against the role and every
    change is audited with who made it. The module runs on gbxd's loop
    thread; it has no socket of its own (opts.send sends).

    A request is one frame of JSON:
        {"tag": 7, "cmd": "holds.approve", "args": {"id": "<message id>"}}
    and gets one frame of JSON with the same tag:
        {"tag": 7, "ok": true, "data": {...}}
        {"tag": 7, "ok": false, "error": "NOT_AUTHORIZED", "detail": "..."}
    Errors: BAD_REQUEST (not JSON, unknown command, bad arguments),
    NOT_AUTHORIZED (the role may not; a refused command that changes
    something is audited CONTROL_REFUSED by= role= cmd=, at most once per
    operator and command each 10 s, refused= counting), NOT_FOUND (no such held message,
    dead letter or message), ALREADY (drain: already in that state),
    NOT_HELD (decided meanwhile), EXPIRED (past its expiry: the node refuses
    it), POLICY_INVALID (a reload refused, with file:line:col), BUSY, and
    INTERNAL.

    Commands (role needed):
      status          viewer    node, version, uptime, policy, readiness,
                                draining, peers up/down, totals, queues,
                                audit trail, disk
      agencies        viewer    every agency: served here, connected,
                                sessions, last seen, credit, in flight
      queues          viewer    per agency served here: depth, bytes, oldest
                                message's age, in flight, dead letters, rates
      peers           viewer    the other nodes: link up or down
      config.show     viewer    every setting: value and source (default or
                                FILE:LINE)
      messages.show   viewer    {"id"}: the message's records on the audit
                                trail and its state (a query thread scans
                                the trail: the loop never waits for it)
      dlq.list        viewer    {"agency"?, "limit"? (100, <= 1000)}
      dlq.replay      operator  {"id"}: queued again, attempts from 0
      dlq.purge       admin     {"id"}: deleted (its audit records stay)
      drain           operator  {"on": true|false}: stop (or resume) taking
                                new messages (DRAINING); deliveries go on
      policy.show     viewer    version, hash, rules, file
      policy.check    viewer    a header's fields -> the decision, the rule,
                                why, and the counters it would add to (read
                                from the store now); nothing is sent
      policy.reload   operator  reads node.policy again (as SIGHUP)
      holds.list      viewer    the held messages
      holds.approve   approver  {"id": message id hex, "comment"?}
      holds.reject    approver  {"id": message id hex, "comment"} (required)
      audit.status    viewer    the audit trail: records, first kept, latest
                                checkpoint (text, age), chain head
      audit.prune     admin     {"upto": N} deletes the records before N, the
                                size of a checkpoint (export them first:
                                gbx-audit export); or {"keep_ms": T}: up to
                                the newest checkpoint older than T
      audit.cosign    operator  {"checkpoint": text} stores the peer node
                                countersignatures it carries on our own
                                checkpoint of that size, after checking them
                                against the registry
    admin may do everything. Changes reach the store through the writer
    (jobs RELEASE, REFUSE, POLICY): the answer leaves when the change is
    durable. */
#ifndef GBX_CONTROL_H
#define GBX_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "gbx/err.h"
#include "job.h"
#include "metrics.h"
#include "policy.h"
#include "registry.h"
#include "store.h"

typedef struct gbx_control gbx_control_t;

typedef struct {
    const gbx_registry_t *registry; /* borrowed */
    gbx_store_t *store;             /* borrowed: reads only */
    gbx_dispatch_t *dispatch;       /* borrowed: RELEASE and REFUSE go through it */
    const char *node_id;            /* borrowed */
    /* sends one JSON frame to the connection RID; 0 or -1 */
    int (*send)(void *arg, const uint8_t *rid, size_t rid_len, const char *json, size_t len);
    /* the policy in force (borrowed, valid until the next reload's job
       comes back) and its file */
    const gbx_policy_t *(*policy)(void *arg, const char **path);
    /* reloads node.policy for operator BY; the answer is sent when the
       POLICY job comes back (gbx_control_job_done). GBX_OK, or an error
       with ERR (file:line:col) filled */
    gbx_err_t (*reload)(void *arg, const char *by, const uint8_t *rid, size_t rid_len, uint64_t tag,
                        char *err, size_t errlen);
    /* hands an audit trail job (PRUNE, COSIGN) to the writer; GBX_OK, or
       the job is not taken (and is the caller's to free) */
    gbx_err_t (*writer_job)(void *arg, gbx_job_t *job);
    /* hands a finished QUERY job (its answer in job->reply) from a query
       thread to the loop, which calls gbx_control_job_done; GBX_OK, or the
       job is the caller's to free. Any thread. */
    gbx_err_t (*post)(void *arg, gbx_job_t *job);
    void *arg;
    gbx_metrics_t *metrics;     /* borrowed: status, queues; commands counted */
    const gbx_config_t *config; /* borrowed: config.show */
    const char *jurisdiction;   /* borrowed: "HK" or "GD" */
} gbx_control_opts_t;

gbx_err_t gbx_control_new(const gbx_control_opts_t *opts, gbx_control_t **out);
/*  No new query thread starts; waits for those running (each stops within
    4096 records). Before the loop stops taking posted jobs. */
void gbx_control_stop(gbx_control_t *self);
/*  Stops (as gbx_control_stop) and frees. NULL-safe. */
void gbx_control_destroy(gbx_control_t **self_p);

/*  One request: RID (the connection), the operator ID and ROLE (ZAP's
    User-Id and X-Gbx-Role of the message), and the JSON text. Answers it,
    at once or when its job comes back. */
void gbx_control_request(gbx_control_t *self, const uint8_t *rid, size_t rid_len, const char *op_id,
                         const char *role, const uint8_t *body, size_t len);

/*  A job an operator's command made (job->ctl_rid_len > 0) came back from
    the writer: answers the command. Does not free JOB. */
void gbx_control_job_done(gbx_control_t *self, const gbx_job_t *job);

#endif
