/*  gbx-bench audit: the trail's cost to seal and to verify (bench_audit.h). */
#include "bench_audit.h"

#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "gbx/identity.h"
#include "store.h"
#include "trail.h"

#define S_GROUP 256u
#define S_EVERY 1000u

static double s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/*  An ACCEPTED record as the ingress writes it, for message I. */
static void s_record(gbx_audit_t *a, uint64_t i)
{
    uint8_t id[16], hash[32];
    memcpy(id, &i, sizeof i);
    memset(id + 8, 0x5a, 8);
    crypto_generichash(hash, sizeof hash, id, sizeof id, NULL, 0);
    gbx_audit_begin(a, "ACCEPTED", 1796421974051ull + i);
    gbx_audit_str(a, "reason", "OK");
    gbx_audit_str(a, "auth", "hk.kiosk");
    gbx_audit_u64(a, "seq", i + 1);
    gbx_audit_hex(a, "message_id", id, sizeof id);
    gbx_audit_hex(a, "header_hash", hash, sizeof hash);
    gbx_audit_str(a, "from", "hk.kiosk");
    gbx_audit_str(a, "to", "gd.tax");
    gbx_audit_str(a, "service", "GD-SI-PAYCERT");
    gbx_audit_u64(a, "service_version", 1);
    gbx_audit_str(a, "class", "PERSONAL");
    gbx_audit_str(a, "kind", "REQUEST");
    gbx_audit_str(a, "marking", "HK_MARKING_NONE");
    gbx_audit_str(a, "purpose", "SI-CERT");
    gbx_audit_str(a, "route", "GBA_STANDARD_CONTRACT");
    gbx_audit_str(a, "route_ref", "GBA-SC-2024-0193");
    gbx_audit_str(a, "consent", "SEPARATE_CONSENT");
    gbx_audit_str(a, "consent_ref", "PA-2026-55120");
    gbx_audit_str(a, "end_user", "iamsmart:5f3c9a");
    gbx_audit_u64(a, "subjects", 1);
    gbx_audit_u64(a, "created_at_ms", 1796421974000ull + i);
    gbx_audit_u64(a, "expires_at_ms", 1796425574000ull + i);
    gbx_audit_u64(a, "payload_length", 1024);
    gbx_audit_hex(a, "payload_hash", hash, sizeof hash);
    gbx_audit_str(a, "rule_id", "sp-hk-gd-paycert-request");
    gbx_audit_u64(a, "rule_version", 1);
    gbx_audit_hex(a, "policy_hash", hash, sizeof hash);
    gbx_audit_str(a, "decision", "ALLOW");
    gbx_audit_text(a, "why", "rule sp-hk-gd-paycert-request allows: route, consent checked");
}

/*  One group of records [FROM, FROM + N) into ST, through the trail or as
    plain puts under be64 keys; its CPU seconds added to *CPU. */
static int s_group(gbx_store_t *st, int trail, uint64_t from, size_t n, double *cpu)
{
    double c0 = s_clock(CLOCK_THREAD_CPUTIME_ID);
    gbx_batch_t *b = NULL;
    int ok = gbx_batch_new(st, &b) == GBX_OK;
    for (size_t k = 0; ok && k < n; k++) {
        gbx_audit_t a;
        s_record(&a, from + k);
        if (trail) {
            ok = gbx_audit_put(b, &a) == GBX_OK;
        } else {
            uint8_t key[GBX_STORE_SEQ_KEY_BYTES];
            gbx_store_seq_key(from + k, key);
            ok = gbx_batch_put(b, GBX_KS_AUDIT, key, sizeof key, a.buf, a.len) == GBX_OK;
        }
    }
    ok = ok && gbx_store_write(st, &b) == GBX_OK;
    gbx_batch_destroy(&b);
    *cpu += s_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
    return ok;
}

/*  Runs gbx-audit verify over DATA; its wall seconds, or < 0. */
static double s_verify(const char *audit, const char *data, const char *pub, size_t count)
{
    char *cmd = NULL;
    if (asprintf(&cmd, "'%s' --data '%s' --node-key '%s' --json verify", audit, data, pub) < 0)
        return -1;
    double t0 = s_clock(CLOCK_MONOTONIC);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return -1;
    char line[1024] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    int st = pclose(p);
    double t = s_clock(CLOCK_MONOTONIC) - t0;
    char want[64];
    snprintf(want, sizeof want, "\"records\":%zu,", count);
    if (st != 0 || !strstr(line, "\"ok\":true") || !strstr(line, want)) {
        fprintf(stderr, "gbx-bench audit: verify failed: %s", line);
        return -1;
    }
    return t;
}

static int s_count_match(void *arg, const uint8_t *rec, size_t len)
{
    (void)rec, (void)len;
    ++*(size_t *)arg;
    return 0;
}

/*  One message's records found by reading the whole trail in DATA (what
    gbxctl messages show does in gbxd): its wall seconds, or < 0. */
static double s_grep(const char *data, uint64_t i)
{
    gbx_store_opts_t so;
    gbx_store_opts_init(&so);
    so.read_only = true;
    gbx_store_t *st = NULL;
    if (gbx_store_open(data, &so, &st) != GBX_OK)
        return -1;
    gbx_audit_t a;
    s_record(&a, i);
    size_t n = 0, idlen = 0;
    const char *id = gbx_audit_field((const char *)a.buf, a.len, "message_id", &idlen);
    char needle[64];
    snprintf(needle, sizeof needle, "message_id=%.*s\n", (int)idlen, id ? id : "");
    double t0 = s_clock(CLOCK_MONOTONIC);
    gbx_err_t rc = gbx_trail_grep(st, 0, needle, strlen(needle), s_count_match, &n, NULL, NULL);
    double t = s_clock(CLOCK_MONOTONIC) - t0;
    gbx_store_destroy(&st);
    return rc == GBX_OK && n == 1 ? t : -1;
}

int gbx_bench_audit(const char *self, size_t count, int runs)
{
    if (count < S_GROUP || runs < 1 || runs > 64 || sodium_init() < 0)
        return 2;
    char dir[] = "/tmp/gbx-bench-audit-XXXXXX", trail_dir[PATH_MAX], plain_dir[PATH_MAX],
         pub[PATH_MAX], audit[PATH_MAX], me[PATH_MAX];
    if (!mkdtemp(dir))
        return 1;
    snprintf(trail_dir, sizeof trail_dir, "%s/trail", dir);
    snprintf(plain_dir, sizeof plain_dir, "%s/plain", dir);
    snprintf(pub, sizeof pub, "%s/bench-1.pub", dir);
    snprintf(me, sizeof me, "%s", self);
    snprintf(audit, sizeof audit, "%s/gbx-audit", dirname(me));
    gbx_identity_t *node = NULL;
    gbx_store_t *a = NULL, *b = NULL;
    gbx_store_opts_t so;
    gbx_store_opts_init(&so);
    so.sync = false; /* the fsync is the same for both: what differs is the work */
    int rc = 1;
    if (gbx_identity_generate("bench-1", &node) != GBX_OK ||
        gbx_identity_save(node, dir, 0) != GBX_OK || gbx_store_open(trail_dir, &so, &a) != GBX_OK ||
        gbx_store_open(plain_dir, &so, &b) != GBX_OK ||
        gbx_trail_set_signer(gbx_store_trail(a), "bench-1", gbx_identity_sign_sk(node), S_EVERY,
                             NULL, NULL) != GBX_OK)
        goto out;
    gbx_audit_t sample;
    s_record(&sample, count);
    printf("gbx-bench audit: %zu ACCEPTED records (%zu bytes each before sealing), groups of %u, "
           "a checkpoint every %u\n\n",
           count, sample.len, S_GROUP, S_EVERY);
    double cpu_trail = 0, cpu_plain = 0;
    for (uint64_t at = 0; at < count; at += S_GROUP) {
        size_t n = count - at < S_GROUP ? count - at : S_GROUP;
        if (!s_group(a, 1, at, n, &cpu_trail) || !s_group(b, 0, at, n, &cpu_plain))
            goto out;
    }
    if (gbx_store_sync(a) != GBX_OK || gbx_store_sync(b) != GBX_OK)
        goto out;
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(a), &h);
    gbx_store_destroy(&a);
    gbx_store_destroy(&b);
    double us_trail = cpu_trail * 1e6 / (double)count, us_plain = cpu_plain * 1e6 / (double)count;
    printf("sealing, CPU per record (writer thread, one run, alternating groups):\n"
           "  through the trail (number, chain, tree, checkpoints)  %7.2f us\n"
           "  plain puts into the audit keyspace                   %7.2f us\n"
           "  the trail's own cost                                 %7.2f us per record\n\n",
           us_trail, us_plain, us_trail - us_plain);
    double secs[64];
    for (int r = 0; r < runs; r++)
        if ((secs[r] = s_verify(audit, trail_dir, pub, count)) < 0)
            goto out;
    qsort(secs, (size_t)runs, sizeof secs[0], s_cmp);
    double med = secs[runs / 2];
    double greps[64];
    for (int r = 0; r < runs; r++)
        if ((greps[r] = s_grep(trail_dir, count - 1 - (uint64_t)r)) < 0) {
            fprintf(stderr, "gbx-bench audit: the message's record was not found\n");
            goto out;
        }
    qsort(greps, (size_t)runs, sizeof greps[0], s_cmp);
    double grep_med = greps[runs / 2];
    printf("gbx-audit verify of %zu records, %" PRIu64 " checkpoints (median of %d): %.2f s = "
           "%.0f records/s\n",
           count, h.checkpoint / S_EVERY, runs, med, (double)count / med);
    printf("one message's records out of %zu (gbxctl messages show; median of %d): %.2f s\n", count,
           runs, grep_med);
    printf("audit-median key=value: records=%zu seal_trail_us=%.2f seal_plain_us=%.2f "
           "seal_cost_us=%.2f verify_s=%.3f verify_per_s=%.0f message_show_s=%.3f\n",
           count, us_trail, us_plain, us_trail - us_plain, med, (double)count / med, grep_med);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "gbx-bench audit: failed\n");
    gbx_store_destroy(&a);
    gbx_store_destroy(&b);
    gbx_identity_destroy(&node);
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
