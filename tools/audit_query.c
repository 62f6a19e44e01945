/*  audit_query.c: owns gbx-audit's reading commands: show (one record, or
    the whole life of a message), query (the records that match filters)
    and export (a range of the trail as JSON Lines that verify, or as CSV).
    The formats are in tools/audit_tool.h; the trail is broker/trail.h. Records
    are read as stored, whatever their bytes: human output replaces control
    and non-ASCII bytes with '?'. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit_tool.h"

#include "audit.h"
#include "trail.h"

#define S_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)
#define S_SHORT      64 /* characters of a value in a query's line */

/* ------------------------------------------------------------- records */

/*  A record as stored: index (from its key) and sealed bytes. */
typedef struct {
    uint64_t i;
    const char *text;
    size_t len;
} s_rec_t;

/*  One line of a record: KEY=VAL (EQ 0: no '=', the line is all key). */
typedef struct {
    const char *key, *val;
    size_t klen, vlen;
    int eq;
} s_kv_t;

/*  The line of TEXT (LEN bytes) at *AT into KV, moving *AT past it; 0 at the end. */
static int s_line(const char *text, size_t len, size_t *at, s_kv_t *kv)
{
    if (*at >= len)
        return 0;
    const char *line = text + *at;
    const char *nl = memchr(line, '\n', len - *at);
    size_t l = nl ? (size_t)(nl - line) : len - *at;
    const char *eq = memchr(line, '=', l);
    *at += l + 1;
    kv->key = line;
    kv->eq = eq != NULL;
    kv->klen = eq ? (size_t)(eq - line) : l;
    kv->val = eq ? eq + 1 : line + l;
    kv->vlen = eq ? l - kv->klen - 1 : 0;
    return 1;
}

/*  The first line KEY=value of R (its key's address in *LINE if LINE); NULL if none. */
static const char *s_field_at(const s_rec_t *r, const char *key, size_t *vlen, const char **line)
{
    const char *v = gbx_audit_field(r->text, r->len, key, vlen);
    if (v && line)
        *line = v - strlen(key) - 1;
    return v;
}

static const char *s_field(const s_rec_t *r, const char *key, size_t *vlen)
{
    return s_field_at(r, key, vlen, NULL);
}

/*  The data class (the broker writes it as "class"). */
static const char *s_class(const s_rec_t *r, size_t *vlen, const char **line)
{
    return s_field_at(r, "class", vlen, line);
}

/*  1 if value V (N bytes) is WANT (case-insensitive if CI). */
static int s_is(const char *v, size_t n, const char *want, int ci)
{
    if (!v || n != strlen(want))
        return 0;
    return ci ? strncasecmp(v, want, n) == 0 : memcmp(v, want, n) == 0;
}

static int s_has(const s_rec_t *r, const char *key, const char *want, int ci)
{
    size_t n = 0;
    const char *v = s_field(r, key, &n);
    return s_is(v, n, want, ci);
}

/*  1 if R's message_id is ID or starts with it (hex, any case). */
static int s_message_is(const s_rec_t *r, const char *id)
{
    size_t n = 0, k = strlen(id);
    const char *v = s_field(r, "message_id", &n);
    return v && k > 0 && k <= n && strncasecmp(v, id, k) == 0;
}

/*  The numeric value of KEY in R, or DFLT. */
static uint64_t s_field_u64(const s_rec_t *r, const char *key, uint64_t dflt)
{
    size_t n = 0;
    const char *v = s_field(r, key, &n);
    if (!v || n == 0 || n > 20)
        return dflt;
    uint64_t x = 0;
    for (size_t k = 0; k < n; k++) {
        if (v[k] < '0' || v[k] > '9' || x > (UINT64_MAX - 9) / 10)
            return dflt;
        x = x * 10 + (uint64_t)(v[k] - '0');
    }
    return x;
}

/*  N bytes of V, printable ASCII kept and the rest '?', into OUT (CAP > 0). */
static char *s_clean(const char *v, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++) {
        unsigned char c = (unsigned char)v[k];
        out[k] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[k] = '\0';
    return out;
}

/*  KEY's value in R, cleaned (at most CAP - 1 characters), or "-". */
static char *s_val(const s_rec_t *r, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    const char *v = s_field(r, key, &n);
    return v ? s_clean(v, n, out, cap) : strcpy(out, "-");
}

/*  MS as "2026-12-04T10:00:00.000Z" (OUT: 32 bytes). */
static char *s_iso(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms / 1000 > (uint64_t)253402300799LL || !gmtime_r(&t, &tm)) {
        snprintf(out, 32, "%" PRIu64 "ms", ms);
        return out;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
    return out;
}

/* ------------------------------------------------------------ arguments */

static int s_u64_arg(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/*  T: milliseconds since 1970, or "2026-12-04", or "2026-12-04T10:00:00Z"
    (UTC; seconds may have a fraction of up to 3 digits). */
static int s_time_arg(const char *s, uint64_t *out)
{
    if (s_u64_arg(s, out) == 0)
        return 0;
    struct tm tm = {0};
    int n = 0, frac = 0, fn = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return -1;
    const char *p = s + n;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 8)
            return -1;
        p += 1 + m;
        if (*p == '.' && sscanf(p + 1, "%3d%n", &frac, &fn) == 1 && fn > 0) {
            for (int k = fn; k < 3; k++)
                frac *= 10;
            p += 1 + fn;
        }
        if (*p == 'Z' || *p == 'z')
            p++;
    }
    if (*p || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *out = (uint64_t)t * 1000 + (uint64_t)frac;
    return 0;
}

static int s_bad_arg(const char *cmd, const char *opt, const char *arg)
{
    fprintf(stderr, "gbx-audit %s: bad %s '%s' (see gbx-audit --help)\n", cmd, opt, arg);
    return GBX_AUDIT_USAGE;
}

/* --------------------------------------------------------------- reading */

/*  The store's error text after a failed read. */
static int s_store_fail(gbx_audit_tool_t *t, const char *what, gbx_err_t rc)
{
    char err[256];
    gbx_store_last_error(t->store, err, sizeof err);
    fprintf(stderr, "gbx-audit: cannot read %s: %s%s%s\n", what, gbx_err_name(rc), *err ? ": " : "",
            err);
    return GBX_AUDIT_FAIL;
}

/*  An iterator over the records from index FROM. */
static gbx_err_t s_iter(gbx_audit_tool_t *t, uint64_t from, gbx_trail_iter_t **it)
{
    return gbx_trail_iter_new(t->store, from, it);
}

/*  The next record of IT into R (its index from its i= line, UINT64_MAX
    if it has none); 0 at the end. */
static int s_iter_rec(gbx_trail_iter_t *it, s_rec_t *r)
{
    const uint8_t *v;
    size_t vlen;
    if (!gbx_trail_iter_next(it, &v, &vlen))
        return 0;
    gbx_trail_rec_t p;
    r->i = gbx_trail_parse(v, vlen, &p) == GBX_OK ? p.index : UINT64_MAX;
    r->text = (const char *)v;
    r->len = vlen;
    return 1;
}

/*  The trail's first kept record, the chain before it and its peaks. */
static int s_anchor(gbx_audit_tool_t *t, uint64_t *first, gbx_hash_t chain,
                    gbx_merkle_peaks_t *peaks)
{
    gbx_err_t rc = gbx_trail_anchor(t->store, first, chain, peaks);
    return rc == GBX_OK ? GBX_AUDIT_OK : s_store_fail(t, "the trail's anchor", rc);
}

/*  Record I into *BUF (malloc'ed; NULL if absent). */
static int s_get(gbx_audit_tool_t *t, uint64_t i, uint8_t **buf, s_rec_t *r)
{
    size_t vlen = 0;
    gbx_err_t rc = gbx_trail_get(t->store, i, buf, &vlen);
    if (rc != GBX_OK)
        return s_store_fail(t, "a record", rc);
    r->i = i;
    r->text = (const char *)*buf;
    r->len = vlen;
    return GBX_AUDIT_OK;
}

/* ------------------------------------------------------------------ JSON */

/*  N bytes of V as a JSON string; bytes that are not UTF-8 become '?'
    unless STRICT (then NULL). */
static json_t *s_jstr(const char *v, size_t n, int strict)
{
    json_t *s = json_stringn(v, n);
    if (s || strict)
        return s;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t k = 0; k < n; k++)
        c[k] = (unsigned char)v[k] < 0x80 ? v[k] : '?';
    s = json_stringn(c, n);
    free(c);
    return s;
}

/*  Adds KV to O; a key seen before gets ",value" appended. */
static int s_jfield(json_t *o, const s_kv_t *kv)
{
    char key[128];
    s_clean(kv->key, kv->klen, key, sizeof key);
    json_t *v = s_jstr(kv->val, kv->vlen, 0);
    json_t *old = json_object_get(o, key);
    if (v && json_is_string(old)) {
        size_t n1 = json_string_length(old), n2 = json_string_length(v);
        char *j = malloc(n1 + n2 + 2);
        if (j) {
            memcpy(j, json_string_value(old), n1);
            j[n1] = ',';
            memcpy(j + n1 + 1, json_string_value(v), n2);
            json_decref(v);
            v = json_stringn(j, n1 + n2 + 1);
            free(j);
        } else {
            json_decref(v);
            v = NULL;
        }
    }
    return v ? json_object_set_new(o, key, v) : -1;
}

/*  R's key=value lines as an object (i and chain included). */
static json_t *s_jfields(const s_rec_t *r)
{
    json_t *o = json_object();
    size_t at = 0;
    s_kv_t kv;
    while (o && s_line(r->text, r->len, &at, &kv))
        if (kv.eq && s_jfield(o, &kv) != 0) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

/*  {"i":..,"fields":{..}} (TYPE first when set; "sealed" when SEALED: 1
    cleaned, 2 exact or NULL). */
static json_t *s_jrec(const s_rec_t *r, const char *type, int sealed)
{
    json_t *o = json_object(), *f = s_jfields(r);
    json_t *s = sealed ? s_jstr(r->text, r->len, sealed == 2) : NULL;
    if (!o || !f || (sealed && !s)) {
        json_decref(o);
        json_decref(f);
        json_decref(s);
        return NULL;
    }
    if (type)
        json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "i", json_integer((json_int_t)r->i));
    if (s)
        json_object_set_new(o, "sealed", s);
    json_object_set_new(o, "fields", f);
    return o;
}

/*  Writes O (stolen) and a newline to OUT. */
static int s_jline(FILE *out, json_t *o)
{
    int rc = o ? json_dumpf(o, out, S_JSON_FLAGS) : -1;
    json_decref(o);
    if (rc == 0 && fputc('\n', out) == EOF)
        rc = -1;
    return rc;
}

/* ----------------------------------------------------------------- query */

typedef struct {
    const char *message, *agency, *service, *cls, *decision, *event, *reason;
    uint64_t since, until; /* at_ms in [since, until) */
    uint64_t from_i, to_i; /* index in [from_i, to_i) */
    uint64_t limit;        /* 0: all */
} s_filter_t;

static int s_agency_is(const s_rec_t *r, const char *a)
{
    return s_has(r, "from", a, 0) || s_has(r, "to", a, 0) || s_has(r, "id", a, 0) ||
           s_has(r, "by", a, 0);
}

static int s_match(const s_filter_t *f, const s_rec_t *r)
{
    size_t n = 0;
    if (f->message && !s_message_is(r, f->message))
        return 0;
    if (f->agency && !s_agency_is(r, f->agency))
        return 0;
    if (f->service && !s_has(r, "service", f->service, 0))
        return 0;
    if (f->cls) {
        const char *c = s_class(r, &n, NULL);
        if (!s_is(c, n, f->cls, 1))
            return 0;
    }
    if ((f->decision && !s_has(r, "decision", f->decision, 1)) ||
        (f->event && !s_has(r, "event", f->event, 1)) ||
        (f->reason && !s_has(r, "reason", f->reason, 1)))
        return 0;
    if (f->since || f->until != UINT64_MAX) {
        uint64_t at = s_field_u64(r, "at_ms", UINT64_MAX);
        if (at == UINT64_MAX || at < f->since || at >= f->until)
            return 0;
    }
    return 1;
}

static void s_query_header(void)
{
    printf("%8s  %-24s  %-15s  %-12s  %-28s  %-16s  %-18s  %s\n", "I", "TIME (UTC)", "EVENT",
           "MESSAGE", "FROM -> TO", "SERVICE", "CLASS", "DECISION/REASON");
}

/*  "from -> to", or who else the record is about (id, node, by). */
static char *s_who(const s_rec_t *r, char *out, size_t cap)
{
    char a[S_SHORT], b[S_SHORT];
    size_t n = 0;
    if (s_field(r, "from", &n) || s_field(r, "to", &n)) {
        snprintf(out, cap, "%s -> %s", s_val(r, "from", a, sizeof a), s_val(r, "to", b, sizeof b));
        return out;
    }
    const char *keys[] = {"id", "node", "by"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (s_field(r, keys[k], &n))
            return s_val(r, keys[k], out, cap);
    return strcpy(out, "-");
}

/*  "decision/reason", either alone, or "-" (a reason "OK" is left out). */
static char *s_outcome(const s_rec_t *r, char *out, size_t cap)
{
    char d[S_SHORT], why[S_SHORT];
    size_t dn = 0, rn = 0;
    int hd = s_field(r, "decision", &dn) != NULL;
    const char *rv = s_field(r, "reason", &rn);
    int hr = rv && !s_is(rv, rn, "OK", 0);
    s_val(r, "decision", d, sizeof d);
    s_val(r, "reason", why, sizeof why);
    snprintf(out, cap, "%s%s%s", hd ? d : "", hd && hr ? "/" : "", hr ? why : (hd ? "" : "-"));
    return out;
}

static void s_query_line(const s_rec_t *r)
{
    char at[32], ev[S_SHORT], id[13], who[2 * S_SHORT + 8], svc[S_SHORT], cls[S_SHORT];
    char out[2 * S_SHORT + 2];
    size_t n = 0;
    uint64_t ms = s_field_u64(r, "at_ms", UINT64_MAX);
    const char *c = s_class(r, &n, NULL);
    printf("%8" PRIu64 "  %-24s  %-15s  %-12s  %-28s  %-16s  %-18s  %s\n", r->i,
           ms == UINT64_MAX ? "-" : s_iso(ms, at), s_val(r, "event", ev, sizeof ev),
           s_val(r, "message_id", id, sizeof id), s_who(r, who, sizeof who),
           s_val(r, "service", svc, sizeof svc), c ? s_clean(c, n, cls, sizeof cls) : "-",
           s_outcome(r, out, sizeof out));
}

static const char s_query_usage[] =
    "usage: gbx-audit query [filters] [--limit N]\n"
    "  --message ID       message_id is ID (or starts with it)\n"
    "  --agency A         from, to, id or by is A\n"
    "  --service S  --class C  --decision D  --event E  --reason R\n"
    "  --since T          at_ms >= T; --until T: at_ms < T (T: ms, 2026-12-04,\n"
    "                     2026-12-04T10:00:00Z; UTC)\n"
    "  --from-index N     records N and after; --to-index N: records before N\n"
    "  --limit N          the first N matches (default 100; 0: all)\n";

/*  Parses query's options into F; GBX_AUDIT_OK or GBX_AUDIT_USAGE. */
static int s_query_opts(gbx_audit_tool_t *t, int argc, char **argv, s_filter_t *f)
{
    enum { O_MSG = 256, O_AG, O_SVC, O_CLS, O_DEC, O_EV, O_RSN, O_SINCE, O_UNTIL, O_FI, O_TI };
    static const struct option longs[] = {{"message", required_argument, 0, O_MSG},
                                          {"agency", required_argument, 0, O_AG},
                                          {"service", required_argument, 0, O_SVC},
                                          {"class", required_argument, 0, O_CLS},
                                          {"decision", required_argument, 0, O_DEC},
                                          {"event", required_argument, 0, O_EV},
                                          {"reason", required_argument, 0, O_RSN},
                                          {"since", required_argument, 0, O_SINCE},
                                          {"until", required_argument, 0, O_UNTIL},
                                          {"from-index", required_argument, 0, O_FI},
                                          {"to-index", required_argument, 0, O_TI},
                                          {"limit", required_argument, 0, 'n'},
                                          {"json", no_argument, 0, 'j'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    *f = (s_filter_t){.until = UINT64_MAX, .to_i = UINT64_MAX, .limit = 100};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "n:h", longs, NULL)) != -1) {
        const char **str[] = {&f->message,  &f->agency, &f->service, &f->cls,
                              &f->decision, &f->event,  &f->reason};
        if (c >= O_MSG && c <= O_RSN)
            *str[c - O_MSG] = optarg;
        else if (c == O_SINCE && s_time_arg(optarg, &f->since) != 0)
            return s_bad_arg("query", "--since", optarg);
        else if (c == O_UNTIL && s_time_arg(optarg, &f->until) != 0)
            return s_bad_arg("query", "--until", optarg);
        else if (c == O_FI && s_u64_arg(optarg, &f->from_i) != 0)
            return s_bad_arg("query", "--from-index", optarg);
        else if (c == O_TI && s_u64_arg(optarg, &f->to_i) != 0)
            return s_bad_arg("query", "--to-index", optarg);
        else if (c == 'n' && s_u64_arg(optarg, &f->limit) != 0)
            return s_bad_arg("query", "--limit", optarg);
        else if (c == 'j')
            t->json = 1;
        else if (c == 'h' || c == '?') {
            fputs(s_query_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? -1 : GBX_AUDIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gbx-audit query: unexpected '%s'\n%s", argv[optind], s_query_usage);
        return GBX_AUDIT_USAGE;
    }
    return GBX_AUDIT_OK;
}

/*  Prints the records that match F; *MATCHED their count. */
static int s_query_scan(gbx_audit_tool_t *t, const s_filter_t *f, uint64_t first, uint64_t *matched)
{
    gbx_trail_iter_t *it = NULL;
    gbx_err_t rc = s_iter(t, f->from_i > first ? f->from_i : first, &it);
    if (rc != GBX_OK)
        return s_store_fail(t, "the records", rc);
    int more = 0;
    s_rec_t r;
    while (s_iter_rec(it, &r)) {
        if (r.i == UINT64_MAX)
            continue;
        if (r.i >= f->to_i)
            break;
        if (!s_match(f, &r))
            continue;
        if (f->limit && *matched == f->limit) {
            more = 1;
            break;
        }
        if (t->json)
            s_jline(stdout, s_jrec(&r, NULL, 0));
        else
            s_query_line(&r);
        (*matched)++;
    }
    rc = gbx_trail_iter_error(it);
    gbx_trail_iter_destroy(&it);
    if (more && !t->json)
        fprintf(stderr, "(the first %" PRIu64 " matches; --limit 0 for all)\n", f->limit);
    return rc == GBX_OK ? GBX_AUDIT_OK : s_store_fail(t, "the records", rc);
}

int gbx_audit_cmd_query(gbx_audit_tool_t *t, int argc, char **argv)
{
    s_filter_t f;
    int rc = s_query_opts(t, argc, argv, &f);
    if (rc != GBX_AUDIT_OK)
        return rc < 0 ? GBX_AUDIT_OK : rc;
    if ((rc = gbx_audit_tool_store(t)) != GBX_AUDIT_OK)
        return rc;
    uint64_t first = 0, matched = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    if ((rc = s_anchor(t, &first, chain, &peaks)) != GBX_AUDIT_OK)
        return rc;
    if (!t->json)
        s_query_header();
    rc = s_query_scan(t, &f, first, &matched);
    if (fflush(stdout) != 0)
        rc = GBX_AUDIT_USAGE;
    return rc != GBX_AUDIT_OK ? rc : matched ? GBX_AUDIT_OK : GBX_AUDIT_FAIL;
}

/* ------------------------------------------------------------------ show */

/*  Which checkpoint covers record I: *CP and 1, 0 if none yet, -1 on error. */
static int s_covered(gbx_audit_tool_t *t, uint64_t i, gbx_checkpoint_t *cp)
{
    gbx_err_t rc = gbx_trail_checkpoint_after(t->store, i, cp);
    if (rc == GBX_OK)
        return 1;
    if (rc == GBX_E_STATE)
        return 0;
    s_store_fail(t, "the checkpoints", rc);
    return -1;
}

static int s_show_text(gbx_audit_tool_t *t, const s_rec_t *r)
{
    char at[32];
    size_t pos = 0;
    s_kv_t kv;
    while (s_line(r->text, r->len, &pos, &kv)) {
        const char *p = kv.key, *end = kv.val + kv.vlen;
        for (; p < end; p++)
            putchar((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? *p : '?');
        putchar('\n');
    }
    gbx_checkpoint_t cp;
    int c = s_covered(t, r->i, &cp);
    if (c > 0)
        printf("covered by checkpoint size=%" PRIu64 " at %s (%u countersignature%s)\n", cp.size,
               s_iso(cp.at_ms, at), cp.ncosig, cp.ncosig == 1 ? "" : "s");
    else if (c == 0)
        printf("not yet covered by a checkpoint\n");
    return c < 0 ? GBX_AUDIT_FAIL : GBX_AUDIT_OK;
}

static int s_show_json(gbx_audit_tool_t *t, const s_rec_t *r)
{
    json_t *o = s_jrec(r, NULL, 1);
    gbx_checkpoint_t cp;
    int c = s_covered(t, r->i, &cp);
    if (o && c > 0)
        json_object_set_new(
            o, "checkpoint",
            json_pack("{s:I,s:I}", "size", (json_int_t)cp.size, "at_ms", (json_int_t)cp.at_ms));
    else if (o && c == 0)
        json_object_set_new(o, "checkpoint", json_null());
    if (c < 0) {
        json_decref(o);
        return GBX_AUDIT_FAIL;
    }
    return s_jline(stdout, o) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_FAIL;
}

static int s_show_one(gbx_audit_tool_t *t, const s_rec_t *r)
{
    return t->json ? s_show_json(t, r) : s_show_text(t, r);
}

static int s_show_index(gbx_audit_tool_t *t, uint64_t i)
{
    uint64_t first = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    uint8_t *buf = NULL;
    s_rec_t r;
    int rc = s_anchor(t, &first, chain, &peaks);
    if (rc == GBX_AUDIT_OK)
        rc = s_get(t, i, &buf, &r);
    if (rc == GBX_AUDIT_OK && !buf) {
        uint64_t size = gbx_trail_size(gbx_store_trail(t->store));
        fprintf(stderr, "gbx-audit show: no record %" PRIu64 " (%s)\n", i,
                i < first  ? "pruned: retention deleted it"
                : i < size ? "missing from the store: run gbx-audit verify"
                           : "beyond the trail's end");
        rc = GBX_AUDIT_FAIL;
    }
    if (rc == GBX_AUDIT_OK)
        rc = s_show_one(t, &r);
    free(buf);
    return rc;
}

static int s_show_message(gbx_audit_tool_t *t, const char *id)
{
    uint64_t first = 0, n = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    gbx_trail_iter_t *it = NULL;
    int rc = s_anchor(t, &first, chain, &peaks);
    if (rc != GBX_AUDIT_OK)
        return rc;
    gbx_err_t e = s_iter(t, first, &it);
    s_rec_t r;
    while (e == GBX_OK && rc == GBX_AUDIT_OK && s_iter_rec(it, &r)) {
        if (r.i == UINT64_MAX || !s_message_is(&r, id))
            continue;
        if (n++ && !t->json)
            putchar('\n');
        rc = s_show_one(t, &r);
    }
    if (e == GBX_OK)
        e = gbx_trail_iter_error(it);
    gbx_trail_iter_destroy(&it);
    if (e != GBX_OK)
        return s_store_fail(t, "the records", e);
    if (rc == GBX_AUDIT_OK && n == 0) {
        fprintf(stderr, "gbx-audit show: no record of message %s\n", id);
        rc = GBX_AUDIT_FAIL;
    }
    return rc;
}

static const char s_show_usage[] = "usage: gbx-audit show INDEX | --message ID\n"
                                   "  INDEX          one record in full, and the checkpoint that "
                                   "covers it\n"
                                   "  --message ID   every record of message ID, in order\n";

int gbx_audit_cmd_show(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {{"message", required_argument, 0, 'm'},
                                          {"json", no_argument, 0, 'j'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    const char *msg = NULL;
    uint64_t i = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "m:h", longs, NULL)) != -1) {
        if (c == 'm')
            msg = optarg;
        else if (c == 'j')
            t->json = 1;
        else {
            fputs(s_show_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
        }
    }
    int npos = argc - optind;
    if ((msg && npos != 0) || (!msg && npos != 1) || (msg && !*msg)) {
        fputs(s_show_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    if (!msg && s_u64_arg(argv[optind], &i) != 0)
        return s_bad_arg("show", "INDEX", argv[optind]);
    int rc = gbx_audit_tool_store(t);
    if (rc == GBX_AUDIT_OK)
        rc = msg ? s_show_message(t, msg) : s_show_index(t, i);
    if (fflush(stdout) != 0 && rc == GBX_AUDIT_OK)
        rc = GBX_AUDIT_USAGE;
    return rc;
}

/* ---------------------------------------------------------------- export */

typedef struct {
    uint64_t from, to;
    int has_from, has_to, csv;
    const char *file;
} s_export_t;

/*  The JSONL export's first two lines: the range, and the anchor before FROM. */
static int s_ex_cp(FILE *out, const gbx_checkpoint_t *cp);

static int s_ex_head(gbx_audit_tool_t *t, FILE *out, const s_export_t *x, uint64_t first,
                     const gbx_hash_t achain, const gbx_merkle_peaks_t *apeaks)
{
    gbx_merkle_peaks_t peaks = *apeaks;
    gbx_hash_t chain;
    memcpy(chain, achain, sizeof chain);
    if (x->from > first) {
        uint8_t *buf = NULL;
        s_rec_t r;
        gbx_trail_rec_t tr;
        int rc = s_get(t, x->from - 1, &buf, &r);
        if (rc == GBX_AUDIT_OK && (!buf || gbx_trail_parse(buf, r.len, &tr) != GBX_OK)) {
            fprintf(stderr, "gbx-audit export: record %" PRIu64 " is %s (gbx-audit verify)\n",
                    x->from - 1, buf ? "not a sealed record" : "missing");
            rc = GBX_AUDIT_FAIL;
        }
        if (rc == GBX_AUDIT_OK)
            memcpy(chain, tr.chain, sizeof chain);
        free(buf);
        if (rc != GBX_AUDIT_OK)
            return rc;
        gbx_err_t e = gbx_trail_peaks_at(t->store, x->from, &peaks);
        if (e != GBX_OK)
            return s_store_fail(t, "the tree's peaks", e);
    }
    char hex[2 * GBX_MERKLE_HASH + 1];
    json_t *pk = json_array();
    for (unsigned p = 0; pk && p < peaks.npeaks; p++) {
        gbx_hex(peaks.peak[p], GBX_MERKLE_HASH, hex);
        json_array_append_new(pk, json_string(hex));
    }
    gbx_hex(chain, GBX_MERKLE_HASH, hex);
    json_t *e = json_pack("{s:s,s:i,s:s,s:I,s:I}", "type", "export", "v", 1, "node", t->node,
                          "from", (json_int_t)x->from, "to", (json_int_t)x->to);
    json_t *a = json_pack("{s:s,s:I,s:s,s:o}", "type", "anchor", "first", (json_int_t)x->from,
                          "chain", hex, "peaks", pk);
    int w1 = s_jline(out, e), w2 = s_jline(out, a);
    if (w1 != 0 || w2 != 0)
        return GBX_AUDIT_USAGE;
    if (x->csv || x->from == 0)
        return GBX_AUDIT_OK;
    /* the checkpoint that vouches for the anchor (a verifier requires it) */
    gbx_checkpoint_t cp;
    if (gbx_trail_checkpoint(t->store, x->from, &cp) != GBX_OK) {
        fprintf(stderr,
                "gbx-audit export: no checkpoint of %" PRIu64
                " records vouches for the start: --from must be 0 or a checkpoint's size "
                "(gbx-audit checkpoints)\n",
                x->from);
        return GBX_AUDIT_FAIL;
    }
    return s_ex_cp(out, &cp);
}

/*  One CSV field, quoted when it must be (RFC 4180); bytes outside
    printable ASCII become '?'. */
static void s_csv_field(FILE *out, const char *v, size_t n, int last)
{
    int quote = 0;
    for (size_t k = 0; k < n; k++)
        if (v[k] == ',' || v[k] == '"' || (k == 0 && v[k] == ' ') || (k == n - 1 && v[k] == ' '))
            quote = 1;
    if (quote)
        fputc('"', out);
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)v[k];
        if (c == '"')
            fputc('"', out);
        fputc(c >= 0x20 && c < 0x7f ? c : '?', out);
    }
    if (quote)
        fputc('"', out);
    fputs(last ? "\r\n" : ",", out);
}

static const char *const s_csv_cols[] = {"at_ms",   "event",   "message_id", "from",
                                         "to",      "service", "data_class", "decision",
                                         "rule_id", "reason",  "by"};
#define S_NCOLS (sizeof s_csv_cols / sizeof s_csv_cols[0])

static int s_csv_header(FILE *out)
{
    return fputs("i,at_ms,event,message_id,from,to,service,data_class,decision,rule_id,reason,by,"
                 "other,chain\r\n",
                 out) < 0
               ? -1
               : 0;
}

/*  "other": R's lines not in a column (USED: their addresses), key=value joined by ';'. */
static void s_csv_other(FILE *out, const s_rec_t *r, const char *const *used, size_t nused)
{
    size_t at = 0, len = 0, cap = r->len + 1;
    char *o = malloc(cap);
    s_kv_t kv;
    while (o && s_line(r->text, r->len, &at, &kv)) {
        int skip = 0;
        for (size_t u = 0; u < nused; u++)
            skip |= used[u] == kv.key;
        size_t n = (size_t)(kv.val + kv.vlen - kv.key);
        if (skip || n == 0)
            continue;
        if (len)
            o[len++] = ';';
        memcpy(o + len, kv.key, n);
        len += n;
    }
    s_csv_field(out, o ? o : "", o ? len : 0, 0);
    free(o);
}

static int s_csv_row(FILE *out, const s_rec_t *r)
{
    const char *used[S_NCOLS + 2] = {0}, *v[S_NCOLS];
    size_t n[S_NCOLS], cn = 0;
    char num[24];
    for (size_t c = 0; c < S_NCOLS; c++)
        v[c] = strcmp(s_csv_cols[c], "data_class") == 0
                   ? s_class(r, &n[c], &used[c])
                   : s_field_at(r, s_csv_cols[c], &n[c], &used[c]);
    (void)s_field_at(r, "i", &cn, &used[S_NCOLS]);
    const char *chain = s_field_at(r, "chain", &cn, &used[S_NCOLS + 1]);
    snprintf(num, sizeof num, "%" PRIu64, r->i);
    s_csv_field(out, num, strlen(num), 0);
    for (size_t c = 0; c < S_NCOLS; c++)
        s_csv_field(out, v[c] ? v[c] : "", v[c] ? n[c] : 0, 0);
    s_csv_other(out, r, used, S_NCOLS + 2);
    s_csv_field(out, chain ? chain : "", chain ? cn : 0, 1);
    return ferror(out) ? -1 : 0;
}

/*  The checkpoint line of CP. */
static int s_ex_cp(FILE *out, const gbx_checkpoint_t *cp)
{
    char text[GBX_CHECKPOINT_TEXT_MAX];
    if (gbx_checkpoint_format(cp, text, sizeof text) != GBX_OK) {
        fprintf(stderr, "gbx-audit export: checkpoint %" PRIu64 " cannot be written\n", cp->size);
        return GBX_AUDIT_FAIL;
    }
    json_t *o = json_pack("{s:s,s:I,s:s}", "type", "checkpoint", "size", (json_int_t)cp->size,
                          "text", text);
    return s_jline(out, o) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
}

/*  The first stored checkpoint of more than AFTER records and at most TO:
    1, 0 if none, -1 on error. */
static int s_ex_next_cp(gbx_audit_tool_t *t, uint64_t after, uint64_t to, gbx_checkpoint_t *cp)
{
    int c = s_covered(t, after, cp);
    return c > 0 && cp->size > to ? 0 : c;
}

/*  Record R, checked to be the one expected and sealed, as a line. */
static int s_ex_record(FILE *out, const s_export_t *x, const s_rec_t *r, uint64_t expect)
{
    gbx_trail_rec_t tr;
    if (r->i != expect || gbx_trail_parse((const uint8_t *)r->text, r->len, &tr) != GBX_OK ||
        tr.index != r->i) {
        fprintf(stderr,
                "gbx-audit export: record %" PRIu64 " is %s (gbx-audit verify tells more)\n",
                expect, r->i != expect ? "missing" : "not a sealed record of its index");
        return GBX_AUDIT_FAIL;
    }
    if (x->csv)
        return s_csv_row(out, r) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
    json_t *o = s_jrec(r, "record", 2);
    if (!o) {
        fprintf(stderr,
                "gbx-audit export: record %" PRIu64 " is not UTF-8 text: the broker never "
                "writes that (gbx-audit verify)\n",
                r->i);
        return GBX_AUDIT_FAIL;
    }
    return s_jline(out, o) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
}

/*  Records FROM .. TO - 1, each stored checkpoint after its last record. */
static int s_ex_records(gbx_audit_tool_t *t, FILE *out, const s_export_t *x)
{
    gbx_checkpoint_t cp;
    int have = x->csv ? 0 : s_ex_next_cp(t, x->from, x->to, &cp);
    uint64_t next = x->from;
    gbx_trail_iter_t *it = NULL;
    gbx_err_t e = x->from < x->to ? s_iter(t, x->from, &it) : GBX_OK;
    int rc = have < 0 ? GBX_AUDIT_FAIL : GBX_AUDIT_OK;
    for (; e == GBX_OK && rc == GBX_AUDIT_OK && next < x->to; next++) {
        s_rec_t r = {UINT64_MAX, NULL, 0};
        if (!it || !s_iter_rec(it, &r))
            r.i = UINT64_MAX;
        rc = s_ex_record(out, x, &r, next);
        while (rc == GBX_AUDIT_OK && have > 0 && cp.size == next + 1) {
            rc = s_ex_cp(out, &cp);
            have = s_ex_next_cp(t, cp.size, x->to, &cp);
            rc = have < 0 ? GBX_AUDIT_FAIL : rc;
        }
    }
    if (e == GBX_OK && it && rc == GBX_AUDIT_OK)
        e = gbx_trail_iter_error(it);
    gbx_trail_iter_destroy(&it);
    return e == GBX_OK ? rc : s_store_fail(t, "the records", e);
}

/*  Where the export goes: FILE.tmp (renamed at the end) or stdout. */
static FILE *s_ex_open(const s_export_t *x, char **tmp)
{
    *tmp = NULL;
    if (!x->file || strcmp(x->file, "-") == 0)
        return stdout;
    if (asprintf(tmp, "%s.tmp", x->file) < 0) {
        *tmp = NULL;
        return NULL;
    }
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "gbx-audit export: cannot write %s: %s\n", *tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
    }
    return f;
}

/*  Syncs the directory that holds PATH. */
static void s_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/*  Finishes the output: RC so far, or GBX_AUDIT_USAGE if it cannot be written. */
static int s_ex_close(FILE *out, char *tmp, const char *file, int rc)
{
    int bad = fflush(out) != 0 || ferror(out);
    if (out == stdout) {
        if (bad)
            fprintf(stderr, "gbx-audit export: cannot write: %s\n", strerror(errno));
        return bad && rc == GBX_AUDIT_OK ? GBX_AUDIT_USAGE : rc;
    }
    bad = bad || fsync(fileno(out)) != 0;
    bad = fclose(out) != 0 || bad;
    if (rc == GBX_AUDIT_OK && !bad)
        bad = rename(tmp, file) != 0;
    if (rc == GBX_AUDIT_OK && !bad)
        s_sync_dir(file);
    if (bad)
        fprintf(stderr, "gbx-audit export: cannot write %s: %s\n", file, strerror(errno));
    if (rc != GBX_AUDIT_OK || bad)
        unlink(tmp);
    free(tmp);
    return rc == GBX_AUDIT_OK && bad ? GBX_AUDIT_USAGE : rc;
}

/*  The range: [--from or the first kept, --to or the latest checkpoint
    (the head without one)), checked against the trail. */
static int s_ex_range(gbx_audit_tool_t *t, s_export_t *x, uint64_t first)
{
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(t->store), &h);
    if (!x->has_from)
        x->from = first;
    if (!x->has_to)
        x->to = h.checkpoint > x->from ? h.checkpoint : h.size;
    if (!x->has_to && x->to > x->from && x->to != h.checkpoint)
        fprintf(stderr,
                "gbx-audit export: note: no checkpoint covers records %" PRIu64 " .. %" PRIu64
                " yet\n",
                x->from, x->to - 1);
    if (x->from < first) {
        fprintf(stderr, "gbx-audit export: records before %" PRIu64 " were pruned\n", first);
        return GBX_AUDIT_FAIL;
    }
    if (x->to > h.size || x->from > x->to) {
        fprintf(stderr,
                "gbx-audit export: --from %" PRIu64 " --to %" PRIu64 " is not a range of the "
                "trail (records %" PRIu64 " .. %" PRIu64 " are kept; --to is exclusive)\n",
                x->from, x->to, first, h.size ? h.size - 1 : 0);
        return GBX_AUDIT_FAIL;
    }
    return GBX_AUDIT_OK;
}

static const char s_export_usage[] =
    "usage: gbx-audit export [--from N] [--to N] [--format jsonl|csv] [-o FILE]\n"
    "  --from N        the first record (default: the first kept)\n"
    "  --to N          the records before N (default: the latest checkpoint's size,\n"
    "                  so that all is signed; the trail's end without one)\n"
    "  --format F      jsonl (default; gbx-audit verify --export checks it) or csv\n"
    "  -o FILE         write FILE (by FILE.tmp and a rename; default stdout)\n";

static int s_export_opts(int argc, char **argv, s_export_t *x)
{
    static const struct option longs[] = {
        {"from", required_argument, 0, 'f'},   {"to", required_argument, 0, 't'},
        {"format", required_argument, 0, 'F'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    memset(x, 0, sizeof *x);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", longs, NULL)) != -1) {
        if (c == 'f' && (x->has_from = 1) && s_u64_arg(optarg, &x->from) != 0)
            return s_bad_arg("export", "--from", optarg);
        else if (c == 't' && (x->has_to = 1) && s_u64_arg(optarg, &x->to) != 0)
            return s_bad_arg("export", "--to", optarg);
        else if (c == 'F' && strcmp(optarg, "jsonl") != 0 && strcmp(optarg, "csv") != 0)
            return s_bad_arg("export", "--format", optarg);
        else if (c == 'F')
            x->csv = strcmp(optarg, "csv") == 0;
        else if (c == 'o')
            x->file = optarg;
        else if (c == 'h' || c == '?') {
            fputs(s_export_usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? -1 : GBX_AUDIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gbx-audit export: unexpected '%s'\n%s", argv[optind], s_export_usage);
        return GBX_AUDIT_USAGE;
    }
    return GBX_AUDIT_OK;
}

int gbx_audit_cmd_export(gbx_audit_tool_t *t, int argc, char **argv)
{
    s_export_t x;
    int rc = s_export_opts(argc, argv, &x);
    if (rc != GBX_AUDIT_OK)
        return rc < 0 ? GBX_AUDIT_OK : rc;
    uint64_t first = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    if ((rc = gbx_audit_tool_store(t)) != GBX_AUDIT_OK ||
        (rc = s_anchor(t, &first, chain, &peaks)) != GBX_AUDIT_OK ||
        (rc = s_ex_range(t, &x, first)) != GBX_AUDIT_OK)
        return rc;
    char *tmp = NULL;
    FILE *out = s_ex_open(&x, &tmp);
    if (!out)
        return GBX_AUDIT_USAGE;
    rc = x.csv ? (s_csv_header(out) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_USAGE)
               : s_ex_head(t, out, &x, first, chain, &peaks);
    if (rc == GBX_AUDIT_OK)
        rc = s_ex_records(t, out, &x);
    return s_ex_close(out, tmp, x.file, rc);
}
