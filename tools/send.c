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
#include "gbx/v1/envelope.pb-c.h"

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
    "      --kind KIND       REQUEST (default) or VERIFY\n"
    "      --marking M       HK marking: UNCLASSIFIED (default), RESTRICTED, ...\n"
    "      --route ROUTE     legal route: GBA_STANDARD_CONTRACT, NATIONAL_STANDARD_CONTRACT,\n"
    "                        CERTIFICATION, SECURITY_ASSESSMENT, EXEMPTION, MODEL_CLAUSES\n"
    "      --route-ref REF   the route's reference (contract filing no., assessment id, ...)\n"
    "      --consent TYPE    NOTICE, CONSENT or SEPARATE_CONSENT; --consent-ref REF\n"
    "      --impact-ref REF  impact assessment; --end-user REF; --agreement-ref REF;\n"
    "      --release-ref REF originator's release authority (RESTRICTED)\n"
    "      --subjects N      data subjects in the message (default 1)\n"
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

/*  The value of enum NAME in D (its .proto name), or -1. */
static int s_enum(const ProtobufCEnumDescriptor *d, const char *name)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(d, name);
    return v ? v->value : -1;
}

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
        O_ENDPOINT,
        O_MARKING,
        O_ROUTE,
        O_ROUTE_REF,
        O_CONSENT,
        O_CONSENT_REF,
        O_IMPACT_REF,
        O_END_USER,
        O_AGREEMENT_REF,
        O_RELEASE_REF,
        O_SUBJECTS,
        O_KIND
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
                                          {"marking", required_argument, 0, O_MARKING},
                                          {"route", required_argument, 0, O_ROUTE},
                                          {"route-ref", required_argument, 0, O_ROUTE_REF},
                                          {"consent", required_argument, 0, O_CONSENT},
                                          {"consent-ref", required_argument, 0, O_CONSENT_REF},
                                          {"impact-ref", required_argument, 0, O_IMPACT_REF},
                                          {"end-user", required_argument, 0, O_END_USER},
                                          {"agreement-ref", required_argument, 0, O_AGREEMENT_REF},
                                          {"release-ref", required_argument, 0, O_RELEASE_REF},
                                          {"subjects", required_argument, 0, O_SUBJECTS},
                                          {"kind", required_argument, 0, O_KIND},
                                          {"verbose", no_argument, 0, 'v'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    const char *cfg_path = NULL, *as = NULL, *key = NULL, *to = NULL, *service = NULL;
    const char *class_name = NULL, *purpose = "", *case_ref = "", *file = NULL, *endpoint = NULL;
    const char *marking = "UNCLASSIFIED", *route = "LEGAL_ROUTE_NONE", *consent = "CONSENT_NONE";
    const char *kind = "REQUEST", *refs[5] = {"", "", "", "", ""}; /* route, consent, impact,
                                                                     end user, agreement */
    const char *release_ref = "";
    long version = 1, count = 1, pipeline = 1, ttl = 0, timeout = 30000, subjects = 1;
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
        case O_MARKING:
            marking = optarg;
            break;
        case O_ROUTE:
            route = optarg;
            break;
        case O_CONSENT:
            consent = optarg;
            break;
        case O_KIND:
            kind = optarg;
            break;
        case O_ROUTE_REF:
        case O_CONSENT_REF:
        case O_IMPACT_REF:
        case O_END_USER:
        case O_AGREEMENT_REF:
            refs[c == O_ROUTE_REF     ? 0
                 : c == O_CONSENT_REF ? 1
                 : c == O_IMPACT_REF  ? 2
                 : c == O_END_USER    ? 3
                                      : 4] = optarg;
            break;
        case O_RELEASE_REF:
            release_ref = optarg;
            break;
        case O_SUBJECTS:
            subjects = strtol(optarg, NULL, 10);
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
    int e_marking = s_enum(&gbx__v1__hk_marking__descriptor, marking);
    int e_route = s_enum(&gbx__v1__legal_route__descriptor, route);
    int e_consent = s_enum(&gbx__v1__consent_type__descriptor, consent);
    int e_kind = s_enum(&gbx__v1__message_kind__descriptor, kind);
    if (e_marking < 1 || e_route < 0 || e_consent < 0 || e_kind < 1 || subjects < 0 ||
        subjects > UINT32_MAX) {
        fprintf(stderr, "gbx-send: bad --marking, --route, --consent, --kind or --subjects\n");
        return 2;
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
    h.kind = (Gbx__V1__MessageKind)e_kind;
    h.data_class = dc;
    h.hk_marking = (Gbx__V1__HkMarking)e_marking;
    h.purpose_code = (char *)purpose;
    h.case_ref = (char *)case_ref;
    h.legal_route = (Gbx__V1__LegalRoute)e_route;
    h.legal_route_ref = (char *)refs[0];
    h.consent_type = (Gbx__V1__ConsentType)e_consent;
    h.consent_ref = (char *)refs[1];
    h.impact_assessment_ref = (char *)refs[2];
    h.end_user_ref = (char *)refs[3];
    h.agreement_ref = (char *)refs[4];
    h.release_authority_ref = (char *)release_ref;
    h.subject_count = (uint32_t)subjects;

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
