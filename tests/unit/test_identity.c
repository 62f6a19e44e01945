/*  test_identity: key generation, key files and ids (include/gbx/identity.h).

    Cases:
      generate_save_load     save writes .secret 0600 and .pub 0644; loading gives the
                             same keys; gbx_pubid_load of the .pub gives the same pubid
      secret_perms           s_perm_cases: a .secret that group or others may touch is
                             refused with KEY_PERMS, owner-only modes load
      secret_format          s_format_cases: broken .secret files give KEY_FORMAT
      pub_format             s_pub_cases: broken .pub files give KEY_FORMAT
      ids                    s_id_cases: gbx_id_valid, and generate refuses bad ids (ARG)
      save_no_overwrite      save does not replace keys unless told to
      save_failure_clean     a save that fails (the .pub exists) leaves no new .secret
                             beside a .pub of other keys
      missing_file           a file that is not there is GBX_E_IO
      silent                 loading broken key files prints nothing (CONVENTIONS.md: the
                             library is silent unless given a logger)
      vector_identity        the stored vector identity's key id and fingerprint are
                             those in tests/vectors/gbx1-vectors.txt */
#include "tu_cmocka.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_VECTORS GBX_VECTORS_DIR "/gbx1-vectors.txt"

typedef struct {
    char *dir;
    gbx_identity_t *ident;
    char sign_b64[128], box_b64[128], curve_b64[128];
    char secret_path[512], pub_path[512];
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_tmpdir();
    if (gbx_identity_generate("gd.qh-amr", &f->ident) != GBX_OK)
        return -1;
    sodium_bin2base64(f->sign_b64, sizeof f->sign_b64, gbx_identity_sign_sk(f->ident), 64,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(f->box_b64, sizeof f->box_b64, gbx_identity_box_sk(f->ident), 32,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(f->curve_b64, sizeof f->curve_b64, gbx_identity_curve_sk(f->ident), 32,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(f->secret_path, sizeof f->secret_path, "%s/case.secret", f->dir);
    snprintf(f->pub_path, sizeof f->pub_path, "%s/case.pub", f->dir);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->ident);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

static void s_assert_same_pub(const gbx_pubid_t *a, const gbx_pubid_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_memory_equal(a->sign_pk, b->sign_pk, GBX_KEY_BYTES);
    assert_memory_equal(a->box_pk, b->box_pk, GBX_KEY_BYTES);
    assert_memory_equal(a->curve_pk, b->curve_pk, GBX_KEY_BYTES);
}

static mode_t s_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s failed", path);
    return st.st_mode & 07777;
}

static void test_generate_save_load(void **state)
{
    s_fix_t *f = *state;
    char *dir = tu_tmpdir();
    assert_rc(gbx_identity_save(f->ident, dir, 0), GBX_OK);
    char sp[512], pp[512];
    snprintf(sp, sizeof sp, "%s/gd.qh-amr.secret", dir);
    snprintf(pp, sizeof pp, "%s/gd.qh-amr.pub", dir);
    assert_int_equal(s_mode(sp), 0600);
    assert_int_equal(s_mode(pp), 0644);

    gbx_identity_t *loaded = NULL;
    assert_rc(gbx_identity_load(sp, &loaded), GBX_OK);
    s_assert_same_pub(gbx_identity_public(loaded), gbx_identity_public(f->ident));
    assert_memory_equal(gbx_identity_sign_sk(loaded), gbx_identity_sign_sk(f->ident), 64);
    assert_memory_equal(gbx_identity_box_sk(loaded), gbx_identity_box_sk(f->ident), 32);
    assert_memory_equal(gbx_identity_curve_sk(loaded), gbx_identity_curve_sk(f->ident), 32);

    gbx_pubid_t pub;
    memset(&pub, 0xee, sizeof pub);
    assert_rc(gbx_pubid_load(pp, &pub), GBX_OK);
    s_assert_same_pub(&pub, gbx_identity_public(f->ident));

    /* The .pub file is gbx_pubid_format's text. */
    char *text = NULL;
    assert_rc(gbx_pubid_format(&pub, &text), GBX_OK);
    size_t n = 0;
    uint8_t *file = tu_read_file(pp, &n);
    assert_non_null(file);
    assert_string_equal((char *)file, text);
    free(file);
    free(text);

    /* The keys work: the box key pair is a pair, the sign key signs. */
    uint8_t pk[32], sig[64];
    crypto_scalarmult_base(pk, gbx_identity_box_sk(loaded));
    assert_memory_equal(pk, pub.box_pk, 32);
    crypto_scalarmult_base(pk, gbx_identity_curve_sk(loaded));
    assert_memory_equal(pk, pub.curve_pk, 32);
    crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, gbx_identity_sign_sk(loaded));
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"x", 1, pub.sign_pk), 0);
    /* Three distinct keys. */
    assert_memory_not_equal(pub.box_pk, pub.curve_pk, 32);

    gbx_identity_destroy(&loaded);
    assert_null(loaded);
    gbx_identity_destroy(&loaded); /* NULL-safe */
    tu_rmtree(&dir);
}

/* ------------------------------------------------------------ permissions */

static const struct {
    mode_t mode;
    gbx_err_t want;
} s_perm_cases[] = {
    {0600, GBX_OK},          {0400, GBX_OK},          {0700, GBX_OK},
    {0640, GBX_E_KEY_PERMS}, {0604, GBX_E_KEY_PERMS}, {0644, GBX_E_KEY_PERMS},
    {0660, GBX_E_KEY_PERMS}, {0606, GBX_E_KEY_PERMS}, {0610, GBX_E_KEY_PERMS},
    {0601, GBX_E_KEY_PERMS}, {0620, GBX_E_KEY_PERMS}, {0602, GBX_E_KEY_PERMS},
    {0666, GBX_E_KEY_PERMS}, {0777, GBX_E_KEY_PERMS},
};

static void test_secret_perms(void **state)
{
    s_fix_t *f = *state;
    char *dir = tu_tmpdir();
    assert_rc(gbx_identity_save(f->ident, dir, 0), GBX_OK);
    char sp[512];
    snprintf(sp, sizeof sp, "%s/gd.qh-amr.secret", dir);
    for (size_t i = 0; i < sizeof s_perm_cases / sizeof s_perm_cases[0]; i++) {
        assert_int_equal(chmod(sp, s_perm_cases[i].mode), 0);
        gbx_identity_t *id = NULL;
        char name[32];
        snprintf(name, sizeof name, "mode %04o", (unsigned)s_perm_cases[i].mode);
        assert_case_rc(name, gbx_identity_load(sp, &id), s_perm_cases[i].want);
        if (s_perm_cases[i].want == GBX_OK)
            s_assert_same_pub(gbx_identity_public(id), gbx_identity_public(f->ident));
        else
            assert_null(id);
        gbx_identity_destroy(&id);
    }
    tu_rmtree(&dir);
}

/* ------------------------------------------------------------ file format */

typedef enum { S_VALID, S_FLIP, S_CHOP, S_OMIT, S_REPLACE } s_edit_t;

/*  One broken .secret: which key to edit and how. */
static const struct {
    const char *name;
    const char *key; /* "id", "sign_secret", "box_secret", "curve_secret" or NULL */
    s_edit_t edit;
    int arg;             /* S_FLIP: decoded byte index to flip; S_CHOP: chars to drop */
    const char *replace; /* S_REPLACE: the new value, or the whole file when key is NULL */
    gbx_err_t want;
} s_format_cases[] = {
    {"valid file", NULL, S_VALID, 0, NULL, GBX_OK},
    {"sign_secret: public half inconsistent", "sign_secret", S_FLIP, 40, NULL, GBX_E_KEY_FORMAT},
    {"sign_secret: last byte of public half", "sign_secret", S_FLIP, 63, NULL, GBX_E_KEY_FORMAT},
    {"sign_secret: seed changed", "sign_secret", S_FLIP, 0, NULL, GBX_E_KEY_FORMAT},
    {"sign_secret: base64 cut by 4", "sign_secret", S_CHOP, 4, NULL, GBX_E_KEY_FORMAT},
    {"sign_secret: base64 cut by 1", "sign_secret", S_CHOP, 1, NULL, GBX_E_KEY_FORMAT},
    {"sign_secret: 32 bytes only", "sign_secret", S_REPLACE, 0,
     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", GBX_E_KEY_FORMAT},
    {"sign_secret: not base64", "sign_secret", S_REPLACE, 0, "!!!not base64!!!", GBX_E_KEY_FORMAT},
    {"sign_secret: empty", "sign_secret", S_REPLACE, 0, "", GBX_E_KEY_FORMAT},
    {"box_secret: base64 cut by 4", "box_secret", S_CHOP, 4, NULL, GBX_E_KEY_FORMAT},
    {"box_secret: 33 bytes", "box_secret", S_REPLACE, 0,
     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", GBX_E_KEY_FORMAT},
    {"curve_secret: not base64", "curve_secret", S_REPLACE, 0, "%%%%", GBX_E_KEY_FORMAT},
    {"curve_secret: base64 cut by 2", "curve_secret", S_CHOP, 2, NULL, GBX_E_KEY_FORMAT},
    {"missing sign_secret", "sign_secret", S_OMIT, 0, NULL, GBX_E_KEY_FORMAT},
    {"missing box_secret", "box_secret", S_OMIT, 0, NULL, GBX_E_KEY_FORMAT},
    {"missing curve_secret", "curve_secret", S_OMIT, 0, NULL, GBX_E_KEY_FORMAT},
    {"missing id", "id", S_OMIT, 0, NULL, GBX_E_KEY_FORMAT},
    {"invalid id", "id", S_REPLACE, 0, "HK.CR", GBX_E_KEY_FORMAT},
    {"not YAML", NULL, S_REPLACE, 0, "id: [unclosed\nsign_secret: {\n", GBX_E_KEY_FORMAT},
    {"YAML scalar, not a mapping", NULL, S_REPLACE, 0, "just some text\n", GBX_E_KEY_FORMAT},
    {"YAML sequence, not a mapping", NULL, S_REPLACE, 0, "- id\n- sign_secret\n", GBX_E_KEY_FORMAT},
    {"binary garbage", NULL, S_REPLACE, 0, "\x01\x02\xff\xfe\x00", GBX_E_KEY_FORMAT},
    {"empty file", NULL, S_REPLACE, 0, "", GBX_E_KEY_FORMAT},
};

/*  Writes the .secret text of case I to PATH (mode 0600). */
static void s_write_case(const s_fix_t *f, size_t i, const char *path)
{
    const char *key = s_format_cases[i].key;
    s_edit_t edit = s_format_cases[i].edit;
    if (!key && edit == S_REPLACE) {
        const char *t = s_format_cases[i].replace;
        assert_int_equal(tu_write_file(path, t, strlen(t), 0600), 0);
        return;
    }
    const char *keys[4] = {"id", "sign_secret", "box_secret", "curve_secret"};
    char vals[4][128];
    snprintf(vals[0], sizeof vals[0], "%s", "gd.qh-amr");
    snprintf(vals[1], sizeof vals[1], "%s", f->sign_b64);
    snprintf(vals[2], sizeof vals[2], "%s", f->box_b64);
    snprintf(vals[3], sizeof vals[3], "%s", f->curve_b64);
    char text[1024];
    size_t off = (size_t)snprintf(text, sizeof text, "# gbx secret identity v1\n");
    for (int k = 0; k < 4; k++) {
        char *v = vals[k];
        if (key && strcmp(key, keys[k]) == 0) {
            if (edit == S_OMIT)
                continue;
            if (edit == S_REPLACE)
                snprintf(v, sizeof vals[k], "%s", s_format_cases[i].replace);
            if (edit == S_CHOP)
                v[strlen(v) - (size_t)s_format_cases[i].arg] = '\0';
            if (edit == S_FLIP) {
                uint8_t bin[96];
                size_t bin_len = 0;
                assert_int_equal(sodium_base642bin(bin, sizeof bin, v, strlen(v), NULL, &bin_len,
                                                   NULL, sodium_base64_VARIANT_ORIGINAL),
                                 0);
                bin[s_format_cases[i].arg] ^= 0x01;
                sodium_bin2base64(v, sizeof vals[k], bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
            }
        }
        off += (size_t)snprintf(text + off, sizeof text - off, k == 0 ? "%s: %s\n" : "%s: \"%s\"\n",
                                keys[k], v);
    }
    assert_int_equal(tu_write_file(path, text, off, 0600), 0);
}

static void test_secret_format(void **state)
{
    s_fix_t *f = *state;
    for (size_t i = 0; i < sizeof s_format_cases / sizeof s_format_cases[0]; i++) {
        s_write_case(f, i, f->secret_path);
        assert_int_equal(s_mode(f->secret_path), 0600);
        gbx_identity_t *id = NULL;
        assert_case_rc(s_format_cases[i].name, gbx_identity_load(f->secret_path, &id),
                       s_format_cases[i].want);
        if (s_format_cases[i].want == GBX_OK)
            s_assert_same_pub(gbx_identity_public(id), gbx_identity_public(f->ident));
        else
            assert_null(id);
        gbx_identity_destroy(&id);
    }
    /* Larger than any key file may be: a valid file behind a long comment. */
    char big[6000];
    memset(big, '#', sizeof big);
    int n = snprintf(big + 5000, sizeof big - 5000,
                     "\nid: gd.qh-amr\nsign_secret: \"%s\"\nbox_secret: \"%s\"\n"
                     "curve_secret: \"%s\"\n",
                     f->sign_b64, f->box_b64, f->curve_b64);
    assert_int_equal(tu_write_file(f->secret_path, big, 5000 + (size_t)n, 0600), 0);
    gbx_identity_t *id = NULL;
    assert_rc(gbx_identity_load(f->secret_path, &id), GBX_E_KEY_FORMAT);
    assert_null(id);
}

/* ---------------------------------------------------------------- .pub */

static const struct {
    const char *name;
    int edit; /* 0 as formatted, 1 fingerprint wrong, 2 fingerprint removed,
                 3 one sign key char changed, 4 box key removed, 5 whole text */
    const char *text;
    gbx_err_t want;
} s_pub_cases[] = {
    {"as formatted", 0, NULL, GBX_OK},
    {"wrong fingerprint", 1, NULL, GBX_E_KEY_FORMAT},
    {"no fingerprint (optional)", 2, NULL, GBX_OK},
    {"sign key changed, fingerprint kept", 3, NULL, GBX_E_KEY_FORMAT},
    {"box key missing", 4, NULL, GBX_E_KEY_FORMAT},
    {"not YAML", 5, "id: [\n", GBX_E_KEY_FORMAT},
    {"empty", 5, "", GBX_E_KEY_FORMAT},
};

static void test_pub_format(void **state)
{
    s_fix_t *f = *state;
    const gbx_pubid_t *pub = gbx_identity_public(f->ident);
    char fp[GBX_FINGERPRINT_LEN];
    gbx_pubid_fingerprint(pub, fp);
    for (size_t i = 0; i < sizeof s_pub_cases / sizeof s_pub_cases[0]; i++) {
        char *text = NULL;
        assert_rc(gbx_pubid_format(pub, &text), GBX_OK);
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", text);
        free(text);
        char *at;
        switch (s_pub_cases[i].edit) {
        case 1:
            at = strstr(buf, fp);
            assert_non_null(at);
            at[0] = at[0] == '0' ? '1' : '0';
            break;
        case 2:
            at = strstr(buf, "fingerprint:");
            assert_non_null(at);
            *at = '\0';
            break;
        case 3:
            at = strstr(buf, "sign: \"");
            assert_non_null(at);
            at[7] = at[7] == 'A' ? 'B' : 'A';
            break;
        case 4:
            at = strstr(buf, "box:");
            assert_non_null(at);
            at[0] = 'x'; /* "xox:" */
            break;
        case 5:
            snprintf(buf, sizeof buf, "%s", s_pub_cases[i].text);
            break;
        default:
            break;
        }
        assert_int_equal(tu_write_file(f->pub_path, buf, strlen(buf), 0644), 0);
        gbx_pubid_t got;
        assert_case_rc(s_pub_cases[i].name, gbx_pubid_load(f->pub_path, &got), s_pub_cases[i].want);
        if (s_pub_cases[i].want == GBX_OK)
            s_assert_same_pub(&got, pub);
    }
}

/* ------------------------------------------------------------------- ids */

static const struct {
    const char *id;
    int valid;
} s_id_cases[] = {
    {"", 0},
    {"HK.CR", 0},
    {".x", 0},
    {"-x", 0},
    {"a b", 0},
    {"a_b", 0},
    {"a/b", 0},
    {"hk.cr\n", 0},
    {"h\xc3\xa9", 0},
    {"x123456789012345678901234567890123456789012345678901234567890abcd", 0}, /* 65 */
    {"a", 1},
    {"0", 1},
    {"a.", 1},
    {"a-", 1},
    {"gd.qh-amr", 1},
    {"hk.cr", 1},
    {"x123456789012345678901234567890123456789012345678901234567890abc", 1}, /* 64 */
};

static void test_ids(void **state)
{
    assert_int_equal(gbx_id_valid(NULL), 0);
    for (size_t i = 0; i < sizeof s_id_cases / sizeof s_id_cases[0]; i++) {
        const char *id = s_id_cases[i].id;
        if (gbx_id_valid(id) != s_id_cases[i].valid)
            fail_msg("gbx_id_valid(\"%s\") (length %zu) != %d", id, strlen(id),
                     s_id_cases[i].valid);
        gbx_identity_t *g = NULL;
        assert_case_rc(id, gbx_identity_generate(id, &g), s_id_cases[i].valid ? GBX_OK : GBX_E_ARG);
        if (s_id_cases[i].valid)
            assert_string_equal(gbx_identity_public(g)->id, id);
        else
            assert_null(g);
        gbx_identity_destroy(&g);
    }
    gbx_identity_t *g = NULL;
    assert_rc(gbx_identity_generate(NULL, &g), GBX_E_ARG);
}

/* ------------------------------------------------------------- overwrite */

static void test_save_no_overwrite(void **state)
{
    s_fix_t *f = *state;
    char *dir = tu_tmpdir();
    char sp[512], pp[512];
    snprintf(sp, sizeof sp, "%s/gd.qh-amr.secret", dir);
    snprintf(pp, sizeof pp, "%s/gd.qh-amr.pub", dir);
    assert_rc(gbx_identity_save(f->ident, dir, 0), GBX_OK);

    gbx_identity_t *other = NULL;
    assert_rc(gbx_identity_generate("gd.qh-amr", &other), GBX_OK);
    assert_rc(gbx_identity_save(other, dir, 0), GBX_E_IO);

    gbx_identity_t *loaded = NULL;
    gbx_pubid_t pub;
    assert_rc(gbx_identity_load(sp, &loaded), GBX_OK);
    s_assert_same_pub(gbx_identity_public(loaded), gbx_identity_public(f->ident));
    gbx_identity_destroy(&loaded);
    assert_rc(gbx_pubid_load(pp, &pub), GBX_OK);
    s_assert_same_pub(&pub, gbx_identity_public(f->ident));

    /* With OVERWRITE the new keys replace the old, and a loosened mode is
       tightened again. */
    assert_int_equal(chmod(sp, 0644), 0);
    assert_rc(gbx_identity_save(other, dir, 1), GBX_OK);
    assert_int_equal(s_mode(sp), 0600);
    assert_int_equal(s_mode(pp), 0644);
    assert_rc(gbx_identity_load(sp, &loaded), GBX_OK);
    s_assert_same_pub(gbx_identity_public(loaded), gbx_identity_public(other));
    gbx_identity_destroy(&loaded);
    assert_rc(gbx_pubid_load(pp, &pub), GBX_OK);
    s_assert_same_pub(&pub, gbx_identity_public(other));

    gbx_identity_destroy(&other);
    tu_rmtree(&dir);
}

/*  The .secret of another key pair is gone, its .pub is still there: saving
    new keys without OVERWRITE must fail, and must not leave the new .secret
    next to a .pub that names other keys (that .pub would go to the registry). */
static void test_save_failure_clean(void **state)
{
    s_fix_t *f = *state;
    char *dir = tu_tmpdir();
    char sp[512], pp[512];
    snprintf(sp, sizeof sp, "%s/gd.qh-amr.secret", dir);
    snprintf(pp, sizeof pp, "%s/gd.qh-amr.pub", dir);
    assert_rc(gbx_identity_save(f->ident, dir, 0), GBX_OK);
    assert_int_equal(unlink(sp), 0);

    gbx_identity_t *other = NULL;
    assert_rc(gbx_identity_generate("gd.qh-amr", &other), GBX_OK);
    assert_rc(gbx_identity_save(other, dir, 0), GBX_E_IO);
    gbx_pubid_t pub;
    assert_rc(gbx_pubid_load(pp, &pub), GBX_OK);
    s_assert_same_pub(&pub, gbx_identity_public(f->ident)); /* the .pub is untouched */
    int left = access(sp, F_OK) == 0;
    gbx_identity_destroy(&other);
    tu_rmtree(&dir);
    if (left)
        fail_msg("gbx_identity_save failed (GBX_E_IO) but left a new .secret beside a .pub of "
                 "other keys");
}

/*  Files that are not what they claim: nothing may follow a planted symlink,
    hang on a FIFO, or lose an old key to a failed overwrite. */
static void test_file_safety(void **state)
{
    s_fix_t *f = *state;
    char *dir = tu_tmpdir();
    char sp[512], pp[512], bait[512], fifo[512];
    snprintf(sp, sizeof sp, "%s/gd.qh-amr.secret", dir);
    snprintf(pp, sizeof pp, "%s/gd.qh-amr.pub", dir);
    snprintf(bait, sizeof bait, "%s/bait", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.secret", dir);
    gbx_identity_t *id = NULL;

    /* Overwrite onto a symlink replaces the link; the file it named keeps
       its bytes and never sees a key. */
    FILE *b = fopen(bait, "w");
    assert_non_null(b);
    fputs("attacker's file\n", b);
    fclose(b);
    assert_int_equal(chmod(bait, 0600), 0);
    assert_int_equal(symlink(bait, sp), 0);
    assert_rc(gbx_identity_save(f->ident, dir, 1), GBX_OK);
    char got[64] = {0};
    b = fopen(bait, "r");
    assert_non_null(b);
    assert_non_null(fgets(got, sizeof got, b));
    fclose(b);
    assert_string_equal(got, "attacker's file\n");
    struct stat st;
    assert_int_equal(lstat(sp, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A symlinked secret is refused at load, even one pointing at a good file. */
    char link_path[600];
    snprintf(link_path, sizeof link_path, "%s/link.secret", dir);
    assert_int_equal(symlink(sp, link_path), 0);
    assert_rc(gbx_identity_load(link_path, &id), GBX_E_KEY_PERMS);
    assert_null(id);

    /* A FIFO answers at once instead of blocking the loader. */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_rc(gbx_identity_load(fifo, &id), GBX_E_KEY_FORMAT);

    /* An overwrite that cannot complete (a directory where the .pub goes)
       changes nothing: the old secret still loads and matches. */
    assert_int_equal(unlink(pp), 0);
    assert_int_equal(mkdir(pp, 0700), 0);
    gbx_identity_t *other = NULL;
    assert_rc(gbx_identity_generate("gd.qh-amr", &other), GBX_OK);
    assert_rc(gbx_identity_save(other, dir, 1), GBX_E_IO);
    assert_rc(gbx_identity_load(sp, &id), GBX_OK);
    s_assert_same_pub(gbx_identity_public(id), gbx_identity_public(f->ident));
    gbx_identity_destroy(&id);
    gbx_identity_destroy(&other);
    rmdir(pp);
    tu_rmtree(&dir);
}

static void test_missing_file(void **state)
{
    s_fix_t *f = *state;
    char p[600];
    snprintf(p, sizeof p, "%s/absent.secret", f->dir);
    gbx_identity_t *id = NULL;
    gbx_pubid_t pub;
    assert_rc(gbx_identity_load(p, &id), GBX_E_IO);
    assert_rc(gbx_pubid_load(p, &pub), GBX_E_IO);
    assert_rc(gbx_identity_load(f->dir, &id), GBX_E_KEY_FORMAT); /* a directory */
}

/*  Runs the loaders on broken files with stderr and stdout sent to a file and
    returns what they printed (malloc'ed). */
static char *s_capture_output(s_fix_t *f)
{
    char out_path[600];
    snprintf(out_path, sizeof out_path, "%s/captured.txt", f->dir);
    fflush(stdout);
    fflush(stderr);
    int saved_err = dup(2), saved_out = dup(1);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_err >= 0 && saved_out >= 0 && fd >= 0);
    dup2(fd, 2);
    dup2(fd, 1);
    close(fd);
    static const char *texts[] = {"id: [unclosed\n", "\x01\x02\xff\xfe", "a: {b\n", "- x\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        gbx_identity_t *id = NULL;
        gbx_pubid_t pub;
        tu_write_file(f->secret_path, texts[i], strlen(texts[i]), 0600);
        (void)gbx_identity_load(f->secret_path, &id);
        gbx_identity_destroy(&id);
        tu_write_file(f->pub_path, texts[i], strlen(texts[i]), 0644);
        (void)gbx_pubid_load(f->pub_path, &pub);
    }
    fflush(stdout);
    fflush(stderr);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    char *text = (char *)tu_read_file(out_path, NULL);
    unlink(out_path);
    return text;
}

static void test_silent(void **state)
{
    s_fix_t *f = *state;
    char *text = s_capture_output(f);
    assert_non_null(text);
    size_t n = strlen(text);
    if (n)
        print_error("printed by the loaders:\n%s", text);
    free(text);
    if (n)
        fail_msg("gbx_identity_load / gbx_pubid_load printed %zu bytes on broken files", n);
}

/* ------------------------------------------------------- vector identity */

static void s_check_vector_identity(const tu_vectors_t *v, const char *who, const char *id)
{
    char name[64], src[512], dst[512];
    char *dir = tu_tmpdir();
    /* Git does not keep mode 0600, so the stored .secret is copied first. */
    snprintf(src, sizeof src, "%s/%s.secret", GBX_VECTORS_DIR, id);
    snprintf(dst, sizeof dst, "%s/%s.secret", dir, id);
    if (tu_copy_file(src, dst, 0600) != 0)
        fail_msg("cannot copy %s", src);
    gbx_identity_t *ident = NULL;
    assert_rc(gbx_identity_load(dst, &ident), GBX_OK);
    const gbx_pubid_t *pub = gbx_identity_public(ident);
    assert_string_equal(pub->id, id);

    uint8_t key_id[GBX_KEY_ID_BYTES];
    gbx_pubid_key_id(pub, key_id);
    char *hex = tu_hex(key_id, sizeof key_id);
    snprintf(name, sizeof name, "%s.key_id", who);
    assert_non_null(tu_vec_str(v, name));
    assert_string_equal(hex, tu_vec_str(v, name));
    free(hex);

    char fp[GBX_FINGERPRINT_LEN];
    gbx_pubid_fingerprint(pub, fp);
    snprintf(name, sizeof name, "%s.fingerprint", who);
    assert_non_null(tu_vec_str(v, name));
    assert_string_equal(fp, tu_vec_str(v, name));
    assert_int_equal(strlen(fp), 19);

    gbx_pubid_t stored;
    snprintf(src, sizeof src, "%s/%s.pub", GBX_VECTORS_DIR, id);
    assert_rc(gbx_pubid_load(src, &stored), GBX_OK);
    s_assert_same_pub(&stored, pub);
    gbx_identity_destroy(&ident);
    tu_rmtree(&dir);
}

static void test_vector_identity(void **state)
{
    tu_vectors_t *v = tu_vectors_load(S_VECTORS);
    if (!v)
        fail_msg("cannot read %s", S_VECTORS);
    s_check_vector_identity(v, "a", "gd.qh-amr");
    s_check_vector_identity(v, "b", "hk.cr");
    s_check_vector_identity(v, "n", "gd-node-1");
    tu_vectors_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_save_load),
        cmocka_unit_test(test_secret_perms),
        cmocka_unit_test(test_secret_format),
        cmocka_unit_test(test_pub_format),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_save_no_overwrite),
        cmocka_unit_test(test_save_failure_clean),
        cmocka_unit_test(test_file_safety),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_silent),
        cmocka_unit_test(test_vector_identity),
    };
    return cmocka_run_group_tests_name("identity", tests, s_setup, s_teardown);
}
