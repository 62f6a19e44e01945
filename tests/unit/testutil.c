/*  testutil.c: helpers shared by the unit tests and gen-vectors (testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <ftw.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_die(const char *what)
{
    fprintf(stderr, "testutil: %s: %s\n", what, strerror(errno));
    abort();
}

/* ------------------------------------------------------------ seeded RNG */

uint64_t tu_seed(const char *what, uint64_t default_seed)
{
    uint64_t seed = default_seed;
    const char *env = getenv("GBX_TEST_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0);
    fprintf(stderr, "# %s: seed %llu (set GBX_TEST_SEED to change)\n", what,
            (unsigned long long)seed);
    return seed;
}

void tu_rng_init(tu_rng_t *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t tu_rng_next(tu_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tu_rng_below(tu_rng_t *r, uint64_t n)
{
    return tu_rng_next(r) % n; /* bias is irrelevant here */
}

void tu_rng_bytes(tu_rng_t *r, uint8_t *out, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t x = tu_rng_next(r);
        for (int k = 0; k < 8 && i < n; k++, x >>= 8)
            out[i++] = (uint8_t)x;
    }
}

/* ------------------------------------------------------------------- hex */

char *tu_hex(const uint8_t *bin, size_t len)
{
    char *out = malloc(2 * len + 1);
    if (!out)
        s_die("malloc");
    sodium_bin2hex(out, 2 * len + 1, bin, len);
    return out;
}

uint8_t *tu_unhex(const char *text, size_t *len)
{
    size_t n = strlen(text);
    if (n % 2)
        return NULL;
    uint8_t *out = malloc(n / 2 + 1);
    if (!out)
        s_die("malloc");
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_hex2bin(out, n / 2 + 1, text, n, NULL, &bin_len, &end) != 0 || bin_len != n / 2) {
        free(out);
        return NULL;
    }
    *len = bin_len;
    return out;
}

/* ----------------------------------------------------------------- files */

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/gbx-unit-XXXXXX", base && *base ? base : "/tmp") < 0)
        s_die("asprintf");
    if (!mkdtemp(path))
        s_die("mkdtemp");
    return path;
}

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tu_rmtree_path(const char *dir)
{
    if (dir && *dir)
        nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_rmtree(char **dir_p)
{
    if (!dir_p || !*dir_p)
        return;
    tu_rmtree_path(*dir_p);
    free(*dir_p);
    *dir_p = NULL;
}

void tu_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int tu_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int tu_policy_open(const char *home)
{
    static const char text[] = "version: tests-open\n"
                               "rules:\n"
                               "  - {id: " TU_POLICY_OPEN_RULE ", outcome: ALLOW}\n";
    char path[4096];
    if (snprintf(path, sizeof path, "%s/policy.yaml", home) >= (int)sizeof path)
        return -1;
    return tu_write_file(path, text, sizeof text - 1, 0644);
}

void tu_test_service(const char *id, char out[80])
{
    size_t n = (size_t)snprintf(out, 80, "TEST-");
    for (const char *p = id; *p && n + 1 < 80; p++)
        out[n++] = *p == '.' ? '-' : (char)toupper((unsigned char)*p);
    out[n] = 0;
}

int tu_config_test_services(const char *cfg, const char *const *ids, size_t n)
{
    FILE *f = fopen(cfg, "a");
    if (!f)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char code[80];
        tu_test_service(ids[i], code);
        fprintf(f, "    - {code: %s, version: 1, class: PUBLIC, provider: %s}\n", code, ids[i]);
    }
    return fclose(f) == 0 ? 0 : -1;
}

int tu_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, mode);
    const uint8_t *p = data;
    while (rc == 0 && len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else {
            p += w;
            len -= (size_t)w;
        }
    }
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        s_die("malloc");
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                s_die("realloc");
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tu_copy_file(const char *src, const char *dst, mode_t mode)
{
    size_t n = 0;
    uint8_t *buf = tu_read_file(src, &n);
    if (!buf)
        return -1;
    int rc = tu_write_file(dst, buf, n, mode);
    free(buf);
    return rc;
}

/* ------------------------------------------------- deterministic identities */

void tu_seed32(const char *label, uint8_t out[32])
{
    crypto_generichash(out, 32, (const uint8_t *)label, strlen(label), NULL, 0);
}

void tu_fixed_keys(const char *id, uint8_t sign_seed[32], uint8_t box_sk[32], uint8_t curve_sk[32])
{
    char label[160];
    snprintf(label, sizeof label, "gbx1-kat/%s/sign", id);
    tu_seed32(label, sign_seed);
    snprintf(label, sizeof label, "gbx1-kat/%s/box", id);
    tu_seed32(label, box_sk);
    snprintf(label, sizeof label, "gbx1-kat/%s/curve", id);
    tu_seed32(label, curve_sk);
}

int tu_write_secret(const char *dir, const char *id, const uint8_t sign_seed[32],
                    const uint8_t box_sk[32], const uint8_t curve_sk[32])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, sign_seed);
    char sign[128], box[128], curve[128];
    sodium_bin2base64(sign, sizeof sign, sk, sizeof sk, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(box, sizeof box, box_sk, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(curve, sizeof curve, curve_sk, 32, sodium_base64_VARIANT_ORIGINAL);
    char *text = NULL, *path = NULL;
    int rc = -1;
    if (asprintf(&text,
                 "# gbx secret identity v1: keep private (mode 0600)\n"
                 "id: %s\nsign_secret: \"%s\"\nbox_secret: \"%s\"\ncurve_secret: \"%s\"\n",
                 id, sign, box, curve) < 0)
        text = NULL;
    else if (asprintf(&path, "%s/%s.secret", dir, id) < 0)
        path = NULL;
    else
        rc = tu_write_file(path, text, strlen(text), 0600);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(sign, sizeof sign);
    if (text)
        sodium_memzero(text, strlen(text));
    free(text);
    free(path);
    return rc;
}

gbx_identity_t *tu_identity_fixed(const char *id, const char *label)
{
    char key_label[160];
    snprintf(key_label, sizeof key_label, "%s%s%s", id, label ? "#" : "", label ? label : "");
    uint8_t sign_seed[32], box_sk[32], curve_sk[32];
    tu_fixed_keys(key_label, sign_seed, box_sk, curve_sk);
    char *dir = tu_tmpdir(), *path = NULL;
    gbx_identity_t *self = NULL;
    if (tu_write_secret(dir, id, sign_seed, box_sk, curve_sk) != 0)
        s_die("tu_write_secret");
    if (asprintf(&path, "%s/%s.secret", dir, id) < 0)
        s_die("asprintf");
    gbx_err_t rc = gbx_identity_load(path, &self);
    if (rc != GBX_OK) {
        fprintf(stderr, "testutil: gbx_identity_load(%s): %s\n", path, gbx_err_name(rc));
        abort();
    }
    free(path);
    tu_rmtree(&dir);
    return self;
}

/* ------------------------------------------------------------ header fixture */

void tu_header_fixture(tu_header_t *t, uint32_t variant)
{
    memset(t, 0, sizeof *t);
    gbx_header_t *h = &t->h;
    gbx_header_init(h);
    for (unsigned i = 0; i < GBX_MSG_ID_BYTES; i++) {
        t->message_id[i] = (uint8_t)(0x10 + i);
        t->correlation_id[i] = (uint8_t)(0xc0 + i);
    }
    t->message_id[GBX_MSG_ID_BYTES - 4] = (uint8_t)(variant >> 24);
    t->message_id[GBX_MSG_ID_BYTES - 3] = (uint8_t)(variant >> 16);
    t->message_id[GBX_MSG_ID_BYTES - 2] = (uint8_t)(variant >> 8);
    t->message_id[GBX_MSG_ID_BYTES - 1] = (uint8_t)variant;
    for (unsigned i = 0; i < GBX_HASH_BYTES; i++)
        t->payload_hash[i] = (uint8_t)(0xa0 ^ i);
    h->message_id.data = t->message_id;
    h->message_id.len = GBX_MSG_ID_BYTES;
    h->from_agency = "gd.qh-amr";
    h->to_agency = "hk.cr";
    h->service_code = "HK-CR-COEXTRACT";
    h->service_version = 1;
    h->kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h->data_class = GBX__V1__DATA_CLASS__PERSONAL;
    h->hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = "MARKET-SUPERVISION";
    h->case_ref = "QH-2026-09-0042";
    h->end_user_ref = "officer:qh-amr:7731";
    h->legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h->legal_route_ref = "GBA-SC-2025-000318";
    h->consent_ref = "CONSENT-2026-0001";
    h->consent_type = GBX__V1__CONSENT_TYPE__CONSENT;
    h->subject_count = 1;
    h->created_at_ms = 1790000000000ull;
    h->expires_at_ms = 1790000000000ull + 24ull * 3600 * 1000;
    h->payload_length = 1024;
    h->payload_hash.data = t->payload_hash;
    h->payload_hash.len = GBX_HASH_BYTES;
    h->impact_assessment_ref = "PIA-QH-2025-17";
    h->release_authority_ref = "";
    h->agreement_ref = "GBA-DX-2025-07";
}

/* -------------------------------------------------------------- envelopes */

uint8_t *tu_pack(const gbx_envelope_t *e, size_t *len)
{
    size_t n = gbx_envelope_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        s_die("malloc");
    *len = gbx_envelope_pack(e, buf);
    return buf;
}

uint8_t *tu_pack_msg(const Gbx__V1__Envelope *m, size_t *len)
{
    size_t n = gbx__v1__envelope__get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        s_die("malloc");
    *len = gbx__v1__envelope__pack(m, buf);
    return buf;
}

uint8_t *tu_envelope_by_hand(const gbx_identity_t *signer, const uint8_t *hdr, size_t hdr_len,
                             uint32_t version, uint32_t suite, size_t *len)
{
    static const char ctx[] = "gbx1-header";
    uint8_t *msg = malloc(sizeof ctx + hdr_len);
    if (!msg)
        s_die("malloc");
    memcpy(msg, ctx, sizeof ctx);
    memcpy(msg + sizeof ctx, hdr, hdr_len);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, msg, sizeof ctx + hdr_len, gbx_identity_sign_sk(signer));
    free(msg);
    Gbx__V1__Envelope m = GBX__V1__ENVELOPE__INIT;
    m.version = version;
    m.suite = suite;
    m.header.data = (uint8_t *)hdr;
    m.header.len = hdr_len;
    m.signature.data = sig;
    m.signature.len = sizeof sig;
    return tu_pack_msg(&m, len);
}

gbx_err_t tu_decode_verify(const uint8_t *buf, size_t len, const gbx_pubid_t *signer,
                           gbx_vcache_t *cache)
{
    gbx_envelope_t *e = NULL;
    gbx_err_t rc = gbx_envelope_decode(buf, len, &e);
    if (rc == GBX_OK)
        rc = gbx_envelope_verify(e, signer, cache);
    gbx_envelope_destroy(&e);
    return rc;
}

/* ---------------------------------------------------------------- vectors */

typedef struct {
    char *name;
    char *value;
} s_pair_t;

struct tu_vectors {
    s_pair_t *pairs;
    size_t n;
};

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

tu_vectors_t *tu_vectors_load(const char *path)
{
    char *text = (char *)tu_read_file(path, NULL);
    if (!text)
        return NULL;
    tu_vectors_t *v = calloc(1, sizeof *v);
    if (!v)
        s_die("calloc");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *l = s_trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        v->pairs = realloc(v->pairs, (v->n + 1) * sizeof *v->pairs);
        if (!v->pairs)
            s_die("realloc");
        v->pairs[v->n].name = strdup(s_trim(l));
        v->pairs[v->n].value = strdup(s_trim(eq + 1));
        v->n++;
    }
    free(text);
    return v;
}

void tu_vectors_free(tu_vectors_t **v_p)
{
    if (!v_p || !*v_p)
        return;
    for (size_t i = 0; i < (*v_p)->n; i++) {
        free((*v_p)->pairs[i].name);
        free((*v_p)->pairs[i].value);
    }
    free((*v_p)->pairs);
    free(*v_p);
    *v_p = NULL;
}

const char *tu_vec_str(const tu_vectors_t *v, const char *name)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (strcmp(v->pairs[i].name, name) == 0)
            return v->pairs[i].value;
    return NULL;
}

uint8_t *tu_vec_hex(const tu_vectors_t *v, const char *name, size_t *len)
{
    const char *s = tu_vec_str(v, name);
    return s ? tu_unhex(s, len) : NULL;
}

uint64_t tu_vec_u64(const tu_vectors_t *v, const char *name, int *ok)
{
    const char *s = tu_vec_str(v, name);
    *ok = 0;
    if (!s || !*s)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return 0;
    *ok = 1;
    return x;
}
