/*  gbx_feed: the audit trail as a live feed, for `gbx-audit tail -f` and
    SIEM tools.

    gbxd binds an XPUB socket on listen.audit_feed (a unix socket, ipc://,
    mode 0600) as a CurveZMQ server in the operators' ZAP domain
    (GBX_ZAP_DOMAIN_CONTROL): any operator of the registry may subscribe.
    Every record is published once it is durable, as one frame: the
    sealed record exactly as stored (broker/trail.h: "v=1\nevent=...",
    ending with its i= and chain= lines), so a subscriber can check the
    chain as records come and filter by prefix ("v=1\nevent=REJECTED").
    Every checkpoint is published as one frame too, its text form
    ("gbx-checkpoint v1 ..."). A subscriber gets what becomes durable
    after it subscribed (the past is in the store: `gbx-audit show`); while
    nobody subscribes, nothing is read. A subscriber
    too slow for ZeroMQ's high-water mark loses frames, and sees the gap in
    the i= numbers. Runs on gbxd's loop thread. */
#ifndef GBX_FEED_H
#define GBX_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/err.h"
#include "store.h"

typedef struct gbx_feed gbx_feed_t;

/*  Binds the feed on the unix socket PATH with CURVE_SK (the node's) in
    ZeroMQ context CTX, publishing STORE's trail. GBX_E_IO (with ERR filled)
    if it cannot bind. */
gbx_err_t gbx_feed_new(void *ctx, const char *path, const uint8_t *curve_sk, gbx_store_t *store,
                       gbx_feed_t **out, char *err, size_t errlen);
/*  Closes the socket. NULL-safe. */
void gbx_feed_destroy(gbx_feed_t **self_p);
/*  Publishes what became durable since the last call: at most MAX frames
    (the rest next time). Returns the number published. */
size_t gbx_feed_pump(gbx_feed_t *self, size_t max);
/*  Records published since start. */
uint64_t gbx_feed_published(const gbx_feed_t *self);

#endif
