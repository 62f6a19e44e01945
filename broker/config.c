/*  config.c: owns gbxd's configuration: the YAML file, its settings table
    and the registry it describes. Implements issue 3, deliverable 1. */
#include "config.h"
#include "policy.h"
#include "yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libfyaml.h>
#include <sodium.h>

#define S_FILE_MAX (4u << 20) /* a config file larger than 4 MiB is refused */

/* ------------------------------------------------------------ the table */

typedef struct {
    const char *name;
    gbx_setting_type_t type;
    const char *def; /* NULL: required */
    int64_t min, max;
    int reloadable;
    const char *doc;
} s_setting_t;

static const s_setting_t s_settings[GBX_SETTING_COUNT_] = {
#define S_ROW_(e, name, type, def, min, max, reload, doc)                                          \
    {name, GBX_SET_##type, def, min, max, reload, doc},
    GBX_SETTINGS(S_ROW_)
#undef S_ROW_
};

static const char *const s_type_names[] = {
    [GBX_SET_INT] = "int",
    [GBX_SET_DURATION] = "duration",
    [GBX_SET_BYTES] = "bytes",
    [GBX_SET_STRING] = "string",
    [GBX_SET_ID] = "id",
    [GBX_SET_JUR] = "jurisdiction",
    [GBX_SET_ENDPOINT] = "endpoint",
    [GBX_SET_HOSTPORT] = "host:port",
    [GBX_SET_PATH] = "path",
};

typedef struct {
    int64_t i;
    char *s;
    int line, col; /* 0: the default */
} s_value_t;

struct gbx_config {
    char *path;
    char *dir;
    s_value_t v[GBX_SETTING_COUNT_];
    gbx_registry_t *reg;
};

/*  One load in progress. */
typedef struct {
    gbx_yaml_ctx_t y; /* y.name: the config file's path */
    gbx_config_t *cfg;
} s_ctx_t;

/* -------------------------------------------------------------- helpers */

static int s_is_numeric(gbx_setting_type_t t)
{
    return t == GBX_SET_INT || t == GBX_SET_DURATION || t == GBX_SET_BYTES;
}

/*  1 if TEXT is a port number 1..65535. */
static int s_port_valid(const char *text)
{
    int64_t port = 0;
    return text && *text && strlen(text) <= 5 && gbx_yaml_number(text, GBX_YAML_INT, &port) == 0 &&
           port >= 1 && port <= 65535;
}

/*  1 if TEXT is HOST:PORT, HOST a name, an IPv4 address, [IPv6] or "*" (if STAR). */
static int s_hostport_valid(const char *text, int star)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || !s_port_valid(colon + 1))
        return 0;
    size_t hlen = (size_t)(colon - text);
    if (star && hlen == 1 && text[0] == '*')
        return 1;
    if (text[0] == '[')
        return hlen > 2 && text[hlen - 1] == ']';
    for (size_t i = 0; i < hlen; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/*  Joins DIR and a relative PATH (absolute paths are kept). Malloc'ed. */
static char *s_join(const char *dir, const char *path)
{
    char *out = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (asprintf(&out, "%s/%s", dir, path) < 0)
        return NULL;
    return out;
}

/*  Parses TEXT as setting S into *V. NULL on success, else what is wrong
    (static text, or WHY filled). */
static const char *s_parse_value(const gbx_config_t *cfg, gbx_setting_t s, const char *text,
                                 s_value_t *v, char *why, size_t whylen)
{
    const s_setting_t *st = &s_settings[s];
    int64_t n = 0;
    switch (st->type) {
    case GBX_SET_INT:
    case GBX_SET_DURATION:
    case GBX_SET_BYTES:
        if (gbx_yaml_number(text,
                            st->type == GBX_SET_DURATION ? GBX_YAML_DURATION
                            : st->type == GBX_SET_BYTES  ? GBX_YAML_BYTES
                                                         : GBX_YAML_INT,
                            &n) != 0) {
            return st->type == GBX_SET_DURATION ? "not a duration (e.g. 1500, 30s, 5min, 2h, 7d)"
                   : st->type == GBX_SET_BYTES  ? "not a size in bytes (e.g. 65536, 64KiB, 16MiB)"
                                                : "not an integer";
        }
        if (n < st->min || n > st->max) {
            snprintf(why, whylen, "must be between %" PRId64 " and %" PRId64, st->min, st->max);
            return why;
        }
        v->i = n;
        return NULL;
    case GBX_SET_STRING:
        if (!*text)
            return "must not be empty";
        break;
    case GBX_SET_ID:
        if (!gbx_id_valid(text))
            return "not a valid id ([a-z0-9][a-z0-9.-], at most 64 characters)";
        break;
    case GBX_SET_JUR:
        if (gbx_jurisdiction_parse(text) == GBX_JUR_NONE)
            return "must be HK or GD";
        break;
    case GBX_SET_ENDPOINT:
        if (strcmp(text, "off") == 0 && st->def && strcmp(st->def, "off") == 0)
            break; /* an optional endpoint, not used */
        if (strncmp(text, "tcp://", 6) == 0   ? !s_hostport_valid(text + 6, 1)
            : strncmp(text, "ipc://", 6) == 0 ? text[6] != '/' || !text[7]
                                              : 1)
            return "not an endpoint (tcp://HOST:PORT or ipc:///absolute/path)";
        break;
    case GBX_SET_HOSTPORT:
        if (strcmp(text, "off") != 0 && !s_hostport_valid(text, 0))
            return "not an address (HOST:PORT, or off)";
        break;
    case GBX_SET_PATH:
        if (!*text)
            return "must not be empty";
        break;
    }
    char *copy = st->type == GBX_SET_PATH ? s_join(cfg->dir, text) : strdup(text);
    if (!copy)
        return "out of memory";
    free(v->s);
    v->s = copy;
    return NULL;
}

/* ------------------------------------------------------------- sections */

static int s_find_setting(const char *name)
{
    for (int i = 0; i < GBX_SETTING_COUNT_; i++)
        if (strcmp(s_settings[i].name, name) == 0)
            return i;
    return -1;
}

/*  One scalar section (node, listen, limits, audit): every key must be a setting. */
static gbx_err_t s_section(s_ctx_t *ctx, const char *section, struct fy_node *map)
{
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return gbx_yaml_fail(&ctx->y, map, GBX_E_FIELD_INVALID, section, "must be a mapping");
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p), *val = fy_node_pair_value(p);
        char *key = gbx_yaml_scalar(k), *text = NULL, *name = NULL, why[96];
        gbx_err_t rc = GBX_OK;
        if (!key || asprintf(&name, "%s.%s", section, key) < 0) {
            name = NULL;
            rc =
                gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, section, "keys must be plain names");
            goto next;
        }
        int s = s_find_setting(name);
        if (s < 0) {
            rc = gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, name, "unknown setting");
            goto next;
        }
        if (!val) {
            rc = gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, name, "has no value");
            goto next;
        }
        text = gbx_yaml_scalar(val);
        if (!text) {
            rc = gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, name, "must be a scalar (%s)",
                               s_type_names[s_settings[s].type]);
            goto next;
        }
        s_value_t *v = &ctx->cfg->v[s];
        const char *bad = s_parse_value(ctx->cfg, (gbx_setting_t)s, text, v, why, sizeof why);
        if (bad) {
            rc = gbx_yaml_fail(&ctx->y, val, GBX_E_FIELD_INVALID, name, "%s", bad);
            goto next;
        }
        gbx_yaml_mark(val, &v->line, &v->col);
    next:
        free(key);
        free(name);
        free(text);
        if (rc != GBX_OK)
            return rc;
    }
    return GBX_OK;
}

/* ------------------------------------------------------- registry entries */

enum {
    S_F_ID,
    S_F_JUR,
    S_F_CITY,
    S_F_NODE,
    S_F_NAME,
    S_F_PUB,
    S_F_SIGN,
    S_F_BOX,
    S_F_CURVE,
    S_F_CODE,
    S_F_VERSION,
    S_F_CLASS,
    S_F_PROVIDER,
    S_F_DESC,
    S_F_ROLE,
    S_F_COUNT
};

static const char *const s_field_names[S_F_COUNT] = {
    "id",    "jurisdiction", "city",    "node",  "name",     "pub",         "sign", "box",
    "curve", "code",         "version", "class", "provider", "description", "role"};

/*  An entry being read: its mapping, the value node of each field, where. */
typedef struct {
    struct fy_node *map;
    struct fy_node *f[S_F_COUNT];
    char *text[S_F_COUNT];
    char where[64]; /* "registry.agencies[2]" */
    char setting[96];
} s_entry_t;

static const char *s_setting_of(s_entry_t *e, int field)
{
    snprintf(e->setting, sizeof e->setting, "%s.%s", e->where, s_field_names[field]);
    return e->setting;
}

static int s_field_index(const char *name)
{
    for (int i = 0; i < S_F_COUNT; i++)
        if (strcmp(s_field_names[i], name) == 0)
            return i;
    return -1;
}

static void s_entry_free(s_entry_t *e)
{
    for (int i = 0; i < S_F_COUNT; i++)
        free(e->text[i]);
    memset(e, 0, sizeof *e);
}

/*  Reads mapping MAP; ALLOWED is a bit set of fields, REQUIRED those that
    must be present. */
static gbx_err_t s_entry_read(s_ctx_t *ctx, s_entry_t *e, struct fy_node *map, unsigned allowed,
                              unsigned required)
{
    e->map = map;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return gbx_yaml_fail(&ctx->y, map, GBX_E_FIELD_INVALID, e->where, "must be a mapping");
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p), *val = fy_node_pair_value(p);
        char *key = gbx_yaml_scalar(k);
        int f = key ? s_field_index(key) : -1;
        if (f < 0 || !(allowed & (1u << f))) {
            char setting[160];
            snprintf(setting, sizeof setting, "%s.%s", e->where, key ? key : "?");
            free(key);
            return gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, setting, "unknown key");
        }
        free(key);
        e->f[f] = val;
        free(e->text[f]); /* libfyaml refuses duplicate keys; in case */
        e->text[f] = gbx_yaml_scalar(val);
        if (!e->text[f])
            return gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, s_setting_of(e, f),
                                 "must be a scalar");
    }
    for (int f = 0; f < S_F_COUNT; f++)
        if ((required & (1u << f)) && !e->f[f])
            return gbx_yaml_fail(&ctx->y, map, GBX_E_FIELD_INVALID, s_setting_of(e, f), "missing");
    return GBX_OK;
}

/*  Copies field F's text into DST[SIZE]; error if it does not fit. */
static gbx_err_t s_entry_copy(s_ctx_t *ctx, s_entry_t *e, int f, char *dst, size_t size)
{
    const char *text = e->text[f] ? e->text[f] : "";
    if (strlen(text) >= size)
        return gbx_yaml_fail(&ctx->y, e->f[f], GBX_E_FIELD_INVALID, s_setting_of(e, f),
                             "longer than %zu bytes", size - 1);
    memcpy(dst, text, strlen(text) + 1);
    return GBX_OK;
}

/*  The id, jurisdiction and keys common to nodes and agencies. */
static gbx_err_t s_entry_party(s_ctx_t *ctx, s_entry_t *e, char id[GBX_ID_MAX + 1],
                               gbx_jurisdiction_t *jur, gbx_pubid_t *pub)
{
    if (!gbx_id_valid(e->text[S_F_ID]))
        return gbx_yaml_fail(&ctx->y, e->f[S_F_ID], GBX_E_FIELD_INVALID, s_setting_of(e, S_F_ID),
                             "not a valid id ([a-z0-9][a-z0-9.-], at most 64 characters)");
    snprintf(id, GBX_ID_MAX + 1, "%s", e->text[S_F_ID]);
    if (jur) /* NULL: an operator, on neither side */
        *jur = gbx_jurisdiction_parse(e->text[S_F_JUR]);
    if (jur && *jur == GBX_JUR_NONE)
        return gbx_yaml_fail(&ctx->y, e->f[S_F_JUR], GBX_E_FIELD_INVALID, s_setting_of(e, S_F_JUR),
                             "must be HK or GD");
    int inline_keys = e->f[S_F_SIGN] || e->f[S_F_BOX] || e->f[S_F_CURVE];
    if (e->f[S_F_PUB] && inline_keys)
        return gbx_yaml_fail(&ctx->y, e->f[S_F_PUB], GBX_E_FIELD_INVALID, s_setting_of(e, S_F_PUB),
                             "give either pub or sign/box/curve, not both");
    if (e->f[S_F_PUB]) {
        if (!*e->text[S_F_PUB])
            return gbx_yaml_fail(&ctx->y, e->f[S_F_PUB], GBX_E_FIELD_INVALID,
                                 s_setting_of(e, S_F_PUB), "must not be empty");
        char *path = s_join(ctx->cfg->dir, e->text[S_F_PUB]);
        if (!path)
            return GBX_E_NOMEM;
        gbx_err_t rc = gbx_pubid_load(path, pub);
        if (rc == GBX_E_IO)
            rc = gbx_yaml_fail(&ctx->y, e->f[S_F_PUB], rc, s_setting_of(e, S_F_PUB),
                               "cannot read %s: %s", path, strerror(errno));
        else if (rc != GBX_OK)
            rc = gbx_yaml_fail(&ctx->y, e->f[S_F_PUB], rc, s_setting_of(e, S_F_PUB),
                               "%s is not a valid .pub file (%s)", path, gbx_strerror(rc));
        else if (strcmp(pub->id, id) != 0)
            rc =
                gbx_yaml_fail(&ctx->y, e->f[S_F_PUB], GBX_E_FIELD_INVALID, s_setting_of(e, S_F_PUB),
                              "%s holds the keys of %s, not %s", path, pub->id, id);
        free(path);
        return rc;
    }
    static const int kf[3] = {S_F_SIGN, S_F_BOX, S_F_CURVE};
    uint8_t *dst[3] = {pub->sign_pk, pub->box_pk, pub->curve_pk};
    for (int i = 0; i < 3; i++) {
        const char *t = e->text[kf[i]];
        size_t bin_len = 0;
        const char *end = NULL;
        if (!e->f[kf[i]])
            return gbx_yaml_fail(&ctx->y, e->map, GBX_E_FIELD_INVALID, s_setting_of(e, kf[i]),
                                 "missing (give pub: FILE or sign, box and curve)");
        if (sodium_base642bin(dst[i], GBX_KEY_BYTES, t, strlen(t), NULL, &bin_len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            bin_len != GBX_KEY_BYTES || *end)
            return gbx_yaml_fail(&ctx->y, e->f[kf[i]], GBX_E_KEY_FORMAT, s_setting_of(e, kf[i]),
                                 "not a base64 key of %d bytes", GBX_KEY_BYTES);
    }
    snprintf(pub->id, sizeof pub->id, "%s", id);
    return GBX_OK;
}

/*  Reports a failed registry add at the field it names. */
static gbx_err_t s_reg_fail(s_ctx_t *ctx, s_entry_t *e, gbx_err_t rc, const gbx_registry_why_t *w)
{
    int f = w->field ? s_field_index(w->field) : -1;
    if (f == S_F_CURVE && !e->f[f])
        f = S_F_PUB; /* keys from a .pub file */
    struct fy_node *at = f >= 0 && e->f[f] ? e->f[f] : e->map;
    char setting[160];
    snprintf(setting, sizeof setting, "%s.%s", e->where, w->field ? w->field : "?");
    return gbx_yaml_fail(&ctx->y, at, rc, setting, "%s", w->text);
}

#define S_BIT(f) (1u << (f))

static gbx_err_t s_node_entry(s_ctx_t *ctx, s_entry_t *e)
{
    gbx_node_t n;
    memset(&n, 0, sizeof n);
    gbx_err_t rc = s_entry_party(ctx, e, n.id, &n.jurisdiction, &n.pub);
    if (rc != GBX_OK)
        return rc;
    gbx_registry_why_t w = {0};
    rc = gbx_registry_add_node(ctx->cfg->reg, &n, &w);
    return rc == GBX_OK ? rc : s_reg_fail(ctx, e, rc, &w);
}

static gbx_err_t s_agency_entry(s_ctx_t *ctx, s_entry_t *e)
{
    gbx_agency_t a;
    memset(&a, 0, sizeof a);
    gbx_err_t rc = s_entry_party(ctx, e, a.id, &a.jurisdiction, &a.pub);
    if (rc != GBX_OK)
        return rc;
    if (!e->f[S_F_CITY] && a.jurisdiction == GBX_JUR_GD)
        return gbx_yaml_fail(&ctx->y, e->map, GBX_E_FIELD_INVALID, s_setting_of(e, S_F_CITY),
                             "missing (a GD agency names its GBA city)");
    /* An unknown city is left empty: the registry words the message. */
    const char *city = e->f[S_F_CITY] ? e->text[S_F_CITY] : "hong-kong";
    if (gbx_city_valid(a.jurisdiction, city))
        snprintf(a.city, sizeof a.city, "%s", city);
    rc = s_entry_copy(ctx, e, S_F_NODE, a.node, sizeof a.node);
    if (rc == GBX_OK)
        rc = s_entry_copy(ctx, e, S_F_NAME, a.name, sizeof a.name);
    if (rc != GBX_OK)
        return rc;
    gbx_registry_why_t w = {0};
    rc = gbx_registry_add_agency(ctx->cfg->reg, &a, &w);
    return rc == GBX_OK ? rc : s_reg_fail(ctx, e, rc, &w);
}

static gbx_err_t s_service_entry(s_ctx_t *ctx, s_entry_t *e)
{
    gbx_service_t sv;
    memset(&sv, 0, sizeof sv);
    int64_t version = 0;
    if (gbx_yaml_number(e->text[S_F_VERSION], GBX_YAML_INT, &version) != 0 || version < 1 ||
        version > UINT32_MAX)
        return gbx_yaml_fail(&ctx->y, e->f[S_F_VERSION], GBX_E_FIELD_INVALID,
                             s_setting_of(e, S_F_VERSION),
                             "must be an integer between 1 and 4294967295");
    sv.version = (uint32_t)version;
    sv.data_class = gbx_data_class_parse(e->text[S_F_CLASS]);
    if (!gbx_data_class_name(sv.data_class))
        return gbx_yaml_fail(
            &ctx->y, e->f[S_F_CLASS], GBX_E_FIELD_INVALID, s_setting_of(e, S_F_CLASS),
            "must be PUBLIC, INTERNAL, PERSONAL, SENSITIVE_PERSONAL, IMPORTANT or CORE");
    gbx_err_t rc = s_entry_copy(ctx, e, S_F_CODE, sv.code, sizeof sv.code);
    if (rc == GBX_OK)
        rc = s_entry_copy(ctx, e, S_F_PROVIDER, sv.provider, sizeof sv.provider);
    if (rc == GBX_OK)
        rc = s_entry_copy(ctx, e, S_F_DESC, sv.description, sizeof sv.description);
    if (rc != GBX_OK)
        return rc;
    gbx_registry_why_t w = {0};
    rc = gbx_registry_add_service(ctx->cfg->reg, &sv, &w);
    return rc == GBX_OK ? rc : s_reg_fail(ctx, e, rc, &w);
}

static gbx_err_t s_operator_entry(s_ctx_t *ctx, s_entry_t *e)
{
    gbx_operator_t o;
    memset(&o, 0, sizeof o);
    gbx_err_t rc = s_entry_party(ctx, e, o.id, NULL, &o.pub);
    if (rc != GBX_OK)
        return rc;
    o.role = gbx_role_parse(e->text[S_F_ROLE]);
    if (o.role == GBX_ROLE_NONE)
        return gbx_yaml_fail(&ctx->y, e->f[S_F_ROLE], GBX_E_FIELD_INVALID,
                             s_setting_of(e, S_F_ROLE),
                             "must be viewer, operator, approver or admin");
    gbx_registry_why_t w = {0};
    rc = gbx_registry_add_operator(ctx->cfg->reg, &o, &w);
    return rc == GBX_OK ? rc : s_reg_fail(ctx, e, rc, &w);
}

typedef struct {
    const char *name;
    unsigned allowed, required;
    gbx_err_t (*fn)(s_ctx_t *, s_entry_t *);
} s_list_t;

#define S_KEYS (S_BIT(S_F_PUB) | S_BIT(S_F_SIGN) | S_BIT(S_F_BOX) | S_BIT(S_F_CURVE))

/*  In the order they must be added: agencies name nodes, services agencies. */
static const s_list_t s_lists[] = {
    {"nodes", S_BIT(S_F_ID) | S_BIT(S_F_JUR) | S_KEYS, S_BIT(S_F_ID) | S_BIT(S_F_JUR),
     s_node_entry},
    {"agencies",
     S_BIT(S_F_ID) | S_BIT(S_F_JUR) | S_BIT(S_F_CITY) | S_BIT(S_F_NODE) | S_BIT(S_F_NAME) | S_KEYS,
     S_BIT(S_F_ID) | S_BIT(S_F_JUR) | S_BIT(S_F_NODE), s_agency_entry},
    {"services",
     S_BIT(S_F_CODE) | S_BIT(S_F_VERSION) | S_BIT(S_F_CLASS) | S_BIT(S_F_PROVIDER) |
         S_BIT(S_F_DESC),
     S_BIT(S_F_CODE) | S_BIT(S_F_VERSION) | S_BIT(S_F_CLASS) | S_BIT(S_F_PROVIDER),
     s_service_entry},
    {"operators", S_BIT(S_F_ID) | S_BIT(S_F_ROLE) | S_KEYS, S_BIT(S_F_ID) | S_BIT(S_F_ROLE),
     s_operator_entry},
};
#define S_LISTS (sizeof s_lists / sizeof s_lists[0])

static gbx_err_t s_registry(s_ctx_t *ctx, struct fy_node *map)
{
    struct fy_node *lists[S_LISTS] = {NULL};
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return gbx_yaml_fail(&ctx->y, map, GBX_E_FIELD_INVALID, "registry", "must be a mapping");
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char *key = gbx_yaml_scalar(k);
        size_t i = 0;
        while (key && i < S_LISTS && strcmp(key, s_lists[i].name) != 0)
            i++;
        if (!key || i == S_LISTS) {
            char setting[96];
            snprintf(setting, sizeof setting, "registry.%s", key ? key : "?");
            free(key);
            return gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, setting, "unknown key");
        }
        free(key);
        lists[i] = fy_node_pair_value(p);
        if (!lists[i] || fy_node_get_type(lists[i]) != FYNT_SEQUENCE) {
            char setting[96];
            snprintf(setting, sizeof setting, "registry.%s", s_lists[i].name);
            return gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, setting, "must be a sequence");
        }
    }
    for (size_t i = 0; i < S_LISTS; i++) {
        void *sit = NULL;
        struct fy_node *item;
        size_t index = 0;
        while (lists[i] && (item = fy_node_sequence_iterate(lists[i], &sit)) != NULL) {
            s_entry_t e;
            memset(&e, 0, sizeof e);
            snprintf(e.where, sizeof e.where, "registry.%s[%zu]", s_lists[i].name, index++);
            gbx_err_t rc = s_entry_read(ctx, &e, item, s_lists[i].allowed, s_lists[i].required);
            if (rc == GBX_OK)
                rc = s_lists[i].fn(ctx, &e);
            s_entry_free(&e);
            if (rc != GBX_OK)
                return rc;
        }
    }
    return GBX_OK;
}

/* --------------------------------------------------------------- loading */

static gbx_err_t s_load(s_ctx_t *ctx, struct fy_node *root)
{
    /* the scalar sections first, the registry last */
    static const char *const sections[] = {"node", "listen", "limits", "audit", "registry"};
    enum { NSEC = 5, NSCALAR = 4 };
    struct fy_node *sec[NSEC] = {NULL}, *sec_key[NSEC] = {NULL};
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(root, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char *key = gbx_yaml_scalar(k);
        int i = 0;
        while (key && i < NSEC && strcmp(key, sections[i]) != 0)
            i++;
        if (!key || i == NSEC) {
            gbx_err_t rc = gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, key ? key : "?",
                                         "unknown section (node, listen, limits, audit, registry)");
            free(key);
            return rc;
        }
        free(key);
        sec[i] = fy_node_pair_value(p);
        sec_key[i] = k;
        if (!sec[i] || fy_node_get_type(sec[i]) != FYNT_MAPPING)
            return gbx_yaml_fail(&ctx->y, k, GBX_E_FIELD_INVALID, sections[i], "must be a mapping");
    }
    for (int i = 0; i < NSCALAR; i++) {
        gbx_err_t rc = sec[i] ? s_section(ctx, sections[i], sec[i]) : GBX_OK;
        if (rc != GBX_OK)
            return rc;
    }
    /* Required settings, then the defaults of the rest. */
    gbx_config_t *cfg = ctx->cfg;
    for (int s = 0; s < GBX_SETTING_COUNT_; s++) {
        const s_setting_t *st = &s_settings[s];
        if (cfg->v[s].line)
            continue;
        if (!st->def) {
            struct fy_node *at = NULL;
            for (int i = 0; i < NSCALAR; i++)
                if (strncmp(st->name, sections[i], strlen(sections[i])) == 0)
                    at = sec_key[i];
            return gbx_yaml_fail(&ctx->y, at, GBX_E_FIELD_INVALID, st->name,
                                 "required setting missing");
        }
        char why[96];
        const char *bad =
            s_parse_value(cfg, (gbx_setting_t)s, st->def, &cfg->v[s], why, sizeof why);
        if (bad)
            return gbx_yaml_fail_at(&ctx->y, 1, 1, GBX_E_NOMEM, st->name, "default: %s", bad);
    }
    /* Settings that depend on each other. */
    s_value_t *ttl = &cfg->v[GBX_SETTING_LIMITS_MAX_TTL_MS];
    s_value_t *dd = &cfg->v[GBX_SETTING_LIMITS_DEDUPE_WINDOW_MS];
    if (dd->i < ttl->i) {
        s_value_t *at = dd->line ? dd : ttl;
        return gbx_yaml_fail_at(&ctx->y, at->line ? at->line : 1, at->line ? at->col : 1,
                                GBX_E_FIELD_INVALID, "limits.dedupe_window_ms",
                                "must be at least limits.max_ttl_ms (%" PRId64 ")", ttl->i);
    }
    gbx_err_t rc = sec[NSEC - 1] ? s_registry(ctx, sec[NSEC - 1]) : GBX_OK;
    if (rc != GBX_OK)
        return rc;
    s_value_t *id = &cfg->v[GBX_SETTING_NODE_ID], *jur = &cfg->v[GBX_SETTING_NODE_JURISDICTION];
    const gbx_node_t *self_node = gbx_registry_node(cfg->reg, id->s);
    if (!self_node)
        return gbx_yaml_fail_at(&ctx->y, id->line, id->col, GBX_E_FIELD_INVALID, "node.id",
                                "%s is not in registry.nodes", id->s);
    if (self_node->jurisdiction != gbx_jurisdiction_parse(jur->s))
        return gbx_yaml_fail_at(&ctx->y, jur->line, jur->col, GBX_E_FIELD_INVALID,
                                "node.jurisdiction", "registry.nodes says %s is in %s", id->s,
                                gbx_jurisdiction_name(self_node->jurisdiction));
    return GBX_OK;
}

gbx_err_t gbx_config_load(const char *path, gbx_config_t **out, char *errbuf, size_t errlen)
{
    s_ctx_t ctx = {.y = {.name = path, .err = errbuf, .errlen = errbuf ? errlen : 0}};
    char *buf = NULL;
    size_t len = 0;
    struct fy_document *doc = NULL;
    gbx_err_t rc = GBX_OK;
    if (ctx.y.errlen)
        errbuf[0] = '\0';
    if (!path || !out)
        return GBX_E_ARG;
    if (sodium_init() < 0)
        return GBX_E_CRYPTO_INIT;
    ctx.cfg = calloc(1, sizeof *ctx.cfg);
    if (!ctx.cfg || !(ctx.cfg->path = strdup(path))) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    const char *slash = strrchr(path, '/');
    ctx.cfg->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!ctx.cfg->dir || gbx_registry_new(&ctx.cfg->reg) != GBX_OK) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    rc = gbx_yaml_read(&ctx.y, "config", S_FILE_MAX, &buf, &len);
    if (rc == GBX_OK)
        rc = gbx_yaml_parse(&ctx.y, buf, len, "node, listen, limits, registry", &doc);
    if (rc == GBX_OK)
        rc = s_load(&ctx, fy_document_root(doc));
out:
    fy_document_destroy(doc);
    free(buf);
    if (rc == GBX_OK)
        *out = ctx.cfg;
    else
        gbx_config_destroy(&ctx.cfg);
    return rc;
}

void gbx_config_destroy(gbx_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_config_t *self = *self_p;
    for (int s = 0; s < GBX_SETTING_COUNT_; s++)
        free(self->v[s].s);
    gbx_registry_destroy(&self->reg);
    free(self->path);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

int64_t gbx_config_int(const gbx_config_t *self, gbx_setting_t s)
{
    if (!self || (unsigned)s >= GBX_SETTING_COUNT_ || !s_is_numeric(s_settings[s].type))
        return 0;
    return self->v[s].i;
}

const char *gbx_config_str(const gbx_config_t *self, gbx_setting_t s)
{
    if (!self || (unsigned)s >= GBX_SETTING_COUNT_ || s_is_numeric(s_settings[s].type))
        return NULL;
    return self->v[s].s;
}

const gbx_registry_t *gbx_config_registry(const gbx_config_t *self)
{
    return self ? self->reg : NULL;
}

gbx_jurisdiction_t gbx_config_jurisdiction(const gbx_config_t *self)
{
    return self ? gbx_jurisdiction_parse(self->v[GBX_SETTING_NODE_JURISDICTION].s) : GBX_JUR_NONE;
}

const char *gbx_config_path(const gbx_config_t *self)
{
    return self ? self->path : NULL;
}

const char *gbx_setting_name(gbx_setting_t s)
{
    return (unsigned)s < GBX_SETTING_COUNT_ ? s_settings[s].name : NULL;
}

const char *gbx_setting_default(gbx_setting_t s)
{
    return (unsigned)s < GBX_SETTING_COUNT_ ? s_settings[s].def : NULL;
}

int gbx_setting_reloadable(gbx_setting_t s)
{
    return (unsigned)s < GBX_SETTING_COUNT_ ? s_settings[s].reloadable : 0;
}

/* ---------------------------------------------------------- show and docs */

void gbx_config_describe(const gbx_config_t *self, gbx_setting_t s, char *value, size_t vlen,
                         char *source, size_t slen)
{
    if (!self || (unsigned)s >= GBX_SETTING_COUNT_) {
        snprintf(value, vlen, "?");
        snprintf(source, slen, "?");
        return;
    }
    const s_value_t *v = &self->v[s];
    if (s_is_numeric(s_settings[s].type))
        snprintf(value, vlen, "%" PRId64, v->i);
    else
        snprintf(value, vlen, "%s", v->s ? v->s : "");
    if (v->line)
        snprintf(source, slen, "%s:%d", self->path, v->line);
    else
        snprintf(source, slen, "default");
}

gbx_err_t gbx_config_show(const gbx_config_t *self, FILE *out)
{
    if (!self || !out)
        return GBX_E_ARG;
    for (int s = 0; s < GBX_SETTING_COUNT_; s++) {
        const s_value_t *v = &self->v[s];
        char value[32];
        const char *text = v->s;
        if (s_is_numeric(s_settings[s].type)) {
            snprintf(value, sizeof value, "%" PRId64, v->i);
            text = value;
        }
        if (v->line)
            fprintf(out, "%s = %s  # %s:%d\n", s_settings[s].name, text, self->path, v->line);
        else
            fprintf(out, "%s = %s  # default\n", s_settings[s].name, text);
    }
    fprintf(out, "# registry: %zu nodes, %zu agencies, %zu services\n",
            gbx_registry_node_count(self->reg), gbx_registry_agency_count(self->reg),
            gbx_registry_service_count(self->reg));
    return fflush(out) == 0 && !ferror(out) ? GBX_OK : GBX_E_IO;
}

gbx_err_t gbx_config_doc_markdown(FILE *out)
{
    if (!out)
        return GBX_E_ARG;
    fprintf(out, "| setting | type | default | range | reload | meaning |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (int s = 0; s < GBX_SETTING_COUNT_; s++) {
        const s_setting_t *st = &s_settings[s];
        char range[64] = "";
        if (s_is_numeric(st->type))
            snprintf(range, sizeof range, "%" PRId64 " .. %" PRId64, st->min, st->max);
        fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s |\n", st->name, s_type_names[st->type],
                st->def ? "`" : "", st->def ? st->def : "*required*", st->def ? "`" : "", range,
                st->reloadable ? "yes" : "no", st->doc);
    }
    return fflush(out) == 0 && !ferror(out) ? GBX_OK : GBX_E_IO;
}

/* ------------------------------------------------------- embedded default */

typedef struct {
    const char *id, *jur, *city, *name;
} s_demo_agency_t;

static const char *const s_demo_node = "demo-1";

/*  The agencies and services of shared/domain/services.md (the sample
    policy, broker/default-policy.yaml, is written for them). */
static const s_demo_agency_t s_demo_agencies[] = {
    {"hk.cr", "HK", "hong-kong", "HK Companies Registry"},
    {"hk.ehealth", "HK", "hong-kong", "HK eHealth"},
    {"hk.kiosk", "HK", "hong-kong", "HK cross-boundary service kiosk"},
    {"hk.ird", "HK", "hong-kong", "HK Inland Revenue Department"},
    {"hk.immd", "HK", "hong-kong", "HK Immigration Department"},
    {"hk.td", "HK", "hong-kong", "HK Transport Department"},
    {"hk.dpo", "HK", "hong-kong", "HK Digital Policy Office"},
    {"hk.landsd", "HK", "hong-kong", "HK Lands Department"},
    {"gd.qh-amr", "GD", "shenzhen", "Shenzhen Qianhai market regulator"},
    {"gd.amr", "GD", "guangzhou", "Guangdong market regulator"},
    {"gd.tax", "GD", "guangzhou", "Guangdong tax service"},
    {"gd.sz-tax", "GD", "shenzhen", "Shenzhen tax service"},
    {"gd.hkush", "GD", "shenzhen", "HKU-Shenzhen Hospital"},
    {"gd.edu", "GD", "guangzhou", "Guangdong education department"},
    {"gd.traffic", "GD", "guangzhou", "Guangdong traffic police"},
    {"gd.gsdb", "GD", "guangzhou", "Guangdong government services data bureau"},
    {"gd.nr", "GD", "guangzhou", "Guangdong natural resources department"},
};

static const char s_demo_services[] =
    "  services:\n"
    "    - {code: HK-CR-COEXTRACT, version: 1, class: PERSONAL, provider: hk.cr,\n"
    "       description: \"company extract: name, status, directors\"}\n"
    "    - {code: GD-AMR-USCC, version: 1, class: PERSONAL, provider: gd.amr,\n"
    "       description: \"enterprise by Unified Social Credit Code\"}\n"
    "    - {code: GD-SI-PAYCERT, version: 1, class: SENSITIVE_PERSONAL, provider: gd.tax,\n"
    "       description: \"social-insurance contribution certificate\"}\n"
    "    - {code: HK-IRD-CORS, version: 1, class: PERSONAL, provider: hk.ird,\n"
    "       description: \"certificate of resident status (tax secrecy)\"}\n"
    "    - {code: HK-EHR-SUMMARY, version: 1, class: SENSITIVE_PERSONAL, provider: hk.ehealth,\n"
    "       description: \"eHealth summary: allergies, medications, diagnoses\"}\n"
    "    - {code: GD-EHR-UPLOAD, version: 1, class: SENSITIVE_PERSONAL, provider: hk.ehealth,\n"
    "       description: \"exam reports and images from Guangdong\"}\n"
    "    - {code: GD-EDU-DEGREE, version: 1, class: PERSONAL, provider: gd.edu,\n"
    "       description: \"degree certificate details\"}\n"
    "    - {code: GD-EDU-DEGREE-VERIFY, version: 1, class: INTERNAL, provider: gd.edu,\n"
    "       description: \"degree certificate check: a fingerprint in, yes or no out\"}\n"
    "    - {code: HK-TD-VEHLIC, version: 1, class: PERSONAL, provider: hk.td,\n"
    "       description: \"vehicle licence validity and owner match\"}\n"
    "    - {code: XB-STATS-MONTHLY, version: 1, class: INTERNAL, provider: hk.dpo,\n"
    "       description: \"monthly counts per service, from Hong Kong\"}\n"
    "    - {code: XB-STATS-MONTHLY-GD, version: 1, class: INTERNAL, provider: gd.gsdb,\n"
    "       description: \"monthly counts per service, from Guangdong\"}\n"
    "    - {code: GD-GEO-HIRES, version: 1, class: IMPORTANT, provider: gd.nr,\n"
    "       description: \"high-resolution geographic data\"}\n";

/*  Writes DIR/NAME with LEN bytes of TEXT, whole or not at all (a
    temporary file renamed); an existing DIR/NAME is kept. */
static gbx_err_t s_write_whole(const char *dir, const char *name, const char *text, size_t len)
{
    char *path = NULL, *tmp = NULL;
    gbx_err_t rc = GBX_OK;
    struct stat st;
    if (asprintf(&path, "%s/%s", dir, name) < 0) {
        path = NULL;
        return GBX_E_NOMEM;
    }
    if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0) {
        tmp = NULL;
        rc = GBX_E_NOMEM;
    } else if (lstat(path, &st) != 0) {
        FILE *f = fopen(tmp, "wxe");
        int bad = !f || fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0;
        if (f)
            bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0) {
            unlink(tmp);
            rc = GBX_E_IO;
        }
    }
    free(path);
    free(tmp);
    return rc;
}

/*  The demo's operators (gbxctl --as ID), one per role but the plain
    operator's. */
static const struct {
    const char *id, *role;
} s_demo_operators[] = {
    {"op.admin", "admin"}, {"op.approver", "approver"}, {"op.viewer", "viewer"}};

static gbx_err_t s_demo_keys(const char *keydir, const char *id)
{
    gbx_identity_t *idn = NULL;
    gbx_err_t rc = gbx_identity_generate(id, &idn);
    if (rc == GBX_OK)
        rc = gbx_identity_save(idn, keydir, 1);
    gbx_identity_destroy(&idn);
    return rc;
}

gbx_err_t gbx_config_write_default(const char *dir, char **path_out)
{
    gbx_err_t rc = GBX_OK;
    char *keydir = NULL, *path = NULL, *text = NULL;
    size_t text_len = 0;
    FILE *f = NULL;
    if (!dir || !*dir)
        return GBX_E_ARG;
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST))
        return GBX_E_IO;
    if (asprintf(&keydir, "%s/keys", dir) < 0) {
        keydir = NULL;
        rc = GBX_E_NOMEM;
        goto out;
    }
    if (asprintf(&path, "%s/gbxd.yaml", dir) < 0) {
        path = NULL;
        rc = GBX_E_NOMEM;
        goto out;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        rc = GBX_E_STATE;
        goto out;
    }
    if (mkdir(keydir, 0700) != 0 && errno != EEXIST) {
        rc = GBX_E_IO;
        goto out;
    }
    rc = s_demo_keys(keydir, s_demo_node);
    for (size_t i = 0; rc == GBX_OK && i < sizeof s_demo_agencies / sizeof s_demo_agencies[0]; i++)
        rc = s_demo_keys(keydir, s_demo_agencies[i].id);
    for (size_t i = 0; rc == GBX_OK && i < sizeof s_demo_operators / sizeof s_demo_operators[0];
         i++)
        rc = s_demo_keys(keydir, s_demo_operators[i].id);
    if (rc != GBX_OK)
        goto out;

    f = open_memstream(&text, &text_len);
    if (!f) {
        rc = GBX_E_NOMEM;
        goto out;
    }
    fprintf(f,
            "# gbxd demo configuration, written by gbxd on its first run.\n"
            "# Every setting and its default: docs/config.md. Paths are relative to this file.\n"
            "node:\n"
            "  id: %s\n"
            "  jurisdiction: HK\n"
            "  data_dir: data\n"
            "  keys: keys/%s.secret\n"
            "  policy: policy.yaml  # the sample policy for these agencies (docs/policy.md)\n"
            "listen:\n"
            "  adapter: tcp://127.0.0.1:7400\n"
            "  metrics: 127.0.0.1:9400  # /metrics, /healthz, /readyz (docs/metrics.md)\n"
            "limits:\n"
            "  max_payload_bytes: 16MiB\n"
            "registry:\n"
            "  nodes:\n"
            "    - {id: %s, jurisdiction: HK, pub: keys/%s.pub}\n"
            "  agencies:\n",
            s_demo_node, s_demo_node, s_demo_node, s_demo_node);
    for (size_t i = 0; i < sizeof s_demo_agencies / sizeof s_demo_agencies[0]; i++) {
        const s_demo_agency_t *a = &s_demo_agencies[i];
        fprintf(f,
                "    - id: %s\n      jurisdiction: %s\n      city: %s\n      node: %s\n"
                "      name: \"%s\"\n      pub: keys/%s.pub\n",
                a->id, a->jur, a->city, s_demo_node, a->name, a->id);
    }
    fputs("  operators:  # gbxctl -c THIS_FILE --as ID (keys/ID.secret)\n", f);
    for (size_t i = 0; i < sizeof s_demo_operators / sizeof s_demo_operators[0]; i++)
        fprintf(f, "    - {id: %s, role: %s, pub: keys/%s.pub}\n", s_demo_operators[i].id,
                s_demo_operators[i].role, s_demo_operators[i].id);
    fputs(s_demo_services, f); /* last: tests append services of their own */
    if (fclose(f) != 0) {
        f = NULL;
        rc = GBX_E_NOMEM;
        goto out;
    }
    f = NULL;
    rc = s_write_whole(dir, "policy.yaml", gbx_policy_sample, gbx_policy_sample_len);
    if (rc != GBX_OK)
        goto out;
    /* written whole, then renamed: DIR/gbxd.yaml exists only once complete */
    rc = s_write_whole(dir, "gbxd.yaml", text, text_len);
    if (rc != GBX_OK)
        goto out;
    if (path_out) {
        *path_out = path;
        path = NULL;
    }
out:
    if (f)
        fclose(f);
    free(text);
    free(keydir);
    free(path);
    return rc;
}

char *gbx_config_default_path(void)
{
    /* the packaged service's home (gbxd --home; StateDirectory in packaging/gbxd.service.in) */
    static const char system_home[] = "/var/lib/gbx";
    const char *home = getenv("GBX_HOME");
    struct stat st;
    char *p = NULL;
    /* a demo node started here wins; then an installed node's (its directory
       exists even where its files are not readable: the error names the file) */
    if (!home || !*home) {
        home = "./.gbx";
        if (stat("./.gbx/gbxd.yaml", &st) != 0 && stat(system_home, &st) == 0 &&
            S_ISDIR(st.st_mode))
            home = system_home;
    }
    if (asprintf(&p, "%s/gbxd.yaml", home) < 0)
        return NULL;
    return p;
}
