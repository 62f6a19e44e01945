/*  tp_cases: the decision cases of the policy engine's table, shared by
    test_policy (decided by the engine directly, at each case's "now") and
    test_policy_live (submitted through a running gbxd). The list of the cases
    and what each shows is at the top of test_policy.c.

    The rows speak of the sample policy (broker/default-policy.yaml) and the
    registry of the demo config (gbx_config_write_default). A case builds one
    header (tp_header: fields the case does not name are version 1,
    UNCLASSIFIED, created 1 s before "now", TTL 1 h, payload 1024 bytes),
    decided at "now" = TP_NOW (2026-11-22T10:00:00+08:00) unless the case sets
    `now`; its preset counters are what tp_counter reads (0 for any other
    key). */
#ifndef GBX_TP_CASES_H
#define GBX_TP_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "policy.h"

/* 2026-11-22T10:00:00+08:00 and other instants, Unix ms. */
#define TP_NOW        1795312800000ull
#define TP_2027_FEB   1801447200000ull /* 2027-02-01T10:00:00+08:00 */
#define TP_2027_NY    1798734600000ull /* 2027-01-01T00:30:00+08:00 = 2026-12-31T16:30Z */
#define TP_2025_LAST  1767196740000ull /* 2025-12-31T23:59:00+08:00 */
#define TP_2026_FIRST 1767196860000ull /* 2026-01-01T00:01:00+08:00 = 2025-12-31T16:01Z */
#define TP_2028_MARCH 1835661600000ull /* 2028-03-02T10:00:00+08:00 */
#define TP_HOUR       3600000ull
#define TP_DAY        (24 * TP_HOUR)
#define TP_MIB        (1024ull * 1024)

#define TP_COUNTERS_MAX 2 /* preset counters of one case */

typedef struct {
    const char *key;
    uint64_t value;
} tp_counter_t;

typedef struct {
    const char *name;
    /* header */
    const char *from, *to, *service;
    uint32_t version; /* 0: 1 */
    Gbx__V1__MessageKind kind;
    Gbx__V1__DataClass cls;
    Gbx__V1__HkMarking marking; /* 0: UNCLASSIFIED */
    const char *purpose;
    Gbx__V1__LegalRoute route;
    const char *route_ref;
    Gbx__V1__ConsentType consent;
    const char *consent_ref, *impact, *end_user, *agreement, *release;
    uint32_t subjects;
    uint64_t payload; /* 0: 1024 */
    uint64_t ttl;     /* 0: 1 h */
    uint64_t now;     /* 0: TP_NOW */
    uint64_t created; /* 0: now - 1 s */
    /* preset counters */
    tp_counter_t counters[TP_COUNTERS_MAX];
    /* expected */
    gbx_outcome_t outcome;
    gbx_err_t reason;
    const char *rule;      /* exact, or a prefix when it ends with ':' */
    uint32_t rule_version; /* 0: 1 for a rule of the file */
    const char *count_key; /* a counter increment the decision must list */
    uint64_t count_add;
} tp_case_t;

/*  The table, and the number of its rows. */
extern const tp_case_t tp_cases[];
extern const size_t tp_ncases;

/*  The case called NAME; NULL when there is none. */
const tp_case_t *tp_case(const char *name);

/*  Fills H (gbx_header_init first) from case C decided at NOW (Unix ms):
    created = C->created or NOW - 1 s, expires = created + C->ttl (1 h),
    payload_length = C->payload (1024). The strings are borrowed from C (""
    for a field the case does not name); message_id, correlation_id,
    signer_key_id and payload_hash stay empty. */
void tp_header(const tp_case_t *c, uint64_t now, gbx_header_t *h);

/*  A gbx_policy_counter_fn: ARG is a case (const tp_case_t *); its preset
    counters, 0 for any other key. */
gbx_err_t tp_counter(void *arg, const char *key, uint64_t *value);

/*  1 when case C presets a counter. */
int tp_presets_counters(const tp_case_t *c);

#endif
