/*  gbx-audit's commands, shared by tools/audit.c (main, verify, prove,
    consistency, check-proof, cosign, tail) and tools/audit_query.c (show,
    query, export). The trail itself is broker/trail.h; docs/audit.md is the
    auditor's manual.

    Export format, JSON Lines (one JSON object per line, UTF-8), in order:
      {"type":"export","v":1,"node":ID,"from":A,"to":B}       first line
      {"type":"anchor","first":A,"chain":HEX,"peaks":[HEX..]} the chain value
            before record A and the tree's peaks over records 0..A-1
      {"type":"checkpoint","size":A,"text":CP}                when A > 0: the
            checkpoint that vouches for the anchor (so --from is 0 or a
            checkpoint's size)
      {"type":"record","i":N,"sealed":TEXT,"fields":{...}}    each record A..B-1:
            TEXT is the sealed record exactly as stored (what the chain and
            the tree hash), fields its key=value lines as an object, for
            reading (never trusted by verify)
      {"type":"checkpoint","size":S,"text":CP}                after record S-1,
            every stored checkpoint of S records, A < S <= B (its text form)
    `gbx-audit verify --export FILE` checks it as it checks a store.

    CSV (RFC 4180, a header row): i, at_ms, event, message_id, from, to,
    service, data_class, decision, rule_id, reason, by, other, chain: one
    row per record; "other" holds the remaining fields as key=value joined
    by ';'. A CSV is for reading; JSONL is what verifies. */
#ifndef GBX_AUDIT_TOOL_H
#define GBX_AUDIT_TOOL_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "gbx/identity.h"
#include "store.h"

/*  Exit codes: 0 done (verify: the trail verifies); 1 the trail or proof
    does not verify, or nothing matched; 2 usage, configuration, files. */
enum { GBX_AUDIT_OK = 0, GBX_AUDIT_FAIL = 1, GBX_AUDIT_USAGE = 2 };

typedef struct {
    gbx_config_t *cfg;  /* NULL with --data */
    gbx_store_t *store; /* opened read-only; NULL until a command needs it */
    const char *data;   /* the data dir */
    char node[GBX_ID_MAX + 1];
    uint8_t node_pk[GBX_KEY_BYTES]; /* the node's signing key */
    int have_pk;
    int json; /* --json: machine output */
} gbx_audit_tool_t;

/*  Opens the store read-only (once); GBX_AUDIT_OK or GBX_AUDIT_USAGE after
    a message on stderr. */
int gbx_audit_tool_store(gbx_audit_tool_t *t);

/*  Each command gets the words after its name (ARGV[0] is the command). */
int gbx_audit_cmd_show(gbx_audit_tool_t *t, int argc, char **argv);
int gbx_audit_cmd_query(gbx_audit_tool_t *t, int argc, char **argv);
int gbx_audit_cmd_export(gbx_audit_tool_t *t, int argc, char **argv);

#endif
