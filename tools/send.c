/*  gbx-send: submits messages for scripts, through libgbx (gbx/client.h).
    Keys and the registry come from a gbxd configuration file. One line per
    message on stdout; exit 0 when all were accepted, 1 when any was
    rejected or unanswered, 2 on usage or configuration errors. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "gbx/client.h"

static const char s_usage[] =
    "usage: gbx-send -c CONFIG --as AGENCY --to AGENCY --service CODE [options]\n"
    "  -c, --config PATH     gbxd configuration (registry, node, adapter endpoint)\n"
    "      --as AGENCY       the sending agency (its keys: CONFIG_DIR/keys/AGENCY.secret)\n"
    "      --key PATH        the sending agency's secret key file instead\n"
    "      --to AGENCY       recipient agency\n"
    "      --service CODE    service code; --version N (default 1)\n"
    "      --class CLASS     PUBLIC, INTERNAL, PERSONAL, SENSITIVE_PERSONAL, IMPORTANT, CORE\n"
    "                        (default: the service's class in the registry, else PERSONAL)\n"
    "      --purpose TEXT    purpose code; --case-ref TEXT\n"
    "  -f, --file PATH       payload (default: stdin)\n"
    "  -n, --count N         send N messages with the same payload (default 1)\n"
    "  -w, --pipeline W      up to W submits outstanding (default 1: one at a time)\n"
    "      --batch           sign all N messages under one batch signature\n"
    "      --ttl-ms MS       expiry after creation (default 3600000)\n"
    "      --timeout-ms MS   give up waiting for answers after MS (default 30000)\n"
    "      --endpoint EP     adapter endpoint instead of the config's listen.adapter\n"
    "  -v, --verbose         log the client library's lines on stderr\n"
    "output: accepted id=HEX seq=N status=ACCEPTED|HELD dup=0|1\n"
    "        rejected id=HEX reason=NAME detail=TEXT\n"
    "exit: 0 all accepted, 1 any rejected or unanswered, 2 usage or configuration\n";

static void s_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static uint8_t *s_read_all(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/*  Prints the answer line; 1 if accepted. */
static int s_report(const gbx_event_t *ev)
{
    char id[2 * GBX_MSG_ID_BYTES + 1] = "";
    s_hex(ev->message_id, ev->message_id_len, id);
    if (ev->kind == GBX_EV_ACCEPTED) {
        printf("accepted id=%s seq=%llu status=%s dup=%d\n", id, (unsigned long long)ev->sequence,
               ev->held ? "HELD" : "ACCEPTED", ev->duplicate ? 1 : 0);
        return 1;
    }
    printf("rejected id=%s reason=%s detail=%s\n", id, gbx_err_name(ev->reason), ev->detail);
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_AS = 256,
        O_KEY,
        O_TO,
        O_SERVICE,
        O_VERSION,
        O_CLASS,
        O_PURPOSE,
        O_CASE,
        O_BATCH,
        O_TTL,
        O_TIMEOUT,
        O_ENDPOINT
    };
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"as", required_argument, 0, O_AS},
                                          {"key", required_argument, 0, O_KEY},
                                          {"to", required_argument, 0, O_TO},
                                          {"service", required_argument, 0, O_SERVICE},
                                          {"version", required_argument, 0, O_VERSION},
                                          {"class", required_argument, 0, O_CLASS},
                                          {"purpose", required_argument, 0, O_PURPOSE},
                                          {"case-ref", required_argument, 0, O_CASE},
                                          {"file", required_argument, 0, 'f'},
                                          {"count", required_argument, 0, 'n'},
                                          {"pipeline", required_argument, 0, 'w'},
                                          {"batch", no_argument, 0, O_BATCH},
                                          {"ttl-ms", required_argument, 0, O_TTL},
                                          {"timeout-ms", required_argument, 0, O_TIMEOUT},
                                          {"endpoint", required_argument, 0, O_ENDPOINT},
                                          {"verbose", no_argument, 0, 'v'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    const char *cfg_path = NULL, *as = NULL, *key = NULL, *to = NULL, *service = NULL;
    const char *class_name = NULL, *purpose = "", *case_ref = "", *file = NULL, *endpoint = NULL;
    long version = 1, count = 1, pipeline = 1, ttl = 0, timeout = 30000;
    int batch = 0, verbose = 0, c;
    while ((c = getopt_long(argc, argv, "c:f:n:w:vh", longs, NULL)) != -1) {
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
        case O_TO:
            to = optarg;
            break;
        case O_SERVICE:
            service = optarg;
            break;
        case O_VERSION:
            version = strtol(optarg, NULL, 10);
            break;
        case O_CLASS:
            class_name = optarg;
            break;
        case O_PURPOSE:
            purpose = optarg;
            break;
        case O_CASE:
            case_ref = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'n':
            count = strtol(optarg, NULL, 10);
            break;
        case 'w':
            pipeline = strtol(optarg, NULL, 10);
            break;
        case O_BATCH:
            batch = 1;
            break;
        case O_TTL:
            ttl = strtol(optarg, NULL, 10);
            break;
        case O_TIMEOUT:
            timeout = strtol(optarg, NULL, 10);
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
    if (!cfg_path || !as || !to || !service || optind != argc || count < 1 || pipeline < 1 ||
        version < 1 || ttl < 0 || timeout < 1 || (batch && count > (long)GBX_BATCH_MAX)) {
        fputs(s_usage, stderr);
        return 2;
    }

    int status = 2;
    gbx_cli_adapter_t ad;
    uint8_t *plain = NULL;
    gbx_msg_t **msgs = NULL;
    size_t plen = 0;
    gbx_err_t rc = GBX_OK;
    gbx_client_opts_t o = {.ttl_ms = (uint64_t)ttl, .send_only = 1};
    if (gbx_cli_adapter_open(&ad, "gbx-send", cfg_path, as, key, endpoint, verbose, &o) != 0)
        return 2;
    gbx_client_t *cl = ad.client;
    Gbx__V1__DataClass dc = GBX__V1__DATA_CLASS__PERSONAL;
    const gbx_service_t *svc = gbx_registry_service(ad.reg, service, (uint32_t)version);
    if (class_name)
        dc = gbx_data_class_parse(class_name);
    else if (svc)
        dc = svc->data_class;
    if (dc == GBX__V1__DATA_CLASS__DATA_CLASS_UNSPECIFIED) {
        fprintf(stderr, "gbx-send: unknown data class %s\n", class_name);
        goto out;
    }
    FILE *in = file ? fopen(file, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "gbx-send: %s: %s\n", file, strerror(errno));
        goto out;
    }
    plain = s_read_all(in, &plen);
    if (file)
        fclose(in);
    if (!plain) {
        fprintf(stderr, "gbx-send: cannot read the payload\n");
        goto out;
    }
    gbx_header_t h;
    gbx_header_init(&h);
    h.to_agency = (char *)to;
    h.service_code = (char *)service;
    h.service_version = (uint32_t)version;
    h.kind = GBX__V1__MESSAGE_KIND__REQUEST;
    h.data_class = dc;
    h.hk_marking = GBX__V1__HK_MARKING__UNCLASSIFIED;
    h.purpose_code = (char *)purpose;
    h.case_ref = (char *)case_ref;
    h.subject_count = 1;

    msgs = calloc((size_t)count, sizeof *msgs);
    if (!msgs)
        goto out;
    if (batch) {
        const gbx_header_t **hs = calloc((size_t)count, sizeof *hs);
        const void **ps = calloc((size_t)count, sizeof *ps);
        size_t *ls = calloc((size_t)count, sizeof *ls);
        rc = hs && ps && ls ? GBX_OK : GBX_E_NOMEM;
        for (long i = 0; i < count && rc == GBX_OK; i++)
            hs[i] = &h, ps[i] = plain, ls[i] = plen;
        if (rc == GBX_OK)
            rc = gbx_client_msg_batch(cl, hs, ps, ls, (size_t)count, msgs);
        free(hs);
        free(ps);
        free(ls);
    } else {
        for (long i = 0; i < count && rc == GBX_OK; i++)
            rc = gbx_client_msg(cl, &h, plain, plen, &msgs[i]);
    }
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-send: cannot build the message: %s\n", gbx_strerror(rc));
        goto out;
    }

    long accepted = 0, answered = 0, next = 0;
    status = 0;
    while (answered < count) {
        while (next < count && (long)gbx_client_pending(cl) < pipeline) {
            if ((rc = gbx_client_submit(cl, &msgs[next], NULL)) != GBX_OK) {
                fprintf(stderr, "gbx-send: submit: %s\n", gbx_strerror(rc));
                status = 1;
                goto out;
            }
            next++;
        }
        gbx_event_t ev;
        if (gbx_client_poll(cl, (int)timeout, &ev) != GBX_OK) {
            fprintf(stderr, "gbx-send: no answer within %ld ms (%ld of %ld answered)\n", timeout,
                    answered, count);
            status = 1;
            break;
        }
        if (ev.kind == GBX_EV_ACCEPTED || ev.kind == GBX_EV_REJECTED) {
            answered++;
            accepted += s_report(&ev);
        }
        gbx_event_clear(&ev);
    }
    fflush(stdout);
    if (accepted != count)
        status = 1;
out:
    for (long i = 0; msgs && i < count; i++)
        gbx_msg_destroy(&msgs[i]);
    free(msgs);
    gbx_cli_adapter_close(&ad);
    free(plain);
    return status;
}
