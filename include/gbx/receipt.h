/*  gbx/receipt.h: the broker's signed receipt. Spec: proto/spec/2-envelope.md
    section 7.

    Signed message (Ed25519, suite 1): "gbx1-receipt\0" || receipt bytes.
    A sender keeps the SignedReceipt as proof of what the exchange accepted. */
#ifndef GBX_RECEIPT_H
#define GBX_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/v1/envelope.pb-c.h"

/*  Serializes R and signs it with NODE. On GBX_OK *out is a malloc'ed
    serialized SignedReceipt of *out_len bytes (caller frees). */
gbx_err_t gbx_receipt_sign(const gbx_identity_t *node, const Gbx__V1__Receipt *r, uint8_t **out,
                           size_t *out_len);
/*  Verifies a SignedReceipt (as a message) against NODE's public keys; on
    GBX_OK and when R_OUT is not NULL, *r_out is the parsed receipt (free with
    gbx__v1__receipt__free_unpacked(*r_out, NULL)). */
gbx_err_t gbx_receipt_verify(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                             Gbx__V1__Receipt **r_out);

#endif
