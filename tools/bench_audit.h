/*  gbx-bench audit: what the tamper-evident audit trail costs (issue 5:
    "verify a trail of 1,000,000 records and report the time"; "the audit
    work must not cut the broker's throughput by more than 10%").

    Two figures, measured in one run:
    - sealing: COUNT records of the size gbxd writes (an ACCEPTED record
      with a full header, ~700 bytes) committed in groups of 256 (gbxd's
      writer groups), alternately into two stores: through the trail
      (gbx_batch_append: numbered, chained, tree nodes, a signed checkpoint
      every 1,000) and as plain puts into the audit keyspace (what the
      broker wrote before the trail). CPU per record of each, the
      difference is the trail's own cost.
    - verifying: `gbx-audit --data DIR --node-key PUB --json verify` (the
      binary next to gbx-bench) over the trail of COUNT records, RUNS
      times: seconds (median) and records per second.
    The end-to-end A/B (a broker with and without audit records) is the
    e2e benchmark run against two builds: docs/benchmarks.md. */
#ifndef GBX_BENCH_AUDIT_H
#define GBX_BENCH_AUDIT_H

#include <stddef.h>

/*  SELF: argv[0] (to find gbx-audit). Prints a table and key=value lines.
    0, or 1 on a failure. */
int gbx_bench_audit(const char *self, size_t count, int runs);

#endif
