/*  tb_fixture: what the broker module tests share: the fixed registry most
    of them run against. */
#ifndef GBX_TB_FIXTURE_H
#define GBX_TB_FIXTURE_H

#include "gbx/identity.h"
#include "registry.h"

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

#endif
