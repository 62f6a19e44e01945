/*  test_frame: the adapter-socket framing codec (include/gbx/frame.h,
    proto/spec/5-adapter.md section 3).

    The Submit fixture is real: a 150000-byte plaintext sealed to hk.cr
    (three chunks), its hash and length in a header signed by gd.qh-amr
    (fixed-seed identities, so the bytes are the same on every run).

    Cases:
      round_trip      every frame kind built by its encoder, decoded, its
                      fields read back through the accessors
      s_cases         the table below: part 0, part 1 and the payload parts of
                      one message, the receiving side; the exact result of
                      gbx_frame_decode_at, the tag of the answer, and (when
                      the decode passes) of gbx_frame_check_payload
      bad_envelope    Submit envelopes that fail gbx_envelope_decode: its
                      reason, and the message id in the answer only when the
                      header parsed
      encoders_refuse arguments the encoders refuse (reason OK, local codes,
                      retry_after without RETRY_LATER, ids, oversize)
      garbage         2000 seeded random messages (random parts, and valid
                      frames with random edits): never crash, never an
                      error code that cannot travel */
#include "tu_cmocka.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "gbx/frame.h"
#include "gbx/receipt.h"

/* ------------------------------------------------------------ the table */

typedef enum {
    P0_GBX1, /* "GBX1" */
    P0_RAW,  /* the case's p0 / p0_len */
    P0_NONE  /* no parts at all */
} s_p0_t;

typedef enum {
    P1_RAW,     /* the case's p1 / p1_len */
    P1_NONE,    /* part 0 only */
    P1_SUBMIT,  /* the fixture Submit, tag 77 */
    P1_DELIVER, /* the fixture in a Deliver */
    P1_ACK,     /* Ack{1, 2, 3} */
    P1_PING,    /* Ping tag 9 */
    P1_ACCEPTED,
    P1_BIG /* GBX_FRAME_MAX + 1 bytes */
} s_p1_t;

typedef enum {
    PL_NONE,  /* no payload parts */
    PL_ONE,   /* the payload in one part */
    PL_TWO,   /* prefix + first chunk, then the rest */
    PL_MANY,  /* 1..5000-byte parts, with empty parts among them */
    PL_BYTES, /* one byte per part for the first 300 bytes, then one part */
    PL_EMPTY, /* one empty part */
    PL_SHORT, /* one byte missing at the end */
    PL_LONG,  /* one byte too many */
    PL_FLIP   /* one bit flipped in the middle */
} s_pl_t;

typedef struct {
    const char *name;
    s_p0_t p0_kind;
    const char *p0;
    size_t p0_len;
    s_p1_t p1_kind;
    const char *p1;
    size_t p1_len;
    s_pl_t pl;
    gbx_frame_at_t at;
    gbx_err_t want;       /* gbx_frame_decode_at */
    uint64_t want_tag;    /* the answer's tag */
    gbx_err_t want_check; /* gbx_frame_check_payload when decoded; OK = skip for non-payload */
} s_case_t;

#define RAW(s) s, sizeof(s) - 1

static const s_case_t s_cases[] = {
    /* part 0 */
    {"p0 GBX2", P0_RAW, RAW("GBX2"), P1_SUBMIT, NULL, 0, PL_ONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"p0 GBX", P0_RAW, RAW("GBX"), P1_SUBMIT, NULL, 0, PL_ONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"p0 empty", P0_RAW, RAW(""), P1_ACK, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"p0 GBX1 NUL", P0_RAW, "GBX1", 5, P1_ACK, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"p0 lower case", P0_RAW, RAW("gbx1"), P1_ACK, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"p0 is a frame", P0_RAW, RAW("\x08\x01\x4a\x00"), P1_NONE, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    {"no parts", P0_NONE, NULL, 0, P1_NONE, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_UNSUPPORTED_VERSION, 0, GBX_OK},
    /* part 1 */
    {"one part", P0_GBX1, NULL, 0, P1_NONE, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY, GBX_E_TRUNCATED, 0,
     GBX_OK},
    {"p1 empty", P0_GBX1, NULL, 0, P1_RAW, RAW(""), PL_NONE, GBX_FRAME_AT_ANY, GBX_E_TRUNCATED, 0,
     GBX_OK},
    {"p1 oversize", P0_GBX1, NULL, 0, P1_BIG, NULL, 0, PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_HEADER_TOO_LARGE, 0, GBX_OK},
    {"p1 key cut", P0_GBX1, NULL, 0, P1_RAW, RAW("\x88"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_TRUNCATED, 0, GBX_OK},
    {"p1 varint cut", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\xff"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_TRUNCATED, 0, GBX_OK},
    {"p1 length past end", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x03\x12\x05\x0a"), PL_NONE,
     GBX_FRAME_AT_ANY, GBX_E_TRUNCATED, 0, GBX_OK},
    {"p1 wire type 7", P0_GBX1, NULL, 0, P1_RAW, RAW("\x0f"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"p1 field 0", P0_GBX1, NULL, 0, P1_RAW, RAW("\x00\x00"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"p1 group", P0_GBX1, NULL, 0, P1_RAW, RAW("\x0b\x0c"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"p1 varint 11 bytes", P0_GBX1, NULL, 0, P1_RAW,
     RAW("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"p1 tag as bytes", P0_GBX1, NULL, 0, P1_RAW, RAW("\x0a\x00"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"p1 garbage in body", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x02\x32\x02\xff\xff"), PL_NONE,
     GBX_FRAME_AT_ANY, GBX_E_MALFORMED, 0, GBX_OK},
    /* found by tools/fuzz.sh frame: a Credit holding a field-0 key written
       in three bytes (80 80 00); protobuf-c keeps it, and would write it
       back as a key it refuses */
    {"p1 field 0 in a body", P0_GBX1, NULL, 0, P1_RAW, RAW("\x3a\x07\x08\xc0\x10\x80\x80\x00\x08"),
     PL_NONE, GBX_FRAME_AT_ANY, GBX_E_MALFORMED, 0, GBX_OK},
    /* body */
    {"no body", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x07"), PL_NONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 7, GBX_OK},
    {"unknown body 11", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x05\x5a\x00"), PL_NONE,
     GBX_FRAME_AT_ANY, GBX_E_MALFORMED, 5, GBX_OK},
    {"submit without envelope", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x03\x12\x00"), PL_ONE,
     GBX_FRAME_AT_ANY, GBX_E_MALFORMED, 3, GBX_OK},
    {"deliver without envelope", P0_GBX1, NULL, 0, P1_RAW, RAW("\x2a\x02\x08\x01"), PL_ONE,
     GBX_FRAME_AT_ANY, GBX_E_MALFORMED, 0, GBX_OK},
    {"submit empty envelope", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x04\x12\x02\x0a\x00"), PL_ONE,
     GBX_FRAME_AT_ANY, GBX_E_TRUNCATED, 4, GBX_OK},
    {"submit envelope version 0", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x04\x12\x04\x0a\x02\x10\x01"),
     PL_ONE, GBX_FRAME_AT_ANY, GBX_E_UNSUPPORTED_VERSION, 4, GBX_OK},
    /* direction (5-adapter.md section 3) */
    {"node gets deliver", P0_GBX1, NULL, 0, P1_DELIVER, NULL, 0, PL_ONE, GBX_FRAME_AT_NODE,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"node gets accepted", P0_GBX1, NULL, 0, P1_ACCEPTED, NULL, 0, PL_NONE, GBX_FRAME_AT_NODE,
     GBX_E_MALFORMED, 12, GBX_OK},
    {"node gets rejected", P0_GBX1, NULL, 0, P1_RAW, RAW("\x08\x02\x22\x02\x10\x64"), PL_NONE,
     GBX_FRAME_AT_NODE, GBX_E_MALFORMED, 2, GBX_OK},
    {"node gets notice", P0_GBX1, NULL, 0, P1_RAW, RAW("\x42\x02\x10\x64"), PL_NONE,
     GBX_FRAME_AT_NODE, GBX_E_MALFORMED, 0, GBX_OK},
    {"adapter gets submit", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_ONE, GBX_FRAME_AT_ADAPTER,
     GBX_E_MALFORMED, 77, GBX_OK},
    {"adapter gets ack", P0_GBX1, NULL, 0, P1_ACK, NULL, 0, PL_NONE, GBX_FRAME_AT_ADAPTER,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"node gets ping", P0_GBX1, NULL, 0, P1_PING, NULL, 0, PL_NONE, GBX_FRAME_AT_NODE, GBX_OK, 9,
     GBX_OK},
    {"adapter gets accepted", P0_GBX1, NULL, 0, P1_ACCEPTED, NULL, 0, PL_NONE, GBX_FRAME_AT_ADAPTER,
     GBX_OK, 12, GBX_OK},
    /* payload parts where none may be */
    {"ack with payload", P0_GBX1, NULL, 0, P1_ACK, NULL, 0, PL_ONE, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"ack with an empty part", P0_GBX1, NULL, 0, P1_ACK, NULL, 0, PL_EMPTY, GBX_FRAME_AT_ANY,
     GBX_E_MALFORMED, 0, GBX_OK},
    {"ping with payload", P0_GBX1, NULL, 0, P1_PING, NULL, 0, PL_MANY, GBX_FRAME_AT_NODE,
     GBX_E_MALFORMED, 9, GBX_OK},
    {"accepted with payload", P0_GBX1, NULL, 0, P1_ACCEPTED, NULL, 0, PL_TWO, GBX_FRAME_AT_ADAPTER,
     GBX_E_MALFORMED, 12, GBX_OK},
    /* Submit and Deliver payloads: decode passes, steps 11 and 12 decide */
    {"submit one part", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_ONE, GBX_FRAME_AT_NODE, GBX_OK, 77,
     GBX_OK},
    {"submit two parts", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_TWO, GBX_FRAME_AT_NODE, GBX_OK,
     77, GBX_OK},
    {"submit many parts", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_MANY, GBX_FRAME_AT_NODE, GBX_OK,
     77, GBX_OK},
    {"submit byte parts", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_BYTES, GBX_FRAME_AT_NODE, GBX_OK,
     77, GBX_OK},
    {"deliver many parts", P0_GBX1, NULL, 0, P1_DELIVER, NULL, 0, PL_MANY, GBX_FRAME_AT_ADAPTER,
     GBX_OK, 0, GBX_OK},
    {"submit without payload", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_NONE, GBX_FRAME_AT_NODE,
     GBX_OK, 77, GBX_E_PAYLOAD_LENGTH_MISMATCH},
    {"submit empty payload part", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_EMPTY, GBX_FRAME_AT_NODE,
     GBX_OK, 77, GBX_E_PAYLOAD_LENGTH_MISMATCH},
    {"submit payload short", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_SHORT, GBX_FRAME_AT_NODE,
     GBX_OK, 77, GBX_E_PAYLOAD_LENGTH_MISMATCH},
    {"submit payload long", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_LONG, GBX_FRAME_AT_NODE,
     GBX_OK, 77, GBX_E_PAYLOAD_LENGTH_MISMATCH},
    {"submit payload flipped", P0_GBX1, NULL, 0, P1_SUBMIT, NULL, 0, PL_FLIP, GBX_FRAME_AT_NODE,
     GBX_OK, 77, GBX_E_PAYLOAD_HASH_MISMATCH},
    {"deliver payload flipped", P0_GBX1, NULL, 0, P1_DELIVER, NULL, 0, PL_FLIP,
     GBX_FRAME_AT_ADAPTER, GBX_OK, 0, GBX_E_PAYLOAD_HASH_MISMATCH},
};

/* -------------------------------------------------------------- fixture */

#define S_PLAIN_LEN 150000u

typedef struct {
    gbx_identity_t *a; /* gd.qh-amr, the sender */
    gbx_identity_t *b; /* hk.cr, the recipient */
    gbx_envelope_t *env;
    uint8_t *sealed;
    size_t sealed_len;
    uint8_t *receipt; /* a SignedReceipt */
    size_t receipt_len;
} s_fix_t;

static int s_setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    s_fix_t *f = calloc(1, sizeof *f);
    f->a = tu_identity_fixed("gd.qh-amr", NULL);
    f->b = tu_identity_fixed("hk.cr", NULL);
    tu_header_t t;
    tu_header_fixture(&t, 0);
    t.h.payload_length = S_PLAIN_LEN;
    uint8_t *plain = malloc(S_PLAIN_LEN);
    for (size_t i = 0; i < S_PLAIN_LEN; i++)
        plain[i] = (uint8_t)(i * 31 + 7);
    gbx_binding_t bind = {t.message_id, t.h.from_agency, t.h.to_agency};
    if (gbx_payload_seal(gbx_identity_public(f->b)->box_pk, &bind, plain, S_PLAIN_LEN, &f->sealed,
                         &f->sealed_len, t.payload_hash) != GBX_OK)
        return -1;
    free(plain);
    if (gbx_envelope_sign(f->a, &t.h, &f->env) != GBX_OK)
        return -1;
    Gbx__V1__Receipt r = GBX__V1__RECEIPT__INIT;
    r.message_id.data = t.message_id;
    r.message_id.len = GBX_MSG_ID_BYTES;
    r.node_id = "hk-1";
    r.sequence = 42;
    if (gbx_receipt_sign(f->b, &r, &f->receipt, &f->receipt_len) != GBX_OK)
        return -1;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->a);
    gbx_identity_destroy(&f->b);
    gbx_envelope_destroy(&f->env);
    free(f->sealed);
    free(f->receipt);
    free(f);
    return 0;
}

/* ------------------------------------------------------ message building */

#define S_MAX_PARTS 1024

typedef struct {
    gbx_part_t parts[S_MAX_PARTS];
    size_t n;
    uint8_t *p1;   /* owned */
    uint8_t *pl;   /* owned payload copy */
    uint8_t *junk; /* owned */
} s_msg_t;

static void s_msg_free(s_msg_t *m)
{
    free(m->p1);
    free(m->pl);
    free(m->junk);
    memset(m, 0, sizeof *m);
}

static void s_add(s_msg_t *m, const uint8_t *data, size_t len)
{
    assert_true(m->n < S_MAX_PARTS);
    m->parts[m->n].data = data;
    m->parts[m->n].len = len;
    m->n++;
}

/*  Splits BUF into parts as PL says. */
static void s_add_payload(s_msg_t *m, const uint8_t *buf, size_t len, s_pl_t pl, tu_rng_t *rng)
{
    size_t off = 0;
    switch (pl) {
    case PL_NONE:
        return;
    case PL_EMPTY:
        s_add(m, NULL, 0);
        return;
    case PL_ONE:
    case PL_SHORT:
    case PL_LONG:
    case PL_FLIP:
        s_add(m, buf, len);
        return;
    case PL_TWO: {
        size_t first = GBX_PAYLOAD_PREFIX + GBX_CHUNK + GBX_CHUNK_ABYTES;
        if (first > len)
            first = len / 2;
        s_add(m, buf, first);
        s_add(m, buf + first, len - first);
        return;
    }
    case PL_BYTES:
        for (; off < 300 && off < len; off++)
            s_add(m, buf + off, 1);
        s_add(m, buf + off, len - off);
        return;
    case PL_MANY:
        s_add(m, NULL, 0);
        while (off < len) {
            size_t k = 1 + (size_t)tu_rng_below(rng, 5000);
            if (k > len - off)
                k = len - off;
            s_add(m, buf + off, k);
            if (tu_rng_below(rng, 4) == 0)
                s_add(m, buf + off + k, 0);
            off += k;
        }
        s_add(m, NULL, 0);
        return;
    }
}

static void s_build(const s_fix_t *f, const s_case_t *c, tu_rng_t *rng, s_msg_t *m)
{
    memset(m, 0, sizeof *m);
    size_t p1_len = 0;
    switch (c->p0_kind) {
    case P0_NONE:
        return;
    case P0_GBX1:
        s_add(m, (const uint8_t *)GBX_FRAME_PROTOCOL, GBX_FRAME_PROTOCOL_LEN);
        break;
    case P0_RAW:
        s_add(m, (const uint8_t *)c->p0, c->p0_len);
        break;
    }
    switch (c->p1_kind) {
    case P1_NONE:
        return;
    case P1_RAW:
        s_add(m, (const uint8_t *)c->p1, c->p1_len);
        break;
    case P1_SUBMIT:
        assert_rc(gbx_frame_submit(77, f->env, &m->p1, &p1_len), GBX_OK);
        break;
    case P1_DELIVER:
        assert_rc(gbx_frame_deliver(7001, 1, f->env, &m->p1, &p1_len), GBX_OK);
        break;
    case P1_ACK: {
        const uint64_t ids[] = {1, 2, 3};
        assert_rc(gbx_frame_ack(ids, 3, &m->p1, &p1_len), GBX_OK);
        break;
    }
    case P1_PING:
        assert_rc(gbx_frame_ping(9, 0x1234, &m->p1, &p1_len), GBX_OK);
        break;
    case P1_ACCEPTED:
        assert_rc(gbx_frame_accepted(12, f->receipt, f->receipt_len, 0, &m->p1, &p1_len), GBX_OK);
        break;
    case P1_BIG:
        p1_len = GBX_FRAME_MAX + 1;
        m->p1 = calloc(1, p1_len);
        break;
    }
    if (m->p1)
        s_add(m, m->p1, p1_len);
    size_t len = f->sealed_len;
    m->pl = malloc(len + 1);
    memcpy(m->pl, f->sealed, len);
    m->pl[len] = 0x5a;
    if (c->pl == PL_SHORT)
        len--;
    else if (c->pl == PL_LONG)
        len++;
    else if (c->pl == PL_FLIP)
        m->pl[len / 2] ^= 0x04;
    s_add_payload(m, m->pl, len, c->pl, rng);
}

/* ---------------------------------------------------------------- tests */

static void test_cases(void **state)
{
    const s_fix_t *f = *state;
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("frame cases", 0x6278317466ull));
    int fails = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        s_msg_t m;
        s_build(f, c, &rng, &m);
        gbx_frame_t *fr = NULL;
        gbx_frame_fail_t fail;
        memset(&fail, 0xee, sizeof fail);
        gbx_err_t rc = gbx_frame_decode_at(m.parts, m.n, c->at, &fr, &fail);
        check_case_rc(fails, c->name, rc, c->want);
        if (fail.tag != c->want_tag) {
            print_error("case \"%s\": tag %llu, want %llu\n", c->name, (unsigned long long)fail.tag,
                        (unsigned long long)c->want_tag);
            fails++;
        }
        if (rc != GBX_OK && fail.message_id_len != 0) {
            print_error("case \"%s\": message id in a framing answer\n", c->name);
            fails++;
        }
        if (rc == GBX_OK) {
            if (gbx_frame_tag(fr) != c->want_tag)
                fails++;
            if (gbx_frame_envelope(fr)) {
                check_case_rc(fails, c->name, gbx_frame_check_payload(fr), c->want_check);
                assert_true(m.n >= 2);
                size_t pn = 0;
                const gbx_part_t *pp = gbx_frame_payload(fr, &pn);
                assert_int_equal(pn, m.n - 2);
                for (size_t k = 0; k < pn; k++) {
                    assert_ptr_equal(pp[k].data, m.parts[2 + k].data);
                    assert_int_equal(pp[k].len, m.parts[2 + k].len);
                }
            } else {
                check_case_rc(fails, c->name, gbx_frame_check_payload(fr), GBX_E_STATE);
            }
        } else {
            assert_null(fr);
        }
        gbx_frame_destroy(&fr);
        assert_null(fr);
        s_msg_free(&m);
    }
    if (fails)
        fail_msg("%d case(s) failed", fails);
}

/*  Decodes GBX1, P1 (freed after decoding), PAYLOAD and returns the frame.
    The part array is on this stack frame: the frame must not keep it. */
static gbx_frame_t *s_decode_p1(uint8_t *p1, size_t len, const gbx_part_t *payload, size_t pn)
{
    gbx_part_t parts[8];
    assert_true(pn <= 6);
    parts[0].data = (const uint8_t *)GBX_FRAME_PROTOCOL;
    parts[0].len = GBX_FRAME_PROTOCOL_LEN;
    parts[1].data = p1;
    parts[1].len = len;
    for (size_t i = 0; i < pn; i++)
        parts[2 + i] = payload[i];
    gbx_frame_t *fr = NULL;
    assert_rc(gbx_frame_decode(parts, 2 + pn, &fr), GBX_OK);
    free(p1); /* the frame does not keep part 1 */
    return fr;
}

static void test_round_trip(void **state)
{
    const s_fix_t *f = *state;
    uint8_t *p1 = NULL;
    size_t len = 0;
    gbx_frame_t *fr;
    const Gbx__V1__Frame *m;
    size_t hl = 0, hl2 = 0;
    const uint8_t *hb = gbx_envelope_header_bytes(f->env, &hl);

    /* Submit, payload in three parts */
    gbx_part_t pl[3] = {
        {f->sealed, 100}, {f->sealed + 100, 0}, {f->sealed + 100, f->sealed_len - 100}};
    assert_rc(gbx_frame_submit(0xfffffffffull, f->env, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, pl, 3);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_SUBMIT);
    assert_int_equal(gbx_frame_tag(fr), 0xfffffffffull);
    assert_non_null(gbx_frame_envelope(fr));
    const uint8_t *hb2 = gbx_envelope_header_bytes(gbx_frame_envelope(fr), &hl2);
    assert_int_equal(hl, hl2);
    assert_memory_equal(hb, hb2, hl);
    assert_rc(gbx_envelope_verify(gbx_frame_envelope(fr), gbx_identity_public(f->a), NULL), GBX_OK);
    assert_int_equal(gbx_frame_payload_size(fr), f->sealed_len);
    assert_rc(gbx_frame_check_payload(fr), GBX_OK);
    /* the payload opens for the recipient (the parts are the real ciphertext) */
    gbx_binding_t bind;
    gbx_envelope_binding(gbx_frame_envelope(fr), &bind);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    assert_rc(gbx_payload_open(f->b, &bind, f->sealed, f->sealed_len, S_PLAIN_LEN,
                               gbx_envelope_header(gbx_frame_envelope(fr))->payload_hash.data,
                               &plain, &plain_len),
              GBX_OK);
    assert_int_equal(plain_len, S_PLAIN_LEN);
    free(plain);
    gbx_frame_destroy(&fr);

    /* Deliver */
    gbx_part_t one = {f->sealed, f->sealed_len};
    assert_rc(gbx_frame_deliver(7001, 3, f->env, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, &one, 1);
    m = gbx_frame_message(fr);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_DELIVER);
    assert_int_equal(gbx_frame_tag(fr), 0);
    assert_int_equal(m->deliver->delivery_id, 7001);
    assert_int_equal(m->deliver->attempt, 3);
    assert_rc(gbx_envelope_verify(gbx_frame_envelope(fr), gbx_identity_public(f->a), NULL), GBX_OK);
    assert_rc(gbx_frame_check_payload(fr), GBX_OK);
    gbx_frame_destroy(&fr);

    /* Accepted: the receipt travels byte for byte */
    for (int dup = 0; dup <= 1; dup++) {
        assert_rc(gbx_frame_accepted(5, f->receipt, f->receipt_len, dup, &p1, &len), GBX_OK);
        fr = s_decode_p1(p1, len, NULL, 0);
        m = gbx_frame_message(fr);
        assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_ACCEPTED);
        assert_int_equal(gbx_frame_tag(fr), 5);
        assert_int_equal(m->accepted->duplicate, dup);
        assert_non_null(m->accepted->receipt);
        assert_null(gbx_frame_envelope(fr));
        size_t n = gbx__v1__signed_receipt__get_packed_size(m->accepted->receipt);
        uint8_t *again = malloc(n);
        gbx__v1__signed_receipt__pack(m->accepted->receipt, again);
        assert_int_equal(n, f->receipt_len);
        assert_memory_equal(again, f->receipt, n);
        free(again);
        assert_rc(gbx_receipt_verify(m->accepted->receipt, gbx_identity_public(f->b), NULL),
                  GBX_OK);
        gbx_frame_destroy(&fr);
    }

    /* Rejected, with and without a message id */
    const uint8_t *mid = gbx_envelope_header(f->env)->message_id.data;
    assert_rc(gbx_frame_rejected(6, mid, GBX_MSG_ID_BYTES, GBX_E_RETRY_LATER, "queue full", 1500,
                                 &p1, &len),
              GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    m = gbx_frame_message(fr);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_REJECTED);
    assert_int_equal(gbx_frame_tag(fr), 6);
    assert_int_equal(m->rejected->message_id.len, GBX_MSG_ID_BYTES);
    assert_memory_equal(m->rejected->message_id.data, mid, GBX_MSG_ID_BYTES);
    assert_int_equal(m->rejected->reason, GBX_E_RETRY_LATER);
    assert_string_equal(m->rejected->detail, "queue full");
    assert_int_equal(m->rejected->retry_after_ms, 1500);
    gbx_frame_destroy(&fr);
    assert_rc(gbx_frame_rejected(0, NULL, 0, GBX_E_UNSUPPORTED_VERSION, NULL, 0, &p1, &len),
              GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    m = gbx_frame_message(fr);
    assert_int_equal(m->rejected->message_id.len, 0);
    assert_int_equal(m->rejected->reason, GBX_E_UNSUPPORTED_VERSION);
    assert_string_equal(m->rejected->detail, "");
    gbx_frame_destroy(&fr);

    /* Notice */
    assert_rc(gbx_frame_notice(mid, GBX_E_DEAD_LETTERED, "5 attempts", &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    m = gbx_frame_message(fr);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_NOTICE);
    assert_memory_equal(m->notice->message_id.data, mid, GBX_MSG_ID_BYTES);
    assert_int_equal(m->notice->reason, GBX_E_DEAD_LETTERED);
    assert_string_equal(m->notice->detail, "5 attempts");
    gbx_frame_destroy(&fr);

    /* Ack: empty, and as many ids as fit with the largest values */
    assert_rc(gbx_frame_ack(NULL, 0, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_ACK);
    assert_int_equal(gbx_frame_message(fr)->ack->n_delivery_ids, 0);
    gbx_frame_destroy(&fr);
    uint64_t ids[2000];
    for (size_t i = 0; i < 2000; i++)
        ids[i] = UINT64_MAX - i;
    assert_rc(gbx_frame_ack(ids, 2000, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    m = gbx_frame_message(fr);
    assert_int_equal(m->ack->n_delivery_ids, 2000);
    assert_memory_equal(m->ack->delivery_ids, ids, sizeof ids);
    gbx_frame_destroy(&fr);

    /* Credit */
    assert_rc(gbx_frame_credit(UINT32_MAX, UINT64_MAX, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    m = gbx_frame_message(fr);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_CREDIT);
    assert_int_equal(m->credit->messages, UINT32_MAX);
    assert_int_equal(m->credit->bytes, UINT64_MAX);
    gbx_frame_destroy(&fr);

    /* Ping / Pong */
    assert_rc(gbx_frame_ping(31, 0xdeadbeefcafeull, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_PING);
    assert_int_equal(gbx_frame_tag(fr), 31);
    assert_int_equal(gbx_frame_message(fr)->ping->nonce, 0xdeadbeefcafeull);
    gbx_frame_destroy(&fr);
    assert_rc(gbx_frame_pong(31, 0, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    assert_int_equal(gbx_frame_kind(fr), GBX_FRAME_PONG);
    assert_int_equal(gbx_frame_message(fr)->pong->nonce, 0);
    size_t pn = 9;
    assert_null(gbx_frame_payload(fr, &pn));
    assert_int_equal(pn, 0);
    gbx_frame_destroy(&fr);

    /* gbx_frame_encode of a hand-built frame */
    Gbx__V1__Pong pong = GBX__V1__PONG__INIT;
    Gbx__V1__Frame hand = GBX__V1__FRAME__INIT;
    hand.tag = 3;
    hand.body_case = GBX__V1__FRAME__BODY_PONG;
    hand.pong = &pong;
    assert_rc(gbx_frame_encode(&hand, &p1, &len), GBX_OK);
    fr = s_decode_p1(p1, len, NULL, 0);
    assert_int_equal(gbx_frame_tag(fr), 3);
    gbx_frame_destroy(&fr);

    gbx_frame_destroy(&fr); /* NULL-safe */
    gbx_frame_destroy(NULL);
}

/*  Part 1 = Frame{tag, submit{ENV}} for envelope bytes ENV. */
static uint8_t *s_submit_raw(uint64_t tag, const uint8_t *env, size_t env_len, size_t *len)
{
    Gbx__V1__Envelope *e = gbx__v1__envelope__unpack(NULL, env_len, env);
    assert_non_null(e);
    Gbx__V1__Submit s = GBX__V1__SUBMIT__INIT;
    s.envelope = e;
    Gbx__V1__Frame f = GBX__V1__FRAME__INIT;
    f.tag = tag;
    f.body_case = GBX__V1__FRAME__BODY_SUBMIT;
    f.submit = &s;
    uint8_t *out = NULL;
    assert_rc(gbx_frame_encode(&f, &out, len), GBX_OK);
    gbx__v1__envelope__free_unpacked(e, NULL);
    return out;
}

typedef struct {
    const char *name;
    uint32_t version;
    uint32_t suite;
    int bad_field; /* header with an empty service code */
    gbx_err_t want;
    int want_id; /* the answer names the message id */
} s_env_case_t;

static const s_env_case_t s_env_cases[] = {
    {"valid", 1, 1, 0, GBX_OK, 0},
    {"version 2", 2, 1, 0, GBX_E_UNSUPPORTED_VERSION, 0},
    {"suite 9", 1, 9, 0, GBX_E_UNKNOWN_SUITE, 0},
    {"field invalid", 1, 1, 1, GBX_E_FIELD_INVALID, 1},
};

static void test_bad_envelope(void **state)
{
    const s_fix_t *f = *state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_env_cases / sizeof s_env_cases[0]; i++) {
        const s_env_case_t *c = &s_env_cases[i];
        tu_header_t t;
        tu_header_fixture(&t, 9);
        if (c->bad_field)
            t.h.service_code = "";
        uint8_t kid[8];
        gbx_pubid_key_id(gbx_identity_public(f->a), kid);
        t.h.signer_key_id.data = kid;
        t.h.signer_key_id.len = sizeof kid;
        size_t hl = gbx__v1__header__get_packed_size(&t.h);
        uint8_t *hdr = malloc(hl);
        gbx__v1__header__pack(&t.h, hdr);
        size_t el = 0, pl = 0;
        uint8_t *env = tu_envelope_by_hand(f->a, hdr, hl, c->version, c->suite, &el);
        uint8_t *p1 = s_submit_raw(41, env, el, &pl);
        gbx_part_t parts[3] = {{(const uint8_t *)"GBX1", 4}, {p1, pl}, {f->sealed, 200}};
        gbx_frame_t *fr = NULL;
        gbx_frame_fail_t fail;
        gbx_err_t rc = gbx_frame_decode_at(parts, 3, GBX_FRAME_AT_NODE, &fr, &fail);
        check_case_rc(fails, c->name, rc, c->want);
        if (fail.tag != 41)
            fails++;
        if (c->want_id) {
            if (fail.message_id_len != GBX_MSG_ID_BYTES ||
                memcmp(fail.message_id, t.message_id, GBX_MSG_ID_BYTES) != 0) {
                print_error("case \"%s\": message id missing\n", c->name);
                fails++;
            }
        } else if (fail.message_id_len != 0) {
            print_error("case \"%s\": message id given\n", c->name);
            fails++;
        }
        if (rc == GBX_OK)
            check_case_rc(
                fails, c->name,
                gbx_envelope_verify(gbx_frame_envelope(fr), gbx_identity_public(f->a), NULL),
                GBX_OK);
        gbx_frame_destroy(&fr);
        free(p1);
        free(env);
        free(hdr);
    }
    if (fails)
        fail_msg("%d case(s) failed", fails);
}

static void test_encoders_refuse(void **state)
{
    const s_fix_t *f = *state;
    uint8_t *p1 = NULL;
    size_t len = 0;
    const uint8_t id[GBX_MSG_ID_BYTES] = {1};
    assert_rc(gbx_frame_rejected(1, id, 16, GBX_OK, "", 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_rejected(1, id, 16, GBX_E_NOMEM, "", 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_rejected(1, id, 16, (gbx_err_t)12345, "", 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_rejected(1, id, 15, GBX_E_MALFORMED, "", 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_rejected(1, id, 16, GBX_E_MALFORMED, "", 10, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_rejected(1, id, 16, GBX_E_RETRY_LATER, "", 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_notice(id, GBX_E_IO, "", &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_accepted(1, (const uint8_t *)"\xff\xff", 2, 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_accepted(1, NULL, 0, 0, &p1, &len), GBX_E_ARG);
    assert_rc(gbx_frame_submit(1, NULL, &p1, &len), GBX_E_ARG);
    Gbx__V1__Frame empty = GBX__V1__FRAME__INIT;
    assert_rc(gbx_frame_encode(&empty, &p1, &len), GBX_E_ARG);
    uint64_t *ids = calloc(6000, sizeof *ids);
    for (size_t i = 0; i < 6000; i++)
        ids[i] = UINT64_MAX;
    assert_rc(gbx_frame_ack(ids, 6000, &p1, &len), GBX_E_HEADER_TOO_LARGE);
    free(ids);
    /* a Rejected detail too long for a frame */
    char *big = malloc(GBX_FRAME_MAX + 1);
    memset(big, 'x', GBX_FRAME_MAX);
    big[GBX_FRAME_MAX] = 0;
    assert_rc(gbx_frame_rejected(1, NULL, 0, GBX_E_MALFORMED, big, 0, &p1, &len),
              GBX_E_HEADER_TOO_LARGE);
    free(big);
    assert_null(p1);
    (void)f;
}

static void test_garbage(void **state)
{
    const s_fix_t *f = *state;
    tu_rng_t rng;
    tu_rng_init(&rng, tu_seed("frame garbage", 0x67617262ull));
    uint8_t *valid = NULL;
    size_t valid_len = 0;
    assert_rc(gbx_frame_submit(1, f->env, &valid, &valid_len), GBX_OK);
    uint8_t bufs[6][512];
    uint8_t *p1 = malloc(valid_len);
    size_t accepted = 0;
    for (int it = 0; it < 2000; it++) {
        gbx_part_t parts[6];
        size_t n = (size_t)tu_rng_below(&rng, 7);
        for (size_t i = 0; i < n; i++) {
            size_t l = (size_t)tu_rng_below(&rng, sizeof bufs[i]);
            tu_rng_bytes(&rng, bufs[i], l);
            parts[i].data = bufs[i];
            parts[i].len = l;
        }
        if (n >= 1 && tu_rng_below(&rng, 4) != 0)
            parts[0] = (gbx_part_t){(const uint8_t *)GBX_FRAME_PROTOCOL, 4};
        if (n >= 2 && tu_rng_below(&rng, 2) == 0) {
            /* a valid Submit with a few random edits, or cut short */
            memcpy(p1, valid, valid_len);
            size_t l = valid_len;
            for (int k = (int)tu_rng_below(&rng, 4); k >= 0; k--)
                p1[tu_rng_below(&rng, valid_len)] = (uint8_t)tu_rng_next(&rng);
            if (tu_rng_below(&rng, 4) == 0)
                l = (size_t)tu_rng_below(&rng, valid_len);
            parts[1] = (gbx_part_t){p1, l};
        }
        gbx_frame_t *fr = NULL;
        gbx_frame_fail_t fail;
        gbx_err_t rc = gbx_frame_decode_at(parts, n, (gbx_frame_at_t)(it % 3), &fr, &fail);
        if (rc != GBX_OK && !gbx_err_on_wire(rc))
            fail_msg("iteration %d: local error %s", it, gbx_err_name(rc));
        if (rc == GBX_OK) {
            accepted++;
            (void)gbx_frame_kind(fr);
            (void)gbx_frame_payload_size(fr);
            if (gbx_frame_envelope(fr)) {
                gbx_err_t pc = gbx_frame_check_payload(fr);
                assert_true(pc == GBX_E_PAYLOAD_LENGTH_MISMATCH ||
                            pc == GBX_E_PAYLOAD_HASH_MISMATCH);
            }
        } else {
            assert_null(fr);
        }
        gbx_frame_destroy(&fr);
    }
    print_message("garbage: %zu of 2000 decoded\n", accepted);
    free(p1);
    free(valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_cases),
        cmocka_unit_test(test_bad_envelope), cmocka_unit_test(test_encoders_refuse),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests_name("frame", tests, s_setup, s_teardown);
}
