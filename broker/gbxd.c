/*  gbxd: the broker daemon's main: config, keys, store, ZAP, the adapter ROUTER socket.
    Implements proto/spec/5-adapter.md sections 2, 3 and 6.1 (v0: Submit only, one thread).

    Usage: gbxd [-c CONFIG] [--home DIR]

    Without -c the config is DIR/gbxd.yaml, DIR being --home, else $GBX_HOME,
    else ./.gbx; a missing file is created with gbx_config_write_default (a
    single-node demo with generated keys). Exit codes: 0 after SIGTERM or
    SIGINT, 1 on a run-time failure, 2 on a bad command line, config, key
    file, store or endpoint at start-up.

    Logs: one line each on stderr with a stable id, metadata only (never a
    payload byte):
      GBX-CONFIG-CREATED path=...
      GBX-START node=... adapter=... config=... data=...
      GBX-ACCEPT seq=... from=... to=...      (a new message stored)
      GBX-ACCEPT duplicate=1 from=...         (answered with the stored receipt)
      GBX-REJECT reason=... from=...
      GBX-DROP reason=... from=...            (reply could not be sent)
      GBX-STOP signal=...

    Not yet here (issue 3): delivery (Deliver/Ack/Credit), Ping/Pong,
    verify worker threads, group commit, config reload, control socket,
    metrics, peer links. Frames other than Submit get the ingress's
    MALFORMED answer. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "ingress.h"
#include "registry.h"
#include "store.h"
#include "zap.h"

#define S_MAX_PARTS   4096 /* parts of one message beyond the routing id */
#define S_ENVELOPE_OH 4096 /* bytes allowed beyond part 1 and the sealed payload */
#define S_POLL_MS     250

static volatile sig_atomic_t s_stop_sig = 0;

static void s_on_signal(int sig)
{
    s_stop_sig = sig;
}

static void s_usage(FILE *f)
{
    fputs("usage: gbxd [-c CONFIG] [--home DIR]\n"
          "  -c CONFIG    the configuration file (default: DIR/gbxd.yaml, created if missing)\n"
          "  --home DIR   the default directory (default: $GBX_HOME, else ./.gbx)\n",
          f);
}

/*  The printable form of an untrusted id for a log line: at most 64 bytes,
    bytes outside 0x21..0x7e as '?'. */
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

typedef struct {
    void *sock;
    gbx_ingress_t *ing;
    const gbx_registry_t *reg;
    const char *node_id;
    uint64_t max_bytes; /* total bytes of parts 0..n */
    zmq_msg_t *parts;   /* S_MAX_PARTS + 1: routing id and parts */
} s_daemon_t;

/*  Sends [routing id, "GBX1", reply]; logs a drop on failure. */
static void s_reply(s_daemon_t *d, zmq_msg_t *rid, const uint8_t *reply, size_t len,
                    const char *from)
{
    char c[GBX_ID_MAX + 1];
    if (zmq_send(d->sock, zmq_msg_data(rid), zmq_msg_size(rid), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->sock, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
            0 ||
        zmq_send(d->sock, reply, len, ZMQ_DONTWAIT) < 0)
        fprintf(stderr, "GBX-DROP reason=%s from=%s\n", zmq_strerror(errno), s_clean(from, c));
}

/*  Answers a message gbxd refuses before the ingress sees it. */
static void s_refuse(s_daemon_t *d, zmq_msg_t *rid, gbx_err_t reason, const char *from)
{
    char c[GBX_ID_MAX + 1];
    fprintf(stderr, "GBX-REJECT reason=%s from=%s\n", gbx_err_name(reason), s_clean(from, c));
    uint8_t *reply = NULL;
    size_t len = 0;
    if (gbx_frame_rejected(0, NULL, 0, reason, NULL, 0, &reply, &len) == GBX_OK)
        s_reply(d, rid, reply, len, from);
    free(reply);
}

/*  Receives one whole message (if any) and answers it. 0 when a message was
    handled, 1 when none was waiting, -1 on a socket failure. */
static int s_handle_one(s_daemon_t *d)
{
    zmq_msg_t *m = d->parts;
    size_t n = 0; /* messages initialised in m[] */
    size_t total = 0;
    int too_many = 0, too_big = 0, rc = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *cur = n < S_MAX_PARTS + 1 ? &m[n] : &scratch;
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
    if (n < 1) {
        rc = -1;
        goto out;
    }
    if (n < 2) /* a routing id alone: nothing to answer */
        goto out;

    const char *auth = zmq_msg_gets(&m[1], "User-Id");
    const char *role = zmq_msg_gets(&m[1], GBX_ZAP_ROLE_PROPERTY);
    const gbx_agency_t *ag = auth ? gbx_registry_agency(d->reg, auth) : NULL;
    if (!ag || !role || strcmp(role, "agency") != 0 || strcmp(ag->node, d->node_id) != 0) {
        /* ZAP admitted the key but this node does not serve that agency */
        s_refuse(d, &m[0], GBX_E_UNKNOWN_AGENCY, auth);
        goto out;
    }
    if (too_many) {
        s_refuse(d, &m[0], GBX_E_MALFORMED, auth);
        goto out;
    }
    if (too_big) {
        s_refuse(d, &m[0], GBX_E_PAYLOAD_TOO_LARGE, auth);
        goto out;
    }

    gbx_part_t parts[S_MAX_PARTS];
    for (size_t i = 1; i < n; i++) {
        parts[i - 1].data = zmq_msg_data(&m[i]);
        parts[i - 1].len = zmq_msg_size(&m[i]);
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    gbx_ingress_result_t res;
    memset(&res, 0, sizeof res);
    gbx_err_t got = gbx_ingress_submit(d->ing, auth, parts, n - 1, &reply, &rlen, &res);
    char c1[GBX_ID_MAX + 1], c2[GBX_ID_MAX + 1];
    if (!reply) {
        fprintf(stderr, "GBX-REJECT reason=%s from=%s\n", gbx_err_name(got), s_clean(auth, c1));
        goto out;
    }
    if (got == GBX_OK && res.duplicate)
        fprintf(stderr, "GBX-ACCEPT duplicate=1 from=%s\n", s_clean(auth, c1));
    else if (got == GBX_OK)
        fprintf(stderr, "GBX-ACCEPT seq=%llu from=%s to=%s\n", (unsigned long long)res.seq,
                s_clean(auth, c1), s_clean(res.dest, c2));
    else
        fprintf(stderr, "GBX-REJECT reason=%s from=%s\n", gbx_err_name(got), s_clean(auth, c1));
    s_reply(d, &m[0], reply, rlen, auth);
    free(reply);
out:
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&m[i]);
    return rc;
}

/*  The store's error lines, as log lines. */
static void s_store_log(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "GBX-STORE-ERROR %s\n", line);
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
        fprintf(stderr, "gbxd: cannot create a default configuration in %s: %s\n", home,
                gbx_err_name(rc));
        return NULL;
    }
    fprintf(stderr, "GBX-CONFIG-CREATED path=%s\n", path);
    return path;
}

int main(int argc, char **argv)
{
    const char *cfg_arg = NULL, *home_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            cfg_arg = argv[++i];
        } else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            home_arg = argv[++i];
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
    void *ctx = NULL, *sock = NULL;
    gbx_zap_t *zap = NULL;
    zmq_msg_t *msgs = NULL;
    char errbuf[512];
    gbx_err_t rc;

    if (sodium_init() < 0) {
        fprintf(stderr, "gbxd: libsodium failed to initialise\n");
        goto out;
    }
    path = s_config_path(cfg_arg, home_arg);
    if (!path)
        goto out;
    errbuf[0] = '\0';
    rc = gbx_config_load(path, &cfg, errbuf, sizeof errbuf);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxd: %s\n", errbuf[0] ? errbuf : gbx_err_name(rc));
        goto out;
    }
    const char *node_id = gbx_config_str(cfg, GBX_SETTING_NODE_ID);
    const char *keys = gbx_config_str(cfg, GBX_SETTING_NODE_KEYS);
    const char *data_dir = gbx_config_str(cfg, GBX_SETTING_NODE_DATA_DIR);
    const char *endpoint = gbx_config_str(cfg, GBX_SETTING_LISTEN_ADAPTER);
    const gbx_registry_t *reg = gbx_config_registry(cfg);

    rc = gbx_identity_load(keys, &node);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxd: %s: node.keys: %s\n", keys, gbx_err_name(rc));
        goto out;
    }
    const gbx_node_t *self_node = gbx_registry_node(reg, node_id);
    const gbx_pubid_t *pub = gbx_identity_public(node);
    if (strcmp(pub->id, node_id) != 0 || !self_node ||
        sodium_memcmp(self_node->pub.sign_pk, pub->sign_pk, GBX_KEY_BYTES) != 0 ||
        sodium_memcmp(self_node->pub.curve_pk, pub->curve_pk, GBX_KEY_BYTES) != 0) {
        fprintf(stderr, "gbxd: %s: node.keys: not the keys of node %s in the registry\n", keys,
                node_id);
        goto out;
    }

    gbx_store_opts_t so;
    gbx_store_opts_init(&so);
    so.log = s_store_log;
    rc = gbx_store_open(data_dir, &so, &store);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxd: %s: node.data_dir: cannot open the store: %s\n", data_dir,
                gbx_err_name(rc));
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
    rc = gbx_ingress_new(&io, &ing);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxd: ingress: %s\n", gbx_err_name(rc));
        goto out;
    }

    /* the ZAP handler first: a CURVE server bound without it admits anyone */
    ctx = zmq_ctx_new();
    if (!ctx) {
        fprintf(stderr, "gbxd: zmq_ctx_new: %s\n", zmq_strerror(errno));
        goto out;
    }
    rc = gbx_zap_start(ctx, reg, &zap);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbxd: ZAP handler: %s\n", gbx_err_name(rc));
        goto out;
    }
    /* The largest valid message; no single part may be larger, so libzmq
       drops a connection that sends one instead of buffering it whole. */
    const uint64_t max_bytes = GBX_FRAME_PROTOCOL_LEN + GBX_FRAME_MAX + S_ENVELOPE_OH +
                               gbx_payload_sealed_size((uint64_t)io.max_payload_bytes);
    const int64_t max_part = (int64_t)max_bytes;
    sock = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, zero = 0, hb_ivl = 5000, hb_to = 15000;
    if (!sock || zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(node), GBX_KEY_BYTES) !=
            0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, GBX_ZAP_DOMAIN_ADAPTER,
                       strlen(GBX_ZAP_DOMAIN_ADAPTER)) != 0 ||
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl) != 0 ||
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof hb_to) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_part, sizeof max_part) != 0) {
        fprintf(stderr, "gbxd: adapter socket: %s\n", zmq_strerror(errno));
        goto out;
    }
    if (zmq_bind(sock, endpoint) != 0) {
        fprintf(stderr, "gbxd: %s: listen.adapter: cannot bind %s: %s\n", path, endpoint,
                zmq_strerror(errno));
        goto out;
    }

    msgs = calloc(S_MAX_PARTS + 1, sizeof *msgs);
    if (!msgs) {
        fprintf(stderr, "gbxd: out of memory\n");
        goto out;
    }
    s_daemon_t d = {
        .sock = sock,
        .ing = ing,
        .reg = reg,
        .node_id = node_id,
        .max_bytes = max_bytes,
        .parts = msgs,
    };

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fprintf(stderr, "GBX-START node=%s adapter=%s config=%s data=%s\n", node_id, endpoint, path,
            data_dir);
    printf("gbxd: node %s listening for adapters on %s\n", node_id, endpoint);
    fflush(stdout);

    code = 0;
    while (!s_stop_sig) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&item, 1, S_POLL_MS);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "gbxd: zmq_poll: %s\n", zmq_strerror(errno));
            code = 1;
            break;
        }
        /* drain what is waiting, but look at the stop flag between messages */
        for (int k = 0; r > 0 && k < 1024 && !s_stop_sig; k++) {
            int h = s_handle_one(&d);
            if (h == 1)
                break;
            if (h < 0) {
                fprintf(stderr, "gbxd: receive: %s\n", zmq_strerror(errno));
                code = 1;
                goto out;
            }
        }
    }
    if (s_stop_sig)
        fprintf(stderr, "GBX-STOP signal=%d\n", (int)s_stop_sig);

out:
    /* CURVE server sockets close before the ZAP handler goes */
    if (sock)
        zmq_close(sock);
    gbx_zap_destroy(&zap);
    if (ctx)
        zmq_ctx_term(ctx);
    free(msgs);
    gbx_ingress_destroy(&ing);
    gbx_store_destroy(&store);
    gbx_identity_destroy(&node);
    gbx_config_destroy(&cfg);
    free(path);
    return code;
}
