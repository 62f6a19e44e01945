/*  gbx/identity.h: an agency's (or node's) keys. Spec: proto/spec/3-keys.md.

    An identity is three key pairs under one id:
      sign   Ed25519, signs headers, batch roots and receipts
      box    X25519, receives end-to-end encrypted payloads (sealed content keys)
      curve  X25519, CurveZMQ transport key
    Secret keys live in sodium_malloc'ed, mlocked memory and are wiped on destroy.

    Files: <dir>/<id>.secret (mode 0600, refused when group or others may read
    it) and <dir>/<id>.pub (the registry entry, YAML). */
#ifndef GBX_IDENTITY_H
#define GBX_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"

#define GBX_ID_MAX          64 /* agency / node id: [a-z0-9][a-z0-9.-]{0,63} */
#define GBX_KEY_BYTES       32
#define GBX_KEY_ID_BYTES    8  /* first 8 bytes of BLAKE2b-256("gbx1-key-id\0" || sign_pk) */
#define GBX_FINGERPRINT_LEN 24 /* "xxxx-xxxx-xxxx-xxxx" + NUL, with room */

/*  The public half: what the registry holds for an agency or node. */
typedef struct {
    char id[GBX_ID_MAX + 1];
    uint8_t sign_pk[GBX_KEY_BYTES];
    uint8_t box_pk[GBX_KEY_BYTES];
    uint8_t curve_pk[GBX_KEY_BYTES];
} gbx_pubid_t;

typedef struct gbx_identity gbx_identity_t;

/*  1 if ID is a valid agency / node id. */
int gbx_id_valid(const char *id);

/*  Creates fresh keys for ID. On GBX_OK sets *out (caller owns it). */
gbx_err_t gbx_identity_generate(const char *id, gbx_identity_t **out);
/*  Writes DIR/<id>.secret (0600) and DIR/<id>.pub, each through a fresh
    temporary file: refuses existing names unless OVERWRITE, never writes
    through a symlink, and leaves no new secret behind when it fails. */
gbx_err_t gbx_identity_save(const gbx_identity_t *self, const char *dir, int overwrite);
/*  Loads a .secret file. GBX_E_KEY_PERMS if it is a symlink, another
    user's, or open to group or others; GBX_E_KEY_FORMAT if it is not a
    regular file, does not parse or its keys do not match. On GBX_OK the
    caller owns *out. */
gbx_err_t gbx_identity_load(const char *secret_path, gbx_identity_t **out);
/*  NULL-safe; wipes the secrets and sets *self_p to NULL. */
void gbx_identity_destroy(gbx_identity_t **self_p);

const gbx_pubid_t *gbx_identity_public(const gbx_identity_t *self);
/*  Ed25519 secret key (64 bytes), X25519 box secret, CurveZMQ secret (32
    bytes): borrowed, valid as long as SELF, in guarded memory. For the
    envelope library and for handing the curve key to ZeroMQ; never copy them
    elsewhere. */
const uint8_t *gbx_identity_sign_sk(const gbx_identity_t *self);
const uint8_t *gbx_identity_box_sk(const gbx_identity_t *self);
const uint8_t *gbx_identity_curve_sk(const gbx_identity_t *self);

/*  Loads a .pub file into *out. */
gbx_err_t gbx_pubid_load(const char *pub_path, gbx_pubid_t *out);
/*  The key id that headers carry in signer_key_id. */
void gbx_pubid_key_id(const gbx_pubid_t *self, uint8_t out[GBX_KEY_ID_BYTES]);
/*  Short human fingerprint of all three public keys, "a1b2-c3d4-e5f6-0718". */
void gbx_pubid_fingerprint(const gbx_pubid_t *self, char out[GBX_FINGERPRINT_LEN]);
/*  The registry entry as YAML text; caller frees *text_out with free(). */
gbx_err_t gbx_pubid_format(const gbx_pubid_t *self, char **text_out);

#endif
