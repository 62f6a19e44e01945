/*  gbx-bench policy: nanoseconds per policy decision (bench_policy.h). */
#include "bench_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"

#define S_MS_PER_RUN 300

static double s_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*  A policy of N rules over the registry's services. SPREAD: rules spread
    evenly over the services (as a real policy reads); else every rule on
    the one service the benchmark asks about, the worst case. Each rule
    matches a purpose of its own, so only the last one of the asked service
    matches; that one allows with requirements and a volume cap. */
static char *s_policy_text(const gbx_registry_t *reg, size_t n, int spread)
{
    size_t ns = gbx_registry_service_count(reg);
    size_t cap = 512 + n * 512;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    size_t len = (size_t)snprintf(t, cap,
                                  "version: bench-%zu\n"
                                  "routes:\n"
                                  "  - {ref: GBA-SC-BENCH, route: GBA_STANDARD_CONTRACT,\n"
                                  "     valid_from: 2024-11-01, valid_until: 2099-12-31}\n"
                                  "rules:\n",
                                  n);
    for (size_t i = 0; i < n && len < cap; i++) {
        const gbx_service_t *s = gbx_registry_service_at(reg, spread ? i % ns : 0);
        int last = i == n - 1;
        if (last)
            s = gbx_registry_service_at(reg, 0);
        len += (size_t)snprintf(
            t + len, cap - len,
            "  - id: r%zu\n"
            "    match: {direction: [GD_TO_HK, HK_TO_GD], service: [%s], kind: [REQUEST],\n"
            "            class: [PUBLIC, INTERNAL, PERSONAL, SENSITIVE_PERSONAL],\n"
            "            purpose: [%s]}\n"
            "    require: {routes: [GBA_STANDARD_CONTRACT], route_ref_valid: true,\n"
            "              consent: CONSENT, impact_assessment: true, max_ttl: 1d}\n"
            "    volume: {subjects_per_year: 1000000, at_cap: HOLD}\n"
            "    outcome: ALLOW\n",
            i, s->code, last ? "BENCH" : "OTHER");
    }
    return t;
}

static gbx_err_t s_counter(void *arg, const char *key, uint64_t *value)
{
    (void)arg, (void)key;
    *value = 12345;
    return GBX_OK;
}

/*  Median ns per decision of H over RUNS runs. */
static double s_time(const gbx_policy_t *p, const gbx_registry_t *reg, const gbx_header_t *h,
                     uint64_t now, int runs, gbx_outcome_t *outcome)
{
    double ns[64];
    gbx_decision_t d;
    for (int r = 0; r < runs; r++) {
        double t0 = s_clock(), t;
        long n = 0;
        do {
            for (int k = 0; k < 100; k++)
                gbx_policy_decide(p, reg, h, now, s_counter, NULL, &d);
            n += 100;
            t = s_clock();
        } while ((t - t0) * 1000 < S_MS_PER_RUN);
        ns[r] = (t - t0) * 1e9 / (double)n;
    }
    *outcome = d.outcome;
    qsort(ns, (size_t)runs, sizeof ns[0], s_cmp);
    return ns[runs / 2];
}

int gbx_bench_policy(int runs)
{
    if (runs < 1 || runs > 64)
        return 2;
    char dir[] = "/tmp/gbx-bench-policy-XXXXXX";
    char *path = NULL, err[512];
    gbx_config_t *cfg = NULL;
    if (!mkdtemp(dir))
        return 1;
    char home[sizeof dir + 8];
    snprintf(home, sizeof home, "%s/home", dir);
    int rc = 1;
    if (gbx_config_write_default(home, &path) != GBX_OK ||
        gbx_config_load(path, &cfg, err, sizeof err) != GBX_OK) {
        fprintf(stderr, "gbx-bench policy: the demo configuration: %s\n", err);
        goto out;
    }
    const gbx_registry_t *reg = gbx_config_registry(cfg);
    const gbx_service_t *svc = gbx_registry_service_at(reg, 0);
    gbx_header_t h = GBX__V1__HEADER__INIT;
    uint64_t now = 1795000000000ull; /* 2026-11 */
    h.from_agency = "gd.qh-amr";
    h.to_agency = (char *)svc->provider;
    h.service_code = (char *)svc->code;
    h.service_version = svc->version;
    h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h.data_class = svc->data_class;
    h.hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h.purpose_code = "BENCH";
    h.legal_route = GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT;
    h.legal_route_ref = "GBA-SC-BENCH";
    h.consent_ref = "C-1";
    h.consent_type = GBX__V1__CONSENT_TYPE__CONSENT;
    h.impact_assessment_ref = "PIA-1";
    h.subject_count = 1;
    h.created_at_ms = now;
    h.expires_at_ms = now + 3600000;
    printf("gbx-bench policy: ns per decision (gbx_policy_decide), median of %d runs of %d ms;\n"
           "the deciding rule is the last of the file, with requirements and a volume cap\n\n",
           runs, S_MS_PER_RUN);
    printf("%-8s %-40s %12s %8s\n", "rules", "layout", "ns/decision", "outcome");
    static const size_t sizes[] = {10, 100, 1000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int spread = 1; spread >= 0; spread--) {
            char *text = s_policy_text(reg, sizes[si], spread);
            gbx_policy_t *p = NULL;
            if (!text || gbx_policy_parse("bench.yaml", text, strlen(text), reg, &p, err,
                                          sizeof err) != GBX_OK) {
                fprintf(stderr, "gbx-bench policy: %s\n", err);
                free(text);
                goto out;
            }
            gbx_outcome_t o;
            double ns = s_time(p, reg, &h, now, runs, &o);
            printf("%-8zu %-40s %12.0f %8s\n", sizes[si],
                   spread ? "spread over the 12 services" : "all on the service asked about", ns,
                   gbx_outcome_name(o));
            printf("policy key=value: rules=%zu spread=%d ns_per_decision=%.1f\n", sizes[si],
                   spread, ns);
            gbx_policy_destroy(&p);
            free(text);
        }
    }
    rc = 0;
out:
    gbx_config_destroy(&cfg);
    free(path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
