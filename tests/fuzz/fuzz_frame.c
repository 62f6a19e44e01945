/*  libFuzzer target: untrusted ZeroMQ messages of the adapter protocol
    (proto/spec/5-adapter.md section 3) through what a node and an adapter
    do with them: gbx_frame_decode_at in both directions, the payload check
    of a Submit or Deliver, the receipt of an Accepted; a decoded frame
    encoded again must decode again, to the same kind and tag.
    Input: parts, each a big-endian u16 length and that many bytes (the last
    one cut short at the end of the input). Run: tools/fuzz.sh frame */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/frame.h"
#include "gbx/receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_PARTS 64

static void s_check(const gbx_part_t *parts, size_t n, gbx_frame_at_t at,
                    const gbx_identity_t *signer)
{
    gbx_frame_t *f = NULL;
    gbx_frame_fail_t fail;
    if (gbx_frame_decode_at(parts, n, at, &f, &fail) != GBX_OK)
        return;
    gbx_frame_kind_t kind = gbx_frame_kind(f);
    if (kind == GBX_FRAME_SUBMIT || kind == GBX_FRAME_DELIVER) {
        (void)gbx_envelope_verify(gbx_frame_envelope(f), gbx_identity_public(signer), NULL);
        (void)gbx_frame_check_payload(f);
    }
    const Gbx__V1__Frame *m = gbx_frame_message(f);
    if (kind == GBX_FRAME_ACCEPTED && m->accepted->receipt) {
        Gbx__V1__Receipt *r = NULL;
        if (gbx_receipt_verify(m->accepted->receipt, gbx_identity_public(signer), &r) == GBX_OK)
            gbx__v1__receipt__free_unpacked(r, NULL);
    }
    uint8_t *again = NULL;
    size_t len = 0;
    if (gbx_frame_encode(m, &again, &len) == GBX_OK) {
        gbx_part_t p2[2] = {{(const uint8_t *)GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN},
                            {again, len}};
        gbx_frame_t *f2 = NULL;
        /* the payload parts are not re-sent: only frames without them */
        if (n == 2) {
            if (gbx_frame_decode_at(p2, 2, at, &f2, NULL) != GBX_OK)
                abort(); /* what decoded once must decode again */
            if (gbx_frame_kind(f2) != kind || gbx_frame_tag(f2) != gbx_frame_tag(f))
                abort();
            gbx_frame_destroy(&f2);
        }
        free(again);
    }
    gbx_frame_destroy(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gbx_identity_t *signer;
    if (!signer && gbx_identity_generate("gd.qh-amr", &signer) != GBX_OK)
        abort();
    gbx_part_t parts[S_PARTS];
    size_t n = 0, off = 0;
    while (off < size && n < S_PARTS) {
        size_t len = off + 2 <= size ? ((size_t)data[off] << 8 | data[off + 1]) : 0;
        off += 2;
        if (off > size)
            off = size;
        if (len > size - off)
            len = size - off;
        parts[n].data = data + off;
        parts[n].len = len;
        n++;
        off += len;
    }
    s_check(parts, n, GBX_FRAME_AT_NODE, signer);
    s_check(parts, n, GBX_FRAME_AT_ADAPTER, signer);
    return 0;
}
