/*  gbx-selfcheck: the end-to-end check of the envelope layer. It creates
    (or loads) the keys of two agencies, then walks a real cross-boundary
    exchange through every step a broker and a serving agency take: sign,
    seal, encode, decode, verify, payload check, decrypt, reply; a batch of
    64 under one signature; and a tampered envelope that must be refused.
    Exit status 0 only if every step gave the expected result. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gbx/envelope.h"
#include "gbx/identity.h"
#include "gbx/payload.h"

static int s_failures;

static void s_step(const char *what, gbx_err_t got, gbx_err_t want)
{
    int ok = got == want;
    printf("  %-4s %-58s %s\n", ok ? "ok" : "FAIL", what, gbx_err_name(got));
    if (!ok)
        s_failures++;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*  Loads DIR/ID.secret, creating it first if there is none. */
static gbx_identity_t *s_identity(const char *dir, const char *id)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.secret", dir, id);
    gbx_identity_t *self = NULL;
    gbx_err_t rc = GBX_OK;
    if (access(path, F_OK) != 0) {
        rc = gbx_identity_generate(id, &self);
        if (rc == GBX_OK)
            rc = gbx_identity_save(self, dir, 0);
        gbx_identity_destroy(&self);
        if (rc == GBX_OK)
            printf("  created keys %s\n", path);
    }
    if (rc == GBX_OK)
        rc = gbx_identity_load(path, &self);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-selfcheck: %s: %s\n", path, gbx_strerror(rc));
        return NULL;
    }
    char fp[GBX_FINGERPRINT_LEN];
    gbx_pubid_fingerprint(gbx_identity_public(self), fp);
    printf("  identity %-12s fingerprint %s\n", id, fp);
    return self;
}

/*  Sender side: seal PLAIN to the recipient, fill the payload fields of H. */
static gbx_err_t s_seal(const gbx_pubid_t *to, gbx_header_t *h, const char *plain, uint8_t **sealed,
                        size_t *sealed_len, uint8_t hash[GBX_HASH_BYTES])
{
    gbx_binding_t b = {h->message_id.data, h->from_agency, h->to_agency};
    gbx_err_t rc = gbx_payload_seal(to->box_pk, &b, (const uint8_t *)plain, strlen(plain), sealed,
                                    sealed_len, hash);
    h->payload_length = strlen(plain);
    h->payload_hash.data = hash;
    h->payload_hash.len = GBX_HASH_BYTES;
    return rc;
}

/*  Receiver side, as a broker and then the serving agency do it. */
static gbx_err_t s_receive(const uint8_t *wire, size_t wire_len, const uint8_t *sealed,
                           size_t sealed_len, const gbx_pubid_t *sender,
                           const gbx_identity_t *recipient, gbx_vcache_t *cache, char **plain_out)
{
    gbx_envelope_t *env = NULL;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    gbx_err_t rc = gbx_envelope_decode(wire, wire_len, &env);
    if (rc == GBX_OK)
        rc = gbx_envelope_verify(env, sender, cache);
    if (rc == GBX_OK)
        rc = gbx_envelope_check_payload(env, sealed, sealed_len);
    if (rc == GBX_OK && recipient) {
        gbx_binding_t b;
        gbx_envelope_binding(env, &b);
        const gbx_header_t *h = gbx_envelope_header(env);
        rc = gbx_payload_open(recipient, &b, sealed, sealed_len, h->payload_length,
                              h->payload_hash.data, &plain, &plain_len);
    }
    if (rc == GBX_OK && plain_out) {
        *plain_out = malloc(plain_len + 1);
        if (*plain_out) {
            memcpy(*plain_out, plain, plain_len);
            (*plain_out)[plain_len] = '\0';
        }
    }
    free(plain);
    gbx_envelope_destroy(&env);
    return rc;
}

static void s_request_header(gbx_header_t *h, uint8_t id[GBX_MSG_ID_BYTES], uint64_t now)
{
    gbx_header_init(h);
    gbx_message_id_new(id);
    h->message_id.data = id;
    h->message_id.len = GBX_MSG_ID_BYTES;
    h->from_agency = "gd.qh-amr";
    h->to_agency = "hk.cr";
    h->service_code = "HK-CR-COEXTRACT";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "MARKET-SUPERVISION";
    h->case_ref = "QH-2026-11-0042";
    h->end_user_ref = "officer:qh-amr:7731";
    h->legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h->legal_route_ref = "GBA-SC-2025-000318";
    h->created_at_ms = now;
    h->expires_at_ms = now + 5ull * 60 * 1000;
}

static int s_run(const char *dir)
{
    printf("gbx self-check: keys in %s\n", dir);
    gbx_identity_t *qh = s_identity(dir, "gd.qh-amr");
    gbx_identity_t *cr = s_identity(dir, "hk.cr");
    gbx_vcache_t *cache = NULL;
    if (!qh || !cr || gbx_vcache_new(256, &cache) != GBX_OK) {
        gbx_identity_destroy(&qh);
        gbx_identity_destroy(&cr);
        return 1;
    }
    const gbx_pubid_t *qh_pub = gbx_identity_public(qh), *cr_pub = gbx_identity_public(cr);
    uint64_t now = s_now_ms();

    printf("\nrequest HK-CR-COEXTRACT  gd.qh-amr -> hk.cr  (PERSONAL, GBA standard contract)\n");
    const char *ask = "{\"company_number\":\"2875113\",\"fields\":[\"name\",\"status\","
                      "\"directors\"]}";
    gbx_header_t h;
    uint8_t id[GBX_MSG_ID_BYTES], hash[GBX_HASH_BYTES];
    s_request_header(&h, id, now);
    uint8_t *sealed = NULL, *wire = NULL;
    size_t sealed_len = 0, wire_len = 0;
    gbx_envelope_t *env = NULL;
    gbx_err_t rc = s_seal(cr_pub, &h, ask, &sealed, &sealed_len, hash);
    s_step("payload sealed to hk.cr's box key", rc, GBX_OK);
    if (rc == GBX_OK)
        rc = gbx_envelope_sign(qh, &h, &env);
    s_step("header signed by gd.qh-amr (Ed25519)", rc, GBX_OK);
    if (rc == GBX_OK) {
        wire_len = gbx_envelope_size(env);
        wire = malloc(wire_len);
        gbx_envelope_pack(env, wire);
        printf("       envelope %zu bytes, encrypted payload %zu bytes\n", wire_len, sealed_len);
    }
    char *plain = NULL;
    rc = wire ? s_receive(wire, wire_len, sealed, sealed_len, qh_pub, NULL, NULL, NULL) : rc;
    s_step("broker: decode, verify signature, check payload hash", rc, GBX_OK);
    rc = wire ? s_receive(wire, wire_len, sealed, sealed_len, qh_pub, cr, NULL, &plain) : rc;
    s_step("hk.cr: verify and decrypt", rc, GBX_OK);
    if (plain)
        printf("       hk.cr reads %s\n", plain);
    s_step("decrypted text equals what was sent",
           plain && strcmp(plain, ask) == 0 ? GBX_OK : GBX_E_DECRYPT_FAILED, GBX_OK);
    rc = wire ? s_receive(wire, wire_len, sealed, sealed_len, cr_pub, NULL, NULL, NULL) : rc;
    s_step("same envelope checked against hk.cr's key is refused", rc, GBX_E_WRONG_KEY);
    if (wire) {
        /* Flip one bit of the case reference, inside the signed header: the
           header still parses, so only the signature can catch it. */
        const char *cref = h.case_ref;
        uint8_t *at = memmem(wire, wire_len, cref, strlen(cref));
        rc = GBX_E_STATE; /* the case reference must be in the wire bytes */
        if (at) {
            at[3] ^= 0x01;
            rc = s_receive(wire, wire_len, sealed, sealed_len, qh_pub, NULL, NULL, NULL);
            at[3] ^= 0x01;
        }
        s_step("one flipped header bit is refused", rc, GBX_E_BAD_SIGNATURE);
        sealed[sealed_len - 1] ^= 0x80;
        rc = s_receive(wire, wire_len, sealed, sealed_len, qh_pub, NULL, NULL, NULL);
        sealed[sealed_len - 1] ^= 0x80;
        s_step("one flipped payload bit is refused", rc, GBX_E_PAYLOAD_HASH_MISMATCH);
    }
    free(plain);
    free(sealed);
    free(wire);
    sealed = wire = NULL;
    plain = NULL;

    printf("\nresponse hk.cr -> gd.qh-amr, correlated to the request\n");
    const char *answer = "{\"name\":\"Harbour Lane Trading Limited\",\"status\":\"Live\"}";
    gbx_header_t r;
    uint8_t rid[GBX_MSG_ID_BYTES], rhash[GBX_HASH_BYTES];
    s_request_header(&r, rid, now);
    r.from_agency = "hk.cr";
    r.to_agency = "gd.qh-amr";
    r.kind = GBX__V1__MESSAGE_KIND__RESPONSE;
    r.correlation_id.data = id;
    r.correlation_id.len = GBX_MSG_ID_BYTES;
    gbx_envelope_t *renv = NULL;
    rc = s_seal(qh_pub, &r, answer, &sealed, &sealed_len, rhash);
    if (rc == GBX_OK)
        rc = gbx_envelope_sign(cr, &r, &renv);
    if (rc == GBX_OK) {
        wire_len = gbx_envelope_size(renv);
        wire = malloc(wire_len);
        gbx_envelope_pack(renv, wire);
        rc = s_receive(wire, wire_len, sealed, sealed_len, cr_pub, qh, NULL, &plain);
    }
    s_step("response signed, sealed, verified and decrypted", rc, GBX_OK);
    if (plain)
        printf("       gd.qh-amr reads %s\n", plain);
    free(plain);
    free(sealed);
    free(wire);
    gbx_envelope_destroy(&renv);

    printf("\nbatch: 64 requests under one Merkle-root signature\n");
    enum { N = 64 };
    static gbx_header_t hs[N];
    static uint8_t ids[N][GBX_MSG_ID_BYTES], hashes[N][GBX_HASH_BYTES];
    static uint8_t *sealeds[N];
    static size_t sealed_lens[N];
    const gbx_header_t *hp[N];
    gbx_envelope_t *envs[N] = {0};
    rc = GBX_OK;
    for (int i = 0; i < N && rc == GBX_OK; i++) {
        s_request_header(&hs[i], ids[i], now);
        rc = s_seal(cr_pub, &hs[i], ask, &sealeds[i], &sealed_lens[i], hashes[i]);
        hp[i] = &hs[i];
    }
    if (rc == GBX_OK)
        rc = gbx_envelope_sign_batch(qh, hp, N, envs);
    s_step("64 headers signed with one signature", rc, GBX_OK);
    int bad = 0;
    for (int i = 0; i < N && rc == GBX_OK; i++) {
        size_t n = gbx_envelope_size(envs[i]);
        uint8_t *w = malloc(n);
        gbx_envelope_pack(envs[i], w);
        if (s_receive(w, n, sealeds[i], sealed_lens[i], qh_pub, NULL, cache, NULL) != GBX_OK)
            bad++;
        free(w);
    }
    uint64_t verified = 0, hits = 0;
    gbx_vcache_stats(cache, &verified, &hits);
    printf("       %d/%d verified; Ed25519 verifications %llu, cache hits %llu\n", N - bad, N,
           (unsigned long long)verified, (unsigned long long)hits);
    s_step("each message verified on its own, one Ed25519 check in all",
           bad == 0 && verified == 1 ? GBX_OK : GBX_E_BAD_SIGNATURE, GBX_OK);
    for (int i = 0; i < N; i++) {
        free(sealeds[i]);
        gbx_envelope_destroy(&envs[i]);
    }

    gbx_envelope_destroy(&env);
    gbx_vcache_destroy(&cache);
    gbx_identity_destroy(&qh);
    gbx_identity_destroy(&cr);
    printf("\n%s: %d failure(s)\n", s_failures ? "FAILED" : "self-check passed", s_failures);
    return s_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *home = getenv("GBX_HOME");
    const char *dir = home && *home ? home : ".gbx";
    int c;
    while ((c = getopt(argc, argv, "d:h")) != -1) {
        if (c == 'd') {
            dir = optarg;
        } else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: gbx-selfcheck [-d DIR]   (keys in DIR, default $GBX_HOME or ./.gbx)\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gbx-selfcheck: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return s_run(dir);
}
