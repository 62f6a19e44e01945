/*  gbx_registry: the nodes, agencies and services a broker knows
    (issue 3, deliverable 1; the ZAP handler asks it who a CURVE key is).

    A registry is filled once (by gbx_config_load, or by hand in tests) and
    then only read: lookups are safe from many threads once filling is done.
    Entries are copied in; the pointers lookups return are borrowed and stay
    valid until the registry is destroyed (adding entries does not move them).

    Every add validates the entry against what the registry already holds:
      nodes     valid id, unique id, jurisdiction HK or GD, CURVE key unique
                among all nodes and agencies
      agencies  as nodes, plus: city "hong-kong" for HK, one of the nine GBA
                cities for GD (gbx_city_valid); the serving node already added
      operators valid id, unique among operators, nodes and agencies; a
                role (gbx_role_t); CURVE key unique among all entries
      services  code [A-Z0-9-], 1..63 chars; version >= 1; data class
                PUBLIC..CORE; (code, version) unique; provider agency already
                added
    Errors: GBX_E_ARG (NULL arguments), GBX_E_FIELD_INVALID (a bad or
    duplicate value), GBX_E_UNKNOWN_AGENCY (an unknown node or provider),
    GBX_E_NOMEM. On error WHY (if not NULL) names the entry field at fault
    and says what is wrong in one line. */
#ifndef GBX_REGISTRY_H
#define GBX_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "gbx/identity.h"
#include "gbx/v1/envelope.pb-c.h"

#define GBX_CITY_MAX         15  /* "hong-kong", "guangzhou", ... */
#define GBX_NAME_MAX         127 /* agency display name, bytes */
#define GBX_SERVICE_CODE_MAX 63  /* "HK-CR-COEXTRACT" */
#define GBX_DESCRIPTION_MAX  255 /* service description, bytes */

typedef enum {
    GBX_JUR_NONE = 0,
    GBX_JUR_HK = 1, /* Hong Kong SAR */
    GBX_JUR_GD = 2, /* Guangdong: the nine GBA cities */
} gbx_jurisdiction_t;

typedef struct {
    char id[GBX_ID_MAX + 1];
    gbx_jurisdiction_t jurisdiction;
    gbx_pubid_t pub; /* pub.id must equal id */
} gbx_node_t;

typedef struct {
    char id[GBX_ID_MAX + 1];
    gbx_jurisdiction_t jurisdiction;
    char city[GBX_CITY_MAX + 1];
    char node[GBX_ID_MAX + 1];   /* the node that serves this agency */
    char name[GBX_NAME_MAX + 1]; /* display name; may be "" */
    gbx_pubid_t pub;             /* pub.id must equal id */
} gbx_agency_t;

/*  What an operator may do at the control socket (broker/control.h says
    which command needs which role): */
typedef enum {
    GBX_ROLE_NONE = 0,
    GBX_ROLE_VIEWER,   /* read: status, policy, holds, queues */
    GBX_ROLE_OPERATOR, /* + run the node (reload, drain, dead letters) */
    GBX_ROLE_APPROVER, /* + decide held messages */
    GBX_ROLE_ADMIN,    /* everything */
} gbx_role_t;

/*  A person (or script) at the control socket, known by its CURVE key. */
typedef struct {
    char id[GBX_ID_MAX + 1];
    gbx_role_t role;
    gbx_pubid_t pub; /* pub.id must equal id; only curve_pk is used */
} gbx_operator_t;

typedef struct {
    char code[GBX_SERVICE_CODE_MAX + 1];
    uint32_t version;
    Gbx__V1__DataClass data_class;
    char provider[GBX_ID_MAX + 1]; /* agency id */
    char description[GBX_DESCRIPTION_MAX + 1];
} gbx_service_t;

/*  Why an add failed: FIELD is a static name of the entry's field ("id",
    "jurisdiction", "city", "node", "curve", "code", "version", "class",
    "provider"), TEXT one line of English. */
typedef struct {
    const char *field;
    char text[192];
} gbx_registry_why_t;

typedef struct gbx_registry gbx_registry_t;

/*  An empty registry. On GBX_OK the caller owns *out. */
gbx_err_t gbx_registry_new(gbx_registry_t **out);
/*  NULL-safe; sets *self_p to NULL. */
void gbx_registry_destroy(gbx_registry_t **self_p);

/*  Validate and copy one entry in (see the top of this file). */
gbx_err_t gbx_registry_add_node(gbx_registry_t *self, const gbx_node_t *node,
                                gbx_registry_why_t *why);
gbx_err_t gbx_registry_add_agency(gbx_registry_t *self, const gbx_agency_t *agency,
                                  gbx_registry_why_t *why);
gbx_err_t gbx_registry_add_service(gbx_registry_t *self, const gbx_service_t *service,
                                   gbx_registry_why_t *why);

/*  Lookups: borrowed pointers, NULL when absent. */
const gbx_node_t *gbx_registry_node(const gbx_registry_t *self, const char *id);
const gbx_agency_t *gbx_registry_agency(const gbx_registry_t *self, const char *id);
const gbx_service_t *gbx_registry_service(const gbx_registry_t *self, const char *code,
                                          uint32_t version);

/*  Who holds the CURVE public key CURVE_PK (for the ZAP handler): sets
    exactly one of *agency_out / *node_out (either may be NULL if the caller
    does not care) and returns 1, or sets both to NULL and returns 0. */
int gbx_registry_by_curve(const gbx_registry_t *self, const uint8_t curve_pk[GBX_KEY_BYTES],
                          const gbx_agency_t **agency_out, const gbx_node_t **node_out);

gbx_err_t gbx_registry_add_operator(gbx_registry_t *self, const gbx_operator_t *op,
                                    gbx_registry_why_t *why);
const gbx_operator_t *gbx_registry_operator(const gbx_registry_t *self, const char *id);
/*  The operator whose CURVE key is CURVE_PK, or NULL. */
const gbx_operator_t *gbx_registry_operator_by_curve(const gbx_registry_t *self,
                                                     const uint8_t curve_pk[GBX_KEY_BYTES]);
size_t gbx_registry_operator_count(const gbx_registry_t *self);
const gbx_operator_t *gbx_registry_operator_at(const gbx_registry_t *self, size_t index);
/*  "viewer", "operator", "approver", "admin"; NULL for anything else. */
const char *gbx_role_name(gbx_role_t role);
/*  The name to the role; GBX_ROLE_NONE when TEXT is none. */
gbx_role_t gbx_role_parse(const char *text);

/*  Iteration in the order of adding: index < count, else NULL. */
size_t gbx_registry_node_count(const gbx_registry_t *self);
size_t gbx_registry_agency_count(const gbx_registry_t *self);
size_t gbx_registry_service_count(const gbx_registry_t *self);
const gbx_node_t *gbx_registry_node_at(const gbx_registry_t *self, size_t index);
const gbx_agency_t *gbx_registry_agency_at(const gbx_registry_t *self, size_t index);
const gbx_service_t *gbx_registry_service_at(const gbx_registry_t *self, size_t index);

/*  "HK" / "GD"; "?" for anything else. */
const char *gbx_jurisdiction_name(gbx_jurisdiction_t j);
/*  "HK" or "GD" (exact case) to the enum; GBX_JUR_NONE otherwise. */
gbx_jurisdiction_t gbx_jurisdiction_parse(const char *text);
/*  1 if CITY is allowed in J: "hong-kong" for HK; guangzhou, shenzhen,
    zhuhai, foshan, huizhou, dongguan, zhongshan, jiangmen, zhaoqing for GD. */
int gbx_city_valid(gbx_jurisdiction_t j, const char *city);
/*  "PERSONAL" etc. (the .proto names); NULL for UNSPECIFIED or unknown. */
const char *gbx_data_class_name(Gbx__V1__DataClass c);
/*  The .proto name to the enum; GBX__V1__DATA_CLASS__DATA_CLASS_UNSPECIFIED
    when TEXT is no class. */
Gbx__V1__DataClass gbx_data_class_parse(const char *text);
/*  1 if CODE is a valid service code. */
int gbx_service_code_valid(const char *code);

#endif
