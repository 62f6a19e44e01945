/*  gbx_keylog: the registry's keys as the audit trail last recorded them.

    The registry (broker/registry.h) lives in gbxd's config file; a key
    changes when an operator edits that file and restarts gbxd. So that the
    trail shows every key change, gbxd calls gbx_keylog_start before it
    serves: it compares each node's, agency's and operator's public keys
    with what the store recorded at the previous start (keyspace meta,
    "key/<kind>/<id>" = their fingerprint) and audits
        KEY_ADDED    kind= id= fingerprint=
        KEY_CHANGED  kind= id= fingerprint= previous=
        KEY_REMOVED  kind= id= previous=
    then NODE_STARTED (node=, version=, config=, policy_version=,
    policy_hash=, keys=), all in one synced batch with the new
    fingerprints. The fingerprint is gbx_pubid_fingerprint of the three
    public keys' holder (proto/spec/3-keys.md). */
#ifndef GBX_KEYLOG_H
#define GBX_KEYLOG_H

#include <stdint.h>

#include "gbx/err.h"
#include "policy.h"
#include "registry.h"
#include "store.h"

typedef struct {
    const char *node_id;
    const char *version; /* gbxd's */
    const char *config;  /* the config file's path */
    const gbx_policy_t *policy;
    uint64_t at_ms;
} gbx_keylog_start_t;

/*  Audits the key changes since the last start and the start itself (see
    above) and commits them. *CHANGES: how many keys were added, changed or
    removed. */
gbx_err_t gbx_keylog_start(gbx_store_t *store, const gbx_registry_t *reg,
                           const gbx_keylog_start_t *start, unsigned *changes);

#endif
