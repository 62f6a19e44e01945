/*  gbx-bench floor: the cost of the machine's own work per message, below
    any broker logic, so the end-to-end figures (gbx-bench e2e) can be read
    against what the hardware allows (docs/benchmarks.md, "Floors").

      store      the real gbx_store (RocksDB with gbxd's options) in a
                 temporary directory, one thread, groups of 256 messages
                 with one fsync each: the contract's minimum per message
                 (accept: message, queue entry, dedupe record, audit record;
                 ack: entry and message deleted, audit record) and the
                 records gbxd writes (plus the due keys and the MARK before
                 a Deliver, with its own fsync)
      transport  ZeroMQ DEALER -> ROUTER over TCP loopback, each message
                 answered by a 200-byte one (a receipt, an ack), 512
                 unanswered at most, plain and with CurveZMQ; both ends in
                 this process, each with its own context

    Every figure is the median of RUNS runs; CPU is the whole process's
    (RocksDB's and ZeroMQ's background threads included) per message. */
#ifndef GBX_BENCH_FLOOR_H
#define GBX_BENCH_FLOOR_H

#include <stddef.h>

/*  Prints the figures and a key=value line. 0, or 1 when a run failed. */
int gbx_bench_floor(int runs, size_t size);

#endif
