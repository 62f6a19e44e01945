/*  gbx_httpd: gbxd's HTTP endpoint for monitoring (issue 6, deliverable
    3): GET /metrics, /healthz and /readyz on listen.metrics, served by
    libmicrohttpd's own thread. It reads a gbx_metrics (broker/metrics.h)
    and nothing else: a scrape never waits for the loop, the writer or the
    store.
      /metrics   200, Prometheus text format 0.0.4
      /healthz   200 "ok" while gbxd works (the loop turns, the store is not
                 broken); 503 and the failing checks otherwise: restart it
      /readyz    200 "ready" when it also takes traffic (not draining, disk
                 free at least limits.min_free_disk_bytes); 503 and the
                 failing checks otherwise: send traffic elsewhere
    Anything else is 404; a method other than GET or HEAD 405, a request
    with a body 400, both answered from the headers before any body is
    read. At most 64 connections at once, 16 from one address; a connection
    is closed after 3 s idle, and cut after 5 s open whatever it does (a
    watchdog thread: libmicrohttpd's own timeout resets on every byte), so a
    client that holds connections with a trickle of bytes delays the others
    by 5 s at most. A probe should use a timeout above that (and retries).
    Every answer closes its connection. Nothing secret is served: bind it to
    loopback or a monitoring network. */
#ifndef GBX_HTTPD_H
#define GBX_HTTPD_H

#include <stddef.h>

#include "gbx/err.h"
#include "metrics.h"

typedef struct gbx_httpd gbx_httpd_t;

/*  Listens on ADDR ("HOST:PORT", "[v6]:PORT"; HOST a name or a numeric
    address) and serves METRICS (borrowed: it must outlive the server).
    GBX_OK; GBX_E_ARG for an address that does not parse or resolve;
    GBX_E_IO when it cannot listen (ERR says why). */
gbx_err_t gbx_httpd_start(const char *addr, gbx_metrics_t *metrics, gbx_httpd_t **out, char *err,
                          size_t errlen);
/*  Stops serving and waits for the server's thread. NULL-safe. */
void gbx_httpd_stop(gbx_httpd_t **self_p);

#endif
