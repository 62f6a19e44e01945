/*  test_registry: gbx_registry adds, validation and lookups.
    Every case starts from the same registry (nodes hk-1/HK and gd-1/GD,
    agency hk.cr on hk-1, service HK-CR-COEXTRACT v1 by hk.cr) and adds one
    entry; keys come from tu_identity_fixed. */
#include "tu_cmocka.h"

#include <stdio.h>
#include <string.h>

#include "registry.h"

#define PERSONAL  GBX__V1__DATA_CLASS__PERSONAL
#define NO_CLASS  GBX__V1__DATA_CLASS__DATA_CLASS_UNSPECIFIED
#define SENSITIVE GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL

typedef struct {
    const char *name;
    char kind; /* 'n'ode, 'a'gency, 's'ervice */
    /* nodes and agencies */
    const char *id;
    gbx_jurisdiction_t jur;
    const char *city, *node;
    const char *keys_of; /* take the keys of this id (NULL: the entry's own) */
    /* services */
    const char *code;
    uint32_t version;
    Gbx__V1__DataClass cls;
    const char *provider;
    /* outcome */
    gbx_err_t rc;
    const char *field; /* the field WHY names, when rc != GBX_OK */
} s_case_t;

#define NODE(n, i, j, k, rc, f)                                                                    \
    {                                                                                              \
        n, 'n', i, j, NULL, NULL, k, NULL, 0, NO_CLASS, NULL, rc, f                                \
    }
#define AGENCY(n, i, j, c, nd, k, rc, f)                                                           \
    {                                                                                              \
        n, 'a', i, j, c, nd, k, NULL, 0, NO_CLASS, NULL, rc, f                                     \
    }
#define SERVICE(n, c, v, cl, p, rc, f)                                                             \
    {                                                                                              \
        n, 's', NULL, 0, NULL, NULL, NULL, c, v, cl, p, rc, f                                      \
    }

static const s_case_t s_cases[] = {
    NODE("node ok", "gd-2", GBX_JUR_GD, NULL, GBX_OK, NULL),
    NODE("node duplicate id", "gd-1", GBX_JUR_GD, NULL, GBX_E_FIELD_INVALID, "id"),
    NODE("node id taken by an agency", "hk.cr", GBX_JUR_HK, NULL, GBX_E_FIELD_INVALID, "id"),
    NODE("node bad id", "GD 2", GBX_JUR_GD, NULL, GBX_E_FIELD_INVALID, "id"),
    NODE("node no jurisdiction", "mo-1", GBX_JUR_NONE, NULL, GBX_E_FIELD_INVALID, "jurisdiction"),
    NODE("node with another id's keys", "gd-2", GBX_JUR_GD, "hk.cr", GBX_E_FIELD_INVALID, "pub"),
    AGENCY("hk agency ok", "hk.ird", GBX_JUR_HK, "hong-kong", "hk-1", NULL, GBX_OK, NULL),
    AGENCY("gd agency ok", "gd.tax", GBX_JUR_GD, "guangzhou", "gd-1", NULL, GBX_OK, NULL),
    AGENCY("each gba city: zhaoqing", "gd.zq", GBX_JUR_GD, "zhaoqing", "gd-1", NULL, GBX_OK, NULL),
    AGENCY("each gba city: jiangmen", "gd.jm", GBX_JUR_GD, "jiangmen", "gd-1", NULL, GBX_OK, NULL),
    AGENCY("gd agency served by an hk node", "gd.hkush", GBX_JUR_GD, "shenzhen", "hk-1", NULL,
           GBX_OK, NULL),
    AGENCY("duplicate agency", "hk.cr", GBX_JUR_HK, "hong-kong", "hk-1", NULL, GBX_E_FIELD_INVALID,
           "id"),
    AGENCY("agency id taken by a node", "gd-1", GBX_JUR_GD, "shenzhen", "gd-1", NULL,
           GBX_E_FIELD_INVALID, "id"),
    AGENCY("bad agency id", "hk_cr", GBX_JUR_HK, "hong-kong", "hk-1", NULL, GBX_E_FIELD_INVALID,
           "id"),
    AGENCY("hk agency in shenzhen", "hk.ird", GBX_JUR_HK, "shenzhen", "hk-1", NULL,
           GBX_E_FIELD_INVALID, "city"),
    AGENCY("gd agency in hong kong", "gd.tax", GBX_JUR_GD, "hong-kong", "gd-1", NULL,
           GBX_E_FIELD_INVALID, "city"),
    AGENCY("gd city outside the gba", "gd.xm", GBX_JUR_GD, "xiamen", "gd-1", NULL,
           GBX_E_FIELD_INVALID, "city"),
    AGENCY("city is case sensitive", "gd.sz", GBX_JUR_GD, "Shenzhen", "gd-1", NULL,
           GBX_E_FIELD_INVALID, "city"),
    AGENCY("unknown node", "gd.tax", GBX_JUR_GD, "guangzhou", "gd-9", NULL, GBX_E_UNKNOWN_AGENCY,
           "node"),
    AGENCY("agency as node", "gd.tax", GBX_JUR_GD, "guangzhou", "hk.cr", NULL, GBX_E_UNKNOWN_AGENCY,
           "node"),
    SERVICE("service ok", "GD-SI-PAYCERT", 1, SENSITIVE, "hk.cr", GBX_OK, NULL),
    SERVICE("same code, next version", "HK-CR-COEXTRACT", 2, PERSONAL, "hk.cr", GBX_OK, NULL),
    SERVICE("duplicate service", "HK-CR-COEXTRACT", 1, PERSONAL, "hk.cr", GBX_E_FIELD_INVALID,
            "code"),
    SERVICE("lower-case code", "hk-cr-coextract", 1, PERSONAL, "hk.cr", GBX_E_FIELD_INVALID,
            "code"),
    SERVICE("empty code", "", 1, PERSONAL, "hk.cr", GBX_E_FIELD_INVALID, "code"),
    SERVICE("version 0", "HK-TD-VEHLIC", 0, PERSONAL, "hk.cr", GBX_E_FIELD_INVALID, "version"),
    SERVICE("no data class", "HK-TD-VEHLIC", 1, NO_CLASS, "hk.cr", GBX_E_FIELD_INVALID, "class"),
    SERVICE("class out of range", "HK-TD-VEHLIC", 1, (Gbx__V1__DataClass)7, "hk.cr",
            GBX_E_FIELD_INVALID, "class"),
    SERVICE("unknown provider", "HK-TD-VEHLIC", 1, PERSONAL, "hk.td", GBX_E_UNKNOWN_AGENCY,
            "provider"),
    SERVICE("node as provider", "HK-TD-VEHLIC", 1, PERSONAL, "hk-1", GBX_E_UNKNOWN_AGENCY,
            "provider"),
};

static gbx_pubid_t s_pub(const char *id)
{
    gbx_identity_t *idn = tu_identity_fixed(id, NULL);
    gbx_pubid_t p = *gbx_identity_public(idn);
    gbx_identity_destroy(&idn);
    return p;
}

static gbx_node_t s_node(const char *id, gbx_jurisdiction_t jur)
{
    gbx_node_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.id, sizeof n.id, "%s", id);
    n.jurisdiction = jur;
    n.pub = s_pub(gbx_id_valid(id) ? id : "x");
    snprintf(n.pub.id, sizeof n.pub.id, "%s", id);
    return n;
}

static gbx_agency_t s_agency(const char *id, gbx_jurisdiction_t jur, const char *city,
                             const char *node)
{
    gbx_agency_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "%s", id);
    a.jurisdiction = jur;
    snprintf(a.city, sizeof a.city, "%s", city);
    snprintf(a.node, sizeof a.node, "%s", node);
    a.pub = s_pub(gbx_id_valid(id) ? id : "x");
    snprintf(a.pub.id, sizeof a.pub.id, "%s", id);
    return a;
}

static gbx_service_t s_service(const char *code, uint32_t version, Gbx__V1__DataClass cls,
                               const char *provider)
{
    gbx_service_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.code, sizeof s.code, "%s", code);
    s.version = version;
    s.data_class = cls;
    snprintf(s.provider, sizeof s.provider, "%s", provider);
    return s;
}

static gbx_registry_t *s_base(void)
{
    gbx_registry_t *r = NULL;
    assert_rc(gbx_registry_new(&r), GBX_OK);
    gbx_node_t hk1 = s_node("hk-1", GBX_JUR_HK), gd1 = s_node("gd-1", GBX_JUR_GD);
    gbx_agency_t cr = s_agency("hk.cr", GBX_JUR_HK, "hong-kong", "hk-1");
    gbx_service_t sv = s_service("HK-CR-COEXTRACT", 1, PERSONAL, "hk.cr");
    assert_rc(gbx_registry_add_node(r, &hk1, NULL), GBX_OK);
    assert_rc(gbx_registry_add_node(r, &gd1, NULL), GBX_OK);
    assert_rc(gbx_registry_add_agency(r, &cr, NULL), GBX_OK);
    assert_rc(gbx_registry_add_service(r, &sv, NULL), GBX_OK);
    return r;
}

static void test_add_cases(void **state)
{
    (void)state;
    int fails = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        gbx_registry_t *r = s_base();
        gbx_registry_why_t why = {0};
        gbx_err_t rc = GBX_OK;
        if (c->kind == 'n') {
            gbx_node_t n = s_node(c->id, c->jur);
            if (c->keys_of)
                n.pub = s_pub(c->keys_of); /* pub.id differs too */
            rc = gbx_registry_add_node(r, &n, &why);
            if (rc == GBX_OK && !gbx_registry_node(r, c->id))
                rc = GBX_E_INTERNAL_ERROR;
        } else if (c->kind == 'a') {
            gbx_agency_t a = s_agency(c->id, c->jur, c->city, c->node);
            rc = gbx_registry_add_agency(r, &a, &why);
            if (rc == GBX_OK && gbx_registry_agency(r, c->id) == NULL)
                rc = GBX_E_INTERNAL_ERROR;
        } else {
            gbx_service_t s = s_service(c->code, c->version, c->cls, c->provider);
            rc = gbx_registry_add_service(r, &s, &why);
            if (rc == GBX_OK && !gbx_registry_service(r, c->code, c->version))
                rc = GBX_E_INTERNAL_ERROR;
        }
        check_case_rc(fails, c->name, rc, c->rc);
        if (rc != GBX_OK && c->field &&
            (!why.field || strcmp(why.field, c->field) != 0 || !why.text[0])) {
            print_error("case \"%s\": field %s (%s), want %s\n", c->name,
                        why.field ? why.field : "(none)", why.text, c->field);
            fails++;
        }
        /* A failed add leaves the registry as it was. */
        if (rc != GBX_OK && (gbx_registry_node_count(r) != 2 || gbx_registry_agency_count(r) != 1 ||
                             gbx_registry_service_count(r) != 1)) {
            print_error("case \"%s\": failed add changed the registry\n", c->name);
            fails++;
        }
        gbx_registry_destroy(&r);
    }
    assert_int_equal(fails, 0);
}

static void test_duplicate_curve_key(void **state)
{
    (void)state;
    gbx_registry_t *r = s_base();
    gbx_registry_why_t why = {0};
    /* An agency reusing a node's CURVE key, and one reusing an agency's. */
    gbx_agency_t a = s_agency("hk.ird", GBX_JUR_HK, "hong-kong", "hk-1");
    memcpy(a.pub.curve_pk, gbx_registry_node(r, "gd-1")->pub.curve_pk, GBX_KEY_BYTES);
    assert_rc(gbx_registry_add_agency(r, &a, &why), GBX_E_FIELD_INVALID);
    assert_string_equal(why.field, "curve");
    assert_non_null(strstr(why.text, "node gd-1"));
    memcpy(a.pub.curve_pk, gbx_registry_agency(r, "hk.cr")->pub.curve_pk, GBX_KEY_BYTES);
    assert_rc(gbx_registry_add_agency(r, &a, &why), GBX_E_FIELD_INVALID);
    assert_non_null(strstr(why.text, "agency hk.cr"));
    gbx_node_t n = s_node("gd-2", GBX_JUR_GD);
    memcpy(n.pub.curve_pk, a.pub.curve_pk, GBX_KEY_BYTES);
    assert_rc(gbx_registry_add_node(r, &n, &why), GBX_E_FIELD_INVALID);
    assert_string_equal(why.field, "curve");
    /* Same sign key but a fresh CURVE key is the registry's business only
       for CURVE: it is the key the ZAP handler maps. */
    a = s_agency("hk.ird", GBX_JUR_HK, "hong-kong", "hk-1");
    assert_rc(gbx_registry_add_agency(r, &a, NULL), GBX_OK);
    gbx_registry_destroy(&r);
}

static void test_lookups(void **state)
{
    (void)state;
    gbx_registry_t *r = s_base();
    const gbx_agency_t *cr = gbx_registry_agency(r, "hk.cr");
    assert_non_null(cr);
    assert_string_equal(cr->node, "hk-1");
    assert_null(gbx_registry_agency(r, "hk.ird"));
    assert_null(gbx_registry_agency(r, "hk-1")); /* a node, not an agency */
    assert_null(gbx_registry_node(r, "hk.cr"));
    assert_int_equal(gbx_registry_node(r, "gd-1")->jurisdiction, GBX_JUR_GD);
    assert_non_null(gbx_registry_service(r, "HK-CR-COEXTRACT", 1));
    assert_null(gbx_registry_service(r, "HK-CR-COEXTRACT", 2));
    assert_null(gbx_registry_service(r, "HK-CR", 1));

    const gbx_agency_t *a = NULL;
    const gbx_node_t *n = NULL;
    assert_true(gbx_registry_by_curve(r, cr->pub.curve_pk, &a, &n));
    assert_ptr_equal(a, cr);
    assert_null(n);
    assert_true(gbx_registry_by_curve(r, gbx_registry_node(r, "hk-1")->pub.curve_pk, &a, &n));
    assert_null(a);
    assert_string_equal(n->id, "hk-1");
    assert_true(gbx_registry_by_curve(r, cr->pub.curve_pk, NULL, NULL));
    /* The sign key is not a CURVE key. */
    assert_false(gbx_registry_by_curve(r, cr->pub.sign_pk, &a, &n));
    assert_null(a);
    assert_null(n);

    /* Pointers stay put while more entries are added. */
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "gd.a%d", i);
        gbx_agency_t more = s_agency(id, GBX_JUR_GD, "foshan", "gd-1");
        assert_rc(gbx_registry_add_agency(r, &more, NULL), GBX_OK);
    }
    assert_ptr_equal(gbx_registry_agency(r, "hk.cr"), cr);
    assert_int_equal(gbx_registry_agency_count(r), 201);
    assert_ptr_equal(gbx_registry_agency_at(r, 0), cr);
    assert_string_equal(gbx_registry_agency_at(r, 200)->id, "gd.a199");
    assert_null(gbx_registry_agency_at(r, 201));
    assert_string_equal(gbx_registry_node_at(r, 1)->id, "gd-1");
    assert_null(gbx_registry_node_at(r, 2));
    assert_string_equal(gbx_registry_service_at(r, 0)->code, "HK-CR-COEXTRACT");
    assert_null(gbx_registry_service_at(r, 1));
    assert_true(gbx_registry_by_curve(r, gbx_registry_agency(r, "gd.a150")->pub.curve_pk, &a, &n));
    assert_string_equal(a->id, "gd.a150");

    gbx_registry_destroy(&r);
    assert_null(r);
    gbx_registry_destroy(&r); /* NULL-safe */
    gbx_registry_destroy(NULL);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const gba[] = {"guangzhou", "shenzhen",  "zhuhai",   "foshan",  "huizhou",
                                      "dongguan",  "zhongshan", "jiangmen", "zhaoqing"};
    for (size_t i = 0; i < sizeof gba / sizeof gba[0]; i++) {
        assert_true(gbx_city_valid(GBX_JUR_GD, gba[i]));
        assert_false(gbx_city_valid(GBX_JUR_HK, gba[i]));
    }
    assert_true(gbx_city_valid(GBX_JUR_HK, "hong-kong"));
    assert_false(gbx_city_valid(GBX_JUR_GD, "hong-kong"));
    assert_false(gbx_city_valid(GBX_JUR_GD, "shantou")); /* Guangdong, not GBA */
    assert_false(gbx_city_valid(GBX_JUR_NONE, "shenzhen"));
    assert_false(gbx_city_valid(GBX_JUR_GD, NULL));

    assert_int_equal(gbx_jurisdiction_parse("HK"), GBX_JUR_HK);
    assert_int_equal(gbx_jurisdiction_parse("GD"), GBX_JUR_GD);
    assert_int_equal(gbx_jurisdiction_parse("hk"), GBX_JUR_NONE);
    assert_int_equal(gbx_jurisdiction_parse("MO"), GBX_JUR_NONE);
    assert_int_equal(gbx_jurisdiction_parse(NULL), GBX_JUR_NONE);
    assert_string_equal(gbx_jurisdiction_name(GBX_JUR_GD), "GD");
    assert_string_equal(gbx_jurisdiction_name(GBX_JUR_NONE), "?");

    for (int c = 1; c <= 6; c++)
        assert_int_equal(gbx_data_class_parse(gbx_data_class_name((Gbx__V1__DataClass)c)), c);
    assert_string_equal(gbx_data_class_name(GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL),
                        "SENSITIVE_PERSONAL");
    assert_null(gbx_data_class_name(NO_CLASS));
    assert_int_equal(gbx_data_class_parse("SECRET"), NO_CLASS);
    assert_int_equal(gbx_data_class_parse("personal"), NO_CLASS);

    assert_true(gbx_service_code_valid("XB-STATS-MONTHLY"));
    assert_false(gbx_service_code_valid("XB_STATS"));
    char longcode[GBX_SERVICE_CODE_MAX + 2];
    memset(longcode, 'A', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    assert_false(gbx_service_code_valid(longcode));
    longcode[GBX_SERVICE_CODE_MAX] = '\0';
    assert_true(gbx_service_code_valid(longcode));

    assert_rc(gbx_registry_add_node(NULL, NULL, NULL), GBX_E_ARG);
    assert_rc(gbx_registry_new(NULL), GBX_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_cases),
        cmocka_unit_test(test_duplicate_curve_key),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
