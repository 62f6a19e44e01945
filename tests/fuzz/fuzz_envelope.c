/*  libFuzzer target: untrusted envelope bytes through everything a broker
    does with them (decode, verify, payload check), and the decoded envelope
    packed again must decode again. Run: tools/fuzz.sh envelope */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gbx_identity_t *signer;
    static gbx_vcache_t *cache;
    if (!signer && (gbx_identity_generate("gd.qh-amr", &signer) != GBX_OK ||
                    gbx_vcache_new(16, &cache) != GBX_OK))
        abort();
    /* The first two bytes split the input into envelope and payload. */
    if (size < 2)
        return 0;
    size_t cut = ((size_t)data[0] << 8 | data[1]) % (size - 1);
    const uint8_t *env_bytes = data + 2, *payload = data + 2 + cut;
    size_t env_len = cut, payload_len = size - 2 - cut;

    gbx_envelope_t *env = NULL;
    if (gbx_envelope_decode(env_bytes, env_len, &env) != GBX_OK)
        return 0;
    (void)gbx_envelope_verify(env, gbx_identity_public(signer), cache);
    (void)gbx_envelope_check_payload(env, payload, payload_len);
    size_t n = gbx_envelope_size(env);
    uint8_t *again = malloc(n);
    gbx_envelope_pack(env, again);
    gbx_envelope_t *env2 = NULL;
    if (gbx_envelope_decode(again, n, &env2) != GBX_OK)
        abort(); /* what we decoded once must decode again */
    size_t a_len = 0, b_len = 0;
    const uint8_t *a = gbx_envelope_header_bytes(env, &a_len);
    const uint8_t *b = gbx_envelope_header_bytes(env2, &b_len);
    if (a_len != b_len || memcmp(a, b, a_len) != 0)
        abort(); /* signed header bytes must survive re-packing untouched */
    gbx_envelope_destroy(&env2);
    free(again);
    gbx_envelope_destroy(&env);
    return 0;
}
