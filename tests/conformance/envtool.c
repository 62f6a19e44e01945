/*  envtool: the C side of the envelope conformance test. Makes keys, seals
    and signs messages, opens and verifies them, all through libgbxproto.
    Spec: proto/spec/2-envelope.md, proto/spec/3-keys.md.

    envtool keygen DIR ID
        writes DIR/ID.secret and DIR/ID.pub.
    envtool seal SIGNER.secret RECIPIENT.pub PLAINFILE OUTDIR [--batch N]
        writes OUTDIR/msg-<i>.env (envelope bytes), OUTDIR/msg-<i>.payload
        (encrypted payload) and OUTDIR/msg-<i>.txt (header fields, key=value)
        for i in 0..N-1; without --batch one message with a single signature.
    envtool open RECIPIENT.secret SIGNER.pub ENVFILE PAYLOADFILE OUTPLAIN
        decodes, verifies, checks the payload against the header, decrypts.
        On success writes OUTPLAIN, prints the header fields (key=value) and
        exits 0; on failure prints the error name (BAD_SIGNATURE, ...) and
        exits 1, without writing OUTPLAIN.
    envtool receipts NODE.secret OUTDIR N [--single]
        signs N receipts (random message ids and header hashes, sequence i)
        as one receipt batch, or each singly with --single, and writes the
        serialized SignedReceipts to OUTDIR/rcpt-<i>.sr.
    envtool verify-receipt NODE.pub FILE
        parses and verifies the SignedReceipt in FILE (2-envelope.md section
        7 steps 1 to 4); on success prints sequence=, batch= and exits 0.
    Every library error (key files included) prints its name and exits 1;
    usage errors and unreadable or unwritable data files exit 2. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gbx/envelope.h"
#include "gbx/identity.h"
#include "gbx/payload.h"
#include "gbx/receipt.h"

#define S_BATCH_ARG_MAX 1024

/* ------------------------------------------------------------------ files */

/*  Reads all of PATH into a malloc'ed buffer (caller frees). 0 or -1. */
static int s_slurp(const char *path, uint8_t **buf_out, size_t *len_out)
{
    int rc = -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        goto out;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf)
                goto out;
            buf = nbuf;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(f))
        goto out;
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "envtool: %s: %s\n", path, strerror(errno));
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

static int s_spill(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "envtool: %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

static void s_hex(FILE *f, const char *key, const uint8_t *data, size_t len)
{
    fprintf(f, "%s=", key);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", data[i]);
    fputc('\n', f);
}

/*  Prints what a receiver learns from envelope ENV, one key=value a line. */
static void s_describe(FILE *f, const gbx_envelope_t *env)
{
    const gbx_header_t *h = gbx_envelope_header(env);
    uint8_t hh[GBX_HASH_BYTES];
    gbx_envelope_header_hash(env, hh);
    s_hex(f, "message_id", h->message_id.data, h->message_id.len);
    fprintf(f, "from=%s\nto=%s\n", h->from_agency, h->to_agency);
    fprintf(f, "payload_length=%llu\n", (unsigned long long)h->payload_length);
    s_hex(f, "payload_hash", h->payload_hash.data, h->payload_hash.len);
    s_hex(f, "signer_key_id", h->signer_key_id.data, h->signer_key_id.len);
    s_hex(f, "header_hash", hh, sizeof hh);
    const Gbx__V1__BatchProof *b = gbx_envelope_message(env)->batch;
    fprintf(f, "batch=%d\n", b != NULL);
    if (b) {
        fprintf(f, "leaf_index=%u\ntree_size=%u\n", (unsigned)b->leaf_index,
                (unsigned)b->tree_size);
        s_hex(f, "root", b->root.data, b->root.len);
    }
}

/* ----------------------------------------------------------------- keygen */

static int s_keygen(const char *dir, const char *id)
{
    gbx_identity_t *ident = NULL;
    gbx_err_t rc = gbx_identity_generate(id, &ident);
    if (rc == GBX_OK)
        rc = gbx_identity_save(ident, dir, 0);
    gbx_identity_destroy(&ident);
    if (rc != GBX_OK) {
        printf("%s\n", gbx_err_name(rc));
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------- seal */

/*  One message being sealed: its header and where its parts live. */
typedef struct {
    gbx_header_t h;
    uint8_t message_id[GBX_MSG_ID_BYTES];
    uint8_t payload_hash[GBX_HASH_BYTES];
    uint8_t *sealed;
    size_t sealed_len;
} s_msg_t;

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*  Fills M's header for a REQUEST from FROM to TO and seals PLAIN to BOX_PK. */
static gbx_err_t s_prepare(s_msg_t *m, char *from, char *to, const uint8_t box_pk[32],
                           const uint8_t *plain, size_t plain_len, uint64_t now)
{
    gbx_header_t *h = &m->h;
    gbx_header_init(h);
    gbx_message_id_new(m->message_id);
    h->message_id.data = m->message_id;
    h->message_id.len = sizeof m->message_id;
    h->from_agency = from;
    h->to_agency = to;
    h->service_code = "CONFORMANCE-ECHO";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__RESTRICTED;
    h->purpose_code = "conformance-test";
    h->case_ref = "\xe6\xa1\x88\xe4\xbb\xb6-0001"; /* non-ASCII on purpose: UTF-8 "案件-0001" */
    h->legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h->legal_route_ref = "GBA-SC-2024-0001";
    h->consent_type = GBX__V1__CONSENT_TYPE__CONSENT;
    h->consent_ref = "consent-42";
    h->subject_count = 1;
    h->created_at_ms = now;
    h->expires_at_ms = now + 3600u * 1000u;
    h->payload_length = plain_len;
    gbx_binding_t binding = {m->message_id, from, to};
    gbx_err_t rc = gbx_payload_seal(box_pk, &binding, plain, plain_len, &m->sealed, &m->sealed_len,
                                    m->payload_hash);
    h->payload_hash.data = m->payload_hash;
    h->payload_hash.len = sizeof m->payload_hash;
    return rc;
}

/*  Writes OUTDIR/msg-I.{env,payload,txt}. */
static int s_store(const char *outdir, size_t i, const gbx_envelope_t *env, const s_msg_t *m)
{
    int rc = -1;
    char path[4096];
    size_t n = gbx_envelope_size(env);
    uint8_t *buf = malloc(n);
    if (!buf)
        goto out;
    gbx_envelope_pack(env, buf);
    snprintf(path, sizeof path, "%s/msg-%zu.env", outdir, i);
    if (s_spill(path, buf, n) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/msg-%zu.payload", outdir, i);
    if (s_spill(path, m->sealed, m->sealed_len) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/msg-%zu.txt", outdir, i);
    FILE *f = fopen(path, "w");
    if (!f)
        goto out;
    s_describe(f, env);
    if (fclose(f) != 0)
        goto out;
    rc = 0;
out:
    free(buf);
    return rc;
}

static int s_seal(const char *signer_path, const char *recipient_path, const char *plain_path,
                  const char *outdir, size_t n, int batch)
{
    int ret = 2;
    gbx_err_t rc = GBX_OK;
    gbx_identity_t *signer = NULL;
    gbx_pubid_t recipient;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    s_msg_t *msgs = calloc(n, sizeof *msgs);
    const gbx_header_t **hs = calloc(n, sizeof *hs);
    gbx_envelope_t **envs = calloc(n, sizeof *envs);
    char from[GBX_ID_MAX + 1], to[GBX_ID_MAX + 1];
    if (!msgs || !hs || !envs)
        goto out;
    if ((rc = gbx_identity_load(signer_path, &signer)) != GBX_OK ||
        (rc = gbx_pubid_load(recipient_path, &recipient)) != GBX_OK)
        goto out;
    if (s_slurp(plain_path, &plain, &plain_len) != 0)
        goto out;
    snprintf(from, sizeof from, "%s", gbx_identity_public(signer)->id);
    snprintf(to, sizeof to, "%s", recipient.id);
    uint64_t now = s_now_ms();
    for (size_t i = 0; i < n; i++) {
        if ((rc = s_prepare(&msgs[i], from, to, recipient.box_pk, plain, plain_len, now)) != GBX_OK)
            goto out;
        hs[i] = &msgs[i].h;
    }
    if (batch)
        rc = gbx_envelope_sign_batch(signer, hs, n, envs);
    else
        rc = gbx_envelope_sign(signer, hs[0], &envs[0]);
    if (rc != GBX_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (s_store(outdir, i, envs[i], &msgs[i]) != 0)
            goto out;
    ret = 0;
out:
    if (rc != GBX_OK) {
        printf("%s\n", gbx_err_name(rc));
        ret = 1;
    }
    for (size_t i = 0; msgs && envs && i < n; i++) {
        free(msgs[i].sealed);
        gbx_envelope_destroy(&envs[i]);
    }
    free(msgs);
    free(hs);
    free(envs);
    free(plain);
    gbx_identity_destroy(&signer);
    return ret;
}

/* ------------------------------------------------------------------- open */

static int s_open(const char *recipient_path, const char *signer_path, const char *env_path,
                  const char *payload_path, const char *out_path)
{
    int ret = 2;
    gbx_err_t rc = GBX_OK;
    gbx_identity_t *recipient = NULL;
    gbx_pubid_t signer;
    gbx_envelope_t *env = NULL;
    uint8_t *env_buf = NULL, *sealed = NULL, *plain = NULL;
    size_t env_len = 0, sealed_len = 0, plain_len = 0;
    if ((rc = gbx_identity_load(recipient_path, &recipient)) != GBX_OK ||
        (rc = gbx_pubid_load(signer_path, &signer)) != GBX_OK)
        goto out;
    if (s_slurp(env_path, &env_buf, &env_len) != 0 ||
        s_slurp(payload_path, &sealed, &sealed_len) != 0)
        goto out;
    /* The receiver's order: structure, signature, payload against the
       signed header, then decryption. */
    if ((rc = gbx_envelope_decode(env_buf, env_len, &env)) != GBX_OK ||
        (rc = gbx_envelope_verify(env, &signer, NULL)) != GBX_OK ||
        (rc = gbx_envelope_check_payload(env, sealed, sealed_len)) != GBX_OK)
        goto out;
    const gbx_header_t *h = gbx_envelope_header(env);
    gbx_binding_t binding;
    gbx_envelope_binding(env, &binding);
    rc = gbx_payload_open(recipient, &binding, sealed, sealed_len, h->payload_length,
                          h->payload_hash.data, &plain, &plain_len);
    if (rc != GBX_OK)
        goto out;
    if (s_spill(out_path, plain, plain_len) != 0)
        goto out;
    s_describe(stdout, env);
    ret = 0;
out:
    if (rc != GBX_OK) {
        printf("%s\n", gbx_err_name(rc));
        ret = 1;
    }
    gbx_envelope_destroy(&env);
    gbx_identity_destroy(&recipient);
    free(env_buf);
    free(sealed);
    free(plain);
    return ret;
}

/* --------------------------------------------------------------- receipts */

static int s_receipts(const char *node_path, const char *outdir, size_t n, int single)
{
    int ret = 2;
    gbx_err_t rc = GBX_OK;
    gbx_identity_t *node = NULL;
    Gbx__V1__Receipt *rs = calloc(n, sizeof *rs);
    const Gbx__V1__Receipt **rp = calloc(n, sizeof *rp);
    uint8_t(*ids)[GBX_MSG_ID_BYTES + GBX_HASH_BYTES] = calloc(n, sizeof *ids);
    uint8_t **outs = calloc(n, sizeof *outs);
    size_t *lens = calloc(n, sizeof *lens);
    char node_id[GBX_ID_MAX + 1];
    if (!rs || !rp || !ids || !outs || !lens)
        goto out;
    if ((rc = gbx_identity_load(node_path, &node)) != GBX_OK)
        goto out;
    snprintf(node_id, sizeof node_id, "%s", gbx_identity_public(node)->id);
    uint64_t now = s_now_ms();
    for (size_t i = 0; i < n; i++) {
        Gbx__V1__Receipt *r = &rs[i];
        gbx__v1__receipt__init(r);
        randombytes_buf(ids[i], sizeof ids[i]);
        r->message_id.data = ids[i];
        r->message_id.len = GBX_MSG_ID_BYTES;
        r->header_hash.data = ids[i] + GBX_MSG_ID_BYTES;
        r->header_hash.len = GBX_HASH_BYTES;
        r->node_id = node_id;
        r->accepted_at_ms = now;
        r->sequence = i;
        r->status = GBX__V1__RECEIPT_STATUS__ACCEPTED;
        r->rule_id = "conformance-rule";
        rp[i] = r;
    }
    if (single) {
        for (size_t i = 0; i < n && rc == GBX_OK; i++)
            rc = gbx_receipt_sign(node, rp[i], &outs[i], &lens[i]);
    } else {
        rc = gbx_receipt_sign_batch(node, rp, n, outs, lens);
    }
    if (rc != GBX_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rcpt-%zu.sr", outdir, i);
        if (s_spill(path, outs[i], lens[i]) != 0)
            goto out;
    }
    ret = 0;
out:
    if (rc != GBX_OK) {
        printf("%s\n", gbx_err_name(rc));
        ret = 1;
    }
    for (size_t i = 0; outs && i < n; i++)
        free(outs[i]);
    free(outs);
    free(lens);
    free(ids);
    free(rp);
    free(rs);
    gbx_identity_destroy(&node);
    return ret;
}

static int s_verify_receipt(const char *node_path, const char *file)
{
    int ret = 2;
    gbx_err_t rc = GBX_OK;
    gbx_pubid_t node;
    uint8_t *buf = NULL;
    size_t len = 0;
    Gbx__V1__SignedReceipt *sr = NULL;
    Gbx__V1__Receipt *r = NULL;
    if ((rc = gbx_pubid_load(node_path, &node)) != GBX_OK)
        goto out;
    if (s_slurp(file, &buf, &len) != 0)
        goto out;
    rc = GBX_E_MALFORMED;
    if (!(sr = gbx__v1__signed_receipt__unpack(NULL, len, buf)))
        goto out;
    if ((rc = gbx_receipt_verify(sr, &node, &r)) != GBX_OK)
        goto out;
    printf("sequence=%llu\nbatch=%d\n", (unsigned long long)r->sequence, sr->batch != NULL);
    ret = 0;
out:
    if (rc != GBX_OK) {
        printf("%s\n", gbx_err_name(rc));
        ret = 1;
    }
    if (r)
        gbx__v1__receipt__free_unpacked(r, NULL);
    if (sr)
        gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------- main */

static int s_usage(void)
{
    fprintf(stderr, "usage: envtool keygen DIR ID\n"
                    "       envtool seal SIGNER.secret RECIPIENT.pub PLAINFILE OUTDIR [--batch N]\n"
                    "       envtool open RECIPIENT.secret SIGNER.pub ENVFILE PAYLOADFILE OUTPLAIN\n"
                    "       envtool receipts NODE.secret OUTDIR N [--single]\n"
                    "       envtool verify-receipt NODE.pub FILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "keygen") == 0)
        return s_keygen(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "seal") == 0)
        return s_seal(argv[2], argv[3], argv[4], argv[5], 1, 0);
    if (argc == 8 && strcmp(argv[1], "seal") == 0 && strcmp(argv[6], "--batch") == 0) {
        char *end = NULL;
        long n = strtol(argv[7], &end, 10);
        if (*argv[7] == '\0' || *end != '\0' || n < 1 || n > S_BATCH_ARG_MAX)
            return s_usage();
        return s_seal(argv[2], argv[3], argv[4], argv[5], (size_t)n, 1);
    }
    if ((argc == 5 || (argc == 6 && strcmp(argv[5], "--single") == 0)) &&
        strcmp(argv[1], "receipts") == 0) {
        char *end = NULL;
        long n = strtol(argv[4], &end, 10);
        if (*argv[4] == '\0' || *end != '\0' || n < 1 || n > S_BATCH_ARG_MAX)
            return s_usage();
        return s_receipts(argv[2], argv[3], (size_t)n, argc == 6);
    }
    if (argc == 4 && strcmp(argv[1], "verify-receipt") == 0)
        return s_verify_receipt(argv[2], argv[3]);
    if (argc == 7 && strcmp(argv[1], "open") == 0)
        return s_open(argv[2], argv[3], argv[4], argv[5], argv[6]);
    return s_usage();
}
