/*  gbxctl: the operator's command line for a running gbxd, over its control
    socket (broker/control.h; docs/control.md). The operator is known by
    its key: --as ID loads CONFIG_DIR/keys/ID.secret (or --key FILE), whose
    CURVE key the node's registry lists with a role.

    Output: readable text, or with --json the command's data as JSON (one
    object on one line) for scripts. Exit codes: 0 done; 1 refused by gbxd
    (the reason on stderr: NOT_AUTHORIZED, NOT_FOUND, ...); 2 usage or
    configuration; 3 gbxd did not answer in time. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "gbx/identity.h"

static const char s_usage[] =
    "usage: gbxctl [-c CONFIG] --as OPERATOR [--key FILE] [--json] [--timeout-ms MS] COMMAND\n"
    "  -c, --config PATH   gbxd's configuration (default $GBX_HOME/gbxd.yaml, else\n"
    "                      ./.gbx/gbxd.yaml): the node's key and listen.control\n"
    "      --as OPERATOR   who you are (registry.operators; default $GBX_OPERATOR)\n"
    "      --key FILE      your secret key file (default CONFIG_DIR/keys/OPERATOR.secret)\n"
    "      --json          the answer's data as JSON\n"
    "commands:\n"
    "  status                          node, uptime, the policy in force, who you are\n"
    "  policy show                     the policy's version, hash, rules and file\n"
    "  policy check --from A --to B --service CODE [header options]\n"
    "                                  the decision for such a message; nothing is sent\n"
    "      --version N --kind K --class C --marking M --purpose P --route R\n"
    "      --route-ref X --consent T --consent-ref X --impact-ref X --end-user X\n"
    "      --agreement-ref X --release-ref X --subjects N --payload-bytes N --ttl-ms N\n"
    "  policy reload                   read node.policy again (role operator or admin)\n"
    "  holds list                      messages the policy holds for an approver\n"
    "  holds approve ID [--comment T]  release held message ID (role approver or admin)\n"
    "  holds reject ID --comment T     refuse it; its sender is told (approver or admin)\n"
    "  audit status                    the audit trail: records, latest checkpoint, its age\n"
    "  audit prune (--upto N | --keep-ms T)\n"
    "                                  delete the records before checkpoint N (or older than\n"
    "                                  T ms); export them first: gbx-audit export (admin)\n"
    "  audit cosign CHECKPOINT         store a peer node's countersignature of one of our\n"
    "                                  checkpoints (gbx-audit cosign output; operator or admin)\n"
    "exit: 0 done, 1 refused by gbxd, 2 usage or configuration, 3 no answer in time\n";

typedef struct {
    const char *flag, *arg; /* --flag -> "arg" in the request */
    int integer;
} s_field_t;

static const s_field_t s_check_fields[] = {
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
};
#define S_NFIELDS (sizeof s_check_fields / sizeof s_check_fields[0])

/*  The answer to REQ (stolen), or NULL after a message (EXIT: 2 or 3). */
static json_t *s_call(void *sock, json_t *req, int timeout_ms, int *exit_code)
{
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text || zmq_send(sock, text, strlen(text), 0) < 0) {
        fprintf(stderr, "gbxctl: cannot send: %s\n", zmq_strerror(errno));
        free(text);
        *exit_code = 3;
        return NULL;
    }
    free(text);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        fprintf(stderr,
                "gbxctl: no answer from gbxd in %d ms (is it running? is the key in "
                "registry.operators?)\n",
                timeout_ms);
        *exit_code = 3;
        return NULL;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    json_t *ans = NULL;
    if (zmq_msg_recv(&m, sock, 0) >= 0)
        ans = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, NULL);
    zmq_msg_close(&m);
    if (!ans) {
        fprintf(stderr, "gbxctl: gbxd's answer is not JSON\n");
        *exit_code = 3;
    }
    return ans;
}

static void s_time(json_int_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *s_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_int_t s_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/*  Prints DATA of command CMD for a person. */
static void s_print(const char *cmd, json_t *data)
{
    if (strcmp(cmd, "status") == 0) {
        json_t *p = json_object_get(data, "policy");
        printf("node      %s\nuptime    %lld s\npolicy    %s (%lld rules, hash %.16s...)\n"
               "you       %s (%s)\n",
               s_str(data, "node"), (long long)(s_int(data, "uptime_ms") / 1000),
               s_str(p, "version"), (long long)s_int(p, "rules"), s_str(p, "hash"),
               s_str(data, "operator"), s_str(data, "role"));
    } else if (strcmp(cmd, "policy.show") == 0 || strcmp(cmd, "policy.reload") == 0) {
        printf("version   %s\nhash      %s\nrules     %lld\nfile      %s\n", s_str(data, "version"),
               s_str(data, "hash"), (long long)s_int(data, "rules"), s_str(data, "file"));
    } else if (strcmp(cmd, "policy.check") == 0) {
        printf("%s  %s", s_str(data, "outcome"), s_str(data, "reason"));
        if (*s_str(data, "rule_id"))
            printf("  rule %s v%lld", s_str(data, "rule_id"),
                   (long long)s_int(data, "rule_version"));
        printf("\n  why: %s\n  policy: %.16s...\n", s_str(data, "why"), s_str(data, "policy_hash"));
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(data, "counts"), i, c)
        {
            printf("  counter %s: %lld + %lld\n", s_str(c, "key"), (long long)s_int(c, "now"),
                   (long long)s_int(c, "add"));
        }
    } else if (strcmp(cmd, "holds.list") == 0) {
        json_t *holds = json_object_get(data, "holds");
        printf("%-32s %8s %-12s %-12s %9s  %-20s  %s\n", "MESSAGE_ID", "SEQ", "FROM", "TO", "BYTES",
               "HELD_UNTIL", "EXPIRES");
        size_t i;
        json_t *h;
        json_array_foreach(holds, i, h)
        {
            char until[32], exp[32];
            s_time(s_int(h, "until_ms"), until);
            s_time(s_int(h, "expires_at_ms"), exp);
            printf("%-32s %8lld %-12s %-12s %9lld  %-20s  %s\n", s_str(h, "message_id"),
                   (long long)s_int(h, "seq"), s_str(h, "from"), s_str(h, "to"),
                   (long long)s_int(h, "payload_bytes"), until, exp);
        }
        printf("(%lld held%s)\n", (long long)s_int(data, "total"),
               json_is_true(json_object_get(data, "truncated")) ? ", the first 1000 listed" : "");
    } else if (strcmp(cmd, "audit.status") == 0) {
        json_t *cp = json_object_get(data, "checkpoint");
        printf("records     %lld (first kept %lld, durable %lld, %lld not yet in a checkpoint)\n"
               "chain head  %s\n",
               (long long)s_int(data, "records"), (long long)s_int(data, "first"),
               (long long)s_int(data, "durable"), (long long)s_int(data, "uncovered"),
               s_str(data, "chain"));
        if (json_is_object(cp)) {
            char at[32];
            s_time(s_int(cp, "at_ms"), at);
            printf("checkpoint  %lld records at %s (%lld s ago), root %s, %zu countersignatures\n"
                   "            %s\n",
                   (long long)s_int(cp, "size"), at, (long long)(s_int(cp, "age_ms") / 1000),
                   s_str(cp, "root"), json_array_size(json_object_get(cp, "cosigners")),
                   s_str(cp, "text"));
        } else {
            printf("checkpoint  none yet\n");
        }
    } else if (strcmp(cmd, "audit.prune") == 0) {
        printf("pruned %lld records; the trail now starts at record %lld\n",
               (long long)s_int(data, "deleted"), (long long)s_int(data, "first"));
    } else if (strcmp(cmd, "audit.cosign") == 0) {
        printf("checkpoint of %lld records: countersignatures stored\n",
               (long long)s_int(data, "size"));
    } else { /* holds.approve, holds.reject */
        printf("%s %s (seq %lld, %s -> %s)\n", s_str(data, "decision"), s_str(data, "message_id"),
               (long long)s_int(data, "seq"), s_str(data, "from"), s_str(data, "to"));
    }
}

int main(int argc, char **argv)
{
    enum { O_AS = 256, O_KEY, O_JSON, O_TIMEOUT, O_FIELD };
    struct option longs[4 + S_NFIELDS + 3];
    static const struct option fixed[] = {{"config", required_argument, 0, 'c'},
                                          {"as", required_argument, 0, O_AS},
                                          {"key", required_argument, 0, O_KEY},
                                          {"json", no_argument, 0, O_JSON},
                                          {"timeout-ms", required_argument, 0, O_TIMEOUT},
                                          {"help", no_argument, 0, 'h'}};
    size_t nl = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        longs[nl++] = fixed[i];
    for (size_t i = 0; i < S_NFIELDS; i++)
        longs[nl++] =
            (struct option){s_check_fields[i].flag, required_argument, 0, O_FIELD + (int)i};
    longs[nl] = (struct option){0, 0, 0, 0};

    const char *cfg_arg = NULL, *as = getenv("GBX_OPERATOR"), *key = NULL;
    int json_out = 0, timeout = 10000, c;
    json_t *args = json_object();
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        if (c >= O_FIELD && c < O_FIELD + (int)S_NFIELDS) {
            const s_field_t *f = &s_check_fields[c - O_FIELD];
            if (f->integer) {
                char *end = NULL;
                long long v = strtoll(optarg, &end, 10);
                if (!*optarg || *end || v < 0) {
                    fprintf(stderr, "gbxctl: --%s: not a number\n", f->flag);
                    return 2;
                }
                json_object_set_new(args, f->arg, json_integer(v));
            } else {
                json_object_set_new(args, f->arg, json_string(optarg));
            }
            continue;
        }
        switch (c) {
        case 'c':
            cfg_arg = optarg;
            break;
        case O_AS:
            as = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case O_JSON:
            json_out = 1;
            break;
        case O_TIMEOUT:
            timeout = atoi(optarg);
            break;
        case 'h':
            fputs(s_usage, stdout);
            return 0;
        default:
            fputs(s_usage, stderr);
            return 2;
        }
    }
    /* the command: one or two words, and an id for holds approve/reject */
    char cmd[64] = "";
    int rest = argc - optind;
    const char *w1 = rest > 0 ? argv[optind] : NULL, *w2 = rest > 1 ? argv[optind + 1] : NULL;
    int words = 0;
    if (w1 && strcmp(w1, "status") == 0)
        snprintf(cmd, sizeof cmd, "status"), words = 1;
    else if (w1 && w2 &&
             (strcmp(w1, "policy") == 0 || strcmp(w1, "holds") == 0 || strcmp(w1, "audit") == 0))
        snprintf(cmd, sizeof cmd, "%s.%s", w1, w2), words = 2;
    static const char *const known[] = {
        "status",        "policy.show",  "policy.check", "policy.reload", "holds.list",
        "holds.approve", "holds.reject", "audit.status", "audit.prune",   "audit.cosign"};
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= strcmp(cmd, known[i]) == 0;
    int want_id = strcmp(cmd, "holds.approve") == 0 || strcmp(cmd, "holds.reject") == 0 ||
                  strcmp(cmd, "audit.cosign") == 0;
    if (!ok || rest != words + want_id || !as || timeout < 1) {
        fputs(s_usage, stderr);
        json_decref(args);
        return 2;
    }
    if (want_id) /* holds: the message id; audit cosign: the checkpoint's text */
        json_object_set_new(args, strcmp(cmd, "audit.cosign") == 0 ? "checkpoint" : "id",
                            json_string(argv[optind + words]));

    int code = 2;
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
    json_t *req =
        json_pack("{s:I, s:s, s:O}", "tag", (json_int_t)getpid(), "cmd", cmd, "args", args);
    json_t *ans = s_call(sock, req, timeout, &code);
    if (ans) {
        json_t *data = json_object_get(ans, "data");
        if (json_is_true(json_object_get(ans, "ok"))) {
            if (json_out) {
                char *t = json_dumps(data, JSON_COMPACT);
                printf("%s\n", t ? t : "null");
                free(t);
            } else {
                s_print(cmd, data);
            }
            code = 0;
        } else {
            if (json_out) {
                char *t = json_dumps(ans, JSON_COMPACT);
                printf("%s\n", t ? t : "null");
                free(t);
            }
            fprintf(stderr, "gbxctl: %s: %s\n", s_str(ans, "error"), s_str(ans, "detail"));
            code = 1;
        }
        json_decref(ans);
    }
out:
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
