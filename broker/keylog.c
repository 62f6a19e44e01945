/*  keylog.c: owns the record of the registry's keys and the audit of
    their changes at each start (broker/keylog.h). */
#include "keylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

#define S_PREFIX "key/"

typedef struct {
    const char *kind; /* node, agency, operator */
    const gbx_pubid_t *pub;
} s_holder_t;

/*  The meta key of a holder into OUT; its length. */
static size_t s_key(const char *kind, const char *id, char out[96])
{
    return (size_t)snprintf(out, 96, S_PREFIX "%s/%s", kind, id);
}

/*  1 if the registry holds KIND/ID (a stored key's name). */
static int s_in_registry(const gbx_registry_t *reg, const char *name)
{
    char kind[16];
    const char *slash = strchr(name, '/');
    if (!slash || (size_t)(slash - name) >= sizeof kind)
        return 0;
    memcpy(kind, name, (size_t)(slash - name));
    kind[slash - name] = '\0';
    const char *id = slash + 1;
    if (strcmp(kind, "node") == 0)
        return gbx_registry_node(reg, id) != NULL;
    if (strcmp(kind, "agency") == 0)
        return gbx_registry_agency(reg, id) != NULL;
    if (strcmp(kind, "operator") == 0)
        return gbx_registry_operator(reg, id) != NULL;
    return 0;
}

/*  Audits one holder's key against the store and records its fingerprint. */
static gbx_err_t s_holder(gbx_store_t *store, gbx_batch_t *b, const s_holder_t *h, uint64_t at,
                          unsigned *changes)
{
    char key[96], fp[GBX_FINGERPRINT_LEN];
    size_t klen = s_key(h->kind, h->pub->id, key);
    gbx_pubid_fingerprint(h->pub, fp);
    uint8_t *old = NULL;
    size_t olen = 0;
    gbx_err_t rc = gbx_store_get(store, GBX_KS_META, key, klen, &old, &olen);
    if (rc != GBX_OK)
        return rc;
    int same = old && olen == strlen(fp) && memcmp(old, fp, olen) == 0;
    if (!same) {
        gbx_audit_t a;
        gbx_audit_begin(&a, old ? "KEY_CHANGED" : "KEY_ADDED", at);
        gbx_audit_str(&a, "kind", h->kind);
        gbx_audit_str(&a, "id", h->pub->id);
        gbx_audit_str(&a, "fingerprint", fp);
        if (old) {
            char prev[GBX_FINGERPRINT_LEN] = "";
            snprintf(prev, sizeof prev, "%.*s", (int)olen, (const char *)old);
            gbx_audit_str(&a, "previous", prev);
        }
        rc = gbx_audit_put(b, &a);
        if (rc == GBX_OK)
            rc = gbx_batch_put(b, GBX_KS_META, key, klen, fp, strlen(fp));
        (*changes)++;
    }
    free(old);
    return rc;
}

/*  Audits the keys recorded at the last start that the registry no longer holds. */
static gbx_err_t s_removed(gbx_store_t *store, gbx_batch_t *b, const gbx_registry_t *reg,
                           uint64_t at, unsigned *changes)
{
    gbx_store_iter_t *it = NULL;
    gbx_err_t rc = gbx_store_iter_new(store, GBX_KS_META, S_PREFIX, strlen(S_PREFIX), &it);
    for (; rc == GBX_OK && gbx_store_iter_valid(it); gbx_store_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        const uint8_t *v = gbx_store_iter_value(it, &vlen);
        char name[96], prev[GBX_FINGERPRINT_LEN];
        if (klen >= sizeof name + strlen(S_PREFIX))
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(klen - strlen(S_PREFIX)),
                 (const char *)k + strlen(S_PREFIX));
        if (s_in_registry(reg, name))
            continue;
        snprintf(prev, sizeof prev, "%.*s", (int)vlen, (const char *)v);
        char *slash = strchr(name, '/');
        gbx_audit_t a;
        gbx_audit_begin(&a, "KEY_REMOVED", at);
        if (slash)
            *slash = '\0';
        gbx_audit_str(&a, "kind", name);
        gbx_audit_str(&a, "id", slash ? slash + 1 : "-");
        gbx_audit_str(&a, "previous", prev);
        rc = gbx_audit_put(b, &a);
        if (rc == GBX_OK)
            rc = gbx_batch_delete(b, GBX_KS_META, k, klen);
        (*changes)++;
    }
    if (rc == GBX_OK)
        rc = gbx_store_iter_error(it);
    gbx_store_iter_destroy(&it);
    return rc;
}

gbx_err_t gbx_keylog_start(gbx_store_t *store, const gbx_registry_t *reg,
                           const gbx_keylog_start_t *start, unsigned *changes)
{
    if (!store || !reg || !start || !start->node_id || !changes)
        return GBX_E_ARG;
    *changes = 0;
    gbx_batch_t *b = NULL;
    gbx_err_t rc = gbx_batch_new(store, &b);
    uint64_t at = start->at_ms;
    size_t nkeys = 0;
    for (size_t i = 0; rc == GBX_OK && i < gbx_registry_node_count(reg); i++, nkeys++)
        rc = s_holder(store, b, &(s_holder_t){"node", &gbx_registry_node_at(reg, i)->pub}, at,
                      changes);
    for (size_t i = 0; rc == GBX_OK && i < gbx_registry_agency_count(reg); i++, nkeys++)
        rc = s_holder(store, b, &(s_holder_t){"agency", &gbx_registry_agency_at(reg, i)->pub}, at,
                      changes);
    for (size_t i = 0; rc == GBX_OK && i < gbx_registry_operator_count(reg); i++, nkeys++)
        rc = s_holder(store, b, &(s_holder_t){"operator", &gbx_registry_operator_at(reg, i)->pub},
                      at, changes);
    if (rc == GBX_OK)
        rc = s_removed(store, b, reg, at, changes);
    if (rc == GBX_OK) {
        gbx_audit_t a;
        gbx_audit_begin(&a, "NODE_STARTED", at);
        gbx_audit_str(&a, "node", start->node_id);
        gbx_audit_str(&a, "version", start->version ? start->version : "-");
        gbx_audit_str(&a, "config", start->config ? start->config : "-");
        if (start->policy) {
            gbx_audit_str(&a, "policy_version", gbx_policy_version(start->policy));
            gbx_audit_hex(&a, "policy_hash", gbx_policy_hash(start->policy), GBX_HASH_BYTES);
        }
        gbx_audit_u64(&a, "keys", nkeys);
        gbx_audit_u64(&a, "key_changes", *changes);
        rc = gbx_audit_put(b, &a);
    }
    if (rc == GBX_OK)
        rc = gbx_store_commit(store, &b);
    gbx_batch_destroy(&b);
    return rc;
}
