/*  gbxctl: the operator's command line for a running gbxd, over its control
    socket (broker/control.h; docs/control.md). The operator is known by
    its key: --as ID loads CONFIG_DIR/keys/ID.secret (or --key FILE), whose
    CURVE key the node's registry lists with a role.

    Every command is a row of s_cmds below: its words, the control
    command it sends, its arguments and options, its help, and how its
    answer reads. `gbxctl help COMMAND` and `gbxctl COMMAND --help` print
    that row's help.

    Output: readable text, or with --json the command's data as JSON (one
    object on one line) for scripts. Exit codes: 0 done; 1 refused by gbxd
    (the reason on stderr: NOT_AUTHORIZED, NOT_FOUND, ...); 2 usage or
    configuration; 3 gbxd did not answer in time. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "gbx/identity.h"

enum { S_EXIT_OK = 0, S_EXIT_REFUSED = 1, S_EXIT_USAGE = 2, S_EXIT_TIMEOUT = 3 };

/* ------------------------------------------------------------- options */

/*  Command options: --flag VALUE -> args["arg"] (a number when INTEGER). */
typedef struct {
    const char *flag, *arg;
    int integer;
} s_field_t;

static const s_field_t s_fields[] = {
    {"from", "from", 0},
    {"to", "to", 0},
    {"service", "service", 0},
    {"version", "version", 1},
    {"kind", "kind", 0},
    {"class", "class", 0},
    {"marking", "marking", 0},
    {"purpose", "purpose", 0},
    {"route", "route", 0},
    {"route-ref", "route_ref", 0},
    {"consent", "consent", 0},
    {"consent-ref", "consent_ref", 0},
    {"impact-ref", "impact_ref", 0},
    {"end-user", "end_user", 0},
    {"agreement-ref", "agreement_ref", 0},
    {"release-ref", "release_ref", 0},
    {"subjects", "subjects", 1},
    {"payload-bytes", "payload_bytes", 1},
    {"ttl-ms", "ttl_ms", 1},
    {"comment", "comment", 0},
    {"upto", "upto", 1},
    {"keep-ms", "keep_ms", 1},
    {"agency", "agency", 0},
    {"limit", "limit", 1},
};
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

/*  Flags of the commands themselves (not sent as arguments). */
enum { S_FLAG_ALL = 1, S_FLAG_WAIT = 2, S_FLAG_CANCEL = 4 };

/* ------------------------------------------------------------- the call */

typedef struct {
    void *sock;
    int timeout_ms;
    json_int_t tag;
} s_conn_t;

/*  Sends CMD with ARGS (borrowed) and waits for its answer. The answer, or
    NULL after a message on stderr (*CODE: 3). */
static json_t *s_call(s_conn_t *c, const char *cmd, json_t *args, int *code)
{
    json_t *req = json_pack("{s:I, s:s, s:O}", "tag", ++c->tag, "cmd", cmd, "args", args);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text || zmq_send(c->sock, text, strlen(text), 0) < 0) {
        fprintf(stderr, "gbxctl: cannot send: %s\n", zmq_strerror(errno));
        free(text);
        *code = S_EXIT_TIMEOUT;
        return NULL;
    }
    free(text);
    for (;;) { /* an answer to an earlier, timed-out request is skipped */
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, c->timeout_ms) <= 0) {
            fprintf(stderr,
                    "gbxctl: no answer from gbxd in %d ms (is it running? is your key in "
                    "registry.operators?)\n",
                    c->timeout_ms);
            *code = S_EXIT_TIMEOUT;
            return NULL;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        json_t *ans = NULL;
        if (zmq_msg_recv(&m, c->sock, 0) >= 0)
            ans = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, NULL);
        zmq_msg_close(&m);
        if (!ans) {
            fprintf(stderr, "gbxctl: gbxd's answer is not JSON\n");
            *code = S_EXIT_TIMEOUT;
            return NULL;
        }
        if (json_integer_value(json_object_get(ans, "tag")) == c->tag)
            return ans;
        json_decref(ans);
    }
}

/* ------------------------------------------------------------ printing */

static const char *s_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_int_t s_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static void s_time(json_int_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*  A duration for people: "850ms", "42s", "7m03s", "5h12m", "3d04h"; "-"
    for JSON null (never). */
static const char *s_dur(json_t *v, char out[32])
{
    if (!json_is_integer(v)) {
        snprintf(out, 32, "-");
        return out;
    }
    long long ms = (long long)json_integer_value(v), s = ms / 1000;
    if (ms < 1000)
        snprintf(out, 32, "%lldms", ms);
    else if (s < 60)
        snprintf(out, 32, "%llds", s);
    else if (s < 3600)
        snprintf(out, 32, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, 32, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, 32, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    return out;
}

static const char *s_bytes(json_int_t b, char out[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, 32, u ? "%.1f%s" : "%.0f%s", v, units[u]);
    return out;
}

static void p_status(json_t *d)
{
    json_t *p = json_object_get(d, "policy"), *t = json_object_get(d, "totals");
    json_t *q = json_object_get(d, "queues"), *a = json_object_get(d, "audit");
    json_t *dr = json_object_get(d, "draining"), *disk = json_object_get(d, "disk");
    json_t *peers = json_object_get(d, "peers");
    char b1[32], b2[32], b3[32];
    printf("node      %s\n", s_str(d, "node"));
    printf("side      %s\n", s_str(d, "jurisdiction"));
    printf("version   %s\n", s_str(d, "version"));
    printf("uptime    %s\n", s_dur(json_object_get(d, "uptime_ms"), b1));
    printf("policy    %s (%lld rules, hash %.16s...)\n", s_str(p, "version"),
           (long long)s_int(p, "rules"), s_str(p, "hash"));
    if (json_is_true(json_object_get(dr, "on")))
        printf("state     DRAINING since %s by %s: %s\n", (s_time(s_int(dr, "since_ms"), b1), b1),
               s_str(dr, "by"),
               json_is_true(json_object_get(dr, "drained")) ? "drained (nothing in flight)"
                                                            : "finishing what is in flight");
    else if (json_is_true(json_object_get(d, "ready")))
        printf("state     ready\n");
    else
        printf("state     NOT READY: %s", s_str(d, "not_ready_because"));
    printf("peers     %lld up, %lld down\n", (long long)s_int(peers, "up"),
           (long long)s_int(peers, "down"));
    printf("messages  %lld accepted (%lld held), %lld duplicates, %lld rejected\n",
           (long long)s_int(t, "accepted"), (long long)s_int(t, "held"),
           (long long)s_int(t, "duplicates"), (long long)s_int(t, "rejected"));
    printf("delivery  %lld delivered (%lld again), %lld acked, %lld expired, %lld dead-lettered,\n"
           "          %lld replayed, %lld purged\n",
           (long long)s_int(t, "delivered"), (long long)s_int(t, "redelivered"),
           (long long)s_int(t, "acked"), (long long)s_int(t, "expired"),
           (long long)s_int(t, "dead_lettered"), (long long)s_int(t, "replayed"),
           (long long)s_int(t, "purged"));
    printf("queues    %lld messages (%s), %lld dead letters; %lld sessions, %lld in flight, "
           "%lld in the pipeline\n",
           (long long)s_int(q, "messages"), s_bytes(s_int(q, "bytes"), b1),
           (long long)s_int(q, "dead_letters"), (long long)s_int(d, "sessions"),
           (long long)s_int(d, "inflight"), (long long)s_int(d, "pipeline"));
    printf("audit     %lld records, %lld after the latest checkpoint (%s old)\n",
           (long long)s_int(a, "records"), (long long)s_int(a, "unsigned"),
           s_dur(json_object_get(a, "checkpoint_age_ms"), b2));
    printf("disk      %s free (refuses new messages below %s)\n",
           s_bytes(s_int(disk, "free_bytes"), b1), s_bytes(s_int(disk, "min_free_bytes"), b3));
    printf("you       %s (%s)\n", s_str(d, "operator"), s_str(d, "role"));
}

static void p_agencies(json_t *d)
{
    printf("%-14s %-3s %-10s %-4s %-9s %8s %10s %8s %8s %8s\n", "AGENCY", "JUR", "NODE", "HERE",
           "CONNECTED", "SESSIONS", "LAST_SEEN", "CREDIT", "INFLIGHT", "NOTICES");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "agencies"), i, a)
    {
        char ago[32];
        printf("%-14s %-3s %-10s %-4s %-9s %8lld %10s %8lld %8lld %8lld\n", s_str(a, "id"),
               s_str(a, "jurisdiction"), s_str(a, "node"),
               json_is_true(json_object_get(a, "local")) ? "yes" : "no",
               json_is_true(json_object_get(a, "connected")) ? "yes" : "no",
               (long long)s_int(a, "sessions"), s_dur(json_object_get(a, "last_seen_ago_ms"), ago),
               (long long)s_int(a, "credit_messages"), (long long)s_int(a, "inflight"),
               (long long)s_int(a, "notices_waiting"));
    }
}

static void p_queues(json_t *d)
{
    printf("%-14s %9s %10s %10s %8s %8s %8s %8s %8s\n", "AGENCY", "MESSAGES", "BYTES", "OLDEST",
           "INFLIGHT", "DLQ", "SESSIONS", "IN/S", "OUT/S");
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(d, "queues"), i, q)
    {
        char age[32], b[32];
        printf("%-14s %9lld %10s %10s %8lld %8lld %8lld %8.2f %8.2f\n", s_str(q, "agency"),
               (long long)s_int(q, "messages"), s_bytes(s_int(q, "bytes"), b),
               s_dur(json_object_get(q, "oldest_age_ms"), age), (long long)s_int(q, "inflight"),
               (long long)s_int(q, "dead_letters"), (long long)s_int(q, "sessions"),
               json_real_value(json_object_get(q, "in_per_s")),
               json_real_value(json_object_get(q, "out_per_s")));
    }
}

static void p_peers(json_t *d)
{
    json_t *list = json_object_get(d, "peers");
    if (json_array_size(list) == 0) {
        printf("no peer nodes in the registry\n");
        return;
    }
    printf("%-12s %-3s %-5s %8s  %s\n", "NODE", "JUR", "LINK", "AGENCIES", "DETAIL");
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        printf("%-12s %-3s %-5s %8lld  %s\n", s_str(p, "node"), s_str(p, "jurisdiction"),
               json_is_true(json_object_get(p, "up")) ? "up" : "down",
               (long long)s_int(p, "agencies"), s_str(p, "detail"));
    }
}

static void p_config(json_t *d)
{
    printf("# %s\n", s_str(d, "file"));
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(d, "settings"), i, s)
    {
        printf("%-32s = %-28s # %s\n", s_str(s, "name"), s_str(s, "value"), s_str(s, "source"));
    }
    json_t *r = json_object_get(d, "registry");
    printf("# registry: %lld nodes, %lld agencies, %lld services, %lld operators\n",
           (long long)s_int(r, "nodes"), (long long)s_int(r, "agencies"),
           (long long)s_int(r, "services"), (long long)s_int(r, "operators"));
}

/*  One audit record's fields but the bookkeeping ones, on one line. */
static void s_fields_line(json_t *rec)
{
    static const char *const skip[] = {"v", "event", "at_ms", "i", "chain", "message_id"};
    const char *k;
    json_t *v;
    json_object_foreach(rec, k, v)
    {
        int hide = 0;
        for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
            hide |= strcmp(k, skip[i]) == 0;
        if (!hide)
            printf(" %s=%s", k, json_string_value(v) ? json_string_value(v) : "");
    }
}

static void p_message(json_t *d)
{
    printf("message  %s\nstate    %s\n", s_str(d, "message_id"), s_str(d, "state"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "records"), i, r)
    {
        char at[32];
        s_time((json_int_t)strtoll(s_str(r, "at_ms"), NULL, 10), at);
        printf("%8s  %s  %-14s", s_str(r, "i"), at, s_str(r, "event"));
        s_fields_line(r);
        putchar('\n');
    }
}

static void p_dlq(json_t *d)
{
    printf("%-32s %8s %-12s %-12s %8s %9s  %-20s  %s\n", "MESSAGE_ID", "SEQ", "FROM", "TO",
           "ATTEMPTS", "BYTES", "ACCEPTED", "EXPIRES");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "dead_letters"), i, e)
    {
        char acc[32] = "-", exp[32];
        if (json_is_integer(json_object_get(e, "accepted_at_ms")))
            s_time(s_int(e, "accepted_at_ms"), acc);
        s_time(s_int(e, "expires_at_ms"), exp);
        printf("%-32s %8lld %-12s %-12s %8lld %9lld  %-20s  %s\n", s_str(e, "message_id"),
               (long long)s_int(e, "seq"), s_str(e, "from"), s_str(e, "to"),
               (long long)s_int(e, "attempts"), (long long)s_int(e, "payload_bytes"), acc, exp);
    }
    printf("(%lld dead letters%s)\n", (long long)s_int(d, "total"),
           json_is_true(json_object_get(d, "truncated")) ? ", not all listed" : "");
}

static void p_holds(json_t *d)
{
    printf("%-32s %8s %-12s %-12s %9s  %-20s  %s\n", "MESSAGE_ID", "SEQ", "FROM", "TO", "BYTES",
           "HELD_UNTIL", "EXPIRES");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(d, "holds"), i, h)
    {
        char until[32], exp[32];
        s_time(s_int(h, "until_ms"), until);
        s_time(s_int(h, "expires_at_ms"), exp);
        printf("%-32s %8lld %-12s %-12s %9lld  %-20s  %s\n", s_str(h, "message_id"),
               (long long)s_int(h, "seq"), s_str(h, "from"), s_str(h, "to"),
               (long long)s_int(h, "payload_bytes"), until, exp);
    }
    printf("(%lld held%s)\n", (long long)s_int(d, "total"),
           json_is_true(json_object_get(d, "truncated")) ? ", the first 1000 listed" : "");
}

static void p_decision(json_t *d)
{
    printf("%s %s (seq %lld, %s -> %s)\n", s_str(d, "decision"), s_str(d, "message_id"),
           (long long)s_int(d, "seq"), s_str(d, "from"), s_str(d, "to"));
}

static void p_policy(json_t *d)
{
    printf("version   %s\nhash      %s\nrules     %lld\nfile      %s\n", s_str(d, "version"),
           s_str(d, "hash"), (long long)s_int(d, "rules"), s_str(d, "file"));
}

static void p_check(json_t *d)
{
    printf("%s  %s", s_str(d, "outcome"), s_str(d, "reason"));
    if (*s_str(d, "rule_id"))
        printf("  rule %s v%lld", s_str(d, "rule_id"), (long long)s_int(d, "rule_version"));
    printf("\n  why: %s\n  policy: %.16s...\n", s_str(d, "why"), s_str(d, "policy_hash"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d, "counts"), i, c)
    {
        printf("  counter %s: %lld + %lld\n", s_str(c, "key"), (long long)s_int(c, "now"),
               (long long)s_int(c, "add"));
    }
}

static void p_audit_status(json_t *d)
{
    json_t *cp = json_object_get(d, "checkpoint");
    printf("records     %lld (first kept %lld, durable %lld, %lld not yet in a checkpoint)\n"
           "chain head  %s\n",
           (long long)s_int(d, "records"), (long long)s_int(d, "first"),
           (long long)s_int(d, "durable"), (long long)s_int(d, "uncovered"), s_str(d, "chain"));
    if (!json_is_object(cp)) {
        printf("checkpoint  none yet\n");
        return;
    }
    char at[32];
    s_time(s_int(cp, "at_ms"), at);
    printf("checkpoint  %lld records at %s (%lld s ago), root %s, %zu countersignatures\n"
           "            %s\n",
           (long long)s_int(cp, "size"), at, (long long)(s_int(cp, "age_ms") / 1000),
           s_str(cp, "root"), json_array_size(json_object_get(cp, "cosigners")), s_str(cp, "text"));
}

static void p_prune(json_t *d)
{
    printf("pruned %lld records; the trail now starts at record %lld\n",
           (long long)s_int(d, "deleted"), (long long)s_int(d, "first"));
}

static void p_cosign(json_t *d)
{
    printf("checkpoint of %lld records: countersignatures stored\n", (long long)s_int(d, "size"));
}

static void p_drain(json_t *d)
{
    printf(json_is_true(json_object_get(d, "draining"))
               ? "draining: new messages are refused DRAINING; deliveries go on (by %s)\n"
               : "resumed: the node takes new messages again (by %s)\n",
           s_str(d, "by"));
}

/* ------------------------------------------------------------ commands */

typedef struct s_cmd s_cmd_t;
typedef int (*s_run_fn)(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                        char **pos, int npos);

struct s_cmd {
    const char *words;    /* "dlq replay" */
    const char *wire;     /* the control command */
    const char *role;     /* who may */
    const char *synopsis; /* after the words */
    const char *help;     /* what it does, its options */
    int min_pos, max_pos; /* positional arguments (-1: any number) */
    const char *pos_arg;  /* args[...] a positional goes to */
    const char *options;  /* allowed --options, space separated */
    void (*print)(json_t *data);
    s_run_fn run; /* NULL: one call */
};

static int s_run_one(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                     char **pos, int npos);
static int s_run_each(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                      char **pos, int npos);
static int s_run_drain(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                       char **pos, int npos);

static const char s_check_opts[] =
    "from to service version kind class marking purpose route route-ref consent consent-ref "
    "impact-ref end-user agreement-ref release-ref subjects payload-bytes ttl-ms";

static const s_cmd_t s_cmds[] = {
    {"status", "status", "viewer", "",
     "The node at a glance: version, uptime, policy, ready or draining, peers, totals since "
     "start, queues, the audit trail, disk, and who you are.",
     0, 0, NULL, "", p_status, NULL},
    {"agencies", "agencies", "viewer", "",
     "Every agency of the registry: its side and node, whether this node serves it, whether it "
     "is connected (sessions), when it was last heard from, its unused credit, deliveries in "
     "flight and notices waiting for it. A session ends when its adapter says so or after "
     "limits.session_timeout_ms of silence: an adapter that just exited shows until then.",
     0, 0, NULL, "", p_agencies, NULL},
    {"queues", "queues", "viewer", "",
     "The queue of each agency this node serves: messages waiting (queued, in flight, held) and "
     "their bytes, the oldest one's age, in flight, dead letters, sessions, and the rates in "
     "and out (messages per second, about the last minute).",
     0, 0, NULL, "", p_queues, NULL},
    {"peers", "peers", "viewer", "", "The other nodes of the registry and their peer links.", 0, 0,
     NULL, "", p_peers, NULL},
    {"messages show", "messages.show", "viewer", "ID [--from AGENCY]",
     "The whole life of message ID (32 hex digits) from the audit trail: every record that names "
     "it, in order, and what became of it. The node scans its trail for it in the background. "
     "Ids are unique per sender: when two senders used the same one, --from says whose.",
     1, 1, "id", "from", p_message, NULL},
    {"dlq list", "dlq.list", "viewer", "[--agency ID] [--limit N]",
     "The dead letters (messages delivered max_attempts times without an ack): of one agency, or "
     "all; at most N listed (default 100, at most 1000), all counted.",
     0, 0, NULL, "agency limit", p_dlq, NULL},
    {"dlq replay", "dlq.replay", "operator", "ID... [--from AGENCY] | --all [--agency ID]",
     "Queues dead letters again, attempts from 0 (audited REPLAYED with your id). --all: every "
     "dead letter (of --agency). An expired one cannot be replayed: purge it. Ids are unique "
     "per sender: when two senders' dead letters share one, --from says whose (NOT_UNIQUE).",
     0, -1, "id", "agency all from", p_decision, s_run_each},
    {"dlq purge", "dlq.purge", "admin", "ID... [--from AGENCY] | --all [--agency ID]",
     "Deletes dead letters and their payloads (audited PURGED with your id; the audit records "
     "stay). --all: every dead letter (of --agency). --from as for replay.",
     0, -1, "id", "agency all from", p_decision, s_run_each},
    {"holds list", "holds.list", "viewer", "",
     "The messages the policy holds for an approver (the first 1000; all counted).", 0, 0, NULL, "",
     p_holds, NULL},
    {"holds approve", "holds.approve", "approver", "ID [--comment TEXT] [--from AGENCY]",
     "Releases held message ID to its queue (audited HOLD_APPROVED with your id and comment). "
     "--from: whose, when two senders' held messages share the id (NOT_UNIQUE).",
     1, 1, "id", "comment from", p_decision, NULL},
    {"holds reject", "holds.reject", "approver", "ID --comment TEXT [--from AGENCY]",
     "Refuses held message ID; its sender gets a Notice HOLD_REJECTED (audited with your id and "
     "the comment, which is required). --from as for approve.",
     1, 1, "id", "comment from", p_decision, NULL},
    {"policy show", "policy.show", "viewer", "", "The policy in force: version, hash, rules, file.",
     0, 0, NULL, "", p_policy, NULL},
    {"policy check", "policy.check", "viewer",
     "--from A --to B --service CODE [--version N --kind K --class C --marking M --purpose P "
     "--route R --route-ref X --consent T --consent-ref X --impact-ref X --end-user X "
     "--agreement-ref X --release-ref X --subjects N --payload-bytes N --ttl-ms N]",
     "What the policy would decide for such a message, the rule, why, and the volume counters "
     "it would add to. Nothing is sent or counted. Enum values by their .proto names.",
     0, 0, NULL, s_check_opts, p_check, NULL},
    {"policy reload", "policy.reload", "operator", "",
     "Reads node.policy again (as SIGHUP). An invalid file is refused with its line and column "
     "and the policy in force stays; audited POLICY_LOADED with your id.",
     0, 0, NULL, "", p_policy, NULL},
    {"config show", "config.show", "viewer", "",
     "Every setting as gbxd runs with it, and where it came from (the file and line, or the "
     "default).",
     0, 0, NULL, "", p_config, NULL},
    {"drain", "drain", "operator", "[--wait] [--cancel]",
     "For maintenance: the node stops taking new messages (senders get DRAINING, a reason to "
     "retry elsewhere or later), finishes what is in flight, and /readyz fails. --wait: until "
     "nothing is in flight (at most --timeout-ms). --cancel: take messages again. Audited "
     "NODE_DRAINING / NODE_RESUMED with your id.",
     0, 0, NULL, "wait cancel", p_drain, s_run_drain},
    {"audit status", "audit.status", "viewer", "",
     "The audit trail: records, first kept, latest checkpoint and its age, chain head.", 0, 0, NULL,
     "", p_audit_status, NULL},
    {"audit prune", "audit.prune", "admin", "--upto N | --keep-ms T",
     "Deletes the records before checkpoint N (or older than T ms); export them first "
     "(gbx-audit export). Audited AUDIT_PRUNED.",
     0, 0, NULL, "upto keep-ms", p_prune, NULL},
    {"audit cosign", "audit.cosign", "operator", "CHECKPOINT",
     "Stores a peer node's countersignature of one of this node's checkpoints (the text "
     "gbx-audit cosign printed).",
     1, 1, "checkpoint", "", p_cosign, NULL},
};
#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])

static const char s_globals[] =
    "global options:\n"
    "  -c, --config PATH   gbxd's configuration (default $GBX_HOME/gbxd.yaml, else\n"
    "                      ./.gbx/gbxd.yaml, else the packaged /var/lib/gbx/gbxd.yaml):\n"
    "                      the node's key and listen.control\n"
    "      --as OPERATOR   who you are (registry.operators; default $GBX_OPERATOR)\n"
    "      --key FILE      your secret key file (default CONFIG_DIR/keys/OPERATOR.secret)\n"
    "      --connect EP    gbxd's control endpoint (default ipc://listen.control; or\n"
    "                      listen.control_tcp's tcp://HOST:PORT)\n"
    "      --json          the answer's data as one JSON object on one line\n"
    "      --timeout-ms N  how long to wait for an answer (default 10000)\n"
    "exit: 0 done, 1 refused by gbxd (reason on stderr), 2 usage or configuration,\n"
    "      3 no answer in time\n";

static void s_usage(FILE *f)
{
    fprintf(f, "usage: gbxctl [global options] COMMAND [ARGS]\ncommands (role):\n");
    for (size_t i = 0; i < S_NCMDS; i++)
        fprintf(f, "  %-15s %-10s %s\n", s_cmds[i].words, s_cmds[i].role, s_cmds[i].synopsis);
    fprintf(f,
            "  help [COMMAND]             this, or one command's help\n%s"
            "gbxctl COMMAND --help, or gbxctl help COMMAND, explains a command.\n",
            s_globals);
}

static void s_cmd_help(const s_cmd_t *c, FILE *f)
{
    fprintf(f, "usage: gbxctl [global options] %s %s\n\n", c->words, c->synopsis);
    /* the help text, wrapped at 76 columns */
    const char *p = c->help;
    while (*p) {
        size_t n = strlen(p);
        if (n > 76) {
            n = 76;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = 76;
        }
        fprintf(f, "  %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
    fprintf(f, "\nrole: %s%s\n\n%s", c->role,
            strcmp(c->role, "viewer") == 0  ? " (any operator)"
            : strcmp(c->role, "admin") == 0 ? ""
                                            : " or admin",
            s_globals);
}

/*  The command ARGV names (one or two words); *USED: how many. */
static const s_cmd_t *s_find(char **argv, int argc, int *used)
{
    for (size_t i = 0; i < S_NCMDS; i++) {
        const char *w = s_cmds[i].words, *sp = strchr(w, ' ');
        if (!sp && argc >= 1 && strcmp(argv[0], w) == 0) {
            *used = 1;
            return &s_cmds[i];
        }
        if (sp && argc >= 2 && strlen(argv[0]) == (size_t)(sp - w) &&
            strncmp(argv[0], w, (size_t)(sp - w)) == 0 && strcmp(argv[1], sp + 1) == 0) {
            *used = 2;
            return &s_cmds[i];
        }
    }
    return NULL;
}

static int s_option_allowed(const s_cmd_t *c, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = c->options; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == c->options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* ------------------------------------------------------------- running */

/*  Prints an answer; its exit code. */
static int s_answer(const s_cmd_t *c, json_t *ans, int json_out)
{
    json_t *data = json_object_get(ans, "data");
    if (json_is_true(json_object_get(ans, "ok"))) {
        if (json_out) {
            char *t = json_dumps(data, JSON_COMPACT);
            printf("%s\n", t ? t : "null");
            free(t);
        } else {
            c->print(data);
        }
        return S_EXIT_OK;
    }
    if (json_out) {
        char *t = json_dumps(ans, JSON_COMPACT);
        printf("%s\n", t ? t : "null");
        free(t);
    }
    fprintf(stderr, "gbxctl: %s: %s\n", s_str(ans, "error"), s_str(ans, "detail"));
    return S_EXIT_REFUSED;
}

static int s_run_one(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                     char **pos, int npos)
{
    (void)flags;
    if (npos == 1)
        json_object_set_new(args, c->pos_arg, json_string(pos[0]));
    int code = S_EXIT_OK;
    json_t *ans = s_call(conn, c->wire, args, &code);
    if (!ans)
        return code;
    code = s_answer(c, ans, json_out);
    json_decref(ans);
    return code;
}

/*  dlq replay / purge: each ID in turn, or with --all each dead letter
    listed (of --agency) until none is left. The worst exit code of all. */
static int s_run_each(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                      char **pos, int npos)
{
    int all = flags & S_FLAG_ALL;
    if (all == (npos > 0)) {
        fprintf(stderr, "gbxctl %s: message ids, or --all\n", c->words);
        return S_EXIT_USAGE;
    }
    if (!all && json_object_get(args, "agency")) {
        fprintf(stderr, "gbxctl %s: --agency goes with --all\n", c->words);
        return S_EXIT_USAGE;
    }
    int worst = S_EXIT_OK;
    size_t done = 0;
    if (all && json_object_get(args, "from")) {
        fprintf(stderr, "gbxctl %s: --from goes with ids (--all names each one's place)\n",
                c->words);
        return S_EXIT_USAGE;
    }
    for (int i = 0; i < npos; i++) {
        json_t *a = json_pack("{s:s}", "id", pos[i]);
        if (json_object_get(args, "from"))
            json_object_set(a, "from", json_object_get(args, "from"));
        int code = S_EXIT_OK;
        json_t *ans = s_call(conn, c->wire, a, &code);
        json_decref(a);
        if (!ans)
            return code;
        code = s_answer(c, ans, json_out);
        json_decref(ans);
        done += code == S_EXIT_OK;
        worst = code > worst ? code : worst;
    }
    while (all) { /* the list shrinks as we go: stop when a round changes nothing */
        json_t *la = json_pack("{s:I}", "limit", (json_int_t)1000);
        if (json_object_get(args, "agency"))
            json_object_set(la, "agency", json_object_get(args, "agency"));
        int code = S_EXIT_OK;
        json_t *list = s_call(conn, "dlq.list", la, &code);
        json_decref(la);
        if (!list)
            return code;
        if (!json_is_true(json_object_get(list, "ok"))) {
            code = s_answer(c, list, json_out);
            json_decref(list);
            return code;
        }
        json_t *entries = json_object_get(json_object_get(list, "data"), "dead_letters");
        size_t k, round = 0;
        json_t *e;
        json_array_foreach(entries, k, e)
        {
            /* with its place: the node reads it at once instead of looking for it */
            json_t *a = json_pack("{s:s, s:s, s:I}", "id", s_str(e, "message_id"), "to",
                                  s_str(e, "to"), "seq", s_int(e, "seq"));
            json_t *ans = s_call(conn, c->wire, a, &code);
            json_decref(a);
            if (!ans) {
                json_decref(list);
                return code;
            }
            code = s_answer(c, ans, json_out);
            json_decref(ans);
            round += code == S_EXIT_OK;
            worst = code > worst ? code : worst;
        }
        size_t listed = json_array_size(entries);
        json_decref(list);
        done += round;
        if (listed == 0 || round == 0)
            break;
    }
    if (all && !json_out)
        printf("(%zu %s)\n", done, strcmp(c->wire, "dlq.replay") == 0 ? "replayed" : "purged");
    return worst;
}

/*  drain [--cancel] [--wait] */
static int s_run_drain(const s_cmd_t *c, s_conn_t *conn, json_t *args, int flags, int json_out,
                       char **pos, int npos)
{
    (void)pos;
    (void)npos;
    if ((flags & S_FLAG_CANCEL) && (flags & S_FLAG_WAIT)) {
        fprintf(stderr, "gbxctl drain: --wait or --cancel, not both\n");
        return S_EXIT_USAGE;
    }
    json_object_set_new(args, "on", json_boolean(!(flags & S_FLAG_CANCEL)));
    int code = S_EXIT_OK;
    json_t *ans = s_call(conn, c->wire, args, &code);
    if (!ans)
        return code;
    /* already draining is fine for --wait: wait for it. With --wait the
       answer printed is the end: {"draining": true, "drained": true, "by"} */
    int already = strcmp(s_str(ans, "error"), "ALREADY") == 0 && (flags & S_FLAG_WAIT);
    if (!already && (!(flags & S_FLAG_WAIT) || !json_is_true(json_object_get(ans, "ok")))) {
        code = s_answer(c, ans, json_out);
        json_decref(ans);
        return code;
    }
    if (!already && !json_out)
        c->print(json_object_get(ans, "data"));
    json_decref(ans);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_t *none = json_object();
    for (;;) {
        json_t *st = s_call(conn, "status", none, &code);
        if (!st) {
            json_decref(none);
            return code;
        }
        json_t *dr = json_object_get(json_object_get(st, "data"), "draining");
        int drained = json_is_true(json_object_get(dr, "drained"));
        int on = json_is_true(json_object_get(dr, "on"));
        char by[256];
        snprintf(by, sizeof by, "%s", s_str(dr, "by"));
        json_decref(st);
        if (!on) {
            fprintf(stderr, "gbxctl drain: the node was resumed meanwhile\n");
            json_decref(none);
            return S_EXIT_REFUSED;
        }
        if (drained) {
            if (json_out) {
                json_t *o = json_pack("{s:b, s:b, s:s}", "draining", 1, "drained", 1, "by", by);
                char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
                printf("%s\n", text ? text : "null");
                free(text);
                json_decref(o);
            } else
                printf("drained: nothing in flight\n");
            json_decref(none);
            return S_EXIT_OK;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > conn->timeout_ms) {
            fprintf(stderr, "gbxctl drain: still in flight after %d ms\n", conn->timeout_ms);
            json_decref(none);
            return S_EXIT_TIMEOUT;
        }
        struct timespec nap = {0, 200000000};
        nanosleep(&nap, NULL);
    }
}

enum { O_AS = 256, O_KEY, O_JSON, O_TIMEOUT, O_CONNECT, O_ALL, O_WAIT, O_CANCEL, O_FIELD };

/*  What the command line says. */
typedef struct {
    const char *cfg, *as, *key, *connect;
    int json_out, timeout, help, flags;
    char given[S_NFIELDS]; /* which command options were given */
    json_t *args;          /* the command options, as the request's args */
} s_cli_t;

/*  One option K (OPTARG its value) into CLI: 0, or -1 after a message. */
static int s_option(s_cli_t *cli, int k, const char *arg)
{
    if (k >= O_FIELD && k < O_FIELD + (int)S_NFIELDS) {
        const s_field_t *f = &s_fields[k - O_FIELD];
        cli->given[k - O_FIELD] = 1;
        char *end = NULL;
        errno = 0;
        long long v = f->integer ? strtoll(arg, &end, 10) : 0;
        if (f->integer && (!*arg || *end || v < 0 || errno == ERANGE)) {
            fprintf(stderr, "gbxctl: --%s: not a number\n", f->flag);
            return -1;
        }
        json_object_set_new(cli->args, f->arg, f->integer ? json_integer(v) : json_string(arg));
        return 0;
    }
    switch (k) {
    case 'c':
        cli->cfg = arg;
        return 0;
    case O_AS:
        cli->as = arg;
        return 0;
    case O_KEY:
        cli->key = arg;
        return 0;
    case O_JSON:
        cli->json_out = 1;
        return 0;
    case O_TIMEOUT: {
        char *end = NULL;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 1 || v > 86400000) {
            fprintf(stderr, "gbxctl: --timeout-ms: milliseconds, 1 to 86400000\n");
            return -1;
        }
        cli->timeout = (int)v;
        return 0;
    }
    case O_CONNECT:
        cli->connect = arg;
        return 0;
    case O_ALL:
        cli->flags |= S_FLAG_ALL;
        return 0;
    case O_WAIT:
        cli->flags |= S_FLAG_WAIT;
        return 0;
    case O_CANCEL:
        cli->flags |= S_FLAG_CANCEL;
        return 0;
    case 'h':
        cli->help = 1;
        return 0;
    default:
        return -1; /* getopt said why */
    }
}

int main(int argc, char **argv)
{
    struct option longs[16 + S_NFIELDS];
    static const struct option fixed[] = {{"config", required_argument, 0, 'c'},
                                          {"as", required_argument, 0, O_AS},
                                          {"key", required_argument, 0, O_KEY},
                                          {"json", no_argument, 0, O_JSON},
                                          {"timeout-ms", required_argument, 0, O_TIMEOUT},
                                          {"connect", required_argument, 0, O_CONNECT},
                                          {"all", no_argument, 0, O_ALL},
                                          {"wait", no_argument, 0, O_WAIT},
                                          {"cancel", no_argument, 0, O_CANCEL},
                                          {"help", no_argument, 0, 'h'}};
    size_t nl = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        longs[nl++] = fixed[i];
    for (size_t i = 0; i < S_NFIELDS; i++)
        longs[nl++] = (struct option){s_fields[i].flag, required_argument, 0, O_FIELD + (int)i};
    longs[nl] = (struct option){0, 0, 0, 0};

    s_cli_t cli = {.as = getenv("GBX_OPERATOR"), .timeout = 10000, .args = json_object()};
    /* options anywhere; the words that are not options: the command and its
       arguments ("+": getopt stops at each, which is taken and skipped) */
    char **words = calloc((size_t)argc + 1, sizeof *words);
    int nwords = 0;
    if (!words || !cli.args) {
        free(words);
        json_decref(cli.args);
        return S_EXIT_USAGE;
    }
    while (optind < argc) {
        int k = getopt_long(argc, argv, "+c:h", longs, NULL);
        if (k == -1) {
            if (optind < argc)
                words[nwords++] = argv[optind++];
            continue;
        }
        if (s_option(&cli, k, optarg) != 0) {
            s_usage(stderr);
            free(words);
            json_decref(cli.args);
            return S_EXIT_USAGE;
        }
    }
    json_t *args = cli.args;
    if (nwords > 0 && strcmp(words[0], "help") == 0) {
        int used = 0;
        const s_cmd_t *hc = nwords > 1 ? s_find(words + 1, nwords - 1, &used) : NULL;
        int ok = nwords == 1 || (hc && used == nwords - 1);
        if (!ok) {
            fprintf(stderr, "gbxctl help: no command \"");
            for (int i = 1; i < nwords; i++)
                fprintf(stderr, "%s%s", i > 1 ? " " : "", words[i]);
            fprintf(stderr, "\"\n");
            hc = NULL;
        }
        hc ? s_cmd_help(hc, stdout) : s_usage(ok ? stdout : stderr);
        free(words);
        json_decref(args);
        return ok ? S_EXIT_OK : S_EXIT_USAGE;
    }
    int used = 0;
    const s_cmd_t *cmd = nwords > 0 ? s_find(words, nwords, &used) : NULL;
    if (cli.help || !cmd) {
        if (!cmd && nwords > 0)
            fprintf(stderr, "gbxctl: no command \"%s%s%s\"\n", words[0], nwords > 1 ? " " : "",
                    nwords > 1 ? words[1] : "");
        cmd ? s_cmd_help(cmd, stdout) : s_usage(cli.help && !nwords ? stdout : stderr);
        free(words);
        json_decref(args);
        return cli.help && (cmd || !nwords) ? S_EXIT_OK : S_EXIT_USAGE;
    }
    char **pos = words + used;
    int npos = nwords - used;
    /* every option given must be one of this command's */
    const char *bad = NULL;
    for (size_t i = 0; i < S_NFIELDS && !bad; i++)
        if (cli.given[i] && !s_option_allowed(cmd, s_fields[i].flag))
            bad = s_fields[i].flag;
    if (!bad && (cli.flags & S_FLAG_ALL) && !s_option_allowed(cmd, "all"))
        bad = "all";
    if (!bad && (cli.flags & S_FLAG_WAIT) && !s_option_allowed(cmd, "wait"))
        bad = "wait";
    if (!bad && (cli.flags & S_FLAG_CANCEL) && !s_option_allowed(cmd, "cancel"))
        bad = "cancel";
    int one_of = !bad && strcmp(cmd->wire, "audit.prune") == 0 &&
                 !!json_object_get(args, "upto") == !!json_object_get(args, "keep_ms");
    if (bad || one_of || npos < cmd->min_pos || (cmd->max_pos >= 0 && npos > cmd->max_pos) ||
        !cli.as || cli.timeout < 1) {
        if (bad)
            fprintf(stderr, "gbxctl %s: no option --%s\n", cmd->words, bad);
        else if (one_of)
            fprintf(stderr, "gbxctl %s: one of --upto N or --keep-ms T\n", cmd->words);
        else if (!cli.as)
            fprintf(stderr, "gbxctl: who are you? --as OPERATOR (or $GBX_OPERATOR)\n");
        else if (cli.timeout < 1)
            fprintf(stderr, "gbxctl: --timeout-ms: at least 1\n");
        else
            fprintf(stderr, "gbxctl %s: %s\n", cmd->words,
                    npos < cmd->min_pos ? "missing argument" : "too many arguments");
        fprintf(stderr, "usage: gbxctl [global options] %s %s\n", cmd->words, cmd->synopsis);
        free(words);
        json_decref(args);
        return S_EXIT_USAGE;
    }
    const char *cfg_arg = cli.cfg, *as = cli.as, *key = cli.key, *connect = cli.connect;
    int json_out = cli.json_out, timeout = cli.timeout, flags = cli.flags;

    int code = S_EXIT_USAGE;
    char *cfg_path = cfg_arg ? strdup(cfg_arg) : gbx_config_default_path(), *keypath = NULL,
         err[512];
    gbx_config_t *cfg = NULL;
    gbx_identity_t *me = NULL;
    void *ctx = NULL, *sock = NULL;
    if (!cfg_path || sodium_init() < 0)
        goto out;
    if (gbx_config_load(cfg_path, &cfg, err, sizeof err) != GBX_OK) {
        fprintf(stderr, "gbxctl: %s\n", err);
        goto out;
    }
    if (!key) {
        const char *slash = strrchr(cfg_path, '/');
        if (asprintf(&keypath, "%.*s/keys/%s.secret", slash ? (int)(slash - cfg_path) : 1,
                     slash ? cfg_path : ".", as) < 0) {
            keypath = NULL;
            goto out;
        }
        key = keypath;
    }
    gbx_err_t rc = gbx_identity_load(key, &me);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxctl: %s: %s\n", key, gbx_err_name(rc));
        goto out;
    }
    const gbx_registry_t *reg = gbx_config_registry(cfg);
    const gbx_node_t *node = gbx_registry_node(reg, gbx_config_str(cfg, GBX_SETTING_NODE_ID));
    if (!node) {
        fprintf(stderr, "gbxctl: %s: node.id is not in the registry\n", cfg_path);
        goto out;
    }
    char ep[512];
    if (connect)
        snprintf(ep, sizeof ep, "%s", connect);
    else
        snprintf(ep, sizeof ep, "ipc://%s", gbx_config_str(cfg, GBX_SETTING_LISTEN_CONTROL));
    ctx = zmq_ctx_new();
    sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int zero = 0;
    if (!sock || zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, node->pub.curve_pk, GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, gbx_identity_public(me)->curve_pk,
                       GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(me), GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) || zmq_connect(sock, ep) != 0) {
        fprintf(stderr, "gbxctl: %s: %s\n", ep, zmq_strerror(errno));
        goto out;
    }
    s_conn_t conn = {.sock = sock, .timeout_ms = timeout, .tag = (json_int_t)getpid() << 20};
    s_run_fn run = cmd->run ? cmd->run : s_run_one;
    code = run(cmd, &conn, args, flags, json_out, pos, npos);
out:
    free(words);
    json_decref(args);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    gbx_identity_destroy(&me);
    gbx_config_destroy(&cfg);
    free(keypath);
    free(cfg_path);
    return code;
}
