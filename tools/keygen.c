/*  gbx-keygen: creates an identity (signing, encryption and CurveZMQ
    transport keys) and prints its public part for the registry.
    Spec: proto/spec/3-keys.md. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbx/identity.h"

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: gbx-keygen [-d DIR] [-f] ID      create DIR/ID.secret (0600) and DIR/ID.pub\n"
            "       gbx-keygen --show FILE            print the public part of a .secret or .pub\n"
            "  -d, --dir DIR   where to write (default: .)\n"
            "  -f, --force     overwrite existing files\n"
            "  -h, --help      this text\n"
            "ID is the agency or node id: [a-z0-9][a-z0-9.-]{0,63}, e.g. hk.cr\n");
}

static int s_print(const gbx_pubid_t *pub)
{
    char *text = NULL;
    if (gbx_pubid_format(pub, &text) != GBX_OK)
        return 1;
    fputs(text, stdout);
    free(text);
    return 0;
}

static int s_show(const char *path)
{
    size_t n = strlen(path);
    gbx_err_t rc;
    if (n > 4 && strcmp(path + n - 4, ".pub") == 0) {
        gbx_pubid_t pub;
        rc = gbx_pubid_load(path, &pub);
        if (rc == GBX_OK)
            return s_print(&pub);
    } else {
        gbx_identity_t *id = NULL;
        rc = gbx_identity_load(path, &id);
        if (rc == GBX_OK) {
            int r = s_print(gbx_identity_public(id));
            gbx_identity_destroy(&id);
            return r;
        }
    }
    fprintf(stderr, "gbx-keygen: %s: %s (%s)\n", path, gbx_strerror(rc), gbx_err_name(rc));
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"show", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = ".";
    int force = 0, c;
    while ((c = getopt_long(argc, argv, "d:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 's':
            return s_show(optarg);
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        s_usage(stderr);
        return 2;
    }
    const char *name = argv[optind];
    if (!gbx_id_valid(name)) {
        fprintf(stderr, "gbx-keygen: '%s' is not a valid id ([a-z0-9][a-z0-9.-]{0,63})\n", name);
        return 2;
    }
    gbx_identity_t *id = NULL;
    gbx_err_t rc = gbx_identity_generate(name, &id);
    if (rc == GBX_OK)
        rc = gbx_identity_save(id, dir, force);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-keygen: cannot create %s/%s.secret: %s%s\n", dir, name,
                rc == GBX_E_IO ? strerror(errno) : gbx_strerror(rc),
                rc == GBX_E_IO && errno == EEXIST ? " (use -f to overwrite)" : "");
        gbx_identity_destroy(&id);
        return 1;
    }
    fprintf(stderr, "gbx-keygen: wrote %s/%s.secret (0600) and %s/%s.pub\n", dir, name, dir, name);
    int r = s_print(gbx_identity_public(id));
    gbx_identity_destroy(&id);
    return r;
}
