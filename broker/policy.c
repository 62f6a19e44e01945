/*  policy.c: owns the per-data-class policy: its file, its rules and the
    decisions they make (policy.h; docs/policy.md). */
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <uthash.h>

#include "yaml.h"

#define S_FILE_MAX    (16u << 20) /* a policy file larger than 16 MiB is refused */
#define S_REF_MAX     128         /* bytes of a route reference */
#define S_DAY_MS      INT64_C(86400000)
#define S_UTC8_MS     INT64_C(28800000) /* HK and Guangdong: UTC+8, no summer time */
#define S_DAY_NONE_LO INT64_MIN
#define S_DAY_NONE_HI INT64_MAX
#define S_ALL_ROUTES  "ALL_ROUTES" /* the route part of a counter of every route */

/* Directions: bits of s_rule_t.dir_mask. */
enum { S_HK_TO_GD = 1, S_GD_TO_HK = 2, S_WITHIN_HK = 4, S_WITHIN_GD = 8 };
static const char *const s_dir_names[] = {"HK_TO_GD", "GD_TO_HK", "WITHIN_HK", "WITHIN_GD"};

/* Recipient locations: bits of s_rule_t.loc_mask (cities are a list). */
enum { S_LOC_HK = 1, S_LOC_GD = 2 };

/*  A set of agencies or services: a bitset over the registry's indices;
    NULL words = any. */
typedef struct {
    uint64_t *words;
} s_set_t;

typedef struct {
    char *ref;
    int route;
    int64_t from_day, until_day;
    s_set_t exporters;
} s_routeref_t;

typedef struct {
    char id[GBX_POLICY_ID_MAX + 1];
    uint32_t version;
    int enabled;
    int64_t from_day, until_day;
    /* match */
    unsigned dir_mask, kind_mask, class_mask, marking_mask, mroute_mask; /* 0 = any */
    s_set_t requester, provider, exporter, services;
    char **purposes;
    size_t n_purposes; /* 0 = any */
    /* require */
    unsigned route_mask; /* 0 = any */
    int route_ref_valid, consent, impact, end_user, agreement, release;
    int64_t max_payload, max_ttl; /* 0 = no limit */
    unsigned loc_mask;
    char **cities;
    size_t n_cities;
    /* volume */
    uint64_t subjects_per_year, messages_per_day; /* 0 = no cap */
    int per_class, across_routes;
    gbx_outcome_t at_cap;
    gbx_outcome_t outcome;
    char *reason;
} s_rule_t;

typedef struct {
    char key[GBX_SERVICE_CODE_MAX + 16];
    size_t index;
    UT_hash_handle hh;
} s_index_t;

struct gbx_policy {
    char *version;
    uint8_t hash[GBX_HASH_BYTES];
    size_t n_agencies, n_services, words_a, words_s;
    s_index_t *agencies, *services; /* id / "CODE#version" -> registry index */
    s_routeref_t *refs;
    size_t n_refs;
    s_rule_t *rules;
    size_t n_rules;
    size_t **by_service; /* per service index: rule indices, file order */
    size_t *n_by_service;
    int count_messages; /* some rule caps messages (subjects are always counted) */
};

/* ---------------------------------------------------------------- names */

static int s_enum(const ProtobufCEnumDescriptor *d, const char *name)
{
    const ProtobufCEnumValue *v =
        name ? protobuf_c_enum_descriptor_get_value_by_name(d, name) : NULL;
    return v ? v->value : -1;
}

static const char *s_enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    return v ? v->name : "?";
}

const char *gbx_outcome_name(gbx_outcome_t o)
{
    return o == GBX_OUTCOME_ALLOW ? "ALLOW" : o == GBX_OUTCOME_HOLD ? "HOLD" : "DENY";
}

static int s_outcome_parse(const char *text, gbx_outcome_t *out)
{
    if (!text)
        return -1;
    if (strcmp(text, "ALLOW") == 0)
        *out = GBX_OUTCOME_ALLOW;
    else if (strcmp(text, "DENY") == 0)
        *out = GBX_OUTCOME_DENY;
    else if (strcmp(text, "HOLD") == 0)
        *out = GBX_OUTCOME_HOLD;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ days */

/*  Days since 1970-01-01 of the civil date Y-M-D (H. Hinnant's algorithm). */
static int64_t s_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/*  The UTC+8 day of Unix milliseconds MS. */
static int64_t s_day(uint64_t ms)
{
    return ((int64_t)ms + S_UTC8_MS) / S_DAY_MS;
}

/*  "YYYY-MM-DD" to a day number. -1 if TEXT is not a valid date. */
static int s_date_parse(const char *text, int64_t *day)
{
    unsigned y, m, d;
    char tail;
    for (int i = 0; text && i < 10; i++)
        if (!text[i] || (i == 4 || i == 7 ? text[i] != '-' : (text[i] < '0' || text[i] > '9')))
            return -1;
    if (!text || strlen(text) != 10 || sscanf(text, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 ||
        text[4] != '-' || text[7] != '-' || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1)
        return -1;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -1;
    *day = s_days_from_civil(y, m, d);
    return 0;
}

static void s_date_text(int64_t day, char out[11])
{
    int64_t y;
    unsigned m, d;
    s_civil_from_days(day, &y, &m, &d);
    snprintf(out, 11, "%04d-%02u-%02u", (int)y, m, d);
}

/* ------------------------------------------------------------------ sets */

static int s_set_has(const s_set_t *s, size_t i)
{
    return !s->words || (s->words[i / 64] >> (i % 64) & 1);
}

static const s_index_t *s_find(const s_index_t *map, const char *key)
{
    s_index_t *e = NULL;
    HASH_FIND_STR(map, key, e);
    return e;
}

static gbx_err_t s_index_add(s_index_t **map, const char *key, size_t index)
{
    s_index_t *e = calloc(1, sizeof *e);
    if (!e)
        return GBX_E_NOMEM;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->index = index;
    HASH_ADD_STR(*map, key, e);
    return GBX_OK;
}

static void s_index_free(s_index_t **map)
{
    s_index_t *e, *tmp;
    HASH_ITER(hh, *map, e, tmp)
    {
        HASH_DEL(*map, e);
        free(e);
    }
}

static void s_service_key(const char *code, uint32_t version, char *out, size_t cap)
{
    snprintf(out, cap, "%s#%u", code, (unsigned)version);
}

/* --------------------------------------------------------------- loading */

typedef struct {
    gbx_yaml_ctx_t y;
    gbx_policy_t *p;
    const gbx_registry_t *reg;
    struct fy_node *groups; /* the groups: mapping, or NULL */
} s_ctx_t;

static gbx_err_t s_bad(s_ctx_t *c, struct fy_node *n, const char *setting, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static gbx_err_t s_bad(s_ctx_t *c, struct fy_node *n, const char *setting, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return gbx_yaml_fail(&c->y, n, GBX_E_FIELD_INVALID, setting, "%s", text);
}

/*  The items of NODE: a sequence of scalars, or one scalar. Calls FN for
    each with its text. */
typedef gbx_err_t (*s_item_fn)(s_ctx_t *c, struct fy_node *item, const char *text, void *arg);

static gbx_err_t s_items(s_ctx_t *c, struct fy_node *node, const char *setting, s_item_fn fn,
                         void *arg)
{
    if (!node)
        return s_bad(c, node, setting, "missing value");
    struct fy_node *one = node;
    void *it = NULL;
    int seq = fy_node_get_type(node) == FYNT_SEQUENCE;
    if (seq && fy_node_sequence_item_count(node) == 0)
        return s_bad(c, node, setting, "an empty list matches nothing; leave the key out for any");
    while (seq ? (one = fy_node_sequence_iterate(node, &it)) != NULL : one != NULL) {
        char *text = gbx_yaml_scalar(one);
        if (!text)
            return s_bad(c, one, setting, "must be a scalar or a list of scalars");
        gbx_err_t rc = fn(c, one, text, arg);
        free(text);
        if (rc != GBX_OK)
            return rc;
        if (!seq)
            break;
    }
    return GBX_OK;
}

typedef struct {
    const ProtobufCEnumDescriptor *desc;
    const char *const *names; /* instead of desc: names of bits 0.. */
    size_t n_names;
    int min; /* lowest value allowed (enum) */
    unsigned *mask;
    const char *setting;
} s_mask_arg_t;

static gbx_err_t s_mask_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_mask_arg_t *a = arg;
    int v = -1;
    if (a->desc) {
        v = s_enum(a->desc, text);
        if (v < a->min)
            v = -1;
    } else {
        for (size_t i = 0; i < a->n_names; i++)
            if (strcmp(text, a->names[i]) == 0)
                v = (int)i;
    }
    if (v < 0 || v > 31)
        return s_bad(c, item, a->setting, "unknown value %s", text);
    *a->mask |= 1u << v;
    return GBX_OK;
}

static gbx_err_t s_mask(s_ctx_t *c, struct fy_node *n, const char *setting,
                        const ProtobufCEnumDescriptor *desc, int min, unsigned *mask)
{
    s_mask_arg_t a = {.desc = desc, .min = min, .mask = mask, .setting = setting};
    return s_items(c, n, setting, s_mask_item, &a);
}

typedef struct {
    s_set_t *set;
    const char *setting;
    int groups; /* group names allowed */
    int depth;
} s_agency_arg_t;

static gbx_err_t s_agency_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_agency_arg_t *a = arg;
    const s_index_t *e = s_find(c->p->agencies, text);
    if (e) {
        a->set->words[e->index / 64] |= UINT64_C(1) << (e->index % 64);
        return GBX_OK;
    }
    struct fy_node *g =
        a->groups && c->groups ? fy_node_mapping_lookup_by_string(c->groups, text, FY_NT) : NULL;
    if (!g)
        return s_bad(c, item, a->setting, "%s is neither an agency in the registry%s", text,
                     a->groups ? " nor a group" : "");
    s_agency_arg_t inner = {.set = a->set, .setting = a->setting, .groups = 0};
    return s_items(c, g, a->setting, s_agency_item, &inner);
}

static gbx_err_t s_agencies(s_ctx_t *c, struct fy_node *n, const char *setting, s_set_t *set)
{
    set->words = calloc(c->p->words_a ? c->p->words_a : 1, sizeof *set->words);
    if (!set->words)
        return GBX_E_NOMEM;
    s_agency_arg_t a = {.set = set, .setting = setting, .groups = 1};
    return s_items(c, n, setting, s_agency_item, &a);
}

typedef struct {
    s_set_t *set;
    const uint32_t *versions; /* NULL: every version */
    size_t n_versions;
} s_service_arg_t;

static gbx_err_t s_service_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_service_arg_t *a = arg;
    int found = 0;
    for (size_t i = 0; i < c->p->n_services; i++) {
        const gbx_service_t *s = gbx_registry_service_at(c->reg, i);
        if (strcmp(s->code, text) != 0)
            continue;
        int vok = !a->versions;
        for (size_t k = 0; k < a->n_versions; k++)
            vok |= a->versions[k] == s->version;
        if (vok) {
            a->set->words[i / 64] |= UINT64_C(1) << (i % 64);
            found = 1;
        }
    }
    return found ? GBX_OK
                 : s_bad(c, item, "match.service", "%s is not a service in the registry%s", text,
                         a->versions ? " (in those versions)" : "");
}

typedef struct {
    char ***list;
    size_t *n;
    const char *setting;
    int (*valid)(const char *);
} s_strings_arg_t;

static gbx_err_t s_string_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_strings_arg_t *a = arg;
    if (a->valid && !a->valid(text))
        return s_bad(c, item, a->setting, "unknown value %s", text);
    char **l = realloc(*a->list, (*a->n + 1) * sizeof *l);
    if (!l)
        return GBX_E_NOMEM;
    *a->list = l;
    if (!(l[*a->n] = strdup(text)))
        return GBX_E_NOMEM;
    (*a->n)++;
    return GBX_OK;
}

typedef struct {
    uint32_t v[64];
    size_t n;
} s_versions_t;

static gbx_err_t s_version_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_versions_t *a = arg;
    int64_t v = 0;
    if (gbx_yaml_number(text, GBX_YAML_INT, &v) != 0 || v < 1 || v > UINT32_MAX)
        return s_bad(c, item, "match.service_version", "not a version (1 or more)");
    if (a->n == sizeof a->v / sizeof a->v[0])
        return s_bad(c, item, "match.service_version", "at most 64 versions");
    a->v[a->n++] = (uint32_t)v;
    return GBX_OK;
}

static int s_loc_city(const char *text)
{
    return gbx_city_valid(GBX_JUR_HK, text) || gbx_city_valid(GBX_JUR_GD, text);
}

/*  Checks that MAP's keys are all in KEYS (NULL-ended); fills VALS in the
    same order (NULL when absent). */
static gbx_err_t s_keys(s_ctx_t *c, struct fy_node *map, const char *section,
                        const char *const *keys, struct fy_node **vals)
{
    if (!map || fy_node_get_type(map) != FYNT_MAPPING)
        return s_bad(c, map, section, "must be a mapping");
    size_t n = 0;
    while (keys[n])
        vals[n++] = NULL;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        char *k = gbx_yaml_scalar(fy_node_pair_key(p));
        size_t i = 0;
        while (k && keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!k || !keys[i]) {
            gbx_err_t rc = s_bad(c, fy_node_pair_key(p), section, "unknown key %s", k ? k : "?");
            free(k);
            return rc;
        }
        free(k);
        vals[i] = fy_node_pair_value(p);
    }
    return GBX_OK;
}

/*  Scalar helpers: each fails at N with SETTING. */
static gbx_err_t s_bool(s_ctx_t *c, struct fy_node *n, const char *setting, int *out)
{
    char *t = gbx_yaml_scalar(n);
    gbx_err_t rc = GBX_OK;
    if (t && strcmp(t, "true") == 0)
        *out = 1;
    else if (t && strcmp(t, "false") == 0)
        *out = 0;
    else
        rc = s_bad(c, n, setting, "must be true or false");
    free(t);
    return rc;
}

static gbx_err_t s_num(s_ctx_t *c, struct fy_node *n, const char *setting, gbx_yaml_num_t kind,
                       int64_t min, int64_t max, int64_t *out)
{
    char *t = gbx_yaml_scalar(n);
    int64_t v = 0;
    gbx_err_t rc = GBX_OK;
    if (!t || gbx_yaml_number(t, kind, &v) != 0 || v < min || v > max)
        rc = s_bad(c, n, setting, "must be %s between %lld and %lld",
                   kind == GBX_YAML_DURATION ? "a duration (e.g. 30s, 1d)"
                   : kind == GBX_YAML_BYTES  ? "a size (e.g. 64KiB)"
                                             : "an integer",
                   (long long)min, (long long)max);
    else
        *out = v;
    free(t);
    return rc;
}

static gbx_err_t s_date(s_ctx_t *c, struct fy_node *n, const char *setting, int64_t *day)
{
    char *t = gbx_yaml_scalar(n);
    gbx_err_t rc =
        t && s_date_parse(t, day) == 0 ? GBX_OK : s_bad(c, n, setting, "not a date (YYYY-MM-DD)");
    free(t);
    return rc;
}

static gbx_err_t s_route_refs(s_ctx_t *c, struct fy_node *seq)
{
    if (fy_node_get_type(seq) != FYNT_SEQUENCE)
        return s_bad(c, seq, "routes", "must be a list");
    size_t n = (size_t)fy_node_sequence_item_count(seq);
    c->p->refs = calloc(n ? n : 1, sizeof *c->p->refs);
    if (!c->p->refs)
        return GBX_E_NOMEM;
    static const char *const keys[] = {"ref",         "route",     "valid_from",
                                       "valid_until", "exporters", NULL};
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(seq, &it)) != NULL) {
        struct fy_node *v[5];
        gbx_err_t rc = s_keys(c, item, "routes", keys, v);
        if (rc != GBX_OK)
            return rc;
        s_routeref_t *r = &c->p->refs[c->p->n_refs++];
        r->from_day = S_DAY_NONE_LO, r->until_day = S_DAY_NONE_HI;
        r->ref = gbx_yaml_scalar(v[0]);
        if (!r->ref || !*r->ref || strlen(r->ref) >= S_REF_MAX)
            return s_bad(c, v[0] ? v[0] : item, "routes.ref",
                         "a reference of 1..%d bytes is required", S_REF_MAX - 1);
        for (size_t i = 0; i + 1 < c->p->n_refs; i++)
            if (strcmp(c->p->refs[i].ref, r->ref) == 0)
                return s_bad(c, v[0], "routes.ref", "duplicate reference %s", r->ref);
        char *route = gbx_yaml_scalar(v[1]);
        r->route = s_enum(&gbx__v1__legal_route__descriptor, route);
        free(route);
        if (r->route <= 0)
            return s_bad(c, v[1] ? v[1] : item, "routes.route",
                         "a legal route is required "
                         "(GBA_STANDARD_CONTRACT, NATIONAL_STANDARD_CONTRACT, CERTIFICATION, "
                         "SECURITY_ASSESSMENT, EXEMPTION, MODEL_CLAUSES)");
        if (v[2] && (rc = s_date(c, v[2], "routes.valid_from", &r->from_day)) != GBX_OK)
            return rc;
        if (v[3] && (rc = s_date(c, v[3], "routes.valid_until", &r->until_day)) != GBX_OK)
            return rc;
        if (r->until_day < r->from_day)
            return s_bad(c, v[3], "routes.valid_until", "before valid_from");
        if (v[4] && (rc = s_agencies(c, v[4], "routes.exporters", &r->exporters)) != GBX_OK)
            return rc;
    }
    return GBX_OK;
}

static int s_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > GBX_POLICY_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return strncmp(id, "builtin:", 8) != 0;
}

static gbx_err_t s_match(s_ctx_t *c, s_rule_t *r, struct fy_node *map)
{
    static const char *const keys[] = {"direction",       "requester", "provider", "service",
                                       "service_version", "kind",      "class",    "marking",
                                       "purpose",         "exporter",  "route",    NULL};
    struct fy_node *v[11];
    gbx_err_t rc = s_keys(c, map, "match", keys, v);
    s_mask_arg_t dir = {
        .names = s_dir_names, .n_names = 4, .mask = &r->dir_mask, .setting = "match.direction"};
    if (rc == GBX_OK && v[0])
        rc = s_items(c, v[0], "match.direction", s_mask_item, &dir);
    if (rc == GBX_OK && v[1])
        rc = s_agencies(c, v[1], "match.requester", &r->requester);
    if (rc == GBX_OK && v[2])
        rc = s_agencies(c, v[2], "match.provider", &r->provider);
    s_versions_t vers = {.n = 0};
    if (rc == GBX_OK && v[4])
        rc = s_items(c, v[4], "match.service_version", s_version_item, &vers);
    if (rc == GBX_OK && (v[3] || v[4])) {
        r->services.words = calloc(c->p->words_s ? c->p->words_s : 1, sizeof(uint64_t));
        if (!r->services.words)
            return GBX_E_NOMEM;
        s_service_arg_t sa = {
            .set = &r->services, .versions = v[4] ? vers.v : NULL, .n_versions = vers.n};
        if (v[3]) {
            rc = s_items(c, v[3], "match.service", s_service_item, &sa);
        } else { /* versions of any service */
            for (size_t i = 0; i < c->p->n_services; i++)
                for (size_t k = 0; k < vers.n; k++)
                    if (gbx_registry_service_at(c->reg, i)->version == vers.v[k])
                        r->services.words[i / 64] |= UINT64_C(1) << (i % 64);
        }
    }
    if (rc == GBX_OK && v[5])
        rc = s_mask(c, v[5], "match.kind", &gbx__v1__message_kind__descriptor, 1, &r->kind_mask);
    if (rc == GBX_OK && v[6])
        rc = s_mask(c, v[6], "match.class", &gbx__v1__data_class__descriptor, 1, &r->class_mask);
    if (rc == GBX_OK && v[7])
        rc =
            s_mask(c, v[7], "match.marking", &gbx__v1__hk_marking__descriptor, 1, &r->marking_mask);
    s_strings_arg_t pa = {.list = &r->purposes, .n = &r->n_purposes, .setting = "match.purpose"};
    if (rc == GBX_OK && v[8])
        rc = s_items(c, v[8], "match.purpose", s_string_item, &pa);
    if (rc == GBX_OK && v[9])
        rc = s_agencies(c, v[9], "match.exporter", &r->exporter);
    if (rc == GBX_OK && v[10])
        rc = s_mask(c, v[10], "match.route", &gbx__v1__legal_route__descriptor, 0, &r->mroute_mask);
    return rc;
}

static gbx_err_t s_loc_item(s_ctx_t *c, struct fy_node *item, const char *text, void *arg)
{
    s_rule_t *r = arg;
    if (strcmp(text, "HK") == 0) {
        r->loc_mask |= S_LOC_HK;
        return GBX_OK;
    }
    if (strcmp(text, "GBA") == 0 || strcmp(text, "GD") == 0) {
        r->loc_mask |= S_LOC_GD;
        return GBX_OK;
    }
    s_strings_arg_t a = {.list = &r->cities,
                         .n = &r->n_cities,
                         .setting = "require.recipient_in",
                         .valid = s_loc_city};
    return s_string_item(c, item, text, &a);
}

static gbx_err_t s_require(s_ctx_t *c, s_rule_t *r, struct fy_node *map)
{
    static const char *const keys[] = {"routes",
                                       "route_ref_valid",
                                       "consent",
                                       "impact_assessment",
                                       "end_user_ref",
                                       "agreement_ref",
                                       "release_authority",
                                       "max_payload",
                                       "max_ttl",
                                       "recipient_in",
                                       NULL};
    struct fy_node *v[10];
    gbx_err_t rc = s_keys(c, map, "require", keys, v);
    if (rc == GBX_OK && v[0])
        rc =
            s_mask(c, v[0], "require.routes", &gbx__v1__legal_route__descriptor, 0, &r->route_mask);
    if (rc == GBX_OK && v[1])
        rc = s_bool(c, v[1], "require.route_ref_valid", &r->route_ref_valid);
    if (rc == GBX_OK && v[2]) {
        char *t = gbx_yaml_scalar(v[2]);
        r->consent = s_enum(&gbx__v1__consent_type__descriptor, t);
        free(t);
        if (r->consent <= 0)
            rc = s_bad(c, v[2], "require.consent", "must be NOTICE, CONSENT or SEPARATE_CONSENT");
    }
    int *flags[] = {&r->impact, &r->end_user, &r->agreement, &r->release};
    for (int i = 0; i < 4 && rc == GBX_OK; i++)
        if (v[3 + i]) {
            char setting[64];
            snprintf(setting, sizeof setting, "require.%s", keys[3 + i]);
            rc = s_bool(c, v[3 + i], setting, flags[i]);
        }
    if (rc == GBX_OK && v[7])
        rc = s_num(c, v[7], "require.max_payload", GBX_YAML_BYTES, 1, INT64_C(1) << 40,
                   &r->max_payload);
    if (rc == GBX_OK && v[8])
        rc = s_num(c, v[8], "require.max_ttl", GBX_YAML_DURATION, 1, INT64_C(1) << 40, &r->max_ttl);
    if (rc == GBX_OK && v[9])
        rc = s_items(c, v[9], "require.recipient_in", s_loc_item, r);
    return rc;
}

static gbx_err_t s_volume(s_ctx_t *c, s_rule_t *r, struct fy_node *map)
{
    static const char *const keys[] = {
        "subjects_per_year", "messages_per_day", "per_class", "at_cap", "across_routes", NULL};
    struct fy_node *v[5];
    int64_t n = 0;
    gbx_err_t rc = s_keys(c, map, "volume", keys, v);
    if (rc == GBX_OK && v[0] &&
        (rc = s_num(c, v[0], "volume.subjects_per_year", GBX_YAML_INT, 1, INT64_C(1) << 50, &n)) ==
            GBX_OK)
        r->subjects_per_year = (uint64_t)n;
    if (rc == GBX_OK && v[1] &&
        (rc = s_num(c, v[1], "volume.messages_per_day", GBX_YAML_INT, 1, INT64_C(1) << 50, &n)) ==
            GBX_OK)
        r->messages_per_day = (uint64_t)n;
    if (rc == GBX_OK && v[2])
        rc = s_bool(c, v[2], "volume.per_class", &r->per_class);
    if (rc == GBX_OK && v[4])
        rc = s_bool(c, v[4], "volume.across_routes", &r->across_routes);
    r->at_cap = GBX_OUTCOME_DENY;
    if (rc == GBX_OK && v[3]) {
        char *t = gbx_yaml_scalar(v[3]);
        if (s_outcome_parse(t, &r->at_cap) != 0 || r->at_cap == GBX_OUTCOME_ALLOW)
            rc = s_bad(c, v[3], "volume.at_cap", "must be DENY or HOLD");
        free(t);
    }
    if (rc == GBX_OK && !r->subjects_per_year && !r->messages_per_day)
        rc = s_bad(c, map, "volume", "needs subjects_per_year or messages_per_day");
    c->p->count_messages |= r->messages_per_day != 0;
    return rc;
}

static gbx_err_t s_rule(s_ctx_t *c, s_rule_t *r, struct fy_node *map)
{
    static const char *const keys[] = {
        "id",    "version", "enabled", "effective_from", "effective_until",
        "match", "require", "volume",  "outcome",        "reason",
        NULL};
    struct fy_node *v[10];
    gbx_err_t rc = s_keys(c, map, "rules", keys, v);
    if (rc != GBX_OK)
        return rc;
    char *id = gbx_yaml_scalar(v[0]);
    if (!s_id_ok(id)) {
        free(id);
        return s_bad(c, v[0] ? v[0] : map, "rules.id",
                     "an id of 1..%d characters [A-Za-z0-9._:-] is required (not builtin:)",
                     GBX_POLICY_ID_MAX);
    }
    snprintf(r->id, sizeof r->id, "%s", id);
    free(id);
    for (s_rule_t *o = c->p->rules; o < r; o++)
        if (strcmp(o->id, r->id) == 0)
            return s_bad(c, v[0], "rules.id", "duplicate rule id %s", r->id);
    int64_t n = 1;
    if (v[1] && (rc = s_num(c, v[1], "rules.version", GBX_YAML_INT, 1, UINT32_MAX, &n)) != GBX_OK)
        return rc;
    r->version = (uint32_t)n;
    r->enabled = 1;
    if (v[2] && (rc = s_bool(c, v[2], "rules.enabled", &r->enabled)) != GBX_OK)
        return rc;
    r->from_day = S_DAY_NONE_LO, r->until_day = S_DAY_NONE_HI;
    if (v[3] && (rc = s_date(c, v[3], "rules.effective_from", &r->from_day)) != GBX_OK)
        return rc;
    if (v[4] && (rc = s_date(c, v[4], "rules.effective_until", &r->until_day)) != GBX_OK)
        return rc;
    if (r->until_day < r->from_day)
        return s_bad(c, v[4], "rules.effective_until", "before effective_from");
    if (v[5] && (rc = s_match(c, r, v[5])) != GBX_OK)
        return rc;
    if (v[6] && (rc = s_require(c, r, v[6])) != GBX_OK)
        return rc;
    if (v[7] && (rc = s_volume(c, r, v[7])) != GBX_OK)
        return rc;
    char *o = gbx_yaml_scalar(v[8]);
    int bad = s_outcome_parse(o, &r->outcome) != 0;
    free(o);
    if (bad)
        return s_bad(c, v[8] ? v[8] : map, "rules.outcome", "ALLOW, DENY or HOLD is required");
    if (r->outcome == GBX_OUTCOME_DENY && (v[6] || v[7]))
        return s_bad(c, v[6] ? v[6] : v[7], v[6] ? "rules.require" : "rules.volume",
                     "a DENY rule denies whatever it matches: requirements and caps belong to "
                     "ALLOW and HOLD rules (narrow its match instead)");
    if (v[9] && !(r->reason = gbx_yaml_scalar(v[9])))
        return s_bad(c, v[9], "rules.reason", "must be text");
    return GBX_OK;
}

static gbx_err_t s_rules(s_ctx_t *c, struct fy_node *seq)
{
    if (!seq || fy_node_get_type(seq) != FYNT_SEQUENCE)
        return s_bad(c, seq, "rules", "must be a list");
    size_t n = (size_t)fy_node_sequence_item_count(seq);
    c->p->rules = calloc(n ? n : 1, sizeof *c->p->rules);
    if (!c->p->rules)
        return GBX_E_NOMEM;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(seq, &it)) != NULL) {
        gbx_err_t rc = s_rule(c, &c->p->rules[c->p->n_rules], item);
        c->p->n_rules++; /* counted even when failed: destroy frees it */
        if (rc != GBX_OK)
            return rc;
    }
    return GBX_OK;
}

/*  Per service: the rules that may match it, in file order. */
static gbx_err_t s_index_rules(gbx_policy_t *p)
{
    size_t ns = p->n_services ? p->n_services : 1;
    p->by_service = calloc(ns, sizeof *p->by_service);
    p->n_by_service = calloc(ns, sizeof *p->n_by_service);
    if (!p->by_service || !p->n_by_service)
        return GBX_E_NOMEM;
    for (size_t s = 0; s < p->n_services; s++) {
        for (size_t r = 0; r < p->n_rules; r++) {
            if (!s_set_has(&p->rules[r].services, s))
                continue;
            size_t *l = realloc(p->by_service[s], (p->n_by_service[s] + 1) * sizeof *l);
            if (!l)
                return GBX_E_NOMEM;
            p->by_service[s] = l;
            l[p->n_by_service[s]++] = r;
        }
    }
    return GBX_OK;
}

static gbx_err_t s_load(s_ctx_t *c, struct fy_node *root)
{
    static const char *const keys[] = {"version", "groups", "routes", "rules", NULL};
    struct fy_node *v[4];
    gbx_err_t rc = s_keys(c, root, "policy", keys, v);
    if (rc != GBX_OK)
        return rc;
    c->p->version = gbx_yaml_scalar(v[0]);
    if (!c->p->version || !*c->p->version)
        return s_bad(c, v[0] ? v[0] : root, "version", "a version text is required");
    if (v[1]) {
        if (fy_node_get_type(v[1]) != FYNT_MAPPING)
            return s_bad(c, v[1], "groups", "must be a mapping of group names to agency lists");
        c->groups = v[1];
        void *it = NULL;
        struct fy_node_pair *pr;
        while ((pr = fy_node_mapping_iterate(v[1], &it)) != NULL) {
            char *name = gbx_yaml_scalar(fy_node_pair_key(pr));
            int clash = !name || !*name || s_find(c->p->agencies, name);
            free(name);
            if (clash)
                return s_bad(c, fy_node_pair_key(pr), "groups",
                             "a group needs a name that is not an agency id");
            s_set_t probe = {NULL};
            s_agency_arg_t a = {.set = &probe, .setting = "groups", .groups = 0};
            probe.words = calloc(c->p->words_a ? c->p->words_a : 1, sizeof *probe.words);
            if (!probe.words)
                return GBX_E_NOMEM;
            rc = s_items(c, fy_node_pair_value(pr), "groups", s_agency_item, &a);
            free(probe.words);
            if (rc != GBX_OK)
                return rc;
        }
    }
    if (v[2] && (rc = s_route_refs(c, v[2])) != GBX_OK)
        return rc;
    if ((rc = s_rules(c, v[3])) != GBX_OK)
        return rc;
    return s_index_rules(c->p);
}

gbx_err_t gbx_policy_parse(const char *name, const char *text, size_t len,
                           const gbx_registry_t *reg, gbx_policy_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!name || !text || !reg || !out)
        return GBX_E_ARG;
    *out = NULL;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    s_ctx_t c = {.y = {.name = name, .err = err, .errlen = err ? errlen : 0}, .reg = reg};
    c.p = calloc(1, sizeof *c.p);
    if (!c.p)
        return GBX_E_NOMEM;
    gbx_policy_t *p = c.p;
    crypto_generichash(p->hash, sizeof p->hash, (const uint8_t *)text, len, NULL, 0);
    p->n_agencies = gbx_registry_agency_count(reg);
    p->n_services = gbx_registry_service_count(reg);
    p->words_a = (p->n_agencies + 63) / 64;
    p->words_s = (p->n_services + 63) / 64;
    gbx_err_t rc = GBX_OK;
    for (size_t i = 0; rc == GBX_OK && i < p->n_agencies; i++)
        rc = s_index_add(&p->agencies, gbx_registry_agency_at(reg, i)->id, i);
    for (size_t i = 0; rc == GBX_OK && i < p->n_services; i++) {
        const gbx_service_t *s = gbx_registry_service_at(reg, i);
        char key[GBX_SERVICE_CODE_MAX + 16];
        s_service_key(s->code, s->version, key, sizeof key);
        rc = s_index_add(&p->services, key, i);
    }
    struct fy_document *doc = NULL;
    if (rc == GBX_OK)
        rc = gbx_yaml_parse(&c.y, text, len, "version, groups, routes, rules", &doc);
    if (rc == GBX_OK)
        rc = s_load(&c, fy_document_root(doc));
    fy_document_destroy(doc);
    if (rc != GBX_OK) {
        gbx_policy_destroy(&p);
        return rc;
    }
    *out = p;
    return GBX_OK;
}

gbx_err_t gbx_policy_load(const char *path, const gbx_registry_t *reg, gbx_policy_t **out,
                          char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !reg || !out)
        return GBX_E_ARG;
    gbx_yaml_ctx_t y = {.name = path, .err = err, .errlen = err ? errlen : 0};
    char *buf = NULL;
    size_t len = 0;
    gbx_err_t rc = gbx_yaml_read(&y, "policy", S_FILE_MAX, &buf, &len);
    if (rc == GBX_OK)
        rc = gbx_policy_parse(path, buf, len, reg, out, err, errlen);
    free(buf);
    return rc;
}

static void s_strings_free(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

void gbx_policy_destroy(gbx_policy_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_policy_t *p = *self_p;
    for (size_t i = 0; i < p->n_rules; i++) {
        s_rule_t *r = &p->rules[i];
        free(r->requester.words);
        free(r->provider.words);
        free(r->exporter.words);
        free(r->services.words);
        s_strings_free(r->purposes, r->n_purposes);
        s_strings_free(r->cities, r->n_cities);
        free(r->reason);
    }
    for (size_t i = 0; i < p->n_refs; i++) {
        free(p->refs[i].ref);
        free(p->refs[i].exporters.words);
    }
    for (size_t i = 0; p->by_service && i < p->n_services; i++)
        free(p->by_service[i]);
    free(p->by_service);
    free(p->n_by_service);
    free(p->rules);
    free(p->refs);
    free(p->version);
    s_index_free(&p->agencies);
    s_index_free(&p->services);
    free(p);
    *self_p = NULL;
}

const char *gbx_policy_version(const gbx_policy_t *self)
{
    return self ? self->version : NULL;
}

const uint8_t *gbx_policy_hash(const gbx_policy_t *self)
{
    return self ? self->hash : NULL;
}

size_t gbx_policy_rule_count(const gbx_policy_t *self)
{
    return self ? self->n_rules : 0;
}

/* -------------------------------------------------------------- deciding */

/*  What one decision knows about its message. */
typedef struct {
    const gbx_header_t *h;
    const gbx_agency_t *from, *to;
    size_t from_i, to_i, req_i, prov_i, svc_i;
    unsigned dir;
    int64_t day, created_day;
    uint64_t subjects;
} s_msg_t;

static void s_why(gbx_decision_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_why(gbx_decision_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
}

static void s_decide_as(gbx_decision_t *d, gbx_outcome_t o, gbx_err_t reason, const char *rule,
                        uint32_t version)
{
    d->outcome = o;
    d->reason = reason;
    snprintf(d->rule_id, sizeof d->rule_id, "%s", rule);
    d->rule_version = version;
}

static int s_in_list(char *const *l, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i], text) == 0)
            return 1;
    return 0;
}

static int s_matches(const s_rule_t *r, const s_msg_t *m)
{
    const gbx_header_t *h = m->h;
    return r->enabled && m->day >= r->from_day && m->day <= r->until_day &&
           (!r->dir_mask || (r->dir_mask & m->dir)) &&
           (!r->kind_mask || (r->kind_mask >> h->kind & 1)) &&
           (!r->class_mask || (r->class_mask >> h->data_class & 1)) &&
           (!r->marking_mask || (r->marking_mask >> h->hk_marking & 1)) &&
           (!r->mroute_mask || (r->mroute_mask >> h->legal_route & 1)) &&
           s_set_has(&r->requester, m->req_i) && s_set_has(&r->provider, m->prov_i) &&
           s_set_has(&r->exporter, m->from_i) &&
           (!r->n_purposes ||
            (h->purpose_code && s_in_list(r->purposes, r->n_purposes, h->purpose_code)));
}

static int s_given(const char *s)
{
    return s && *s;
}

/*  The first requirement of R that M fails, written to WHY; 0 if none. */
static int s_unmet(const gbx_policy_t *p, const s_rule_t *r, const s_msg_t *m, char *why,
                   size_t cap)
{
    const gbx_header_t *h = m->h;
    const char *route = s_enum_name(&gbx__v1__legal_route__descriptor, h->legal_route);
    if (r->route_mask && !(r->route_mask >> h->legal_route & 1)) {
        snprintf(why, cap, "legal route %s is not one this rule accepts", route);
        return 1;
    }
    if (r->route_ref_valid) {
        const s_routeref_t *ref = NULL;
        for (size_t i = 0; i < p->n_refs && !ref; i++)
            if ((int)h->legal_route == p->refs[i].route && h->legal_route_ref &&
                strcmp(p->refs[i].ref, h->legal_route_ref) == 0)
                ref = &p->refs[i];
        char date[11];
        if (!ref) {
            snprintf(why, cap, "route reference \"%.64s\" is not declared for %s",
                     s_given(h->legal_route_ref) ? h->legal_route_ref : "", route);
            return 1;
        }
        if (m->created_day < ref->from_day) {
            s_date_text(ref->from_day, date);
            snprintf(why, cap, "route reference %.64s is valid only from %s", ref->ref, date);
            return 1;
        }
        if (m->created_day > ref->until_day || m->day > ref->until_day) {
            /* valid on the message's date, and still when it is decided: a
               backdated message does not revive an expired reference */
            s_date_text(ref->until_day, date);
            snprintf(why, cap, "route reference %.64s expired on %s", ref->ref, date);
            return 1;
        }
        if (!s_set_has(&ref->exporters, m->from_i)) {
            snprintf(why, cap, "%s may not rely on route reference %.64s", h->from_agency,
                     ref->ref);
            return 1;
        }
    }
    if (r->consent && (!s_given(h->consent_ref) || (int)h->consent_type < r->consent)) {
        snprintf(why, cap, "needs %s with a consent reference (got %s%s)",
                 s_enum_name(&gbx__v1__consent_type__descriptor, r->consent),
                 s_enum_name(&gbx__v1__consent_type__descriptor, h->consent_type),
                 s_given(h->consent_ref) ? "" : ", no reference");
        return 1;
    }
    static const char *const names[] = {"impact_assessment_ref", "end_user_ref", "agreement_ref",
                                        "release_authority_ref"};
    const int flags[] = {r->impact, r->end_user, r->agreement, r->release};
    const char *vals[] = {h->impact_assessment_ref, h->end_user_ref, h->agreement_ref,
                          h->release_authority_ref};
    for (int i = 0; i < 4; i++)
        if (flags[i] && !s_given(vals[i])) {
            snprintf(why, cap, "needs %s", names[i]);
            return 1;
        }
    if (r->max_payload && h->payload_length > (uint64_t)r->max_payload) {
        snprintf(why, cap, "payload of %llu bytes is over this rule's %lld",
                 (unsigned long long)h->payload_length, (long long)r->max_payload);
        return 1;
    }
    if (r->max_ttl && h->expires_at_ms - h->created_at_ms > (uint64_t)r->max_ttl) {
        snprintf(why, cap, "time to live of %llu ms is over this rule's %lld",
                 (unsigned long long)(h->expires_at_ms - h->created_at_ms), (long long)r->max_ttl);
        return 1;
    }
    if ((r->loc_mask || r->n_cities) &&
        !((r->loc_mask & S_LOC_HK && m->to->jurisdiction == GBX_JUR_HK) ||
          (r->loc_mask & S_LOC_GD && m->to->jurisdiction == GBX_JUR_GD) ||
          s_in_list(r->cities, r->n_cities, m->to->city))) {
        snprintf(why, cap, "recipient %s (%s) is not where this rule allows", m->to->id,
                 m->to->city);
        return 1;
    }
    return 0;
}

/*  The counter keys of M: subjects per year and messages per day, per
    exporter and route, and the same per class. */
static void s_keys_of(const s_msg_t *m, int subjects, int per_class, int across, char *out,
                      size_t cap)
{
    const gbx_header_t *h = m->h;
    int64_t y;
    unsigned mo, d;
    s_civil_from_days(m->day, &y, &mo, &d);
    const char *route =
        across ? S_ALL_ROUTES : s_enum_name(&gbx__v1__legal_route__descriptor, h->legal_route);
    int n = subjects ? snprintf(out, cap, "s/%04d/%s/%s", (int)y, h->from_agency, route)
                     : snprintf(out, cap, "m/%04d-%02u-%02u/%s/%s", (int)y, mo, d, h->from_agency,
                                route);
    if (per_class && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "/%s",
                 s_enum_name(&gbx__v1__data_class__descriptor, h->data_class));
}

static void s_count(gbx_decision_t *d, const char *key, uint64_t add)
{
    for (size_t i = 0; i < d->n_counts; i++)
        if (strcmp(d->counts[i].key, key) == 0)
            return;
    if (d->n_counts == GBX_POLICY_COUNTS_MAX)
        return;
    snprintf(d->counts[d->n_counts].key, sizeof d->counts[0].key, "%s", key);
    d->counts[d->n_counts++].add = add;
}

/*  Whether M takes one of R's counters past its cap: *CROSSED, and WHY. */
static gbx_err_t s_caps(const s_rule_t *r, const s_msg_t *m, gbx_policy_counter_fn counter,
                        void *arg, int *crossed, char *why, size_t cap)
{
    *crossed = 0;
    for (int subjects = 1; subjects >= 0; subjects--) {
        uint64_t limit = subjects ? r->subjects_per_year : r->messages_per_day;
        if (!limit)
            continue;
        char key[GBX_POLICY_KEY_MAX + 1];
        s_keys_of(m, subjects, r->per_class, r->across_routes, key, sizeof key);
        uint64_t have = 0;
        if (counter) {
            gbx_err_t rc = counter(arg, key, &have);
            if (rc != GBX_OK)
                return rc;
        }
        uint64_t add = subjects ? m->subjects : 1;
        if (have + add > limit) {
            snprintf(why, cap, "%s: %llu + %llu would pass the cap of %llu", key,
                     (unsigned long long)have, (unsigned long long)add, (unsigned long long)limit);
            *crossed = 1;
            return GBX_OK;
        }
    }
    return GBX_OK;
}

/*  Built-in decisions (policy.h step 1). 1 if one was made. */
static int s_builtin(const gbx_policy_t *p, const gbx_registry_t *reg, s_msg_t *m,
                     gbx_decision_t *d)
{
    const gbx_header_t *h = m->h;
    char key[GBX_SERVICE_CODE_MAX + 16];
    s_service_key(h->service_code ? h->service_code : "", h->service_version, key, sizeof key);
    const s_index_t *si = s_find(p->services, key);
    const gbx_service_t *svc = si ? gbx_registry_service_at(reg, si->index) : NULL;
    const char *prov = h->kind == GBX__V1__MESSAGE_KIND__RESPONSE ? h->from_agency : h->to_agency;
    if (!svc) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:service", 0);
        s_why(d, "service %.64s version %u is not in the registry", h->service_code,
              (unsigned)h->service_version);
        return 1;
    }
    m->svc_i = si->index;
    if (strcmp(svc->provider, prov) != 0) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:provider", 0);
        s_why(d, "%s is served by %s, not %s", svc->code, svc->provider, prov);
        return 1;
    }
    if (h->data_class < svc->data_class) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:label", 0);
        s_why(d, "labelled %s, below %s, the class of %s",
              s_enum_name(&gbx__v1__data_class__descriptor, h->data_class),
              s_enum_name(&gbx__v1__data_class__descriptor, svc->data_class), svc->code);
        return 1;
    }
    if (h->data_class >= GBX__V1__DATA_CLASS__CORE) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:core", 0);
        s_why(d, "CORE data never crosses");
        return 1;
    }
    if (h->hk_marking >= GBX__V1__HK_MARKING__CONFIDENTIAL ||
        h->hk_marking == GBX__V1__HK_MARKING__HK_MARKING_UNSPECIFIED) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:marking", 0);
        s_why(d, "marked %s: CONFIDENTIAL and above never cross",
              s_enum_name(&gbx__v1__hk_marking__descriptor, h->hk_marking));
        return 1;
    }
    if (h->hk_marking == GBX__V1__HK_MARKING__RESTRICTED && !s_given(h->release_authority_ref)) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:restricted", 0);
        s_why(d, "marked RESTRICTED without the originator's release_authority_ref");
        return 1;
    }
    return 0;
}

gbx_err_t gbx_policy_decide(const gbx_policy_t *self, const gbx_registry_t *reg,
                            const gbx_header_t *h, uint64_t now_ms, gbx_policy_counter_fn counter,
                            void *counter_arg, gbx_decision_t *d)
{
    if (!self || !reg || !h || !d)
        return GBX_E_ARG;
    memset(d, 0, sizeof *d);
    memcpy(d->policy_hash, self->hash, sizeof d->policy_hash);
    s_msg_t m = {.h = h, .day = s_day(now_ms), .created_day = s_day(h->created_at_ms)};
    const s_index_t *fi = h->from_agency ? s_find(self->agencies, h->from_agency) : NULL;
    const s_index_t *ti = h->to_agency ? s_find(self->agencies, h->to_agency) : NULL;
    if (!fi || !ti) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, "builtin:agency", 0);
        s_why(d, "%s is not in the registry", fi ? h->to_agency : h->from_agency);
        return GBX_OK;
    }
    m.from_i = fi->index, m.to_i = ti->index;
    m.from = gbx_registry_agency_at(reg, fi->index);
    m.to = gbx_registry_agency_at(reg, ti->index);
    int response = h->kind == GBX__V1__MESSAGE_KIND__RESPONSE;
    m.req_i = response ? m.to_i : m.from_i;
    m.prov_i = response ? m.from_i : m.to_i;
    m.dir = m.from->jurisdiction == GBX_JUR_HK
                ? (m.to->jurisdiction == GBX_JUR_HK ? S_WITHIN_HK : S_HK_TO_GD)
                : (m.to->jurisdiction == GBX_JUR_HK ? S_GD_TO_HK : S_WITHIN_GD);
    m.subjects = h->subject_count;
    if (m.subjects == 0 && h->data_class >= GBX__V1__DATA_CLASS__PERSONAL)
        m.subjects = 1; /* personal data concerns someone */
    if (s_builtin(self, reg, &m, d))
        return GBX_OK;

    int matched = 0;
    const s_rule_t *best = NULL, *first_fail = NULL;
    gbx_outcome_t best_o = GBX_OUTCOME_ALLOW;
    char fail_why[GBX_POLICY_WHY_MAX + 1] = "", cap_why[GBX_POLICY_WHY_MAX + 1] = "";
    for (size_t k = 0; k < self->n_by_service[m.svc_i]; k++) {
        const s_rule_t *r = &self->rules[self->by_service[m.svc_i][k]];
        if (!s_matches(r, &m))
            continue;
        matched++;
        if (r->outcome == GBX_OUTCOME_DENY) {
            s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, r->id, r->version);
            s_why(d, "rule %s denies%s%s", r->id, r->reason ? ": " : "",
                  r->reason ? r->reason : "");
            return GBX_OK;
        }
        char why[GBX_POLICY_WHY_MAX + 1];
        if (s_unmet(self, r, &m, why, sizeof why)) {
            if (!first_fail) {
                first_fail = r;
                snprintf(fail_why, sizeof fail_why, "%s", why);
            }
            continue;
        }
        int crossed = 0;
        gbx_err_t rc = s_caps(r, &m, counter, counter_arg, &crossed, why, sizeof why);
        if (rc != GBX_OK)
            return rc;
        gbx_outcome_t o = crossed ? r->at_cap : r->outcome;
        if (o == GBX_OUTCOME_DENY) {
            s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, r->id, r->version);
            s_why(d, "rule %s: volume cap: %s", r->id, why);
            return GBX_OK;
        }
        if (!best || (o == GBX_OUTCOME_HOLD && best_o == GBX_OUTCOME_ALLOW)) {
            best = r, best_o = o;
            snprintf(cap_why, sizeof cap_why, "%s", crossed ? why : "");
        }
    }
    if (!matched) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_NO_MATCH, "", 0);
        s_why(d, "no rule matches %s %s %s v%u %s from %s to %s", s_dir_names[__builtin_ctz(m.dir)],
              s_enum_name(&gbx__v1__message_kind__descriptor, h->kind), h->service_code,
              (unsigned)h->service_version,
              s_enum_name(&gbx__v1__data_class__descriptor, h->data_class), h->from_agency,
              h->to_agency);
        return GBX_OK;
    }
    if (!best) {
        s_decide_as(d, GBX_OUTCOME_DENY, GBX_E_POLICY_DENIED, first_fail->id, first_fail->version);
        s_why(d, "rule %s: %s", first_fail->id, fail_why);
        return GBX_OK;
    }
    gbx_outcome_t o = best_o;
    int restricted = h->hk_marking == GBX__V1__HK_MARKING__RESTRICTED;
    if (restricted)
        o = GBX_OUTCOME_HOLD;
    s_decide_as(d, o, GBX_OK, best->id, best->version);
    if (cap_why[0])
        s_why(d, "rule %s: volume cap reached, held: %s", best->id, cap_why);
    else if (restricted && best_o == GBX_OUTCOME_ALLOW)
        s_why(d, "rule %s allows; RESTRICTED marking: held for approval", best->id);
    else
        s_why(d, "rule %s %s", best->id, o == GBX_OUTCOME_HOLD ? "holds for approval" : "allows");
    /* every accepted message counts toward the caps the policy has */
    char key[GBX_POLICY_KEY_MAX + 1];
    /* subjects always (the legal thresholds: a cap a reload adds must see
       the year so far), messages when some rule caps them */
    for (int subjects = 1; subjects >= 0; subjects--) {
        if (subjects ? m.subjects == 0 : !self->count_messages)
            continue;
        for (int across = 0; across <= 1; across++)
            for (int per_class = 0; per_class <= 1; per_class++) {
                s_keys_of(&m, subjects, per_class, across, key, sizeof key);
                s_count(d, key, subjects ? m.subjects : 1);
            }
    }
    return GBX_OK;
}
