/*  frame.c: owns the adapter-socket framing codec (gbx_frame).
    Implements proto/spec/5-adapter.md section 3 (and steps 11, 12 of
    2-envelope.md section 8 over payload parts). No libzmq here. */
#include "gbx/frame.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct gbx_frame {
    Gbx__V1__Frame *msg;      /* as unpacked by protobuf-c */
    gbx_envelope_t *envelope; /* Submit / Deliver only */
    gbx_part_t *payload;      /* copy of parts 2..n; their bytes borrowed */
    size_t payload_n;
};

/* ------------------------------------------------------ untrusted bytes */

/*  Reads a varint at P[*i], LEN bytes in all. TRUNCATED when the input ends
    inside it, MALFORMED when it is longer than 10 bytes. */
static gbx_err_t s_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    int shift = 0;
    do {
        if (*i >= len)
            return GBX_E_TRUNCATED;
        if (shift > 63)
            return GBX_E_MALFORMED;
        x |= (uint64_t)(p[*i] & 0x7f) << shift;
        shift += 7;
    } while (p[(*i)++] & 0x80);
    *v = x;
    return GBX_OK;
}

/*  Walks the top-level fields of part 1 without trusting it, so that input
    cut short is told apart from garbage (2-envelope.md section 8, the parse
    failures of steps 1 and 5). Empty input is TRUNCATED. */
static gbx_err_t s_scan(const uint8_t *p, size_t len)
{
    if (len == 0)
        return GBX_E_TRUNCATED;
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0, v = 0;
        gbx_err_t rc = s_varint(p, len, &i, &key);
        if (rc != GBX_OK)
            return rc;
        if ((key >> 3) == 0)
            return GBX_E_MALFORMED;
        switch (key & 7) {
        case 0:
            if ((rc = s_varint(p, len, &i, &v)) != GBX_OK)
                return rc;
            break;
        case 1:
            if (len - i < 8)
                return GBX_E_TRUNCATED;
            i += 8;
            break;
        case 5:
            if (len - i < 4)
                return GBX_E_TRUNCATED;
            i += 4;
            break;
        case 2:
            if ((rc = s_varint(p, len, &i, &v)) != GBX_OK)
                return rc;
            if (v > len - i)
                return GBX_E_TRUNCATED;
            i += (size_t)v;
            break;
        default: /* groups (3, 4) are not used by gbx; 6, 7 do not exist */
            return GBX_E_MALFORMED;
        }
    }
    return GBX_OK;
}

/*  1 when M, or a message inside it, kept an unknown field numbered 0.
    Field number 0 does not exist in protobuf; protobuf-c accepts it inside
    a submessage when its key is written in more bytes than needed (80 80
    00), keeps it, and would write it back as a key it then refuses. s_scan
    sees the top level only; this sees the rest of the parsed tree. */
static int s_field0(const ProtobufCMessage *m, int depth)
{
    if (!m || depth > 8)
        return 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
            continue; /* another member of the oneof: the union holds that one */
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (s_field0(v[k], depth + 1))
                    return 1;
        } else if (s_field0(*(const ProtobufCMessage *const *)(base + fd->offset), depth + 1)) {
            return 1;
        }
    }
    return 0;
}

static int s_body_ok(gbx_frame_at_t at, Gbx__V1__Frame__BodyCase body)
{
    switch (at) {
    case GBX_FRAME_AT_NODE:
        return body == GBX__V1__FRAME__BODY_SUBMIT || body == GBX__V1__FRAME__BODY_ACK ||
               body == GBX__V1__FRAME__BODY_CREDIT || body == GBX__V1__FRAME__BODY_PING ||
               body == GBX__V1__FRAME__BODY_PONG;
    case GBX_FRAME_AT_ADAPTER:
        return body == GBX__V1__FRAME__BODY_ACCEPTED || body == GBX__V1__FRAME__BODY_REJECTED ||
               body == GBX__V1__FRAME__BODY_DELIVER || body == GBX__V1__FRAME__BODY_NOTICE ||
               body == GBX__V1__FRAME__BODY_PING || body == GBX__V1__FRAME__BODY_PONG;
    case GBX_FRAME_AT_ANY:
    default:
        return 1;
    }
}

/*  When gbx_envelope_decode failed after its step 5 (a parsed header), the
    Rejected answer names the header's message id (5-adapter.md 6.2). */
static void s_fail_message_id(const Gbx__V1__Envelope *env, gbx_err_t rc, gbx_frame_fail_t *fail)
{
    if (rc != GBX_E_FIELD_INVALID && rc != GBX_E_PAYLOAD_TOO_LARGE &&
        rc != GBX_E_BAD_INCLUSION_PATH)
        return;
    Gbx__V1__Header *h = gbx__v1__header__unpack(NULL, env->header.len, env->header.data);
    if (!h)
        return;
    if (h->message_id.len == GBX_MSG_ID_BYTES) {
        memcpy(fail->message_id, h->message_id.data, GBX_MSG_ID_BYTES);
        fail->message_id_len = GBX_MSG_ID_BYTES;
    }
    gbx__v1__header__free_unpacked(h, NULL);
}

/*  Re-encodes the parsed envelope and decodes it with gbx_envelope_decode. */
static gbx_err_t s_decode_envelope(const Gbx__V1__Envelope *env, gbx_envelope_t **out,
                                   gbx_frame_fail_t *fail)
{
    if (!env)
        return GBX_E_MALFORMED; /* 5-adapter.md 6.1: an absent envelope */
    size_t n = gbx__v1__envelope__get_packed_size(env);
    if (n > GBX_ENVELOPE_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return GBX_E_NOMEM;
    gbx__v1__envelope__pack(env, buf);
    gbx_err_t rc = gbx_envelope_decode(buf, n, out);
    free(buf);
    if (rc != GBX_OK)
        s_fail_message_id(env, rc, fail);
    return rc;
}

gbx_err_t gbx_frame_decode_at(const gbx_part_t *parts, size_t n, gbx_frame_at_t at,
                              gbx_frame_t **out, gbx_frame_fail_t *fail)
{
    gbx_frame_fail_t scratch;
    if (!fail)
        fail = &scratch;
    memset(fail, 0, sizeof *fail);
    if (!out || (n > 0 && !parts))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (n == 0 || parts[0].len != GBX_FRAME_PROTOCOL_LEN || !parts[0].data ||
        memcmp(parts[0].data, GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN) != 0)
        return GBX_E_UNSUPPORTED_VERSION;
    if (n < 2)
        return GBX_E_TRUNCATED;
    const gbx_part_t *p1 = &parts[1];
    if (p1->len > GBX_FRAME_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    if (p1->len > 0 && !p1->data)
        return GBX_E_ARG;
    gbx_err_t rc = s_scan(p1->data, p1->len);
    if (rc != GBX_OK)
        return rc;
    gbx_frame_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    rc = GBX_E_MALFORMED;
    self->msg = gbx__v1__frame__unpack(NULL, p1->len, p1->data);
    if (!self->msg)
        goto fail;
    if (s_field0(&self->msg->base, 0))
        goto fail;
    const Gbx__V1__Frame *m = self->msg;
    fail->tag = m->tag; /* from here on the answer carries the frame's tag */
    if (m->body_case == GBX__V1__FRAME__BODY__NOT_SET)
        goto fail; /* also a body this version does not know */
    if (!s_body_ok(at, m->body_case))
        goto fail;
    int has_payload =
        m->body_case == GBX__V1__FRAME__BODY_SUBMIT || m->body_case == GBX__V1__FRAME__BODY_DELIVER;
    if (n > 2 && !has_payload)
        goto fail;
    if (m->body_case == GBX__V1__FRAME__BODY_SUBMIT) {
        if ((rc = s_decode_envelope(m->submit->envelope, &self->envelope, fail)) != GBX_OK)
            goto fail;
    } else if (m->body_case == GBX__V1__FRAME__BODY_DELIVER) {
        if ((rc = s_decode_envelope(m->deliver->envelope, &self->envelope, fail)) != GBX_OK)
            goto fail;
    }
    if (n > 2) {
        for (size_t i = 2; i < n; i++) {
            rc = GBX_E_ARG;
            if (parts[i].len > 0 && !parts[i].data)
                goto fail;
        }
        rc = GBX_E_NOMEM;
        self->payload = malloc((n - 2) * sizeof *self->payload);
        if (!self->payload)
            goto fail;
        memcpy(self->payload, parts + 2, (n - 2) * sizeof *self->payload);
        self->payload_n = n - 2;
    }
    *out = self;
    return GBX_OK;
fail:
    gbx_frame_destroy(&self);
    return rc;
}

gbx_err_t gbx_frame_decode(const gbx_part_t *parts, size_t n, gbx_frame_t **out)
{
    return gbx_frame_decode_at(parts, n, GBX_FRAME_AT_ANY, out, NULL);
}

void gbx_frame_destroy(gbx_frame_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_frame_t *self = *self_p;
    gbx_envelope_destroy(&self->envelope);
    free(self->payload);
    if (self->msg)
        gbx__v1__frame__free_unpacked(self->msg, NULL);
    free(self);
    *self_p = NULL;
}

gbx_frame_kind_t gbx_frame_kind(const gbx_frame_t *self)
{
    return (gbx_frame_kind_t)self->msg->body_case;
}

uint64_t gbx_frame_tag(const gbx_frame_t *self)
{
    return self->msg->tag;
}

const Gbx__V1__Frame *gbx_frame_message(const gbx_frame_t *self)
{
    return self->msg;
}

const gbx_envelope_t *gbx_frame_envelope(const gbx_frame_t *self)
{
    return self->envelope;
}

const gbx_part_t *gbx_frame_payload(const gbx_frame_t *self, size_t *n)
{
    if (n)
        *n = self->payload_n;
    return self->payload;
}

uint64_t gbx_frame_payload_size(const gbx_frame_t *self)
{
    uint64_t total = 0;
    for (size_t i = 0; i < self->payload_n; i++) {
        if (self->payload[i].len > UINT64_MAX - total)
            return UINT64_MAX;
        total += self->payload[i].len;
    }
    return total;
}

gbx_err_t gbx_frame_check_payload(const gbx_frame_t *self)
{
    if (!self)
        return GBX_E_ARG;
    if (!self->envelope)
        return GBX_E_STATE;
    const gbx_header_t *h = gbx_envelope_header(self->envelope);
    if (gbx_frame_payload_size(self) != gbx_payload_sealed_size(h->payload_length))
        return GBX_E_PAYLOAD_LENGTH_MISMATCH;
    crypto_generichash_state st;
    uint8_t got[GBX_HASH_BYTES];
    crypto_generichash_init(&st, NULL, 0, sizeof got);
    for (size_t i = 0; i < self->payload_n; i++)
        if (self->payload[i].len > 0)
            crypto_generichash_update(&st, self->payload[i].data, self->payload[i].len);
    crypto_generichash_final(&st, got, sizeof got);
    /* gbx_header_check guarantees a 32-byte payload_hash */
    if (h->payload_hash.len != GBX_HASH_BYTES ||
        sodium_memcmp(got, h->payload_hash.data, GBX_HASH_BYTES) != 0)
        return GBX_E_PAYLOAD_HASH_MISMATCH;
    return GBX_OK;
}

/* ---------------------------------------------------------------- encoding */

gbx_err_t gbx_frame_encode(const Gbx__V1__Frame *f, uint8_t **out, size_t *len)
{
    if (!f || !out || !len || f->body_case == GBX__V1__FRAME__BODY__NOT_SET)
        return GBX_E_ARG;
    size_t n = gbx__v1__frame__get_packed_size(f);
    if (n > GBX_FRAME_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return GBX_E_NOMEM;
    gbx__v1__frame__pack(f, buf);
    *out = buf;
    *len = n;
    return GBX_OK;
}

/*  Hand-written protobuf, for the bodies that embed bytes that must travel
    as they are (an envelope, a signed receipt). */
static size_t s_put_varint(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

static size_t s_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/*  Frame{tag, FIELD: INNER}, where INNER is HEAD (already encoded fields)
    followed by field BYTES_FIELD holding BYTES, then TAIL. Checked against
    GBX_FRAME_MAX. */
static gbx_err_t s_wrap(uint64_t tag, uint32_t field, const uint8_t *head, size_t head_len,
                        uint32_t bytes_field, const uint8_t *bytes, size_t bytes_len,
                        const uint8_t *tail, size_t tail_len, uint8_t **out, size_t *len)
{
    if (bytes_len > GBX_FRAME_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    size_t inner = head_len + 1 + s_varint_size(bytes_len) + bytes_len + tail_len;
    size_t total = (tag ? 1 + s_varint_size(tag) : 0) + 1 + s_varint_size(inner) + inner;
    if (total > GBX_FRAME_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    uint8_t *buf = malloc(total);
    if (!buf)
        return GBX_E_NOMEM;
    size_t i = 0;
    if (tag) {
        buf[i++] = (1 << 3) | 0;
        i += s_put_varint(buf + i, tag);
    }
    buf[i++] = (uint8_t)((field << 3) | 2);
    i += s_put_varint(buf + i, inner);
    if (head_len) {
        memcpy(buf + i, head, head_len);
        i += head_len;
    }
    buf[i++] = (uint8_t)((bytes_field << 3) | 2);
    i += s_put_varint(buf + i, bytes_len);
    if (bytes_len) {
        memcpy(buf + i, bytes, bytes_len);
        i += bytes_len;
    }
    if (tail_len) {
        memcpy(buf + i, tail, tail_len);
        i += tail_len;
    }
    *out = buf;
    *len = i;
    return GBX_OK;
}

static gbx_err_t s_envelope_frame(uint64_t tag, uint32_t field, const uint8_t *head,
                                  size_t head_len, uint32_t env_field, const gbx_envelope_t *env,
                                  uint8_t **out, size_t *len)
{
    size_t n = gbx_envelope_size(env);
    if (n > GBX_ENVELOPE_MAX)
        return GBX_E_HEADER_TOO_LARGE;
    uint8_t *eb = malloc(n ? n : 1);
    if (!eb)
        return GBX_E_NOMEM;
    gbx_envelope_pack(env, eb);
    gbx_err_t rc = s_wrap(tag, field, head, head_len, env_field, eb, n, NULL, 0, out, len);
    free(eb);
    return rc;
}

gbx_err_t gbx_frame_submit(uint64_t tag, const gbx_envelope_t *env, uint8_t **out, size_t *len)
{
    if (!env || !out || !len)
        return GBX_E_ARG;
    return s_envelope_frame(tag, GBX_FRAME_SUBMIT, NULL, 0, 1, env, out, len);
}

gbx_err_t gbx_frame_deliver(uint64_t delivery_id, uint32_t attempt, const gbx_envelope_t *env,
                            uint8_t **out, size_t *len)
{
    if (!env || !out || !len)
        return GBX_E_ARG;
    uint8_t head[2 * 11];
    size_t h = 0;
    if (delivery_id) {
        head[h++] = (1 << 3) | 0;
        h += s_put_varint(head + h, delivery_id);
    }
    if (attempt) {
        head[h++] = (2 << 3) | 0;
        h += s_put_varint(head + h, attempt);
    }
    return s_envelope_frame(0, GBX_FRAME_DELIVER, head, h, 3, env, out, len);
}

gbx_err_t gbx_frame_accepted(uint64_t tag, const uint8_t *receipt, size_t receipt_len,
                             int duplicate, uint8_t **out, size_t *len)
{
    if (!out || !len || (receipt_len > 0 && !receipt) || receipt_len > GBX_FRAME_MAX)
        return GBX_E_ARG;
    if (s_scan(receipt, receipt_len) != GBX_OK)
        return GBX_E_ARG;
    Gbx__V1__SignedReceipt *sr = gbx__v1__signed_receipt__unpack(NULL, receipt_len, receipt);
    if (!sr)
        return GBX_E_ARG;
    gbx__v1__signed_receipt__free_unpacked(sr, NULL);
    static const uint8_t dup[2] = {(2 << 3) | 0, 1};
    return s_wrap(tag, GBX_FRAME_ACCEPTED, NULL, 0, 1, receipt, receipt_len, dup,
                  duplicate ? sizeof dup : 0, out, len);
}

static int s_reason_ok(gbx_err_t reason)
{
    return reason != GBX_OK && gbx_err_on_wire(reason) && strcmp(gbx_err_name(reason), "UNKNOWN");
}

gbx_err_t gbx_frame_rejected(uint64_t tag, const uint8_t *message_id, size_t id_len,
                             gbx_err_t reason, const char *detail, uint64_t retry_after_ms,
                             uint8_t **out, size_t *len)
{
    if ((id_len != 0 && id_len != GBX_MSG_ID_BYTES) || (id_len && !message_id) ||
        !s_reason_ok(reason) || (retry_after_ms > 0) != (reason == GBX_E_RETRY_LATER))
        return GBX_E_ARG;
    Gbx__V1__Rejected r = GBX__V1__REJECTED__INIT;
    r.message_id.data = (uint8_t *)(uintptr_t)message_id;
    r.message_id.len = id_len;
    r.reason = (Gbx__V1__Reason)reason;
    r.detail = (char *)(uintptr_t)(detail ? detail : "");
    r.retry_after_ms = retry_after_ms;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.tag = tag;
    f.body_case = GBX__V1__FRAME__BODY_REJECTED;
    f.rejected = &r;
    return gbx_frame_encode(&f, out, len);
}

gbx_err_t gbx_frame_notice(const uint8_t message_id[GBX_MSG_ID_BYTES], gbx_err_t reason,
                           const char *detail, uint8_t **out, size_t *len)
{
    if (!message_id || !s_reason_ok(reason))
        return GBX_E_ARG;
    Gbx__V1__Notice m = GBX__V1__NOTICE__INIT;
    m.message_id.data = (uint8_t *)(uintptr_t)message_id;
    m.message_id.len = GBX_MSG_ID_BYTES;
    m.reason = (Gbx__V1__Reason)reason;
    m.detail = (char *)(uintptr_t)(detail ? detail : "");
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.body_case = GBX__V1__FRAME__BODY_NOTICE;
    f.notice = &m;
    return gbx_frame_encode(&f, out, len);
}

gbx_err_t gbx_frame_ack(const uint64_t *ids, size_t n, uint8_t **out, size_t *len)
{
    if (n > 0 && !ids)
        return GBX_E_ARG;
    Gbx__V1__Ack a = GBX__V1__ACK__INIT;
    a.delivery_ids = (uint64_t *)(uintptr_t)ids;
    a.n_delivery_ids = n;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.body_case = GBX__V1__FRAME__BODY_ACK;
    f.ack = &a;
    return gbx_frame_encode(&f, out, len);
}

gbx_err_t gbx_frame_credit(uint32_t messages, uint64_t bytes, uint8_t **out, size_t *len)
{
    Gbx__V1__Credit c = GBX__V1__CREDIT__INIT;
    c.messages = messages;
    c.bytes = bytes;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.body_case = GBX__V1__FRAME__BODY_CREDIT;
    f.credit = &c;
    return gbx_frame_encode(&f, out, len);
}

gbx_err_t gbx_frame_ping(uint64_t tag, uint64_t nonce, uint8_t **out, size_t *len)
{
    Gbx__V1__Ping p = GBX__V1__PING__INIT;
    p.nonce = nonce;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.tag = tag;
    f.body_case = GBX__V1__FRAME__BODY_PING;
    f.ping = &p;
    return gbx_frame_encode(&f, out, len);
}

gbx_err_t gbx_frame_pong(uint64_t tag, uint64_t nonce, uint8_t **out, size_t *len)
{
    Gbx__V1__Pong p = GBX__V1__PONG__INIT;
    p.nonce = nonce;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.tag = tag;
    f.body_case = GBX__V1__FRAME__BODY_PONG;
    f.pong = &p;
    return gbx_frame_encode(&f, out, len);
}
