/*  tb_fixture: what the broker module tests share: the fixed registry most
    of them run against. */
#ifndef GBX_TB_FIXTURE_H
#define GBX_TB_FIXTURE_H

#include <stddef.h>

#include "gbx/identity.h"
#include "registry.h"
#include "store.h"

#define TB_NODE    "hk-1"            /* the node (HK); signs receipts */
#define TB_TO      "hk.cr"           /* an agency in Hong Kong, served by TB_NODE */
#define TB_FROM    "gd.qh-amr"       /* an agency in Shenzhen, served by TB_NODE */
#define TB_SERVICE "HK-CR-COEXTRACT" /* PERSONAL, provided by TB_TO */

/*  The public keys of ID's fixed identity (tu_identity_fixed(ID, NULL)). */
gbx_pubid_t tb_pub(const char *id);
/*  A registry of node TB_NODE (HK) serving TB_TO (HK, hong-kong) and
    TB_FROM (GD, shenzhen), all with their fixed keys, and the service
    TB_SERVICE version 1. NULL on failure;
    the caller destroys it. */
gbx_registry_t *tb_registry(void);

/*  STORE's audit trail records (broker/trail.h), in order, each a
    NUL-terminated copy of the sealed record; *N their count. Fails the
    test if they cannot be read. Free with tb_audit_free. */
char **tb_audit_records(gbx_store_t *store, size_t *n);
void tb_audit_free(char **recs, size_t n);
/*  The number of records in STORE's audit trail, as stored. */
size_t tb_audit_count(gbx_store_t *store);

#endif
