/*  ingress.c: owns the admission of submitted messages: checks, dedupe,
    policy call site, the one atomic store batch and the receipt. Implements
    proto/spec/5-adapter.md section 6.1 (with 2-envelope.md sections 7, 8). */
#include "ingress.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <uthash.h>

#include "audit.h"
#include "gbx/receipt.h"
#include "queue.h"

#define S_REASON_SLOTS   1000 /* wire codes are < 1000 (gbx/err.h) */
#define S_VCACHE_DEFAULT 4096

/*  The queue depth of one destination ("Queue depth" in ingress.h). */
typedef struct {
    char dest[GBX_ID_MAX + 1];
    uint64_t messages;
    uint64_t bytes;
} s_queue_t;

/*  A new message of the current group, by dedupe key. */
typedef struct {
    uint8_t key[GBX_INGRESS_DEDUPE_KEY_MAX];
    size_t klen;
    gbx_submission_t *sub;
    UT_hash_handle hh;
} s_pending_t;

/*  One policy counter during a group: read once from the store, added to
    in memory by every message of the group, written once at seal. */
typedef struct {
    char key[GBX_POLICY_KEY_MAX + 1];
    uint64_t value;
    int dirty;
    UT_hash_handle hh;
} s_count_t;

struct gbx_ingress {
    gbx_ingress_opts_t o;
    char node_id[GBX_ID_MAX + 1];
    gbx_checker_t *checker; /* for gbx_ingress_submit */
    gbx_ingress_stats_t st;
    uint64_t by_reason[S_REASON_SLOTS];
    s_queue_t *queues; /* one per destination seen; linear search (agencies are few) */
    size_t nqueues, cap_queues;
    s_pending_t *pending; /* the group's new messages (uthash) */
    s_count_t *counts;    /* the group's policy counters (uthash), written at seal */
    gbx_batch_t *batch;   /* the group's, while a decision reads counters */
    int draining;         /* the writer's: new messages get DRAINING */
    _Atomic int disk_low; /* any thread's: new messages get RETRY_LATER */
};

struct gbx_checker {
    const gbx_registry_t *registry;
    uint64_t max_payload_bytes;
    gbx_vcache_t *vcache;
};

void gbx_ingress_opts_init(gbx_ingress_opts_t *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

static uint64_t s_realtime(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  When a message held now is refused if no approver decided: after the
    hold timeout, or when it expires if that is sooner. */
static uint64_t s_hold_until(const gbx_ingress_t *self, const gbx_submission_t *s,
                             const gbx_header_t *h)
{
    uint64_t t = self->o.hold_timeout_ms ? self->o.hold_timeout_ms : GBX_INGRESS_HOLD_TIMEOUT_MS;
    return s->now + t < h->expires_at_ms ? s->now + t : h->expires_at_ms;
}

/*  Policy counter KEY of the group (ARG: the ingress): from memory when a
    message of the group touched it, else read through the group's batch
    once and kept. Hot keys (an exporter's year) would otherwise be read and
    written once per message. */
static gbx_err_t s_counter_get(gbx_ingress_t *self, const char *key, s_count_t **out)
{
    s_count_t *c = NULL;
    HASH_FIND_STR(self->counts, key, c);
    if (!c) {
        uint8_t *v = NULL;
        size_t vlen = 0;
        gbx_err_t rc = gbx_batch_get(self->batch, GBX_KS_COUNTERS, key, strlen(key), &v, &vlen);
        if (rc != GBX_OK)
            return rc;
        if (!(c = calloc(1, sizeof *c))) {
            free(v);
            return GBX_E_NOMEM;
        }
        snprintf(c->key, sizeof c->key, "%s", key);
        for (size_t i = 0; v && vlen == 8 && i < 8; i++)
            c->value = c->value << 8 | v[i];
        free(v);
        HASH_ADD_STR(self->counts, key, c);
    }
    *out = c;
    return GBX_OK;
}

static gbx_err_t s_counter(void *arg, const char *key, uint64_t *value)
{
    s_count_t *c = NULL;
    gbx_err_t rc = s_counter_get(arg, key, &c);
    *value = rc == GBX_OK ? c->value : 0;
    return rc;
}

/*  Adds the decision's counts to the group's counters (in memory: the
    message is stored). Every key was read by the decision or is read
    here; GBX_E_NOMEM leaves nothing added. */
static gbx_err_t s_count(gbx_ingress_t *self, const gbx_decision_t *d)
{
    s_count_t *c[GBX_POLICY_COUNTS_MAX];
    for (size_t i = 0; i < d->n_counts; i++) {
        gbx_err_t rc = s_counter_get(self, d->counts[i].key, &c[i]);
        if (rc != GBX_OK)
            return rc;
    }
    for (size_t i = 0; i < d->n_counts; i++) {
        uint64_t add = d->counts[i].add;
        c[i]->value = add > UINT64_MAX - c[i]->value ? UINT64_MAX : c[i]->value + add;
        c[i]->dirty = 1;
    }
    return GBX_OK;
}

/*  Puts the group's changed counters into BATCH. */
static gbx_err_t s_counts_put(gbx_ingress_t *self, gbx_batch_t *batch)
{
    s_count_t *c, *tmp;
    HASH_ITER(hh, self->counts, c, tmp)
    {
        if (!c->dirty)
            continue;
        uint8_t v[8];
        for (size_t k = 0; k < 8; k++)
            v[k] = (uint8_t)(c->value >> (56 - 8 * k));
        gbx_err_t rc = gbx_batch_put(batch, GBX_KS_COUNTERS, c->key, strlen(c->key), v, sizeof v);
        if (rc != GBX_OK)
            return rc;
    }
    return GBX_OK;
}

/* ----------------------------------------------------------- queue depth */

/*  DEST's counters (DLEN bytes, not NUL-terminated), or NULL. */
static s_queue_t *s_queue_find(const gbx_ingress_t *self, const char *dest, size_t dlen)
{
    for (size_t i = 0; i < self->nqueues; i++)
        if (strlen(self->queues[i].dest) == dlen && memcmp(self->queues[i].dest, dest, dlen) == 0)
            return &self->queues[i];
    return NULL;
}

/*  DEST's counters, created at 0 when new. NULL: out of memory or DLEN out
    of range. The pointer is valid until the next s_queue_get. */
static s_queue_t *s_queue_get(gbx_ingress_t *self, const char *dest, size_t dlen)
{
    s_queue_t *q = s_queue_find(self, dest, dlen);
    if (q)
        return q;
    if (dlen == 0 || dlen > GBX_ID_MAX)
        return NULL;
    if (self->nqueues == self->cap_queues) {
        size_t cap = self->cap_queues ? 2 * self->cap_queues : 16;
        s_queue_t *nq = realloc(self->queues, cap * sizeof *nq);
        if (!nq)
            return NULL;
        self->queues = nq;
        self->cap_queues = cap;
    }
    q = &self->queues[self->nqueues++];
    memset(q, 0, sizeof *q);
    memcpy(q->dest, dest, dlen);
    return q;
}

/*  Rebuilds the counters from the queues keyspace (key = dest 0x00 be64
    seq, value = be64 stored bytes; another value: the size of messages[seq]). */
/*  Counts the entries of KS (queues or held) into the destinations'. */
static gbx_err_t s_queue_count(gbx_ingress_t *self, gbx_keyspace_t ks)
{
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_new(self->o.store, ks, NULL, 0, &it);
    if (rc != GBX_OK)
        return rc;
    for (; rc == GBX_OK && gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        if (klen < 2 + GBX_STORE_SEQ_KEY_BYTES || k[klen - GBX_STORE_SEQ_KEY_BYTES - 1] != 0) {
            rc = GBX_E_STATE; /* not a queue key: the store is damaged */
            break;
        }
        size_t dlen = klen - GBX_STORE_SEQ_KEY_BYTES - 1;
        uint64_t bytes = 0;
        gbx_qentry_t qe;
        uint64_t until = 0;
        if (ks == GBX_KS_HELD ? gbx_held_decode(v, vlen, &until, &qe) == GBX_OK
                              : gbx_qentry_decode(v, vlen, &qe) == GBX_OK) {
            bytes = qe.size;
        } else {
            uint8_t *m = NULL;
            size_t mlen = 0;
            rc = gbx_store_get(self->o.store, GBX_KS_MESSAGES, k + dlen + 1,
                               GBX_STORE_SEQ_KEY_BYTES, &m, &mlen);
            free(m);
            bytes = mlen;
            if (rc != GBX_OK)
                break;
        }
        s_queue_t *q = s_queue_get(self, (const char *)k, dlen);
        if (!q) {
            rc = dlen > GBX_ID_MAX ? GBX_E_STATE : GBX_E_NOMEM;
            break;
        }
        q->messages++;
        q->bytes += bytes;
    }
    if (rc == GBX_OK)
        rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    return rc;
}

void gbx_ingress_queue_depth(const gbx_ingress_t *self, const char *dest, uint64_t *messages,
                             uint64_t *bytes)
{
    const s_queue_t *q = self && dest ? s_queue_find(self, dest, strlen(dest)) : NULL;
    if (messages)
        *messages = q ? q->messages : 0;
    if (bytes)
        *bytes = q ? q->bytes : 0;
}

gbx_err_t gbx_ingress_enqueued(gbx_ingress_t *self, const char *dest, uint64_t bytes)
{
    if (!self || !dest)
        return GBX_E_ARG;
    s_queue_t *q = s_queue_get(self, dest, strlen(dest));
    if (!q)
        return GBX_E_NOMEM;
    q->messages++;
    q->bytes += bytes;
    return GBX_OK;
}

int gbx_ingress_set_draining(gbx_ingress_t *self, int on)
{
    if (!self)
        return 0;
    int was = self->draining;
    self->draining = on ? 1 : 0;
    return was;
}

void gbx_ingress_set_disk_low(gbx_ingress_t *self, int low)
{
    if (self)
        atomic_store_explicit(&self->disk_low, low ? 1 : 0, memory_order_relaxed);
}

gbx_err_t gbx_ingress_dequeued(gbx_ingress_t *self, const char *dest, uint64_t bytes)
{
    if (!self || !dest)
        return GBX_E_ARG;
    s_queue_t *q = s_queue_find(self, dest, strlen(dest));
    if (!q || q->messages == 0)
        return GBX_E_STATE;
    q->messages--;
    q->bytes = q->bytes > bytes ? q->bytes - bytes : 0;
    if (q->messages == 0)
        q->bytes = 0;
    return GBX_OK;
}

/* ------------------------------------------------------------ life cycle */

gbx_err_t gbx_ingress_new(const gbx_ingress_opts_t *opts, gbx_ingress_t **out)
{
    if (!opts || !out || !opts->store || !opts->registry || !opts->node || !opts->node_id ||
        !gbx_id_valid(opts->node_id) || opts->max_ttl_ms == 0 ||
        opts->max_payload_bytes > GBX_PAYLOAD_MAX)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_ingress_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->o = *opts;
    snprintf(self->node_id, sizeof self->node_id, "%s", opts->node_id);
    self->o.node_id = self->node_id;
    if (self->o.max_payload_bytes == 0)
        self->o.max_payload_bytes = GBX_PAYLOAD_MAX;
    if (!self->o.clock)
        self->o.clock = s_realtime;
    if (self->o.retry_after_ms == 0)
        self->o.retry_after_ms = GBX_INGRESS_RETRY_AFTER_DEFAULT_MS;
    gbx_err_t rc = gbx_checker_new(&self->o, &self->checker);
    if (rc == GBX_OK)
        rc = s_queue_count(self, GBX_KS_QUEUES);
    if (rc == GBX_OK) /* a held message counts where it waits to go */
        rc = s_queue_count(self, GBX_KS_HELD);
    if (rc != GBX_OK) {
        gbx_ingress_destroy(&self);
        return rc;
    }
    *out = self;
    return GBX_OK;
}

const gbx_policy_t *gbx_ingress_policy(const gbx_ingress_t *self)
{
    return self ? self->o.policy : NULL;
}

gbx_policy_t *gbx_ingress_set_policy(gbx_ingress_t *self, gbx_policy_t *policy)
{
    if (!self)
        return NULL;
    gbx_policy_t *old = self->o.policy;
    self->o.policy = policy;
    return old;
}

void gbx_ingress_destroy(gbx_ingress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_ingress_group_end(*self_p);
    gbx_checker_destroy(&(*self_p)->checker);
    free((*self_p)->queues);
    free(*self_p);
    *self_p = NULL;
}

void gbx_ingress_stats(const gbx_ingress_t *self, gbx_ingress_stats_t *out)
{
    if (!self || !out)
        return;
    *out = self->st;
    gbx_checker_stats(self->checker, &out->sig_verified, &out->sig_cache_hits);
}

uint64_t gbx_ingress_rejections(const gbx_ingress_t *self, gbx_err_t reason)
{
    if (!self || (int)reason < 0 || (int)reason >= S_REASON_SLOTS)
        return 0;
    return self->by_reason[reason];
}

gbx_err_t gbx_ingress_dedupe_key(const char *from, const uint8_t message_id[GBX_MSG_ID_BYTES],
                                 uint8_t *out, size_t *len)
{
    if (!from || !message_id || !out || !len)
        return GBX_E_ARG;
    size_t fl = strlen(from);
    if (fl == 0 || fl > GBX_ID_MAX)
        return GBX_E_ARG;
    memcpy(out, from, fl);
    out[fl] = 0;
    memcpy(out + fl + 1, message_id, GBX_MSG_ID_BYTES);
    *len = fl + 1 + GBX_MSG_ID_BYTES;
    return GBX_OK;
}

/* ------------------------------------------------------------ messages */

/*  Bytes of the messages value of F: what the queue limits count. */
static uint64_t s_message_size(const gbx_frame_t *f)
{
    return 4u + (uint64_t)gbx_envelope_size(gbx_frame_envelope(f)) + gbx_frame_payload_size(f);
}

/*  The messages value: be32(envelope len) || envelope || payload parts. */
static gbx_err_t s_message_value(const gbx_frame_t *f, uint8_t **out, size_t *len)
{
    const gbx_envelope_t *env = gbx_frame_envelope(f);
    size_t elen = gbx_envelope_size(env);
    uint64_t size = s_message_size(f);
    if (size > SIZE_MAX)
        return GBX_E_NOMEM;
    size_t total = (size_t)size;
    uint8_t *v = malloc(total);
    if (!v)
        return GBX_E_NOMEM;
    v[0] = (uint8_t)(elen >> 24);
    v[1] = (uint8_t)(elen >> 16);
    v[2] = (uint8_t)(elen >> 8);
    v[3] = (uint8_t)elen;
    gbx_envelope_pack(env, v + 4);
    size_t np = 0, off = 4 + elen;
    const gbx_part_t *pp = gbx_frame_payload(f, &np);
    for (size_t i = 0; i < np; i++) {
        if (pp[i].len)
            memcpy(v + off, pp[i].data, pp[i].len);
        off += pp[i].len;
    }
    *out = v;
    *len = total;
    return GBX_OK;
}

/* --------------------------------------------------------- submissions */

void gbx_submission_init(gbx_submission_t *s)
{
    memset(s, 0, sizeof *s);
}

void gbx_submission_clear(gbx_submission_t *s)
{
    if (!s)
        return;
    gbx_frame_destroy(&s->frame);
    free(s->receipt);
    gbx_submission_init(s);
}

static const gbx_envelope_t *s_env(const gbx_submission_t *s)
{
    return s->frame ? gbx_frame_envelope(s->frame) : NULL;
}

/* --------------------------------------------------- stage 1: the checker */

gbx_err_t gbx_checker_new(const gbx_ingress_opts_t *opts, gbx_checker_t **out)
{
    if (!opts || !out || !opts->registry || opts->max_payload_bytes > GBX_PAYLOAD_MAX)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_checker_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->registry = opts->registry;
    self->max_payload_bytes = opts->max_payload_bytes ? opts->max_payload_bytes : GBX_PAYLOAD_MAX;
    gbx_err_t rc =
        gbx_vcache_new(opts->vcache_slots ? opts->vcache_slots : S_VCACHE_DEFAULT, &self->vcache);
    if (rc != GBX_OK) {
        free(self);
        return rc;
    }
    *out = self;
    return GBX_OK;
}

void gbx_checker_destroy(gbx_checker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_vcache_destroy(&(*self_p)->vcache);
    free(*self_p);
    *self_p = NULL;
}

void gbx_checker_stats(const gbx_checker_t *self, uint64_t *verified, uint64_t *hits)
{
    gbx_vcache_stats(self ? self->vcache : NULL, verified, hits);
}

static gbx_err_t s_check(gbx_checker_t *self, const char *auth, const gbx_part_t *parts, size_t n,
                         gbx_submission_t *s)
{
    gbx_frame_fail_t fail;
    memset(&fail, 0, sizeof fail);
    /* framing and envelope steps 1 to 6 */
    gbx_err_t rc = gbx_frame_decode_at(parts, n, GBX_FRAME_AT_NODE, &s->frame, &fail);
    s->tag = fail.tag;
    if (fail.message_id_len == GBX_MSG_ID_BYTES) {
        memcpy(s->msg_id, fail.message_id, GBX_MSG_ID_BYTES);
        s->msg_id_len = GBX_MSG_ID_BYTES;
    }
    if (rc != GBX_OK)
        return rc;
    if (gbx_frame_kind(s->frame) != GBX_FRAME_SUBMIT) {
        s->detail = "not a submit";
        return GBX_E_MALFORMED;
    }
    const gbx_envelope_t *env = s_env(s);
    gbx_envelope_header_hash(env, s->header_hash);
    const gbx_header_t *h = gbx_envelope_header(env);
    if (s->msg_id_len == 0 && h->message_id.len == GBX_MSG_ID_BYTES) {
        memcpy(s->msg_id, h->message_id.data, GBX_MSG_ID_BYTES);
        s->msg_id_len = GBX_MSG_ID_BYTES;
    }
    /* step 6, the receiver's own limit */
    if (h->payload_length > self->max_payload_bytes)
        return GBX_E_PAYLOAD_TOO_LARGE;
    /* step 7 */
    if (strcmp(h->from_agency, auth) != 0) {
        s->detail = "from_agency is not the authenticated agency";
        return GBX_E_SENDER_MISMATCH;
    }
    const gbx_agency_t *sender = gbx_registry_agency(self->registry, h->from_agency);
    if (!sender)
        return GBX_E_UNKNOWN_AGENCY;
    /* steps 8 to 10; the reason is all the peer learns */
    rc = gbx_envelope_verify(env, &sender->pub, self->vcache);
    if (rc != GBX_OK)
        return rc;
    /* steps 11, 12 */
    return gbx_frame_check_payload(s->frame);
}

gbx_err_t gbx_checker_run(gbx_checker_t *self, const char *auth, const gbx_part_t *parts, size_t n,
                          gbx_submission_t *s)
{
    if (!self || !auth || (!parts && n) || !s)
        return GBX_E_ARG;
    snprintf(s->auth, sizeof s->auth, "%s", auth);
    gbx_err_t rc = s_check(self, auth, parts, n, s);
    if (rc == GBX_E_NOMEM || rc == GBX_E_CRYPTO_INIT || !gbx_err_on_wire(rc))
        rc = GBX_E_INTERNAL_ERROR;
    s->reason = rc;
    return rc;
}

/* ------------------------------------------------ stage 2: admission */

/*  The audit record of S's decision (format: ingress.h). */
/*  KEY=<the .proto name of enum value V> ("-" for an empty string, "?" for an unknown value). */
static void s_audit_enum(gbx_audit_t *a, const char *key, const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    gbx_audit_str(a, key, ev ? ev->name : "?");
}

/*  KEY=VALUE when VALUE is not empty (a header's optional references). */
static void s_audit_opt(gbx_audit_t *a, const char *key, const char *value)
{
    if (value && *value)
        gbx_audit_str(a, key, value);
}

static gbx_err_t s_audit(gbx_ingress_t *self, const gbx_submission_t *s, const char *event,
                         gbx_err_t reason, gbx_batch_t *batch)
{
    gbx_audit_t a;
    gbx_audit_begin(&a, event, s->now);
    gbx_audit_str(&a, "reason", gbx_err_name(reason));
    gbx_audit_str(&a, "auth", s->auth);
    if (s->seq && reason == GBX_OK && !s->duplicate)
        gbx_audit_u64(&a, "seq", s->seq);
    if (s->msg_id_len == GBX_MSG_ID_BYTES)
        gbx_audit_hex(&a, "message_id", s->msg_id, GBX_MSG_ID_BYTES);
    const gbx_envelope_t *env = s_env(s);
    if (env) {
        const gbx_header_t *h = gbx_envelope_header(env);
        gbx_audit_hex(&a, "header_hash", s->header_hash, GBX_HASH_BYTES);
        gbx_audit_str(&a, "from", h->from_agency);
        gbx_audit_str(&a, "to", h->to_agency);
        gbx_audit_str(&a, "service", h->service_code);
        gbx_audit_u64(&a, "service_version", h->service_version);
        const char *cls = gbx_data_class_name(h->data_class);
        gbx_audit_str(&a, "class", cls ? cls : "?");
        s_audit_enum(&a, "kind", &gbx__v1__message_kind__descriptor, (int)h->kind);
        s_audit_enum(&a, "marking", &gbx__v1__hk_marking__descriptor, (int)h->hk_marking);
        s_audit_opt(&a, "purpose", h->purpose_code);
        s_audit_enum(&a, "route", &gbx__v1__legal_route__descriptor, (int)h->legal_route);
        s_audit_opt(&a, "route_ref", h->legal_route_ref);
        s_audit_enum(&a, "consent", &gbx__v1__consent_type__descriptor, (int)h->consent_type);
        s_audit_opt(&a, "consent_ref", h->consent_ref);
        s_audit_opt(&a, "case_ref", h->case_ref);
        s_audit_opt(&a, "end_user", h->end_user_ref);
        s_audit_opt(&a, "impact_ref", h->impact_assessment_ref);
        s_audit_opt(&a, "agreement_ref", h->agreement_ref);
        s_audit_opt(&a, "release_ref", h->release_authority_ref);
        gbx_audit_u64(&a, "subjects", h->subject_count);
        if (h->correlation_id.len == GBX_MSG_ID_BYTES)
            gbx_audit_hex(&a, "correlation_id", h->correlation_id.data, GBX_MSG_ID_BYTES);
        gbx_audit_u64(&a, "created_at_ms", h->created_at_ms);
        gbx_audit_u64(&a, "expires_at_ms", h->expires_at_ms);
        gbx_audit_u64(&a, "payload_length", h->payload_length);
        gbx_audit_hex(&a, "payload_hash", h->payload_hash.data, h->payload_hash.len);
    }
    if (s->policy_done) {
        gbx_audit_str(&a, "rule_id", s->rule_id);
        gbx_audit_u64(&a, "rule_version", s->rule_version);
        gbx_audit_hex(&a, "policy_hash", s->policy_hash, GBX_HASH_BYTES);
        if (s->why[0]) {
            gbx_audit_str(&a, "decision", reason == GBX_OK ? gbx_outcome_name(s->outcome) : "DENY");
            gbx_audit_text(&a, "why", s->why);
        }
    }
    return gbx_audit_put(batch, &a);
}

/*  Steps 13 to 17 for S, which passed stage 1. GBX_OK: to be stored. */
static gbx_err_t s_decide(gbx_ingress_t *self, gbx_submission_t *s, gbx_batch_t *batch,
                          const uint8_t *dkey, size_t dklen, gbx_decision_t *dec)
{
    const gbx_envelope_t *env = s_env(s);
    const gbx_header_t *h = gbx_envelope_header(env);
    /* step 13: dedupe, this group first, then the store through the batch */
    s_pending_t *p = NULL;
    HASH_FIND(hh, self->pending, dkey, dklen, p);
    if (p) {
        s->duplicate = 1;
        s->dup_of = p->sub;
        return GBX_E_DUPLICATE;
    }
    uint8_t *old = NULL;
    size_t old_len = 0;
    gbx_err_t rc = gbx_batch_get(batch, GBX_KS_DEDUPE, dkey, dklen, &old, &old_len);
    if (rc != GBX_OK)
        return rc == GBX_E_NOMEM ? GBX_E_INTERNAL_ERROR : GBX_E_STORE_FAILED;
    if (old) {
        s->duplicate = 1;
        s->receipt = old;
        s->receipt_len = old_len;
        return GBX_E_DUPLICATE;
    }
    /* the node takes no new message while it drains or is short of disk
       (a duplicate, above, still gets its receipt: nothing is written) */
    if (self->draining) {
        s->detail = "the node is draining for maintenance";
        return GBX_E_DRAINING;
    }
    if (atomic_load_explicit(&self->disk_low, memory_order_relaxed)) {
        s->detail = "the node is short of disk space";
        return GBX_E_RETRY_LATER;
    }
    /* step 14: destination: an agency this node serves (the peer link to
       the other side's node is the federation issue; until then a message
       for an agency of another node would wait forever) */
    const gbx_agency_t *dest = gbx_registry_agency(self->o.registry, h->to_agency);
    if (!dest || strcmp(dest->node, self->node_id) != 0) {
        s->detail = dest ? "no peer link to that agency's node" : NULL;
        return GBX_E_UNKNOWN_DESTINATION;
    }
    /* step 15: times */
    if (s->now >= h->expires_at_ms)
        return GBX_E_EXPIRED;
    if (h->created_at_ms > s->now + self->o.clock_skew_ms)
        return GBX_E_NOT_YET_VALID;
    if (h->expires_at_ms - h->created_at_ms > self->o.max_ttl_ms)
        return GBX_E_TTL_TOO_LONG;
    /* step 16: policy -- THE call site of the policy module */
    s->policy_done = 1;
    s->outcome = GBX_OUTCOME_ALLOW;
    if (!self->o.policy) {
        snprintf(s->rule_id, sizeof s->rule_id, "%s", GBX_INGRESS_ALLOW_ALL_RULE);
        crypto_generichash(s->policy_hash, GBX_HASH_BYTES,
                           (const unsigned char *)GBX_INGRESS_ALLOW_ALL_RULE,
                           strlen(GBX_INGRESS_ALLOW_ALL_RULE), NULL, 0);
        dec->n_counts = 0;
    } else {
        self->batch = batch;
        rc = gbx_policy_decide(self->o.policy, self->o.registry, h, s->now, s_counter, self, dec);
        if (rc != GBX_OK)
            return rc == GBX_E_NOMEM ? GBX_E_INTERNAL_ERROR : GBX_E_STORE_FAILED;
        snprintf(s->rule_id, sizeof s->rule_id, "%s", dec->rule_id);
        s->rule_version = dec->rule_version;
        memcpy(s->policy_hash, dec->policy_hash, GBX_HASH_BYTES);
        snprintf(s->why, sizeof s->why, "%s", dec->why);
        s->outcome = dec->outcome;
        if (dec->outcome == GBX_OUTCOME_DENY) {
            s->detail = s->why; /* the sender's own message: nothing secret */
            return dec->reason;
        }
    }
    s->size = s_message_size(s->frame);
    /* step 17: capacity; counted now, taken back if the commit fails */
    s_queue_t *q = s_queue_get(self, h->to_agency, strlen(h->to_agency));
    if (!q)
        return GBX_E_INTERNAL_ERROR;
    if ((self->o.queue_max_messages && q->messages >= self->o.queue_max_messages) ||
        (self->o.queue_max_bytes &&
         (q->bytes > self->o.queue_max_bytes || s->size > self->o.queue_max_bytes - q->bytes))) {
        s->detail = "destination queue full";
        return GBX_E_RETRY_LATER;
    }
    q->messages++;
    q->bytes += s->size;
    return GBX_OK;
}

/*  Step 18's puts but the dedupe record (gbx_ingress_seal). */
static gbx_err_t s_put_message(gbx_ingress_t *self, gbx_submission_t *s, gbx_batch_t *batch)
{
    const gbx_header_t *h = gbx_envelope_header(s_env(s));
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    uint8_t skey[GBX_STORE_SEQ_KEY_BYTES];
    s->seq = gbx_store_next_seq(self->o.store);
    gbx_store_seq_key(s->seq, skey);
    gbx_err_t rc = s_message_value(s->frame, &msg, &msg_len);
    if (rc != GBX_OK)
        return GBX_E_INTERNAL_ERROR;
    rc = gbx_batch_put(batch, GBX_KS_MESSAGES, skey, sizeof skey, msg, msg_len);
    free(msg);
    gbx_qentry_t e;
    memset(&e, 0, sizeof e);
    e.size = s->size;
    e.payload = gbx_frame_payload_size(s->frame);
    e.expires_at_ms = h->expires_at_ms;
    e.accepted_ms = s->now;
    snprintf(e.from, sizeof e.from, "%s", h->from_agency);
    memcpy(e.message_id, s->msg_id, GBX_MSG_ID_BYTES);
    int held = s->outcome == GBX_OUTCOME_HOLD;
    if (rc == GBX_OK)
        rc = held ? gbx_queue_hold(batch, h->to_agency, s->seq, &e, s_hold_until(self, s, h))
                  : gbx_queue_enqueue(batch, h->to_agency, s->seq, &e);
    if (rc == GBX_OK)
        rc = s_audit(self, s, held ? "HELD" : "ACCEPTED", GBX_OK, batch);
    if (rc == GBX_OK)
        gbx_batch_put_seq(batch, s->seq);
    return rc;
}

gbx_err_t gbx_ingress_admit(gbx_ingress_t *self, gbx_submission_t *s, gbx_batch_t *batch)
{
    if (!self || !s || !batch)
        return GBX_E_ARG;
    self->st.submitted++;
    s->now = self->o.clock(self->o.clock_arg);
    if (s->now == 0)
        s->now = 1;
    gbx_err_t rc = s->reason;
    uint8_t dkey[GBX_INGRESS_DEDUPE_KEY_MAX];
    size_t dklen = 0;
    gbx_decision_t dec;
    dec.n_counts = 0;
    if (rc == GBX_OK && gbx_ingress_dedupe_key(gbx_envelope_header(s_env(s))->from_agency,
                                               s->msg_id, dkey, &dklen) != GBX_OK)
        rc = GBX_E_INTERNAL_ERROR;
    if (rc == GBX_OK)
        rc = s_decide(self, s, batch, dkey, dklen, &dec);
    if (rc == GBX_OK) {
        s_pending_t *p = calloc(1, sizeof *p);
        if (!p) {
            rc = GBX_E_INTERNAL_ERROR;
        } else {
            gbx_batch_mark(batch);
            rc = s_put_message(self, s, batch);
            if (rc == GBX_OK && self->o.policy) /* last: nothing after it can fail */
                rc = s_count(self, &dec);
            if (rc == GBX_OK) {
                memcpy(p->key, dkey, dklen);
                p->klen = dklen;
                p->sub = s;
                HASH_ADD(hh, self->pending, key, p->klen, p);
            } else {
                free(p);
                (void)gbx_batch_rollback(batch);
            }
        }
        if (rc != GBX_OK) { /* take back s_decide's count */
            const char *dest = gbx_envelope_header(s_env(s))->to_agency;
            gbx_ingress_dequeued(self, dest, s->size);
            s->seq = 0;
        }
    }
    if (rc != GBX_OK && !gbx_err_on_wire(rc) && rc != GBX_E_DUPLICATE)
        rc = GBX_E_INTERNAL_ERROR;
    s->reason = rc;
    if (rc == GBX_E_DUPLICATE)
        (void)s_audit(self, s, "DUPLICATE", GBX_OK, batch);
    else if (rc != GBX_OK)
        (void)s_audit(self, s, "REJECTED", rc, batch);
    return rc;
}

/*  The receipt of new message S (2-envelope.md section 7), unsigned. */
static void s_receipt(const gbx_ingress_t *self, gbx_submission_t *s, Gbx__V1__Receipt *r)
{
    gbx__v1__receipt__init(r);
    r->message_id.data = s->msg_id;
    r->message_id.len = GBX_MSG_ID_BYTES;
    r->header_hash.data = s->header_hash;
    r->header_hash.len = GBX_HASH_BYTES;
    r->node_id = (char *)self->node_id;
    r->accepted_at_ms = s->now;
    r->sequence = s->seq;
    r->status = s->outcome == GBX_OUTCOME_HOLD ? GBX__V1__RECEIPT_STATUS__HELD
                                               : GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r->rule_id = s->rule_id;
    r->policy_hash.data = s->policy_hash;
    r->policy_hash.len = GBX_HASH_BYTES;
}

gbx_err_t gbx_ingress_seal(gbx_ingress_t *self, gbx_batch_t *batch)
{
    if (!self || !batch)
        return GBX_E_ARG;
    gbx_err_t crc = s_counts_put(self, batch);
    if (crc != GBX_OK)
        return crc;
    size_t n = HASH_COUNT(self->pending);
    if (n == 0)
        return GBX_OK;
    /* one signature for the whole group (2-envelope.md section 7.1) */
    Gbx__V1__Receipt *rs = calloc(n, sizeof *rs);
    const Gbx__V1__Receipt **rp = calloc(n, sizeof *rp);
    uint8_t **outs = calloc(n, sizeof *outs);
    size_t *lens = calloc(n, sizeof *lens);
    gbx_err_t rc = rs && rp && outs && lens ? GBX_OK : GBX_E_NOMEM;
    s_pending_t *p, *tmp;
    size_t i = 0;
    HASH_ITER(hh, self->pending, p, tmp)
    {
        if (rc != GBX_OK)
            break;
        s_receipt(self, p->sub, &rs[i]);
        rp[i] = &rs[i];
        i++;
    }
    if (rc == GBX_OK)
        rc = gbx_receipt_sign_batch(self->o.node, rp, n, outs, lens);
    i = 0;
    HASH_ITER(hh, self->pending, p, tmp)
    {
        if (rc != GBX_OK)
            break;
        gbx_submission_t *s = p->sub;
        s->receipt = outs[i];
        s->receipt_len = lens[i];
        outs[i++] = NULL;
        rc = gbx_batch_put(batch, GBX_KS_DEDUPE, p->key, p->klen, s->receipt, s->receipt_len);
        if (rc == GBX_OK) {
            const gbx_header_t *h = gbx_envelope_header(s_env(s));
            uint64_t at = h->expires_at_ms + self->o.clock_skew_ms;
            if (self->o.dedupe_window_ms && s->now + self->o.dedupe_window_ms > at)
                at = s->now + self->o.dedupe_window_ms;
            uint8_t due[GBX_DUE_KEY_LEN];
            gbx_due_key(at, s->seq, GBX_DUE_DEDUPE, due);
            rc = gbx_batch_put(batch, GBX_KS_EXPIRY, due, sizeof due, p->key, p->klen);
        }
    }
    for (i = 0; outs && i < n; i++)
        free(outs[i]);
    free(outs);
    free(lens);
    free(rp);
    free(rs);
    return rc;
}

gbx_err_t gbx_ingress_finish(gbx_ingress_t *self, gbx_submission_t *s, gbx_err_t commit_rc,
                             uint8_t **reply, size_t *reply_len)
{
    if (!self || !s || !reply || !reply_len)
        return GBX_E_ARG;
    *reply = NULL;
    *reply_len = 0;
    gbx_err_t decision = s->reason;
    const uint8_t *receipt = s->receipt;
    size_t receipt_len = s->receipt_len;
    if (decision == GBX_E_DUPLICATE && s->dup_of) {
        receipt = s->dup_of->receipt;
        receipt_len = s->dup_of->receipt_len;
    }
    /* nothing the group wrote exists unless its commit did */
    if (commit_rc != GBX_OK && (decision == GBX_OK || (decision == GBX_E_DUPLICATE && s->dup_of)))
        decision = commit_rc == GBX_E_NOMEM ? GBX_E_INTERNAL_ERROR : GBX_E_STORE_FAILED;
    if (commit_rc != GBX_OK && s->reason == GBX_OK && s->seq) {
        gbx_ingress_dequeued(self, gbx_envelope_header(s_env(s))->to_agency, s->size);
        s->seq = 0;
    }
    if (commit_rc != GBX_OK)
        self->st.audit_failures++;

    gbx_err_t erc;
    int dup = decision == GBX_E_DUPLICATE;
    if (decision == GBX_OK || dup) {
        erc = gbx_frame_accepted(s->tag, receipt, receipt_len, dup, reply, reply_len);
        if (erc == GBX_E_ARG) { /* a stored receipt that does not parse: a damaged store */
            dup = 0;
            decision = GBX_E_INTERNAL_ERROR;
        } else if (erc == GBX_OK) {
            if (dup)
                self->st.duplicates++;
            else
                self->st.accepted++;
            decision = GBX_OK;
        }
    }
    if (decision != GBX_OK) {
        erc = gbx_frame_rejected(s->tag, s->msg_id, s->msg_id_len, decision, s->detail,
                                 decision == GBX_E_RETRY_LATER ? self->o.retry_after_ms : 0, reply,
                                 reply_len);
        self->st.rejected++;
        if ((int)decision >= 0 && (int)decision < S_REASON_SLOTS)
            self->by_reason[decision]++;
    }
    memset(&s->result, 0, sizeof s->result);
    s->result.reason = decision;
    s->result.duplicate = decision == GBX_OK && dup;
    if (decision == GBX_OK && !dup) {
        s->result.held = s->outcome == GBX_OUTCOME_HOLD;
        s->result.seq = s->seq;
        const gbx_header_t *h = gbx_envelope_header(s_env(s));
        snprintf(s->result.dest, sizeof s->result.dest, "%s", h->to_agency);
        s->result.data_class = (int)h->data_class;
    }
    if (erc != GBX_OK) {
        free(*reply);
        *reply = NULL;
        *reply_len = 0;
        return GBX_E_NOMEM;
    }
    return decision;
}

void gbx_ingress_group_end(gbx_ingress_t *self)
{
    if (!self)
        return;
    s_pending_t *p, *tmp;
    HASH_ITER(hh, self->pending, p, tmp)
    {
        HASH_DEL(self->pending, p);
        free(p);
    }
    s_count_t *c, *ctmp;
    HASH_ITER(hh, self->counts, c, ctmp)
    {
        HASH_DEL(self->counts, c);
        free(c);
    }
    self->batch = NULL;
}

/* ------------------------------------------------------ all in one call */

gbx_err_t gbx_ingress_submit(gbx_ingress_t *self, const char *auth_agency, const gbx_part_t *parts,
                             size_t n, uint8_t **reply, size_t *reply_len,
                             gbx_ingress_result_t *result)
{
    if (!self || !auth_agency || (!parts && n) || !reply || !reply_len)
        return GBX_E_ARG;
    *reply = NULL;
    *reply_len = 0;
    gbx_submission_t s;
    gbx_submission_init(&s);
    gbx_checker_run(self->checker, auth_agency, parts, n, &s);
    gbx_batch_t *b = NULL;
    gbx_err_t crc = gbx_batch_new(self->o.store, &b);
    if (crc == GBX_OK) {
        gbx_ingress_admit(self, &s, b);
        crc = gbx_ingress_seal(self, b);
        if (crc == GBX_OK)
            crc = gbx_store_commit(self->o.store, &b);
    }
    gbx_batch_destroy(&b);
    gbx_err_t decision = gbx_ingress_finish(self, &s, crc, reply, reply_len);
    gbx_ingress_group_end(self);
    if (result)
        *result = s.result;
    gbx_submission_clear(&s);
    return decision;
}
