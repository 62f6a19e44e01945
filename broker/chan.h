/*  gbx_chan: a first-in first-out channel of pointers between threads
    (mutex and condition variable), with an eventfd so that a zmq_poll loop
    can wait on it next to its sockets. Unbounded: producers bound what they
    put in flight themselves (gbxd counts its jobs). */
#ifndef GBX_CHAN_H
#define GBX_CHAN_H

#include <stddef.h>

#include "gbx/err.h"

typedef struct gbx_chan gbx_chan_t;

gbx_err_t gbx_chan_new(gbx_chan_t **out);
/*  NULL-safe; sets *self_p to NULL. Items still inside are not freed. */
void gbx_chan_destroy(gbx_chan_t **self_p);
/*  Appends ITEM (not NULL). GBX_E_NOMEM if the channel cannot grow,
    GBX_E_STATE once it is closed (the item stays the caller's). */
gbx_err_t gbx_chan_push(gbx_chan_t *self, void *item);
/*  Appends N items at once (one wake-up). */
gbx_err_t gbx_chan_push_all(gbx_chan_t *self, void *const *items, size_t n);
/*  Takes up to MAX items into ITEMS, waiting up to TIMEOUT_MS for the first
    (0: do not wait; -1: until an item comes or the channel is closed).
    Returns how many were taken. */
size_t gbx_chan_take(gbx_chan_t *self, void **items, size_t max, int timeout_ms);
/*  Readable (POLLIN) while the channel may hold items; gbx_chan_take
    clears it when it empties the channel. */
int gbx_chan_fd(const gbx_chan_t *self);
/*  Wakes every waiting taker; later takes do not wait. */
void gbx_chan_close(gbx_chan_t *self);
size_t gbx_chan_len(gbx_chan_t *self);
/*  True once the channel is closed and empty: no item will come. */
int gbx_chan_done(gbx_chan_t *self);

#endif
