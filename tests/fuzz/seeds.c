/*  Writes seed inputs for the fuzz targets into DIR: real envelopes (single
    and batch) with their payloads, and real sealed payloads, in each
    target's input format; for frame, the same envelopes in Submit frames
    and the other frames of the adapter protocol. Usage:
    fuzz_seeds envelope|payload|frame DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed.h"
#include "gbx/envelope.h"
#include "gbx/frame.h"

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
    int frame = strcmp(argv[1], "frame") == 0;
    int envelope = frame || strcmp(argv[1], "envelope") == 0;
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
        if (frame) {
            /* [GBX1, Submit, payload]: u16 length before each part */
            uint8_t *f1 = NULL;
            size_t l1 = 0;
            if (gbx_frame_submit((uint64_t)i + 1, envs[i], &f1, &l1) != GBX_OK)
                return 1;
            size_t pl = sealed_len[p] > 4096 ? 4096 : sealed_len[p];
            uint8_t *w = malloc(6 + 4 + l1 + pl);
            size_t o = 0;
            w[o++] = 0, w[o++] = 4;
            memcpy(w + o, GBX_FRAME_PROTOCOL, 4), o += 4;
            w[o++] = (uint8_t)(l1 >> 8), w[o++] = (uint8_t)l1;
            memcpy(w + o, f1, l1), o += l1;
            w[o++] = (uint8_t)(pl >> 8), w[o++] = (uint8_t)pl;
            memcpy(w + o, sealed[p], pl), o += pl;
            s_write(argv[2], i, w, o, NULL, 0, NULL, 0);
            free(w);
            free(f1);
        } else if (envelope) {
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
    if (frame) { /* the frames without payload, both directions */
        uint64_t ids2[3] = {1ull << 16 | 1, 2ull << 16 | 3, 77};
        uint8_t *f[6] = {0};
        size_t l[6] = {0};
        static const uint8_t mid[GBX_MSG_ID_BYTES] = {1, 2, 3};
        if (gbx_frame_credit(64, 1u << 26, &f[0], &l[0]) != GBX_OK ||
            gbx_frame_ack(ids2, 3, &f[1], &l[1]) != GBX_OK ||
            gbx_frame_ping(9, 42, &f[2], &l[2]) != GBX_OK ||
            gbx_frame_pong(9, 42, &f[3], &l[3]) != GBX_OK ||
            gbx_frame_notice(mid, GBX_E_EXPIRED, "expired", &f[4], &l[4]) != GBX_OK ||
            gbx_frame_rejected(5, mid, GBX_MSG_ID_BYTES, GBX_E_RETRY_LATER, "full", 1000, &f[5],
                               &l[5]) != GBX_OK)
            return 1;
        for (int k = 0; k < 6; k++) {
            uint8_t head[6] = {0, 4, 'G', 'B', 'X', '1'},
                    len[2] = {(uint8_t)(l[k] >> 8), (uint8_t)l[k]};
            s_write(argv[2], 10 + k, head, 6, len, 2, f[k], l[k]);
            free(f[k]);
        }
    }
    for (int i = 0; i < 4; i++)
        free(sealed[i]);
    gbx_identity_destroy(&from);
    gbx_identity_destroy(&to);
    return 0;
}
