/*  gbx_config: gbxd's one YAML configuration file (issue 3, deliverable 1).

    The file has five sections:

      node:     id, jurisdiction, data_dir, keys, policy (this broker)
      listen:   adapter, peer, control, audit_feed, metrics (where it listens)
      limits:   max_payload_bytes, ack_timeout_ms, ... (see GBX_SETTINGS)
      audit:    checkpoint_records, checkpoint_interval_ms (the audit trail)
      registry: nodes, agencies, services, operators  (see gbx_registry)

    Every scalar setting is a row of GBX_SETTINGS below: that one table
    drives parsing, defaults, validation, gbx_config_show and docs/config.md
    (gbx_config_doc_markdown prints the table the doc must contain).

    Registry entries:

      registry:
        nodes:
          - {id: hk-1, jurisdiction: HK, pub: keys/hk-1.pub}
        agencies:
          - id: hk.cr
            jurisdiction: HK
            city: hong-kong            # optional for HK; a GBA city for GD
            node: hk-1
            name: Companies Registry   # optional
            sign: "base64"             # keys inline, as in a .pub file ...
            box: "base64"
            curve: "base64"
          - {id: gd.tax, jurisdiction: GD, city: guangzhou, node: hk-1,
             pub: keys/gd.tax.pub}     # ... or a .pub file
        services:
          - {code: HK-CR-COEXTRACT, version: 1, class: PERSONAL,
             provider: hk.cr, description: "company extract"}
        operators:                     # the control socket's users (gbxctl)
          - {id: op.alice, role: approver, pub: keys/op.alice.pub}

    Relative paths (settings of type path, and pub:) are relative to the
    directory of the config file; the effective values are the joined paths.
    node.id must be one of registry.nodes. The node's secret key file
    (node.keys) is not opened here: gbxd loads it with gbx_identity_load.

    Errors. Unknown keys, wrong types, values out of range, missing required
    settings, duplicates and unknown references all fail the load. The
    message names the place and the setting:
      "gbxd.yaml:12:5: limits.ack_timeout_ms: must be between 100 and 3600000"
    (FILE as passed to gbx_config_load, line and column from 1). Codes:
      GBX_E_IO            the config file or a pub: file cannot be read
      GBX_E_MALFORMED     not YAML, or not a mapping at the top
      GBX_E_FIELD_INVALID unknown key, wrong type, bad or duplicate value,
                          missing required setting
      GBX_E_KEY_FORMAT    an inline key or a pub: file that is not valid
      GBX_E_UNKNOWN_AGENCY an agency's node or a service's provider unknown
      GBX_E_NOMEM, GBX_E_ARG */
#ifndef GBX_CONFIG_H
#define GBX_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "gbx/err.h"
#include "registry.h"

/*  Types of settings; the text forms a file may use:
      INT       decimal integer
      DURATION  milliseconds: an integer, or with unit ms, s, min, h, d ("30s")
      BYTES     an integer, or with unit KiB, MiB, GiB ("64MiB")
      STRING    any non-empty scalar
      ID        an agency / node id (gbx_id_valid)
      JUR       HK or GD
      ENDPOINT  tcp://HOST:PORT (HOST may be *) or ipc:///absolute/path
      HOSTPORT  HOST:PORT (for the metrics HTTP server)
      PATH      a non-empty file path, relative to the config file's dir */
typedef enum {
    GBX_SET_INT,
    GBX_SET_DURATION,
    GBX_SET_BYTES,
    GBX_SET_STRING,
    GBX_SET_ID,
    GBX_SET_JUR,
    GBX_SET_ENDPOINT,
    GBX_SET_HOSTPORT,
    GBX_SET_PATH,
} gbx_setting_type_t;

/*  X(NAME, "path", TYPE, default text or NULL if required, min, max,
      reloadable, "one line of documentation")
    min/max apply to INT, DURATION and BYTES. Reloadable settings may change
    on a configuration reload without a restart. */
#define GBX_SETTINGS(X)                                                                            \
    X(NODE_ID, "node.id", ID, NULL, 0, 0, 0, "this broker's node id; must be in registry.nodes")   \
    X(NODE_JURISDICTION, "node.jurisdiction", JUR, NULL, 0, 0, 0,                                  \
      "HK or GD: the side of the boundary this node runs on")                                      \
    X(NODE_DATA_DIR, "node.data_dir", PATH, "data", 0, 0, 0,                                       \
      "directory of the RocksDB store and the audit log")                                          \
    X(NODE_KEYS, "node.keys", PATH, NULL, 0, 0, 0,                                                 \
      "the node's secret key file (`<id>.secret`, mode 0600)")                                     \
    X(NODE_POLICY, "node.policy", PATH, "policy.yaml", 0, 0, 1,                                    \
      "the policy file (docs/policy.md); SIGHUP reloads it")                                       \
    X(LISTEN_ADAPTER, "listen.adapter", ENDPOINT, "tcp://127.0.0.1:7400", 0, 0, 0,                 \
      "CurveZMQ ROUTER endpoint for agency adapters")                                              \
    X(LISTEN_PEER, "listen.peer", ENDPOINT, "tcp://127.0.0.1:7401", 0, 0, 0,                       \
      "CurveZMQ endpoint for peer brokers across the boundary")                                    \
    X(LISTEN_CONTROL, "listen.control", PATH, "gbxd.ctl", 0, 0, 0,                                 \
      "unix socket of the operator control channel (gbxctl)")                                      \
    X(LISTEN_CONTROL_TCP, "listen.control_tcp", ENDPOINT, "off", 0, 0, 0,                          \
      "also serve the control channel on this tcp:// endpoint (CURVE, operator keys); off: "       \
      "the unix socket only")                                                                      \
    X(LISTEN_AUDIT_FEED, "listen.audit_feed", PATH, "audit.sock", 0, 0, 0,                         \
      "unix socket of the live audit feed (gbx-audit tail -f, SIEM subscribers)")                  \
    X(LISTEN_METRICS, "listen.metrics", HOSTPORT, "127.0.0.1:9400", 0, 0, 0,                       \
      "HTTP address of /metrics, /healthz and /readyz (docs/metrics.md); off: none")               \
    X(LIMITS_MAX_PAYLOAD_BYTES, "limits.max_payload_bytes", BYTES, "16MiB", 1024,                  \
      INT64_C(1073741824), 1, "largest payload accepted (PAYLOAD_TOO_LARGE beyond)")               \
    X(LIMITS_MAX_TTL_MS, "limits.max_ttl_ms", DURATION, "7d", 1000, INT64_C(2592000000), 1,        \
      "longest expires - created accepted (TTL_TOO_LONG beyond)")                                  \
    X(LIMITS_CLOCK_SKEW_MS, "limits.clock_skew_ms", DURATION, "30s", 0, 3600000, 1,                \
      "allowed clock difference for created / expires checks")                                     \
    X(LIMITS_DEDUPE_WINDOW_MS, "limits.dedupe_window_ms", DURATION, "8d", 60000,                   \
      INT64_C(7776000000), 0, "how long message ids are remembered (>= max_ttl_ms)")               \
    X(LIMITS_QUEUE_MAX_MESSAGES, "limits.queue_max_messages", INT, "1000000", 1, 1000000000, 1,    \
      "messages queued per destination before RETRY_LATER")                                        \
    X(LIMITS_QUEUE_MAX_BYTES, "limits.queue_max_bytes", BYTES, "4GiB", 1048576,                    \
      INT64_C(1099511627776), 1, "payload bytes queued per destination before RETRY_LATER")        \
    X(LIMITS_INFLIGHT_WINDOW, "limits.inflight_window", INT, "64", 1, 65536, 1,                    \
      "deliveries in flight (sent, not yet acked) per adapter session, whatever its credit")       \
    X(LIMITS_ACK_TIMEOUT_MS, "limits.ack_timeout_ms", DURATION, "30s", 100, 3600000, 1,            \
      "redelivery after this long without an ack")                                                 \
    X(LIMITS_MAX_ATTEMPTS, "limits.max_attempts", INT, "10", 1, 1000, 1,                           \
      "delivery attempts before a message is dead-lettered")                                       \
    X(LIMITS_SESSION_TIMEOUT_MS, "limits.session_timeout_ms", DURATION, "30s", 1000, 3600000, 1,   \
      "a session silent this long is closed, its deliveries requeued (spec: >= 30 s, 3 "           \
      "heartbeats)")                                                                               \
    X(LIMITS_REDELIVERY_BACKOFF_MS, "limits.redelivery_backoff_ms", DURATION, "100ms", 1, 60000,   \
      1, "first wait before a redelivery; doubles with each attempt, up to 30 s")                  \
    X(LIMITS_HOLD_TIMEOUT_MS, "limits.hold_timeout_ms", DURATION, "24h", 1000,                     \
      INT64_C(2592000000), 1,                                                                      \
      "a message the policy holds is refused (HOLD_TIMEOUT) if no approver decides by then")       \
    X(LIMITS_VERIFY_THREADS, "limits.verify_threads", INT, "2", 1, 64, 0,                          \
      "worker threads verifying signatures")                                                       \
    X(AUDIT_CHECKPOINT_RECORDS, "audit.checkpoint_records", INT, "1000", 1, 1000000000, 0,         \
      "a signed checkpoint of the audit trail after this many records ...")                        \
    X(AUDIT_CHECKPOINT_INTERVAL_MS, "audit.checkpoint_interval_ms", DURATION, "60s", 1000,         \
      86400000, 0, "... or when a record has waited this long for one, whichever comes first")     \
    X(LIMITS_COMMIT_MAX_DELAY_MS, "limits.commit_max_delay_ms", DURATION, "0ms", 0, 1000, 1,       \
      "extra wait for more writes after the first of a group (0: a group is what queued "          \
      "meanwhile)")                                                                                \
    X(LIMITS_MIN_FREE_DISK_BYTES, "limits.min_free_disk_bytes", BYTES, "50MiB", 0,                 \
      INT64_C(1125899906842624), 0,                                                                \
      "below this free under node.data_dir: new messages get RETRY_LATER and /readyz fails")

typedef enum {
#define GBX_SETTING_ENUM_(e, name, type, def, min, max, reload, doc) GBX_SETTING_##e,
    GBX_SETTINGS(GBX_SETTING_ENUM_)
#undef GBX_SETTING_ENUM_
        GBX_SETTING_COUNT_
} gbx_setting_t;

typedef struct gbx_config gbx_config_t;

/*  The config file the operators' tools use without -c: $GBX_HOME/gbxd.yaml;
    else ./.gbx/gbxd.yaml (gbxd's own default) when it exists; else
    /var/lib/gbx/gbxd.yaml when /var/lib/gbx exists (the packaged service,
    packaging/gbxd.service.in); else ./.gbx/gbxd.yaml. Malloc'ed; NULL when
    out of memory. */
char *gbx_config_default_path(void);

/*  Loads and validates the file at PATH. On GBX_OK the caller owns *out;
    otherwise ERRBUF (ERRLEN bytes, may be 0) holds one line:
    "PATH:LINE:COLUMN: SETTING: what is wrong". */
gbx_err_t gbx_config_load(const char *path, gbx_config_t **out, char *errbuf, size_t errlen);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_config_destroy(gbx_config_t **self_p);

/*  The effective value of an INT, DURATION (ms) or BYTES setting; 0 for
    other types. */
int64_t gbx_config_int(const gbx_config_t *self, gbx_setting_t s);
/*  The effective value of any other setting (PATHs joined with the config
    dir; JUR as "HK"/"GD"); borrowed; NULL for numeric types. */
const char *gbx_config_str(const gbx_config_t *self, gbx_setting_t s);
/*  The registry the file describes; borrowed, lives as long as SELF. */
const gbx_registry_t *gbx_config_registry(const gbx_config_t *self);
/*  This node's jurisdiction. */
gbx_jurisdiction_t gbx_config_jurisdiction(const gbx_config_t *self);
/*  The path the config was loaded from; borrowed. */
const char *gbx_config_path(const gbx_config_t *self);

/*  Setting S's effective value as text (numbers in decimal: ms, bytes)
    into VALUE, and where it came from ("default", or "FILE:LINE") into
    SOURCE; both cut to their size. */
void gbx_config_describe(const gbx_config_t *self, gbx_setting_t s, char *value, size_t vlen,
                         char *source, size_t slen);
/*  Writes every setting, one per line, in table order:
      "<name> = <value>  # <default | FILE:LINE>"
    followed by a count of nodes, agencies and services. GBX_E_IO if
    writing fails. */
gbx_err_t gbx_config_show(const gbx_config_t *self, FILE *out);

/*  The table of settings (name, type, default, range, reloadable, doc) as
    a Markdown table; docs/config.md holds exactly this text. */
gbx_err_t gbx_config_doc_markdown(FILE *out);

/*  Table accessors: name ("limits.ack_timeout_ms"), default text (NULL if
    required), 1 if reloadable. S must be < GBX_SETTING_COUNT_. */
const char *gbx_setting_name(gbx_setting_t s);
const char *gbx_setting_default(gbx_setting_t s);
int gbx_setting_reloadable(gbx_setting_t s);

/*  Creates a complete single-node demo configuration in DIR (created with
    mode 0700 if absent): DIR/gbxd.yaml, DIR/keys/ holding the node's keys
    (node "demo-1", HK) and those of six demo agencies (hk.cr, hk.ehealth,
    hk.kiosk, gd.qh-amr, gd.hkush, gd.tax, each <id>.secret and <id>.pub),
    and four services of domain/services.md. The data dir is DIR/data
    (created by gbxd). gbxd, started without a config, calls this on its
    documented default directory and then loads DIR/gbxd.yaml. Refuses to
    overwrite: GBX_E_STATE if DIR/gbxd.yaml exists. On GBX_OK and if PATH_OUT
    is not NULL, *path_out is the malloc'ed path of the file (caller frees). */
gbx_err_t gbx_config_write_default(const char *dir, char **path_out);

#endif
