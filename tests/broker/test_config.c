/*  test_config: gbx_config against the fixtures in tests/broker/fixtures/.
    Each fixture is copied into a fresh directory holding keys/hk-1.pub and
    keys/hk.cr.pub (made from tu_identity_fixed), then loaded. */
#include "tu_cmocka.h"

#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define S_FIXTURES GBX_SOURCE_DIR "/tests/broker/fixtures"

/*  Each invalid fixture: the code, where (line:column) and which setting. */
typedef struct {
    const char *fixture;
    gbx_err_t rc;
    const char *at;
    const char *setting;
} s_case_t;

static const s_case_t s_bad[] = {
    {"unknown_key", GBX_E_FIELD_INVALID, "6:3", "limits.ack_timout_ms"},
    {"unknown_section", GBX_E_FIELD_INVALID, "5:1", "limts"},
    {"wrong_type", GBX_E_FIELD_INVALID, "6:3", "limits.inflight_window"},
    {"not_integer", GBX_E_FIELD_INVALID, "6:20", "limits.inflight_window"},
    {"section_scalar", GBX_E_FIELD_INVALID, "1:1", "node"},
    {"out_of_range", GBX_E_FIELD_INVALID, "7:19", "limits.ack_timeout_ms"},
    {"bad_duration", GBX_E_FIELD_INVALID, "6:15", "limits.max_ttl_ms"},
    {"bytes_too_big", GBX_E_FIELD_INVALID, "6:22", "limits.max_payload_bytes"},
    {"dedupe_short", GBX_E_FIELD_INVALID, "6:15", "limits.dedupe_window_ms"},
    {"missing_required", GBX_E_FIELD_INVALID, "1:1", "node.keys"},
    {"bad_endpoint", GBX_E_FIELD_INVALID, "6:12", "listen.adapter"},
    {"bad_metrics", GBX_E_FIELD_INVALID, "6:12", "listen.metrics"},
    {"empty_data_dir", GBX_E_FIELD_INVALID, "4:14", "node.data_dir"},
    {"malformed", GBX_E_MALFORMED, "8:1", "yaml"},
    {"malformed_tab", GBX_E_MALFORMED, "6:1", "yaml"},
    {"top_sequence", GBX_E_MALFORMED, "1:3", "yaml"},
    {"node_not_in_registry", GBX_E_FIELD_INVALID, "2:7", "node.id"},
    {"node_wrong_jurisdiction", GBX_E_FIELD_INVALID, "3:17", "node.jurisdiction"},
    {"list_not_sequence", GBX_E_FIELD_INVALID, "8:3", "registry.agencies"},
    {"dup_agency", GBX_E_FIELD_INVALID, "12:11", "registry.agencies[1].id"},
    {"dup_curve", GBX_E_FIELD_INVALID, "17:14", "registry.agencies[1].curve"},
    {"unknown_node", GBX_E_UNKNOWN_AGENCY, "9:13", "registry.agencies[0].node"},
    {"unknown_provider", GBX_E_UNKNOWN_AGENCY, "13:67", "registry.services[0].provider"},
    {"bad_base64", GBX_E_KEY_FORMAT, "9:13", "registry.agencies[0].sign"},
    {"short_key", GBX_E_KEY_FORMAT, "10:12", "registry.agencies[0].box"},
    {"pub_missing", GBX_E_IO, "6:54", "registry.agencies[0].pub"},
    {"pub_other_id", GBX_E_FIELD_INVALID, "6:55", "registry.agencies[0].pub"},
    {"pub_and_inline", GBX_E_FIELD_INVALID, "9:12", "registry.agencies[0].pub"},
    {"bad_jurisdiction", GBX_E_FIELD_INVALID, "7:21", "registry.agencies[0].jurisdiction"},
    {"bad_city", GBX_E_FIELD_INVALID, "8:13", "registry.agencies[0].city"},
    {"hk_city", GBX_E_FIELD_INVALID, "8:13", "registry.agencies[0].city"},
    {"gd_no_city", GBX_E_FIELD_INVALID, "6:7", "registry.agencies[0].city"},
    {"agency_unknown_key", GBX_E_FIELD_INVALID, "9:7", "registry.agencies[0].citty"},
    {"missing_agency_node", GBX_E_FIELD_INVALID, "6:7", "registry.agencies[0].node"},
    {"bad_id", GBX_E_FIELD_INVALID, "6:11", "registry.agencies[0].id"},
    {"bad_class", GBX_E_FIELD_INVALID, "13:50", "registry.services[0].class"},
    {"dup_service", GBX_E_FIELD_INVALID, "14:14", "registry.services[1].code"},
    {"service_version_zero", GBX_E_FIELD_INVALID, "13:40", "registry.services[0].version"},
};

/* ----------------------------------------------------------------- setup */

typedef struct {
    char *dir;
    gbx_identity_t *hk1, *hkcr;
} s_fix_t;

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/*  Removes DIR and everything under it; frees *dir_p. */
static void s_rmtree(char **dir_p)
{
    if (*dir_p)
        nftw(*dir_p, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(*dir_p);
    *dir_p = NULL;
}

static void s_write_pub(const char *dir, const gbx_identity_t *idn)
{
    char *text = NULL, path[512];
    assert_rc(gbx_pubid_format(gbx_identity_public(idn), &text), GBX_OK);
    snprintf(path, sizeof path, "%s/keys/%s.pub", dir, gbx_identity_public(idn)->id);
    assert_int_equal(tu_write_file(path, text, strlen(text), 0644), 0);
    free(text);
}

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir();
    char keys[512];
    snprintf(keys, sizeof keys, "%s/keys", f->dir);
    assert_int_equal(mkdir(keys, 0700), 0);
    f->hk1 = tu_identity_fixed("hk-1", NULL);
    f->hkcr = tu_identity_fixed("hk.cr", NULL);
    s_write_pub(f->dir, f->hk1);
    s_write_pub(f->dir, f->hkcr);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_identity_destroy(&f->hk1);
    gbx_identity_destroy(&f->hkcr);
    s_rmtree(&f->dir);
    free(f);
    return 0;
}

/*  Copies fixture NAME into the test dir; returns its new path (static). */
static const char *s_place(const s_fix_t *f, const char *name)
{
    static char dst[512];
    char src[512];
    snprintf(src, sizeof src, "%s/%s.yaml", S_FIXTURES, name);
    snprintf(dst, sizeof dst, "%s/%s.yaml", f->dir, name);
    assert_int_equal(tu_copy_file(src, dst, 0644), 0);
    return dst;
}

static gbx_config_t *s_load_ok(const s_fix_t *f, const char *name)
{
    char err[512];
    gbx_config_t *cfg = NULL;
    gbx_err_t rc = gbx_config_load(s_place(f, name), &cfg, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", name, gbx_err_name(rc), err);
    return cfg;
}

static void s_fill(uint8_t out[GBX_KEY_BYTES], uint8_t byte)
{
    memset(out, byte, GBX_KEY_BYTES);
}

/* ----------------------------------------------------------------- tests */

static void test_valid_loads(void **state)
{
    s_fix_t *f = *state;
    gbx_config_t *cfg = s_load_ok(f, "valid");
    char want[600];

    /* From the file, with units. */
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_ACK_TIMEOUT_MS), 5000);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_PAYLOAD_BYTES), 1 << 20);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_INFLIGHT_WINDOW), 128);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_NODE_ID), "hk-1");
    assert_int_equal(gbx_config_jurisdiction(cfg), GBX_JUR_HK);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_NODE_DATA_DIR), "/var/lib/gbx");
    snprintf(want, sizeof want, "%s/keys/hk-1.secret", f->dir);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_NODE_KEYS), want);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_LISTEN_ADAPTER), "tcp://*:7400");
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_LISTEN_METRICS), "127.0.0.1:9500");
    /* Type-checked accessors. */
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_NODE_ID), 0);
    assert_null(gbx_config_str(cfg, GBX_SETTING_LIMITS_MAX_ATTEMPTS));

    const gbx_registry_t *reg = gbx_config_registry(cfg);
    assert_int_equal(gbx_registry_node_count(reg), 2);
    assert_int_equal(gbx_registry_agency_count(reg), 3);
    assert_int_equal(gbx_registry_service_count(reg), 3);

    const gbx_agency_t *cr = gbx_registry_agency(reg, "hk.cr");
    assert_non_null(cr);
    assert_int_equal(cr->jurisdiction, GBX_JUR_HK);
    assert_string_equal(cr->city, "hong-kong"); /* the HK default */
    assert_string_equal(cr->node, "hk-1");
    assert_string_equal(cr->name, "Companies Registry");
    assert_memory_equal(&cr->pub, gbx_identity_public(f->hkcr), sizeof cr->pub);

    const gbx_agency_t *qh = gbx_registry_agency(reg, "gd.qh-amr");
    assert_non_null(qh);
    assert_string_equal(qh->city, "shenzhen");
    assert_string_equal(qh->node, "gd-1");
    assert_string_equal(qh->pub.id, "gd.qh-amr");
    uint8_t k[GBX_KEY_BYTES];
    s_fill(k, 0x44);
    assert_memory_equal(qh->pub.sign_pk, k, GBX_KEY_BYTES);
    s_fill(k, 0x66);
    assert_memory_equal(qh->pub.curve_pk, k, GBX_KEY_BYTES);

    /* CURVE key -> who. */
    const gbx_agency_t *a = NULL;
    const gbx_node_t *n = NULL;
    assert_true(gbx_registry_by_curve(reg, k, &a, &n));
    assert_ptr_equal(a, qh);
    assert_null(n);
    s_fill(k, 0x33);
    assert_true(gbx_registry_by_curve(reg, k, &a, &n));
    assert_null(a);
    assert_non_null(n);
    assert_string_equal(n->id, "gd-1");
    assert_int_equal(n->jurisdiction, GBX_JUR_GD);
    assert_true(gbx_registry_by_curve(reg, gbx_identity_public(f->hk1)->curve_pk, &a, &n));
    assert_string_equal(n->id, "hk-1");
    s_fill(k, 0x11 ^ 0xff);
    assert_false(gbx_registry_by_curve(reg, k, &a, &n));
    assert_null(a);
    assert_null(n);

    const gbx_service_t *sv = gbx_registry_service(reg, "GD-AMR-USCC", 2);
    assert_non_null(sv);
    assert_int_equal(sv->data_class, GBX__V1__DATA_CLASS__PERSONAL);
    assert_string_equal(sv->provider, "gd.amr");
    assert_null(gbx_registry_service(reg, "GD-AMR-USCC", 1));
    sv = gbx_registry_service(reg, "HK-CR-COEXTRACT", 1);
    assert_non_null(sv);
    assert_string_equal(sv->description, "company extract");
    assert_int_equal(gbx_registry_service(reg, "XB-STATS-MONTHLY", 1)->data_class,
                     GBX__V1__DATA_CLASS__INTERNAL);
    gbx_config_destroy(&cfg);
    assert_null(cfg);
    gbx_config_destroy(&cfg); /* NULL-safe */
}

static void test_defaults_apply(void **state)
{
    s_fix_t *f = *state;
    gbx_config_t *cfg = s_load_ok(f, "minimal");
    char want[600];
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_ACK_TIMEOUT_MS), 30000);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_TTL_MS), INT64_C(604800000));
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_DEDUPE_WINDOW_MS), INT64_C(691200000));
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_PAYLOAD_BYTES), 16 << 20);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_QUEUE_MAX_BYTES), INT64_C(4) << 30);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_MAX_ATTEMPTS), 10);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_COMMIT_MAX_DELAY_MS), 0);
    assert_int_equal(gbx_config_int(cfg, GBX_SETTING_LIMITS_SESSION_TIMEOUT_MS), 30000);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_LISTEN_ADAPTER), "tcp://127.0.0.1:7400");
    snprintf(want, sizeof want, "%s/data", f->dir);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_NODE_DATA_DIR), want);
    snprintf(want, sizeof want, "%s/gbxd.ctl", f->dir);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_LISTEN_CONTROL), want);
    /* Every setting has a value (all numeric defaults are positive but the
       extra group-commit wait, 0 by default). */
    for (int s = 0; s < GBX_SETTING_COUNT_; s++)
        assert_true(gbx_config_str(cfg, (gbx_setting_t)s) ||
                    gbx_config_int(cfg, (gbx_setting_t)s) > 0 ||
                    s == GBX_SETTING_LIMITS_COMMIT_MAX_DELAY_MS);
    assert_null(gbx_setting_default(GBX_SETTING_NODE_ID));
    assert_string_equal(gbx_setting_default(GBX_SETTING_LIMITS_ACK_TIMEOUT_MS), "30s");
    assert_true(gbx_setting_reloadable(GBX_SETTING_LIMITS_ACK_TIMEOUT_MS));
    assert_false(gbx_setting_reloadable(GBX_SETTING_LISTEN_ADAPTER));
    gbx_config_destroy(&cfg);
}

static void test_invalid_fixtures(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const s_case_t *c = &s_bad[i];
        char err[512], want[700];
        gbx_config_t *cfg = NULL;
        const char *path = s_place(f, c->fixture);
        gbx_err_t rc = gbx_config_load(path, &cfg, err, sizeof err);
        check_case_rc(fails, c->fixture, rc, c->rc);
        if (cfg) {
            gbx_config_destroy(&cfg);
            continue;
        }
        snprintf(want, sizeof want, "%s:%s: %s: ", path, c->at, c->setting);
        if (strncmp(err, want, strlen(want)) != 0 || strlen(err) <= strlen(want)) {
            print_error("case \"%s\": message \"%s\"\n      does not start with \"%s\"\n",
                        c->fixture, err, want);
            fails++;
        }
    }
    assert_int_equal(fails, 0);
}

static void test_load_edges(void **state)
{
    s_fix_t *f = *state;
    char err[512], want[600], tiny[8];
    gbx_config_t *cfg = NULL;

    snprintf(want, sizeof want, "%s/absent.yaml", f->dir);
    assert_rc(gbx_config_load(want, &cfg, err, sizeof err), GBX_E_IO);
    assert_null(cfg);
    assert_non_null(strstr(err, "absent.yaml:1:1: config: cannot open"));
    /* An empty file is no mapping. */
    snprintf(want, sizeof want, "%s/empty.yaml", f->dir);
    assert_int_equal(tu_write_file(want, "", 0, 0644), 0);
    assert_rc(gbx_config_load(want, &cfg, err, sizeof err), GBX_E_MALFORMED);
    /* A short or absent error buffer is fine. */
    const char *path = s_place(f, "out_of_range");
    assert_rc(gbx_config_load(path, &cfg, tiny, sizeof tiny), GBX_E_FIELD_INVALID);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_rc(gbx_config_load(path, &cfg, NULL, 0), GBX_E_FIELD_INVALID);
    assert_rc(gbx_config_load(NULL, &cfg, err, sizeof err), GBX_E_ARG);
    assert_rc(gbx_config_load(path, NULL, err, sizeof err), GBX_E_ARG);
    /* A relative path: the config dir is "." */
    s_place(f, "minimal");
    assert_int_equal(chdir(f->dir), 0);
    assert_rc(gbx_config_load("minimal.yaml", &cfg, err, sizeof err), GBX_E_OK);
    assert_string_equal(gbx_config_str(cfg, GBX_SETTING_NODE_DATA_DIR), "./data");
    assert_string_equal(gbx_config_path(cfg), "minimal.yaml");
    gbx_config_destroy(&cfg);
    assert_int_equal(chdir("/"), 0);
}

static void test_show_lists_every_setting(void **state)
{
    s_fix_t *f = *state;
    gbx_config_t *cfg = s_load_ok(f, "valid");
    char *text = NULL, want[700];
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    assert_rc(gbx_config_show(cfg, mem), GBX_OK);
    fclose(mem);

    int lines = 0;
    for (char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, GBX_SETTING_COUNT_ + 1);
    for (int s = 0; s < GBX_SETTING_COUNT_; s++) {
        snprintf(want, sizeof want, "\n%s = ", gbx_setting_name((gbx_setting_t)s));
        const char *at = s == 0 ? (strncmp(text, want + 1, strlen(want) - 1) == 0 ? text : NULL)
                                : strstr(text, want);
        if (!at)
            fail_msg("show lacks %s:\n%s", gbx_setting_name((gbx_setting_t)s), text);
    }
    snprintf(want, sizeof want, "\nlimits.ack_timeout_ms = 5000  # %s/valid.yaml:11\n", f->dir);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nlimits.inflight_window = 128  # %s/valid.yaml:13\n", f->dir);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "\nlimits.max_attempts = 10  # default\n"));
    assert_non_null(strstr(text, "\nlisten.peer = tcp://127.0.0.1:7401  # default\n"));
    assert_non_null(strstr(text, "# registry: 2 nodes, 3 agencies, 3 services\n"));
    free(text);
    gbx_config_destroy(&cfg);
}

static void test_doc_matches_table(void **state)
{
    (void)state;
    char *table = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&table, &len);
    assert_non_null(mem);
    assert_rc(gbx_config_doc_markdown(mem), GBX_OK);
    fclose(mem);
    size_t doc_len = 0;
    char *doc = (char *)tu_read_file(GBX_SOURCE_DIR "/docs/config.md", &doc_len);
    assert_non_null(doc);
    if (!strstr(doc, table))
        fail_msg("docs/config.md does not hold the settings table; paste this:\n%s", table);
    free(doc);
    free(table);
}

static void test_write_default_round_trips(void **state)
{
    s_fix_t *f = *state;
    char dir[600], err[512];
    snprintf(dir, sizeof dir, "%s/demo", f->dir);
    char *path = NULL;
    assert_rc(gbx_config_write_default(dir, &path), GBX_OK);
    assert_non_null(path);

    gbx_config_t *cfg = NULL;
    gbx_err_t rc = gbx_config_load(path, &cfg, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s", gbx_err_name(rc), err);
    const gbx_registry_t *reg = gbx_config_registry(cfg);
    assert_int_equal(gbx_registry_node_count(reg), 1);
    assert_int_equal(gbx_registry_agency_count(reg), 17); /* shared/domain/services.md */
    assert_int_equal(gbx_registry_service_count(reg), 12);
    assert_int_equal(gbx_registry_operator_count(reg), 3);
    assert_int_equal(gbx_registry_operator(reg, "op.approver")->role, GBX_ROLE_APPROVER);
    assert_int_equal(gbx_registry_operator(reg, "op.admin")->role, GBX_ROLE_ADMIN);
    assert_string_equal(gbx_registry_agency(reg, "gd.qh-amr")->city, "shenzhen");
    assert_int_equal(gbx_registry_agency(reg, "gd.tax")->jurisdiction, GBX_JUR_GD);
    assert_int_equal(gbx_registry_service(reg, "HK-EHR-SUMMARY", 1)->data_class,
                     GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL);
    assert_int_equal(gbx_registry_service(reg, "HK-CR-COEXTRACT", 1)->data_class,
                     GBX__V1__DATA_CLASS__PERSONAL);

    /* The node's secret key file loads and matches the registry. */
    gbx_identity_t *node = NULL;
    assert_rc(gbx_identity_load(gbx_config_str(cfg, GBX_SETTING_NODE_KEYS), &node), GBX_OK);
    const gbx_node_t *n = gbx_registry_node(reg, gbx_config_str(cfg, GBX_SETTING_NODE_ID));
    assert_non_null(n);
    assert_memory_equal(&n->pub, gbx_identity_public(node), sizeof n->pub);
    gbx_identity_destroy(&node);
    /* So do the agencies'. */
    char secret[700];
    snprintf(secret, sizeof secret, "%s/keys/gd.hkush.secret", dir);
    gbx_identity_t *hkush = NULL;
    assert_rc(gbx_identity_load(secret, &hkush), GBX_OK);
    assert_memory_equal(&gbx_registry_agency(reg, "gd.hkush")->pub, gbx_identity_public(hkush),
                        sizeof(gbx_pubid_t));
    gbx_identity_destroy(&hkush);
    gbx_config_destroy(&cfg);

    /* Never overwrites. */
    char *again = NULL;
    assert_rc(gbx_config_write_default(dir, &again), GBX_E_STATE);
    assert_null(again);
    assert_rc(gbx_config_write_default(NULL, NULL), GBX_E_ARG);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_loads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_apply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_fixtures, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_edges, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_show_lists_every_setting, s_setup, s_teardown),
        cmocka_unit_test(test_doc_matches_table),
        cmocka_unit_test_setup_teardown(test_write_default_round_trips, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
