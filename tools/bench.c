/*  gbx-bench: benchmarks. Figures and the commands that reproduce them are in
    docs/benchmarks.md. Each figure is the median of --runs timed runs.

      gbx-bench crypto [--runs N] [--ms MS]   envelope and receipt crypto
                                              micro-benchmark
      gbx-bench e2e [options]                 end to end through a real gbxd:
                                              producer and consumer processes
      gbx-bench policy [--runs N]             ns per policy decision
                                              (bench_policy.h)
      gbx-bench floor [--runs N] [--size N]   the store's and the transport's
                                              own cost per message
                                              (bench_floor.h)

    e2e. Each run makes a fresh temporary home, writes the demo configuration
    into it (gbx_config_write_default), moves listen.adapter to a free port,
    sets limits.inflight_window (and limits.queue_max_messages for
    --queue-only), and starts gbxd -c on it. It forks C consumer processes
    (gd.tax) and P producer processes (all hk.kiosk, the requester the
    sample policy allows; service GD-SI-PAYCERT, provider gd.tax, with the
    route, consent and references its rule asks for), every one its own
    libgbx client. The demo home's sample policy decides every message.
    Producers build (seal and sign) all their messages BEFORE the clock
    starts: that is the sender's cost, not the broker's (--queue-only builds
    as it goes, so its time includes building). A run starts when every
    producer has built its messages and every consumer is connected.

    Timing. Records live in an anonymous shared mapping made before the
    forks, one per message: submit, accept and deliver times, CLOCK_MONOTONIC
    (one clock for all processes of the machine). The first 8 bytes of each
    plaintext are the message's index; a consumer reads it from the payload
    it decrypted (as an adapter must) and stamps the deliver time. Accept
    latency = submit -> verified receipt at the producer; end-to-end
    latency = submit -> decrypted delivery at a consumer. With --rate the
    submit time is the actual one, not the scheduled one (a producer that
    falls behind shows as a lower rate, not as latency).
    Throughput = messages / (last accept or delivery - first submit).
    Broker memory: VmHWM and VmRSS of /proc/PID/status at the end of a run;
    CPU seconds of gbxd (/proc/PID/stat), producers and consumers during
    the run. gbxd's GBX-STATS line (writer apply/seal/commit ms) is printed
    after each run. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "bench_audit.h"
#include "bench_floor.h"
#include "bench_policy.h"
#include "config.h"
#include "gbx/client.h"

#include "gbx/envelope.h"
#include "gbx/frame.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "gbx/receipt.h"

static int s_runs = 5;
static double s_run_ms = 300;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*s_op_fn)(void *arg);

/*  Median over s_runs of operations per second; one call of OP is UNITS ops. */
static double s_measure(s_op_fn op, void *arg, double units)
{
    double rates[64];
    int runs = s_runs < 64 ? s_runs : 64;
    op(arg); /* warm up */
    for (int r = 0; r < runs; r++) {
        double t0 = s_now(), t;
        long n = 0;
        do {
            op(arg);
            n++;
            t = s_now();
        } while ((t - t0) * 1000 < s_run_ms);
        rates[r] = (double)n * units / (t - t0);
    }
    qsort(rates, (size_t)runs, sizeof rates[0], s_cmp);
    return rates[runs / 2];
}

/* ----------------------------------------------------------------- fixture */

typedef struct {
    gbx_identity_t *sender, *recipient;
    gbx_header_t h;
    uint8_t id[GBX_MSG_ID_BYTES], hash[GBX_HASH_BYTES];
    uint8_t *plain, *sealed, *wire;
    size_t plain_len, sealed_len, wire_len;
    gbx_envelope_t *env; /* decoded from wire */
    gbx_envelope_t *batch[256];
    uint8_t *batch_wire[256];
    size_t batch_len[256];
    size_t batch_n;
} s_fix_t;

static gbx_err_t s_null_sink(void *arg, const uint8_t *data, size_t len)
{
    (void)arg, (void)data, (void)len;
    return GBX_OK;
}

static void s_fix_header(s_fix_t *f, uint8_t *id)
{
    gbx_header_init(&f->h);
    gbx_message_id_new(id);
    f->h.message_id.data = id;
    f->h.message_id.len = GBX_MSG_ID_BYTES;
    f->h.from_agency = "gd.hkush";
    f->h.to_agency = "hk.ehealth";
    f->h.service_code = "HK-EHR-SUMMARY";
    f->h.service_version = 1;
    f->h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    f->h.data_class = GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL;
    f->h.hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    f->h.purpose_code = "CONTINUITY-OF-CARE";
    f->h.case_ref = "HKUSZH-2026-118832";
    f->h.end_user_ref = "ehealth:P-8812-3340";
    f->h.legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    f->h.legal_route_ref = "GBA-SC-2025-000107";
    f->h.consent_ref = "PA-2026-55120";
    f->h.consent_type = GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT;
    f->h.subject_count = 1;
    f->h.created_at_ms = 1795000000000ull;
    f->h.expires_at_ms = f->h.created_at_ms + 300000;
    f->h.payload_length = f->plain_len;
    f->h.payload_hash.data = f->hash;
    f->h.payload_hash.len = GBX_HASH_BYTES;
}

static void s_fix_payload(s_fix_t *f, size_t len)
{
    free(f->plain);
    free(f->sealed);
    f->plain = malloc(len ? len : 1);
    memset(f->plain, 'x', len);
    f->plain_len = len;
    f->h.payload_length = len;
    gbx_binding_t b = {f->id, f->h.from_agency, f->h.to_agency};
    if (gbx_payload_seal(gbx_identity_public(f->recipient)->box_pk, &b, f->plain, len, &f->sealed,
                         &f->sealed_len, f->hash) != GBX_OK)
        abort();
}

static void s_fix_envelope(s_fix_t *f)
{
    gbx_envelope_t *env = NULL;
    if (gbx_envelope_sign(f->sender, &f->h, &env) != GBX_OK)
        abort();
    free(f->wire);
    f->wire_len = gbx_envelope_size(env);
    f->wire = malloc(f->wire_len);
    gbx_envelope_pack(env, f->wire);
    gbx_envelope_destroy(&env);
    gbx_envelope_destroy(&f->env);
    if (gbx_envelope_decode(f->wire, f->wire_len, &f->env) != GBX_OK)
        abort();
}

static void s_fix_batch(s_fix_t *f, size_t n)
{
    static gbx_header_t hs[256];
    static uint8_t ids[256][GBX_MSG_ID_BYTES];
    const gbx_header_t *hp[256];
    for (size_t i = 0; i < f->batch_n; i++) {
        gbx_envelope_destroy(&f->batch[i]);
        free(f->batch_wire[i]);
    }
    for (size_t i = 0; i < n; i++) {
        hs[i] = f->h;
        gbx_message_id_new(ids[i]);
        hs[i].message_id.data = ids[i];
        hp[i] = &hs[i];
    }
    if (gbx_envelope_sign_batch(f->sender, hp, n, f->batch) != GBX_OK)
        abort();
    for (size_t i = 0; i < n; i++) {
        f->batch_len[i] = gbx_envelope_size(f->batch[i]);
        f->batch_wire[i] = malloc(f->batch_len[i]);
        gbx_envelope_pack(f->batch[i], f->batch_wire[i]);
    }
    f->batch_n = n;
}

/* --------------------------------------------------------------- the ops */

static void s_op_sign(void *arg)
{
    s_fix_t *f = arg;
    gbx_envelope_t *env = NULL;
    if (gbx_envelope_sign(f->sender, &f->h, &env) != GBX_OK)
        abort();
    gbx_envelope_destroy(&env);
}

static void s_op_verify(void *arg)
{
    s_fix_t *f = arg;
    gbx_envelope_t *env = NULL;
    if (gbx_envelope_decode(f->wire, f->wire_len, &env) != GBX_OK ||
        gbx_envelope_verify(env, gbx_identity_public(f->sender), NULL) != GBX_OK)
        abort();
    gbx_envelope_destroy(&env);
}

static void s_op_decode(void *arg)
{
    s_fix_t *f = arg;
    gbx_envelope_t *env = NULL;
    if (gbx_envelope_decode(f->batch_wire[0], f->batch_len[0], &env) != GBX_OK)
        abort();
    gbx_envelope_destroy(&env);
}

static void s_op_check_payload(void *arg)
{
    s_fix_t *f = arg;
    if (gbx_envelope_check_payload(f->env, f->sealed, f->sealed_len) != GBX_OK)
        abort();
}

/*  The floor: one bare libsodium Ed25519 verification of a header-sized message. */
static void s_op_ed25519(void *arg)
{
    s_fix_t *f = arg;
    static uint8_t sig[crypto_sign_BYTES];
    static int signed_once;
    if (!signed_once) {
        crypto_sign_detached(sig, NULL, f->wire, f->wire_len, gbx_identity_sign_sk(f->sender));
        signed_once = 1;
    }
    if (crypto_sign_verify_detached(sig, f->wire, f->wire_len,
                                    gbx_identity_public(f->sender)->sign_pk) != 0)
        abort();
}

static void s_op_seal(void *arg)
{
    s_fix_t *f = arg;
    gbx_binding_t b = {f->id, f->h.from_agency, f->h.to_agency};
    gbx_sealer_t *s = NULL;
    uint8_t hash[GBX_HASH_BYTES];
    if (gbx_sealer_new(gbx_identity_public(f->recipient)->box_pk, &b, f->plain_len, s_null_sink,
                       NULL, &s) != GBX_OK ||
        gbx_sealer_write(s, f->plain, f->plain_len) != GBX_OK ||
        gbx_sealer_finish(s, hash) != GBX_OK)
        abort();
    gbx_sealer_destroy(&s);
}

static void s_op_open(void *arg)
{
    s_fix_t *f = arg;
    gbx_binding_t b = {f->id, f->h.from_agency, f->h.to_agency};
    gbx_opener_t *o = NULL;
    if (gbx_opener_new(f->recipient, &b, f->plain_len, f->hash, s_null_sink, NULL, &o) != GBX_OK ||
        gbx_opener_write(o, f->sealed, f->sealed_len) != GBX_OK || gbx_opener_finish(o) != GBX_OK)
        abort();
    gbx_opener_destroy(&o);
}

/*  Decodes and verifies a whole batch as a broker would, with a fresh cache,
    so every batch costs exactly one Ed25519 verification. */
static void s_op_verify_batch(void *arg)
{
    s_fix_t *f = arg;
    gbx_vcache_t *cache = NULL;
    if (gbx_vcache_new(64, &cache) != GBX_OK)
        abort();
    for (size_t i = 0; i < f->batch_n; i++) {
        gbx_envelope_t *env = NULL;
        if (gbx_envelope_decode(f->batch_wire[i], f->batch_len[i], &env) != GBX_OK ||
            gbx_envelope_verify(env, gbx_identity_public(f->sender), cache) != GBX_OK)
            abort();
        gbx_envelope_destroy(&env);
    }
    gbx_vcache_destroy(&cache);
}

static void s_op_sign_batch(void *arg)
{
    s_fix_t *f = arg;
    s_fix_batch(f, f->batch_n);
}

/*  Receipts of one group commit, as the broker signs them. */
typedef struct {
    gbx_identity_t *node;
    size_t n;
    Gbx__V1__Receipt r[256];
    const Gbx__V1__Receipt *rp[256];
    uint8_t ids[256][GBX_MSG_ID_BYTES + GBX_HASH_BYTES];
    uint8_t policy_hash[GBX_HASH_BYTES];
} s_rfix_t;

static void s_rfix_init(s_rfix_t *f)
{
    randombytes_buf(f->policy_hash, sizeof f->policy_hash);
    for (size_t i = 0; i < 256; i++) {
        Gbx__V1__Receipt *r = &f->r[i];
        gbx__v1__receipt__init(r);
        randombytes_buf(f->ids[i], sizeof f->ids[i]);
        r->message_id.data = f->ids[i];
        r->message_id.len = GBX_MSG_ID_BYTES;
        r->header_hash.data = f->ids[i] + GBX_MSG_ID_BYTES;
        r->header_hash.len = GBX_HASH_BYTES;
        r->node_id = "hk-gbx-node-1";
        r->accepted_at_ms = 1795000000123ull;
        r->sequence = 1000000 + i;
        r->status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
        r->rule_id = "R-HK-EHR-CONTINUITY-1";
        r->policy_hash.data = f->policy_hash;
        r->policy_hash.len = GBX_HASH_BYTES;
        f->rp[i] = r;
    }
}

static void s_op_receipt_sign(void *arg)
{
    s_rfix_t *f = arg;
    uint8_t *out = NULL;
    size_t len = 0;
    if (gbx_receipt_sign(f->node, f->rp[0], &out, &len) != GBX_OK)
        abort();
    free(out);
}

static void s_op_receipt_sign_batch(void *arg)
{
    s_rfix_t *f = arg;
    uint8_t *outs[256];
    size_t lens[256];
    if (gbx_receipt_sign_batch(f->node, f->rp, f->n, outs, lens) != GBX_OK)
        abort();
    for (size_t i = 0; i < f->n; i++)
        free(outs[i]);
}

/*  Receipt signing: one signature per receipt against one per group commit. */
static void s_receipts(gbx_identity_t *node)
{
    static s_rfix_t f;
    f.node = node;
    s_rfix_init(&f);
    printf("\n%-12s %18s %18s %12s\n", "receipts", "sign receipts/s", "sign us/receipt",
           "vs single");
    double single = s_measure(s_op_receipt_sign, &f, 1);
    printf("%-12s %18.0f %18.2f %11.1fx\n", "single", single, 1e6 / single, 1.0);
    static const size_t sizes[] = {64, 256};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        f.n = sizes[i];
        double rate = s_measure(s_op_receipt_sign_batch, &f, (double)sizes[i]);
        printf("batch %-6zu %18.0f %18.2f %11.1fx\n", sizes[i], rate, 1e6 / rate, rate / single);
    }
}

static int s_crypto(void)
{
    s_fix_t f;
    memset(&f, 0, sizeof f);
    if (gbx_identity_generate("gd.hkush", &f.sender) != GBX_OK ||
        gbx_identity_generate("hk.ehealth", &f.recipient) != GBX_OK)
        return 1;
    s_fix_header(&f, f.id);
    s_fix_payload(&f, 1024);
    s_fix_envelope(&f);
    printf("gbx-bench crypto: median of %d runs of %.0f ms each\n\n", s_runs, s_run_ms);
    printf("%-44s %14s\n", "operation (1 KiB payload)", "per second");
    double sign = s_measure(s_op_sign, &f, 1);
    printf("%-44s %14.0f\n", "sign header (Ed25519)", sign);
    double ed = s_measure(s_op_ed25519, &f, 1);
    printf("%-44s %14.0f\n", "bare Ed25519 verify (libsodium, the floor)", ed);
    double verify = s_measure(s_op_verify, &f, 1);
    printf("%-44s %14.0f\n", "decode + verify envelope", verify);
    printf("%-44s %14.0f\n", "payload length + hash check", s_measure(s_op_check_payload, &f, 1));
    printf("%-44s %14.0f\n", "encrypt payload (seal)", s_measure(s_op_seal, &f, 1));
    printf("%-44s %14.0f\n", "decrypt payload (open)", s_measure(s_op_open, &f, 1));

    s_fix_payload(&f, 1 << 20);
    printf("\n%-44s %14s\n", "operation (1 MiB payload)", "MB/s");
    printf("%-44s %14.0f\n", "encrypt payload (seal)", s_measure(s_op_seal, &f, 1.048576));
    printf("%-44s %14.0f\n", "decrypt payload (open)", s_measure(s_op_open, &f, 1.048576));

    s_fix_payload(&f, 1024);
    printf("\n%-12s %18s %18s %12s %18s\n", "batch size", "verify msgs/s", "verify us/msg",
           "vs single", "sign msgs/s");
    printf("%-12s %18.0f %18.2f %11.1fx %18.0f\n", "single", verify, 1e6 / verify, 1.0, sign);
    static const size_t sizes[] = {1, 16, 64, 256};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        s_fix_batch(&f, sizes[i]);
        double rate = s_measure(s_op_verify_batch, &f, (double)sizes[i]);
        double srate = s_measure(s_op_sign_batch, &f, (double)sizes[i]);
        printf("%-12zu %18.0f %18.2f %11.1fx %18.0f\n", sizes[i], rate, 1e6 / rate, rate / verify,
               srate);
    }
    printf("\n%-44s %14.2f\n", "of which decoding a batch envelope, us",
           1e6 / s_measure(s_op_decode, &f, 1));
    s_receipts(f.recipient);
    for (size_t i = 0; i < f.batch_n; i++) {
        gbx_envelope_destroy(&f.batch[i]);
        free(f.batch_wire[i]);
    }
    free(f.plain);
    free(f.sealed);
    free(f.wire);
    gbx_envelope_destroy(&f.env);
    gbx_identity_destroy(&f.sender);
    gbx_identity_destroy(&f.recipient);
    return 0;
}

/* ------------------------------------------------------------- end to end */

typedef struct {
    size_t size, count, batch, window;
    int producers, consumers, runs, keep, queue_only, raw, count_set;
    double rate;    /* msgs/s over all producers; 0: as fast as possible */
    double timeout; /* seconds per run */
    const char *gbxd;
} s_e2e_opts_t;

typedef struct {
    uint64_t submit, accept, deliver; /* ns, CLOCK_MONOTONIC; 0: not yet */
} s_rec_t;

#define S_E2E_PROCS 64

typedef struct {
    int go, stop;
    int ready_prod, ready_cons;
    uint64_t delivered, accepted, rejected, duplicates, dup_deliveries;
    double cpu[S_E2E_PROCS]; /* seconds of CPU each child used during the run */
    s_rec_t rec[];
} s_shm_t;

static uint64_t s_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double s_cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int s_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static char *s_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, n;
    do {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/*  The demo config, with the adapter on PORT and the limits the run needs. */
static int s_edit_config(const char *cfg, int port, const s_e2e_opts_t *o)
{
    char *text = s_slurp(cfg);
    if (!text)
        return -1;
    /* the listen section's adapter line up to the limits section: the
       adapter moves to PORT, the metrics endpoint is off */
    char *at = strstr(text, "  adapter: tcp://127.0.0.1:7400\n");
    char *lim = at ? strstr(at, "limits:\n") : NULL;
    if (!lim) {
        free(text);
        return -1;
    }
    size_t qmax = o->count + 1000 > 1000000 ? o->count + 1000 : 1000000;
    FILE *f = fopen(cfg, "w");
    int rc = f ? 0 : -1;
    if (f) {
        fprintf(f,
                "%.*s  adapter: tcp://127.0.0.1:%d\n  metrics: off\nlimits:\n"
                "  inflight_window: %zu\n  queue_max_messages: %zu\n%s",
                (int)(at - text), text, port, o->window, qmax, lim + strlen("limits:\n"));
        rc = fclose(f) == 0 ? 0 : -1;
    }
    free(text);
    return rc;
}

static const gbx_pubid_t *s_e2e_peer(void *arg, const char *id)
{
    const gbx_agency_t *a = gbx_registry_agency(gbx_config_registry(arg), id);
    return a ? &a->pub : NULL;
}

/*  A connected client for agency AS (keys from DIR/keys); NULL on failure. */
static gbx_client_t *s_e2e_client(const char *home, gbx_config_t *cfg, const char *as, int port,
                                  const s_e2e_opts_t *o, gbx_identity_t **me, gbx_pubid_t *node)
{
    char path[PATH_MAX], ep[64];
    gbx_client_t *c = NULL;
    snprintf(path, sizeof path, "%s/keys/%s.secret", home, as);
    if (gbx_identity_load(path, me) != GBX_OK)
        return NULL;
    snprintf(path, sizeof path, "%s/keys/demo-1.pub", home);
    if (gbx_pubid_load(path, node) != GBX_OK)
        return NULL;
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    uint64_t bytes = (uint64_t)o->window * (o->size + 4096);
    gbx_client_opts_t co = {.endpoint = ep,
                            .identity = *me,
                            .node = node,
                            .node_id = "demo-1",
                            .peer = s_e2e_peer,
                            .peer_arg = cfg,
                            .credit_messages = (uint32_t)o->window,
                            .credit_bytes = bytes < (64u << 20) ? (64u << 20) : bytes,
                            .submit_timeout_ms = 0};
    if (gbx_client_new(&co, &c) != GBX_OK)
        return NULL;
    uint64_t end = s_ns() + 10000000000ull;
    while (!gbx_client_connected(c) && s_ns() < end) {
        gbx_event_t ev;
        if (gbx_client_poll(c, 50, &ev) == GBX_OK)
            gbx_event_clear(&ev);
    }
    if (!gbx_client_connected(c))
        gbx_client_destroy(&c);
    return c;
}

static void s_e2e_header(gbx_header_t *h)
{
    gbx_header_init(h);
    h->to_agency = "gd.tax";
    h->service_code = "GD-SI-PAYCERT";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "SI-CERT";
    h->case_ref = "BENCH";
    h->subject_count = 1;
    /* what the sample policy asks (rule sp-hk-gd-paycert-request): every
       message is decided by it, as in the demo */
    h->legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h->legal_route_ref = "GBA-SC-2024-0193";
    h->consent_type = GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT;
    h->consent_ref = "PA-2026-55120";
    h->impact_assessment_ref = "PIA-GD-2025-031";
    h->end_user_ref = "iamsmart:5f3c9a";
}

/*  Builds messages LO..LO+N-1 into OUT: the index is in the first 8 bytes
    of the plaintext, and in the header's case_ref ("BENCH-<index>") for
    raw consumers, which do not decrypt. */
static int s_e2e_build(gbx_client_t *c, const s_e2e_opts_t *o, uint64_t lo, size_t n,
                       uint8_t *const *plains, gbx_msg_t **out)
{
    gbx_header_t *h = calloc(n, sizeof *h);
    char(*refs)[32] = calloc(n, sizeof *refs);
    const gbx_header_t **hs = calloc(n, sizeof *hs);
    const void **ps = calloc(n, sizeof *ps);
    size_t *ls = calloc(n, sizeof *ls);
    int rc = -1;
    if (!h || !refs || !hs || !ps || !ls)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = lo + i;
        s_e2e_header(&h[i]);
        snprintf(refs[i], sizeof refs[i], "BENCH-%llu", (unsigned long long)idx);
        h[i].case_ref = refs[i];
        memcpy(plains[i], &idx, sizeof idx);
        hs[i] = &h[i], ps[i] = plains[i], ls[i] = o->size;
    }
    rc = 0;
    if (o->batch > 1)
        rc = gbx_client_msg_batch(c, hs, ps, ls, n, out) == GBX_OK ? 0 : -1;
    for (size_t i = 0; o->batch <= 1 && i < n && rc == 0; i++)
        if (gbx_client_msg(c, &h[i], ps[i], o->size, &out[i]) != GBX_OK)
            rc = -1;
out:
    free(h);
    free(refs);
    free(hs);
    free(ps);
    free(ls);
    return rc;
}

static size_t s_tag_find(const uint64_t *tags, size_t n, uint64_t tag)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tags[mid] < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && tags[lo] == tag ? lo : SIZE_MAX;
}

static int s_e2e_producer(int k, const char *home, int port, const s_e2e_opts_t *o, s_shm_t *shm)
{
    char cfgpath[PATH_MAX + 16], err[256];
    gbx_config_t *cfg = NULL;
    gbx_identity_t *me = NULL;
    gbx_pubid_t node;
    snprintf(cfgpath, sizeof cfgpath, "%s/gbxd.yaml", home);
    if (gbx_config_load(cfgpath, &cfg, err, sizeof err) != GBX_OK) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    const char *as = "hk.kiosk"; /* the one requester of the service in the sample policy */
    (void)k;
    gbx_client_t *c = s_e2e_client(home, cfg, as, port, o, &me, &node);
    if (!c) {
        fprintf(stderr, "producer %d: cannot connect as %s\n", k, as);
        return 1;
    }
    /* this producer's share: indices [lo, lo + n) */
    size_t per = o->count / (size_t)o->producers, lo = per * (size_t)k;
    size_t n = k == o->producers - 1 ? o->count - lo : per;
    size_t k_batch = o->batch > 1 ? o->batch : 1, chunk = o->batch > 1 ? o->batch : 64;
    /* gbx_client_msg copies the plaintext: CHUNK buffers serve every build */
    uint8_t **plains = calloc(chunk, sizeof *plains);
    gbx_msg_t **msgs = calloc(o->queue_only ? chunk : (n ? n : 1), sizeof *msgs);
    uint64_t *tags = calloc(n ? n : 1, sizeof *tags);
    if (!plains || !msgs || !tags)
        return 1;
    for (size_t i = 0; i < chunk; i++) {
        if (!(plains[i] = malloc(o->size)))
            return 1;
        memset(plains[i], 'x', o->size);
    }
    if (!o->queue_only)
        for (size_t i = 0; i < n; i += k_batch) {
            size_t m = n - i < k_batch ? n - i : k_batch;
            if (s_e2e_build(c, o, lo + i, m, plains, msgs + i) != 0) {
                fprintf(stderr, "producer %d: cannot build messages\n", k);
                return 1;
            }
        }
    __atomic_add_fetch(&shm->ready_prod, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&shm->go, __ATOMIC_SEQ_CST)) {
        gbx_event_t ev;
        if (gbx_client_poll(c, 1, &ev) == GBX_OK)
            gbx_event_clear(&ev);
        if (__atomic_load_n(&shm->stop, __ATOMIC_SEQ_CST))
            return 1;
    }
    double cpu0 = s_cpu_self();
    uint64_t t0 = s_ns(), deadline = t0 + (uint64_t)(o->timeout * 1e9);
    double per_ns = o->rate > 0 ? o->rate / o->producers / 1e9 : 0; /* msgs per ns */
    size_t next = 0, answered = 0, built = 0, ready_from = 0;
    while (answered < n && s_ns() < deadline && !__atomic_load_n(&shm->stop, __ATOMIC_RELAXED)) {
        uint64_t now = s_ns();
        int wait = 0;
        while (next < n && gbx_client_pending(c) < o->window) {
            if (per_ns > 0 && (double)(now - t0) * per_ns < (double)next) {
                double due = (double)next / per_ns - (double)(now - t0);
                wait = (int)(due / 1e6) + 1; /* sleep, never spin: the broker needs the CPU */
                break;
            }
            gbx_msg_t **slot = &msgs[next];
            if (o->queue_only) {
                if (ready_from == built) { /* build the next chunk */
                    size_t m = n - next < chunk ? n - next : chunk;
                    if (s_e2e_build(c, o, lo + next, m, plains, msgs) != 0)
                        return 1;
                    ready_from = 0, built = m;
                }
                slot = &msgs[ready_from++];
            }
            uint64_t tag = 0;
            shm->rec[lo + next].submit = s_ns();
            if (gbx_client_submit(c, slot, &tag) != GBX_OK) {
                fprintf(stderr, "producer %d: submit failed\n", k);
                return 1;
            }
            tags[next++] = tag;
            now = s_ns();
        }
        if (next < n && gbx_client_pending(c) >= o->window)
            wait = 100;
        else if (next >= n)
            wait = 100;
        gbx_event_t ev;
        if (gbx_client_poll(c, wait, &ev) != GBX_OK)
            continue;
        if (ev.kind == GBX_EV_ACCEPTED || ev.kind == GBX_EV_REJECTED) {
            size_t j = s_tag_find(tags, next, ev.tag);
            if (j != SIZE_MAX) {
                answered++;
                if (ev.kind == GBX_EV_ACCEPTED) {
                    shm->rec[lo + j].accept = s_ns();
                    __atomic_add_fetch(ev.duplicate ? &shm->duplicates : &shm->accepted, 1,
                                       __ATOMIC_RELAXED);
                } else {
                    if (__atomic_add_fetch(&shm->rejected, 1, __ATOMIC_RELAXED) <= 3)
                        fprintf(stderr, "producer %d: rejected %s %s\n", k, gbx_err_name(ev.reason),
                                ev.detail);
                }
            }
        }
        gbx_event_clear(&ev);
    }
    shm->cpu[k] = s_cpu_self() - cpu0;
    if (o->queue_only)
        for (size_t i = ready_from; i < built; i++)
            gbx_msg_destroy(&msgs[i]);
    gbx_client_destroy(&c);
    for (size_t i = 0; i < chunk; i++)
        free(plains[i]);
    free(plains);
    free(msgs);
    free(tags);
    gbx_identity_destroy(&me);
    gbx_config_destroy(&cfg);
    return answered == n ? 0 : 1;
}

/*  Records the delivery of message IDX; 1 when it was new. */
static void s_delivered(const s_e2e_opts_t *o, s_shm_t *shm, uint64_t idx)
{
    uint64_t zero = 0;
    if (idx >= o->count)
        return;
    if (__atomic_compare_exchange_n(&shm->rec[idx].deliver, &zero, s_ns(), 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        __atomic_add_fetch(&shm->delivered, 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&shm->dup_deliveries, 1, __ATOMIC_RELAXED);
}

/*  Sends [GBX1, PART1] on SOCK; frees PART1. */
static int s_raw_send(void *sock, uint8_t *p1, size_t l1)
{
    int rc = zmq_send(sock, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN, ZMQ_SNDMORE) < 0 ||
                     zmq_send(sock, p1, l1, 0) < 0
                 ? -1
                 : 0;
    free(p1);
    return rc;
}

/*  A consumer that speaks the adapter protocol on a bare CURVE DEALER:
    Credit, Deliver (decoded, not verified, not decrypted), Ack with Credit
    for each batch. What the broker can deliver when the receiving side costs
    nothing. */
static int s_e2e_raw_consumer(int k, const char *home, int port, const s_e2e_opts_t *o,
                              s_shm_t *shm)
{
    char path[PATH_MAX + 32], ep[64];
    gbx_identity_t *me = NULL;
    gbx_pubid_t node;
    snprintf(path, sizeof path, "%s/keys/gd.tax.secret", home);
    if (gbx_identity_load(path, &me) != GBX_OK)
        return 1;
    snprintf(path, sizeof path, "%s/keys/demo-1.pub", home);
    if (gbx_pubid_load(path, &node) != GBX_OK)
        return 1;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, node.curve_pk, GBX_KEY_BYTES);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, gbx_identity_public(me)->curve_pk, GBX_KEY_BYTES);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(me), GBX_KEY_BYTES);
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    if (zmq_connect(sock, ep) != 0)
        return 1;
    uint8_t *p1 = NULL;
    size_t l1 = 0;
    uint32_t window = (uint32_t)o->window;
    if (gbx_frame_credit(window, UINT64_MAX / 2, &p1, &l1) != GBX_OK || s_raw_send(sock, p1, l1))
        return 1;
    /* the node answers a Ping only once the session exists: then we are ready */
    if (gbx_frame_ping(1, 1, &p1, &l1) != GBX_OK || s_raw_send(sock, p1, l1))
        return 1;
    zmq_msg_t part;
    zmq_msg_init(&part);
    int ready = 0;
    uint64_t *acks = calloc(window, sizeof *acks);
    size_t nacks = 0;
    double cpu0 = 0;
    uint64_t deadline = 0;
    for (;;) {
        if (!ready && __atomic_load_n(&shm->stop, __ATOMIC_SEQ_CST))
            break;
        if (ready && __atomic_load_n(&shm->go, __ATOMIC_SEQ_CST) && !deadline) {
            cpu0 = s_cpu_self();
            deadline = s_ns() + (uint64_t)(o->timeout * 1e9);
        }
        if (deadline && (__atomic_load_n(&shm->delivered, __ATOMIC_RELAXED) >= o->count ||
                         s_ns() >= deadline || __atomic_load_n(&shm->stop, __ATOMIC_RELAXED)))
            break;
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, nacks ? 0 : 20) <= 0) {
            if (nacks) { /* nothing more waiting: ack what we have, credit it back */
                uint8_t *a = NULL, *cr = NULL;
                size_t al = 0, cl = 0;
                if (gbx_frame_ack(acks, nacks, &a, &al) == GBX_OK)
                    s_raw_send(sock, a, al);
                if (gbx_frame_credit((uint32_t)nacks, 0, &cr, &cl) == GBX_OK)
                    s_raw_send(sock, cr, cl);
                nacks = 0;
            }
            continue;
        }
        /* one message: up to 64 parts, payload ignored */
        gbx_part_t parts[2];
        uint8_t p0[8], *f = NULL;
        size_t n = 0, flen = 0;
        int more = 1;
        while (more) {
            if (zmq_msg_recv(&part, sock, 0) < 0)
                break;
            if (n == 0 && zmq_msg_size(&part) <= sizeof p0)
                memcpy(p0, zmq_msg_data(&part), zmq_msg_size(&part)),
                    parts[0].len = zmq_msg_size(&part);
            if (n == 1) {
                flen = zmq_msg_size(&part);
                f = malloc(flen ? flen : 1);
                if (f)
                    memcpy(f, zmq_msg_data(&part), flen);
            }
            n++;
            more = zmq_msg_more(&part);
        }
        parts[0].data = p0;
        parts[1].data = f;
        parts[1].len = flen;
        gbx_frame_t *fr = NULL;
        if (n >= 2 && f && gbx_frame_decode_at(parts, 2, GBX_FRAME_AT_ANY, &fr, NULL) == GBX_OK) {
            if (gbx_frame_kind(fr) == GBX_FRAME_PONG) {
                if (!ready) {
                    ready = 1;
                    __atomic_add_fetch(&shm->ready_cons, 1, __ATOMIC_SEQ_CST);
                }
            } else if (gbx_frame_kind(fr) == GBX_FRAME_DELIVER) {
                const gbx_header_t *h = gbx_envelope_header(gbx_frame_envelope(fr));
                unsigned long long idx = 0;
                if (h->case_ref && sscanf(h->case_ref, "BENCH-%llu", &idx) == 1)
                    s_delivered(o, shm, idx);
                if (nacks < window)
                    acks[nacks++] = gbx_frame_message(fr)->deliver->delivery_id;
            }
        }
        gbx_frame_destroy(&fr);
        free(f);
    }
    shm->cpu[S_E2E_PROCS / 2 + k] = deadline ? s_cpu_self() - cpu0 : 0;
    zmq_msg_close(&part);
    free(acks);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    gbx_identity_destroy(&me);
    return 0;
}

static int s_e2e_consumer(int k, const char *home, int port, const s_e2e_opts_t *o, s_shm_t *shm)
{
    if (o->raw)
        return s_e2e_raw_consumer(k, home, port, o, shm);
    char cfgpath[PATH_MAX + 16], err[256];
    gbx_config_t *cfg = NULL;
    gbx_identity_t *me = NULL;
    gbx_pubid_t node;
    snprintf(cfgpath, sizeof cfgpath, "%s/gbxd.yaml", home);
    if (gbx_config_load(cfgpath, &cfg, err, sizeof err) != GBX_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    gbx_client_t *c = s_e2e_client(home, cfg, "gd.tax", port, o, &me, &node);
    if (!c) {
        fprintf(stderr, "consumer %d: cannot connect\n", k);
        return 1;
    }
    __atomic_add_fetch(&shm->ready_cons, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&shm->go, __ATOMIC_SEQ_CST)) {
        gbx_event_t ev;
        if (gbx_client_poll(c, 1, &ev) == GBX_OK)
            gbx_event_clear(&ev);
        if (__atomic_load_n(&shm->stop, __ATOMIC_SEQ_CST))
            return 1;
    }
    double cpu0 = s_cpu_self();
    uint64_t deadline = s_ns() + (uint64_t)(o->timeout * 1e9);
    while (__atomic_load_n(&shm->delivered, __ATOMIC_RELAXED) < o->count && s_ns() < deadline &&
           !__atomic_load_n(&shm->stop, __ATOMIC_RELAXED)) {
        gbx_event_t ev;
        if (gbx_client_poll(c, 20, &ev) != GBX_OK)
            continue;
        if (ev.kind == GBX_EV_DELIVERY) {
            gbx_delivery_t *d = ev.delivery;
            uint64_t idx = UINT64_MAX;
            if (d->len >= sizeof idx)
                memcpy(&idx, d->data, sizeof idx);
            s_delivered(o, shm, idx);
            gbx_client_ack(c, d->delivery_id);
        }
        gbx_event_clear(&ev);
    }
    shm->cpu[S_E2E_PROCS / 2 + k] = s_cpu_self() - cpu0;
    gbx_client_flush(c);
    gbx_client_destroy(&c);
    gbx_identity_destroy(&me);
    gbx_config_destroy(&cfg);
    return 0;
}

/*  CPU seconds (user + system) of process PID so far; -1 if unknown. */
static double s_cpu_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *t = s_slurp(path);
    if (!t)
        return -1;
    char *p = strrchr(t, ')');
    unsigned long ut = 0, st = 0;
    /* fields after ") ": state(3) ... utime(14) stime(15) */
    int ok =
        p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2;
    free(t);
    return ok ? (double)(ut + st) / (double)sysconf(_SC_CLK_TCK) : -1;
}

static int s_cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/*  One line: CPU seconds of each thread of PID, in creation (tid) order.
    gbxd starts the loop (main), RocksDB's, ZeroMQ's and the ZAP threads,
    then limits.verify_threads verify workers, then the writer last. */
static void s_threads_of(pid_t pid)
{
    char path[96];
    int tids[256], n = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    struct dirent *de;
    while (dir && (de = readdir(dir)) && n < 256)
        if (de->d_name[0] != '.')
            tids[n++] = atoi(de->d_name);
    if (dir)
        closedir(dir);
    qsort(tids, (size_t)n, sizeof tids[0], s_cmp_int);
    printf("gbxd threads, CPU s in tid order (loop first, writer last):");
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, tids[i]);
        char *comm = s_slurp(path);
        if (comm && strchr(comm, '\n'))
            *strchr(comm, '\n') = '\0';
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, tids[i]);
        char *t = s_slurp(path), *p = t ? strrchr(t, ')') : NULL;
        unsigned long ut = 0, st = 0;
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
        printf(" %s=%.2f", comm ? comm : "?", (double)(ut + st) / (double)sysconf(_SC_CLK_TCK));
        free(comm);
        free(t);
    }
    printf("\n");
}

/*  VmHWM and VmRSS of PID in KiB. */
static void s_rss_of(pid_t pid, long *hwm, long *rss)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *t = s_slurp(path), *p;
    *hwm = *rss = -1;
    if (!t)
        return;
    if ((p = strstr(t, "VmHWM:")))
        *hwm = atol(p + 6);
    if ((p = strstr(t, "VmRSS:")))
        *rss = atol(p + 6);
    free(t);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*  Percentile Q (0..1) of the sorted V[0..n-1], in ms. */
static double s_pct(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return -1;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

enum {
    M_ACC_RATE,
    M_DEL_RATE,
    M_A50,
    M_A99,
    M_A999,
    M_E50,
    M_E99,
    M_E999,
    M_HWM,
    M_RSS,
    M_CPU_D,
    M_CPU_P,
    M_CPU_C,
    M_SECS,
    M_SHARE,
    M_LOAD,
    M_COUNT_
};
static const char *const s_mnames[M_COUNT_] = {
    "accepted_per_s",  "delivered_per_s", "accept_p50_ms", "accept_p99_ms",
    "accept_p999_ms",  "e2e_p50_ms",      "e2e_p99_ms",    "e2e_p999_ms",
    "gbxd_hwm_kib",    "gbxd_rss_kib",    "gbxd_cpu_s",    "producers_cpu_s",
    "consumers_cpu_s", "seconds",         "cpu_share",     "load1"};

/*  The 1-minute load average: other work on a shared machine shows here. */
static double s_load1(void)
{
    char *t = s_slurp("/proc/loadavg");
    double l = t ? atof(t) : -1;
    free(t);
    return l;
}

static pid_t s_spawn_gbxd(const char *gbxd, const char *cfg, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY), err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out >= 0)
            dup2(out, STDOUT_FILENO);
        if (err >= 0)
            dup2(err, STDERR_FILENO);
        execl(gbxd, "gbxd", "-c", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/*  One run; fills M. 0 on success. */
static int s_e2e_run(const s_e2e_opts_t *o, int run, double m[M_COUNT_])
{
    int rc = 1, port = s_free_port();
    char dir[] = "/tmp/gbx-bench-XXXXXX", home[PATH_MAX], log[PATH_MAX];
    char *cfg = NULL;
    pid_t gbxd = -1, kids[2 * S_E2E_PROCS];
    int nkids = 0;
    double dcpu0 = 0;
    uint64_t tgo = 0;
    size_t shm_len = sizeof(s_shm_t) + o->count * sizeof(s_rec_t);
    s_shm_t *shm = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t *lat = NULL;
    if (shm == MAP_FAILED || !mkdtemp(dir) || port < 0)
        return 1;
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(log, sizeof log, "%s/gbxd.log", dir);
    if (gbx_config_write_default(home, &cfg) != GBX_OK || s_edit_config(cfg, port, o) != 0) {
        fprintf(stderr, "gbx-bench: cannot write the configuration in %s\n", home);
        goto out;
    }
    gbxd = s_spawn_gbxd(o->gbxd, cfg, log);
    for (int i = 0; i < 200 && !s_port_open(port); i++) {
        if (waitpid(gbxd, NULL, WNOHANG) == gbxd) {
            gbxd = -1;
            fprintf(stderr, "gbx-bench: gbxd exited at start-up (log: %s)\n", log);
            goto out;
        }
        s_sleep_ms(50);
    }
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < o->consumers + o->producers; k++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(k < o->consumers ? s_e2e_consumer(k, home, port, o, shm)
                                   : s_e2e_producer(k - o->consumers, home, port, o, shm));
        kids[nkids++] = pid;
    }
    uint64_t end = s_ns() + 900000000000ull; /* building may take a while */
    while ((__atomic_load_n(&shm->ready_prod, __ATOMIC_SEQ_CST) < o->producers ||
            __atomic_load_n(&shm->ready_cons, __ATOMIC_SEQ_CST) < o->consumers) &&
           s_ns() < end) {
        for (int k = 0; k < nkids; k++)
            if (kids[k] > 0 && waitpid(kids[k], NULL, WNOHANG) == kids[k]) {
                kids[k] = -1;
                fprintf(stderr, "gbx-bench: a client exited before the start\n");
                __atomic_store_n(&shm->stop, 1, __ATOMIC_SEQ_CST);
                goto reap;
            }
        s_sleep_ms(5);
    }
    dcpu0 = s_cpu_of(gbxd);
    tgo = s_ns();
    __atomic_store_n(&shm->go, 1, __ATOMIC_SEQ_CST);
reap:
    for (int k = 0; k < nkids; k++)
        if (kids[k] > 0) {
            int st = 0;
            waitpid(kids[k], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fprintf(stderr, "gbx-bench: %s %d exited with status %d\n",
                        k < o->consumers ? "consumer" : "producer",
                        k < o->consumers ? k : k - o->consumers, st);
        }
    if (!shm->go)
        goto out;
    uint64_t tend = s_ns();
    long hwm, rss;
    s_rss_of(gbxd, &hwm, &rss);
    s_threads_of(gbxd);
    double dcpu = s_cpu_of(gbxd) - dcpu0;
    /* the figures */
    uint64_t first = UINT64_MAX, last_acc = 0, last_del = 0;
    size_t na = 0, nd = 0;
    lat = malloc((o->count ? o->count : 1) * sizeof *lat);
    for (size_t i = 0; i < o->count; i++) {
        s_rec_t *r = &shm->rec[i];
        if (r->submit && r->submit < first)
            first = r->submit;
        if (r->accept > last_acc)
            last_acc = r->accept;
        if (r->deliver > last_del)
            last_del = r->deliver;
    }
    for (size_t i = 0; i < o->count; i++)
        if (shm->rec[i].accept)
            lat[na++] = shm->rec[i].accept - shm->rec[i].submit;
    qsort(lat, na, sizeof *lat, s_cmp_u64);
    m[M_A50] = s_pct(lat, na, 0.5), m[M_A99] = s_pct(lat, na, 0.99);
    m[M_A999] = s_pct(lat, na, 0.999);
    for (size_t i = 0; i < o->count; i++)
        if (shm->rec[i].deliver)
            lat[nd++] = shm->rec[i].deliver - shm->rec[i].submit;
    qsort(lat, nd, sizeof *lat, s_cmp_u64);
    m[M_E50] = s_pct(lat, nd, 0.5), m[M_E99] = s_pct(lat, nd, 0.99);
    m[M_E999] = s_pct(lat, nd, 0.999);
    m[M_ACC_RATE] = na && last_acc > first ? (double)na / ((double)(last_acc - first) / 1e9) : 0;
    m[M_DEL_RATE] = nd && last_del > first ? (double)nd / ((double)(last_del - first) / 1e9) : 0;
    m[M_HWM] = (double)hwm, m[M_RSS] = (double)rss;
    m[M_CPU_D] = dcpu, m[M_CPU_P] = 0, m[M_CPU_C] = 0;
    for (int k = 0; k < o->producers; k++)
        m[M_CPU_P] += shm->cpu[k];
    for (int k = 0; k < o->consumers; k++)
        m[M_CPU_C] += shm->cpu[S_E2E_PROCS / 2 + k];
    m[M_SECS] = (double)(tend - tgo) / 1e9;
    /* the share of the machine's CPU the benchmark's processes got (1: all of it) */
    m[M_SHARE] = (m[M_CPU_D] + m[M_CPU_P] + m[M_CPU_C]) /
                 (m[M_SECS] * (double)sysconf(_SC_NPROCESSORS_ONLN));
    m[M_LOAD] = s_load1();
    printf(
        "run %d: %zu x %zu B %s, P=%d C=%d%s: accepted %zu (%.0f/s) delivered %zu (%.0f/s) "
        "in %.2f s; accept p50/p99/p99.9 %.2f/%.2f/%.2f ms; e2e p50/p99/p99.9 %.2f/%.2f/%.2f ms; "
        "gbxd VmHWM %.1f MiB VmRSS %.1f MiB; CPU s gbxd %.2f producers %.2f consumers %.2f "
        "(%.0f%% of the machine; load %.1f)\n",
        run, o->count, o->size, o->batch > 1 ? "batch" : "per-message sigs", o->producers,
        o->consumers,
        o->queue_only ? " queue-only"
        : o->raw      ? " raw-consumers"
                      : "",
        na, m[M_ACC_RATE], nd, m[M_DEL_RATE], m[M_SECS], m[M_A50], m[M_A99], m[M_A999], m[M_E50],
        m[M_E99], m[M_E999], (double)hwm / 1024, (double)rss / 1024, m[M_CPU_D], m[M_CPU_P],
        m[M_CPU_C], 100 * m[M_SHARE], m[M_LOAD]);
    printf("e2e run=%d size=%zu count=%zu batch=%zu producers=%d consumers=%d rate=%.0f "
           "queue_only=%d rejected=%llu duplicates=%llu dup_deliveries=%llu",
           run, o->size, o->count, o->batch, o->producers, o->consumers, o->rate, o->queue_only,
           (unsigned long long)shm->rejected, (unsigned long long)shm->duplicates,
           (unsigned long long)shm->dup_deliveries);
    for (int i = 0; i < M_COUNT_; i++)
        printf(" %s=%.3f", s_mnames[i], m[i]);
    printf("\n");
    rc = na == o->count && (o->queue_only || nd == o->count) ? 0 : 1;
out:
    if (gbxd > 0) {
        kill(gbxd, SIGTERM);
        int st = 0, done = 0;
        for (int i = 0; i < 600 && !(done = waitpid(gbxd, &st, WNOHANG) == gbxd); i++)
            s_sleep_ms(50);
        if (!done) {
            kill(gbxd, SIGKILL);
            waitpid(gbxd, NULL, 0);
        }
        char *t = s_slurp(log), *p = t ? strstr(t, "GBX-STATS") : NULL;
        if (p) {
            char *nl = strchr(p, '\n');
            printf("%.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
        }
        free(t);
    }
    fflush(stdout);
    free(lat);
    free(cfg);
    munmap(shm, shm_len);
    if (o->keep)
        fprintf(stderr, "gbx-bench: kept %s\n", dir);
    else
        nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static int s_e2e(const s_e2e_opts_t *o)
{
    double all[64][M_COUNT_], col[64];
    int ok = 0, bad = 0;
    printf("gbx-bench e2e: gbxd %s, %d run(s)\n", o->gbxd, o->runs);
    for (int r = 0; r < o->runs; r++) {
        if (s_e2e_run(o, r + 1, all[ok]) == 0)
            ok++;
        else
            bad++;
    }
    if (!ok)
        return 1;
    printf("e2e median runs=%d failed=%d size=%zu count=%zu batch=%zu producers=%d consumers=%d "
           "rate=%.0f queue_only=%d",
           ok, bad, o->size, o->count, o->batch, o->producers, o->consumers, o->rate,
           o->queue_only);
    for (int i = 0; i < M_COUNT_; i++) {
        for (int r = 0; r < ok; r++)
            col[r] = all[r][i];
        qsort(col, (size_t)ok, sizeof col[0], s_cmp);
        printf(" %s=%.3f", s_mnames[i], col[ok / 2]);
    }
    printf("\n");
    return bad ? 1 : 0;
}

static const char *s_default_gbxd(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("GBX_GBXD");
    if (env && *env)
        return env;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "gbxd";
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/../broker/gbxd", dirname(self));
    return path;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: gbx-bench crypto [--runs N] [--ms MS]\n"
                 "       gbx-bench e2e [--size N] [--count N] [--batch K] [--producers P]\n"
                 "                     [--consumers C] [--rate R] [--window W] [--runs N]\n"
                 "                     [--timeout S] [--gbxd PATH] [--keep] [--queue-only]\n"
                 "       gbx-bench floor [--runs N] [--size N]\n"
                 "       gbx-bench policy [--runs N]\n"
                 "       gbx-bench audit [--count N] [--runs N]\n"
                 "  crypto   sign, verify, encrypt, decrypt; batch verification cost;\n"
                 "           receipt signing, single and batch (64, 256)\n"
                 "  e2e      a real gbxd in a temporary home; P producer and C consumer\n"
                 "           processes; throughput, accept and end-to-end latency, broker RSS\n"
                 "  floor    the store's (RocksDB, fsync per group) and the transport's\n"
                 "           (ZeroMQ, plain and CURVE) own CPU per message (default 3 runs)\n"
                 "  policy   ns per policy decision with 10, 100 and 1,000 rules\n"
                 "  audit    the audit trail: CPU to seal a record; gbx-audit verify of --count\n"
                 "           records (default 1,000,000; 3 runs)\n"
                 "  --runs N number of timed runs per figure, median reported (default 5;\n"
                 "           e2e: 3)\n"
                 "  --ms MS  length of one run in milliseconds (default 300)\n"
                 "  --size N payload bytes, >= 8 (default 1024)\n"
                 "  --count N messages per run (default 20000)\n"
                 "  --batch K K messages under one batch signature (default 1: one each)\n"
                 "  --producers P, --consumers C  processes (default 2 and 1)\n"
                 "  --rate R total submits per second, paced (default 0: as fast as possible)\n"
                 "  --window W  submits outstanding per producer, consumer credit and\n"
                 "           limits.inflight_window (default 512; keep it below\n"
                 "           ZeroMQ's SNDHWM of 1000: see docs/benchmarks.md)\n"
                 "  --timeout S  give up a run after S seconds (default 300)\n"
                 "  --gbxd PATH  the broker (default $GBX_GBXD, else ../broker/gbxd next to\n"
                 "           this binary)\n"
                 "  --keep   keep the temporary home (config, store, gbxd.log)\n"
                 "  --queue-only  no consumers: fill the queue, report gbxd memory\n"
                 "  --raw-consumers  consumers speak the protocol on a bare CURVE socket and\n"
                 "             ack without verifying or decrypting (the broker's capacity; a\n"
                 "             real adapter also pays an Ed25519 verify and an X25519 per\n"
                 "             message, see gbx-bench crypto)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"ms", required_argument, NULL, 'm'},
                                         {"size", required_argument, NULL, 's'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"producers", required_argument, NULL, 'P'},
                                         {"consumers", required_argument, NULL, 'C'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"gbxd", required_argument, NULL, 'g'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"queue-only", no_argument, NULL, 'q'},
                                         {"raw-consumers", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    s_e2e_opts_t e = {.size = 1024,
                      .count = 20000,
                      .batch = 1,
                      .window = 512,
                      .producers = 2,
                      .consumers = 1,
                      .runs = 0,
                      .timeout = 300};
    int c, consumers_set = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            s_runs = e.runs = atoi(optarg);
            break;
        case 'm':
            s_run_ms = atof(optarg);
            break;
        case 's':
            e.size = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            e.count = strtoul(optarg, NULL, 10);
            e.count_set = 1;
            break;
        case 'b':
            e.batch = strtoul(optarg, NULL, 10);
            break;
        case 'P':
            e.producers = atoi(optarg);
            break;
        case 'C':
            e.consumers = atoi(optarg), consumers_set = 1;
            break;
        case 'R':
            e.rate = atof(optarg);
            break;
        case 'w':
            e.window = strtoul(optarg, NULL, 10);
            break;
        case 't':
            e.timeout = atof(optarg);
            break;
        case 'g':
            e.gbxd = optarg;
            break;
        case 'k':
            e.keep = 1;
            break;
        case 'q':
            e.queue_only = 1;
            break;
        case 'x':
            e.raw = 1;
            break;
        default:
            s_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (s_runs < 1 || s_runs > 63 || s_run_ms <= 0 || optind != argc - 1) {
        s_usage(stderr);
        return 2;
    }
    if (strcmp(argv[optind], "crypto") == 0)
        return s_crypto();
    if (strcmp(argv[optind], "policy") == 0)
        return gbx_bench_policy(e.runs ? e.runs : 5);
    if (strcmp(argv[optind], "audit") == 0)
        return gbx_bench_audit(argv[0], e.count_set ? e.count : 1000000, e.runs ? e.runs : 3);
    if (strcmp(argv[optind], "floor") == 0)
        return gbx_bench_floor(e.runs ? e.runs : 3, e.size);
    if (strcmp(argv[optind], "e2e") == 0) {
        if (!e.runs)
            e.runs = 3;
        if (e.queue_only && !consumers_set)
            e.consumers = 0;
        if (!e.gbxd)
            e.gbxd = s_default_gbxd();
        if (e.size < 8 || e.count < 1 || e.batch < 1 || e.batch > 4096 || e.producers < 1 ||
            e.producers > S_E2E_PROCS / 2 || e.consumers < 0 || e.consumers > S_E2E_PROCS / 2 ||
            (e.consumers == 0 && !e.queue_only) || e.window < 1 || e.window > 65536 || e.rate < 0 ||
            e.timeout <= 0) {
            s_usage(stderr);
            return 2;
        }
        if (sodium_init() < 0)
            return 1;
        signal(SIGPIPE, SIG_IGN);
        return s_e2e(&e);
    }
    s_usage(stderr);
    return 2;
}
