/*  gbx_cli_adapter: what the command-line adapters (gbx-send, gbx-recv)
    share: an agency's libgbx client made from a gbxd configuration file
    (the registry gives the node's keys, the senders' keys and the adapter
    endpoint) and the agency's key file. Error lines go to stderr, prefixed
    with the tool's name. */
#ifndef GBX_TOOLS_CLI_H
#define GBX_TOOLS_CLI_H

#include "config.h"
#include "gbx/client.h"
#include "gbx/identity.h"
#include "registry.h"

typedef struct {
    gbx_config_t *cfg;
    const gbx_registry_t *reg; /* the configuration's */
    gbx_identity_t *me;
    gbx_client_t *client;
    char *endpoint; /* the one connected to (malloc'ed) */
} gbx_cli_adapter_t;

/*  Loads CFG_PATH and the keys of agency AS (from KEY, or when KEY is NULL
    from CONFIG_DIR/keys/AS.secret, which must hold AS's keys), and connects
    to ENDPOINT (NULL: the configuration's listen.adapter, a "*" host as
    127.0.0.1). OPTS holds the caller's client options (ttl, credit,
    send_only, ...); endpoint, identity, node, peer and log are set here (log
    on stderr when VERBOSE). Returns 0, or 2 after an error line (the tools'
    exit code for a bad configuration); *A is then closed. */
int gbx_cli_adapter_open(gbx_cli_adapter_t *a, const char *prog, const char *cfg_path,
                         const char *as, const char *key, const char *endpoint, int verbose,
                         gbx_client_opts_t *opts);
/*  Destroys what A holds; safe on a zeroed or closed A. */
void gbx_cli_adapter_close(gbx_cli_adapter_t *a);

#endif
