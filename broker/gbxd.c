/*  gbxd: the broker daemon's main: config, keys, store, ZAP, the adapter
    ROUTER socket, and the threads of the pipeline. Implements
    proto/spec/5-adapter.md (sections 2 to 9).

    Usage: gbxd [-c CONFIG] [--home DIR] [--init] [--log-level LEVEL] [-v]

    Without -c the config is DIR/gbxd.yaml, DIR being --home, else $GBX_HOME,
    else ./.gbx; a missing file is created with gbx_config_write_default (a
    single-node demo with generated keys and the sample policy). SIGHUP
    reloads node.policy. At start the audit trail records the start and any
    key changed since the last one (broker/keylog.h); at a clean stop the
    writer signs a last checkpoint. Exit codes: 0 after SIGTERM or
    SIGINT, 1 on a run-time failure, 2 on a bad command line, config, key
    file, store or endpoint at start-up.

    Threads (ARCHITECTURE.md, "gbxd inside"):
      loop (this one)   the ROUTER socket, sessions and delivery
                        (broker/dispatch.h); answers Ping; hands each
                        Submit to the verify workers as a job
      verify workers    limits.verify_threads of them (broker/verifier.h):
                        decode, sender, signature, payload hash
      writer            (broker/writer.h) admission's stateful steps and
                        every store write, one write per group; its syncer
                        thread fsyncs
    and back to the loop, which sends the answer only after the fsync that
    covers the group. The loop stops reading the socket while
    S_PIPELINE_MAX jobs (or S_PIPELINE_BYTES) are in the pipeline, so
    memory stays bounded and ZeroMQ's and TCP's buffers push back on
    senders.

    Logs: one logfmt line per event on stderr (broker/log.h), with a
    stable id and a level; docs/logging.md lists every id. Metadata only,
    never a payload byte. Metrics and health: listen.metrics
    (broker/httpd.h, docs/metrics.md). */
#include <errno.h>
#include <stdarg.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "chan.h"
#include "config.h"
#include "dispatch.h"
#include "control.h"
#include "feed.h"
#include "job.h"
#include "httpd.h"
#include "keylog.h"
#include "log.h"
#include "metrics.h"
#include "trail.h"
#include "verifier.h"
#include "writer.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "ingress.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "zap.h"

#define S_CONTROL_MAX (64 * 1024) /* bytes of one control request */
#define S_MAX_PARTS   4096        /* parts of one message beyond the routing id */
#define S_ENVELOPE_OH 4096        /* bytes allowed beyond part 1 and the sealed payload */
#define S_TICK_MS     50

static volatile sig_atomic_t s_stop_sig = 0;
static volatile sig_atomic_t s_reload_sig = 0;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload_sig = 1;
    else
        s_stop_sig = sig;
}

static void s_usage(FILE *f)
{
    fputs("usage: gbxd [-c CONFIG] [--home DIR] [--init] [--log-level LEVEL] [-v]\n"
          "  -c CONFIG          the configuration file (default: DIR/gbxd.yaml, created if\n"
          "                     missing)\n"
          "  --home DIR         the default directory (default: $GBX_HOME, else ./.gbx)\n"
          "  --init             create DIR/gbxd.yaml (a demo node, keys, the sample\n"
          "                     policy) if it is missing, print its path, and exit\n"
          "  --log-level LEVEL  debug, info (default), warn or error\n"
          "  -v                 log every accepted message (--log-level debug)\n",
          f);
}

/*  A start-up failure: one log line (GBX-START-FAILED error="...") with
    the reason; quotes in it become '. */
static void s_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            *c = '\'';
    gbx_log(GBX_LOG_ERROR, "GBX-START-FAILED", "error=\"%s\"", msg);
}

/*  The printable form of an untrusted id for a log line: at most 64 bytes,
    bytes outside 0x21..0x7e as '?'. */
static void s_free_owner(void *data, void *hint)
{
    (void)data;
    free(hint);
}

static const char *s_clean(const char *in, char out[GBX_ID_MAX + 1])
{
    size_t i = 0;
    if (!in)
        in = "-";
    for (; in[i] && i < GBX_ID_MAX; i++)
        out[i] = (in[i] > 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
    return out;
}

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define S_PIPELINE_MAX   4096                 /* jobs between loop and writer */
#define S_PIPELINE_BYTES (256u * 1024 * 1024) /* their received bytes */
#define S_TAKE           256

typedef struct {
    void *sock;
    const gbx_registry_t *reg;
    const char *node_id;
    uint64_t max_bytes; /* total bytes of parts 0..n */
    gbx_chan_t *to_verify, *to_writer, *done;
    gbx_dispatch_t *dispatch;
    int writer_gone;            /* jobs made after the writer stopped are dropped */
    const char *policy_path;    /* node.policy */
    const gbx_policy_t *policy; /* in force (the writer's; read-only here) */
    gbx_policy_t *policy_next;  /* sent to the writer, not yet back */
    void *ctl_sock;             /* the operators' control socket */
    gbx_control_t *control;
    gbx_store_t *store;
    gbx_feed_t *feed;       /* the audit trail's live feed */
    uint64_t checkpoint_ms; /* audit.checkpoint_interval_ms */
    int checkpoint_asked;   /* a CHECKPOINT job is out */
    size_t pipeline;        /* SUBMIT jobs out */
    uint64_t pipeline_bytes;
    uint64_t received, sent, dropped;
    gbx_metrics_t *metrics;
    gbx_ingress_t *ingress; /* the writer's; only its disk-low flag is set here */
    const char *data_dir;
    uint64_t min_free;        /* limits.min_free_disk_bytes */
    int disk_low;             /* below it now */
    uint64_t *oldest_from;    /* per metrics agency slot: the queue's seq to read from */
    uint64_t next_second;     /* monotonic ms */
    uint64_t started_wall_ms; /* the age of a queue entry older than accepted_ms */
} s_daemon_t;

/*  Sends [routing id, "GBX1", part1, payload]. 0, or GBX_DISPATCH_GONE
    (EHOSTUNREACH) or GBX_DISPATCH_BUSY (anything else, errno set). */
static int s_send(s_daemon_t *d, const uint8_t *rid, size_t rid_len, const uint8_t *p1, size_t l1,
                  const uint8_t *payload, size_t plen, void *owner)
{
    int more = plen ? ZMQ_SNDMORE : 0;
    int rc = -1;
    if (zmq_send(d->sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->sock, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_send(d->sock, p1, l1, more | ZMQ_DONTWAIT) < 0)
        goto out;
    if (plen) {
        /* the payload leaves from the store's buffer, no copy: libzmq frees it */
        zmq_msg_t m;
        if (zmq_msg_init_data(&m, (void *)payload, plen, s_free_owner, owner) != 0)
            goto out;
        owner = NULL;
        if (zmq_msg_send(&m, d->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            goto out;
        }
    }
    rc = 0;
    d->sent++;
out:
    if (rc != 0)
        rc = errno == EHOSTUNREACH ? GBX_DISPATCH_GONE : GBX_DISPATCH_BUSY;
    free(owner);
    return rc;
}

static int s_dispatch_send(void *arg, const uint8_t *rid, size_t rid_len, const uint8_t *p1,
                           size_t l1, const uint8_t *payload, size_t plen, void *owner)
{
    return s_send(arg, rid, rid_len, p1, l1, payload, plen, owner);
}

static void s_dispatch_job(void *arg, gbx_job_t *job)
{
    s_daemon_t *d = arg;
    if (d->writer_gone || gbx_chan_push(d->to_writer, job) != GBX_OK)
        /* shutting down (or out of memory): the store still has the
           message in its last durable state, so nothing is lost */
        gbx_dispatch_drop(d->dispatch, job);
}

static void s_dispatch_log(void *arg, const char *line)
{
    (void)arg;
    static const char *const warn[] = {"GBX-ACK-TIMEOUT", "GBX-DEAD-LETTERED", "GBX-EXPIRED",
                                       "GBX-HOLD-TIMEOUT"};
    gbx_log_level_t level =
        strncmp(line, "GBX-DELIVER-FAILED", 18) == 0 ? GBX_LOG_ERROR : GBX_LOG_INFO;
    for (size_t i = 0; i < sizeof warn / sizeof warn[0]; i++)
        if (strncmp(line, warn[i], strlen(warn[i])) == 0)
            level = GBX_LOG_WARN;
    gbx_log_line(level, line);
}

/*  Answers a message gbxd refuses before the pipeline sees it. */
static void s_refuse(s_daemon_t *d, zmq_msg_t *rid, gbx_err_t reason, const char *from)
{
    char c[GBX_ID_MAX + 1];
    gbx_metrics_rejected(d->metrics, reason);
    gbx_log(GBX_LOG_WARN, "GBX-REJECT", "reason=%s from=%s", gbx_err_name(reason),
            s_clean(from, c));
    uint8_t *reply = NULL;
    size_t len = 0;
    if (gbx_frame_rejected(0, NULL, 0, reason, NULL, 0, &reply, &len) == GBX_OK &&
        s_send(d, zmq_msg_data(rid), zmq_msg_size(rid), reply, len, NULL, 0, NULL) != 0)
        gbx_log(GBX_LOG_WARN, "GBX-DROP", "reason=\"%s\" from=%s", zmq_strerror(errno),
                s_clean(from, c));
    free(reply);
}

/*  Receives one whole message (if any) and routes it. 0 when a message was
    handled, 1 when none was waiting, -1 on a socket failure. */
static int s_handle_one(s_daemon_t *d)
{
    size_t cap = 8, n = 0; /* messages initialised in m[] */
    zmq_msg_t *m = malloc(cap * sizeof *m);
    if (!m)
        return -1;
    size_t total = 0;
    int too_many = 0, too_big = 0, rc = 0;
    int more = 1;
    gbx_job_t *job = NULL;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *cur = &scratch;
        if (n < S_MAX_PARTS + 1) {
            if (n == cap) {
                zmq_msg_t *nm = realloc(m, 2 * cap * sizeof *m);
                if (!nm) {
                    rc = -1;
                    goto out;
                }
                m = nm;
                cap *= 2;
            }
            cur = &m[n];
        }
        zmq_msg_init(cur);
        if (zmq_msg_recv(cur, d->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(cur);
            if (n == 0 && (e == EAGAIN || e == EINTR)) {
                rc = 1;
                goto out;
            }
            if (e == EINTR && n > 0) /* the rest of a multipart is already here */
                continue;
            rc = -1;
            goto out;
        }
        more = zmq_msg_more(cur);
        if (n > 0)
            total += zmq_msg_size(cur);
        if (total > d->max_bytes)
            too_big = 1;
        if (cur == &scratch) {
            too_many = 1;
            zmq_msg_close(cur);
        } else {
            n++;
        }
    }
    d->received++;
    if (n < 2 || zmq_msg_size(&m[0]) > GBX_JOB_RID_MAX) /* a routing id alone */
        goto out;

    const char *auth = zmq_msg_gets(&m[1], "User-Id");
    const char *role = zmq_msg_gets(&m[1], GBX_ZAP_ROLE_PROPERTY);
    const gbx_agency_t *ag = auth ? gbx_registry_agency(d->reg, auth) : NULL;
    if (!ag || !role || strcmp(role, "agency") != 0 || strcmp(ag->node, d->node_id) != 0) {
        /* ZAP admitted the key but this node does not serve that agency */
        s_refuse(d, &m[0], GBX_E_UNKNOWN_AGENCY, auth);
        goto out;
    }
    const uint8_t *rid = zmq_msg_data(&m[0]);
    size_t rid_len = zmq_msg_size(&m[0]);
    gbx_dispatch_seen(d->dispatch, rid, rid_len, auth);
    if (too_many) {
        s_refuse(d, &m[0], GBX_E_MALFORMED, auth);
        goto out;
    }
    if (too_big) {
        s_refuse(d, &m[0], GBX_E_PAYLOAD_TOO_LARGE, auth);
        goto out;
    }
    if (n == 3) {
        /* no payload parts: maybe a session frame (Credit, Ack, Ping, Pong) */
        gbx_part_t parts[2] = {{zmq_msg_data(&m[1]), zmq_msg_size(&m[1])},
                               {zmq_msg_data(&m[2]), zmq_msg_size(&m[2])}};
        gbx_frame_t *f = NULL;
        if (gbx_frame_decode_at(parts, 2, GBX_FRAME_AT_NODE, &f, NULL) == GBX_OK &&
            gbx_frame_kind(f) != GBX_FRAME_SUBMIT) {
            gbx_dispatch_frame(d->dispatch, rid, rid_len, auth, f);
            gbx_frame_destroy(&f);
            goto out;
        }
        gbx_frame_destroy(&f);
    }
    /* a Submit, or something the checker will answer with its reason */
    job = gbx_job_new(GBX_JOB_SUBMIT);
    if (!job) {
        s_refuse(d, &m[0], GBX_E_INTERNAL_ERROR, auth);
        goto out;
    }
    memcpy(job->rid, rid, rid_len);
    job->rid_len = rid_len;
    snprintf(job->sub.auth, sizeof job->sub.auth, "%s", auth);
    /* the job takes parts 1..n; part 0 (the routing id) was copied */
    zmq_msg_close(&m[0]);
    memmove(&m[0], &m[1], (n - 1) * sizeof *m);
    job->msgs = m;
    job->nmsgs = n - 1;
    m = NULL;
    n = 0;
    job->wire_bytes = total;
    job->received_ns = s_mono_ns();
    if (gbx_chan_push(d->to_verify, job) != GBX_OK) {
        gbx_job_free(job);
        rc = -1;
        goto out;
    }
    d->pipeline++;
    d->pipeline_bytes += total;
    gbx_metrics_set(d->metrics, GBX_MG_PIPELINE, d->pipeline);
out:
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&m[i]);
    free(m);
    return rc;
}

/*  A job's effect on the metrics, once it is durable. */
static void s_count_job(s_daemon_t *d, const gbx_job_t *job)
{
    gbx_metrics_t *m = d->metrics;
    int ok = job->rc == GBX_OK && job->commit == GBX_OK;
    int slot = gbx_metrics_agency(m, job->dest);
    if (!ok)
        return;
    switch (job->kind) {
    case GBX_JOB_ACK:
        if (job->entry.accepted_ms) {
            uint64_t now = s_wall_ms();
            gbx_metrics_observe(
                m, GBX_MH_DELIVERY,
                now > job->entry.accepted_ms ? (now - job->entry.accepted_ms) * 1000000u : 0);
        }
        gbx_metrics_agency_add(m, slot, GBX_MA_OUT, 1);
        break;
    case GBX_JOB_EXPIRE:
    case GBX_JOB_REFUSE:
        gbx_metrics_agency_add(m, slot, GBX_MA_OUT, 1);
        break;
    case GBX_JOB_DEADLETTER:
        gbx_metrics_agency_add(m, slot, GBX_MA_OUT, 1);
        gbx_metrics_agency_add(m, slot, GBX_MA_DLQ, 1);
        break;
    case GBX_JOB_REPLAY:
        gbx_metrics_agency_add(m, slot, GBX_MA_DLQ, -1);
        gbx_metrics_agency_add(m, slot, GBX_MA_IN, 1);
        gbx_metrics_count(m, GBX_MC_REPLAYED, 1);
        if (slot >= 0)
            d->oldest_from[slot] = 0; /* an older message is back */
        break;
    case GBX_JOB_PURGE:
        gbx_metrics_agency_add(m, slot, GBX_MA_DLQ, -1);
        gbx_metrics_count(m, GBX_MC_PURGED, 1);
        break;
    case GBX_JOB_RELEASE:
        if (slot >= 0)
            d->oldest_from[slot] = 0;
        break;
    default:
        break;
    }
}

/*  A SUBMIT's answer is durable: counts it. */
static void s_count_submit(s_daemon_t *d, const gbx_job_t *job)
{
    const gbx_ingress_result_t *r = &job->sub.result;
    gbx_metrics_t *m = d->metrics;
    if (job->received_ns)
        gbx_metrics_observe(m, GBX_MH_ACCEPT, s_mono_ns() - job->received_ns);
    if (r->reason != GBX_OK) {
        gbx_metrics_rejected(m, r->reason);
        return;
    }
    if (r->duplicate) {
        gbx_metrics_count(m, GBX_MC_DUPLICATE, 1);
        return;
    }
    const gbx_agency_t *from = gbx_registry_agency(d->reg, job->sub.auth);
    const gbx_agency_t *to = gbx_registry_agency(d->reg, r->dest);
    gbx_direction_t dir = gbx_metrics_direction(from && from->jurisdiction == GBX_JUR_GD,
                                                to && to->jurisdiction == GBX_JUR_GD);
    gbx_metrics_accepted(m, r->data_class, dir, r->held);
    gbx_metrics_agency_add(m, gbx_metrics_agency(m, r->dest), GBX_MA_IN, 1);
}

/*  The policy in force, for the metrics. */
static void s_policy_metrics(s_daemon_t *d)
{
    char hash[2 * GBX_HASH_BYTES + 1] = "";
    if (d->policy)
        sodium_bin2hex(hash, sizeof hash, gbx_policy_hash(d->policy), GBX_HASH_BYTES);
    gbx_metrics_policy(d->metrics, d->policy ? gbx_policy_version(d->policy) : "none", hash,
                       d->policy ? gbx_policy_rule_count(d->policy) : 0);
}

/*  Answers and acts on the jobs the writer finished. */
static void s_done(s_daemon_t *d)
{
    void *items[S_TAKE];
    size_t n = gbx_chan_take(d->done, items, S_TAKE, 0);
    for (size_t i = 0; i < n; i++) {
        gbx_job_t *job = items[i];
        char c1[GBX_ID_MAX + 1], c2[GBX_ID_MAX + 1];
        if (job->kind == GBX_JOB_POLICY) {
            /* follow what the writer holds: job->policy is now the one it
               let go (or the new one, never taken), freed with the job */
            if (job->swapped) {
                d->policy = d->policy_next;
                s_policy_metrics(d);
            }
            if (job->rc == GBX_OK && job->commit == GBX_OK)
                gbx_log(GBX_LOG_INFO, "GBX-POLICY-LOADED", "by=%s", s_clean(job->by, c1));
            else
                gbx_log(GBX_LOG_ERROR, "GBX-POLICY-FAILED", "by=%s reason=%s swapped=%d",
                        s_clean(job->by, c1),
                        gbx_err_name(job->rc != GBX_OK ? job->rc : job->commit), job->swapped);
            d->policy_next = NULL;
            gbx_control_job_done(d->control, job);
            gbx_job_free(job); /* with the policy it replaced */
            continue;
        }
        if (job->kind == GBX_JOB_CHECKPOINT || job->kind == GBX_JOB_PRUNE ||
            job->kind == GBX_JOB_COSIGN) { /* the audit trail's */
            if (job->kind == GBX_JOB_CHECKPOINT)
                d->checkpoint_asked = 0;
            else
                gbx_log(job->rc == GBX_OK && job->commit == GBX_OK ? GBX_LOG_INFO : GBX_LOG_WARN,
                        job->kind == GBX_JOB_PRUNE ? "GBX-AUDIT-PRUNE" : "GBX-AUDIT-COSIGN",
                        "by=%s rc=%s commit=%s upto=%llu deleted=%llu", s_clean(job->by, c1),
                        gbx_err_name(job->rc), gbx_err_name(job->commit),
                        (unsigned long long)job->seq, (unsigned long long)job->count);
            gbx_control_job_done(d->control, job);
            gbx_job_free(job);
            continue;
        }
        if (job->kind == GBX_JOB_DRAIN) {
            if (job->rc == GBX_OK && job->commit == GBX_OK) {
                gbx_metrics_draining(d->metrics, job->seq != 0, job->by, s_wall_ms());
                gbx_log(GBX_LOG_WARN, job->seq ? "GBX-DRAINING" : "GBX-RESUMED", "by=%s",
                        s_clean(job->by, c1));
            }
            gbx_control_job_done(d->control, job);
            gbx_job_free(job);
            continue;
        }
        if (job->kind == GBX_JOB_QUERY || job->kind == GBX_JOB_DENIED) {
            gbx_control_job_done(d->control, job); /* a DENIED one has no answer */
            gbx_job_free(job);
            continue;
        }
        if (job->kind != GBX_JOB_SUBMIT) {
            s_count_job(d, job);
            gbx_control_job_done(d->control, job); /* an operator's, if any */
            gbx_dispatch_done(d->dispatch, job);
            continue;
        }
        d->pipeline--;
        d->pipeline_bytes -= job->wire_bytes;
        gbx_metrics_set(d->metrics, GBX_MG_PIPELINE, d->pipeline);
        const gbx_ingress_result_t *r = &job->sub.result;
        if (r->reason != GBX_OK)
            gbx_log(GBX_LOG_WARN, "GBX-REJECT", "reason=%s from=%s", gbx_err_name(r->reason),
                    s_clean(job->sub.auth, c1));
        else if (gbx_log_enabled(GBX_LOG_DEBUG))
            gbx_log(GBX_LOG_DEBUG, "GBX-ACCEPT", "seq=%llu duplicate=%d held=%d from=%s to=%s",
                    (unsigned long long)r->seq, r->duplicate, r->held, s_clean(job->sub.auth, c1),
                    s_clean(r->dest, c2));
        if (job->reply &&
            s_send(d, job->rid, job->rid_len, job->reply, job->reply_len, NULL, 0, NULL) != 0) {
            d->dropped++;
            gbx_log(GBX_LOG_WARN, "GBX-DROP", "reason=\"%s\" from=%s", zmq_strerror(errno),
                    s_clean(job->sub.auth, c1));
        }
        s_count_submit(d, job);
        gbx_dispatch_accepted(d->dispatch, job);
        gbx_job_free(job);
    }
}

/*  Frees the jobs left in CH (shutdown after a failure). */
static void s_free_jobs(gbx_chan_t *ch)
{
    void *items[S_TAKE];
    size_t n;
    while (ch && (n = gbx_chan_take(ch, items, S_TAKE, 0)) > 0)
        for (size_t i = 0; i < n; i++)
            gbx_job_free(items[i]);
}

/*  GBX-STATS: where the time went (issue 3, deliverable 5). */
static void s_report(gbx_writer_t *w, gbx_dispatch_t *disp, gbx_ingress_t *ing, const s_daemon_t *d,
                     uint64_t batch_roots, uint64_t batch_hits)
{
    gbx_writer_stats_t ws;
    gbx_ingress_stats_t is;
    gbx_dispatch_stats_t ds;
    gbx_writer_stats(w, &ws);
    gbx_ingress_stats(ing, &is);
    gbx_dispatch_stats(disp, &ds);
    gbx_log(GBX_LOG_INFO, "GBX-STATS",
            "received=%llu sent=%llu dropped=%llu accepted=%llu duplicates=%llu "
            "rejected=%llu batch_roots_verified=%llu batch_cache_hits=%llu groups=%llu "
            "jobs=%llu max_group=%llu failed_groups=%llu apply_ms=%llu seal_ms=%llu "
            "commit_ms=%llu syncs=%llu sync_ms=%llu delivered=%llu redelivered=%llu "
            "acked=%llu expired=%llu dead_lettered=%llu sessions=%llu",
            (unsigned long long)d->received, (unsigned long long)d->sent,
            (unsigned long long)d->dropped, (unsigned long long)is.accepted,
            (unsigned long long)is.duplicates, (unsigned long long)is.rejected,
            (unsigned long long)batch_roots, (unsigned long long)batch_hits,
            (unsigned long long)ws.groups, (unsigned long long)ws.jobs,
            (unsigned long long)ws.max_group, (unsigned long long)ws.failed,
            (unsigned long long)(ws.apply_ns / 1000000u),
            (unsigned long long)(ws.seal_ns / 1000000u),
            (unsigned long long)(ws.commit_ns / 1000000u), (unsigned long long)ws.syncs,
            (unsigned long long)(ws.sync_ns / 1000000u), (unsigned long long)ds.delivered,
            (unsigned long long)ds.redelivered, (unsigned long long)ds.acked,
            (unsigned long long)ds.expired, (unsigned long long)ds.dead_lettered,
            (unsigned long long)ds.sessions_opened);
}

/*  The store's error lines, as log lines. */
static void s_store_log(void *arg, const char *line)
{
    (void)arg;
    char q[512];
    gbx_log(GBX_LOG_ERROR, "GBX-STORE-ERROR", "detail=\"%s\"", gbx_log_quoted(line, q, sizeof q));
}

/*  The config path: -c, or HOME/gbxd.yaml created when missing. Malloc'ed. */
static char *s_config_path(const char *cfg, const char *home)
{
    if (cfg)
        return strdup(cfg);
    if (!home)
        home = getenv("GBX_HOME");
    if (!home || !*home)
        home = "./.gbx";
    char *path = NULL;
    if (asprintf(&path, "%s/gbxd.yaml", home) < 0)
        return NULL;
    struct stat st;
    if (stat(path, &st) == 0)
        return path;
    free(path);
    path = NULL;
    gbx_err_t rc = gbx_config_write_default(home, &path);
    if (rc != GBX_OK) {
        s_fatal("cannot create a default configuration in %s: %s", home, gbx_err_name(rc));
        return NULL;
    }
    gbx_log(GBX_LOG_INFO, "GBX-CONFIG-CREATED", "path=%s", path);
    return path;
}

/*  Loads node.policy again and hands it to the writer, which decides with
    it from its next message on (broker/job.h, GBX_JOB_POLICY). An invalid
    file is refused with its place and the policy in force stays. BY: who
    asked; RID, TAG: the operator's command that waits for the switch
    (RID_LEN 0: a signal). One reload at a time. GBX_OK, or the error with
    ERR filled. */
static gbx_err_t s_reload(s_daemon_t *d, const char *by, const uint8_t *rid, size_t rid_len,
                          uint64_t tag, char *err, size_t errlen)
{
    char q[512];
    err[0] = '\0';
    if (d->policy_next || d->writer_gone) {
        snprintf(err, errlen, "a reload is already under way");
        gbx_log(GBX_LOG_WARN, "GBX-POLICY-REJECTED", "by=%s error=\"%s\" kept=current", by,
                gbx_log_quoted(err, q, sizeof q));
        return GBX_E_STATE;
    }
    gbx_policy_t *p = NULL;
    gbx_err_t rc = gbx_policy_load(d->policy_path, d->reg, &p, err, errlen);
    if (rc != GBX_OK) {
        if (!err[0])
            snprintf(err, errlen, "%s", gbx_err_name(rc));
        gbx_log(GBX_LOG_WARN, "GBX-POLICY-REJECTED", "by=%s error=\"%s\" kept=current", by,
                gbx_log_quoted(err, q, sizeof q));
        return rc;
    }
    char hash[2 * GBX_HASH_BYTES + 1];
    sodium_bin2hex(hash, sizeof hash, gbx_policy_hash(p), GBX_HASH_BYTES);
    gbx_job_t *job = gbx_job_new(GBX_JOB_POLICY);
    if (!job || rid_len > sizeof job->ctl_rid) {
        gbx_job_free(job);
        gbx_policy_destroy(&p);
        snprintf(err, errlen, "out of memory");
        return GBX_E_NOMEM;
    }
    gbx_log(GBX_LOG_INFO, "GBX-POLICY-READ", "by=%s version=\"%s\" hash=%s rules=%zu", by,
            gbx_log_quoted(gbx_policy_version(p), q, sizeof q), hash, gbx_policy_rule_count(p));
    job->policy = p;
    snprintf(job->by, sizeof job->by, "%s", by);
    if (rid_len) /* an operator's command waits for it (a signal: none) */
        memcpy(job->ctl_rid, rid, rid_len);
    job->ctl_rid_len = rid_len;
    job->ctl_tag = tag;
    if (gbx_chan_push(d->to_writer, job) != GBX_OK) {
        gbx_job_free(job);
        snprintf(err, errlen, "cannot hand it to the writer");
        return GBX_E_NOMEM;
    }
    d->policy_next = p; /* owned by the job, then by the writer */
    return GBX_OK;
}

/* ------------------------------------------------------- control socket */

/*  1 if something accepts connections on the unix socket PATH. */
static int s_unix_socket_live(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return live;
}

static int s_ctl_send(void *arg, const uint8_t *rid, size_t rid_len, const char *json, size_t len)
{
    s_daemon_t *d = arg;
    if (zmq_send(d->ctl_sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->ctl_sock, json, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static const gbx_policy_t *s_ctl_policy(void *arg, const char **path)
{
    s_daemon_t *d = arg;
    *path = d->policy_path;
    return d->policy;
}

static gbx_err_t s_ctl_reload(void *arg, const char *by, const uint8_t *rid, size_t rid_len,
                              uint64_t tag, char *err, size_t errlen)
{
    return s_reload(arg, by, rid, rid_len, tag, err, errlen);
}

/*  Hands an operator's audit trail job (PRUNE, COSIGN) to the writer. */
static gbx_err_t s_ctl_writer_job(void *arg, gbx_job_t *job)
{
    s_daemon_t *d = arg;
    if (d->writer_gone)
        return GBX_E_STATE;
    return gbx_chan_push(d->to_writer, job);
}

/*  Asks the writer for a checkpoint when a record has waited
    audit.checkpoint_interval_ms for one (the writer signs one by itself
    every audit.checkpoint_records records). */
static void s_checkpoint_tick(s_daemon_t *d, uint64_t wall_ms)
{
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(d->store), &h);
    if (d->checkpoint_asked || d->writer_gone || h.size == h.checkpoint ||
        wall_ms < h.checkpoint_ms + d->checkpoint_ms)
        return;
    gbx_job_t *job = gbx_job_new(GBX_JOB_CHECKPOINT);
    if (job && gbx_chan_push(d->to_writer, job) == GBX_OK)
        d->checkpoint_asked = 1;
    else
        gbx_job_free(job);
}

/*  Reads and answers the control socket's waiting requests ([routing id,
    JSON]); at most 64 per call. */
static void s_ctl_read(s_daemon_t *d)
{
    for (int k = 0; k < 64; k++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&rid, d->ctl_sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            return;
        }
        int ok = zmq_msg_more(&rid) && zmq_msg_recv(&body, d->ctl_sock, 0) >= 0 &&
                 !zmq_msg_more(&body) && zmq_msg_size(&rid) <= GBX_JOB_RID_MAX;
        while (zmq_msg_more(&body) || (!ok && zmq_msg_more(&rid))) { /* drop the rest */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            int more = zmq_msg_recv(&extra, d->ctl_sock, 0) >= 0 && zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            if (!more)
                break;
        }
        if (ok) {
            const char *op = zmq_msg_gets(&body, "User-Id");
            const char *role = zmq_msg_gets(&body, GBX_ZAP_ROLE_PROPERTY);
            gbx_control_request(d->control, zmq_msg_data(&rid), zmq_msg_size(&rid), op, role,
                                zmq_msg_data(&body), zmq_msg_size(&body));
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
    }
}

/*  A query thread's finished job, to the loop (control.h, opts.post). */
static gbx_err_t s_ctl_post(void *arg, gbx_job_t *job)
{
    s_daemon_t *d = arg;
    return gbx_chan_push(d->done, job);
}

/*  The accepted time of the oldest entry in DEST's queue (0: empty),
    reading from *FROM (a sequence below which the queue is known empty;
    moved to the oldest found). */
static uint64_t s_oldest(gbx_store_t *store, const char *dest, uint64_t *from, uint64_t unknown)
{
    size_t dl = strlen(dest);
    uint8_t prefix[GBX_ID_MAX + 1], key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    memcpy(prefix, dest, dl);
    prefix[dl] = 0;
    gbx_store_iter_t *it = NULL;
    uint64_t at = 0;
    /* read before the snapshot: every sequence below it is in the snapshot
       (read after, an entry made durable meanwhile could be skipped) */
    uint64_t durable = gbx_store_durable_next(store);
    if (gbx_store_queue_key(dest, *from, key, sizeof key, &klen) != GBX_OK ||
        gbx_store_iter_from(store, GBX_KS_QUEUES, prefix, dl + 1, key, klen, &it) != GBX_OK)
        return 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        gbx_qentry_t e;
        if (kl != dl + 1 + GBX_STORE_SEQ_KEY_BYTES || gbx_qentry_decode(v, vl, &e) != GBX_OK)
            continue;
        *from = gbx_store_seq_from_key(k + dl + 1);
        at = e.accepted_ms ? e.accepted_ms : unknown; /* written before accepted_ms */
        break;
    }
    gbx_err_t err = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    if (!at && err == GBX_OK) /* empty: what comes next is new (or a release or
                                 replay, which moves *from back) */
        *from = durable;
    return at;
}

/*  Once a second: the metrics only the loop can see (disk, oldest
    messages, sessions, the audit trail, delivery counters), and the
    disk-space guard. (The pipeline gauge follows each change.) */
static void s_second(s_daemon_t *d, uint64_t mono_ms)
{
    gbx_metrics_t *m = d->metrics;
    struct statvfs vfs;
    if (statvfs(d->data_dir, &vfs) == 0) {
        uint64_t free_b = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        gbx_metrics_set(m, GBX_MG_DISK_FREE, free_b);
        /* low below the minimum; well again a tenth (at least 1 MiB) above it,
           so that a disk at the edge does not flap */
        uint64_t margin = d->min_free / 10 > 1048576 ? d->min_free / 10 : 1048576;
        int low = d->disk_low ? free_b < d->min_free + margin : free_b < d->min_free;
        if (low != d->disk_low) {
            d->disk_low = low;
            gbx_metrics_set(m, GBX_MG_DISK_LOW, (uint64_t)low);
            gbx_ingress_set_disk_low(d->ingress, low);
            if (low)
                gbx_log(GBX_LOG_ERROR, "GBX-DISK-LOW",
                        "free_bytes=%llu min_free_bytes=%llu action=refuse-new-messages",
                        (unsigned long long)free_b, (unsigned long long)d->min_free);
            else
                gbx_log(GBX_LOG_INFO, "GBX-DISK-OK", "free_bytes=%llu min_free_bytes=%llu",
                        (unsigned long long)free_b, (unsigned long long)d->min_free);
        }
    }
    for (size_t i = 0; i < gbx_metrics_agency_count(m); i++) {
        const char *id = gbx_metrics_agency_id(m, i);
        gbx_metrics_agency_set(m, (int)i, GBX_MA_OLDEST_MS,
                               s_oldest(d->store, id, &d->oldest_from[i], d->started_wall_ms));
        gbx_dispatch_agency_t da;
        gbx_dispatch_agency(d->dispatch, id, &da);
        gbx_metrics_agency_set(m, (int)i, GBX_MA_SESSIONS, da.sessions);
        gbx_metrics_agency_set(m, (int)i, GBX_MA_INFLIGHT, da.inflight);
    }
    gbx_dispatch_stats_t ds;
    gbx_dispatch_stats(d->dispatch, &ds);
    gbx_metrics_count_set(m, GBX_MC_DELIVERED, ds.delivered);
    gbx_metrics_count_set(m, GBX_MC_REDELIVERED, ds.redelivered);
    gbx_metrics_count_set(m, GBX_MC_ACKED, ds.acked);
    gbx_metrics_count_set(m, GBX_MC_EXPIRED, ds.expired);
    gbx_metrics_count_set(m, GBX_MC_DEAD_LETTERED, ds.dead_lettered);
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(d->store), &h);
    gbx_metrics_set(m, GBX_MG_AUDIT_RECORDS, h.size);
    gbx_metrics_set(m, GBX_MG_AUDIT_UNSIGNED, h.size - h.checkpoint);
    gbx_metrics_set(m, GBX_MG_CHECKPOINT_MS, h.checkpoint ? h.checkpoint_ms : 0);
    gbx_metrics_tick(m, mono_ms);
}

/*  The metrics of node NODE_ID: the agencies it serves, the other nodes as
    peers, the dead letters counted once from the store. */
static gbx_err_t s_metrics_new(const gbx_config_t *cfg, const char *node_id, gbx_store_t *store,
                               gbx_metrics_t **out)
{
    const gbx_registry_t *reg = gbx_config_registry(cfg);
    size_t na = gbx_registry_agency_count(reg), nn = gbx_registry_node_count(reg);
    const char **agencies = calloc(na + 1, sizeof *agencies);
    const char **peers = calloc(nn + 1, sizeof *peers);
    gbx_err_t rc = GBX_E_NOMEM;
    if (!agencies || !peers)
        goto out;
    size_t a = 0, p = 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(gbx_registry_agency_at(reg, i)->node, node_id) == 0)
            agencies[a++] = gbx_registry_agency_at(reg, i)->id;
    for (size_t i = 0; i < nn; i++)
        if (strcmp(gbx_registry_node_at(reg, i)->id, node_id) != 0)
            peers[p++] = gbx_registry_node_at(reg, i)->id;
    gbx_metrics_opts_t mo = {
        .node_id = node_id,
        .jurisdiction = gbx_jurisdiction_name(gbx_config_jurisdiction(cfg)),
        .version = GBX_VERSION,
        .agencies = agencies,
        .nagencies = a,
        .peers = peers,
        .npeers = p,
        .start_wall_ms = s_wall_ms(),
    };
    rc = gbx_metrics_new(&mo, out);
    if (rc != GBX_OK)
        goto out;
    gbx_store_iter_t *it = NULL;
    rc = gbx_store_iter_new(store, GBX_KS_DLQ, NULL, 0, &it);
    for (; rc == GBX_OK && gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t kl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *zero = memchr(k, 0, kl);
        char dest[GBX_ID_MAX + 1];
        if (!zero || (size_t)(zero - k) > GBX_ID_MAX)
            continue;
        memcpy(dest, k, (size_t)(zero - k));
        dest[zero - k] = 0;
        gbx_metrics_agency_add(*out, gbx_metrics_agency(*out, dest), GBX_MA_DLQ, 1);
    }
    if (rc == GBX_OK)
        rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    if (rc != GBX_OK)
        gbx_metrics_destroy(out);
out:
    free(agencies);
    free(peers);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cfg_arg = NULL, *home_arg = NULL;
    int init_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            cfg_arg = argv[++i];
        } else if (strcmp(argv[i], "-v") == 0) {
            gbx_log_set_level(GBX_LOG_DEBUG);
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            gbx_log_level_t lvl;
            if (gbx_log_level_parse(argv[++i], &lvl) != 0) {
                fprintf(stderr, "gbxd: --log-level: debug, info, warn or error\n");
                return 2;
            }
            gbx_log_set_level(lvl);
        } else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            home_arg = argv[++i];
        } else if (strcmp(argv[i], "--init") == 0) {
            init_only = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return 2;
        }
    }

    int code = 2;
    char *path = NULL;
    gbx_config_t *cfg = NULL;
    gbx_identity_t *node = NULL;
    gbx_store_t *store = NULL;
    gbx_ingress_t *ing = NULL;
    gbx_policy_t *policy = NULL;
    void *ctx = NULL, *sock = NULL, *ctl_sock = NULL;
    gbx_control_t *control = NULL;
    gbx_feed_t *feed = NULL;
    gbx_zap_t *zap = NULL;
    gbx_chan_t *to_verify = NULL, *to_writer = NULL, *done = NULL;
    gbx_dispatch_t *dispatch = NULL;
    gbx_verifier_t *verifier = NULL;
    gbx_writer_t *writer = NULL;
    gbx_metrics_t *metrics = NULL;
    gbx_httpd_t *httpd = NULL;
    uint64_t *oldest_from = NULL;
    char errbuf[512];
    gbx_err_t rc;

    /* glibc gives each thread that allocates its own arena and keeps freed
       memory there; two arenas hold the same data with far less left over
       (gbxd's memory is meant not to grow with the queue) */
    mallopt(M_ARENA_MAX, 2);
    if (sodium_init() < 0) {
        s_fatal("libsodium failed to initialise");
        goto out;
    }
    path = s_config_path(cfg_arg, home_arg);
    if (!path)
        goto out;
    struct stat init_st;
    if (init_only && stat(path, &init_st) != 0) { /* -c names a file --init does not make */
        s_fatal("%s: no such file: --init writes DIR/gbxd.yaml (--home DIR), not -c", path);
        goto out;
    }
    if (init_only) { /* the configuration exists now: that was all */
        printf("%s\n", path);
        code = 0;
        goto out;
    }
    errbuf[0] = '\0';
    rc = gbx_config_load(path, &cfg, errbuf, sizeof errbuf);
    if (rc != GBX_OK) {
        s_fatal("%s", errbuf[0] ? errbuf : gbx_err_name(rc));
        goto out;
    }
    const char *node_id = gbx_config_str(cfg, GBX_SETTING_NODE_ID);
    const char *keys = gbx_config_str(cfg, GBX_SETTING_NODE_KEYS);
    const char *data_dir = gbx_config_str(cfg, GBX_SETTING_NODE_DATA_DIR);
    const char *endpoint = gbx_config_str(cfg, GBX_SETTING_LISTEN_ADAPTER);
    const gbx_registry_t *reg = gbx_config_registry(cfg);

    rc = gbx_identity_load(keys, &node);
    if (rc != GBX_OK) {
        s_fatal("%s: node.keys: %s", keys, gbx_err_name(rc));
        goto out;
    }
    const gbx_node_t *self_node = gbx_registry_node(reg, node_id);
    const gbx_pubid_t *pub = gbx_identity_public(node);
    if (strcmp(pub->id, node_id) != 0 || !self_node ||
        sodium_memcmp(self_node->pub.sign_pk, pub->sign_pk, GBX_KEY_BYTES) != 0 ||
        sodium_memcmp(self_node->pub.curve_pk, pub->curve_pk, GBX_KEY_BYTES) != 0) {
        s_fatal("%s: node.keys: not the keys of node %s in the registry", keys, node_id);
        goto out;
    }

    const char *policy_path = gbx_config_str(cfg, GBX_SETTING_NODE_POLICY);
    rc = gbx_policy_load(policy_path, reg, &policy, errbuf, sizeof errbuf);
    if (rc != GBX_OK) {
        s_fatal("node.policy: %s", errbuf[0] ? errbuf : gbx_err_name(rc));
        goto out;
    }

    gbx_store_opts_t so;
    gbx_store_opts_init(&so);
    so.log = s_store_log;
    rc = gbx_store_open(data_dir, &so, &store);
    if (rc != GBX_OK) {
        s_fatal("%s: node.data_dir: cannot open the store: %s", data_dir, gbx_err_name(rc));
        goto out;
    }

    /* the audit trail signs its checkpoints with the node's key; the start
       and any key changed since the last one go on the trail first */
    rc = gbx_trail_set_signer(gbx_store_trail(store), node_id, gbx_identity_sign_sk(node),
                              (uint64_t)gbx_config_int(cfg, GBX_SETTING_AUDIT_CHECKPOINT_RECORDS),
                              NULL, NULL);
    unsigned key_changes = 0;
    if (rc == GBX_OK)
        rc = gbx_keylog_start(store, reg,
                              &(gbx_keylog_start_t){.node_id = node_id,
                                                    .version = GBX_VERSION,
                                                    .config = path,
                                                    .policy = policy,
                                                    .at_ms = s_wall_ms()},
                              &key_changes);
    if (rc != GBX_OK) {
        s_fatal("%s: node.data_dir: cannot write the audit trail: %s", data_dir, gbx_err_name(rc));
        goto out;
    }

    gbx_ingress_opts_t io;
    gbx_ingress_opts_init(&io);
    io.store = store;
    io.registry = reg;
    io.node = node;
    io.node_id = node_id;
    io.max_payload_bytes = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_PAYLOAD_BYTES);
    io.max_ttl_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_TTL_MS);
    io.clock_skew_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_CLOCK_SKEW_MS);
    io.queue_max_messages = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_QUEUE_MAX_MESSAGES);
    io.queue_max_bytes = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_QUEUE_MAX_BYTES);
    io.dedupe_window_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_DEDUPE_WINDOW_MS);
    io.policy = policy; /* the ingress borrows it; swapped on reload */
    io.hold_timeout_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_HOLD_TIMEOUT_MS);
    rc = gbx_ingress_new(&io, &ing);
    if (rc != GBX_OK) {
        s_fatal("ingress: %s", gbx_err_name(rc));
        goto out;
    }

    /* what the node counts: per agency it serves, per peer node */
    rc = s_metrics_new(cfg, node_id, store, &metrics);
    if (rc != GBX_OK) {
        s_fatal("%s: node.data_dir: cannot count the dead letters: %s", data_dir, gbx_err_name(rc));
        goto out;
    }
    oldest_from = calloc(gbx_metrics_agency_count(metrics) + 1, sizeof *oldest_from);
    if (!oldest_from) {
        s_fatal("out of memory");
        goto out;
    }

    /* the ZAP handler first: a CURVE server bound without it admits anyone */
    ctx = zmq_ctx_new();
    if (!ctx) {
        s_fatal("zmq_ctx_new: %s", zmq_strerror(errno));
        goto out;
    }
    rc = gbx_zap_start(ctx, reg, &zap);
    if (rc != GBX_OK) {
        s_fatal("ZAP handler: %s", gbx_err_name(rc));
        goto out;
    }
    /* The largest valid message; no single part may be larger, so libzmq
       drops a connection that sends one instead of buffering it whole. */
    const uint64_t max_bytes = GBX_FRAME_PROTOCOL_LEN + GBX_FRAME_MAX + S_ENVELOPE_OH +
                               gbx_payload_sealed_size((uint64_t)io.max_payload_bytes);
    const int64_t max_part = (int64_t)max_bytes;
    sock = zmq_socket(ctx, ZMQ_ROUTER);
    /* answers waiting in one connection's pipe: more than the pipeline
       holds (S_PIPELINE_MAX), so that no answer is dropped for a full pipe */
    int one = 1, zero = 0, hb_ivl = 5000, hb_to = 15000, sndhwm = 2 * S_PIPELINE_MAX + 65536;
    /* messages libzmq buffers per connection while the loop does not read
       (pipeline full): few, since each may be a large payload; TCP then
       pushes back on the sender */
    int rcvhwm = 64;
    if (!sock || zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(node), GBX_KEY_BYTES) !=
            0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, GBX_ZAP_DOMAIN_ADAPTER,
                       strlen(GBX_ZAP_DOMAIN_ADAPTER)) != 0 ||
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) != 0 ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl) != 0 ||
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof hb_to) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_part, sizeof max_part) != 0) {
        s_fatal("adapter socket: %s", zmq_strerror(errno));
        goto out;
    }
    if (zmq_bind(sock, endpoint) != 0) {
        s_fatal("%s: listen.adapter: cannot bind %s: %s", path, endpoint, zmq_strerror(errno));
        goto out;
    }

    /* the operators' control socket: CURVE with operator keys only, on a
       unix socket only its owner may open */
    const char *ctl_path = gbx_config_str(cfg, GBX_SETTING_LISTEN_CONTROL);
    char ctl_ep[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    if (strlen(ctl_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        s_fatal("%s: listen.control: %s is longer than a unix socket path may be", path, ctl_path);
        goto out;
    }
    snprintf(ctl_ep, sizeof ctl_ep, "ipc://%s", ctl_path);
    if (s_unix_socket_live(ctl_path)) { /* libzmq would unlink it */
        s_fatal("%s: listen.control: %s is in use (another gbxd?)", path, ctl_path);
        goto out;
    }
    const int64_t ctl_max = S_CONTROL_MAX;
    ctl_sock = zmq_socket(ctx, ZMQ_ROUTER);
    mode_t old_umask = umask(077); /* the socket file is born 0600 */
    if (!ctl_sock || zmq_setsockopt(ctl_sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(ctl_sock, ZMQ_MAXMSGSIZE, &ctl_max, sizeof ctl_max) != 0 ||
        zmq_setsockopt(ctl_sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(node), GBX_KEY_BYTES) !=
            0 ||
        zmq_setsockopt(ctl_sock, ZMQ_ZAP_DOMAIN, GBX_ZAP_DOMAIN_CONTROL,
                       strlen(GBX_ZAP_DOMAIN_CONTROL)) != 0 ||
        zmq_setsockopt(ctl_sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(ctl_sock, ctl_ep) != 0 || chmod(ctl_path, 0600) != 0) {
        umask(old_umask);
        s_fatal("%s: listen.control: cannot bind %s: %s", path, ctl_ep, zmq_strerror(errno));
        goto out;
    }
    umask(old_umask);
    /* optionally also over TCP: CURVE with the operators' keys all the same */
    const char *ctl_tcp = gbx_config_str(cfg, GBX_SETTING_LISTEN_CONTROL_TCP);
    if (strcmp(ctl_tcp, "off") != 0 &&
        (strncmp(ctl_tcp, "tcp://", 6) != 0 || zmq_bind(ctl_sock, ctl_tcp) != 0)) {
        s_fatal("%s: listen.control_tcp: cannot bind %s: %s", path, ctl_tcp,
                strncmp(ctl_tcp, "tcp://", 6) != 0 ? "not a tcp:// endpoint" : zmq_strerror(errno));
        goto out;
    }

    const char *feed_path = gbx_config_str(cfg, GBX_SETTING_LISTEN_AUDIT_FEED);
    if (s_unix_socket_live(feed_path)) {
        s_fatal("%s: listen.audit_feed: %s is in use (another gbxd?)", path, feed_path);
        goto out;
    }
    rc = gbx_feed_new(ctx, feed_path, gbx_identity_curve_sk(node), store, &feed, errbuf,
                      sizeof errbuf);
    if (rc != GBX_OK) {
        s_fatal("%s: listen.audit_feed: %s", path, errbuf);
        goto out;
    }

    const char *metrics_addr = gbx_config_str(cfg, GBX_SETTING_LISTEN_METRICS);
    if (strcmp(metrics_addr, "off") != 0 &&
        gbx_httpd_start(metrics_addr, metrics, &httpd, errbuf, sizeof errbuf) != GBX_OK) {
        s_fatal("%s: listen.metrics: %s", path, errbuf);
        goto out;
    }

    size_t nthreads = (size_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_VERIFY_THREADS);
    if (gbx_chan_new(&to_verify) != GBX_OK || gbx_chan_new(&to_writer) != GBX_OK ||
        gbx_chan_new(&done) != GBX_OK) {
        s_fatal("cannot make the pipeline's channels");
        goto out;
    }
    s_daemon_t d = {
        .sock = sock,
        .reg = reg,
        .node_id = node_id,
        .max_bytes = max_bytes,
        .to_verify = to_verify,
        .to_writer = to_writer,
        .done = done,
        .policy_path = policy_path,
        .policy = policy,
        .ctl_sock = ctl_sock,
        .store = store,
        .feed = feed,
        .checkpoint_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_AUDIT_CHECKPOINT_INTERVAL_MS),
        .metrics = metrics,
        .ingress = ing,
        .data_dir = data_dir,
        .min_free = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_MIN_FREE_DISK_BYTES),
        .oldest_from = oldest_from,
        .started_wall_ms = s_wall_ms(),
    };
    s_policy_metrics(&d);
    gbx_metrics_set(metrics, GBX_MG_DISK_MIN, d.min_free);
    gbx_metrics_set(metrics, GBX_MG_LOOP_MS, s_mono_ms());
    gbx_dispatch_opts_t dop = {
        .store = store,
        .registry = reg,
        .node_id = node_id,
        .ack_timeout_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_ACK_TIMEOUT_MS),
        .session_timeout_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_SESSION_TIMEOUT_MS),
        .max_attempts = (uint32_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_ATTEMPTS),
        .inflight_window = (size_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_INFLIGHT_WINDOW),
        .backoff_min_ms = (uint64_t)gbx_config_int(cfg, GBX_SETTING_LIMITS_REDELIVERY_BACKOFF_MS),
        .send = s_dispatch_send,
        .job = s_dispatch_job,
        .arg = &d,
        .log = s_dispatch_log,
    };
    rc = gbx_dispatch_new(&dop, &dispatch);
    d.dispatch = dispatch;
    gbx_control_opts_t cop = {
        .registry = reg,
        .store = store,
        .dispatch = dispatch,
        .node_id = node_id,
        .send = s_ctl_send,
        .policy = s_ctl_policy,
        .reload = s_ctl_reload,
        .writer_job = s_ctl_writer_job,
        .post = s_ctl_post,
        .arg = &d,
        .metrics = metrics,
        .config = cfg,
        .jurisdiction = gbx_jurisdiction_name(gbx_config_jurisdiction(cfg)),
    };
    if (rc == GBX_OK)
        rc = gbx_control_new(&cop, &control);
    d.control = control;
    if (rc == GBX_OK)
        rc = gbx_verifier_start(&io, nthreads, to_verify, to_writer, &verifier);
    gbx_writer_opts_t wo = {
        .store = store,
        .ingress = ing,
        .in = to_writer,
        .out = done,
        .commit_max_delay_ms =
            (unsigned)gbx_config_int(cfg, GBX_SETTING_LIMITS_COMMIT_MAX_DELAY_MS),
        .metrics = metrics,
    };
    if (rc == GBX_OK)
        rc = gbx_writer_start(&wo, &writer);
    if (rc != GBX_OK) {
        s_fatal("cannot start the pipeline: %s", gbx_err_name(rc));
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char phash[2 * GBX_HASH_BYTES + 1];
    sodium_bin2hex(phash, sizeof phash, gbx_policy_hash(policy), GBX_HASH_BYTES);
    char pq[256];
    gbx_log(GBX_LOG_INFO, "GBX-START",
            "node=%s version=%s adapter=%s control=%s control_tcp=%s audit_feed=%s metrics=%s "
            "config=%s data=%s verify_threads=%zu policy=%s policy_version=\"%s\" policy_hash=%s "
            "policy_rules=%zu "
            "audit_records=%llu key_changes=%u",
            node_id, GBX_VERSION, endpoint, ctl_ep, ctl_tcp, feed_path, metrics_addr, path,
            data_dir, nthreads, policy_path,
            gbx_log_quoted(gbx_policy_version(policy), pq, sizeof pq), phash,
            gbx_policy_rule_count(policy),
            (unsigned long long)gbx_trail_size(gbx_store_trail(store)), key_changes);
    printf("gbxd: node %s listening for adapters on %s\n", node_id, endpoint);
    fflush(stdout);

    code = 0;
    uint64_t next_tick = 0;
    while (!s_stop_sig) {
        int full = d.pipeline >= S_PIPELINE_MAX || d.pipeline_bytes >= S_PIPELINE_BYTES;
        gbx_dispatch_pause(dispatch, full);
        zmq_pollitem_t items[3] = {{sock, 0, full ? 0 : ZMQ_POLLIN, 0},
                                   {NULL, gbx_chan_fd(done), ZMQ_POLLIN, 0},
                                   {ctl_sock, 0, ZMQ_POLLIN, 0}};
        int r = zmq_poll(items, 3, S_TICK_MS);
        if (r < 0 && errno != EINTR) {
            s_fatal("zmq_poll: %s", zmq_strerror(errno));
            code = 1;
            break;
        }
        if (r > 0 && (items[1].revents & ZMQ_POLLIN))
            s_done(&d);
        if (s_reload_sig) {
            s_reload_sig = 0;
            char err[512];
            (void)s_reload(&d, "signal", NULL, 0, 0, err, sizeof err);
        }
        if (r > 0 && (items[2].revents & ZMQ_POLLIN))
            s_ctl_read(&d);
        /* drain what is waiting, but look at the stop flag between messages */
        for (int k = 0; r > 0 && (items[0].revents & ZMQ_POLLIN) && k < 1024 && !s_stop_sig &&
                        d.pipeline < S_PIPELINE_MAX && d.pipeline_bytes < S_PIPELINE_BYTES;
             k++) {
            int h = s_handle_one(&d);
            if (h == 1)
                break;
            if (h < 0) {
                s_fatal("receive: %s", zmq_strerror(errno));
                code = 1;
                goto stop;
            }
        }
        gbx_feed_pump(feed, 1024);
        uint64_t now = s_mono_ms();
        gbx_metrics_set(metrics, GBX_MG_LOOP_MS, now);
        if (now >= d.next_second) {
            s_second(&d, now);
            d.next_second = now + 1000;
        }
        if (now >= next_tick) {
            gbx_dispatch_tick(dispatch);
            s_checkpoint_tick(&d, s_wall_ms());
            next_tick = now + S_TICK_MS;
            if (gbx_store_broken(store)) {
                /* what was written since the last good fsync may be gone:
                   only a restart's recovery knows; answers already say
                   STORE_FAILED */
                gbx_metrics_set(d.metrics, GBX_MG_STORE_BROKEN, 1);
                gbx_log(GBX_LOG_ERROR, "GBX-FATAL", "store=broken reason=fsync-failed action=stop");
                code = 1;
                break;
            }
        }
    }
    if (s_stop_sig)
        gbx_log(GBX_LOG_INFO, "GBX-STOP", "signal=%d", (int)s_stop_sig);
stop:
    /* finish what is in the pipeline: every accepted message gets its answer
       if its session is still there; no new delivery starts */
    gbx_dispatch_stop(dispatch);
    uint64_t roots = 0, hits = 0;
    gbx_verifier_join(verifier); /* its workers drain their input first */
    gbx_verifier_stats(verifier, &roots, &hits);
    gbx_verifier_stop(&verifier);
    while (d.pipeline > 0 || gbx_dispatch_pending(dispatch) > 0) {
        zmq_pollitem_t it = {NULL, gbx_chan_fd(done), ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 1000) == 0 && gbx_chan_len(done) == 0 && gbx_chan_len(to_writer) == 0)
            break; /* nothing moves any more */
        s_done(&d);
    }
    gbx_control_stop(control); /* its query threads post to done */
    /* a last checkpoint, so that the trail a stopped node leaves is signed
       to its end */
    gbx_job_t *last_cp = gbx_job_new(GBX_JOB_CHECKPOINT);
    if (last_cp && gbx_chan_push(to_writer, last_cp) != GBX_OK)
        gbx_job_free(last_cp);
    d.writer_gone = 1;
    s_report(writer, dispatch, ing, &d, roots, hits);
    gbx_writer_stop(&writer); /* applies, writes and syncs what it still has */
    while (gbx_chan_len(done) > 0)
        s_done(&d);

out:
    gbx_httpd_stop(&httpd); /* first: it reads the metrics */
    gbx_control_stop(control);
    gbx_verifier_stop(&verifier);
    gbx_writer_stop(&writer);
    gbx_dispatch_destroy(&dispatch);
    s_free_jobs(to_verify);
    s_free_jobs(to_writer);
    s_free_jobs(done);
    gbx_chan_destroy(&to_verify);
    gbx_chan_destroy(&to_writer);
    gbx_chan_destroy(&done);
    /* CURVE server sockets close before the ZAP handler goes */
    if (sock)
        zmq_close(sock);
    if (ctl_sock)
        zmq_close(ctl_sock);
    gbx_feed_destroy(&feed);
    gbx_control_destroy(&control);
    gbx_zap_destroy(&zap);
    if (ctx)
        zmq_ctx_term(ctx);
    if (ing) /* the policy in force: the first, or the last reload's */
        policy = gbx_ingress_set_policy(ing, NULL);
    gbx_ingress_destroy(&ing);
    gbx_policy_destroy(&policy);
    gbx_store_destroy(&store);
    gbx_metrics_destroy(&metrics);
    free(oldest_from);
    gbx_identity_destroy(&node);
    gbx_config_destroy(&cfg);
    free(path);
    return code;
}
