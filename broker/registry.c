/*  registry.c: owns the broker's table of nodes, agencies and services.
    Implements issue 3, deliverable 1 (registry); lookups are linear scans,
    fine for the hundreds of entries a GBA deployment has. */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/*  A growable array of pointers to separately allocated entries, so that
    the pointers lookups hand out never move. */
typedef struct {
    void **items;
    size_t count, cap;
} s_vec_t;

struct gbx_registry {
    s_vec_t nodes, agencies, services, operators;
};

static const char *const s_roles[] = {NULL, "viewer", "operator", "approver", "admin"};

static const char *const s_gd_cities[] = {"guangzhou", "shenzhen", "zhuhai",
                                          "foshan",    "huizhou",  "dongguan",
                                          "zhongshan", "jiangmen", "zhaoqing"};

static const char *const s_classes[] = {
    NULL, "PUBLIC", "INTERNAL", "PERSONAL", "SENSITIVE_PERSONAL", "IMPORTANT", "CORE"};

static gbx_err_t s_vec_push(s_vec_t *v, const void *item, size_t size)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **items = realloc(v->items, cap * sizeof *items);
        if (!items)
            return GBX_E_NOMEM;
        v->items = items;
        v->cap = cap;
    }
    void *copy = malloc(size);
    if (!copy)
        return GBX_E_NOMEM;
    memcpy(copy, item, size);
    v->items[v->count++] = copy;
    return GBX_OK;
}

static void s_vec_free(s_vec_t *v)
{
    for (size_t i = 0; i < v->count; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/*  Fills WHY (if any) and returns RC. */
static gbx_err_t s_why(gbx_registry_why_t *why, gbx_err_t rc, const char *field, const char *fmt,
                       ...)
{
    if (why) {
        why->field = field;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->text, sizeof why->text, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int s_bounded(const char *s, size_t max)
{
    return memchr(s, '\0', max + 1) != NULL;
}

gbx_err_t gbx_registry_new(gbx_registry_t **out)
{
    if (!out)
        return GBX_E_ARG;
    *out = calloc(1, sizeof **out);
    return *out ? GBX_OK : GBX_E_NOMEM;
}

void gbx_registry_destroy(gbx_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gbx_registry_t *self = *self_p;
    s_vec_free(&self->nodes);
    s_vec_free(&self->agencies);
    s_vec_free(&self->services);
    s_vec_free(&self->operators);
    free(self);
    *self_p = NULL;
}

/*  Checks ID, JUR and PUB shared by nodes and agencies. */
static gbx_err_t s_check_party(const gbx_registry_t *self, const char *what, const char *id,
                               gbx_jurisdiction_t jur, const gbx_pubid_t *pub,
                               gbx_registry_why_t *why)
{
    if (!s_bounded(id, GBX_ID_MAX) || !gbx_id_valid(id))
        return s_why(why, GBX_E_FIELD_INVALID, "id", "not a valid %s id", what);
    if (jur != GBX_JUR_HK && jur != GBX_JUR_GD)
        return s_why(why, GBX_E_FIELD_INVALID, "jurisdiction", "must be HK or GD");
    if (!s_bounded(pub->id, GBX_ID_MAX) || strcmp(pub->id, id) != 0)
        return s_why(why, GBX_E_FIELD_INVALID, "pub", "public keys belong to another id");
    if (gbx_registry_node(self, id) || gbx_registry_agency(self, id))
        return s_why(why, GBX_E_FIELD_INVALID, "id", "duplicate id %s", id);
    const gbx_agency_t *a = NULL;
    const gbx_node_t *n = NULL;
    if (gbx_registry_by_curve(self, pub->curve_pk, &a, &n))
        return s_why(why, GBX_E_FIELD_INVALID, "curve", "CURVE key already used by %s %s",
                     a ? "agency" : "node", a ? a->id : n->id);
    const gbx_operator_t *o = gbx_registry_operator_by_curve(self, pub->curve_pk);
    if (o)
        return s_why(why, GBX_E_FIELD_INVALID, "curve", "CURVE key already used by operator %s",
                     o->id);
    return GBX_OK;
}

gbx_err_t gbx_registry_add_node(gbx_registry_t *self, const gbx_node_t *node,
                                gbx_registry_why_t *why)
{
    if (!self || !node)
        return s_why(why, GBX_E_ARG, "id", "no registry or no node");
    gbx_err_t rc = s_check_party(self, "node", node->id, node->jurisdiction, &node->pub, why);
    if (rc != GBX_OK)
        return rc;
    rc = s_vec_push(&self->nodes, node, sizeof *node);
    return rc == GBX_OK ? rc : s_why(why, rc, "id", "out of memory");
}

gbx_err_t gbx_registry_add_agency(gbx_registry_t *self, const gbx_agency_t *agency,
                                  gbx_registry_why_t *why)
{
    if (!self || !agency)
        return s_why(why, GBX_E_ARG, "id", "no registry or no agency");
    gbx_err_t rc =
        s_check_party(self, "agency", agency->id, agency->jurisdiction, &agency->pub, why);
    if (rc != GBX_OK)
        return rc;
    if (!s_bounded(agency->city, GBX_CITY_MAX) ||
        !gbx_city_valid(agency->jurisdiction, agency->city))
        return s_why(why, GBX_E_FIELD_INVALID, "city",
                     agency->jurisdiction == GBX_JUR_HK
                         ? "must be hong-kong for an HK agency"
                         : "must be one of the nine GBA cities (guangzhou, shenzhen, zhuhai, "
                           "foshan, huizhou, dongguan, zhongshan, jiangmen, zhaoqing)");
    if (!s_bounded(agency->name, GBX_NAME_MAX))
        return s_why(why, GBX_E_FIELD_INVALID, "name", "longer than %d bytes", GBX_NAME_MAX);
    if (!s_bounded(agency->node, GBX_ID_MAX) || !gbx_registry_node(self, agency->node))
        return s_why(why, GBX_E_UNKNOWN_AGENCY, "node", "unknown node %.*s", GBX_ID_MAX,
                     agency->node);
    rc = s_vec_push(&self->agencies, agency, sizeof *agency);
    return rc == GBX_OK ? rc : s_why(why, rc, "id", "out of memory");
}

gbx_err_t gbx_registry_add_operator(gbx_registry_t *self, const gbx_operator_t *op,
                                    gbx_registry_why_t *why)
{
    if (!self || !op)
        return s_why(why, GBX_E_ARG, "id", "no registry or no operator");
    /* an operator stands on no side of the boundary: any valid one will do */
    gbx_err_t rc = s_check_party(self, "operator", op->id, GBX_JUR_HK, &op->pub, why);
    if (rc != GBX_OK)
        return rc;
    if (gbx_registry_operator(self, op->id))
        return s_why(why, GBX_E_FIELD_INVALID, "id", "duplicate id %s", op->id);
    if (!gbx_role_name(op->role))
        return s_why(why, GBX_E_FIELD_INVALID, "role",
                     "must be viewer, operator, approver or admin");
    rc = s_vec_push(&self->operators, op, sizeof *op);
    return rc == GBX_OK ? rc : s_why(why, rc, "id", "out of memory");
}

const gbx_operator_t *gbx_registry_operator(const gbx_registry_t *self, const char *id)
{
    for (size_t i = 0; self && id && i < self->operators.count; i++) {
        const gbx_operator_t *o = self->operators.items[i];
        if (strcmp(o->id, id) == 0)
            return o;
    }
    return NULL;
}

const gbx_operator_t *gbx_registry_operator_by_curve(const gbx_registry_t *self,
                                                     const uint8_t curve_pk[GBX_KEY_BYTES])
{
    for (size_t i = 0; self && curve_pk && i < self->operators.count; i++) {
        const gbx_operator_t *o = self->operators.items[i];
        if (sodium_memcmp(o->pub.curve_pk, curve_pk, GBX_KEY_BYTES) == 0)
            return o;
    }
    return NULL;
}

size_t gbx_registry_operator_count(const gbx_registry_t *self)
{
    return self ? self->operators.count : 0;
}

const gbx_operator_t *gbx_registry_operator_at(const gbx_registry_t *self, size_t index)
{
    return self && index < self->operators.count ? self->operators.items[index] : NULL;
}

const char *gbx_role_name(gbx_role_t role)
{
    return (int)role > 0 && (size_t)role < sizeof s_roles / sizeof s_roles[0] ? s_roles[role]
                                                                              : NULL;
}

gbx_role_t gbx_role_parse(const char *text)
{
    for (size_t i = 1; text && i < sizeof s_roles / sizeof s_roles[0]; i++)
        if (strcmp(text, s_roles[i]) == 0)
            return (gbx_role_t)i;
    return GBX_ROLE_NONE;
}

gbx_err_t gbx_registry_add_service(gbx_registry_t *self, const gbx_service_t *service,
                                   gbx_registry_why_t *why)
{
    if (!self || !service)
        return s_why(why, GBX_E_ARG, "code", "no registry or no service");
    if (!s_bounded(service->code, GBX_SERVICE_CODE_MAX) || !gbx_service_code_valid(service->code))
        return s_why(why, GBX_E_FIELD_INVALID, "code",
                     "not a valid service code ([A-Z0-9-], 1 to %d characters)",
                     GBX_SERVICE_CODE_MAX);
    if (service->version < 1)
        return s_why(why, GBX_E_FIELD_INVALID, "version", "must be 1 or more");
    if (!gbx_data_class_name(service->data_class))
        return s_why(why, GBX_E_FIELD_INVALID, "class", "not a data class");
    if (!s_bounded(service->description, GBX_DESCRIPTION_MAX))
        return s_why(why, GBX_E_FIELD_INVALID, "description", "longer than %d bytes",
                     GBX_DESCRIPTION_MAX);
    if (gbx_registry_service(self, service->code, service->version))
        return s_why(why, GBX_E_FIELD_INVALID, "code", "duplicate service %s version %u",
                     service->code, (unsigned)service->version);
    if (!s_bounded(service->provider, GBX_ID_MAX) || !gbx_registry_agency(self, service->provider))
        return s_why(why, GBX_E_UNKNOWN_AGENCY, "provider", "unknown agency %.*s", GBX_ID_MAX,
                     service->provider);
    gbx_err_t rc = s_vec_push(&self->services, service, sizeof *service);
    return rc == GBX_OK ? rc : s_why(why, rc, "code", "out of memory");
}

const gbx_node_t *gbx_registry_node(const gbx_registry_t *self, const char *id)
{
    if (!self || !id)
        return NULL;
    for (size_t i = 0; i < self->nodes.count; i++) {
        const gbx_node_t *n = self->nodes.items[i];
        if (strcmp(n->id, id) == 0)
            return n;
    }
    return NULL;
}

const gbx_agency_t *gbx_registry_agency(const gbx_registry_t *self, const char *id)
{
    if (!self || !id)
        return NULL;
    for (size_t i = 0; i < self->agencies.count; i++) {
        const gbx_agency_t *a = self->agencies.items[i];
        if (strcmp(a->id, id) == 0)
            return a;
    }
    return NULL;
}

const gbx_service_t *gbx_registry_service(const gbx_registry_t *self, const char *code,
                                          uint32_t version)
{
    if (!self || !code)
        return NULL;
    for (size_t i = 0; i < self->services.count; i++) {
        const gbx_service_t *s = self->services.items[i];
        if (s->version == version && strcmp(s->code, code) == 0)
            return s;
    }
    return NULL;
}

int gbx_registry_by_curve(const gbx_registry_t *self, const uint8_t curve_pk[GBX_KEY_BYTES],
                          const gbx_agency_t **agency_out, const gbx_node_t **node_out)
{
    const gbx_agency_t *agency = NULL;
    const gbx_node_t *node = NULL;
    /* Public keys: no secret to protect, but sodium_memcmp costs nothing here. */
    for (size_t i = 0; self && curve_pk && !agency && i < self->agencies.count; i++) {
        const gbx_agency_t *a = self->agencies.items[i];
        if (sodium_memcmp(a->pub.curve_pk, curve_pk, GBX_KEY_BYTES) == 0)
            agency = a;
    }
    for (size_t i = 0; self && curve_pk && !agency && !node && i < self->nodes.count; i++) {
        const gbx_node_t *n = self->nodes.items[i];
        if (sodium_memcmp(n->pub.curve_pk, curve_pk, GBX_KEY_BYTES) == 0)
            node = n;
    }
    if (agency_out)
        *agency_out = agency;
    if (node_out)
        *node_out = node;
    return agency || node;
}

size_t gbx_registry_node_count(const gbx_registry_t *self)
{
    return self ? self->nodes.count : 0;
}

size_t gbx_registry_agency_count(const gbx_registry_t *self)
{
    return self ? self->agencies.count : 0;
}

size_t gbx_registry_service_count(const gbx_registry_t *self)
{
    return self ? self->services.count : 0;
}

const gbx_node_t *gbx_registry_node_at(const gbx_registry_t *self, size_t index)
{
    return self && index < self->nodes.count ? self->nodes.items[index] : NULL;
}

const gbx_agency_t *gbx_registry_agency_at(const gbx_registry_t *self, size_t index)
{
    return self && index < self->agencies.count ? self->agencies.items[index] : NULL;
}

const gbx_service_t *gbx_registry_service_at(const gbx_registry_t *self, size_t index)
{
    return self && index < self->services.count ? self->services.items[index] : NULL;
}

const char *gbx_jurisdiction_name(gbx_jurisdiction_t j)
{
    return j == GBX_JUR_HK ? "HK" : j == GBX_JUR_GD ? "GD" : "?";
}

gbx_jurisdiction_t gbx_jurisdiction_parse(const char *text)
{
    if (text && strcmp(text, "HK") == 0)
        return GBX_JUR_HK;
    if (text && strcmp(text, "GD") == 0)
        return GBX_JUR_GD;
    return GBX_JUR_NONE;
}

int gbx_city_valid(gbx_jurisdiction_t j, const char *city)
{
    if (!city)
        return 0;
    if (j == GBX_JUR_HK)
        return strcmp(city, "hong-kong") == 0;
    if (j != GBX_JUR_GD)
        return 0;
    for (size_t i = 0; i < sizeof s_gd_cities / sizeof s_gd_cities[0]; i++)
        if (strcmp(city, s_gd_cities[i]) == 0)
            return 1;
    return 0;
}

const char *gbx_data_class_name(Gbx__V1__DataClass c)
{
    if ((int)c <= 0 || (size_t)c >= sizeof s_classes / sizeof s_classes[0])
        return NULL;
    return s_classes[c];
}

Gbx__V1__DataClass gbx_data_class_parse(const char *text)
{
    for (size_t i = 1; text && i < sizeof s_classes / sizeof s_classes[0]; i++)
        if (strcmp(text, s_classes[i]) == 0)
            return (Gbx__V1__DataClass)i;
    return GBX__V1__DATA_CLASS__DATA_CLASS_UNSPECIFIED;
}

int gbx_service_code_valid(const char *code)
{
    size_t n = code ? strlen(code) : 0;
    if (n < 1 || n > GBX_SERVICE_CODE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = code[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}
