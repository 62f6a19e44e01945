/*  gbx-bench policy: what a policy decision costs (issue 4: "policy
    evaluation must not show up in the broker's profile").

    Policies of 10, 100 and 1,000 generated rules against the demo
    registry, each rule with a match, requirements (route and a valid route
    reference, consent, impact assessment, TTL) and a volume cap; only the
    last rule matches the benchmark's header. Two layouts: rules spread
    over the registry's services (a real policy), and every rule on the
    service asked about (the worst case: all are scanned). Counters are
    read through a callback that returns at once, so the figure is the
    engine's own work; in gbxd each counter read is a read through the
    writer's batch. Median of RUNS runs of 300 ms. */
#ifndef GBX_BENCH_POLICY_H
#define GBX_BENCH_POLICY_H

/*  Prints a table and key=value lines. 0, or 1 on a failure. */
int gbx_bench_policy(int runs);

#endif
