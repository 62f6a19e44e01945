/*  tb_fixture.c: the broker tests' shared registry. */
#include "tb_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "trail.h"

gbx_pubid_t tb_pub(const char *id)
{
    gbx_identity_t *idn = tu_identity_fixed(id, NULL);
    gbx_pubid_t p;
    memset(&p, 0, sizeof p);
    if (idn)
        p = *gbx_identity_public(idn);
    gbx_identity_destroy(&idn);
    return p;
}

gbx_registry_t *tb_registry(void)
{
    gbx_registry_t *reg = NULL;
    if (gbx_registry_new(&reg) != GBX_OK)
        return NULL;
    gbx_node_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.id, sizeof n.id, TB_NODE);
    n.jurisdiction = GBX_JUR_HK;
    n.pub = tb_pub(TB_NODE);
    int ok = gbx_registry_add_node(reg, &n, NULL) == GBX_OK;
    const char *ids[] = {TB_TO, TB_FROM};
    const char *cities[] = {"hong-kong", "shenzhen"};
    const gbx_jurisdiction_t jur[] = {GBX_JUR_HK, GBX_JUR_GD};
    for (int i = 0; ok && i < 2; i++) {
        gbx_agency_t a;
        memset(&a, 0, sizeof a);
        snprintf(a.id, sizeof a.id, "%s", ids[i]);
        a.jurisdiction = jur[i];
        snprintf(a.city, sizeof a.city, "%s", cities[i]);
        snprintf(a.node, sizeof a.node, TB_NODE);
        a.pub = tb_pub(ids[i]);
        ok = gbx_registry_add_agency(reg, &a, NULL) == GBX_OK;
    }
    gbx_service_t svc;
    memset(&svc, 0, sizeof svc);
    snprintf(svc.code, sizeof svc.code, TB_SERVICE);
    svc.version = 1;
    svc.data_class = GBX__V1__DATA_CLASS__PERSONAL;
    snprintf(svc.provider, sizeof svc.provider, TB_TO);
    ok = ok && gbx_registry_add_service(reg, &svc, NULL) == GBX_OK;
    if (!ok)
        gbx_registry_destroy(&reg);
    return reg;
}

char **tb_audit_records(gbx_store_t *store, size_t *n)
{
    *n = 0;
    gbx_trail_iter_t *it = NULL;
    if (gbx_trail_iter_new(store, 0, &it) != GBX_OK) {
        fprintf(stderr, "tb_audit_records: cannot read the trail\n");
        abort();
    }
    char **recs = NULL;
    size_t cap = 0;
    const uint8_t *v;
    size_t len;
    while (gbx_trail_iter_next(it, &v, &len)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            recs = realloc(recs, cap * sizeof *recs);
        }
        char *r = malloc(len + 1);
        if (!recs || !r)
            abort();
        memcpy(r, v, len);
        r[len] = '\0';
        recs[(*n)++] = r;
    }
    if (gbx_trail_iter_error(it) != GBX_OK)
        abort();
    gbx_trail_iter_destroy(&it);
    return recs;
}

void tb_audit_free(char **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(recs[i]);
    free(recs);
}

size_t tb_audit_count(gbx_store_t *store)
{
    size_t n = 0;
    char **recs = tb_audit_records(store, &n);
    tb_audit_free(recs, n);
    return n;
}
