/*  metrics.c: owns a node's counters, gauges and histograms, their
    Prometheus text, and the health checks (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CLASSES     7    /* DataClass 0..6 (0: not a class: "UNKNOWN") */
#define S_REASONS     1000 /* reason codes below this are counted by code */
#define S_COMMANDS    256  /* (command, result) pairs counted: commands x results, all fit */
#define S_ID_MAX      64
#define S_HEALTH_MS   5000 /* the loop must have turned within this */
#define S_RATE_WINDOW 60000.0

typedef _Atomic uint64_t s_au64_t;

/* bucket bounds in ns; the +Inf bucket is the count */
static const uint64_t s_latency_ns[] = {1000000,     2500000,     5000000,     10000000,
                                        25000000,    50000000,    100000000,   250000000,
                                        500000000,   1000000000,  2500000000,  5000000000,
                                        10000000000, 30000000000, 60000000000, 300000000000};
static const uint64_t s_fsync_ns[] = {50000,     100000,    250000,    500000,    1000000,
                                      2500000,   5000000,   10000000,  25000000,  50000000,
                                      100000000, 250000000, 500000000, 1000000000};
#define S_BUCKETS_MAX 16

typedef struct {
    const uint64_t *bounds;
    size_t n;
    s_au64_t buckets[S_BUCKETS_MAX]; /* not cumulative: bucket i counts (bound[i-1], bound[i]] */
    s_au64_t count;
    s_au64_t sum_ns;
} s_hist_t;

typedef struct {
    char id[S_ID_MAX + 1];
    s_au64_t v[GBX_MA_COUNT_];
    /* the rates: touched by gbx_metrics_tick only, read under the mutex */
    uint64_t last_in, last_out;
    double rate_in, rate_out;
} s_agency_t;

typedef struct {
    char id[S_ID_MAX + 1];
    _Atomic int up;
} s_peer_t;

typedef struct {
    char cmd[32];
    char result[32];
    s_au64_t n;
} s_command_t;

struct gbx_metrics {
    char node[S_ID_MAX + 1];
    char jur[4];
    char version[32];
    uint64_t start_wall_ms;
    s_au64_t accepted[S_CLASSES][GBX_DIR_COUNT_];
    s_au64_t held[S_CLASSES][GBX_DIR_COUNT_];
    s_au64_t rejected[S_REASONS];
    s_au64_t counters[GBX_MC_COUNT_];
    s_au64_t gauges[GBX_MG_COUNT_];
    s_hist_t hist[GBX_MH_COUNT_];
    s_agency_t *agencies;
    size_t nagencies;
    s_peer_t *peers;
    size_t npeers;
    pthread_mutex_t mx; /* the strings below, the commands table, the rates */
    char policy_version[128];
    char policy_hash[2 * 32 + 1];
    int draining;
    char drain_by[S_ID_MAX + 1];
    uint64_t drain_since;
    s_command_t commands[S_COMMANDS];
    size_t ncommands;
    uint64_t last_tick_ms;
};

static const char *const s_class_names[S_CLASSES] = {
    "UNKNOWN", "PUBLIC", "INTERNAL", "PERSONAL", "SENSITIVE_PERSONAL", "IMPORTANT", "CORE"};
static const char *const s_dir_names[GBX_DIR_COUNT_] = {"hk_to_gd", "gd_to_hk", "hk_to_hk",
                                                        "gd_to_gd"};

static const gbx_err_t s_reasons[] = {
#define S_REASON_(name, num, wire, text) GBX_E_##name,
    GBX_ERRORS(S_REASON_)
#undef S_REASON_
};

const char *gbx_metrics_class_name(int data_class)
{
    return data_class > 0 && data_class < S_CLASSES ? s_class_names[data_class] : "UNKNOWN";
}

const char *gbx_metrics_direction_name(gbx_direction_t dir)
{
    return (unsigned)dir < GBX_DIR_COUNT_ ? s_dir_names[dir] : "unknown";
}

gbx_direction_t gbx_metrics_direction(int from_is_gd, int to_is_gd)
{
    if (from_is_gd)
        return to_is_gd ? GBX_DIR_GD_TO_GD : GBX_DIR_GD_TO_HK;
    return to_is_gd ? GBX_DIR_HK_TO_GD : GBX_DIR_HK_TO_HK;
}

/* ------------------------------------------------------------ lifecycle */

gbx_err_t gbx_metrics_new(const gbx_metrics_opts_t *o, gbx_metrics_t **out)
{
    if (!o || !out || !o->node_id || (o->nagencies && !o->agencies) || (o->npeers && !o->peers))
        return GBX_E_ARG;
    gbx_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->agencies = o->nagencies ? calloc(o->nagencies, sizeof *self->agencies) : NULL;
    self->peers = o->npeers ? calloc(o->npeers, sizeof *self->peers) : NULL;
    if ((o->nagencies && !self->agencies) || (o->npeers && !self->peers)) {
        free(self->agencies);
        free(self->peers);
        free(self);
        return GBX_E_NOMEM;
    }
    snprintf(self->node, sizeof self->node, "%s", o->node_id);
    snprintf(self->jur, sizeof self->jur, "%s", o->jurisdiction ? o->jurisdiction : "");
    snprintf(self->version, sizeof self->version, "%s", o->version ? o->version : "");
    self->start_wall_ms = o->start_wall_ms;
    for (size_t i = 0; i < o->nagencies; i++)
        snprintf(self->agencies[i].id, sizeof self->agencies[i].id, "%s", o->agencies[i]);
    self->nagencies = o->nagencies;
    for (size_t i = 0; i < o->npeers; i++)
        snprintf(self->peers[i].id, sizeof self->peers[i].id, "%s", o->peers[i]);
    self->npeers = o->npeers;
    self->hist[GBX_MH_DELIVERY].bounds = s_latency_ns;
    self->hist[GBX_MH_DELIVERY].n = sizeof s_latency_ns / sizeof s_latency_ns[0];
    self->hist[GBX_MH_ACCEPT].bounds = s_latency_ns;
    self->hist[GBX_MH_ACCEPT].n = sizeof s_latency_ns / sizeof s_latency_ns[0];
    self->hist[GBX_MH_FSYNC].bounds = s_fsync_ns;
    self->hist[GBX_MH_FSYNC].n = sizeof s_fsync_ns / sizeof s_fsync_ns[0];
    snprintf(self->policy_version, sizeof self->policy_version, "none");
    pthread_mutex_init(&self->mx, NULL);
    *out = self;
    return GBX_OK;
}

void gbx_metrics_destroy(gbx_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_metrics_t *self = *self_p;
    pthread_mutex_destroy(&self->mx);
    free(self->agencies);
    free(self->peers);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------- counting */

#define S_ADD(a, n) atomic_fetch_add_explicit(&(a), (n), memory_order_relaxed)
#define S_SET(a, n) atomic_store_explicit(&(a), (n), memory_order_relaxed)
#define S_GET(a)    atomic_load_explicit(&(a), memory_order_relaxed)

void gbx_metrics_accepted(gbx_metrics_t *self, int data_class, gbx_direction_t dir, int held)
{
    if (!self || (unsigned)dir >= GBX_DIR_COUNT_)
        return;
    int c = data_class > 0 && data_class < S_CLASSES ? data_class : 0;
    S_ADD(self->accepted[c][dir], 1);
    if (held)
        S_ADD(self->held[c][dir], 1);
}

void gbx_metrics_rejected(gbx_metrics_t *self, gbx_err_t reason)
{
    if (self && (unsigned)reason < S_REASONS)
        S_ADD(self->rejected[reason], 1);
}

void gbx_metrics_count(gbx_metrics_t *self, gbx_mcounter_t c, uint64_t n)
{
    if (self && (unsigned)c < GBX_MC_COUNT_)
        S_ADD(self->counters[c], n);
}

void gbx_metrics_count_set(gbx_metrics_t *self, gbx_mcounter_t c, uint64_t total)
{
    if (self && (unsigned)c < GBX_MC_COUNT_ && total > S_GET(self->counters[c]))
        S_SET(self->counters[c], total);
}

void gbx_metrics_observe(gbx_metrics_t *self, gbx_mhist_t h, uint64_t ns)
{
    if (!self || (unsigned)h >= GBX_MH_COUNT_)
        return;
    s_hist_t *hi = &self->hist[h];
    size_t b = 0;
    while (b < hi->n && ns > hi->bounds[b])
        b++;
    if (b < hi->n)
        S_ADD(hi->buckets[b], 1);
    S_ADD(hi->count, 1);
    S_ADD(hi->sum_ns, ns);
}

void gbx_metrics_command(gbx_metrics_t *self, const char *cmd, const char *result)
{
    if (!self || !cmd || !result)
        return;
    pthread_mutex_lock(&self->mx);
    size_t i = 0;
    for (; i < self->ncommands; i++)
        if (strcmp(self->commands[i].cmd, cmd) == 0 &&
            strcmp(self->commands[i].result, result) == 0)
            break;
    if (i == self->ncommands && i < S_COMMANDS) {
        snprintf(self->commands[i].cmd, sizeof self->commands[i].cmd, "%s", cmd);
        snprintf(self->commands[i].result, sizeof self->commands[i].result, "%s", result);
        self->ncommands++;
    }
    if (i < self->ncommands)
        S_ADD(self->commands[i].n, 1);
    pthread_mutex_unlock(&self->mx);
}

int gbx_metrics_agency(const gbx_metrics_t *self, const char *agency)
{
    for (size_t i = 0; self && agency && i < self->nagencies; i++)
        if (strcmp(self->agencies[i].id, agency) == 0)
            return (int)i;
    return -1;
}

size_t gbx_metrics_agency_count(const gbx_metrics_t *self)
{
    return self ? self->nagencies : 0;
}

const char *gbx_metrics_agency_id(const gbx_metrics_t *self, size_t i)
{
    return self && i < self->nagencies ? self->agencies[i].id : NULL;
}

static int s_slot_ok(const gbx_metrics_t *self, int slot, gbx_magency_t g)
{
    return self && slot >= 0 && (size_t)slot < self->nagencies && (unsigned)g < GBX_MA_COUNT_;
}

void gbx_metrics_agency_set(gbx_metrics_t *self, int slot, gbx_magency_t g, uint64_t v)
{
    if (s_slot_ok(self, slot, g))
        S_SET(self->agencies[slot].v[g], v);
}

void gbx_metrics_agency_add(gbx_metrics_t *self, int slot, gbx_magency_t g, int64_t delta)
{
    if (!s_slot_ok(self, slot, g))
        return;
    s_au64_t *a = &self->agencies[slot].v[g];
    uint64_t cur = S_GET(*a), next;
    do /* never below 0 */
        next = delta < 0 && (uint64_t)-delta > cur ? 0 : cur + (uint64_t)delta;
    while (!atomic_compare_exchange_weak_explicit(a, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed));
}

uint64_t gbx_metrics_agency_get(const gbx_metrics_t *self, int slot, gbx_magency_t g)
{
    return s_slot_ok(self, slot, g) ? S_GET(((gbx_metrics_t *)self)->agencies[slot].v[g]) : 0;
}

void gbx_metrics_agency_rates(const gbx_metrics_t *self, int slot, double *in, double *out)
{
    *in = *out = 0;
    if (!s_slot_ok(self, slot, GBX_MA_IN))
        return;
    gbx_metrics_t *m = (gbx_metrics_t *)self;
    pthread_mutex_lock(&m->mx);
    *in = m->agencies[slot].rate_in;
    *out = m->agencies[slot].rate_out;
    pthread_mutex_unlock(&m->mx);
}

void gbx_metrics_set(gbx_metrics_t *self, gbx_mgauge_t g, uint64_t v)
{
    if (self && (unsigned)g < GBX_MG_COUNT_)
        S_SET(self->gauges[g], v);
}

uint64_t gbx_metrics_get(const gbx_metrics_t *self, gbx_mgauge_t g)
{
    return self && (unsigned)g < GBX_MG_COUNT_ ? S_GET(((gbx_metrics_t *)self)->gauges[g]) : 0;
}

uint64_t gbx_metrics_counter(const gbx_metrics_t *self, gbx_mcounter_t c)
{
    return self && (unsigned)c < GBX_MC_COUNT_ ? S_GET(((gbx_metrics_t *)self)->counters[c]) : 0;
}

void gbx_metrics_totals(const gbx_metrics_t *self, uint64_t *accepted, uint64_t *held,
                        uint64_t *rejected)
{
    uint64_t a = 0, h = 0, r = 0;
    gbx_metrics_t *m = (gbx_metrics_t *)self;
    for (int c = 0; m && c < S_CLASSES; c++)
        for (int d = 0; d < GBX_DIR_COUNT_; d++) {
            a += S_GET(m->accepted[c][d]);
            h += S_GET(m->held[c][d]);
        }
    for (int i = 0; m && i < S_REASONS; i++)
        r += S_GET(m->rejected[i]);
    if (accepted)
        *accepted = a;
    if (held)
        *held = h;
    if (rejected)
        *rejected = r;
}

void gbx_metrics_peer(gbx_metrics_t *self, const char *peer, int up)
{
    for (size_t i = 0; self && peer && i < self->npeers; i++)
        if (strcmp(self->peers[i].id, peer) == 0)
            atomic_store(&self->peers[i].up, up ? 1 : 0);
}

int gbx_metrics_peer_up(const gbx_metrics_t *self, const char *peer)
{
    for (size_t i = 0; self && peer && i < self->npeers; i++)
        if (strcmp(self->peers[i].id, peer) == 0)
            return atomic_load(&((gbx_metrics_t *)self)->peers[i].up);
    return 0;
}

void gbx_metrics_policy(gbx_metrics_t *self, const char *version, const char *hash_hex,
                        size_t rules)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mx);
    snprintf(self->policy_version, sizeof self->policy_version, "%s", version ? version : "none");
    snprintf(self->policy_hash, sizeof self->policy_hash, "%s", hash_hex ? hash_hex : "");
    pthread_mutex_unlock(&self->mx);
    gbx_metrics_set(self, GBX_MG_POLICY_RULES, rules);
}

void gbx_metrics_draining(gbx_metrics_t *self, int on, const char *by, uint64_t at_wall_ms)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mx);
    self->draining = on ? 1 : 0;
    snprintf(self->drain_by, sizeof self->drain_by, "%s", on && by ? by : "");
    self->drain_since = on ? at_wall_ms : 0;
    pthread_mutex_unlock(&self->mx);
}

int gbx_metrics_is_draining(const gbx_metrics_t *self, char *by, size_t bylen,
                            uint64_t *since_wall_ms)
{
    if (!self)
        return 0;
    gbx_metrics_t *m = (gbx_metrics_t *)self;
    pthread_mutex_lock(&m->mx);
    int on = m->draining;
    if (by && bylen)
        snprintf(by, bylen, "%s", m->drain_by);
    if (since_wall_ms)
        *since_wall_ms = m->drain_since;
    pthread_mutex_unlock(&m->mx);
    return on;
}

void gbx_metrics_tick(gbx_metrics_t *self, uint64_t mono_ms)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mx);
    uint64_t last = self->last_tick_ms;
    self->last_tick_ms = mono_ms;
    double dt = last && mono_ms > last ? (double)(mono_ms - last) : 0;
    /* an exponentially weighted average over about a minute */
    double alpha = dt > 0 ? 1.0 - exp(-dt / S_RATE_WINDOW) : 0;
    for (size_t i = 0; i < self->nagencies; i++) {
        s_agency_t *a = &self->agencies[i];
        uint64_t in = S_GET(a->v[GBX_MA_IN]), out = S_GET(a->v[GBX_MA_OUT]);
        if (dt > 0) {
            a->rate_in += alpha * ((double)(in - a->last_in) * 1000.0 / dt - a->rate_in);
            a->rate_out += alpha * ((double)(out - a->last_out) * 1000.0 / dt - a->rate_out);
        }
        a->last_in = in;
        a->last_out = out;
    }
    pthread_mutex_unlock(&self->mx);
}

/* --------------------------------------------------------------- health */

static size_t s_iec(uint64_t bytes, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    int n = snprintf(out, cap, u ? "%.1f%s" : "%.0f%s", v, units[u]);
    return n < 0 ? 0 : (size_t)n;
}

void gbx_metrics_health(const gbx_metrics_t *self, uint64_t mono_now_ms, gbx_health_t *out)
{
    memset(out, 0, sizeof *out);
    if (!self) {
        snprintf(out->why, sizeof out->why, "starting: not yet running\n");
        return;
    }
    FILE *f = fmemopen(out->why, sizeof out->why - 1, "w");
    int healthy = 1, ready = 1;
    uint64_t loop = gbx_metrics_get(self, GBX_MG_LOOP_MS);
    if (!loop || mono_now_ms > loop + S_HEALTH_MS) {
        healthy = 0;
        if (f)
            fprintf(f, "loop: the main loop has not turned for %llu ms\n",
                    (unsigned long long)(loop ? mono_now_ms - loop : 0));
    }
    if (gbx_metrics_get(self, GBX_MG_STORE_BROKEN)) {
        healthy = 0;
        if (f)
            fprintf(f, "store: an fsync failed; gbxd stops and must be restarted\n");
    }
    char by[S_ID_MAX + 1];
    if (gbx_metrics_is_draining(self, by, sizeof by, NULL)) {
        ready = 0;
        if (f)
            fprintf(f, "draining: gbxctl drain by %s\n", by);
    }
    if (gbx_metrics_get(self, GBX_MG_STORE_FAILING)) {
        ready = 0;
        if (f)
            fprintf(f, "writes: the store's last write failed (GBX-STORE-ERROR in the log); new "
                       "messages are answered STORE_FAILED\n");
    }
    uint64_t free_b = gbx_metrics_get(self, GBX_MG_DISK_FREE);
    uint64_t min_b = gbx_metrics_get(self, GBX_MG_DISK_MIN);
    if (gbx_metrics_get(self, GBX_MG_DISK_LOW)) {
        ready = 0;
        char a[32], b[32];
        s_iec(free_b, a, sizeof a);
        s_iec(min_b, b, sizeof b);
        if (f)
            fprintf(f,
                    "disk: %s free under node.data_dir, below limits.min_free_disk_bytes %s (or "
                    "not yet a tenth above it again)\n",
                    a, b);
    }
    if (f)
        fclose(f);
    out->healthy = healthy;
    out->ready = healthy && ready;
}

/* --------------------------------------------------------------- render */

/*  A label value: backslash, quote and newline escaped. */
static void s_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void s_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_hist(FILE *f, const char *name, const char *help, s_hist_t *h)
{
    s_family(f, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += S_GET(h->buckets[i]);
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, (double)h->bounds[i] / 1e9,
                (unsigned long long)cum);
    }
    /* read count after the buckets: it is at least their sum (an observation
       counts its bucket first), so the histogram stays consistent */
    uint64_t count = S_GET(h->count);
    if (count < cum)
        count = cum;
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
    fprintf(f, "%s_sum %.9f\n", name, (double)S_GET(h->sum_ns) / 1e9);
    fprintf(f, "%s_count %llu\n", name, (unsigned long long)count);
}

static void s_per_agency(FILE *f, gbx_metrics_t *m, const char *name, const char *type,
                         const char *help, gbx_magency_t g, double scale)
{
    s_family(f, name, type, help);
    for (size_t i = 0; i < m->nagencies; i++) {
        fprintf(f, "%s{agency=\"", name);
        s_label(f, m->agencies[i].id);
        fprintf(f, "\"} %.15g\n", (double)S_GET(m->agencies[i].v[g]) * scale);
    }
}

gbx_err_t gbx_metrics_render(gbx_metrics_t *m, uint64_t wall_ms, uint64_t mono_ms, char **text,
                             size_t *len)
{
    if (!m || !text || !len)
        return GBX_E_ARG;
    *text = NULL;
    *len = 0;
    FILE *f = open_memstream(text, len);
    if (!f)
        return GBX_E_NOMEM;
    gbx_health_t h;
    gbx_metrics_health(m, mono_ms, &h);

    s_family(f, "gbx_build_info", "gauge", "gbxd's version, node and jurisdiction");
    fprintf(f, "gbx_build_info{version=\"");
    s_label(f, m->version);
    fprintf(f, "\",node=\"");
    s_label(f, m->node);
    fprintf(f, "\",jurisdiction=\"");
    s_label(f, m->jur);
    fprintf(f, "\"} 1\n");
    s_family(f, "gbx_start_time_seconds", "gauge", "when gbxd started (unix time)");
    fprintf(f, "gbx_start_time_seconds %.3f\n", (double)m->start_wall_ms / 1e3);
    s_family(f, "gbx_ready", "gauge", "1 when /readyz answers 200");
    fprintf(f, "gbx_ready %d\n", h.ready);
    s_family(f, "gbx_draining", "gauge", "1 while draining (gbxctl drain)");
    fprintf(f, "gbx_draining %d\n", gbx_metrics_is_draining(m, NULL, 0, NULL));

    s_family(f, "gbx_messages_accepted_total", "counter",
             "new messages accepted (queued or held), by data class and direction");
    for (int c = 1; c < S_CLASSES; c++)
        for (int d = 0; d < GBX_DIR_COUNT_; d++)
            fprintf(f, "gbx_messages_accepted_total{data_class=\"%s\",direction=\"%s\"} %llu\n",
                    s_class_names[c], s_dir_names[d], (unsigned long long)S_GET(m->accepted[c][d]));
    s_family(f, "gbx_messages_held_total", "counter",
             "of the accepted messages, those held for an approver");
    for (int c = 1; c < S_CLASSES; c++)
        for (int d = 0; d < GBX_DIR_COUNT_; d++)
            fprintf(f, "gbx_messages_held_total{data_class=\"%s\",direction=\"%s\"} %llu\n",
                    s_class_names[c], s_dir_names[d], (unsigned long long)S_GET(m->held[c][d]));
    s_family(f, "gbx_messages_rejected_total", "counter", "submissions refused, by reason");
    for (size_t i = 0; i < sizeof s_reasons / sizeof s_reasons[0]; i++) {
        gbx_err_t r = s_reasons[i];
        if (r == GBX_OK || !gbx_err_on_wire(r) || (unsigned)r >= S_REASONS)
            continue;
        fprintf(f, "gbx_messages_rejected_total{reason=\"%s\"} %llu\n", gbx_err_name(r),
                (unsigned long long)S_GET(m->rejected[r]));
    }
    static const struct {
        gbx_mcounter_t c;
        const char *name, *help;
    } counters[] = {
        {GBX_MC_DUPLICATE, "gbx_messages_duplicate_total",
         "resubmissions answered with the original receipt"},
        {GBX_MC_DELIVERED, "gbx_messages_delivered_total", "Deliver frames sent"},
        {GBX_MC_REDELIVERED, "gbx_messages_redelivered_total",
         "Deliver frames that were not a message's first attempt"},
        {GBX_MC_ACKED, "gbx_messages_acked_total", "messages acknowledged by their serving agency"},
        {GBX_MC_EXPIRED, "gbx_messages_expired_total", "messages expired before delivery"},
        {GBX_MC_DEAD_LETTERED, "gbx_messages_dead_lettered_total",
         "messages moved to the dead-letter queue"},
        {GBX_MC_REPLAYED, "gbx_messages_replayed_total", "dead letters queued again by operators"},
        {GBX_MC_PURGED, "gbx_messages_purged_total", "dead letters deleted by operators"},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        s_family(f, counters[i].name, "counter", counters[i].help);
        fprintf(f, "%s %llu\n", counters[i].name,
                (unsigned long long)S_GET(m->counters[counters[i].c]));
    }
    s_hist(f, "gbx_delivery_latency_seconds",
           "from acceptance to the serving agency's acknowledgement", &m->hist[GBX_MH_DELIVERY]);
    s_hist(f, "gbx_accept_latency_seconds",
           "from receiving a submission to sending its durable answer", &m->hist[GBX_MH_ACCEPT]);
    s_hist(f, "gbx_store_fsync_seconds", "each fsync of the store", &m->hist[GBX_MH_FSYNC]);

    s_per_agency(f, m, "gbx_queue_messages", "gauge",
                 "messages waiting for the agency (queued, in flight, held)", GBX_MA_QUEUE_MESSAGES,
                 1);
    s_per_agency(f, m, "gbx_queue_bytes", "gauge", "their stored bytes", GBX_MA_QUEUE_BYTES, 1);
    s_family(f, "gbx_queue_oldest_age_seconds", "gauge",
             "age of the oldest queued message (0: none)");
    for (size_t i = 0; i < m->nagencies; i++) {
        uint64_t at = S_GET(m->agencies[i].v[GBX_MA_OLDEST_MS]);
        fprintf(f, "gbx_queue_oldest_age_seconds{agency=\"");
        s_label(f, m->agencies[i].id);
        fprintf(f, "\"} %.3f\n", at && wall_ms > at ? (double)(wall_ms - at) / 1e3 : 0.0);
    }
    s_per_agency(f, m, "gbx_queue_in_total", "counter", "messages that joined the queue", GBX_MA_IN,
                 1);
    s_per_agency(f, m, "gbx_queue_out_total", "counter",
                 "messages that left the queue (acked, expired, dead-lettered, refused)",
                 GBX_MA_OUT, 1);
    s_per_agency(f, m, "gbx_dlq_messages", "gauge", "dead letters", GBX_MA_DLQ, 1);
    s_per_agency(f, m, "gbx_sessions", "gauge", "adapter sessions connected", GBX_MA_SESSIONS, 1);
    s_per_agency(f, m, "gbx_inflight", "gauge", "deliveries in flight", GBX_MA_INFLIGHT, 1);

    s_family(f, "gbx_peer_up", "gauge", "1 when the peer link to that node is up");
    for (size_t i = 0; i < m->npeers; i++) {
        fprintf(f, "gbx_peer_up{peer=\"");
        s_label(f, m->peers[i].id);
        fprintf(f, "\"} %d\n", atomic_load(&m->peers[i].up));
    }

    pthread_mutex_lock(&m->mx);
    s_family(f, "gbx_policy_info", "gauge", "the policy in force");
    fprintf(f, "gbx_policy_info{version=\"");
    s_label(f, m->policy_version);
    fprintf(f, "\",hash=\"");
    s_label(f, m->policy_hash);
    fprintf(f, "\"} 1\n");
    s_family(f, "gbx_control_commands_total", "counter", "operators' commands, by result");
    for (size_t i = 0; i < m->ncommands; i++)
        fprintf(f, "gbx_control_commands_total{command=\"%s\",result=\"%s\"} %llu\n",
                m->commands[i].cmd, m->commands[i].result,
                (unsigned long long)S_GET(m->commands[i].n));
    pthread_mutex_unlock(&m->mx);
    s_family(f, "gbx_policy_rules", "gauge", "rules of the policy in force");
    fprintf(f, "gbx_policy_rules %llu\n",
            (unsigned long long)gbx_metrics_get(m, GBX_MG_POLICY_RULES));

    uint64_t cp = gbx_metrics_get(m, GBX_MG_CHECKPOINT_MS);
    s_family(f, "gbx_audit_records", "gauge", "records on the audit trail");
    fprintf(f, "gbx_audit_records %llu\n",
            (unsigned long long)gbx_metrics_get(m, GBX_MG_AUDIT_RECORDS));
    s_family(f, "gbx_audit_unsigned_records", "gauge",
             "records after the latest signed checkpoint");
    fprintf(f, "gbx_audit_unsigned_records %llu\n",
            (unsigned long long)gbx_metrics_get(m, GBX_MG_AUDIT_UNSIGNED));
    s_family(f, "gbx_audit_checkpoint_age_seconds", "gauge",
             "age of the latest checkpoint (since start when there is none)");
    uint64_t since = cp ? cp : m->start_wall_ms;
    fprintf(f, "gbx_audit_checkpoint_age_seconds %.3f\n",
            wall_ms > since ? (double)(wall_ms - since) / 1e3 : 0.0);
    s_family(f, "gbx_store_disk_free_bytes", "gauge", "bytes free for gbxd under node.data_dir");
    fprintf(f, "gbx_store_disk_free_bytes %llu\n",
            (unsigned long long)gbx_metrics_get(m, GBX_MG_DISK_FREE));
    s_family(f, "gbx_store_disk_free_min_bytes", "gauge",
             "limits.min_free_disk_bytes: below it the node refuses new messages");
    fprintf(f, "gbx_store_disk_free_min_bytes %llu\n",
            (unsigned long long)gbx_metrics_get(m, GBX_MG_DISK_MIN));
    s_family(f, "gbx_pipeline_jobs", "gauge",
             "submissions between their receipt and their durable answer");
    fprintf(f, "gbx_pipeline_jobs %llu\n", (unsigned long long)gbx_metrics_get(m, GBX_MG_PIPELINE));
    if (fclose(f) != 0 || !*text) {
        free(*text);
        *text = NULL;
        *len = 0;
        return GBX_E_NOMEM;
    }
    return GBX_OK;
}
