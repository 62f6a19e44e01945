/*  test_policy: the policy engine (broker/policy.h) against the sample
    policy shipped with the project (broker/default-policy.yaml, path given
    by the build as GBX_DEFAULT_POLICY) and the registry of the embedded
    default config (gbx_config_write_default into a temporary directory:
    17 agencies, 12 services).

    Decision cases (the table tp_cases of tp_cases.c, which test_policy_live
    submits to a running gbxd): each builds one header (tp_header; fields not
    named by the case: version 1, UNCLASSIFIED, created 1 s before "now", TTL
    1 h, payload 1024 bytes), decides it at "now" = 2026-11-22T10:00:00+08:00
    (unless the case says otherwise) with a counter callback that returns the
    case's preset counters (0 for any other key), and checks: the outcome,
    the reason (GBX_OK / POLICY_DENIED / POLICY_NO_MATCH), the deciding rule
    (exact id; "builtin:" cases by prefix; "" for no match) and its version
    (0 for built-in and no-match decisions), the policy hash (=
    gbx_policy_hash), a non-empty one-line `why`; for ALLOW and HOLD the
    counter increments (policy.h, docs/policy.md): keys
    "s/<year>/<exporter>/<route>[/<class>]" adding the subjects and
    "m/<yyyy-mm-dd>/<exporter>/<route>[/<class>]" adding 1, dates in UTC+8,
    the kinds the sample caps present (s, s/<class>, m), and the key a case
    names with its increment; for DENY no increment.
    Refs: GBA = GBA-SC-2024-0193 (gd-gov, hk-gov), GBA-H = GBA-SC-2024-0517
    (gd.hkush, hk.ehealth), GBA-OLD = GBA-SC-2023-0042 (expired 2025-12-31),
    NSC = NSC-GD-2025-0088, CERT = CERT-PIP-2025-0007 (gd.hkush), SA =
    CAC-SA-2025-0031 (gd.nr), SA-OLD = CAC-SA-2022-0009 (expired
    2025-08-31), EX = CAC-2024-EXEMPT-LT100K (gd-gov), MC = HK-RMC-2025-014.

      PUBLIC (no demo service is PUBLIC: a PUBLIC label is below the service)
        public_hk_gd_label            stats request labelled PUBLIC -> DENY builtin
        public_gd_hk_label            the same, GD -> HK -> DENY builtin
      INTERNAL (UNCLASSIFIED + agreement_ref)
        internal_request_gd_hk        XB-STATS-MONTHLY request -> ALLOW
        internal_response_hk_gd       XB-STATS-MONTHLY response -> ALLOW
        internal_gd_request_hk_gd     XB-STATS-MONTHLY-GD request -> ALLOW
        internal_gd_response_gd_hk    XB-STATS-MONTHLY-GD response -> ALLOW
        internal_no_agreement         no agreement_ref -> DENY internal-stats
        internal_restricted           RESTRICTED + release authority -> NO_MATCH
        internal_restricted_no_ra     RESTRICTED without it -> DENY builtin
        internal_payload_too_big      2 MiB over max_payload -> DENY
        internal_within_hk            hk.kiosk -> hk.dpo -> NO_MATCH
        internal_other_requester      gd.amr asks for stats -> NO_MATCH
      VERIFY (GD-EDU-DEGREE-VERIFY, INTERNAL: a fingerprint in, yes/no out)
        verify_degree                 VERIFY hk.immd -> gd.edu -> ALLOW, m/ key
        verify_answer                 RESPONSE gd.edu -> hk.immd -> ALLOW
        verify_rate_under             19,999 checks today + 1 -> ALLOW
        verify_rate_cap               20,000 checks today + 1 -> HOLD (at_cap)
        verify_as_request             kind REQUEST on the VERIFY service -> NO_MATCH
        verify_payload_big            1 MiB "fingerprint" -> DENY degree-verify
        verify_labelled_personal      VERIFY labelled PERSONAL -> NO_MATCH
      PERSONAL HK -> GD (PDPO: notified purpose or consent; GBA or MC; GBA city)
        pi_hk_gd_notified_coextract   COEXTRACT response, notified purpose, GBA -> ALLOW
        pi_hk_gd_model_clauses        VEHLIC response, MODEL_CLAUSES -> ALLOW
        pi_hk_gd_uscc_request         USCC request from hk.cr -> ALLOW
        pi_hk_gd_consent              DEGREE request, other purpose + CONSENT -> ALLOW
        pi_hk_gd_no_consent           other purpose, no consent -> DENY pi-hk-gd-consent
        pi_hk_gd_notice_only          NOTICE where CONSENT is needed -> DENY
        pi_hk_gd_no_route             no legal route -> DENY (first rule failed)
        pi_hk_gd_nsc_route            NATIONAL_STANDARD_CONTRACT HK -> GD -> DENY
        pi_hk_gd_mc_expired_window    MC ref on a date after its window -> DENY
        tax_secrecy_ok                CORS response to gd.sz-tax with consent -> ALLOW
        tax_secrecy_no_consent        without consent -> DENY
        tax_secrecy_other_requester   CORS response to gd.amr -> NO_MATCH
        restricted_with_release       RESTRICTED + release authority -> HOLD
        restricted_no_release         RESTRICTED without -> DENY builtin
        confidential                  CONFIDENTIAL -> DENY builtin
        secret                        SECRET -> DENY builtin
        top_secret                    TOP_SECRET -> DENY builtin
        core_hk_gd                    CORE -> DENY builtin
        direct_marketing_deny         an allowed message with purpose DIRECT-MARKETING
                                      -> DENY no-direct-marketing (deny beats allow)
        corpid_future_rule            rule effective 2027-01-01, decided now -> NO_MATCH
        corpid_effective              the same decided 2027-02-01 -> ALLOW pi-uscc-corpid
      SENSITIVE_PERSONAL HK -> GD (+ explicit consent)
        sp_hk_gd_paycert_request      kiosk request, CONSENT, iAM Smart ref -> ALLOW
        sp_hk_gd_notice_only          NOTICE -> DENY
        sp_hk_gd_no_end_user          no end_user_ref -> DENY
        sp_hk_gd_ttl_too_long         TTL 2 d over max_ttl 1 d -> DENY
        sp_hk_gd_label_lower          labelled PERSONAL -> DENY builtin
        sp_hk_gd_ehr_summary          eHealth summary to gd.hkush, GBA-H -> ALLOW
        sp_hk_gd_upload_ack           upload acknowledgement, SEPARATE_CONSENT -> ALLOW
      PERSONAL GD -> HK (PIPL: notice/consent + impact assessment + route)
        pi_gd_hk_gba_response         USCC response, GBA -> ALLOW, s/ key
        pi_gd_hk_gba_request          COEXTRACT request from gd.qh-amr -> ALLOW
        pi_gd_hk_vehlic_request       VEHLIC request from gd.traffic -> ALLOW
        pi_gd_hk_cors_request         CORS request from gd.sz-tax -> ALLOW
        pi_gd_hk_degree_response      DEGREE response from gd.edu -> ALLOW
        disabled_rule_not_applied     freeze-gd-to-hk-personal is disabled -> ALLOW
        pi_gd_hk_no_consent           no consent -> DENY pi-gd-hk-gba
        pi_gd_hk_consent_no_ref       NOTICE type but no reference -> DENY
        pi_gd_hk_no_impact            no impact assessment -> DENY
        pi_gd_hk_expired_ref          GBA-OLD (expired 2025-12-31) -> DENY
        pi_gd_hk_ref_last_day         GBA-OLD, created and decided 2025-12-31T23:59+08
                                      -> ALLOW
        pi_gd_hk_ref_day_after        GBA-OLD, created and decided 2026-01-01T00:01+08
                                      -> DENY
        pi_gd_hk_ref_backdated        created on its last day, decided the day after:
                                      a backdated header revives nothing -> DENY
        pi_gd_hk_ref_wrong_exporter   gd.edu relies on GBA-H -> DENY
        pi_gd_hk_ref_undeclared       a reference the policy does not declare -> DENY
        pi_gd_hk_ref_other_route      the NSC reference under GBA -> DENY
        pi_gd_hk_model_clauses        MODEL_CLAUSES (HK side) GD -> HK -> DENY
        pi_gd_hk_nsc                  NSC -> ALLOW pi-gd-hk-contract
        pi_gd_hk_nsc_cap_under        999,990 + 9 subjects -> ALLOW
        pi_gd_hk_nsc_cap_over         999,990 + 10 -> DENY pi-gd-hk-contract
        pi_gd_hk_exemption_under      99,989 + 10 = 99,999 -> ALLOW (rule v2)
        pi_gd_hk_exemption_over       99,990 + 10 = 100,000 -> DENY (rule v2)
        pi_gd_hk_exemption_one        subject_count 0 counts 1: 99,999 + 1 -> DENY
        pi_gd_hk_exemption_other      another exporter's all-routes counter, and this
                                      exporter's exemption-route counter, at the cap:
                                      the cap counts this exporter on every route
                                      (ALL_ROUTES key) -> ALLOW
        pi_gd_hk_exemption_all_routes subjects on other routes count: 99,995 on all
                                      routes + 10 -> DENY (rule v2)
        pipl_art36_off                a state organ's GBA export, the art. 36 switch
                                      off -> ALLOW pi-gd-hk-gba
        pi_gd_hk_exemption_new_year   2027-01-01T00:30+08 (2026 in UTC): s/2027 key
                                      and last year's full counter ignored -> ALLOW
      SENSITIVE_PERSONAL GD -> HK (+ separate consent; caps without GBA)
        sp_gd_hk_paycert_gba          PAYCERT response, GBA -> ALLOW, s/../CLASS key
        sp_gd_hk_consent_not_separate CONSENT, not SEPARATE_CONSENT -> DENY
        sp_gd_hk_no_impact            no impact assessment -> DENY
        sp_gd_hk_wrong_filing         gd.tax relies on GBA-H -> DENY
        sp_gd_hk_exemption            EXEMPTION (none for sensitive) -> DENY
        sp_gd_hk_bulk_under           9,998 + 1 sensitive subjects under GBA -> ALLOW
        sp_gd_hk_bulk_hold            9,999 + 1 -> HOLD sp-gd-hk-gba (judgement)
        sp_gd_hk_ehr_upload           GD-EHR-UPLOAD under GBA-H -> ALLOW
        sp_gd_hk_upload_cert          GD-EHR-UPLOAD under CERT (GBA only) -> DENY
        sp_gd_hk_summary_cert         EHR-SUMMARY under CERT, 9,990 + 9 -> ALLOW
        sp_gd_hk_summary_cert_over    9,990 + 10 -> DENY sp-gd-hk-contract
        sp_gd_hk_cert_class_counter   only the per-class counter counts -> ALLOW
      IMPORTANT
        important_no_sa               GEO-HIRES response without assessment -> DENY
        important_expired_sa          SA-OLD -> DENY
        important_valid_sa            SA in force -> HOLD important-gd-hk (HOLD rule)
        important_gba                 GBA contract does not cover it -> DENY
        important_sa_other_exporter   gd.amr relies on gd.nr's assessment -> DENY
        important_hk_gd               HK-origin data labelled IMPORTANT -> NO_MATCH
        geo_request                   hk.landsd's query to gd.nr -> ALLOW
        geo_request_too_big           1 MiB query -> DENY geo-hires-request
        geo_request_label_lower       labelled PERSONAL -> DENY builtin
      Built in and no match
        unknown_service               no such service code -> DENY builtin
        unknown_version               GD-AMR-USCC v2 -> DENY builtin
        provider_mismatch_request     COEXTRACT request sent to hk.td -> DENY builtin
        provider_mismatch_response    COEXTRACT response from hk.td -> DENY builtin
        unknown_agency                sender not in the registry -> DENY builtin
        core_gd_hk                    CORE with every reference -> DENY builtin
        within_gd                     gd.qh-amr -> gd.amr -> NO_MATCH

    Other cases:
      load_default       the sample loads; version, rule count; hash = BLAKE2b-256
                         of the file's bytes; stable across two loads; differs
                         when one byte changes; gbx_policy_sample is the file
      load_errors        small invalid policies (s_bad): rc FIELD_INVALID (or
                         MALFORMED for bad YAML) and "t.yaml:LINE:COL: SETTING:"
                         for: unknown key, unknown top-level key, unknown agency
                         in a rule, unknown group in a route, unknown service,
                         bad date, impossible date, duplicate rule id,
                         duplicate route reference, bad outcome, bad class,
                         bad route, empty list, volume without a cap, bad YAML
      decide_args        NULL arguments: GBX_E_ARG; a counter error is returned */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "config.h"
#include "policy.h"
#include "registry.h"
#include "tp_cases.h"

#ifndef GBX_DEFAULT_POLICY
#error                                                                                             \
    "GBX_DEFAULT_POLICY must be defined (tests/broker/CMakeLists.txt): the path of broker/default-policy.yaml"
#endif

#define S_RULES 22 /* rules in default-policy.yaml */

/* ----------------------------------------------------------------- setup */

typedef struct {
    char *dir;
    gbx_config_t *cfg;
    const gbx_registry_t *reg;
    gbx_policy_t *pol;
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char *base = tu_tmpdir(), *path = NULL, err[512] = "";
    if (asprintf(&f->dir, "%s/conf", base) < 0)
        fail_msg("asprintf");
    free(base);
    assert_rc(gbx_config_write_default(f->dir, &path), GBX_OK);
    gbx_err_t rc = gbx_config_load(path, &f->cfg, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("default config: %s: %s", gbx_err_name(rc), err);
    free(path);
    f->reg = gbx_config_registry(f->cfg);
    assert_int_equal(gbx_registry_agency_count(f->reg), 17);
    assert_int_equal(gbx_registry_service_count(f->reg), 12);
    rc = gbx_policy_load(GBX_DEFAULT_POLICY, f->reg, &f->pol, err, sizeof err);
    if (rc != GBX_OK)
        fail_msg("%s: %s: %s", GBX_DEFAULT_POLICY, gbx_err_name(rc), err);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    gbx_policy_destroy(&f->pol);
    gbx_config_destroy(&f->cfg);
    /* the config went into BASE/conf: remove both */
    char *slash = strrchr(f->dir, '/');
    tu_rmtree_path(f->dir);
    *slash = '\0';
    tu_rmtree_path(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ----------------------------------------------------------- decisions */

static const char *s_enum_name(const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    return e ? e->name : "?";
}

/*  Reports one difference of case C and counts it. */
#define S_FAIL(fails, c, ...)                                                                      \
    do {                                                                                           \
        char msg_[512];                                                                            \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                  \
        print_error("case \"%s\": %s\n", (c)->name, msg_);                                         \
        (fails)++;                                                                                 \
    } while (0)

/*  Checks the counter increments of an ALLOW or HOLD decision D of case C
    decided at NOW (policy.h, docs/policy.md). */
static void s_check_counts(const tp_case_t *c, const gbx_header_t *h, uint64_t now,
                           const gbx_decision_t *d, int *fails)
{
    time_t t = (time_t)((now + 8 * TP_HOUR) / 1000); /* UTC+8 */
    struct tm tm;
    gmtime_r(&t, &tm);
    const char *route = s_enum_name(&gbx__v1__legal_route__descriptor, h->legal_route);
    const char *cls = s_enum_name(&gbx__v1__data_class__descriptor, h->data_class);
    char s_key[GBX_POLICY_KEY_MAX + 1], sc_key[2 * GBX_POLICY_KEY_MAX],
        m_key[GBX_POLICY_KEY_MAX + 1];
    snprintf(s_key, sizeof s_key, "s/%04d/%s/%s", tm.tm_year + 1900, h->from_agency, route);
    snprintf(sc_key, sizeof sc_key, "%s/%s", s_key, cls);
    snprintf(m_key, sizeof m_key, "m/%04d-%02d-%02d/%s/%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, h->from_agency, route);
    uint64_t subjects = h->subject_count;
    if (subjects == 0 && h->data_class >= GBX__V1__DATA_CLASS__PERSONAL)
        subjects = 1; /* docs/policy.md: PERSONAL and above count at least one */
    if (d->n_counts == 0 || d->n_counts > GBX_POLICY_COUNTS_MAX ||
        (subjects == 0 && d->n_counts != 4)) {
        S_FAIL(*fails, c, "n_counts %zu", d->n_counts);
        return;
    }
    /* and the same with the route "ALL_ROUTES", for the caps that count
       every route (across_routes) */
    char s_all[GBX_POLICY_KEY_MAX + 1], m_all[GBX_POLICY_KEY_MAX + 1];
    snprintf(s_all, sizeof s_all, "s/%04d/%s/ALL_ROUTES", tm.tm_year + 1900, h->from_agency);
    snprintf(m_all, sizeof m_all, "m/%04d-%02d-%02d/%s/ALL_ROUTES", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, h->from_agency);
    int have_s = 0, have_sc = 0, have_m = 0, have_all = 0, have_named = !c->count_key;
    for (size_t i = 0; i < d->n_counts; i++) {
        const gbx_policy_count_t *k = &d->counts[i];
        int s = strncmp(k->key, s_key, strlen(s_key)) == 0 ||
                strncmp(k->key, s_all, strlen(s_all)) == 0;
        int m = strncmp(k->key, m_key, strlen(m_key)) == 0 ||
                strncmp(k->key, m_all, strlen(m_all)) == 0;
        have_all |= strcmp(k->key, s_all) == 0;
        if (!s && !m)
            S_FAIL(*fails, c, "counter key \"%.100s\" is neither %.100s[/class] nor %.100s[/class]",
                   k->key, s_key, m_key);
        if (s && k->add != subjects)
            S_FAIL(*fails, c, "counter \"%s\" adds %llu, want %llu", k->key,
                   (unsigned long long)k->add, (unsigned long long)subjects);
        if (m && k->add != 1)
            S_FAIL(*fails, c, "counter \"%s\" adds %llu, want 1", k->key,
                   (unsigned long long)k->add);
        have_s |= strcmp(k->key, s_key) == 0;
        have_sc |= strcmp(k->key, sc_key) == 0;
        have_m |= strcmp(k->key, m_key) == 0;
        if (c->count_key && strcmp(k->key, c->count_key) == 0) {
            have_named = 1;
            if (k->add != c->count_add)
                S_FAIL(*fails, c, "counter \"%s\" adds %llu, want %llu", k->key,
                       (unsigned long long)k->add, (unsigned long long)c->count_add);
        }
    }
    /* subjects are always counted, when there are any (with and without
       the class, per route and on every route); the sample caps messages */
    const char *want[] = {m_key, s_key, sc_key, s_all};
    const int have[] = {have_m, have_s, have_sc, have_all};
    for (int i = 0; i < (subjects ? 4 : 1); i++)
        if (!have[i])
            S_FAIL(*fails, c, "no counter increment \"%s\"", want[i]);
    if (!have_named)
        S_FAIL(*fails, c, "no counter increment \"%s\"", c->count_key);
}

static void test_decisions(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    size_t n = tp_ncases;
    assert_true(n >= 40);
    const char *v = getenv("GBX_TEST_VERBOSE"); /* prints every decision */
    int verbose = v && *v && *v != '0';
    for (size_t i = 0; i < n; i++) {
        const tp_case_t *c = &tp_cases[i];
        uint64_t now = c->now ? c->now : TP_NOW;
        gbx_header_t h;
        tp_header(c, now, &h);
        gbx_decision_t d;
        memset(&d, 0xa5, sizeof d);
        gbx_err_t rc = gbx_policy_decide(f->pol, f->reg, &h, now, tp_counter, (void *)c, &d);
        if (rc != GBX_OK) {
            S_FAIL(fails, c, "gbx_policy_decide: %s", gbx_err_name(rc));
            continue;
        }
        int before = fails;
        if (d.outcome != c->outcome)
            S_FAIL(fails, c, "outcome %s, want %s", gbx_outcome_name(d.outcome),
                   gbx_outcome_name(c->outcome));
        check_case_rc(fails, c->name, d.reason, c->reason);
        size_t rl = strlen(c->rule);
        int prefix = rl > 0 && c->rule[rl - 1] == ':';
        if (prefix ? strncmp(d.rule_id, c->rule, rl) != 0 : strcmp(d.rule_id, c->rule) != 0)
            S_FAIL(fails, c, "rule \"%s\", want %s\"%s\"", d.rule_id, prefix ? "prefix " : "",
                   c->rule);
        uint32_t want_v = prefix || rl == 0 ? 0 : c->rule_version ? c->rule_version : 1;
        if (d.rule_version != want_v)
            S_FAIL(fails, c, "rule version %u, want %u", (unsigned)d.rule_version,
                   (unsigned)want_v);
        if (memcmp(d.policy_hash, gbx_policy_hash(f->pol), GBX_HASH_BYTES) != 0)
            S_FAIL(fails, c, "decision's policy hash is not gbx_policy_hash");
        if (!memchr(d.why, '\0', sizeof d.why) || d.why[0] == '\0' || strchr(d.why, '\n'))
            S_FAIL(fails, c, "why is not one non-empty line");
        if (d.outcome == GBX_OUTCOME_DENY) {
            if (d.n_counts != 0)
                S_FAIL(fails, c, "a denial lists %zu counter increments", d.n_counts);
        } else {
            s_check_counts(c, &h, now, &d, &fails);
        }
        if (verbose)
            print_message("%-30s %-5s %-26s %s\n", c->name, gbx_outcome_name(d.outcome), d.rule_id,
                          d.why);
        if (fails != before)
            print_error("case \"%s\": decided %s by \"%s\" v%u: %s\n", c->name,
                        gbx_outcome_name(d.outcome), d.rule_id, (unsigned)d.rule_version, d.why);
    }
    print_message("%zu decision cases, %d differences\n", n, fails);
    if (fails)
        fail_msg("%d differences (above)", fails);
}

/* ---------------------------------------------------------------- loading */

static void test_load_default(void **state)
{
    s_fix_t *f = *state;
    char err[512] = "";
    assert_string_equal(gbx_policy_version(f->pol), "2026-11-22.1");
    assert_int_equal(gbx_policy_rule_count(f->pol), S_RULES);

    size_t len = 0;
    uint8_t *text = tu_read_file(GBX_DEFAULT_POLICY, &len);
    assert_non_null(text);
    uint8_t want[GBX_HASH_BYTES];
    crypto_generichash(want, sizeof want, text, len, NULL, 0);
    assert_memory_equal(gbx_policy_hash(f->pol), want, GBX_HASH_BYTES);

    /* stable across loads */
    gbx_policy_t *again = NULL;
    assert_rc(gbx_policy_load(GBX_DEFAULT_POLICY, f->reg, &again, err, sizeof err), GBX_OK);
    assert_memory_equal(gbx_policy_hash(again), gbx_policy_hash(f->pol), GBX_HASH_BYTES);
    gbx_policy_destroy(&again);
    assert_null(again);
    assert_rc(
        gbx_policy_parse("again.yaml", (const char *)text, len, f->reg, &again, err, sizeof err),
        GBX_OK);
    assert_memory_equal(gbx_policy_hash(again), want, GBX_HASH_BYTES);
    gbx_policy_destroy(&again);

    /* one byte changed (in the first comment line) changes the hash */
    assert_true(len > 2 && text[0] == '#');
    text[1] = text[1] == ' ' ? '#' : ' ';
    assert_rc(
        gbx_policy_parse("changed.yaml", (const char *)text, len, f->reg, &again, err, sizeof err),
        GBX_OK);
    assert_memory_not_equal(gbx_policy_hash(again), want, GBX_HASH_BYTES);
    gbx_policy_destroy(&again);
    text[1] = text[1] == ' ' ? '#' : ' ';

    /* the compiled-in sample is the file */
    assert_int_equal(gbx_policy_sample_len, len);
    assert_memory_equal(gbx_policy_sample, text, len);
    free(text);
}

/*  Invalid policies: the code, where (line, column; 0: any) and which setting. */
typedef struct {
    const char *name;
    const char *text;
    gbx_err_t rc;
    int line, col;
    const char *setting;
} s_bad_t;

#define S_HEAD "version: \"t\"\nrules:\n"

static const s_bad_t s_bad[] = {
    {"deny_with_require",
     S_HEAD "  - id: a\n"
            "    match: {service: [GD-AMR-USCC]}\n"
            "    require: {consent: NOTICE}\n"
            "    outcome: DENY\n",
     GBX_E_FIELD_INVALID, 5, 15, "rules.require"},
    {"date_with_sign",
     S_HEAD "  - id: a\n"
            "    effective_from: 2024-+1-01\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 4, 21, "rules.effective_from"},
    {"unknown_key",
     S_HEAD "  - id: a\n"
            "    match: {service: [GD-AMR-USCC]}\n"
            "    outcom: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 5, "rules"},
    {"unknown_top_key",
     "version: \"t\"\n"
     "rulez: []\n",
     GBX_E_FIELD_INVALID, 2, 1, "policy"},
    {"unknown_agency",
     S_HEAD "  - id: a\n"
            "    match:\n"
            "      requester: [hk.nowhere]\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 19, "match.requester"},
    {"unknown_group_in_route",
     "version: \"t\"\n"
     "routes:\n"
     "  - {ref: R-1, route: EXEMPTION, exporters: [gd-nobody]}\n"
     "rules:\n"
     "  - {id: a, outcome: ALLOW}\n",
     GBX_E_FIELD_INVALID, 3, 46, "routes.exporters"},
    {"unknown_service",
     S_HEAD "  - id: a\n"
            "    match:\n"
            "      service: [GD-SI-PAYCRT]\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 17, "match.service"},
    {"bad_date",
     S_HEAD "  - id: a\n"
            "    effective_from: 2026/11/22\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 4, 21, "rules.effective_from"},
    {"impossible_date",
     S_HEAD "  - id: a\n"
            "    outcome: ALLOW\n"
            "    effective_until: 2026-02-29\n",
     GBX_E_FIELD_INVALID, 5, 22, "rules.effective_until"},
    {"duplicate_rule_id",
     S_HEAD "  - id: same\n"
            "    outcome: ALLOW\n"
            "  - id: same\n"
            "    outcome: DENY\n",
     GBX_E_FIELD_INVALID, 5, 9, "rules.id"},
    {"duplicate_route_ref",
     "version: \"t\"\n"
     "routes:\n"
     "  - {ref: R-1, route: EXEMPTION}\n"
     "  - {ref: R-1, route: CERTIFICATION}\n"
     "rules: []\n",
     GBX_E_FIELD_INVALID, 4, 11, "routes.ref"},
    {"bad_outcome",
     S_HEAD "  - id: a\n"
            "    outcome: PERMIT\n",
     GBX_E_FIELD_INVALID, 4, 14, "rules.outcome"},
    {"bad_class",
     S_HEAD "  - id: a\n"
            "    match:\n"
            "      class: [PERSONAL, SECRET_PERSONAL]\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 25, "match.class"},
    {"bad_route",
     S_HEAD "  - id: a\n"
            "    require:\n"
            "      routes: [GBA_CONTRACT]\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 16, "require.routes"},
    {"empty_list",
     S_HEAD "  - id: a\n"
            "    match:\n"
            "      provider: []\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 0, "match.provider"},
    {"volume_without_cap",
     S_HEAD "  - id: a\n"
            "    volume:\n"
            "      at_cap: HOLD\n"
            "    outcome: ALLOW\n",
     GBX_E_FIELD_INVALID, 5, 0, "volume"},
    {"bad_yaml",
     S_HEAD "  - id: a\n"
            "    match: {service: [GD-AMR-USCC]\n"
            "    outcome: ALLOW\n",
     GBX_E_MALFORMED, 0, 0, NULL},
};

static void test_load_errors(void **state)
{
    s_fix_t *f = *state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const s_bad_t *b = &s_bad[i];
        char err[512] = "";
        gbx_policy_t *p = NULL;
        gbx_err_t rc =
            gbx_policy_parse("t.yaml", b->text, strlen(b->text), f->reg, &p, err, sizeof err);
        check_case_rc(fails, b->name, rc, b->rc);
        if (p) {
            print_error("case \"%s\": a policy despite the error\n", b->name);
            fails++;
            gbx_policy_destroy(&p);
        }
        int line = 0, col = 0, at = 0;
        if (sscanf(err, "t.yaml:%d:%d: %n", &line, &col, &at) != 2 || at == 0) {
            print_error("case \"%s\": error \"%s\" is not \"t.yaml:LINE:COL: ...\"\n", b->name,
                        err);
            fails++;
            continue;
        }
        if ((b->line && line != b->line) || (b->col && col != b->col)) {
            print_error("case \"%s\": at %d:%d, want %d:%d (%s)\n", b->name, line, col, b->line,
                        b->col, err);
            fails++;
        }
        if (b->setting && (strncmp(err + at, b->setting, strlen(b->setting)) != 0 ||
                           err[at + strlen(b->setting)] != ':')) {
            print_error("case \"%s\": setting of \"%s\", want %s\n", b->name, err, b->setting);
            fails++;
        }
    }
    if (fails)
        fail_msg("%d load error cases differ (above)", fails);
}

static gbx_err_t s_counter_fails(void *arg, const char *key, uint64_t *value)
{
    (void)arg, (void)key, (void)value;
    return GBX_E_STORE_FAILED;
}

/*  The PIPL art. 36 switch of the sample (pipl-art36-state-organs, off)
    turned on: a state organ's personal export on the GBA contract is
    denied by it (match.exporter, match.route); an HK exporter's message
    and a non-state exporter (gd.hkush) are not. */
static void test_art36_switch(void **state)
{
    s_fix_t *f = *state;
    size_t len = 0;
    char *text = (char *)tu_read_file(GBX_DEFAULT_POLICY, &len);
    assert_non_null(text);
    const char *off = "  - id: pipl-art36-state-organs\n    enabled: false\n";
    char *at = strstr(text, off);
    assert_non_null(at);
    memcpy(strstr(at, "false"), "true ", 5);
    gbx_policy_t *p = NULL;
    char err[256];
    assert_rc(gbx_policy_parse("art36.yaml", text, len, f->reg, &p, err, sizeof err), GBX_OK);
    free(text);
    gbx_header_t h;
    gbx_decision_t d;
    const tp_case_t *gov = tp_case("pipl_art36_off");
    assert_non_null(gov);
    tp_header(gov, TP_NOW, &h);
    assert_rc(gbx_policy_decide(p, f->reg, &h, TP_NOW, NULL, NULL, &d), GBX_OK);
    assert_int_equal(d.outcome, GBX_OUTCOME_DENY);
    assert_string_equal(d.rule_id, "pipl-art36-state-organs");
    assert_non_null(strstr(d.why, "security assessment"));
    static const char *const others[] = {"sp_gd_hk_ehr_upload", "pi_hk_gd_uscc_request"};
    for (size_t i = 0; i < 2; i++) {
        const tp_case_t *c = tp_case(others[i]);
        assert_non_null(c);
        tp_header(c, TP_NOW, &h);
        assert_rc(gbx_policy_decide(p, f->reg, &h, TP_NOW, NULL, NULL, &d), GBX_OK);
        assert_int_equal(d.outcome, GBX_OUTCOME_ALLOW);
    }
    gbx_policy_destroy(&p);
}

static void test_decide_args(void **state)
{
    s_fix_t *f = *state;
    gbx_header_t h;
    gbx_decision_t d;
    tp_header(&tp_cases[0], TP_NOW, &h);
    assert_rc(gbx_policy_decide(NULL, f->reg, &h, TP_NOW, NULL, NULL, &d), GBX_E_ARG);
    assert_rc(gbx_policy_decide(f->pol, NULL, &h, TP_NOW, NULL, NULL, &d), GBX_E_ARG);
    assert_rc(gbx_policy_decide(f->pol, f->reg, NULL, TP_NOW, NULL, NULL, &d), GBX_E_ARG);
    assert_rc(gbx_policy_decide(f->pol, f->reg, &h, TP_NOW, NULL, NULL, NULL), GBX_E_ARG);
    /* a rule with a cap reads its counter: an error there is returned */
    const tp_case_t *ex = tp_case("pi_gd_hk_exemption_under");
    assert_non_null(ex);
    tp_header(ex, TP_NOW, &h);
    assert_rc(gbx_policy_decide(f->pol, f->reg, &h, TP_NOW, s_counter_fails, NULL, &d),
              GBX_E_STORE_FAILED);
    /* no counter: every counter 0 */
    assert_rc(gbx_policy_decide(f->pol, f->reg, &h, TP_NOW, NULL, NULL, &d), GBX_OK);
    assert_int_equal(d.outcome, GBX_OUTCOME_ALLOW);
    assert_string_equal(gbx_outcome_name(GBX_OUTCOME_ALLOW), "ALLOW");
    assert_string_equal(gbx_outcome_name(GBX_OUTCOME_DENY), "DENY");
    assert_string_equal(gbx_outcome_name(GBX_OUTCOME_HOLD), "HOLD");
    gbx_policy_t *p = NULL;
    char err[256];
    assert_rc(gbx_policy_load(NULL, f->reg, &p, NULL, 0), GBX_E_ARG);
    assert_rc(gbx_policy_parse("x", "version: x", 10, NULL, &p, NULL, 0), GBX_E_ARG);
    assert_rc(gbx_policy_load("/nonexistent/policy.yaml", f->reg, &p, err, sizeof err), GBX_E_IO);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_default), cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_load_errors),  cmocka_unit_test(test_decide_args),
        cmocka_unit_test(test_art36_switch),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
