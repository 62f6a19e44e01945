/*  cli.c: owns the set-up the command-line adapters share. */
#include "cli.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gbx_pubid_t *s_peer(void *arg, const char *id)
{
    const gbx_agency_t *a = gbx_registry_agency(arg, id);
    return a ? &a->pub : NULL;
}

static void s_log(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s\n", line);
}

void gbx_cli_adapter_close(gbx_cli_adapter_t *a)
{
    if (!a)
        return;
    gbx_client_destroy(&a->client);
    gbx_identity_destroy(&a->me);
    gbx_config_destroy(&a->cfg);
    free(a->endpoint);
    memset(a, 0, sizeof *a);
}

int gbx_cli_adapter_open(gbx_cli_adapter_t *a, const char *prog, const char *cfg_path,
                         const char *as, const char *key, const char *endpoint, int verbose,
                         gbx_client_opts_t *opts)
{
    memset(a, 0, sizeof *a);
    char err[512] = "", *keypath = NULL, *cfgcopy = NULL;
    gbx_err_t rc = gbx_config_load(cfg_path, &a->cfg, err, sizeof err);
    if (rc != GBX_OK) {
        fprintf(stderr, "%s: %s\n", prog, err[0] ? err : gbx_strerror(rc));
        goto fail;
    }
    a->reg = gbx_config_registry(a->cfg);
    const gbx_agency_t *ag = gbx_registry_agency(a->reg, as);
    const gbx_node_t *node = ag ? gbx_registry_node(a->reg, ag->node) : NULL;
    if (!node) {
        fprintf(stderr, "%s: agency %s is not in the registry of %s\n", prog, as, cfg_path);
        goto fail;
    }
    if (!key) {
        cfgcopy = strdup(cfg_path);
        if (!cfgcopy || asprintf(&keypath, "%s/keys/%s.secret", dirname(cfgcopy), as) < 0) {
            fprintf(stderr, "%s: out of memory\n", prog);
            goto fail;
        }
        key = keypath;
    }
    if ((rc = gbx_identity_load(key, &a->me)) != GBX_OK) {
        fprintf(stderr, "%s: %s: %s\n", prog, key, gbx_strerror(rc));
        goto fail;
    }
    if (strcmp(gbx_identity_public(a->me)->id, as) != 0) {
        fprintf(stderr, "%s: %s holds the keys of %s, not %s\n", prog, key,
                gbx_identity_public(a->me)->id, as);
        goto fail;
    }
    if (!endpoint) {
        const char *e = gbx_config_str(a->cfg, GBX_SETTING_LISTEN_ADAPTER);
        if (strncmp(e, "tcp://*:", 8) == 0) {
            if (asprintf(&a->endpoint, "tcp://127.0.0.1:%s", e + 8) < 0)
                a->endpoint = NULL;
        } else {
            a->endpoint = strdup(e);
        }
    } else {
        a->endpoint = strdup(endpoint);
    }
    if (!a->endpoint) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto fail;
    }
    opts->endpoint = a->endpoint;
    opts->identity = a->me;
    opts->node = &node->pub;
    opts->node_id = node->id;
    opts->peer = s_peer;
    opts->peer_arg = (void *)a->reg;
    opts->log = verbose ? s_log : NULL;
    if ((rc = gbx_client_new(opts, &a->client)) != GBX_OK) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", prog, a->endpoint, gbx_strerror(rc));
        goto fail;
    }
    free(keypath);
    free(cfgcopy);
    return 0;
fail:
    free(keypath);
    free(cfgcopy);
    gbx_cli_adapter_close(a);
    return 2;
}
