/*  identity.c: owns an agency's key pairs and their files.
    Implements proto/spec/3-keys.md. */
#include "gbx/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_FILE_MAX 4096 /* a key file is a few hundred bytes */
#define S_B64_MAX  128

struct gbx_identity {
    gbx_pubid_t pub;
    uint8_t *secrets; /* sodium_malloc: sign_sk (64) || box_sk (32) || curve_sk (32) */
};

#define S_SIGN_SK(self)  ((self)->secrets)
#define S_BOX_SK(self)   ((self)->secrets + crypto_sign_SECRETKEYBYTES)
#define S_CURVE_SK(self) ((self)->secrets + crypto_sign_SECRETKEYBYTES + 32)
#define S_SECRETS_LEN    (crypto_sign_SECRETKEYBYTES + 32 + 32)

int gbx_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > GBX_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static gbx_err_t s_alloc(const char *id, gbx_identity_t **out)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    if (!gbx_id_valid(id))
        return GBX_E_ARG;
    gbx_identity_t *self = calloc(1, sizeof *self);
    if (!self)
        return GBX_E_NOMEM;
    self->secrets = sodium_malloc(S_SECRETS_LEN);
    if (!self->secrets) {
        free(self);
        return GBX_E_NOMEM;
    }
    snprintf(self->pub.id, sizeof self->pub.id, "%s", id);
    *out = self;
    return GBX_OK;
}

gbx_err_t gbx_identity_generate(const char *id, gbx_identity_t **out)
{
    gbx_identity_t *self = NULL;
    gbx_err_t rc = s_alloc(id, &self);
    if (rc != GBX_OK)
        return rc;
    crypto_sign_keypair(self->pub.sign_pk, S_SIGN_SK(self));
    crypto_box_keypair(self->pub.box_pk, S_BOX_SK(self));
    crypto_box_keypair(self->pub.curve_pk, S_CURVE_SK(self));
    *out = self;
    return GBX_OK;
}

void gbx_identity_destroy(gbx_identity_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sodium_free((*self_p)->secrets); /* wipes */
    free(*self_p);
    *self_p = NULL;
}

const gbx_pubid_t *gbx_identity_public(const gbx_identity_t *self)
{
    return &self->pub;
}
const uint8_t *gbx_identity_sign_sk(const gbx_identity_t *self)
{
    return S_SIGN_SK(self);
}
const uint8_t *gbx_identity_box_sk(const gbx_identity_t *self)
{
    return S_BOX_SK(self);
}
const uint8_t *gbx_identity_curve_sk(const gbx_identity_t *self)
{
    return S_CURVE_SK(self);
}

void gbx_pubid_key_id(const gbx_pubid_t *self, uint8_t out[GBX_KEY_ID_BYTES])
{
    static const char ctx[] = "gbx1-key-id"; /* with its NUL */
    uint8_t h[32];                           /* BLAKE2b-256, then the first 8 bytes */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx);
    crypto_generichash_update(&st, self->sign_pk, GBX_KEY_BYTES);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, GBX_KEY_ID_BYTES);
}

void gbx_pubid_fingerprint(const gbx_pubid_t *self, char out[GBX_FINGERPRINT_LEN])
{
    static const char ctx[] = "gbx1-fingerprint";
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx);
    crypto_generichash_update(&st, self->sign_pk, GBX_KEY_BYTES);
    crypto_generichash_update(&st, self->box_pk, GBX_KEY_BYTES);
    crypto_generichash_update(&st, self->curve_pk, GBX_KEY_BYTES);
    crypto_generichash_final(&st, h, sizeof h);
    snprintf(out, GBX_FINGERPRINT_LEN, "%02x%02x-%02x%02x-%02x%02x-%02x%02x", h[0], h[1], h[2],
             h[3], h[4], h[5], h[6], h[7]);
}

static void s_b64(const uint8_t *bin, size_t len, char out[S_B64_MAX])
{
    sodium_bin2base64(out, S_B64_MAX, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

gbx_err_t gbx_pubid_format(const gbx_pubid_t *self, char **text_out)
{
    char sign[S_B64_MAX], box[S_B64_MAX], curve[S_B64_MAX], fp[GBX_FINGERPRINT_LEN];
    s_b64(self->sign_pk, GBX_KEY_BYTES, sign);
    s_b64(self->box_pk, GBX_KEY_BYTES, box);
    s_b64(self->curve_pk, GBX_KEY_BYTES, curve);
    gbx_pubid_fingerprint(self, fp);
    char *text = NULL;
    int n = asprintf(&text,
                     "# gbx public identity v1: give this to the registry\n"
                     "id: %s\nsign: \"%s\"\nbox: \"%s\"\ncurve: \"%s\"\nfingerprint: \"%s\"\n",
                     self->id, sign, box, curve, fp);
    if (n < 0)
        return GBX_E_NOMEM;
    *text_out = text;
    return GBX_OK;
}

/*  Writes TEXT to a new temporary file in DIR with MODE, synced; sets
    *tmp_out (caller frees, and unlinks unless it was committed). The file is
    created fresh (O_EXCL), so nothing that stood at a path before, such as a
    planted symlink, ever receives key bytes. */
static gbx_err_t s_stage(const char *dir, const char *text, mode_t mode, char **tmp_out)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s/.gbx-key-XXXXXX", dir) < 0)
        return GBX_E_NOMEM;
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        free(tmp);
        return GBX_E_IO;
    }
    gbx_err_t rc = fchmod(fd, mode) == 0 ? GBX_OK : GBX_E_IO;
    size_t len = strlen(text), done = 0;
    while (rc == GBX_OK && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = GBX_E_IO;
        else
            done += (size_t)w;
    }
    if (rc == GBX_OK && fsync(fd) != 0)
        rc = GBX_E_IO;
    if (close(fd) != 0 && rc == GBX_OK)
        rc = GBX_E_IO;
    if (rc != GBX_OK) {
        int saved = errno;
        unlink(tmp);
        free(tmp);
        errno = saved;
        return rc;
    }
    *tmp_out = tmp;
    return GBX_OK;
}

/*  Moves staged TMP to PATH: replacing what is there with OVERWRITE (rename
    replaces a symlink itself, never its target), else failing with EEXIST
    if anything is there (link is atomic). */
static gbx_err_t s_commit(const char *tmp, const char *path, int overwrite)
{
    if (overwrite)
        return rename(tmp, path) == 0 ? GBX_OK : GBX_E_IO;
    if (link(tmp, path) != 0)
        return GBX_E_IO;
    unlink(tmp);
    return GBX_OK;
}

static void s_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: the files themselves are synced */
        close(fd);
    }
}

gbx_err_t gbx_identity_save(const gbx_identity_t *self, const char *dir, int overwrite)
{
    gbx_err_t rc = GBX_E_NOMEM;
    char *path = NULL, *pub_path = NULL, *pub_text = NULL, *tmp = NULL, *pub_tmp = NULL;
    /* The secret text is built in guarded memory and wiped afterwards. */
    const size_t cap = 1024;
    char *text = sodium_malloc(cap);
    if (!text)
        goto out;
    char sign[S_B64_MAX], box[S_B64_MAX], curve[S_B64_MAX];
    s_b64(S_SIGN_SK(self), crypto_sign_SECRETKEYBYTES, sign);
    s_b64(S_BOX_SK(self), 32, box);
    s_b64(S_CURVE_SK(self), 32, curve);
    int n = snprintf(text, cap,
                     "# gbx secret identity v1: keep private (mode 0600)\n"
                     "id: %s\nsign_secret: \"%s\"\nbox_secret: \"%s\"\ncurve_secret: \"%s\"\n",
                     self->pub.id, sign, box, curve);
    sodium_memzero(sign, sizeof sign);
    sodium_memzero(box, sizeof box);
    sodium_memzero(curve, sizeof curve);
    if (n < 0 || (size_t)n >= cap)
        goto out;
    if (asprintf(&path, "%s/%s.secret", dir, self->pub.id) < 0) {
        path = NULL; /* undefined after a failed asprintf */
        goto out;
    }
    if (asprintf(&pub_path, "%s/%s.pub", dir, self->pub.id) < 0) {
        pub_path = NULL;
        goto out;
    }
    if ((rc = gbx_pubid_format(&self->pub, &pub_text)) != GBX_OK)
        goto out;
    /* Overwriting replaces files and symlinks, never anything else: checked
       before anything changes, so the renames below cannot fail half-way on
       a directory standing at one of the names. */
    rc = GBX_E_IO;
    struct stat st;
    if (overwrite && ((lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) ||
                      (lstat(pub_path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)))) {
        errno = EISDIR;
        goto out;
    }
    /* Both files are written in full before either takes its name. */
    if ((rc = s_stage(dir, text, 0600, &tmp)) != GBX_OK ||
        (rc = s_stage(dir, pub_text, 0644, &pub_tmp)) != GBX_OK)
        goto out;
    if ((rc = s_commit(tmp, path, overwrite)) != GBX_OK)
        goto out;
    free(tmp);
    tmp = NULL;
    if ((rc = s_commit(pub_tmp, pub_path, overwrite)) != GBX_OK) {
        /* Never leave a new secret beside another key's .pub: remove the
           secret this call created (with OVERWRITE it replaced one, and the
           checks above leave only an i/o error to get here). */
        int saved = errno;
        unlink(path);
        errno = saved;
        goto out;
    }
    free(pub_tmp);
    pub_tmp = NULL;
    s_sync_dir(dir);
out:
    if (tmp || pub_tmp) {
        int saved = errno;
        if (tmp)
            unlink(tmp);
        if (pub_tmp)
            unlink(pub_tmp);
        errno = saved;
    }
    sodium_free(text);
    free(path);
    free(pub_path);
    free(pub_text);
    free(tmp);
    free(pub_tmp);
    return rc;
}

/*  Reads PATH into a sodium_malloc'ed, NUL-terminated buffer. With SECRET,
    refuses a symlink, a file that group or others may use, and a file owned
    by another user (who could swap in keys of their own). */
static gbx_err_t s_read_file(const char *path, int secret, char **buf_out, size_t *len_out)
{
    gbx_err_t rc = GBX_OK;
    char *buf = NULL;
    /* O_NONBLOCK: a FIFO planted at PATH must not hang the caller. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (secret ? O_NOFOLLOW : 0));
    if (fd < 0)
        return errno == ELOOP ? GBX_E_KEY_PERMS : GBX_E_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = GBX_E_IO;
        goto out;
    }
    if (secret && ((st.st_mode & (S_IRWXG | S_IRWXO)) || st.st_uid != geteuid())) {
        rc = GBX_E_KEY_PERMS;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > S_FILE_MAX) {
        rc = GBX_E_KEY_FORMAT;
        goto out;
    }
    buf = sodium_malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = GBX_E_IO;
            goto out;
        }
        done += (size_t)r;
    }
    buf[done] = '\0';
    *buf_out = buf;
    *len_out = done;
    buf = NULL;
out:
    sodium_free(buf);
    close(fd);
    return rc;
}

/*  Decodes base64 scalar KEY of mapping ROOT into exactly LEN bytes. */
static int s_get_b64(struct fy_node *root, const char *key, uint8_t *out, size_t len)
{
    size_t slen = 0, bin_len = 0;
    const char *s = fy_node_mapping_lookup_scalar_by_simple_key(root, &slen, key, (size_t)-1);
    if (!s)
        return -1;
    if (sodium_base642bin(out, len, s, slen, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return bin_len == len ? 0 : -1;
}

static void s_diag_drop(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/*  Parses the (public) file at PATH as a YAML mapping; on success *doc_out. */
static gbx_err_t s_parse(const char *path, struct fy_document **doc_out, char **buf_out)
{
    char *buf = NULL;
    size_t len = 0;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    gbx_err_t rc = s_read_file(path, 0, &buf, &len);
    if (rc != GBX_OK)
        return rc;
    /* libfyaml prints parse errors even when quiet; a library stays silent,
       so its diagnostics go to an output function that drops them. The
       document holds its own reference to the diag. */
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = s_diag_drop;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = diag ? fy_document_build_from_string(&cfg, buf, len) : NULL;
    fy_diag_destroy(diag);
    if (!doc || !fy_document_root(doc) || fy_node_get_type(fy_document_root(doc)) != FYNT_MAPPING) {
        fy_document_destroy(doc);
        sodium_free(buf);
        return GBX_E_KEY_FORMAT;
    }
    *doc_out = doc;
    *buf_out = buf;
    return GBX_OK;
}

static gbx_err_t s_get_id(struct fy_node *root, char out[GBX_ID_MAX + 1])
{
    const char *id = fy_node_mapping_lookup_scalar0_by_simple_key(root, "id", (size_t)-1);
    if (!id || !gbx_id_valid(id))
        return GBX_E_KEY_FORMAT;
    snprintf(out, GBX_ID_MAX + 1, "%s", id);
    return GBX_OK;
}

/*  The .secret file is parsed in place, inside guarded memory: a general
    YAML parser copies scalars into its own heap, out of reach of
    sodium_memzero. The format is the YAML subset gbx-keygen writes (spec
    3-keys.md section 3): one `key: value` per line, the value plain or in
    double quotes without escapes; blank lines and '#' comments. */
enum { S_F_ID, S_F_SIGN, S_F_BOX, S_F_CURVE, S_F_COUNT };
static const char *const s_secret_keys[S_F_COUNT] = {"id", "sign_secret", "box_secret",
                                                     "curve_secret"};

typedef struct {
    const char *val;
    size_t len;
} s_field_t;

static int s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static gbx_err_t s_secret_fields(const char *buf, size_t len, s_field_t f[S_F_COUNT])
{
    memset(f, 0, S_F_COUNT * sizeof *f);
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *a = p, *b = eol;
        p = eol + 1;
        while (a < b && s_is_space(*a))
            a++;
        while (b > a && s_is_space(b[-1]))
            b--;
        if (a == b || *a == '#')
            continue;
        const char *colon = memchr(a, ':', (size_t)(b - a));
        if (!colon)
            return GBX_E_KEY_FORMAT;
        const char *v = colon + 1;
        while (v < b && s_is_space(*v))
            v++;
        if (v < b && *v == '"') {
            if (b - v < 2 || b[-1] != '"' || memchr(v + 1, '\\', (size_t)(b - v - 2)) ||
                memchr(v + 1, '"', (size_t)(b - v - 2)))
                return GBX_E_KEY_FORMAT;
            v++, b--;
        }
        int which = -1;
        for (int i = 0; i < S_F_COUNT; i++)
            if ((size_t)(colon - a) == strlen(s_secret_keys[i]) &&
                memcmp(a, s_secret_keys[i], (size_t)(colon - a)) == 0)
                which = i;
        if (which < 0 || f[which].val) /* unknown or repeated key */
            return GBX_E_KEY_FORMAT;
        f[which].val = v;
        f[which].len = (size_t)(b - v);
    }
    for (int i = 0; i < S_F_COUNT; i++)
        if (!f[i].val)
            return GBX_E_KEY_FORMAT;
    return GBX_OK;
}

static int s_b64_exact(const s_field_t *f, uint8_t *out, size_t len)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, len, f->val, f->len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return bin_len == len && end == f->val + f->len ? 0 : -1;
}

gbx_err_t gbx_identity_load(const char *secret_path, gbx_identity_t **out)
{
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    char *buf = NULL;
    size_t len = 0;
    gbx_identity_t *self = NULL;
    gbx_err_t rc = s_read_file(secret_path, 1, &buf, &len);
    if (rc != GBX_OK)
        return rc;
    s_field_t f[S_F_COUNT];
    char id[GBX_ID_MAX + 1];
    if ((rc = s_secret_fields(buf, len, f)) != GBX_OK)
        goto out;
    rc = GBX_E_KEY_FORMAT;
    if (f[S_F_ID].len > GBX_ID_MAX)
        goto out;
    memcpy(id, f[S_F_ID].val, f[S_F_ID].len);
    id[f[S_F_ID].len] = '\0';
    if ((rc = s_alloc(id, &self)) != GBX_OK) {
        rc = rc == GBX_E_ARG ? GBX_E_KEY_FORMAT : rc;
        goto out;
    }
    rc = GBX_E_KEY_FORMAT;
    if (s_b64_exact(&f[S_F_SIGN], S_SIGN_SK(self), crypto_sign_SECRETKEYBYTES) != 0 ||
        s_b64_exact(&f[S_F_BOX], S_BOX_SK(self), 32) != 0 ||
        s_b64_exact(&f[S_F_CURVE], S_CURVE_SK(self), 32) != 0)
        goto out;
    /* Derive the public keys; check the Ed25519 key's embedded public half. */
    uint8_t seed[crypto_sign_SEEDBYTES], sk_check[crypto_sign_SECRETKEYBYTES];
    crypto_sign_ed25519_sk_to_seed(seed, S_SIGN_SK(self));
    crypto_sign_seed_keypair(self->pub.sign_pk, sk_check, seed);
    int same = sodium_memcmp(sk_check, S_SIGN_SK(self), sizeof sk_check) == 0;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk_check, sizeof sk_check);
    if (!same)
        goto out;
    crypto_scalarmult_base(self->pub.box_pk, S_BOX_SK(self));
    crypto_scalarmult_base(self->pub.curve_pk, S_CURVE_SK(self));
    *out = self;
    self = NULL;
    rc = GBX_OK;
out:
    gbx_identity_destroy(&self);
    sodium_free(buf); /* wipes the secret text */
    return rc;
}

gbx_err_t gbx_pubid_load(const char *pub_path, gbx_pubid_t *out)
{
    struct fy_document *doc = NULL;
    char *buf = NULL;
    gbx_err_t rc = s_parse(pub_path, &doc, &buf);
    if (rc != GBX_OK)
        return rc;
    struct fy_node *root = fy_document_root(doc);
    gbx_pubid_t p;
    memset(&p, 0, sizeof p);
    rc = s_get_id(root, p.id);
    if (rc == GBX_OK && (s_get_b64(root, "sign", p.sign_pk, GBX_KEY_BYTES) != 0 ||
                         s_get_b64(root, "box", p.box_pk, GBX_KEY_BYTES) != 0 ||
                         s_get_b64(root, "curve", p.curve_pk, GBX_KEY_BYTES) != 0))
        rc = GBX_E_KEY_FORMAT;
    /* A fingerprint, when present, must match the keys: it catches a pasted
       key that lost a character. */
    const char *fp = fy_node_mapping_lookup_scalar0_by_simple_key(root, "fingerprint", (size_t)-1);
    if (rc == GBX_OK && fp) {
        char want[GBX_FINGERPRINT_LEN];
        gbx_pubid_fingerprint(&p, want);
        if (strcmp(fp, want) != 0)
            rc = GBX_E_KEY_FORMAT;
    }
    if (rc == GBX_OK)
        *out = p;
    fy_document_destroy(doc);
    sodium_free(buf);
    return rc;
}
