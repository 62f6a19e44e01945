/*  gbx_metrics: what a node counts and measures, for Prometheus and for
    gbxctl (issue 6, deliverable 3; docs/metrics.md names every metric).

    One object per gbxd, written by several threads and read by others:
    counters, gauges and histogram buckets are atomics (relaxed: each value
    is exact, a scrape is not a snapshot of all of them at one instant), and
    the few strings (the policy's version, who drains) are under a mutex.
    Nothing here touches the store; the threads that know a value set it:
      loop      accepted / rejected / duplicates (when the answer is
                durable), deliveries, acks, expiry, dead letters, replays,
                purges, latencies, sessions, in-flight, DLQ depth, the
                oldest queued message, disk space, audit trail, draining,
                the loop's heartbeat
      writer    queue depth (the ingress's counters, after each group)
      syncer    fsync latency
    gbx_metrics_render writes the Prometheus text exposition format
    (version 0.0.4); gbx_metrics_health says what /healthz and /readyz
    answer. Per-agency values are kept for the agencies this node serves,
    fixed at creation (the registry does not change while gbxd runs). */
#ifndef GBX_METRICS_H
#define GBX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"

/*  Counters of message events, node-wide. */
typedef enum {
    GBX_MC_DUPLICATE = 0, /* answered with the original receipt */
    GBX_MC_DELIVERED,     /* Deliver frames sent */
    GBX_MC_REDELIVERED,   /* of which not the first attempt */
    GBX_MC_ACKED,
    GBX_MC_EXPIRED,
    GBX_MC_DEAD_LETTERED,
    GBX_MC_REPLAYED, /* dead letters queued again by an operator */
    GBX_MC_PURGED,   /* dead letters deleted by an operator */
    GBX_MC_COUNT_
} gbx_mcounter_t;

/*  Histograms (observed in nanoseconds, exported in seconds). */
typedef enum {
    GBX_MH_DELIVERY = 0, /* acceptance -> the serving agency's ack */
    GBX_MH_ACCEPT,       /* a submission received -> its durable answer sent */
    GBX_MH_FSYNC,        /* one fsync of the store */
    GBX_MH_COUNT_
} gbx_mhist_t;

/*  Per destination agency of this node. */
typedef enum {
    GBX_MA_QUEUE_MESSAGES = 0, /* queued, in flight and held */
    GBX_MA_QUEUE_BYTES,
    GBX_MA_OLDEST_MS, /* acceptance time (wall ms) of the oldest queued entry; 0: none */
    GBX_MA_DLQ,       /* dead letters */
    GBX_MA_SESSIONS,
    GBX_MA_INFLIGHT,
    GBX_MA_IN,  /* counter: messages that joined the queue */
    GBX_MA_OUT, /* counter: messages that left it (acked, expired, dead-lettered, refused) */
    GBX_MA_COUNT_
} gbx_magency_t;

/*  Node-wide gauges. */
typedef enum {
    GBX_MG_LOOP_MS = 0,    /* monotonic ms of the loop's last turn (heartbeat) */
    GBX_MG_STORE_BROKEN,   /* 1 after a failed fsync */
    GBX_MG_STORE_FAILING,  /* 1 while the writer's last commit failed */
    GBX_MG_DISK_FREE,      /* bytes free for gbxd under node.data_dir */
    GBX_MG_DISK_MIN,       /* limits.min_free_disk_bytes */
    GBX_MG_DISK_LOW,       /* 1 while new messages are refused for the disk (the loop
                              decides, with its margin) */
    GBX_MG_PIPELINE,       /* submissions between receipt and answer */
    GBX_MG_AUDIT_RECORDS,  /* records on the trail */
    GBX_MG_AUDIT_UNSIGNED, /* records after the latest checkpoint */
    GBX_MG_CHECKPOINT_MS,  /* wall ms of the latest checkpoint; 0: none */
    GBX_MG_POLICY_RULES,
    GBX_MG_COUNT_
} gbx_mgauge_t;

typedef enum {
    GBX_DIR_HK_TO_GD = 0,
    GBX_DIR_GD_TO_HK,
    GBX_DIR_HK_TO_HK,
    GBX_DIR_GD_TO_GD,
    GBX_DIR_COUNT_
} gbx_direction_t;

typedef struct {
    const char *node_id;         /* copied */
    const char *jurisdiction;    /* "HK" or "GD"; copied */
    const char *version;         /* gbxd's; copied */
    const char *const *agencies; /* the agencies this node serves (copied) */
    size_t nagencies;
    const char *const *peers; /* the other nodes of the registry (copied) */
    size_t npeers;
    uint64_t start_wall_ms;
} gbx_metrics_opts_t;

typedef struct gbx_metrics gbx_metrics_t;

gbx_err_t gbx_metrics_new(const gbx_metrics_opts_t *opts, gbx_metrics_t **out);
/*  NULL-safe. No thread may use it any more. */
void gbx_metrics_destroy(gbx_metrics_t **self_p);

/*  Every function below is NULL-safe (a NULL SELF does nothing, reads 0),
    and may be called from any thread. */

/*  A new message accepted (HELD: for an approver) of DATA_CLASS (the
    DataClass enum value) in DIR. */
void gbx_metrics_accepted(gbx_metrics_t *self, int data_class, gbx_direction_t dir, int held);
/*  A submission refused with REASON. */
void gbx_metrics_rejected(gbx_metrics_t *self, gbx_err_t reason);
void gbx_metrics_count(gbx_metrics_t *self, gbx_mcounter_t c, uint64_t n);
/*  Counter C is TOTAL now (copied from a module's own statistics; never
    lower than before). */
void gbx_metrics_count_set(gbx_metrics_t *self, gbx_mcounter_t c, uint64_t total);
void gbx_metrics_observe(gbx_metrics_t *self, gbx_mhist_t h, uint64_t ns);
/*  An operator's command (one of the control socket's, or "unknown") and
    its result ("ok" or the error's name). */
void gbx_metrics_command(gbx_metrics_t *self, const char *cmd, const char *result);

/*  The slot of AGENCY, or -1 when this node does not serve it. */
int gbx_metrics_agency(const gbx_metrics_t *self, const char *agency);
/*  The number of slots, and slot I's agency id. */
size_t gbx_metrics_agency_count(const gbx_metrics_t *self);
const char *gbx_metrics_agency_id(const gbx_metrics_t *self, size_t i);
void gbx_metrics_agency_set(gbx_metrics_t *self, int slot, gbx_magency_t g, uint64_t v);
void gbx_metrics_agency_add(gbx_metrics_t *self, int slot, gbx_magency_t g, int64_t delta);
uint64_t gbx_metrics_agency_get(const gbx_metrics_t *self, int slot, gbx_magency_t g);
/*  The agency's messages per second into and out of its queue, averaged
    over about a minute (gbx_metrics_tick). */
void gbx_metrics_agency_rates(const gbx_metrics_t *self, int slot, double *in, double *out);

void gbx_metrics_set(gbx_metrics_t *self, gbx_mgauge_t g, uint64_t v);
uint64_t gbx_metrics_get(const gbx_metrics_t *self, gbx_mgauge_t g);
uint64_t gbx_metrics_counter(const gbx_metrics_t *self, gbx_mcounter_t c);
/*  Totals over classes and directions, and over reasons. */
void gbx_metrics_totals(const gbx_metrics_t *self, uint64_t *accepted, uint64_t *held,
                        uint64_t *rejected);
/*  PEER's link is up (1) or down (0); unknown peers are ignored. */
void gbx_metrics_peer(gbx_metrics_t *self, const char *peer, int up);
int gbx_metrics_peer_up(const gbx_metrics_t *self, const char *peer);

/*  The policy in force: its version text, hash (hex) and rules. */
void gbx_metrics_policy(gbx_metrics_t *self, const char *version, const char *hash_hex,
                        size_t rules);
/*  Draining (ON 1) since AT_WALL_MS because BY asked, or not (ON 0). */
void gbx_metrics_draining(gbx_metrics_t *self, int on, const char *by, uint64_t at_wall_ms);
/*  1 while draining; BY (BYLEN bytes, may be NULL) gets who asked. */
int gbx_metrics_is_draining(const gbx_metrics_t *self, char *by, size_t bylen,
                            uint64_t *since_wall_ms);

/*  Once a second from the loop: updates the queues' rates. */
void gbx_metrics_tick(gbx_metrics_t *self, uint64_t mono_ms);

/*  /healthz and /readyz. healthy: the loop turned within the last 5 s
    (MONO_NOW_MS against GBX_MG_LOOP_MS) and the store is not broken. ready:
    healthy, not draining, disk free at least the minimum, and the store's
    last write went through. WHY gets one line per failing check ("" when
    all pass), each starting with its check's name: loop:, store: (these
    two make it unhealthy), draining:, disk:, writes:. */
typedef struct {
    int healthy;
    int ready;
    char why[512];
} gbx_health_t;
void gbx_metrics_health(const gbx_metrics_t *self, uint64_t mono_now_ms, gbx_health_t *out);

/*  The Prometheus text exposition of everything (malloc'ed, *len bytes,
    NUL-terminated): GBX_OK, or GBX_E_NOMEM. */
gbx_err_t gbx_metrics_render(gbx_metrics_t *self, uint64_t wall_ms, uint64_t mono_ms, char **text,
                             size_t *len);

/*  The data class's name for a label ("PERSONAL"), "UNKNOWN" outside the
    enum; the direction's ("hk_to_gd"). */
const char *gbx_metrics_class_name(int data_class);
const char *gbx_metrics_direction_name(gbx_direction_t dir);
/*  The direction from jurisdiction FROM to TO ("HK"/"GD"). */
gbx_direction_t gbx_metrics_direction(int from_is_gd, int to_is_gd);

#endif
