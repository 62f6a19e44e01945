/*  dispatch.c: owns sessions, the in-memory window of each destination's
    queue, deliveries in flight and their timers. */
#include "dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uthash.h>
#include <utlist.h>

#include "queue.h"

#define S_WINDOW_DEFAULT   1024
#define S_INFLIGHT_DEFAULT 64
#define S_BACKOFF_MIN      100
#define S_BACKOFF_MAX      30000
#define S_SWEEP_EVERY_MS   200
#define S_SWEEP_MAX        4096  /* due keys acted on per sweep */
#define S_NOTICES_MAX      1024  /* kept per agency without a session */
#define S_SCAN_MAX         4096  /* ready entries looked at per pump */
#define S_SWEEP_RESTART_MS 60000 /* the sweep starts again from the first key */
#define S_SESSIONS_MAX     64    /* open sessions per agency */
#define S_PENDING_MAX      65536 /* jobs at the writer: beyond, Acks wait for redelivery */
/*  Payload bytes in flight per session (beyond one delivery): what a
    session that does not read can make gbxd hold in its pipe. */
#define S_INFLIGHT_BYTES ((uint64_t)64 * 1024 * 1024)

typedef enum {
    S_QUEUED = 1, /* in dest->ready; may wait for not_before */
    S_MARKING,    /* MARK at the writer, for session sess */
    S_INFLIGHT,   /* Deliver sent on sess; in self->inflight */
    S_ACKING,     /* ACK at the writer */
    S_ENDING      /* EXPIRE or DEADLETTER at the writer */
} s_state_t;

typedef struct s_session s_session_t;
typedef struct s_dest s_dest_t;

typedef struct s_entry {
    uint64_t seq;
    s_dest_t *dest;
    gbx_qentry_t q;
    s_state_t st;
    int ack_seen;      /* an Ack came while MARKING */
    uint64_t ack_id;   /* the delivery id that Ack named */
    s_session_t *sess; /* MARKING, INFLIGHT */
    uint64_t delivery_id;
    uint64_t deadline;           /* monotonic ms; INFLIGHT: ack timeout; QUEUED: not before */
    struct s_entry *prev, *next; /* dest->ready or self->inflight */
    UT_hash_handle hh;           /* self->entries, by seq */
} s_entry_t;

struct s_dest {
    char id[GBX_ID_MAX + 1];
    s_entry_t *ready; /* utlist DL, seq order but for retries (at the head) */
    size_t nready;
    uint64_t cursor; /* entries with seq >= cursor may be in the store only */
    int caught_up;   /* every durable entry of the queue is in memory */
    UT_hash_handle hh;
};

typedef struct s_notice {
    uint8_t message_id[GBX_MSG_ID_BYTES];
    gbx_err_t reason;
    struct s_notice *next;
} s_notice_t;

typedef struct s_agency {
    char id[GBX_ID_MAX + 1];
    s_notice_t *notices; /* utlist LL, oldest first */
    size_t nnotices;
    uint64_t last_seen; /* monotonic ms, of its sessions closed so far; 0 never */
    UT_hash_handle hh;
} s_agency_t;

struct s_session {
    uint8_t rid[GBX_JOB_RID_MAX];
    size_t rid_len;
    char agency[GBX_ID_MAX + 1];
    uint32_t credit_msgs;
    uint64_t credit_bytes;
    uint64_t last_seen; /* monotonic ms */
    size_t inflight;
    uint64_t inflight_bytes; /* payload bytes of those */
    UT_hash_handle hh;
};

struct gbx_dispatch {
    gbx_dispatch_opts_t o;
    s_entry_t *entries;   /* every message in memory, by seq */
    s_entry_t *inflight;  /* utlist DL, by deadline (constant timeout: FIFO) */
    s_dest_t *dests;      /* agencies of this node */
    s_agency_t *agencies; /* notices waiting */
    s_session_t *sessions;
    size_t pending; /* jobs at the writer */
    size_t sweep_pending;
    uint64_t next_sweep; /* monotonic ms */
    uint64_t sweep_restart;
    uint8_t sweep_key[GBX_DUE_KEY_LEN]; /* where the next sweep starts */
    int sweep_from_key;
    int paused;   /* gbxd is not reading the socket: silence is not the adapters' */
    int stopping; /* no new deliveries */
    gbx_dispatch_stats_t st;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t s_realtime(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  The wall clock (ms since the epoch): for expires_at_ms only. */
static uint64_t s_now(gbx_dispatch_t *self)
{
    return self->o.clock(self->o.clock_arg);
}

/*  Timers (ack timeouts, backoff, silence) run on CLOCK_MONOTONIC: a step
    of the wall clock must neither fire nor freeze them. */
static uint64_t s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_log(gbx_dispatch_t *self, const char *fmt, ...)
{
    if (!self->o.log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    self->o.log(self->o.log_arg, line);
}

static void s_hex16(const uint8_t id[GBX_MSG_ID_BYTES], char out[2 * GBX_MSG_ID_BYTES + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < GBX_MSG_ID_BYTES; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
    out[2 * GBX_MSG_ID_BYTES] = '\0';
}

static void s_give(gbx_dispatch_t *self, gbx_job_t *job)
{
    self->pending++;
    self->o.job(self->o.arg, job);
}

void gbx_dispatch_give(gbx_dispatch_t *self, gbx_job_t *job)
{
    if (self && job)
        s_give(self, job);
}

/*  A job of KIND for message SEQ of DEST (not yet given); NULL: no memory. */
static gbx_job_t *s_job(gbx_job_kind_t kind, const char *dest, uint64_t seq)
{
    gbx_job_t *job = gbx_job_new(kind);
    if (job) {
        snprintf(job->dest, sizeof job->dest, "%s", dest);
        job->seq = seq;
    }
    return job;
}

static s_dest_t *s_dest(gbx_dispatch_t *self, const char *id)
{
    s_dest_t *d = NULL;
    HASH_FIND_STR(self->dests, id, d);
    return d;
}

static s_entry_t *s_entry(gbx_dispatch_t *self, uint64_t seq)
{
    s_entry_t *e = NULL;
    HASH_FIND(hh, self->entries, &seq, sizeof seq, e);
    return e;
}

static s_entry_t *s_entry_add(gbx_dispatch_t *self, s_dest_t *d, uint64_t seq,
                              const gbx_qentry_t *q)
{
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->seq = seq;
    e->dest = d;
    if (q)
        e->q = *q;
    HASH_ADD(hh, self->entries, seq, sizeof e->seq, e);
    self->st.in_memory++;
    return e;
}

static void s_entry_free(gbx_dispatch_t *self, s_entry_t *e)
{
    HASH_DEL(self->entries, e);
    self->st.in_memory--;
    free(e);
}

/*  Puts E (not in a list) into its destination's ready list. */
static void s_ready(s_entry_t *e, int at_head, uint64_t not_before)
{
    e->st = S_QUEUED;
    e->sess = NULL;
    e->deadline = not_before;
    if (at_head)
        DL_PREPEND2(e->dest->ready, e, prev, next);
    else
        DL_APPEND2(e->dest->ready, e, prev, next);
    e->dest->nready++;
}

static void s_unready(s_entry_t *e)
{
    DL_DELETE2(e->dest->ready, e, prev, next);
    e->dest->nready--;
    e->prev = e->next = NULL;
}

/*  The store still holds E but memory lets it go: the next refill finds it. */
static void s_forget(gbx_dispatch_t *self, s_entry_t *e)
{
    s_dest_t *d = e->dest;
    if (d && d->cursor > e->seq)
        d->cursor = e->seq;
    if (d)
        d->caught_up = 0;
    s_entry_free(self, e);
}

/* --------------------------------------------------------------- notices */

static s_session_t *s_session_of(gbx_dispatch_t *self, const char *agency)
{
    s_session_t *s, *tmp;
    HASH_ITER(hh, self->sessions, s, tmp)
    if (strcmp(s->agency, agency) == 0)
        return s;
    return NULL;
}

static void s_close_session(gbx_dispatch_t *self, s_session_t *s, const char *why);
static s_agency_t *s_agency(gbx_dispatch_t *self, const char *agency);

static int s_send_notice(gbx_dispatch_t *self, s_session_t *s, const uint8_t *message_id,
                         gbx_err_t reason)
{
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    if (gbx_frame_notice(message_id, reason, NULL, &p1, &l1) != GBX_OK)
        return GBX_DISPATCH_BUSY; /* out of memory: keep it for later */
    int r = self->o.send(self->o.arg, s->rid, s->rid_len, p1, l1, NULL, 0, NULL);
    free(p1);
    if (r == 0)
        self->st.notices_sent++;
    return r;
}

/*  Tells AGENCY (the sender) what became of its message: now, or when a
    session of it opens. */
static void s_notice(gbx_dispatch_t *self, const char *agency, const uint8_t *message_id,
                     gbx_err_t reason)
{
    /* A session whose connection is gone (send failed) is closed and the
       next one of the agency is tried: a stale session must not keep the
       notice from a live one (it would wait for a session to open). */
    s_session_t *s;
    while ((s = s_session_of(self, agency))) {
        int r = s_send_notice(self, s, message_id, reason);
        if (r == 0)
            return;
        if (r != GBX_DISPATCH_GONE)
            break; /* busy: keep it */
        s_close_session(self, s, "send failed");
    }
    s_agency_t *a = s_agency(self, agency);
    if (!a) {
        self->st.notices_dropped++;
        return;
    }
    if (a->nnotices >= S_NOTICES_MAX) { /* the audit trail keeps the record */
        s_notice_t *old = a->notices;
        LL_DELETE(a->notices, old);
        free(old);
        a->nnotices--;
        self->st.notices_dropped++;
    }
    s_notice_t *n = calloc(1, sizeof *n);
    if (!n) {
        self->st.notices_dropped++;
        return;
    }
    memcpy(n->message_id, message_id, GBX_MSG_ID_BYTES);
    n->reason = reason;
    LL_APPEND(a->notices, n);
    a->nnotices++;
}

/*  Sends A's kept notices to its sessions, closing those that are gone. */
static void s_flush_agency(gbx_dispatch_t *self, s_agency_t *a)
{
    s_session_t *s;
    while (a->notices && (s = s_session_of(self, a->id))) {
        s_notice_t *n = a->notices;
        int r = s_send_notice(self, s, n->message_id, n->reason);
        if (r == GBX_DISPATCH_GONE) {
            s_close_session(self, s, "send failed");
            continue;
        }
        if (r != 0)
            return; /* busy: the next tick tries again */
        LL_DELETE(a->notices, n);
        a->nnotices--;
        free(n);
    }
}

static void s_flush_notices(gbx_dispatch_t *self, s_session_t *s)
{
    s_agency_t *a = NULL;
    HASH_FIND_STR(self->agencies, s->agency, a);
    if (a)
        s_flush_agency(self, a);
}

/* -------------------------------------------------------------- sessions */

static s_session_t *s_session(gbx_dispatch_t *self, const uint8_t *rid, size_t rid_len)
{
    s_session_t *s = NULL;
    HASH_FIND(hh, self->sessions, rid, rid_len, s);
    return s;
}

/*  Takes E back from flight (ack timeout, session closed): queued again
    after a backoff, or expired, or dead-lettered. */
static void s_end(gbx_dispatch_t *self, s_entry_t *e, gbx_job_kind_t kind);

/*  E no longer counts against its session's in-flight window. */
static void s_release(s_entry_t *e)
{
    s_session_t *s = e->sess;
    if (s) {
        if (s->inflight)
            s->inflight--;
        s->inflight_bytes -= e->q.payload < s->inflight_bytes ? e->q.payload : s->inflight_bytes;
    }
    e->sess = NULL;
}

static void s_return(gbx_dispatch_t *self, s_entry_t *e)
{
    uint64_t now = s_now(self);
    if (e->st == S_INFLIGHT) {
        DL_DELETE2(self->inflight, e, prev, next);
        e->prev = e->next = NULL;
        self->st.inflight--;
    }
    s_release(e);
    gbx_job_kind_t kind = 0;
    if (now >= e->q.expires_at_ms)
        kind = GBX_JOB_EXPIRE;
    else if (e->q.attempts >= self->o.max_attempts)
        kind = GBX_JOB_DEADLETTER;
    if (kind) {
        s_end(self, e, kind);
        return;
    }
    uint64_t back = self->o.backoff_min_ms;
    for (uint32_t i = 1; i < e->q.attempts && back < self->o.backoff_max_ms; i++)
        back *= 2;
    if (back > self->o.backoff_max_ms)
        back = self->o.backoff_max_ms;
    s_ready(e, 1, s_mono() + back);
}

/*  AGENCY's record (notices, last seen), created when missing; NULL when
    out of memory. */
static s_agency_t *s_agency(gbx_dispatch_t *self, const char *agency)
{
    s_agency_t *a = NULL;
    HASH_FIND_STR(self->agencies, agency, a);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            return NULL;
        snprintf(a->id, sizeof a->id, "%s", agency);
        HASH_ADD_STR(self->agencies, id, a);
    }
    return a;
}

static void s_close_session(gbx_dispatch_t *self, s_session_t *s, const char *why)
{
    s_entry_t *e, *tmp;
    s_agency_t *ag = s_agency(self, s->agency);
    if (ag && s->last_seen > ag->last_seen)
        ag->last_seen = s->last_seen;
    /* deliveries in flight on it go back; MARKING ones see sess == NULL */
    DL_FOREACH_SAFE2(self->inflight, e, tmp, next)
    if (e->sess == s)
        s_return(self, e);
    HASH_ITER(hh, self->entries, e, tmp)
    if (e->sess == s)
        e->sess = NULL;
    s_log(self, "GBX-SESSION-CLOSED agency=%s why=%s", s->agency, why);
    HASH_DEL(self->sessions, s);
    free(s);
    self->st.sessions_closed++;
}

/*  Before AGENCY opens one more session: at most S_SESSIONS_MAX stay open,
    the one heard from least recently goes (an adapter reconnecting in a
    loop must not grow memory or the delivery loop). */
static void s_cap_sessions(gbx_dispatch_t *self, const char *agency)
{
    size_t n = 0;
    s_session_t *s, *tmp, *oldest = NULL;
    HASH_ITER(hh, self->sessions, s, tmp)
    {
        if (strcmp(s->agency, agency) != 0)
            continue;
        n++;
        if (!oldest || s->last_seen < oldest->last_seen)
            oldest = s;
    }
    if (n >= S_SESSIONS_MAX && oldest)
        s_close_session(self, oldest, "too many sessions");
}

void gbx_dispatch_seen(gbx_dispatch_t *self, const uint8_t *rid, size_t rid_len, const char *agency)
{
    if (!self || !rid || rid_len == 0 || rid_len > GBX_JOB_RID_MAX || !agency)
        return;
    s_session_t *s = s_session(self, rid, rid_len);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return;
        memcpy(s->rid, rid, rid_len);
        s->rid_len = rid_len;
        snprintf(s->agency, sizeof s->agency, "%s", agency);
        s_cap_sessions(self, agency);
        HASH_ADD(hh, self->sessions, rid, rid_len, s);
        self->st.sessions_opened++;
        s_log(self, "GBX-SESSION-OPENED agency=%s", s->agency);
        s->last_seen = s_mono();
        s_flush_notices(self, s);
        return;
    }
    s->last_seen = s_mono();
}

/* ---------------------------------------------------------------- refill */

/*  Reads queued entries of D from the store into memory, from its cursor,
    until the window is full or the queue ends (then D is caught up). */
static void s_refill(gbx_dispatch_t *self, s_dest_t *d)
{
    if (d->caught_up || 2 * d->nready > self->o.window)
        return;
    size_t dl = strlen(d->id);
    uint8_t prefix[GBX_ID_MAX + 1];
    memcpy(prefix, d->id, dl);
    prefix[dl] = 0;
    gbx_store_iter_t *it = NULL;
    uint8_t key[GBX_QUEUE_KEY_MAX];
    size_t klen = 0;
    if (gbx_store_queue_key(d->id, d->cursor, key, sizeof key, &klen) != GBX_OK ||
        gbx_store_iter_from(self->o.store, GBX_KS_QUEUES, prefix, dl + 1, key, klen, &it) != GBX_OK)
        return;
    int ended = 1;
    uint64_t durable = gbx_store_durable_next(self->o.store);
    for (; gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        if (d->nready >= self->o.window) {
            ended = 0;
            break;
        }
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        if (kl != dl + 1 + GBX_STORE_SEQ_KEY_BYTES)
            continue;
        uint64_t seq = gbx_store_seq_from_key(k + dl + 1);
        if (seq >= durable) {
            /* written, not yet synced: its sender has no receipt and a
               crash may take it back. Caught up all the same: this and
               every later entry reach gbx_dispatch_accepted after their
               fsync (the store's durable mark moves before the writer hands
               the jobs back), so no store read is needed for them */
            break;
        }
        d->cursor = seq + 1;
        if (s_entry(self, seq))
            continue; /* in flight, or a job of ours is pending */
        gbx_qentry_t q;
        if (gbx_qentry_decode(v, vl, &q) != GBX_OK)
            continue;
        s_entry_t *e = s_entry_add(self, d, seq, &q);
        if (!e) {
            ended = 0;
            break;
        }
        s_ready(e, 0, 0);
    }
    if (gbx_store_iter_error(it) != GBX_OK)
        ended = 0;
    gbx_store_iter_destroy(&it);
    if (ended)
        d->caught_up = 1;
}

/* ---------------------------------------------------------------- deliver */

/*  Starts delivering E to session S: credit taken, MARK to the writer. */
static void s_start(gbx_dispatch_t *self, s_entry_t *e, s_session_t *s)
{
    gbx_job_t *job = s_job(GBX_JOB_MARK, e->dest->id, e->seq);
    if (!job)
        return;
    s_unready(e);
    e->st = S_MARKING;
    e->sess = s;
    e->ack_seen = 0;
    s->credit_msgs--;
    s->credit_bytes -= e->q.payload;
    s->inflight++;
    s->inflight_bytes += e->q.payload;
    s_give(self, job);
}

/*  E's MARK led to no Deliver: its session (if still open) gets back the
    credit s_start took, and one fewer in flight. */
static void s_refund(s_entry_t *e)
{
    s_session_t *s = e->sess;
    if (!s)
        return;
    s->credit_msgs = s->credit_msgs == UINT32_MAX ? UINT32_MAX : s->credit_msgs + 1;
    s->credit_bytes =
        e->q.payload > UINT64_MAX - s->credit_bytes ? UINT64_MAX : s->credit_bytes + e->q.payload;
    s_release(e);
}

/*  Ends E (in no list): KIND (EXPIRE, DEADLETTER) to the writer. */
static void s_end(gbx_dispatch_t *self, s_entry_t *e, gbx_job_kind_t kind)
{
    gbx_job_t *job = s_job(kind, e->dest->id, e->seq);
    if (!job) { /* try again later from the store */
        s_forget(self, e);
        return;
    }
    e->st = S_ENDING;
    s_give(self, job);
}

/*  Hands D's ready messages to its credited sessions, each up to its
    credit and the in-flight window. */
static void s_pump(gbx_dispatch_t *self, s_dest_t *d)
{
    if (self->stopping)
        return;
    s_session_t *s, *tmp;
    int credited = 0;
    HASH_ITER(hh, self->sessions, s, tmp)
    if (strcmp(s->agency, d->id) == 0 && s->credit_msgs > 0 && s->credit_bytes > 0)
        credited = 1;
    if (!credited)
        return; /* nothing to hand out: no reads either */
    s_refill(self, d);
    uint64_t now = s_now(self), mono = s_mono();
    HASH_ITER(hh, self->sessions, s, tmp)
    {
        if (strcmp(s->agency, d->id) != 0)
            continue;
        size_t scanned = 0;
        s_entry_t *e = d->ready, *next;
        while (e && s->credit_msgs > 0 && s->credit_bytes > 0 &&
               s->inflight < self->o.inflight_window && scanned++ < S_SCAN_MAX &&
               self->pending < S_PENDING_MAX) {
            next = e->next;
            if (now >= e->q.expires_at_ms) {
                s_unready(e);
                s_end(self, e, GBX_JOB_EXPIRE);
            } else if (e->deadline <= mono && e->q.payload <= s->credit_bytes &&
                       (s->inflight == 0 || s->inflight_bytes + e->q.payload <= S_INFLIGHT_BYTES)) {
                s_start(self, e, s);
            }
            e = next;
            if (!e && 2 * d->nready <= self->o.window && !d->caught_up) {
                s_refill(self, d);
                e = d->ready;
            }
        }
    }
}

/*  E's MARK counted an attempt but no Deliver left (its session is gone):
    not an attempt, for the next Deliver's attempt number, the backoff and
    MAX_ATTEMPTS (5-adapter.md 7.2, 7.4). Memory now, the store by an UNMARK
    job, which the writer applies before any later job for E (one FIFO). */
static void s_unsent(gbx_dispatch_t *self, s_entry_t *e)
{
    if (e->q.attempts > 0)
        e->q.attempts--;
    gbx_job_t *job = s_job(GBX_JOB_UNMARK, e->dest->id, e->seq);
    if (!job)
        return; /* the store keeps the count: conservative */
    job->delivery_id = e->delivery_id;
    s_give(self, job);
}

/*  E (marked, in no list, e->sess its session) did not go out: back to the
    queue at once, unless it expired meanwhile. */
static void s_back(gbx_dispatch_t *self, s_entry_t *e, int counted)
{
    if (counted)
        s_unsent(self, e);
    s_refund(e);
    if (s_now(self) >= e->q.expires_at_ms)
        s_end(self, e, GBX_JOB_EXPIRE);
    else
        s_ready(e, 1, s_mono() + self->o.backoff_min_ms);
}

/*  MARK done for E: read the message and send it. */
static void s_send_deliver(gbx_dispatch_t *self, s_entry_t *e)
{
    s_session_t *s = e->sess;
    if (s_now(self) >= e->q.expires_at_ms) { /* expired during the MARK (7.2) */
        s_back(self, e, 1);
        return;
    }
    uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
    gbx_store_seq_key(e->seq, key);
    uint8_t *v = NULL;
    size_t vlen = 0;
    gbx_envelope_t *env = NULL;
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    if (gbx_store_get(self->o.store, GBX_KS_MESSAGES, key, sizeof key, &v, &vlen) != GBX_OK || !v ||
        vlen < 4) {
        free(v);
        s_log(self, "GBX-DELIVER-FAILED seq=%llu why=message-unreadable",
              (unsigned long long)e->seq);
        s_back(self, e, 1);
        return;
    }
    size_t elen = (size_t)v[0] << 24 | (size_t)v[1] << 16 | (size_t)v[2] << 8 | v[3];
    if (elen > vlen - 4 || gbx_envelope_decode(v + 4, elen, &env) != GBX_OK ||
        gbx_frame_deliver(e->delivery_id, e->q.attempts, env, &p1, &l1) != GBX_OK) {
        gbx_envelope_destroy(&env);
        free(v);
        s_log(self, "GBX-DELIVER-FAILED seq=%llu why=message-undecodable",
              (unsigned long long)e->seq);
        s_back(self, e, 1);
        return;
    }
    gbx_envelope_destroy(&env);
    int r = self->o.send(self->o.arg, s->rid, s->rid_len, p1, l1, v + 4 + elen, vlen - 4 - elen, v);
    free(p1);
    if (r == GBX_DISPATCH_BUSY) { /* the session's pipe is full: later, same session */
        s_back(self, e, 1);
        return;
    }
    if (r != 0) {
        s_back(self, e, 1);
        s_close_session(self, s, "send failed");
        return;
    }
    e->st = S_INFLIGHT;
    e->deadline = s_mono() + self->o.ack_timeout_ms;
    DL_APPEND2(self->inflight, e, prev, next);
    self->st.inflight++;
    self->st.delivered++;
    if (e->q.attempts > 1)
        self->st.redelivered++;
}

/* ------------------------------------------------------------------ frames */

static void s_ack(gbx_dispatch_t *self, s_session_t *s, uint64_t delivery_id)
{
    uint64_t seq = gbx_delivery_seq(delivery_id);
    s_entry_t *e = s_entry(self, seq);
    if (e && strcmp(e->dest->id, s->agency) != 0)
        return; /* another agency's message */
    uint32_t n = (uint32_t)(delivery_id & GBX_DELIVERIES_MAX);
    if (e && e->st != S_ENDING && e->st != S_ACKING && e->q.size &&
        (n == 0 || n > e->q.deliveries + (e->st == S_MARKING)))
        return; /* an id this node never gave (spec 7.3: ignored) */
    if (e && (e->st == S_ACKING || e->st == S_ENDING))
        return;
    if (e && e->st == S_MARKING) {
        e->ack_seen = 1; /* the MARK's return turns into an ACK */
        e->ack_id = delivery_id;
        return;
    }
    s_dest_t *d = s_dest(self, s->agency);
    if (!d)
        return;
    gbx_qentry_t q;
    memset(&q, 0, sizeof q);
    if (!e) {
        /* Not in memory: only a message queued for this very agency, durable,
           with that delivery number given, may be acked. An entry in memory
           blocks its sequence from refills, so an id of another agency's
           message must never make one. */
        if (self->pending >= S_PENDING_MAX || seq >= gbx_store_durable_next(self->o.store))
            return; /* a flood: a real ack comes again with the redelivery */
        uint8_t key[GBX_QUEUE_KEY_MAX], *v = NULL;
        size_t klen = 0, vlen = 0;
        if (gbx_store_queue_key(d->id, seq, key, sizeof key, &klen) != GBX_OK ||
            gbx_store_get(self->o.store, GBX_KS_QUEUES, key, klen, &v, &vlen) != GBX_OK || !v)
            return;
        gbx_err_t rc = gbx_qentry_decode(v, vlen, &q);
        free(v);
        if (rc != GBX_OK || n == 0 || n > q.deliveries)
            return;
    }
    gbx_job_t *job = s_job(GBX_JOB_ACK, d->id, seq);
    if (!job)
        return; /* the message is delivered again: at least once */
    if (!e) {
        e = s_entry_add(self, d, seq, &q);
        if (!e) {
            gbx_job_free(job);
            return;
        }
    } else if (e->st == S_INFLIGHT) {
        DL_DELETE2(self->inflight, e, prev, next);
        e->prev = e->next = NULL;
        self->st.inflight--;
        s_release(e);
    } else if (e->st == S_QUEUED) {
        s_unready(e);
    }
    e->st = S_ACKING;
    job->delivery_id = delivery_id;
    s_give(self, job);
}

void gbx_dispatch_frame(gbx_dispatch_t *self, const uint8_t *rid, size_t rid_len,
                        const char *agency, const gbx_frame_t *frame)
{
    if (!self || !frame)
        return;
    s_session_t *s = s_session(self, rid, rid_len);
    if (!s)
        return; /* gbx_dispatch_seen comes first */
    const Gbx__V1__Frame *f = gbx_frame_message(frame);
    switch (gbx_frame_kind(frame)) {
    case GBX_FRAME_CREDIT: {
        const Gbx__V1__Credit *c = f->credit;
        uint64_t m = (uint64_t)s->credit_msgs + c->messages;
        s->credit_msgs = m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
        s->credit_bytes =
            c->bytes > UINT64_MAX - s->credit_bytes ? UINT64_MAX : s->credit_bytes + c->bytes;
        s_dest_t *d = s_dest(self, agency);
        if (d)
            s_pump(self, d);
        break;
    }
    case GBX_FRAME_ACK:
        for (size_t i = 0; i < f->ack->n_delivery_ids; i++)
            s_ack(self, s, f->ack->delivery_ids[i]);
        break;
    case GBX_FRAME_PING: {
        uint8_t *p1 = NULL;
        size_t l1 = 0;
        if (gbx_frame_pong(f->tag, f->ping->nonce, &p1, &l1) == GBX_OK) {
            int r = self->o.send(self->o.arg, s->rid, s->rid_len, p1, l1, NULL, 0, NULL);
            free(p1);
            if (r == GBX_DISPATCH_GONE)
                s_close_session(self, s, "send failed");
        }
        break;
    }
    default: /* Pong: being seen is all it does */
        break;
    }
}

void gbx_dispatch_accepted(gbx_dispatch_t *self, const gbx_job_t *job)
{
    if (!self || !job || job->sub.result.reason != GBX_OK || job->sub.result.duplicate ||
        job->sub.result.held || !job->sub.result.seq)
        return;
    s_dest_t *d = s_dest(self, job->sub.result.dest);
    if (!d)
        return;
    uint64_t seq = job->sub.result.seq;
    if (seq < d->cursor || s_entry(self, seq))
        return; /* a refill found it already */
    if (!d->caught_up || d->nready >= self->o.window) {
        d->caught_up = 0; /* the store has it; a refill will read it */
        return;
    }
    const gbx_header_t *h = gbx_envelope_header(gbx_frame_envelope(job->sub.frame));
    gbx_qentry_t q;
    memset(&q, 0, sizeof q);
    q.size = job->sub.size;
    q.payload = gbx_frame_payload_size(job->sub.frame);
    q.expires_at_ms = h->expires_at_ms;
    snprintf(q.from, sizeof q.from, "%s", h->from_agency);
    memcpy(q.message_id, job->sub.msg_id, GBX_MSG_ID_BYTES);
    s_entry_t *e = s_entry_add(self, d, seq, &q);
    if (!e) {
        d->caught_up = 0;
        return;
    }
    d->cursor = seq + 1;
    s_ready(e, 0, 0);
    s_pump(self, d);
}

/*  Counts a job back from the writer. */
static void s_job_back(gbx_dispatch_t *self, const gbx_job_t *job)
{
    if (self->pending)
        self->pending--;
    if (job->kind == GBX_JOB_FORGET || job->sweep)
        if (self->sweep_pending)
            self->sweep_pending--;
}

void gbx_dispatch_drop(gbx_dispatch_t *self, gbx_job_t *job)
{
    if (self && job)
        s_job_back(self, job);
    gbx_job_free(job);
}

void gbx_dispatch_done(gbx_dispatch_t *self, gbx_job_t *job)
{
    if (!self || !job)
        return;
    s_job_back(self, job);
    int ok = job->commit == GBX_OK && job->rc == GBX_OK;
    s_entry_t *e = job->kind == GBX_JOB_FORGET ? NULL : s_entry(self, job->seq);
    char idhex[2 * GBX_MSG_ID_BYTES + 1];
    switch (job->kind) {
    case GBX_JOB_MARK:
        if (!e || e->st != S_MARKING)
            break;
        if (job->commit != GBX_OK) { /* not marked: back to queued */
            s_refund(e);
            s_forget(self, e);
            break;
        }
        if (job->rc == GBX_E_DEAD_LETTERED) { /* no delivery ids left */
            s_refund(e);
            s_end(self, e, GBX_JOB_DEADLETTER);
            break;
        }
        if (job->rc != GBX_OK) { /* gone from the queue meanwhile */
            s_refund(e);
            s_entry_free(self, e);
            break;
        }
        e->q = job->entry;
        e->delivery_id = gbx_delivery_id(e->seq, e->q.deliveries);
        if (e->ack_seen) { /* acked while marking: do not send */
            s_unsent(self, e);
            s_refund(e);
            gbx_job_t *ack = s_job(GBX_JOB_ACK, e->dest->id, e->seq);
            if (!ack) {
                s_forget(self, e);
                break;
            }
            e->st = S_ACKING;
            ack->delivery_id = e->ack_id;
            s_give(self, ack);
            break;
        }
        if (!e->sess) { /* its session closed meanwhile: nothing was sent */
            s_back(self, e, 1);
            break;
        }
        s_send_deliver(self, e);
        break;
    case GBX_JOB_ACK:
        if (ok)
            self->st.acked++;
        if (!e || e->st != S_ACKING)
            break;
        if (job->commit != GBX_OK || job->rc != GBX_OK)
            s_forget(self, e); /* not recorded (or not a valid id): the store decides */
        else
            s_entry_free(self, e);
        break;
    case GBX_JOB_EXPIRE:
    case GBX_JOB_DEADLETTER:
        if (ok) {
            int dead = job->kind == GBX_JOB_DEADLETTER;
            if (dead)
                self->st.dead_lettered++;
            else
                self->st.expired++;
            s_hex16(job->entry.message_id, idhex);
            s_log(self, "GBX-%s seq=%llu message_id=%s from=%s to=%s",
                  dead ? "DEAD-LETTERED" : "EXPIRED", (unsigned long long)job->seq, idhex,
                  job->entry.from, job->dest);
            if (job->entry.from[0])
                s_notice(self, job->entry.from, job->entry.message_id,
                         dead ? GBX_E_DEAD_LETTERED : GBX_E_EXPIRED);
        }
        if (e && e->st == S_ENDING) {
            if (job->commit != GBX_OK)
                s_forget(self, e);
            else
                s_entry_free(self, e);
        }
        break;
    case GBX_JOB_RELEASE:
    case GBX_JOB_REPLAY:
        if (ok) { /* queued again, below the refill's cursor */
            s_dest_t *d = s_dest(self, job->dest);
            if (d) {
                if (d->cursor > job->seq)
                    d->cursor = job->seq;
                d->caught_up = 0;
            }
            s_hex16(job->entry.message_id, idhex);
            s_log(self, "GBX-%s seq=%llu message_id=%s from=%s to=%s by=%s",
                  job->kind == GBX_JOB_RELEASE ? "HOLD-APPROVED" : "REPLAYED",
                  (unsigned long long)job->seq, idhex, job->entry.from, job->dest, job->by);
        }
        break;
    case GBX_JOB_PURGE:
        if (ok) {
            s_hex16(job->entry.message_id, idhex);
            s_log(self, "GBX-PURGED seq=%llu message_id=%s from=%s to=%s by=%s",
                  (unsigned long long)job->seq, idhex, job->entry.from, job->dest, job->by);
        }
        break;
    case GBX_JOB_REFUSE:
        if (ok) {
            s_hex16(job->entry.message_id, idhex);
            s_log(self, "GBX-HOLD-%s seq=%llu message_id=%s from=%s to=%s by=%s",
                  job->reason == GBX_E_HOLD_REJECTED  ? "REJECTED"
                  : job->reason == GBX_E_HOLD_TIMEOUT ? "TIMEOUT"
                                                      : "EXPIRED",
                  (unsigned long long)job->seq, idhex, job->entry.from, job->dest, job->by);
            if (job->entry.from[0])
                s_notice(self, job->entry.from, job->entry.message_id, job->reason);
        }
        break;
    default: /* UNMARK, FORGET: nothing more to do */
        break;
    }
    gbx_job_free(job);
    s_dest_t *d, *tmp;
    HASH_ITER(hh, self->dests, d, tmp)
    s_pump(self, d);
}

/* ------------------------------------------------------------------ timers */

/*  Due keys up to now: expire queued messages, forget old dedupe records.
    Resumes where the previous sweep stopped (the keys before it are gone
    or belong to messages that were in flight), and starts from the first key
    again every S_SWEEP_RESTART_MS: a message that came back from flight
    after its key was passed is expired by the pump when credit meets it, or
    by the next full sweep, so its EXPIRED notice may come up to a minute
    late. */
static void s_sweep(gbx_dispatch_t *self)
{
    uint64_t mono = s_mono();
    if (self->sweep_pending || mono < self->next_sweep)
        return;
    self->next_sweep = mono + S_SWEEP_EVERY_MS;
    if (mono >= self->sweep_restart) {
        self->sweep_from_key = 0;
        self->sweep_restart = mono + S_SWEEP_RESTART_MS;
    }
    uint64_t now = s_now(self);
    gbx_store_iter_t *it = NULL;
    if (gbx_store_iter_from(self->o.store, GBX_KS_EXPIRY, NULL, 0, self->sweep_key,
                            self->sweep_from_key ? GBX_DUE_KEY_LEN : 0, &it) != GBX_OK)
        return;
    for (size_t n = 0; gbx_store_iter_valid(it) && n < S_SWEEP_MAX; gbx_store_iter_next(it)) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = gbx_store_iter_key(it, &kl);
        const uint8_t *v = gbx_store_iter_value(it, &vl);
        uint64_t at = 0, seq = 0;
        gbx_due_kind_t kind;
        if (gbx_due_parse(k, kl, &at, &seq, &kind) != GBX_OK)
            continue;
        if (at > now)
            break;
        memcpy(self->sweep_key, k, GBX_DUE_KEY_LEN);
        self->sweep_from_key = 1;
        if (kind == GBX_DUE_HOLD) { /* no approver decided in time */
            gbx_job_t *job = NULL;
            if (vl == 0 || vl > GBX_ID_MAX || !(job = gbx_job_new(GBX_JOB_REFUSE)))
                break;
            memcpy(job->dest, v, vl);
            job->dest[vl] = '\0';
            job->seq = seq;
            job->reason = GBX_E_HOLD_TIMEOUT;
            snprintf(job->by, sizeof job->by, "gbxd");
            job->sweep = 1;
            self->sweep_pending++;
            s_give(self, job);
            n++;
            continue;
        }
        if (kind == GBX_DUE_DEDUPE) {
            gbx_job_t *job = gbx_job_new(GBX_JOB_FORGET);
            if (!job || !(job->val = malloc(vl ? vl : 1))) {
                gbx_job_free(job);
                break;
            }
            memcpy(job->due, k, GBX_DUE_KEY_LEN);
            memcpy(job->val, v, vl);
            job->vlen = vl;
            self->sweep_pending++;
            s_give(self, job);
            n++;
            continue;
        }
        /* a queued message past its time; in flight ones end on return */
        char dest[GBX_ID_MAX + 1];
        if (vl == 0 || vl > GBX_ID_MAX)
            continue;
        memcpy(dest, v, vl);
        dest[vl] = '\0';
        s_dest_t *d = s_dest(self, dest);
        s_entry_t *e = s_entry(self, seq);
        if (e && e->st != S_QUEUED)
            continue;
        gbx_job_t *job = s_job(GBX_JOB_EXPIRE, dest, seq);
        if (!job)
            break;
        if (e) {
            s_unready(e);
            e->st = S_ENDING;
        } else if (d && (e = s_entry_add(self, d, seq, NULL))) {
            e->st = S_ENDING; /* so that a refill does not load it meanwhile */
        }
        job->sweep = 1;
        self->sweep_pending++;
        s_give(self, job);
        n++;
    }
    gbx_store_iter_destroy(&it);
}

void gbx_dispatch_tick(gbx_dispatch_t *self)
{
    if (!self)
        return;
    uint64_t mono = s_mono();
    /* ack timeouts: the list is in deadline order */
    while (self->inflight && self->inflight->deadline <= mono) {
        s_entry_t *e = self->inflight;
        char idhex[2 * GBX_MSG_ID_BYTES + 1];
        s_hex16(e->q.message_id, idhex);
        s_log(self, "GBX-ACK-TIMEOUT seq=%llu message_id=%s to=%s attempt=%u",
              (unsigned long long)e->seq, idhex, e->dest->id, (unsigned)e->q.attempts);
        s_return(self, e);
    }
    /* silent sessions, unless gbxd itself stopped reading them */
    s_session_t *s, *tmp;
    HASH_ITER(hh, self->sessions, s, tmp)
    if (!self->paused && mono > s->last_seen + self->o.session_timeout_ms)
        s_close_session(self, s, "timeout");
    /* notices kept because a send would have blocked */
    s_agency_t *a, *at;
    HASH_ITER(hh, self->agencies, a, at)
    if (a->notices)
        s_flush_agency(self, a);
    s_sweep(self);
    s_dest_t *d, *dt;
    HASH_ITER(hh, self->dests, d, dt)
    s_pump(self, d);
}

void gbx_dispatch_pause(gbx_dispatch_t *self, int paused)
{
    if (!self || !!paused == self->paused)
        return;
    self->paused = !!paused;
    if (!paused) { /* what the sessions said meanwhile is being read now */
        uint64_t mono = s_mono();
        s_session_t *s, *tmp;
        HASH_ITER(hh, self->sessions, s, tmp)
        s->last_seen = mono;
    }
}

void gbx_dispatch_stop(gbx_dispatch_t *self)
{
    if (self)
        self->stopping = 1;
}

/* ------------------------------------------------------------- life cycle */

gbx_err_t gbx_dispatch_new(const gbx_dispatch_opts_t *opts, gbx_dispatch_t **out)
{
    if (!opts || !out || !opts->store || !opts->registry || !opts->node_id || !opts->send ||
        !opts->job || opts->max_attempts == 0 || opts->ack_timeout_ms == 0 ||
        opts->session_timeout_ms == 0)
        return GBX_E_ARG;
    gbx_dispatch_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->o = *opts;
    if (!self->o.window)
        self->o.window = S_WINDOW_DEFAULT;
    if (!self->o.inflight_window)
        self->o.inflight_window = S_INFLIGHT_DEFAULT;
    if (!self->o.backoff_min_ms)
        self->o.backoff_min_ms = S_BACKOFF_MIN;
    if (!self->o.backoff_max_ms)
        self->o.backoff_max_ms = S_BACKOFF_MAX;
    if (!self->o.clock)
        self->o.clock = s_realtime;
    size_t n = gbx_registry_agency_count(opts->registry);
    for (size_t i = 0; i < n; i++) {
        const gbx_agency_t *a = gbx_registry_agency_at(opts->registry, i);
        if (strcmp(a->node, opts->node_id) != 0)
            continue;
        s_dest_t *d = calloc(1, sizeof *d);
        if (!d) {
            gbx_dispatch_destroy(&self);
            return GBX_E_NOMEM;
        }
        snprintf(d->id, sizeof d->id, "%s", a->id);
        HASH_ADD_STR(self->dests, id, d);
    }
    *out = self;
    return GBX_OK;
}

void gbx_dispatch_destroy(gbx_dispatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_dispatch_t *self = *self_p;
    s_entry_t *e, *et;
    HASH_ITER(hh, self->entries, e, et)
    {
        HASH_DEL(self->entries, e);
        free(e);
    }
    s_dest_t *d, *dt;
    HASH_ITER(hh, self->dests, d, dt)
    {
        HASH_DEL(self->dests, d);
        free(d);
    }
    s_agency_t *a, *at;
    HASH_ITER(hh, self->agencies, a, at)
    {
        s_notice_t *n, *nt;
        LL_FOREACH_SAFE(a->notices, n, nt)
        free(n);
        HASH_DEL(self->agencies, a);
        free(a);
    }
    s_session_t *s, *st;
    HASH_ITER(hh, self->sessions, s, st)
    {
        HASH_DEL(self->sessions, s);
        free(s);
    }
    free(self);
    *self_p = NULL;
}

void gbx_dispatch_stats(const gbx_dispatch_t *self, gbx_dispatch_stats_t *out)
{
    if (self && out)
        *out = self->st;
}

void gbx_dispatch_agency(const gbx_dispatch_t *self, const char *agency, gbx_dispatch_agency_t *out)
{
    memset(out, 0, sizeof *out);
    out->last_seen_ago_ms = UINT64_MAX;
    if (!self || !agency)
        return;
    uint64_t last = 0;
    const s_session_t *s, *st;
    HASH_ITER(hh, self->sessions, s, st)
    {
        if (strcmp(s->agency, agency) != 0)
            continue;
        out->sessions++;
        out->credit_msgs += s->credit_msgs;
        out->credit_bytes += s->credit_bytes;
        out->inflight += s->inflight;
        out->inflight_bytes += s->inflight_bytes;
        if (s->last_seen > last)
            last = s->last_seen;
    }
    const s_agency_t *a = NULL;
    HASH_FIND_STR(self->agencies, agency, a);
    if (a) {
        out->notices = a->nnotices;
        if (a->last_seen > last)
            last = a->last_seen;
    }
    const s_dest_t *d = NULL;
    HASH_FIND_STR(self->dests, agency, d);
    if (d)
        out->in_memory = d->nready;
    uint64_t now = s_mono();
    if (last)
        out->last_seen_ago_ms = now > last ? now - last : 0;
}

size_t gbx_dispatch_pending(const gbx_dispatch_t *self)
{
    return self ? self->pending : 0;
}
