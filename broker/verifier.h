/*  gbx_verifier: the verify workers (issue 3, deliverable 5: "signature
    verification runs on worker threads"). N threads, each with its own
    checker (broker/ingress.h, stage 1: decode, sender, signature, payload
    hash), take SUBMIT jobs from the input channel, check them and pass them
    on to the output channel (the writer's input), in any order. */
#ifndef GBX_VERIFIER_H
#define GBX_VERIFIER_H

#include <stddef.h>

#include "chan.h"
#include "gbx/err.h"
#include "ingress.h"

typedef struct gbx_verifier gbx_verifier_t;

/*  Starts THREADS workers, each with a checker made from OPTS (registry,
    max_payload_bytes, vcache_slots; borrowed objects must outlive it). */
gbx_err_t gbx_verifier_start(const gbx_ingress_opts_t *opts, size_t threads, gbx_chan_t *in,
                             gbx_chan_t *out, gbx_verifier_t **out_v);
/*  Closes the input channel and waits until the workers have checked and
    passed on everything in it and ended. Idempotent. */
void gbx_verifier_join(gbx_verifier_t *self);
/*  gbx_verifier_join, then frees. NULL-safe. */
void gbx_verifier_stop(gbx_verifier_t **self_p);
/*  Sum over the workers of gbx_checker_stats. Only after gbx_verifier_join
    (the workers own their counters while they run). */
void gbx_verifier_stats(gbx_verifier_t *self, uint64_t *verified, uint64_t *hits);

#endif
