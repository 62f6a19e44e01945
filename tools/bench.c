/*  gbx-bench: benchmarks. Figures and the commands that reproduce them are in
    docs/benchmarks.md. Each figure is the median of --runs timed runs.

      gbx-bench crypto [--runs N] [--ms MS]   envelope and receipt crypto
                                              micro-benchmark */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gbx/envelope.h"
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

static void s_usage(FILE *out)
{
    fprintf(out, "usage: gbx-bench crypto [--runs N] [--ms MS]\n"
                 "  crypto   sign, verify, encrypt, decrypt; batch verification cost;\n"
                 "           receipt signing, single and batch (64, 256)\n"
                 "  --runs N number of timed runs per figure, median reported (default 5)\n"
                 "  --ms MS  length of one run in milliseconds (default 300)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"ms", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'r')
            s_runs = atoi(optarg);
        else if (c == 'm')
            s_run_ms = atof(optarg);
        else {
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
    s_usage(stderr);
    return 2;
}
