/*  ingress.c: owns the admission of submitted messages: checks, dedupe,
    policy call site, the one atomic store batch and the receipt. Implements
    proto/spec/5-adapter.md section 6.1 (with 2-envelope.md sections 7, 8). */
#include "ingress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gbx/receipt.h"

#define S_REASON_SLOTS   1000 /* wire codes are < 1000 (gbx/err.h) */
#define S_VCACHE_DEFAULT 4096
#define S_AUDIT_MAX      2048

/*  The queue depth of one destination ("Queue depth" in ingress.h). */
typedef struct {
    char dest[GBX_ID_MAX + 1];
    uint64_t messages;
    uint64_t bytes;
} s_queue_t;

struct gbx_ingress {
    gbx_ingress_opts_t o;
    char node_id[GBX_ID_MAX + 1];
    gbx_vcache_t *vcache;
    gbx_ingress_stats_t st;
    uint64_t by_reason[S_REASON_SLOTS];
    s_queue_t *queues; /* one per destination seen; linear search (agencies are few) */
    size_t nqueues, cap_queues;
};

/*  What one submit learnt so far: filled step by step, used for the answer
    and the audit record. */
typedef struct {
    uint64_t tag;
    uint8_t msg_id[GBX_MSG_ID_BYTES];
    size_t msg_id_len;
    const gbx_envelope_t *env; /* decoded (not necessarily verified) */
    uint8_t header_hash[GBX_HASH_BYTES];
    char rule_id[GBX_INGRESS_RULE_MAX + 1];
    uint8_t policy_hash[GBX_HASH_BYTES];
    int policy_done;
    uint64_t now;
    const char *detail;
} s_ctx_t;

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

/*  The allow-all policy (opts.policy == NULL). */
static gbx_err_t s_allow_all(void *arg, const gbx_envelope_t *env, const char *auth_agency,
                             char rule_id[GBX_INGRESS_RULE_MAX + 1],
                             uint8_t policy_hash[GBX_HASH_BYTES])
{
    (void)arg;
    (void)env;
    (void)auth_agency;
    snprintf(rule_id, GBX_INGRESS_RULE_MAX + 1, "%s", GBX_INGRESS_ALLOW_ALL_RULE);
    crypto_generichash(policy_hash, GBX_HASH_BYTES,
                       (const unsigned char *)GBX_INGRESS_ALLOW_ALL_RULE,
                       strlen(GBX_INGRESS_ALLOW_ALL_RULE), NULL, 0);
    return GBX_OK;
}

/* ----------------------------------------------------------- queue depth */

static void s_put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t s_get_be64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

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
static gbx_err_t s_queue_rebuild(gbx_ingress_t *self)
{
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_new(self->o.store, GBX_KS_QUEUES, NULL, 0, &it);
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
        if (vlen == 8) {
            bytes = s_get_be64(v);
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
    if (!self->o.policy)
        self->o.policy = s_allow_all;
    if (self->o.retry_after_ms == 0)
        self->o.retry_after_ms = GBX_INGRESS_RETRY_AFTER_DEFAULT_MS;
    gbx_err_t rc =
        gbx_vcache_new(opts->vcache_slots ? opts->vcache_slots : S_VCACHE_DEFAULT, &self->vcache);
    if (rc == GBX_OK)
        rc = s_queue_rebuild(self);
    if (rc != GBX_OK) {
        gbx_ingress_destroy(&self);
        return rc;
    }
    *out = self;
    return GBX_OK;
}

void gbx_ingress_destroy(gbx_ingress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_vcache_destroy(&(*self_p)->vcache);
    free((*self_p)->queues);
    free(*self_p);
    *self_p = NULL;
}

void gbx_ingress_stats(const gbx_ingress_t *self, gbx_ingress_stats_t *out)
{
    if (!self || !out)
        return;
    *out = self->st;
    gbx_vcache_stats(self->vcache, &out->sig_verified, &out->sig_cache_hits);
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

/* ----------------------------------------------------------------- audit */

typedef struct {
    char buf[S_AUDIT_MAX];
    size_t len;
} s_text_t;

/*  Appends "key=value\n" with VALUE sanitised to 0x21..0x7e. */
static void s_kv(s_text_t *t, const char *key, const char *value)
{
    int n = snprintf(t->buf + t->len, sizeof t->buf - t->len, "%s=", key);
    if (n < 0 || (size_t)n >= sizeof t->buf - t->len)
        return;
    t->len += (size_t)n;
    for (const char *p = value; p && *p && t->len + 2 < sizeof t->buf; p++) {
        unsigned char c = (unsigned char)*p;
        t->buf[t->len++] = (c >= 0x21 && c <= 0x7e) ? (char)c : '?';
    }
    if (t->len + 1 < sizeof t->buf)
        t->buf[t->len++] = '\n';
}

static void s_kv_u64(s_text_t *t, const char *key, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    s_kv(t, key, num);
}

static void s_kv_hex(s_text_t *t, const char *key, const uint8_t *bin, size_t len)
{
    char hex[2 * 64 + 1];
    if (len > 64)
        len = 64;
    sodium_bin2hex(hex, sizeof hex, bin, len);
    s_kv(t, key, hex);
}

/*  The audit record (format: ingress.h). */
static void s_audit_text(const s_ctx_t *c, const char *decision, gbx_err_t reason, const char *auth,
                         uint64_t seq, s_text_t *t)
{
    t->len = 0;
    s_kv(t, "v", "1");
    s_kv(t, "decision", decision);
    s_kv(t, "reason", gbx_err_name(reason));
    s_kv_u64(t, "at_ms", c->now);
    s_kv(t, "auth", auth);
    if (seq)
        s_kv_u64(t, "seq", seq);
    if (c->msg_id_len == GBX_MSG_ID_BYTES)
        s_kv_hex(t, "message_id", c->msg_id, GBX_MSG_ID_BYTES);
    if (c->env) {
        const gbx_header_t *h = gbx_envelope_header(c->env);
        s_kv_hex(t, "header_hash", c->header_hash, GBX_HASH_BYTES);
        s_kv(t, "from", h->from_agency);
        s_kv(t, "to", h->to_agency);
        s_kv(t, "service", h->service_code);
        s_kv_u64(t, "service_version", h->service_version);
        const char *cls = gbx_data_class_name(h->data_class);
        s_kv(t, "class", cls ? cls : "?");
    }
    if (c->policy_done) {
        s_kv(t, "rule_id", c->rule_id);
        s_kv_hex(t, "policy_hash", c->policy_hash, GBX_HASH_BYTES);
    }
}

/*  Best effort: its own small batch, under a fresh store sequence. */
static void s_audit_alone(gbx_ingress_t *self, const s_ctx_t *c, const char *decision,
                          gbx_err_t reason, const char *auth)
{
    s_text_t t;
    s_audit_text(c, decision, reason, auth, 0, &t);
    uint64_t aseq = gbx_store_next_seq(self->o.store);
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(aseq, key);
    gbx_batch_t *b = NULL;
    gbx_err_t rc = gbx_batch_new(self->o.store, &b);
    if (rc == GBX_OK)
        rc = gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, t.buf, t.len);
    if (rc == GBX_OK) {
        gbx_batch_put_seq(b, aseq);
        rc = gbx_store_commit(self->o.store, &b);
    }
    gbx_batch_destroy(&b);
    if (rc != GBX_OK)
        self->st.audit_failures++;
}

/* ------------------------------------------------------------------ steps */

/*  Step 15 (times). */
static gbx_err_t s_check_times(const gbx_ingress_t *self, const gbx_header_t *h, uint64_t now)
{
    if (now >= h->expires_at_ms)
        return GBX_E_EXPIRED;
    if (h->created_at_ms > now + self->o.clock_skew_ms)
        return GBX_E_NOT_YET_VALID;
    if (h->expires_at_ms - h->created_at_ms > self->o.max_ttl_ms)
        return GBX_E_TTL_TOO_LONG;
    return GBX_OK;
}

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

/*  Steps 18 and the receipt: signs the receipt and commits the batch. On
    GBX_OK *receipt (malloc'ed) is the SignedReceipt now on disk. */
static gbx_err_t s_store(gbx_ingress_t *self, const gbx_frame_t *f, s_ctx_t *c, const char *auth,
                         const uint8_t *dkey, size_t dklen, uint64_t *seq_out, uint8_t **receipt,
                         size_t *receipt_len)
{
    const gbx_header_t *h = gbx_envelope_header(c->env);
    uint8_t *msg = NULL, *sr = NULL;
    size_t msg_len = 0, sr_len = 0;
    gbx_batch_t *b = NULL;
    uint64_t seq = gbx_store_next_seq(self->o.store);
    uint8_t skey[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(seq, skey);
    uint8_t qkey[GBX_STORE_DEST_MAX + 1 + GBX_STORE_SEQ_KEY_BYTES];
    size_t qlen = 0;
    s_text_t audit;
    uint8_t qval[8];

    gbx_err_t rc = gbx_store_queue_key(h->to_agency, seq, qkey, sizeof qkey, &qlen);
    if (rc != GBX_OK)
        goto out;
    rc = s_message_value(f, &msg, &msg_len);
    if (rc != GBX_OK)
        goto out;
    s_put_be64(qval, msg_len);

    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id.data = c->msg_id;
    r.message_id.len = GBX_MSG_ID_BYTES;
    r.header_hash.data = c->header_hash;
    r.header_hash.len = GBX_HASH_BYTES;
    r.node_id = self->node_id;
    r.accepted_at_ms = self->o.clock(self->o.clock_arg);
    if (r.accepted_at_ms == 0)
        r.accepted_at_ms = 1;
    r.sequence = seq;
    r.status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
    r.rule_id = c->rule_id;
    r.policy_hash.data = c->policy_hash;
    r.policy_hash.len = GBX_HASH_BYTES;
    rc = gbx_receipt_sign(self->o.node, &r, &sr, &sr_len);
    if (rc != GBX_OK)
        goto out;

    s_audit_text(c, "ACCEPTED", GBX_OK, auth, seq, &audit);
    rc = gbx_batch_new(self->o.store, &b);
    if (rc == GBX_OK)
        rc = gbx_batch_put(b, GBX_KS_MESSAGES, skey, sizeof skey, msg, msg_len);
    if (rc == GBX_OK)
        rc = gbx_batch_put(b, GBX_KS_QUEUES, qkey, qlen, qval, sizeof qval);
    if (rc == GBX_OK)
        rc = gbx_batch_put(b, GBX_KS_DEDUPE, dkey, dklen, sr, sr_len);
    if (rc == GBX_OK)
        rc = gbx_batch_put(b, GBX_KS_AUDIT, skey, sizeof skey, audit.buf, audit.len);
    if (rc != GBX_OK)
        goto out;
    gbx_batch_put_seq(b, seq);
    rc = gbx_store_commit(self->o.store, &b);
    if (rc != GBX_OK) {
        rc = GBX_E_STORE_FAILED;
        goto out;
    }
    *seq_out = seq;
    *receipt = sr;
    *receipt_len = sr_len;
    sr = NULL;
out:
    gbx_batch_destroy(&b);
    free(msg);
    free(sr);
    return rc;
}

/*  Runs steps up to 18. Returns GBX_OK (new: *receipt set, *seq set),
    GBX_E_DUPLICATE (*receipt = the stored one) or the rejection reason. */
static gbx_err_t s_admit(gbx_ingress_t *self, const char *auth, const gbx_part_t *parts, size_t n,
                         s_ctx_t *c, gbx_frame_t **fp, uint64_t *seq, uint8_t **receipt,
                         size_t *receipt_len)
{
    gbx_frame_fail_t fail;
    memset(&fail, 0, sizeof fail);
    /* framing and envelope steps 1 to 6 */
    gbx_err_t rc = gbx_frame_decode_at(parts, n, GBX_FRAME_AT_NODE, fp, &fail);
    c->tag = fail.tag;
    if (fail.message_id_len == GBX_MSG_ID_BYTES) {
        memcpy(c->msg_id, fail.message_id, GBX_MSG_ID_BYTES);
        c->msg_id_len = GBX_MSG_ID_BYTES;
    }
    if (rc != GBX_OK)
        return rc;
    if (gbx_frame_kind(*fp) != GBX_FRAME_SUBMIT) {
        c->detail = "not a submit";
        return GBX_E_MALFORMED;
    }
    c->env = gbx_frame_envelope(*fp);
    gbx_envelope_header_hash(c->env, c->header_hash);
    const gbx_header_t *h = gbx_envelope_header(c->env);
    if (c->msg_id_len == 0 && h->message_id.len == GBX_MSG_ID_BYTES) {
        memcpy(c->msg_id, h->message_id.data, GBX_MSG_ID_BYTES);
        c->msg_id_len = GBX_MSG_ID_BYTES;
    }
    /* step 6, the receiver's own limit */
    if (h->payload_length > self->o.max_payload_bytes)
        return GBX_E_PAYLOAD_TOO_LARGE;
    /* step 7 */
    if (strcmp(h->from_agency, auth) != 0) {
        c->detail = "from_agency is not the authenticated agency";
        return GBX_E_SENDER_MISMATCH;
    }
    const gbx_agency_t *sender = gbx_registry_agency(self->o.registry, h->from_agency);
    if (!sender)
        return GBX_E_UNKNOWN_AGENCY;
    /* steps 8 to 10; the reason is all the peer learns */
    rc = gbx_envelope_verify(c->env, &sender->pub, self->vcache);
    if (rc != GBX_OK)
        return rc;
    /* steps 11, 12 */
    rc = gbx_frame_check_payload(*fp);
    if (rc != GBX_OK)
        return rc;
    /* step 13: dedupe */
    uint8_t dkey[GBX_INGRESS_DEDUPE_KEY_MAX];
    size_t dklen = 0;
    rc = gbx_ingress_dedupe_key(h->from_agency, c->msg_id, dkey, &dklen);
    if (rc != GBX_OK)
        return GBX_E_INTERNAL_ERROR;
    uint8_t *old = NULL;
    size_t old_len = 0;
    rc = gbx_store_get(self->o.store, GBX_KS_DEDUPE, dkey, dklen, &old, &old_len);
    if (rc != GBX_OK)
        return GBX_E_STORE_FAILED;
    if (old) {
        *receipt = old;
        *receipt_len = old_len;
        return GBX_E_DUPLICATE;
    }
    /* step 14: destination */
    if (!gbx_registry_agency(self->o.registry, h->to_agency))
        return GBX_E_UNKNOWN_DESTINATION;
    /* step 15: times */
    rc = s_check_times(self, h, c->now);
    if (rc != GBX_OK)
        return rc;
    /* step 16: policy -- THE call site of the policy module */
    c->rule_id[0] = 0;
    memset(c->policy_hash, 0, sizeof c->policy_hash);
    rc = self->o.policy(self->o.policy_arg, c->env, auth, c->rule_id, c->policy_hash);
    c->rule_id[GBX_INGRESS_RULE_MAX] = 0;
    c->policy_done = 1;
    if (rc == GBX_E_POLICY_DENIED || rc == GBX_E_POLICY_NO_MATCH)
        return rc;
    if (rc != GBX_OK)
        return GBX_E_INTERNAL_ERROR;
    /* step 17: capacity. The slot is made now so that counting the message
       after its commit cannot fail. */
    size_t dlen = strlen(h->to_agency);
    s_queue_t *q = s_queue_get(self, h->to_agency, dlen);
    if (!q)
        return GBX_E_INTERNAL_ERROR;
    uint64_t bytes = s_message_size(*fp);
    if ((self->o.queue_max_messages && q->messages >= self->o.queue_max_messages) ||
        (self->o.queue_max_bytes &&
         (q->bytes > self->o.queue_max_bytes || bytes > self->o.queue_max_bytes - q->bytes))) {
        c->detail = "destination queue full";
        return GBX_E_RETRY_LATER;
    }
    /* step 18: store */
    rc = s_store(self, *fp, c, auth, dkey, dklen, seq, receipt, receipt_len);
    if (rc == GBX_E_NOMEM || rc == GBX_E_ARG)
        return GBX_E_INTERNAL_ERROR;
    if (rc == GBX_OK) {
        q->messages++;
        q->bytes += bytes;
    }
    return rc;
}

gbx_err_t gbx_ingress_submit(gbx_ingress_t *self, const char *auth_agency, const gbx_part_t *parts,
                             size_t n, uint8_t **reply, size_t *reply_len,
                             gbx_ingress_result_t *result)
{
    if (!self || !auth_agency || (!parts && n) || !reply || !reply_len)
        return GBX_E_ARG;
    *reply = NULL;
    *reply_len = 0;
    s_ctx_t c;
    memset(&c, 0, sizeof c);
    c.now = self->o.clock(self->o.clock_arg);
    gbx_frame_t *f = NULL;
    uint8_t *receipt = NULL;
    size_t receipt_len = 0;
    uint64_t seq = 0;
    self->st.submitted++;

    gbx_err_t rc = s_admit(self, auth_agency, parts, n, &c, &f, &seq, &receipt, &receipt_len);
    if (rc == GBX_E_NOMEM || rc == GBX_E_CRYPTO_INIT || !gbx_err_on_wire(rc))
        rc = GBX_E_INTERNAL_ERROR;

    gbx_err_t decision = rc;
    gbx_err_t erc;
    if (rc == GBX_OK || rc == GBX_E_DUPLICATE) {
        int dup = rc == GBX_E_DUPLICATE;
        erc = gbx_frame_accepted(c.tag, receipt, receipt_len, dup, reply, reply_len);
        if (erc == GBX_E_ARG) {
            /* a stored receipt that does not parse: the store is damaged */
            dup = 0;
            decision = GBX_E_INTERNAL_ERROR;
            erc = gbx_frame_rejected(c.tag, c.msg_id, c.msg_id_len, decision, NULL, 0, reply,
                                     reply_len);
        } else if (erc == GBX_OK) {
            decision = GBX_OK;
            if (dup) {
                self->st.duplicates++;
                s_audit_alone(self, &c, "DUPLICATE", GBX_OK, auth_agency);
            } else {
                self->st.accepted++;
            }
        }
        if (result) {
            memset(result, 0, sizeof *result);
            result->reason = decision;
            result->duplicate = decision == GBX_OK && dup;
            if (decision == GBX_OK && !dup) {
                result->seq = seq;
                snprintf(result->dest, sizeof result->dest, "%s",
                         gbx_envelope_header(c.env)->to_agency);
            }
        }
    } else {
        erc = gbx_frame_rejected(c.tag, c.msg_id, c.msg_id_len, rc, c.detail,
                                 rc == GBX_E_RETRY_LATER ? self->o.retry_after_ms : 0, reply,
                                 reply_len);
        if (result) {
            memset(result, 0, sizeof *result);
            result->reason = rc;
        }
    }
    if (decision != GBX_OK) {
        self->st.rejected++;
        if ((int)decision >= 0 && (int)decision < S_REASON_SLOTS)
            self->by_reason[decision]++;
        s_audit_alone(self, &c, "REJECTED", decision, auth_agency);
    }
    free(receipt);
    gbx_frame_destroy(&f);
    if (erc != GBX_OK) {
        free(*reply);
        *reply = NULL;
        *reply_len = 0;
        return GBX_E_NOMEM;
    }
    return decision;
}
