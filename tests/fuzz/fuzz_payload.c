/*  libFuzzer target: untrusted ciphertext into the payload opener, fed in
    input-chosen splits, as a receiver whose signed header matches these very
    bytes (the expected hash is the input's own): the opener's commitment,
    chunk, tag and length logic decide alone. Seeds are real payloads sealed
    to the fixed recipient (fixed.h), so mutations start deep. Nothing may
    crash or leak, and an opened payload must be exactly as long as declared.
    Run: tools/fuzz.sh payload */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fixed.h"
#include "gbx/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gbx_err_t s_count(void *arg, const uint8_t *p, size_t len)
{
    (void)p;
    *(uint64_t *)arg += len;
    return GBX_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gbx_identity_t *me;
    if (!me)
        me = fz_fixed_recipient();
    /* Input: be24 declared plaintext length, split step - 1, ciphertext. */
    if (size < 4)
        return 0;
    uint64_t declared = (uint64_t)data[0] << 16 | (uint64_t)data[1] << 8 | data[2];
    size_t step = (size_t)data[3] + 1;
    data += 4;
    size -= 4;
    uint8_t hash[GBX_HASH_BYTES];
    gbx_payload_hash(data, size, hash);
    gbx_binding_t b = {fz_message_id, FZ_FROM, FZ_TO};
    gbx_opener_t *o = NULL;
    uint64_t out = 0;
    if (gbx_opener_new(me, &b, declared, hash, s_count, &out, &o) != GBX_OK)
        abort();
    gbx_err_t rc = GBX_OK;
    for (size_t off = 0; off < size && rc == GBX_OK; off += step)
        rc = gbx_opener_write(o, data + off, size - off < step ? size - off : step);
    if (rc == GBX_OK && gbx_opener_finish(o) == GBX_OK && out != declared)
        abort(); /* opened, but not what the header declared */
    gbx_opener_destroy(&o);
    return 0;
}
