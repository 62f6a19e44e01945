/*  control.c: owns the operators' commands: parsing, roles, answers
    (control.h). */
#include "control.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

#include "log.h"
#include "queue.h"
#include "trail.h"

#define S_LIST_MAX    1000  /* held messages or dead letters listed at most (all are counted) */
#define S_QUERIES_MAX 2     /* messages.show scans at once */
#define S_LIFE_MAX    1000  /* records of one message's life answered at most */
#define S_DENIALS     32    /* (operator, command) pairs whose refusals are rate-limited */
#define S_DENY_MS     10000 /* one CONTROL_REFUSED record per pair per this */
#define S_DENIED_MAX  16    /* DENIED jobs at the writer at most */

typedef struct {
    char op[GBX_ID_MAX + 1];
    char cmd[32];
    uint64_t last_ms; /* monotonic; 0: free */
    uint64_t refused; /* since the last record */
} s_denial_t;

struct gbx_control {
    gbx_control_opts_t o;
    uint64_t started_mono_ms;
    uint64_t started_wall_ms;
    /* the query threads (messages.show): how many run, and a stop flag */
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int queries;
    atomic_int stopping;
    /* refused changes on the trail: at most one record per operator and
       command each S_DENY_MS, carrying how many were refused meanwhile */
    s_denial_t denials[S_DENIALS];
    size_t denied_jobs; /* DENIED jobs at the writer */
    int drain_wanted;   /* what the last drain command asked (0 until one did) */
    int drains;         /* DRAIN jobs at the writer */
};

typedef struct {
    gbx_control_t *self;
    const uint8_t *rid;
    size_t rid_len;
    json_int_t tag;
    const char *cmd; /* the command's name, for metrics */
    const char *op;
    gbx_role_t role;
    json_t *args;
} s_req_t;

/* ---------------------------------------------------------------- answers */

/*  The command a job answers. */
static const char *s_job_cmd(const gbx_job_t *job)
{
    switch (job->kind) {
    case GBX_JOB_POLICY:
        return "policy.reload";
    case GBX_JOB_RELEASE:
        return "holds.approve";
    case GBX_JOB_REFUSE:
        return "holds.reject";
    case GBX_JOB_PRUNE:
        return "audit.prune";
    case GBX_JOB_COSIGN:
        return "audit.cosign";
    case GBX_JOB_REPLAY:
        return "dlq.replay";
    case GBX_JOB_PURGE:
        return "dlq.purge";
    case GBX_JOB_DRAIN:
        return "drain";
    case GBX_JOB_QUERY:
        return "messages.show";
    default:
        return "unknown";
    }
}

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t s_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  Sends ANSWER (stolen) with TAG to RID. */
static void s_send(gbx_control_t *self, const char *cmd, const uint8_t *rid, size_t rid_len,
                   json_int_t tag, json_t *answer)
{
    if (!answer)
        return;
    const char *error = json_string_value(json_object_get(answer, "error"));
    gbx_metrics_command(self->o.metrics, cmd ? cmd : "unknown", error ? error : "ok");
    json_object_set_new(answer, "tag", json_integer(tag));
    char *text = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    if (text)
        (void)self->o.send(self->o.arg, rid, rid_len, text, strlen(text));
    free(text);
}

static void s_ok(const s_req_t *r, json_t *data)
{
    s_send(r->self, r->cmd, r->rid, r->rid_len, r->tag,
           json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_object()));
}

static void s_fail_to(gbx_control_t *self, const char *cmd, const uint8_t *rid, size_t rid_len,
                      json_int_t tag, const char *error, const char *detail)
{
    s_send(self, cmd, rid, rid_len, tag,
           json_pack("{s:b, s:s, s:s}", "ok", 0, "error", error, "detail", detail ? detail : ""));
}

static void s_fail(const s_req_t *r, const char *error, const char *detail)
{
    s_fail_to(r->self, r->cmd, r->rid, r->rid_len, r->tag, error, detail);
}

static json_t *s_hex(const uint8_t *bin, size_t len)
{
    char hex[2 * 64 + 1];
    sodium_bin2hex(hex, sizeof hex, bin, len < 64 ? len : 64);
    return json_string(hex);
}

/* ------------------------------------------------------------------ policy */

static const gbx_policy_t *s_policy(gbx_control_t *self, const char **path)
{
    *path = "";
    return self->o.policy ? self->o.policy(self->o.arg, path) : NULL;
}

static json_t *s_policy_json(const gbx_policy_t *p, const char *path)
{
    if (!p)
        return json_pack("{s:s}", "version", "none (every message allowed)");
    return json_pack("{s:s, s:o, s:I, s:s}", "version", gbx_policy_version(p), "hash",
                     s_hex(gbx_policy_hash(p), GBX_HASH_BYTES), "rules",
                     (json_int_t)gbx_policy_rule_count(p), "file", path);
}

static void s_status(const s_req_t *r)
{
    gbx_control_t *self = r->self;
    gbx_metrics_t *m = self->o.metrics;
    const char *path;
    const gbx_policy_t *p = s_policy(self, &path);
    uint64_t accepted = 0, held = 0, rejected = 0;
    gbx_metrics_totals(m, &accepted, &held, &rejected);
    uint64_t qmsgs = 0, qbytes = 0, dlq = 0;
    for (size_t i = 0; i < gbx_metrics_agency_count(m); i++) {
        qmsgs += gbx_metrics_agency_get(m, (int)i, GBX_MA_QUEUE_MESSAGES);
        qbytes += gbx_metrics_agency_get(m, (int)i, GBX_MA_QUEUE_BYTES);
        dlq += gbx_metrics_agency_get(m, (int)i, GBX_MA_DLQ);
    }
    size_t up = 0, down = 0;
    for (size_t i = 0; i < gbx_registry_node_count(self->o.registry); i++) {
        const gbx_node_t *n = gbx_registry_node_at(self->o.registry, i);
        if (strcmp(n->id, self->o.node_id) != 0)
            gbx_metrics_peer_up(m, n->id) ? up++ : down++;
    }
    gbx_dispatch_stats_t ds;
    gbx_dispatch_stats(self->o.dispatch, &ds);
    char by[GBX_ID_MAX + 1] = "";
    uint64_t since = 0;
    int draining = gbx_metrics_is_draining(m, by, sizeof by, &since);
    uint64_t pipeline = gbx_metrics_get(m, GBX_MG_PIPELINE);
    gbx_health_t h;
    gbx_metrics_health(m, s_mono_ms(), &h);
    gbx_trail_head_t th; /* the trail as it is now (the metrics' copy is a second old) */
    gbx_trail_head(gbx_store_trail(self->o.store), &th);
    uint64_t now = s_real_ms(), cp = th.checkpoint ? th.checkpoint_ms : 0;
    json_t *drain = json_pack("{s:b}", "on", draining);
    if (draining)
        json_object_update_new(drain,
                               json_pack("{s:s, s:I, s:b}", "by", by, "since_ms", (json_int_t)since,
                                         "drained", pipeline == 0 && ds.inflight == 0));
    json_t *totals =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "accepted",
                  (json_int_t)accepted, "held", (json_int_t)held, "duplicates",
                  (json_int_t)gbx_metrics_counter(m, GBX_MC_DUPLICATE), "rejected",
                  (json_int_t)rejected, "delivered", (json_int_t)ds.delivered, "redelivered",
                  (json_int_t)ds.redelivered, "acked", (json_int_t)ds.acked, "expired",
                  (json_int_t)ds.expired, "dead_lettered", (json_int_t)ds.dead_lettered, "replayed",
                  (json_int_t)gbx_metrics_counter(m, GBX_MC_REPLAYED), "purged",
                  (json_int_t)gbx_metrics_counter(m, GBX_MC_PURGED));
    json_t *data = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:o, s:b, s:s, s:o, s:{s:I, s:I}, s:o}", "node", self->o.node_id,
        "jurisdiction", self->o.jurisdiction ? self->o.jurisdiction : "", "version", GBX_VERSION,
        "uptime_ms", (json_int_t)(s_mono_ms() - self->started_mono_ms), "started_at_ms",
        (json_int_t)self->started_wall_ms, "policy", s_policy_json(p, path), "ready", h.ready,
        "not_ready_because", h.why, "draining", drain, "peers", "up", (json_int_t)up, "down",
        (json_int_t)down, "totals", totals);
    json_object_update_new(
        data, json_pack("{s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:{s:I, s:I, s:o}, s:{s:I, s:I}, s:s, "
                        "s:s}",
                        "queues", "messages", (json_int_t)qmsgs, "bytes", (json_int_t)qbytes,
                        "dead_letters", (json_int_t)dlq, "sessions",
                        (json_int_t)(ds.sessions_opened - ds.sessions_closed), "inflight",
                        (json_int_t)ds.inflight, "pipeline", (json_int_t)pipeline, "audit",
                        "records", (json_int_t)th.size, "unsigned",
                        (json_int_t)(th.size - th.checkpoint), "checkpoint_age_ms",
                        cp ? json_integer((json_int_t)(now > cp ? now - cp : 0)) : json_null(),
                        "disk", "free_bytes", (json_int_t)gbx_metrics_get(m, GBX_MG_DISK_FREE),
                        "min_free_bytes", (json_int_t)gbx_metrics_get(m, GBX_MG_DISK_MIN),
                        "operator", r->op, "role", gbx_role_name(r->role)));
    s_ok(r, data);
}

static void s_policy_show(const s_req_t *r)
{
    const char *path;
    const gbx_policy_t *p = s_policy(r->self, &path);
    s_ok(r, s_policy_json(p, path));
}

/*  Reads counter KEY from the store (what is committed). */
static gbx_err_t s_counter(void *arg, const char *key, uint64_t *value)
{
    uint8_t *v = NULL;
    size_t vlen = 0;
    *value = 0;
    gbx_err_t rc = gbx_store_get(arg, GBX_KS_COUNTERS, key, strlen(key), &v, &vlen);
    if (rc == GBX_OK && v && vlen == 8)
        for (size_t i = 0; i < 8; i++)
            *value = *value << 8 | v[i];
    free(v);
    return rc;
}

/*  An enum field of ARGS by its .proto name into *OUT; 0 when absent
    (*OUT kept), -1 when not a name of D. */
static int s_enum_arg(json_t *args, const char *key, const ProtobufCEnumDescriptor *d, int *out)
{
    json_t *v = json_object_get(args, key);
    if (!v)
        return 0;
    const ProtobufCEnumValue *e =
        json_is_string(v) ? protobuf_c_enum_descriptor_get_value_by_name(d, json_string_value(v))
                          : NULL;
    if (!e)
        return -1;
    *out = e->value;
    return 0;
}

static const char *s_str_arg(json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void s_policy_check(const s_req_t *r)
{
    const char *path;
    const gbx_policy_t *p = s_policy(r->self, &path);
    if (!p) {
        s_fail(r, "BAD_REQUEST", "no policy is loaded");
        return;
    }
    gbx_header_t h = GBX__V1__HEADER__INIT;
    uint64_t now = s_real_ms();
    h.from_agency = (char *)s_str_arg(r->args, "from");
    h.to_agency = (char *)s_str_arg(r->args, "to");
    h.service_code = (char *)s_str_arg(r->args, "service");
    if (!h.from_agency || !h.to_agency || !h.service_code) {
        s_fail(r, "BAD_REQUEST", "from, to and service are required");
        return;
    }
    static const char *const texts[] = {"purpose",       "case_ref",    "end_user",
                                        "route_ref",     "consent_ref", "impact_ref",
                                        "agreement_ref", "release_ref"};
    char **fields[] = {&h.purpose_code,  &h.case_ref,
                       &h.end_user_ref,  &h.legal_route_ref,
                       &h.consent_ref,   &h.impact_assessment_ref,
                       &h.agreement_ref, &h.release_authority_ref};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *t = s_str_arg(r->args, texts[i]);
        *fields[i] = (char *)(t ? t : "");
    }
    int kind = GBX__V1__MESSAGE_KIND__REQUEST, marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    int route = GBX__V1__LEGAL_ROUTE__LEGAL_ROUTE_NONE, consent = 0, cls = 0;
    const gbx_service_t *svc = NULL;
    json_int_t version = json_integer_value(json_object_get(r->args, "version"));
    h.service_version = version > 0 && version <= UINT32_MAX ? (uint32_t)version : 1;
    svc = gbx_registry_service(r->self->o.registry, h.service_code, h.service_version);
    cls = svc ? (int)svc->data_class : GBX__V1__DATA_CLASS__PERSONAL;
    if (s_enum_arg(r->args, "kind", &gbx__v1__message_kind__descriptor, &kind) ||
        s_enum_arg(r->args, "class", &gbx__v1__data_class__descriptor, &cls) ||
        s_enum_arg(r->args, "marking", &gbx__v1__hk_marking__descriptor, &marking) ||
        s_enum_arg(r->args, "route", &gbx__v1__legal_route__descriptor, &route) ||
        s_enum_arg(r->args, "consent", &gbx__v1__consent_type__descriptor, &consent)) {
        s_fail(r, "BAD_REQUEST",
               "kind, class, marking, route or consent is not a name of the "
               "protocol (proto/gbx/v1/envelope.proto)");
        return;
    }
    h.kind = (Gbx__V1__MessageKind)kind;
    h.data_class = (Gbx__V1__DataClass)cls;
    h.hk_marking = (Gbx__V1__HkMarking)marking;
    h.legal_route = (Gbx__V1__LegalRoute)route;
    h.consent_type = (Gbx__V1__ConsentType)consent;
    json_t *sc = json_object_get(r->args, "subjects");
    h.subject_count = json_is_integer(sc) ? (uint32_t)json_integer_value(sc) : 1;
    json_t *pl = json_object_get(r->args, "payload_bytes");
    h.payload_length = json_is_integer(pl) ? (uint64_t)json_integer_value(pl) : 1024;
    json_t *ttl = json_object_get(r->args, "ttl_ms");
    h.created_at_ms = now;
    h.expires_at_ms = now + (json_is_integer(ttl) ? (uint64_t)json_integer_value(ttl) : 3600000);
    gbx_decision_t d;
    gbx_err_t rc =
        gbx_policy_decide(p, r->self->o.registry, &h, now, s_counter, r->self->o.store, &d);
    if (rc != GBX_OK) {
        s_fail(r, "INTERNAL", gbx_err_name(rc));
        return;
    }
    json_t *counts = json_array();
    for (size_t i = 0; i < d.n_counts; i++) {
        uint64_t cur = 0;
        (void)s_counter(r->self->o.store, d.counts[i].key, &cur);
        json_array_append_new(counts,
                              json_pack("{s:s, s:I, s:I}", "key", d.counts[i].key, "now",
                                        (json_int_t)cur, "add", (json_int_t)d.counts[i].add));
    }
    s_ok(r, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o}", "outcome", gbx_outcome_name(d.outcome),
                      "reason", gbx_err_name(d.reason), "rule_id", d.rule_id, "rule_version",
                      (json_int_t)d.rule_version, "why", d.why, "policy_hash",
                      s_hex(d.policy_hash, GBX_HASH_BYTES), "counts", counts));
}

static void s_policy_reload(const s_req_t *r)
{
    char err[512] = "";
    gbx_err_t rc = r->self->o.reload ? r->self->o.reload(r->self->o.arg, r->op, r->rid, r->rid_len,
                                                         (uint64_t)r->tag, err, sizeof err)
                                     : GBX_E_STATE;
    if (rc != GBX_OK) /* else: answered when the writer switched */
        s_fail(r, rc == GBX_E_NOMEM || rc == GBX_E_STATE ? "BUSY" : "POLICY_INVALID",
               err[0] ? err : gbx_err_name(rc));
}

/* ------------------------------------------------------------------- holds */

/*  Calls FN for each held message, at most MAX (0: all); stops when it
    returns nonzero. *SEEN (may be NULL): how many there were, all of them
    counted (a key-only walk past MAX). */
typedef int (*s_held_fn)(void *arg, const char *dest, uint64_t seq, uint64_t until,
                         const gbx_qentry_t *e);

static gbx_err_t s_each_held(gbx_control_t *self, s_held_fn fn, void *arg, size_t max, size_t *seen)
{
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_new(self->o.store, GBX_KS_HELD, NULL, 0, &it);
    if (rc != GBX_OK)
        return rc;
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it), n++) {
        if (max && n >= max)
            continue; /* counted only */
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        const uint8_t *zero = memchr(k, 0, kl);
        uint64_t until = 0;
        gbx_qentry_t e;
        if (!zero || (size_t)(k + kl - zero) != 1 + GBX_STORE_SEQ_KEY_BYTES ||
            (size_t)(zero - k) > GBX_ID_MAX || gbx_held_decode(v, vl, &until, &e) != GBX_OK)
            continue;
        char dest[GBX_ID_MAX + 1];
        memcpy(dest, k, (size_t)(zero - k));
        dest[zero - k] = 0;
        if (fn(arg, dest, gbx_store_seq_from_key(zero + 1), until, &e))
            break;
    }
    if (seen)
        *seen = n;
    rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    return rc;
}

static int s_list_one(void *arg, const char *dest, uint64_t seq, uint64_t until,
                      const gbx_qentry_t *e)
{
    json_array_append_new(
        arg, json_pack("{s:o, s:I, s:s, s:s, s:I, s:I, s:I}", "message_id",
                       s_hex(e->message_id, GBX_MSG_ID_BYTES), "seq", (json_int_t)seq, "from",
                       e->from, "to", dest, "payload_bytes", (json_int_t)e->payload, "until_ms",
                       (json_int_t)until, "expires_at_ms", (json_int_t)e->expires_at_ms));
    return 0;
}

static void s_holds_list(const s_req_t *r)
{
    json_t *list = json_array();
    size_t total = 0;
    gbx_err_t rc = s_each_held(r->self, s_list_one, list, S_LIST_MAX, &total);
    if (rc != GBX_OK) {
        json_decref(list);
        s_fail(r, "INTERNAL", gbx_err_name(rc));
        return;
    }
    s_ok(r, json_pack("{s:o, s:I, s:b}", "holds", list, "total", (json_int_t)total, "truncated",
                      total > S_LIST_MAX));
}

typedef struct {
    uint8_t id[GBX_MSG_ID_BYTES];
    const char *from; /* only that sender's (NULL: any) */
    char dest[GBX_ID_MAX + 1];
    uint64_t seq;
    int found; /* 0, 1, or 2: more than one (ids are unique per sender only) */
} s_find_t;

/*  A message id argument ("id", 32 hex digits) into F->id, and the optional
    sender ("from") into F->from. 0, or -1 after answering BAD_REQUEST. */
static int s_id_args(const s_req_t *r, s_find_t *f, const char *what)
{
    const char *id = s_str_arg(r->args, "id");
    size_t bin_len = 0;
    f->from = s_str_arg(r->args, "from");
    if (!id || sodium_hex2bin(f->id, sizeof f->id, id, strlen(id), NULL, &bin_len, NULL) != 0 ||
        bin_len != GBX_MSG_ID_BYTES || (json_object_get(r->args, "from") && !f->from)) {
        char why[128];
        snprintf(why, sizeof why, "id: %s's message id, 32 hex digits; from: its sender", what);
        s_fail(r, "BAD_REQUEST", why);
        return -1;
    }
    return 0;
}

/*  One entry met by a walk: counts it in F when it is the message looked
    for; 1 (stop) at the second. */
static int s_find_match(s_find_t *f, const char *dest, uint64_t seq, const gbx_qentry_t *e)
{
    if (memcmp(f->id, e->message_id, GBX_MSG_ID_BYTES) != 0 ||
        (f->from && strcmp(f->from, e->from) != 0))
        return 0;
    if (f->found++ == 0) {
        snprintf(f->dest, sizeof f->dest, "%s", dest);
        f->seq = seq;
        return 0;
    }
    return 1;
}

/*  After a walk: 0 when F found exactly one, or -1 after answering. */
static int s_found_one(const s_req_t *r, const s_find_t *f, const char *what)
{
    char why[160];
    if (f->found == 0) {
        snprintf(why, sizeof why, "no %s with that id%s", what, f->from ? " from that sender" : "");
        s_fail(r, "NOT_FOUND", why);
        return -1;
    }
    if (f->found > 1) {
        snprintf(why, sizeof why,
                 "several senders' messages have that id (ids are unique per sender): say "
                 "whose (from)");
        s_fail(r, "NOT_UNIQUE", why);
        return -1;
    }
    return 0;
}

/*  Hands JOB, an operator's decision on message DEST/SEQ made for request
    R (R->rid_len fits: checked by the caller), to the writer through the
    dispatcher, which acts on the result; answered in gbx_control_job_done. */
static void s_give(const s_req_t *r, gbx_job_t *job, const char *dest, uint64_t seq)
{
    snprintf(job->dest, sizeof job->dest, "%s", dest);
    job->seq = seq;
    snprintf(job->by, sizeof job->by, "%s", r->op);
    memcpy(job->ctl_rid, r->rid, r->rid_len);
    job->ctl_rid_len = r->rid_len;
    job->ctl_tag = (uint64_t)r->tag;
    gbx_dispatch_give(r->self->o.dispatch, job);
}

static int s_find_one(void *arg, const char *dest, uint64_t seq, uint64_t until,
                      const gbx_qentry_t *e)
{
    (void)until;
    return s_find_match(arg, dest, seq, e);
}

static void s_holds_decide(const s_req_t *r, int approve)
{
    const char *comment = s_str_arg(r->args, "comment");
    s_find_t f = {.found = 0};
    if (s_id_args(r, &f, "the held message") != 0)
        return;
    if (!approve && (!comment || !*comment)) {
        s_fail(r, "BAD_REQUEST", "comment: a rejection says why");
        return;
    }
    if (comment && strlen(comment) > 1024) {
        s_fail(r, "BAD_REQUEST", "comment: at most 1024 bytes");
        return;
    }
    gbx_err_t rc = s_each_held(r->self, s_find_one, &f, 0, NULL); /* every one */
    if (rc != GBX_OK) {
        s_fail(r, "INTERNAL", gbx_err_name(rc));
        return;
    }
    if (s_found_one(r, &f, "held message") != 0)
        return;
    gbx_job_t *job = gbx_job_new(approve ? GBX_JOB_RELEASE : GBX_JOB_REFUSE);
    if (!job || (comment && !(job->comment = strdup(comment))) ||
        r->rid_len > sizeof job->ctl_rid) {
        gbx_job_free(job);
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    job->reason = GBX_E_HOLD_REJECTED;
    s_give(r, job, f.dest, f.seq);
}

static void s_holds_approve(const s_req_t *r)
{
    s_holds_decide(r, 1);
}

static void s_holds_reject(const s_req_t *r)
{
    s_holds_decide(r, 0);
}

/* -------------------------------------------------------------- audit */

static json_t *s_checkpoint_json(const gbx_checkpoint_t *cp)
{
    char text[GBX_CHECKPOINT_TEXT_MAX];
    if (gbx_checkpoint_format(cp, text, sizeof text) != GBX_OK)
        text[0] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    json_t *cosigners = json_array();
    for (unsigned i = 0; i < cp->ncosig; i++)
        json_array_append_new(cosigners, json_string(cp->cosig[i].node));
    return json_pack("{s:I, s:I, s:I, s:o, s:o, s:o, s:s}", "size", (json_int_t)cp->size, "at_ms",
                     (json_int_t)cp->at_ms, "age_ms",
                     (json_int_t)(now > cp->at_ms ? now - cp->at_ms : 0), "root",
                     s_hex(cp->root, GBX_MERKLE_HASH), "chain", s_hex(cp->chain, GBX_MERKLE_HASH),
                     "cosigners", cosigners, "text", text);
}

static void s_audit_status(const s_req_t *r)
{
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(r->self->o.store), &h);
    json_t *cp = json_null();
    gbx_checkpoint_t c;
    if (h.checkpoint && gbx_trail_checkpoint(r->self->o.store, h.checkpoint, &c) == GBX_OK)
        cp = s_checkpoint_json(&c);
    s_ok(r, json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}", "records", (json_int_t)h.size, "durable",
                      (json_int_t)h.durable, "first", (json_int_t)h.first, "uncovered",
                      (json_int_t)(h.size - h.checkpoint), "chain", s_hex(h.chain, GBX_MERKLE_HASH),
                      "checkpoint", cp));
}

/*  Hands JOB (made for request R) to the writer; answered when it is back.
    0, or -1 when the writer did not take it (JOB freed, R answered BUSY). */
static int s_to_writer(const s_req_t *r, gbx_job_t *job)
{
    snprintf(job->by, sizeof job->by, "%s", r->op);
    memcpy(job->ctl_rid, r->rid, r->rid_len);
    job->ctl_rid_len = r->rid_len;
    job->ctl_tag = (uint64_t)r->tag;
    if (!r->self->o.writer_job || r->self->o.writer_job(r->self->o.arg, job) != GBX_OK) {
        gbx_job_free(job);
        s_fail(r, "BUSY", "the writer does not take jobs now");
        return -1;
    }
    return 0;
}

static void s_audit_prune(const s_req_t *r)
{
    json_t *upto = json_object_get(r->args, "upto"), *keep = json_object_get(r->args, "keep_ms");
    if (!!upto == !!keep || (upto && (!json_is_integer(upto) || json_integer_value(upto) <= 0)) ||
        (keep && (!json_is_integer(keep) || json_integer_value(keep) < 0))) {
        s_fail(r, "BAD_REQUEST", "one of upto (a checkpoint's size) or keep_ms (>= 0)");
        return;
    }
    gbx_store_t *st = r->self->o.store;
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(st), &h);
    uint64_t to = 0;
    gbx_checkpoint_t cp;
    if (upto) {
        to = (uint64_t)json_integer_value(upto);
        if (gbx_trail_checkpoint(st, to, &cp) != GBX_OK) {
            s_fail(r, "NOT_FOUND", "upto: no checkpoint of that many records (audit.status)");
            return;
        }
    } else { /* the newest checkpoint older than keep_ms */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        uint64_t keep_ms = (uint64_t)json_integer_value(keep);
        for (uint64_t at = h.first; gbx_trail_checkpoint_after(st, at, &cp) == GBX_OK &&
                                    cp.at_ms + keep_ms <= now && cp.size <= h.durable;
             at = cp.size)
            to = cp.size;
    }
    if (to <= h.first) {
        s_ok(r, json_pack("{s:I, s:I}", "deleted", (json_int_t)0, "first", (json_int_t)h.first));
        return;
    }
    gbx_job_t *job = gbx_job_new(GBX_JOB_PRUNE);
    if (!job) {
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    job->seq = to;
    (void)s_to_writer(r, job);
}

static void s_audit_cosign(const s_req_t *r)
{
    const char *text = s_str_arg(r->args, "checkpoint");
    gbx_checkpoint_t *cp = calloc(1, sizeof *cp);
    if (!cp) {
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    const gbx_node_t *self_node = gbx_registry_node(r->self->o.registry, r->self->o.node_id);
    const char *why = NULL;
    if (!text || gbx_checkpoint_parse(text, strlen(text), cp) != GBX_OK)
        why = "checkpoint: the text form, \"gbx-checkpoint v1 ...\" with cosig= fields";
    else if (strcmp(cp->node, r->self->o.node_id) != 0 || !self_node ||
             gbx_checkpoint_verify(cp, self_node->pub.sign_pk) != GBX_OK)
        why = "checkpoint: not one of this node's checkpoints";
    else if (cp->ncosig == 0)
        why = "checkpoint: carries no countersignature";
    for (unsigned i = 0; !why && i < cp->ncosig; i++) {
        const gbx_node_t *peer = gbx_registry_node(r->self->o.registry, cp->cosig[i].node);
        if (!peer || strcmp(peer->id, r->self->o.node_id) == 0)
            why = "cosig: not by a peer node of the registry";
        else if (gbx_checkpoint_verify_cosig(cp, peer->id, peer->pub.sign_pk) != GBX_OK)
            why = "cosig: the countersignature does not verify under the peer's key";
    }
    if (why) {
        free(cp);
        s_fail(r, "BAD_REQUEST", why);
        return;
    }
    gbx_job_t *job = gbx_job_new(GBX_JOB_COSIGN);
    if (!job) {
        free(cp);
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    job->checkpoint = cp;
    job->seq = cp->size;
    (void)s_to_writer(r, job);
}

/*  The answer to an audit trail job. */
static void s_audit_done(gbx_control_t *self, const gbx_job_t *job, json_int_t tag)
{
    if (job->rc == GBX_E_STATE || job->rc == GBX_E_BAD_SIGNATURE) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "NOT_FOUND",
                  "no stored checkpoint of that size and root");
        return;
    }
    if (job->rc == GBX_E_ARG) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "BAD_REQUEST",
                  "upto: not beyond the first record kept, or not yet durable");
        return;
    }
    if (job->rc != GBX_OK) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "INTERNAL",
                  gbx_err_name(job->rc));
        return;
    }
    if (job->kind == GBX_JOB_PRUNE)
        s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
               json_pack("{s:b, s:{s:I, s:I}}", "ok", 1, "data", "deleted", (json_int_t)job->count,
                         "first", (json_int_t)job->seq));
    else
        s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
               json_pack("{s:b, s:{s:I, s:i}}", "ok", 1, "data", "size", (json_int_t)job->seq,
                         "cosigners", (int)job->checkpoint->ncosig));
}

void gbx_control_job_done(gbx_control_t *self, const gbx_job_t *job)
{
    if (self && job && job->kind == GBX_JOB_DENIED && self->denied_jobs > 0)
        self->denied_jobs--;
    if (self && job && job->kind == GBX_JOB_DRAIN && self->drains > 0 && --self->drains == 0)
        /* none left at the writer: what is durable (the metrics follow the
           switches that were written) is what was asked, failures included */
        self->drain_wanted = gbx_metrics_is_draining(self->o.metrics, NULL, 0, NULL);
    if (!self || !job || !job->ctl_rid_len)
        return;
    json_int_t tag = (json_int_t)job->ctl_tag;
    if (job->commit != GBX_OK) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "INTERNAL",
                  gbx_err_name(job->commit));
        return;
    }
    if (job->kind == GBX_JOB_QUERY) {
        json_t *answer =
            job->reply ? json_loadb((const char *)job->reply, job->reply_len, 0, NULL) : NULL;
        if (answer)
            json_object_del(answer, "tag");
        else
            answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "INTERNAL", "detail",
                               "out of memory");
        s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, answer);
        return;
    }
    if (job->kind == GBX_JOB_PRUNE || job->kind == GBX_JOB_COSIGN) {
        s_audit_done(self, job, tag);
        return;
    }
    if (job->kind == GBX_JOB_DRAIN) {
        if (job->rc != GBX_OK)
            s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "INTERNAL",
                      gbx_err_name(job->rc));
        else
            s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
                   json_pack("{s:b, s:{s:b, s:s}}", "ok", 1, "data", "draining", job->seq != 0,
                             "by", job->by));
        return;
    }
    int dlq = job->kind == GBX_JOB_REPLAY || job->kind == GBX_JOB_PURGE;
    if (job->kind == GBX_JOB_POLICY) {
        const char *path;
        const gbx_policy_t *p = s_policy(self, &path);
        if (job->rc != GBX_OK)
            s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "INTERNAL",
                      gbx_err_name(job->rc));
        else
            s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
                   json_pack("{s:b, s:o}", "ok", 1, "data", s_policy_json(p, path)));
        return;
    }
    if (job->rc == GBX_E_STATE) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
                  dlq ? "NOT_FOUND" : "NOT_HELD",
                  dlq ? "no longer a dead letter: replayed or purged meanwhile"
                      : "no longer held: decided or timed out meanwhile");
        return;
    }
    if (job->rc == GBX_E_EXPIRED) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "EXPIRED",
                  dlq ? "the message has expired: it can no longer be delivered (purge it)"
                      : "the message has expired; the node refuses it");
        return;
    }
    if (job->rc != GBX_OK) {
        s_fail_to(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag, "INTERNAL",
                  gbx_err_name(job->rc));
        return;
    }
    s_send(self, s_job_cmd(job), job->ctl_rid, job->ctl_rid_len, tag,
           json_pack("{s:b, s:{s:o, s:I, s:s, s:s, s:s}}", "ok", 1, "data", "message_id",
                     s_hex(job->entry.message_id, GBX_MSG_ID_BYTES), "seq", (json_int_t)job->seq,
                     "from", job->entry.from, "to", job->dest, "decision",
                     job->kind == GBX_JOB_RELEASE  ? "approved"
                     : job->kind == GBX_JOB_REFUSE ? "rejected"
                     : job->kind == GBX_JOB_REPLAY ? "replayed"
                                                   : "purged"));
}

/* ------------------------------------------------------- agencies, queues */

static json_t *s_ago(uint64_t ms)
{
    return ms == UINT64_MAX ? json_null() : json_integer((json_int_t)ms);
}

static void s_agencies(const s_req_t *r)
{
    const gbx_registry_t *reg = r->self->o.registry;
    json_t *list = json_array();
    for (size_t i = 0; i < gbx_registry_agency_count(reg); i++) {
        const gbx_agency_t *a = gbx_registry_agency_at(reg, i);
        int local = strcmp(a->node, r->self->o.node_id) == 0;
        gbx_dispatch_agency_t da;
        gbx_dispatch_agency(r->self->o.dispatch, a->id, &da);
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "id",
                      a->id, "jurisdiction", gbx_jurisdiction_name(a->jurisdiction), "city",
                      a->city, "node", a->node, "local", local, "connected", da.sessions > 0,
                      "sessions", (json_int_t)da.sessions, "last_seen_ago_ms",
                      s_ago(da.last_seen_ago_ms), "credit_messages", (json_int_t)da.credit_msgs,
                      "credit_bytes", (json_int_t)da.credit_bytes, "inflight",
                      (json_int_t)da.inflight, "inflight_bytes", (json_int_t)da.inflight_bytes,
                      "notices_waiting", (json_int_t)da.notices));
    }
    s_ok(r, json_pack("{s:o}", "agencies", list));
}

static void s_queues(const s_req_t *r)
{
    gbx_metrics_t *m = r->self->o.metrics;
    uint64_t now = s_real_ms();
    json_t *list = json_array();
    for (size_t i = 0; i < gbx_metrics_agency_count(m); i++) {
        const char *id = gbx_metrics_agency_id(m, i);
        uint64_t oldest = gbx_metrics_agency_get(m, (int)i, GBX_MA_OLDEST_MS);
        double in = 0, out = 0;
        gbx_metrics_agency_rates(m, (int)i, &in, &out);
        gbx_dispatch_agency_t da;
        gbx_dispatch_agency(r->self->o.dispatch, id, &da);
        json_array_append_new(
            list,
            json_pack(
                "{s:s, s:I, s:I, s:o, s:I, s:I, s:I, s:f, s:f, s:I, s:I}", "agency", id, "messages",
                (json_int_t)gbx_metrics_agency_get(m, (int)i, GBX_MA_QUEUE_MESSAGES), "bytes",
                (json_int_t)gbx_metrics_agency_get(m, (int)i, GBX_MA_QUEUE_BYTES), "oldest_age_ms",
                oldest ? json_integer((json_int_t)(now > oldest ? now - oldest : 0)) : json_null(),
                "inflight", (json_int_t)da.inflight, "dead_letters",
                (json_int_t)gbx_metrics_agency_get(m, (int)i, GBX_MA_DLQ), "sessions",
                (json_int_t)da.sessions, "in_per_s", in, "out_per_s", out, "in_total",
                (json_int_t)gbx_metrics_agency_get(m, (int)i, GBX_MA_IN), "out_total",
                (json_int_t)gbx_metrics_agency_get(m, (int)i, GBX_MA_OUT)));
    }
    s_ok(r, json_pack("{s:o}", "queues", list));
}

static void s_peers(const s_req_t *r)
{
    const gbx_registry_t *reg = r->self->o.registry;
    json_t *list = json_array();
    for (size_t i = 0; i < gbx_registry_node_count(reg); i++) {
        const gbx_node_t *n = gbx_registry_node_at(reg, i);
        if (strcmp(n->id, r->self->o.node_id) == 0)
            continue;
        size_t agencies = 0;
        for (size_t k = 0; k < gbx_registry_agency_count(reg); k++)
            agencies += strcmp(gbx_registry_agency_at(reg, k)->node, n->id) == 0;
        int up = gbx_metrics_peer_up(r->self->o.metrics, n->id);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:b, s:s, s:I}", "node", n->id, "jurisdiction",
                            gbx_jurisdiction_name(n->jurisdiction), "up", up, "detail",
                            up ? "linked"
                               : "no peer link: this gbxd has none yet, so messages to that "
                                 "node's agencies are refused UNKNOWN_DESTINATION",
                            "agencies", (json_int_t)agencies));
    }
    s_ok(r, json_pack("{s:o}", "peers", list));
}

/* ------------------------------------------------------------ config.show */

static void s_config_show(const s_req_t *r)
{
    const gbx_config_t *cfg = r->self->o.config;
    if (!cfg) {
        s_fail(r, "INTERNAL", "no configuration");
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < GBX_SETTING_COUNT_; i++) {
        char value[1024], source[1024];
        gbx_config_describe(cfg, (gbx_setting_t)i, value, sizeof value, source, sizeof source);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:b}", "name",
                                              gbx_setting_name((gbx_setting_t)i), "value", value,
                                              "source", source, "reloadable",
                                              gbx_setting_reloadable((gbx_setting_t)i)));
    }
    const gbx_registry_t *reg = gbx_config_registry(cfg);
    s_ok(r,
         json_pack("{s:s, s:o, s:{s:I, s:I, s:I, s:I}}", "file", gbx_config_path(cfg), "settings",
                   list, "registry", "nodes", (json_int_t)gbx_registry_node_count(reg), "agencies",
                   (json_int_t)gbx_registry_agency_count(reg), "services",
                   (json_int_t)gbx_registry_service_count(reg), "operators",
                   (json_int_t)gbx_registry_operator_count(reg)));
}

/* ------------------------------------------------------------------ drain */

static void s_drain(const s_req_t *r)
{
    json_t *on = json_object_get(r->args, "on");
    if (on && !json_is_boolean(on)) {
        s_fail(r, "BAD_REQUEST", "on: true (drain) or false (take messages again)");
        return;
    }
    int want = on ? json_is_true(on) : 1;
    if (want == r->self->drain_wanted) { /* asked already, even if not yet durable */
        s_fail(r, "ALREADY", want ? "the node is already draining" : "the node is not draining");
        return;
    }
    gbx_job_t *job = gbx_job_new(GBX_JOB_DRAIN);
    if (!job) {
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    job->seq = (uint64_t)want;
    if (s_to_writer(r, job) == 0) {
        r->self->drain_wanted = want;
        r->self->drains++;
    }
}

/* -------------------------------------------------------------------- dlq */

typedef struct {
    json_t *list;   /* dlq.list: the entries */
    s_find_t *want; /* dlq.replay / purge: the message looked for */
} s_dlq_walk_t;

/*  Walks the dead letters (of AGENCY, or all): lists the first MAX (w->list),
    or finds w->want's (every one read until it is found). *TOTAL (may be
    NULL): how many were read. */
static gbx_err_t s_each_dlq(gbx_control_t *self, const char *agency, s_dlq_walk_t *w, size_t max,
                            size_t *total)
{
    uint8_t prefix[GBX_ID_MAX + 1];
    size_t plen = 0;
    if (agency) {
        plen = strlen(agency);
        memcpy(prefix, agency, plen);
        prefix[plen++] = 0;
    }
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_new(self->o.store, GBX_KS_DLQ, plen ? prefix : NULL, plen, &it);
    if (rc != GBX_OK)
        return rc;
    size_t n = 0;
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it), n++) {
        if (!w->want && n >= max)
            break; /* listed enough: the metrics count them all */
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        const uint8_t *zero = memchr(k, 0, kl);
        gbx_qentry_t e;
        if (!zero || (size_t)(k + kl - zero) != 1 + GBX_STORE_SEQ_KEY_BYTES ||
            (size_t)(zero - k) > GBX_ID_MAX || gbx_qentry_decode(v, vl, &e) != GBX_OK)
            continue;
        char dest[GBX_ID_MAX + 1];
        memcpy(dest, k, (size_t)(zero - k));
        dest[zero - k] = 0;
        uint64_t seq = gbx_store_seq_from_key(zero + 1);
        if (w->want) {
            if (s_find_match(w->want, dest, seq, &e))
                break; /* a second: not unique */
            continue;
        }
        json_array_append_new(
            w->list,
            json_pack("{s:o, s:I, s:s, s:s, s:I, s:I, s:I, s:o, s:I}", "message_id",
                      s_hex(e.message_id, GBX_MSG_ID_BYTES), "seq", (json_int_t)seq, "from", e.from,
                      "to", dest, "attempts", (json_int_t)e.attempts, "deliveries",
                      (json_int_t)e.deliveries, "payload_bytes", (json_int_t)e.payload,
                      "accepted_at_ms",
                      e.accepted_ms ? json_integer((json_int_t)e.accepted_ms) : json_null(),
                      "expires_at_ms", (json_int_t)e.expires_at_ms));
    }
    if (total)
        *total = n;
    rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    return rc;
}

/*  The agency argument, if any: NULL, or an agency this node serves. */
static int s_agency_arg(const s_req_t *r, const char **out)
{
    *out = s_str_arg(r->args, "agency");
    if (!*out)
        return json_object_get(r->args, "agency") ? -1 : 0;
    const gbx_agency_t *a = gbx_registry_agency(r->self->o.registry, *out);
    return a && strcmp(a->node, r->self->o.node_id) == 0 ? 0 : -1;
}

static void s_dlq_list(const s_req_t *r)
{
    const char *agency = NULL;
    if (s_agency_arg(r, &agency) != 0) {
        s_fail(r, "BAD_REQUEST", "agency: an agency this node serves");
        return;
    }
    json_t *lim = json_object_get(r->args, "limit");
    json_int_t limit = lim ? json_integer_value(lim) : 100;
    if ((lim && !json_is_integer(lim)) || limit < 1 || limit > S_LIST_MAX) {
        s_fail(r, "BAD_REQUEST", "limit: 1 to 1000");
        return;
    }
    s_dlq_walk_t w = {.list = json_array()};
    gbx_err_t rc = s_each_dlq(r->self, agency, &w, (size_t)limit, NULL);
    if (rc != GBX_OK) {
        json_decref(w.list);
        s_fail(r, "INTERNAL", gbx_err_name(rc));
        return;
    }
    /* the total from the metrics (counted at the start, then kept): no walk
       of a large dead-letter queue on the loop */
    gbx_metrics_t *m = r->self->o.metrics;
    uint64_t total = 0;
    int slot = agency ? gbx_metrics_agency(m, agency) : -1;
    for (size_t i = 0; i < gbx_metrics_agency_count(m); i++)
        if (!agency || (int)i == slot)
            total += gbx_metrics_agency_get(m, (int)i, GBX_MA_DLQ);
    if (total < json_array_size(w.list))
        total = json_array_size(w.list);
    s_ok(r, json_pack("{s:o, s:I, s:b}", "dead_letters", w.list, "total", (json_int_t)total,
                      "truncated", total > json_array_size(w.list)));
}

/*  The dead letter TO/SEQ, if it is the message F looks for: one read. */
static gbx_err_t s_dlq_at(gbx_control_t *self, const char *to, uint64_t seq, s_find_t *f)
{
    uint8_t key[GBX_QUEUE_KEY_MAX], *v = NULL;
    size_t klen = 0, vlen = 0;
    gbx_err_t rc = gbx_store_queue_key(to, seq, key, sizeof key, &klen);
    if (rc == GBX_OK)
        rc = gbx_store_get(self->o.store, GBX_KS_DLQ, key, klen, &v, &vlen);
    gbx_qentry_t e;
    if (rc == GBX_OK && v && gbx_qentry_decode(v, vlen, &e) == GBX_OK)
        (void)s_find_match(f, to, seq, &e);
    free(v);
    return rc == GBX_E_ARG ? GBX_OK : rc; /* a bad "to": not found */
}

/*  dlq.replay and dlq.purge of one message: found (by its place, or by a
    walk that makes sure no other sender's message has the id), then a job
    through the dispatcher (a replayed message joins its queue's window). */
static void s_dlq_act(const s_req_t *r, gbx_job_kind_t kind)
{
    const char *to = s_str_arg(r->args, "to");
    json_t *seq = json_object_get(r->args, "seq");
    s_find_t f = {.found = 0};
    if (s_id_args(r, &f, "the dead letter") != 0)
        return;
    if (!!to != !!seq || (seq && (!json_is_integer(seq) || json_integer_value(seq) <= 0))) {
        s_fail(r, "BAD_REQUEST", "to and seq go together, as dlq.list shows them (one read)");
        return;
    }
    s_dlq_walk_t w = {.want = &f};
    gbx_err_t rc = to ? s_dlq_at(r->self, to, (uint64_t)json_integer_value(seq), &f)
                      : s_each_dlq(r->self, NULL, &w, 0, NULL);
    if (rc != GBX_OK) {
        s_fail(r, "INTERNAL", gbx_err_name(rc));
        return;
    }
    if (s_found_one(r, &f, "dead letter") != 0)
        return;
    gbx_job_t *job = gbx_job_new(kind);
    if (!job || r->rid_len > sizeof job->ctl_rid) {
        gbx_job_free(job);
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    s_give(r, job, f.dest, f.seq);
}

static void s_dlq_replay(const s_req_t *r)
{
    s_dlq_act(r, GBX_JOB_REPLAY);
}

static void s_dlq_purge(const s_req_t *r)
{
    s_dlq_act(r, GBX_JOB_PURGE);
}

/* ---------------------------------------------------------- messages.show */

typedef struct {
    gbx_control_t *self;
    gbx_job_t *job; /* QUERY: ctl_rid, ctl_tag; reply filled here */
    char hex[2 * GBX_MSG_ID_BYTES + 1];
    char from[GBX_ID_MAX + 1]; /* only that sender's message ("": any) */
    json_t *life;              /* the records found (the first S_LIFE_MAX) */
    json_t *senders;           /* the distinct senders among them */
    uint64_t found;            /* records found, all of them */
    char last[32];             /* the event of the last one that changed its state */
    char last_any[32];         /* the event of the last one */
} s_query_t;

/*  A record's key=value lines as a JSON object (values as text). */
static json_t *s_record_json(const uint8_t *rec, size_t len)
{
    json_t *o = json_object();
    const char *p = (const char *)rec, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(le - p));
        if (eq && eq > p) {
            char key[64];
            size_t kl = (size_t)(eq - p) < sizeof key - 1 ? (size_t)(eq - p) : sizeof key - 1;
            memcpy(key, p, kl);
            key[kl] = 0;
            json_object_set_new(o, key, json_stringn(eq + 1, (size_t)(le - eq - 1)));
        }
        p = le + 1;
    }
    return o;
}

/*  What became of it, from its last event. */
static const char *s_life_state(const char *event)
{
    static const struct {
        const char *event, *state;
    } map[] = {{"ACCEPTED", "queued"},
               {"HELD", "held for an approver"},
               {"HOLD_APPROVED", "queued"},
               {"DELIVERED", "delivered, not yet acknowledged"},
               {"UNSENT", "queued"},
               {"ACKED", "done: acknowledged by its serving agency"},
               {"EXPIRED", "expired"},
               {"DEAD_LETTERED", "dead-lettered"},
               {"REPLAYED", "queued (replayed)"},
               {"PURGED", "purged from the dead-letter queue"},
               {"HOLD_REJECTED", "refused by an approver"},
               {"HOLD_TIMEOUT", "refused: nobody decided in time"},
               {"REJECTED", "refused at admission"},
               {"DUPLICATE", "a resubmission, answered with its receipt"}};
    for (size_t i = 0; event && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].event, event) == 0)
            return map[i].state;
    return "unknown";
}

/*  Who sent the message a record is about: the authenticated agency
    (auth=) of an admission record, where from= is only what the header
    claimed (a SENDER_MISMATCH's record says from=<someone else>); from= of
    the others, which the node wrote from its stored message. NULL: none. */
static const char *s_sender(json_t *rec)
{
    const char *auth = json_string_value(json_object_get(rec, "auth"));
    return auth ? auth : json_string_value(json_object_get(rec, "from"));
}

static int s_life_add(void *arg, const uint8_t *rec, size_t len)
{
    s_query_t *q = arg;
    json_t *o = s_record_json(rec, len);
    /* the needle matched a line of its own; the field must say so too, and
       the record must name who sent it (a refused frame that never said
       cannot belong to anyone's message) */
    const char *id = json_string_value(json_object_get(o, "message_id"));
    const char *from = s_sender(o);
    if (!id || strcmp(id, q->hex) != 0 || !from || (q->from[0] && strcmp(from, q->from) != 0)) {
        json_decref(o);
        return 0;
    }
    int known = 0;
    size_t i;
    json_t *v;
    json_array_foreach(q->senders, i, v) known |= strcmp(json_string_value(v), from) == 0;
    if (!known && json_array_size(q->senders) < 16)
        json_array_append_new(q->senders, json_string(from));
    const char *event = json_string_value(json_object_get(o, "event"));
    snprintf(q->last_any, sizeof q->last_any, "%s", event ? event : "");
    /* a refused or duplicate resubmission does not change the message */
    if (event && strcmp(event, "REJECTED") != 0 && strcmp(event, "DUPLICATE") != 0)
        snprintf(q->last, sizeof q->last, "%s", event);
    q->found++;
    if (json_array_size(q->life) < S_LIFE_MAX)
        json_array_append_new(q->life, o);
    else
        json_decref(o);
    return 0; /* on to the end: a replay may come late */
}

/*  The query thread: reads the trail from its first kept record, keeps
    the records that name the message, and posts the answer. */
static void *s_query_run(void *arg)
{
    s_query_t *q = arg;
    gbx_control_t *self = q->self;
    /* a line of its own: a header's text field holding "message_id=..."
       cannot match (record values never hold a newline) */
    char needle[16 + sizeof q->hex];
    snprintf(needle, sizeof needle, "\nmessage_id=%s\n", q->hex);
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(self->o.store), &h);
    json_t *life = q->life = json_array();
    q->senders = json_array();
    uint64_t scanned = 0;
    gbx_err_t rc = gbx_trail_grep(self->o.store, h.first, needle, strlen(needle), s_life_add, q,
                                  &self->stopping, &scanned);
    int stopped = atomic_load(&self->stopping);
    json_t *answer;
    if (!q->from[0] && json_array_size(q->senders) > 1) { /* ids are unique per sender only */
        json_decref(life);
        char *who = json_dumps(q->senders, JSON_COMPACT);
        char detail[1200];
        snprintf(detail, sizeof detail, "several senders used that id: say which (from, one of %s)",
                 who ? who : "?");
        free(who);
        answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "NOT_UNIQUE", "detail", detail);
    } else if (rc != GBX_OK || stopped) {
        json_decref(life);
        answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", stopped ? "BUSY" : "INTERNAL",
                           "detail", stopped ? "gbxd is stopping" : gbx_err_name(rc));
    } else if (json_array_size(life) == 0) {
        json_decref(life);
        answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "NOT_FOUND", "detail",
                           "no record of that message on the audit trail");
    } else {
        const char *event = q->last[0] ? q->last : q->last_any;
        json_t *sender = json_array_get(q->senders, 0);
        answer =
            json_pack("{s:b, s:{s:s, s:O, s:s, s:s, s:o, s:I, s:b, s:I, s:I}}", "ok", 1, "data",
                      "message_id", q->hex, "from", sender ? sender : json_null(), "state",
                      s_life_state(event), "last_event", event, "records", life, "found",
                      (json_int_t)q->found, "truncated", q->found > json_array_size(life),
                      "scanned", (json_int_t)scanned, "first_kept", (json_int_t)h.first);
    }
    json_object_set_new(answer, "tag", json_integer((json_int_t)q->job->ctl_tag));
    char *text = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    json_decref(q->senders);
    q->job->reply = (uint8_t *)text;
    q->job->reply_len = text ? strlen(text) : 0;
    if (!self->o.post || self->o.post(self->o.arg, q->job) != GBX_OK)
        gbx_job_free(q->job); /* gbxd is gone: nobody to answer */
    free(q);
    pthread_mutex_lock(&self->mx);
    self->queries--;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mx);
    return NULL;
}

static void s_messages_show(const s_req_t *r)
{
    gbx_control_t *self = r->self;
    const char *id = s_str_arg(r->args, "id");
    uint8_t bin[GBX_MSG_ID_BYTES];
    size_t bin_len = 0;
    if (!id || sodium_hex2bin(bin, sizeof bin, id, strlen(id), NULL, &bin_len, NULL) != 0 ||
        bin_len != GBX_MSG_ID_BYTES) {
        s_fail(r, "BAD_REQUEST", "id: the message id, 32 hex digits");
        return;
    }
    s_query_t *q = calloc(1, sizeof *q);
    gbx_job_t *job = gbx_job_new(GBX_JOB_QUERY);
    if (!q || !job || r->rid_len > sizeof job->ctl_rid || !self->o.post) {
        free(q);
        gbx_job_free(job);
        s_fail(r, "BUSY", "out of memory");
        return;
    }
    sodium_bin2hex(q->hex, sizeof q->hex, bin, sizeof bin);
    const char *from = s_str_arg(r->args, "from");
    if (from && (strlen(from) > GBX_ID_MAX || !*from)) {
        free(q);
        gbx_job_free(job);
        s_fail(r, "BAD_REQUEST", "from: an agency id");
        return;
    }
    snprintf(q->from, sizeof q->from, "%s", from ? from : "");
    q->self = self;
    q->job = job;
    memcpy(job->ctl_rid, r->rid, r->rid_len);
    job->ctl_rid_len = r->rid_len;
    job->ctl_tag = (uint64_t)r->tag;
    snprintf(job->by, sizeof job->by, "%s", r->op);
    pthread_mutex_lock(&self->mx);
    int busy = self->queries >= S_QUERIES_MAX || atomic_load(&self->stopping);
    pthread_t t;
    pthread_attr_t attr;
    if (!busy) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        busy = pthread_create(&t, &attr, s_query_run, q) != 0;
        pthread_attr_destroy(&attr);
        if (!busy)
            self->queries++;
    }
    pthread_mutex_unlock(&self->mx);
    if (busy) {
        free(q);
        gbx_job_free(job);
        s_fail(r, "BUSY", "two message look-ups are already running; try again");
    }
}

/* ---------------------------------------------------------------- requests */

typedef struct {
    const char *cmd;
    gbx_role_t least; /* the lowest role that may; admin may all */
    gbx_role_t also;  /* another role that may (or NONE) */
    void (*fn)(const s_req_t *r);
} s_cmd_t;

static const s_cmd_t s_cmds[] = {
    {"status", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_status},
    {"policy.show", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_policy_show},
    {"policy.check", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_policy_check},
    {"policy.reload", GBX_ROLE_OPERATOR, GBX_ROLE_OPERATOR, s_policy_reload},
    {"holds.list", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_holds_list},
    {"holds.approve", GBX_ROLE_APPROVER, GBX_ROLE_APPROVER, s_holds_approve},
    {"holds.reject", GBX_ROLE_APPROVER, GBX_ROLE_APPROVER, s_holds_reject},
    {"audit.status", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_audit_status},
    {"audit.prune", GBX_ROLE_ADMIN, GBX_ROLE_ADMIN, s_audit_prune},
    {"audit.cosign", GBX_ROLE_OPERATOR, GBX_ROLE_OPERATOR, s_audit_cosign},
    {"agencies", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_agencies},
    {"queues", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_queues},
    {"peers", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_peers},
    {"config.show", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_config_show},
    {"messages.show", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_messages_show},
    {"dlq.list", GBX_ROLE_VIEWER, GBX_ROLE_NONE, s_dlq_list},
    {"dlq.replay", GBX_ROLE_OPERATOR, GBX_ROLE_OPERATOR, s_dlq_replay},
    {"dlq.purge", GBX_ROLE_ADMIN, GBX_ROLE_ADMIN, s_dlq_purge},
    {"drain", GBX_ROLE_OPERATOR, GBX_ROLE_OPERATOR, s_drain},
};

/*  A refused command that would have changed something is on the audit
    trail (CONTROL_REFUSED by= role= cmd= refused=): who tried
    matters to an auditor. At most one record per operator and command each
    S_DENY_MS, saying how many were refused since the last (a viewer cannot
    flood the trail); at most S_DENIED_MAX such jobs at the writer.
    Read-only commands are only logged. The number of refusals this call's
    record covers (read-only: 1), or 0 when it was only counted. */
static uint64_t s_deny_audit(gbx_control_t *self, const s_req_t *r)
{
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0]; i++)
        if (strcmp(s_cmds[i].cmd, r->cmd) == 0 && s_cmds[i].least == GBX_ROLE_VIEWER)
            return 1;
    /* the pair's slot, or the least recently used one */
    uint64_t now = s_mono_ms();
    s_denial_t *d = &self->denials[0];
    for (size_t i = 0; i < S_DENIALS; i++) {
        s_denial_t *c = &self->denials[i];
        if (c->op[0] && strcmp(c->op, r->op) == 0 && strcmp(c->cmd, r->cmd) == 0) {
            d = c;
            break;
        }
        if (c->last_ms < d->last_ms)
            d = c;
    }
    if (strcmp(d->op, r->op) != 0 || strcmp(d->cmd, r->cmd) != 0) {
        snprintf(d->op, sizeof d->op, "%s", r->op);
        snprintf(d->cmd, sizeof d->cmd, "%s", r->cmd);
        d->last_ms = 0;
        d->refused = 0;
    }
    d->refused++;
    if ((d->last_ms && now < d->last_ms + S_DENY_MS) || self->denied_jobs >= S_DENIED_MAX)
        return 0; /* counted: the next record says how many */
    gbx_job_t *job = gbx_job_new(GBX_JOB_DENIED);
    if (!job)
        return 0;
    snprintf(job->by, sizeof job->by, "%s", r->op);
    snprintf(job->dest, sizeof job->dest, "%s",
             gbx_role_name(r->role) ? gbx_role_name(r->role) : "-");
    job->comment = strdup(r->cmd);
    job->count = d->refused;
    if (!job->comment || !self->o.writer_job || self->o.writer_job(self->o.arg, job) != GBX_OK) {
        gbx_job_free(job);
        return 0;
    }
    self->denied_jobs++;
    d->last_ms = now;
    uint64_t n = d->refused;
    d->refused = 0;
    return n;
}

/*  Viewer commands: any role. Others: the one role named, and admin. */
static int s_allowed(const s_cmd_t *c, gbx_role_t role)
{
    if (role == GBX_ROLE_ADMIN)
        return 1;
    if (c->also == GBX_ROLE_NONE)
        return role >= c->least;
    return role == c->also;
}

void gbx_control_request(gbx_control_t *self, const uint8_t *rid, size_t rid_len, const char *op_id,
                         const char *role, const uint8_t *body, size_t len)
{
    if (!self || !rid)
        return;
    json_error_t jerr;
    json_t *req = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_int_t tag = json_integer_value(json_object_get(req, "tag"));
    s_req_t r = {.self = self,
                 .rid = rid,
                 .rid_len = rid_len,
                 .tag = tag,
                 .op = op_id ? op_id : "",
                 .role = gbx_role_parse(role)};
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    r.args = json_object_get(req, "args");
    if (!req || !json_is_object(req) || !cmd || (r.args && !json_is_object(r.args))) {
        s_fail(&r, "BAD_REQUEST", req ? "expected {\"tag\", \"cmd\", \"args\"}" : jerr.text);
        json_decref(req);
        return;
    }
    json_t *empty = NULL;
    if (!r.args)
        r.args = empty = json_object();
    const s_cmd_t *c = NULL;
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0] && !c; i++)
        if (strcmp(s_cmds[i].cmd, cmd) == 0)
            c = &s_cmds[i];
    r.cmd = c ? c->cmd : "unknown";
    if (!c) {
        s_fail(&r, "BAD_REQUEST", "unknown command");
    } else if (r.role == GBX_ROLE_NONE || !r.op[0] || !s_allowed(c, r.role)) {
        /* one warning (and record) per operator and command each 10 s,
           with how many were refused: a flood does not flood the log */
        char op[GBX_ID_MAX + 1];
        uint64_t n = s_deny_audit(self, &r);
        gbx_log(n ? GBX_LOG_WARN : GBX_LOG_DEBUG, "GBX-CONTROL-REFUSED",
                "operator=%s role=%s cmd=%s refused=%llu", gbx_log_clean(r.op, op, sizeof op),
                gbx_role_name(r.role) ? gbx_role_name(r.role) : "-", c->cmd,
                (unsigned long long)(n ? n : 1));
        s_fail(&r, "NOT_AUTHORIZED", "your role may not do this");
    } else {
        c->fn(&r);
    }
    json_decref(empty);
    json_decref(req);
}

gbx_err_t gbx_control_new(const gbx_control_opts_t *opts, gbx_control_t **out)
{
    if (!opts || !out || !opts->registry || !opts->store || !opts->dispatch || !opts->send ||
        !opts->node_id)
        return GBX_E_ARG;
    gbx_control_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->o = *opts;
    self->started_mono_ms = s_mono_ms();
    self->started_wall_ms = s_real_ms();
    pthread_mutex_init(&self->mx, NULL);
    pthread_cond_init(&self->cv, NULL);
    *out = self;
    return GBX_OK;
}

void gbx_control_stop(gbx_control_t *self)
{
    if (!self)
        return;
    atomic_store(&self->stopping, 1);
    pthread_mutex_lock(&self->mx);
    while (self->queries > 0)
        pthread_cond_wait(&self->cv, &self->mx);
    pthread_mutex_unlock(&self->mx);
}

void gbx_control_destroy(gbx_control_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_control_t *self = *self_p;
    gbx_control_stop(self);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mx);
    free(self);
    *self_p = NULL;
}
