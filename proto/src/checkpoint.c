/*  checkpoint.c: owns signed audit-trail checkpoints (gbx/checkpoint.h). */
#include "gbx/checkpoint.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DOMAIN        "gbx1-audit-checkpoint"
#define S_COSIGN_DOMAIN "gbx1-audit-cosign"
#define S_SIGNED_MAX    (sizeof S_DOMAIN + 1 + GBX_ID_MAX + 16 + 2 * GBX_MERKLE_HASH)
#define S_COSIGNED_MAX  (sizeof S_COSIGN_DOMAIN + 1 + GBX_ID_MAX + S_SIGNED_MAX)

static size_t s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
    return 8;
}

/*  DOMAIN\0 || u8 len(ID) || ID into P; its length. ID is a valid id. */
static size_t s_put_named(uint8_t *p, const char *domain, const char *id)
{
    size_t d = strlen(domain) + 1, n = strlen(id);
    memcpy(p, domain, d);
    p[d] = (uint8_t)n;
    memcpy(p + d + 1, id, n);
    return d + 1 + n;
}

/*  The signed bytes of CP into OUT (room for S_SIGNED_MAX); its length. */
static size_t s_signed(const gbx_checkpoint_t *cp, uint8_t *out)
{
    size_t n = s_put_named(out, S_DOMAIN, cp->node);
    n += s_put_be64(out + n, cp->size);
    n += s_put_be64(out + n, cp->at_ms);
    memcpy(out + n, cp->root, GBX_MERKLE_HASH);
    n += GBX_MERKLE_HASH;
    memcpy(out + n, cp->chain, GBX_MERKLE_HASH);
    return n + GBX_MERKLE_HASH;
}

static size_t s_cosigned(const gbx_checkpoint_t *cp, const char *peer, uint8_t *out)
{
    size_t n = s_put_named(out, S_COSIGN_DOMAIN, peer);
    return n + s_signed(cp, out + n);
}

gbx_err_t gbx_checkpoint_sign(gbx_checkpoint_t *cp, const uint8_t *sign_sk)
{
    if (!cp || !sign_sk || !gbx_id_valid(cp->node))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    uint8_t m[S_SIGNED_MAX];
    size_t n = s_signed(cp, m);
    crypto_sign_detached(cp->sig, NULL, m, n, sign_sk);
    return GBX_OK;
}

gbx_err_t gbx_checkpoint_verify(const gbx_checkpoint_t *cp, const uint8_t sign_pk[GBX_KEY_BYTES])
{
    if (!cp || !sign_pk || !gbx_id_valid(cp->node))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    uint8_t m[S_SIGNED_MAX];
    size_t n = s_signed(cp, m);
    return crypto_sign_verify_detached(cp->sig, m, n, sign_pk) == 0 ? GBX_OK : GBX_E_BAD_SIGNATURE;
}

static gbx_cosig_t *s_find_cosig(const gbx_checkpoint_t *cp, const char *peer)
{
    for (unsigned i = 0; i < cp->ncosig; i++)
        if (strcmp(cp->cosig[i].node, peer) == 0)
            return (gbx_cosig_t *)&cp->cosig[i];
    return NULL;
}

gbx_err_t gbx_checkpoint_cosign(gbx_checkpoint_t *cp, const char *peer, const uint8_t *peer_sk)
{
    if (!cp || !peer || !peer_sk || !gbx_id_valid(peer) || !gbx_id_valid(cp->node))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_cosig_t *c = s_find_cosig(cp, peer);
    if (!c) {
        if (cp->ncosig >= GBX_CHECKPOINT_MAX_COSIG)
            return GBX_E_STATE;
        c = &cp->cosig[cp->ncosig++];
        snprintf(c->node, sizeof c->node, "%s", peer);
    }
    uint8_t m[S_COSIGNED_MAX];
    size_t n = s_cosigned(cp, peer, m);
    crypto_sign_detached(c->sig, NULL, m, n, peer_sk);
    return GBX_OK;
}

gbx_err_t gbx_checkpoint_verify_cosig(const gbx_checkpoint_t *cp, const char *peer,
                                      const uint8_t peer_pk[GBX_KEY_BYTES])
{
    if (!cp || !peer || !peer_pk || !gbx_id_valid(peer) || !gbx_id_valid(cp->node))
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    const gbx_cosig_t *c = s_find_cosig(cp, peer);
    if (!c)
        return GBX_E_STATE;
    uint8_t m[S_COSIGNED_MAX];
    size_t n = s_cosigned(cp, peer, m);
    return crypto_sign_verify_detached(c->sig, m, n, peer_pk) == 0 ? GBX_OK : GBX_E_BAD_SIGNATURE;
}

/* ------------------------------------------------------------------- text */

void gbx_hex(const uint8_t *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

static int s_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is not the canonical form */
}

gbx_err_t gbx_unhex(const char *text, size_t text_len, uint8_t *out, size_t len)
{
    if (!text || !out || text_len != 2 * len)
        return GBX_E_MALFORMED;
    for (size_t i = 0; i < len; i++) {
        int hi = s_nibble(text[2 * i]), lo = s_nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return GBX_E_MALFORMED;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return GBX_OK;
}

gbx_err_t gbx_checkpoint_format(const gbx_checkpoint_t *cp, char *buf, size_t cap)
{
    if (!cp || !buf || cap < GBX_CHECKPOINT_TEXT_MAX || !gbx_id_valid(cp->node) ||
        cp->ncosig > GBX_CHECKPOINT_MAX_COSIG)
        return GBX_E_ARG;
    char root[2 * GBX_MERKLE_HASH + 1], chain[2 * GBX_MERKLE_HASH + 1];
    char sig[2 * GBX_CHECKPOINT_SIG_BYTES + 1];
    gbx_hex(cp->root, sizeof cp->root, root);
    gbx_hex(cp->chain, sizeof cp->chain, chain);
    gbx_hex(cp->sig, sizeof cp->sig, sig);
    int n = snprintf(buf, cap,
                     "gbx-checkpoint v1 node=%s size=%" PRIu64 " at_ms=%" PRIu64
                     " root=%s chain=%s sig=%s",
                     cp->node, cp->size, cp->at_ms, root, chain, sig);
    for (unsigned i = 0; n > 0 && (size_t)n < cap && i < cp->ncosig; i++) {
        if (!gbx_id_valid(cp->cosig[i].node))
            return GBX_E_ARG;
        gbx_hex(cp->cosig[i].sig, sizeof cp->cosig[i].sig, sig);
        n += snprintf(buf + n, cap - (size_t)n, " cosig=%s:%s", cp->cosig[i].node, sig);
    }
    return n > 0 && (size_t)n < cap ? GBX_OK : GBX_E_ARG;
}

/*  The next space-separated word of [*P, END) into *W, *WLEN. */
static int s_word(const char **p, const char *end, const char **w, size_t *wlen)
{
    while (*p < end && **p == ' ')
        (*p)++;
    if (*p >= end)
        return 0;
    *w = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    *wlen = (size_t)(*p - *w);
    return 1;
}

/*  If word W starts with KEY "=", its value. */
static const char *s_val(const char *w, size_t wlen, const char *key, size_t *vlen)
{
    size_t k = strlen(key);
    if (wlen <= k || memcmp(w, key, k) != 0 || w[k] != '=')
        return NULL;
    *vlen = wlen - k - 1;
    return w + k + 1;
}

static int s_u64(const char *v, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && v[0] == '0'))
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *out = x;
    return 1;
}

static int s_id(const char *v, size_t len, char *out)
{
    if (len == 0 || len > GBX_ID_MAX)
        return 0;
    memcpy(out, v, len);
    out[len] = '\0';
    return gbx_id_valid(out);
}

gbx_err_t gbx_checkpoint_parse(const char *text, size_t len, gbx_checkpoint_t *cp)
{
    if (!text || !cp)
        return GBX_E_ARG;
    memset(cp, 0, sizeof *cp);
    const char *p = text, *end = text + len;
    if (end > p && end[-1] == '\n')
        end--;
    for (const char *q = p; q < end; q++)
        if (*q == '\n' || *q == '\0' || *q == '\r' || *q == '\t')
            return GBX_E_MALFORMED;
    const char *w, *v;
    size_t wl, vl;
    static const char *const fixed[] = {"gbx-checkpoint", "v1"};
    for (size_t i = 0; i < 2; i++)
        if (!s_word(&p, end, &w, &wl) || wl != strlen(fixed[i]) || memcmp(w, fixed[i], wl) != 0)
            return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "node", &vl)) || !s_id(v, vl, cp->node))
        return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "size", &vl)) || !s_u64(v, vl, &cp->size))
        return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "at_ms", &vl)) || !s_u64(v, vl, &cp->at_ms))
        return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "root", &vl)) ||
        gbx_unhex(v, vl, cp->root, sizeof cp->root) != GBX_OK)
        return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "chain", &vl)) ||
        gbx_unhex(v, vl, cp->chain, sizeof cp->chain) != GBX_OK)
        return GBX_E_MALFORMED;
    if (!s_word(&p, end, &w, &wl) || !(v = s_val(w, wl, "sig", &vl)) ||
        gbx_unhex(v, vl, cp->sig, sizeof cp->sig) != GBX_OK)
        return GBX_E_MALFORMED;
    while (s_word(&p, end, &w, &wl)) {
        if (!(v = s_val(w, wl, "cosig", &vl)) || cp->ncosig >= GBX_CHECKPOINT_MAX_COSIG)
            return GBX_E_MALFORMED;
        const char *colon = memchr(v, ':', vl);
        gbx_cosig_t *c = &cp->cosig[cp->ncosig];
        if (!colon || !s_id(v, (size_t)(colon - v), c->node) ||
            gbx_unhex(colon + 1, vl - (size_t)(colon - v) - 1, c->sig, sizeof c->sig) != GBX_OK)
            return GBX_E_MALFORMED;
        for (unsigned i = 0; i < cp->ncosig; i++)
            if (strcmp(cp->cosig[i].node, c->node) == 0)
                return GBX_E_MALFORMED;
        cp->ncosig++;
    }
    return GBX_OK;
}
