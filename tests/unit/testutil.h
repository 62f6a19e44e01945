/*  testutil: helpers shared by the unit tests and tests/vectors/gen-vectors.c.
    Nothing here depends on cmocka (see tu_cmocka.h for the assertion macros).

    Randomness in the tests comes from a seeded splitmix64 generator, so that a
    failure reproduces: the seed is printed and GBX_TEST_SEED overrides it.
    Identities are made from fixed seeds (tu_identity_fixed), so signatures
    are deterministic too. */
#ifndef GBX_TESTUTIL_H
#define GBX_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gbx/envelope.h"
#include "gbx/identity.h"
#include "gbx/payload.h"

#ifndef GBX_SOURCE_DIR
#error "GBX_SOURCE_DIR must be defined (tests/unit/CMakeLists.txt)"
#endif
#ifndef GBX_VECTORS_DIR
#error "GBX_VECTORS_DIR must be defined (tests/unit/CMakeLists.txt)"
#endif

/* ------------------------------------------------------------ seeded RNG */

typedef struct {
    uint64_t s;
} tu_rng_t;

/*  DEFAULT_SEED unless GBX_TEST_SEED is set; prints the seed used as WHAT. */
uint64_t tu_seed(const char *what, uint64_t default_seed);
void tu_rng_init(tu_rng_t *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng_t *r);
/*  Uniform in [0, n), n > 0. */
uint64_t tu_rng_below(tu_rng_t *r, uint64_t n);
void tu_rng_bytes(tu_rng_t *r, uint8_t *out, size_t n);

/* ------------------------------------------------------------------- hex */

/*  Lower-case hex of BIN into a malloc'ed string (caller frees). */
char *tu_hex(const uint8_t *bin, size_t len);
/*  Decodes hex text (even length, [0-9a-fA-F]) into a malloc'ed buffer of
 *len bytes (at least 1 byte allocated); NULL if the text is not hex. */
uint8_t *tu_unhex(const char *text, size_t *len);

/* ----------------------------------------------------------------- files */

/*  A fresh directory under $TMPDIR (or /tmp); malloc'ed path. Aborts on error. */
char *tu_tmpdir(void);
/*  Removes the regular files in DIR (one level) and DIR; frees *dir_p. */
void tu_rmtree(char **dir_p);
/*  Removes DIR and everything below it (no link is followed). */
void tu_rmtree_path(const char *dir);
/*  Sleeps MS milliseconds. */
void tu_sleep_ms(long ms);
/*  A free TCP port on 127.0.0.1 (bound to port 0, read back, closed); -1 on failure. */
int tu_free_port(void);
/*  1 once a TCP connect to 127.0.0.1:PORT succeeds. */
int tu_port_open(int port);
/*  Writes LEN bytes to PATH (created or truncated) and sets MODE. 0 or -1. */
int tu_write_file(const char *path, const void *data, size_t len, mode_t mode);
/*  Reads PATH into a malloc'ed, NUL-terminated buffer; NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/*  Copies SRC to DST with MODE. 0 or -1. */
int tu_copy_file(const char *src, const char *dst, mode_t mode);
/*  Replaces HOME/policy.yaml (the sample policy gbx_config_write_default
    writes) with one rule, "tests-open", that allows every message the
    policy's built-in checks let through. For the live tests of delivery
    mechanics; the policy itself is tested against the sample. 0 or -1. */
#define TU_POLICY_OPEN_RULE "tests-open"
int tu_policy_open(const char *home);
/*  The code of the test service of agency ID: "TEST-" and ID upper-cased
    with '.' as '-' ("hk.kiosk": "TEST-HK-KIOSK"). OUT gets 80 bytes. */
void tu_test_service(const char *id, char out[80]);
/*  Appends to the demo config at CFG (gbx_config_write_default: its
    registry's services end the file) the test service of each of the N
    agencies IDS: version 1, class PUBLIC, provided by that agency, so the
    live tests of delivery can send to any agency. 0 or -1. */
int tu_config_test_services(const char *cfg, const char *const *ids, size_t n);

/* ------------------------------------------------- deterministic identities */

/*  BLAKE2b-256 of the text LABEL: how the fixed test seeds are made. */
void tu_seed32(const char *label, uint8_t out[32]);
/*  The fixed keys of ID: Ed25519 seed = tu_seed32("gbx1-kat/<id>/sign"),
    X25519 box secret = tu_seed32("gbx1-kat/<id>/box"), CurveZMQ secret =
    tu_seed32("gbx1-kat/<id>/curve"). */
void tu_fixed_keys(const char *id, uint8_t sign_seed[32], uint8_t box_sk[32], uint8_t curve_sk[32]);
/*  Writes DIR/<id>.secret (mode 0600) in the format of proto/src/identity.c
    from an Ed25519 seed and two X25519 secret keys. 0 or -1. */
int tu_write_secret(const char *dir, const char *id, const uint8_t sign_seed[32],
                    const uint8_t box_sk[32], const uint8_t curve_sk[32]);
/*  The identity of ID with the keys of tu_fixed_keys (label suffix LABEL
    appended to the id when not NULL, for a second key of the same id),
    loaded through gbx_identity_load. Aborts on error. */
gbx_identity_t *tu_identity_fixed(const char *id, const char *label);

/* ------------------------------------------------------------ header fixture */

/*  A valid header (every field set) with the buffers it points to. Do not copy
    by value: h points into the struct. */
typedef struct {
    gbx_header_t h;
    uint8_t message_id[GBX_MSG_ID_BYTES];
    uint8_t correlation_id[GBX_MSG_ID_BYTES];
    uint8_t payload_hash[GBX_HASH_BYTES];
} tu_header_t;

/*  HK-CR-COEXTRACT v1, gd.qh-amr -> hk.cr, REQUEST, PERSONAL, UNCLASSIFIED,
    GBA_STANDARD_CONTRACT, CONSENT, created 2026-09-21, expires 24 h later,
    payload 1024 bytes. VARIANT goes into the last byte of the message id. */
void tu_header_fixture(tu_header_t *t, uint32_t variant);

/* -------------------------------------------------------------- envelopes */

/*  Packs an envelope / an Envelope message into a malloc'ed buffer. */
uint8_t *tu_pack(const gbx_envelope_t *e, size_t *len);
uint8_t *tu_pack_msg(const Gbx__V1__Envelope *m, size_t *len);
/*  Signs "gbx1-header\0" || HDR by hand with SIGNER and packs an Envelope
    with the given version and suite. Malloc'ed. */
uint8_t *tu_envelope_by_hand(const gbx_identity_t *signer, const uint8_t *hdr, size_t hdr_len,
                             uint32_t version, uint32_t suite, size_t *len);
/*  Decodes BUF and, on success, verifies it against SIGNER. */
gbx_err_t tu_decode_verify(const uint8_t *buf, size_t len, const gbx_pubid_t *signer,
                           gbx_vcache_t *cache);

/* ---------------------------------------------------------------- vectors */

/*  A vectors file: lines "name = value", '#' comments, blank lines. */
typedef struct tu_vectors tu_vectors_t;
tu_vectors_t *tu_vectors_load(const char *path);
void tu_vectors_free(tu_vectors_t **v_p);
/*  The value of NAME (trimmed; "" for an empty value); NULL if absent. */
const char *tu_vec_str(const tu_vectors_t *v, const char *name);
/*  The hex value of NAME decoded (malloc'ed); NULL if absent or not hex. */
uint8_t *tu_vec_hex(const tu_vectors_t *v, const char *name, size_t *len);
/*  The decimal value of NAME; 0 with *ok = 0 if absent or not a number. */
uint64_t tu_vec_u64(const tu_vectors_t *v, const char *name, int *ok);

#endif
