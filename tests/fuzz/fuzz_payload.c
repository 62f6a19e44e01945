/*  libFuzzer target: untrusted ciphertext into the payload opener, fed in
    input-chosen splits. Nothing may crash, and nothing that is not a real
    sealed payload may open. The opener always checks the payload hash; here
    it expects a fixed value (an input with that BLAKE2b-256 is out of reach),
    and, before that, the input's sealed key would have to open with a key
    generated at start-up: finish must never return GBX_OK.
    Run: tools/fuzz.sh payload */
#include <stdint.h>
#include <stdlib.h>

#include "gbx/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gbx_err_t s_sink(void *arg, const uint8_t *p, size_t len)
{
    (void)arg, (void)p, (void)len;
    return GBX_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gbx_identity_t *me;
    static const uint8_t id[GBX_MSG_ID_BYTES] = {1};
    static const uint8_t hash[GBX_HASH_BYTES] = {0x9e, 0x37, 0x79, 0xb9};
    if (!me && gbx_identity_generate("hk.cr", &me) != GBX_OK)
        abort();
    if (size < 3)
        return 0;
    uint64_t declared = (uint64_t)data[0] << 8 | data[1];
    size_t step = (size_t)data[2] + 1;
    data += 3;
    size -= 3;
    gbx_binding_t b = {id, "gd.qh-amr", "hk.cr"};
    gbx_opener_t *o = NULL;
    if (gbx_opener_new(me, &b, declared, hash, s_sink, NULL, &o) != GBX_OK)
        abort();
    gbx_err_t rc = GBX_OK;
    for (size_t off = 0; off < size && rc == GBX_OK; off += step)
        rc = gbx_opener_write(o, data + off, size - off < step ? size - off : step);
    if (rc == GBX_OK && gbx_opener_finish(o) == GBX_OK)
        abort(); /* random bytes authenticated under a key nobody sealed */
    gbx_opener_destroy(&o);
    return 0;
}
