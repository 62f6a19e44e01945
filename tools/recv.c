/*  gbx-recv: receives the messages addressed to an agency, for scripts,
    through libgbx (gbx/client.h). Keys and the registry come from a gbxd
    configuration file. Each delivery is verified and decrypted by the
    library, written out, then acked (with --reply: acked once the response
    is accepted, 5-adapter.md 6.4). Exit 0 after N messages or T ms of
    idleness, 1 on a failed write or reply, 2 on usage or configuration. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "gbx/client.h"

static const char s_usage[] =
    "usage: gbx-recv -c CONFIG --as AGENCY [options]\n"
    "  -c, --config PATH     gbxd configuration (registry, node, adapter endpoint)\n"
    "      --as AGENCY       the receiving agency (its keys: CONFIG_DIR/keys/AGENCY.secret)\n"
    "      --key PATH        the agency's secret key file instead\n"
    "  -n, --count N         exit after N messages (default: no limit)\n"
    "  -t, --timeout-ms T    exit after T ms without a delivery (default 10000)\n"
    "  -o, --out DIR         write each payload to DIR/<message id hex> (default: stdout,\n"
    "                        and the summary lines go to stderr)\n"
    "      --reply TEXT      answer each request with TEXT; ack once it is accepted\n"
    "      --endpoint EP     adapter endpoint instead of the config's listen.adapter\n"
    "  -v, --verbose         log the client library's lines on stderr\n"
    "output: one line per delivery: from=AGENCY id=HEX service=CODE/V bytes=N attempt=N\n";

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/*  A reply waiting for its answer before the request is acked. */
typedef struct {
    uint64_t tag;
    uint64_t delivery_id;
} s_reply_t;

int main(int argc, char **argv)
{
    enum { O_AS = 256, O_KEY, O_REPLY, O_ENDPOINT };
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"as", required_argument, 0, O_AS},
                                          {"key", required_argument, 0, O_KEY},
                                          {"count", required_argument, 0, 'n'},
                                          {"timeout-ms", required_argument, 0, 't'},
                                          {"out", required_argument, 0, 'o'},
                                          {"reply", required_argument, 0, O_REPLY},
                                          {"endpoint", required_argument, 0, O_ENDPOINT},
                                          {"verbose", no_argument, 0, 'v'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    const char *cfg_path = NULL, *as = NULL, *key = NULL, *outdir = NULL, *reply = NULL;
    const char *endpoint = NULL;
    long count = 0, timeout = 10000;
    int verbose = 0, c;
    while ((c = getopt_long(argc, argv, "c:n:t:o:vh", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case O_AS:
            as = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        case 't':
            timeout = strtol(optarg, NULL, 10);
            break;
        case 'o':
            outdir = optarg;
            break;
        case O_REPLY:
            reply = optarg;
            break;
        case O_ENDPOINT:
            endpoint = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(s_usage, stdout);
            return 0;
        default:
            fputs(s_usage, stderr);
            return 2;
        }
    }
    if (!cfg_path || !as || optind != argc || count < 0 || timeout < 1) {
        fputs(s_usage, stderr);
        return 2;
    }

    int status = 2;
    gbx_cli_adapter_t ad;
    s_reply_t *replies = NULL;
    size_t nreplies = 0;
    gbx_err_t rc = GBX_OK;
    gbx_client_opts_t o = {0};
    if (gbx_cli_adapter_open(&ad, "gbx-recv", cfg_path, as, key, endpoint, verbose, &o) != 0)
        return 2;
    gbx_client_t *cl = ad.client;
    FILE *lines = outdir ? stdout : stderr;
    long done = 0;
    status = 0;
    while (count == 0 || done < count) {
        gbx_event_t ev;
        if (gbx_client_poll(cl, (int)timeout, &ev) != GBX_OK)
            break; /* idle */
        if (ev.kind == GBX_EV_DELIVERY) {
            const gbx_delivery_t *d = ev.delivery;
            char id[2 * GBX_MSG_ID_BYTES + 1];
            s_hex(ev.message_id, GBX_MSG_ID_BYTES, id);
            int ok = 1;
            if (outdir) {
                char *path = NULL;
                FILE *f = NULL;
                ok = asprintf(&path, "%s/%s", outdir, id) > 0 && (f = fopen(path, "wb")) &&
                     fwrite(d->data, 1, d->len, f) == d->len;
                if (f && fclose(f) != 0)
                    ok = 0;
                if (!ok)
                    fprintf(stderr, "gbx-recv: %s: %s\n", path ? path : outdir, strerror(errno));
                free(path);
            } else {
                ok = fwrite(d->data, 1, d->len, stdout) == d->len && fflush(stdout) == 0;
            }
            fprintf(lines, "from=%s id=%s service=%s/%u bytes=%zu attempt=%u\n",
                    d->header->from_agency, id, d->header->service_code, d->header->service_version,
                    d->len, d->attempt);
            fflush(lines);
            if (!ok) {
                status = 1; /* not acked: the node redelivers */
            } else if (reply && d->header->kind == GBX__V1__MESSAGE_KIND__REQUEST) {
                uint64_t tag = 0;
                s_reply_t *nr = realloc(replies, (nreplies + 1) * sizeof *replies);
                if (nr)
                    replies = nr;
                if (!nr || (rc = gbx_client_reply(cl, d, reply, strlen(reply), &tag)) != GBX_OK) {
                    fprintf(stderr, "gbx-recv: reply to %s: %s\n", id, gbx_strerror(rc));
                    status = 1;
                } else {
                    replies[nreplies++] = (s_reply_t){tag, d->delivery_id};
                }
            } else {
                gbx_client_ack(cl, d->delivery_id);
                done++;
            }
        } else if (ev.kind == GBX_EV_ACCEPTED || ev.kind == GBX_EV_REJECTED) {
            for (size_t i = 0; i < nreplies; i++) {
                if (replies[i].tag != ev.tag)
                    continue;
                if (ev.kind == GBX_EV_ACCEPTED) {
                    gbx_client_ack(cl, replies[i].delivery_id);
                } else {
                    fprintf(stderr, "gbx-recv: reply rejected: %s %s\n", gbx_err_name(ev.reason),
                            ev.detail);
                    status = 1;
                }
                replies[i] = replies[--nreplies];
                done++;
                break;
            }
        } else if (ev.kind == GBX_EV_NOTICE) {
            char id[2 * GBX_MSG_ID_BYTES + 1] = "";
            s_hex(ev.message_id, ev.message_id_len, id);
            fprintf(lines, "notice id=%s reason=%s detail=%s\n", id, gbx_err_name(ev.reason),
                    ev.detail);
        }
        gbx_event_clear(&ev);
    }
    gbx_client_flush(cl);
    gbx_cli_adapter_close(&ad);
    free(replies);
    return status;
}
