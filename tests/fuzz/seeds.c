/*  Writes seed inputs for the fuzz targets into DIR: real envelopes (single
    and batch) with their payloads, and real sealed payloads, in each
    target's input format. Usage: fuzz_seeds envelope|payload DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed.h"
#include "gbx/envelope.h"

static void s_write(const char *dir, int i, const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen, const uint8_t *c, size_t clen)
{
    char path[512];
    snprintf(path, sizeof path, "%s/seed-%d", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, alen, f) != alen || fwrite(b, 1, blen, f) != blen ||
        fwrite(c, 1, clen, f) != clen || fclose(f) != 0)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int envelope = strcmp(argv[1], "envelope") == 0;
    gbx_identity_t *from = NULL, *to = NULL;
    if (gbx_identity_generate("gd.qh-amr", &from) != GBX_OK)
        return 1;
    to = fz_fixed_recipient();
    static const size_t sizes[] = {0, 1, 1000, 70000};
    static gbx_header_t hs[4];
    static uint8_t ids[4][GBX_MSG_ID_BYTES], hashes[4][GBX_HASH_BYTES];
    static uint8_t plain[70000];
    uint8_t *sealed[4];
    size_t sealed_len[4];
    const gbx_header_t *hp[4];
    for (int i = 0; i < 4; i++) {
        gbx_header_t *h = &hs[i];
        gbx_header_init(h);
        gbx_message_id_new(ids[i]);
        h->message_id.data = ids[i];
        h->message_id.len = GBX_MSG_ID_BYTES;
        h->from_agency = "gd.qh-amr";
        h->to_agency = "hk.cr";
        h->service_code = "HK-CR-COEXTRACT";
        h->service_version = 1;
        h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
        h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
        h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
        h->legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
        h->legal_route_ref = "GBA-SC-2025-000318";
        h->created_at_ms = 1795000000000ull;
        h->expires_at_ms = h->created_at_ms + 60000;
        h->payload_length = sizes[i];
        /* Payload seeds use the binding fuzz_payload opens with. */
        gbx_binding_t b = {envelope ? ids[i] : fz_message_id, FZ_FROM, FZ_TO};
        if (gbx_payload_seal(gbx_identity_public(to)->box_pk, &b, plain, sizes[i], &sealed[i],
                             &sealed_len[i], hashes[i]) != GBX_OK)
            return 1;
        h->payload_hash.data = hashes[i];
        h->payload_hash.len = GBX_HASH_BYTES;
        hp[i] = h;
    }
    gbx_envelope_t *envs[5] = {0};
    if (gbx_envelope_sign(from, hp[0], &envs[4]) != GBX_OK ||
        gbx_envelope_sign_batch(from, hp, 4, envs) != GBX_OK)
        return 1;
    for (int i = 0; i < 5; i++) {
        int p = i == 4 ? 0 : i;
        if (envelope) {
            size_t n = gbx_envelope_size(envs[i]);
            uint8_t *w = malloc(n), cut[2] = {(uint8_t)(n >> 8), (uint8_t)n};
            gbx_envelope_pack(envs[i], w);
            s_write(argv[2], i, cut, 2, w, n, sealed[p],
                    sealed_len[p] > 4096 ? 4096 : sealed_len[p]);
            free(w);
        } else {
            uint8_t head[4] = {(uint8_t)(sizes[p] >> 16), (uint8_t)(sizes[p] >> 8),
                               (uint8_t)sizes[p], (uint8_t)(i * 61)};
            s_write(argv[2], i, head, 4, sealed[p], sealed_len[p], NULL, 0);
        }
        gbx_envelope_destroy(&envs[i]);
    }
    for (int i = 0; i < 4; i++)
        free(sealed[i]);
    gbx_identity_destroy(&from);
    gbx_identity_destroy(&to);
    return 0;
}
