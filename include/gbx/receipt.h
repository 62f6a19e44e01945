/*  gbx/receipt.h: the broker's signed receipt. Spec: proto/spec/2-envelope.md
    section 7.

    Signed message (Ed25519, suite 1): "gbx1-receipt\0" || receipt bytes.
    A sender keeps the SignedReceipt as proof of what the exchange accepted. */
#ifndef GBX_RECEIPT_H
#define GBX_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/v1/envelope.pb-c.h"

/*  Serializes R and signs it with NODE. On GBX_OK *out is a malloc'ed
    serialized SignedReceipt of *out_len bytes (caller frees). */
gbx_err_t gbx_receipt_sign(const gbx_identity_t *node, const Gbx__V1__Receipt *r, uint8_t **out,
                           size_t *out_len);
/*  Spec steps 2 to 4: suite, NODE's signature over the receipt bytes, and
    their parse. SR comes parsed from its frame (step 1). On GBX_OK and when
    R_OUT is not NULL, *r_out is the parsed receipt, owned by the caller (free
    with gbx__v1__receipt__free_unpacked(*r_out, NULL)). */
gbx_err_t gbx_receipt_verify(const Gbx__V1__SignedReceipt *sr, const gbx_pubid_t *node,
                             Gbx__V1__Receipt **r_out);
/*  Spec steps 5 and 6: R speaks of SUBMITTED, as accepted by node NODE_ID:
    same message id, node id, a known status, and the hash of the exact
    header bytes submitted. GBX_E_FIELD_INVALID otherwise. */
gbx_err_t gbx_receipt_check(const Gbx__V1__Receipt *r, const gbx_envelope_t *submitted,
                            const char *node_id);

#endif
