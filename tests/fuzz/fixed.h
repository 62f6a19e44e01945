/*  fixed.h: the fuzz targets' fixed recipient, hk.cr with weak fixed keys,
    so that payloads fuzz_seeds seals to it open in fuzz_payload and the
    fuzzer starts past the sealed key, inside the chunk and tag logic. Its
    .secret file is written once into a private temporary directory and
    loaded through the real loader. Test keys only. */
#ifndef GBX_FUZZ_FIXED_H
#define GBX_FUZZ_FIXED_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gbx/identity.h"
#include "gbx/payload.h"

/*  The binding every fuzz payload is sealed under. */
static const uint8_t fz_message_id[GBX_MSG_ID_BYTES] = {1};
#define FZ_FROM "gd.qh-amr"
#define FZ_TO "hk.cr"

static gbx_identity_t *fz_fixed_recipient(void)
{
    uint8_t seed[32], pk[32], sk[64], box[32], curve[32];
    char b64_sk[128], b64_box[64], b64_curve[64], dir[] = "/tmp/gbx-fuzz-XXXXXX", path[64];
    if (sodium_init() < 0 || !mkdtemp(dir))
        abort();
    memset(seed, 0x51, sizeof seed);
    memset(box, 0x52, sizeof box);
    memset(curve, 0x53, sizeof curve);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_bin2base64(b64_sk, sizeof b64_sk, sk, sizeof sk, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64_box, sizeof b64_box, box, sizeof box, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64_curve, sizeof b64_curve, curve, sizeof curve,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(path, sizeof path, "%s/%s.secret", dir, FZ_TO);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "id: %s\nsign_secret: \"%s\"\nbox_secret: \"%s\"\ncurve_secret: \"%s\"\n",
                      FZ_TO, b64_sk, b64_box, b64_curve) < 0 ||
        fclose(f) != 0 || chmod(path, 0600) != 0)
        abort();
    gbx_identity_t *id = NULL;
    if (gbx_identity_load(path, &id) != GBX_OK)
        abort();
    unlink(path);
    rmdir(dir);
    return id;
}

#endif
