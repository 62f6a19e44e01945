/*  gbx-audit: the auditor's tool for a node's tamper-evident audit trail
    (broker/trail.h; docs/audit.md). It reads the store read-only, beside a
    running gbxd, or a copy of the data dir, or an export; proofs it makes
    check offline with only the node's public key.

    This file: the command line, verify (a store or an export), prove,
    consistency, check-proof, cosign and tail; show, query and export are in
    tools/audit_query.c. Exit codes: tools/audit.h. */
#include "audit_tool.h"

#include "audit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "gbx/checkpoint.h"
#include "gbx/merkle.h"
#include "trail.h"

static const char s_usage[] =
    "usage: gbx-audit [-c CONFIG | --data DIR --node-key NODE.pub] [--json] COMMAND ...\n"
    "  -c, --config PATH     gbxd's configuration (default $GBX_HOME/gbxd.yaml, else\n"
    "                        ./.gbx/gbxd.yaml, else the packaged /var/lib/gbx/gbxd.yaml):\n"
    "                        the data dir, the node and the registry\n"
    "      --data DIR        a node's data dir (a copy will do), with --node-key\n"
    "      --node-key FILE   the node's public key file (<node>.pub)\n"
    "      --json            machine-readable output\n"
    "commands:\n"
    "  verify [--from N] [--to N] [--checkpoint FILE]\n"
    "                        the chain, the tree and every checkpoint's signature (and\n"
    "                        peers' countersignatures); the first bad record's place;\n"
    "                        --checkpoint: that an earlier checkpoint is still the trail's past\n"
    "  verify --export FILE  the same over an export (JSON Lines)\n"
    "  show INDEX | show --message ID      one record in full | a message's whole life\n"
    "  query [--message ID] [--agency A] [--service S] [--class C] [--decision D]\n"
    "        [--event E] [--reason R] [--since T] [--until T] [--limit N]\n"
    "  prove (--index N | --message ID [--event E]) [--size S] [-o FILE]\n"
    "                        an inclusion proof against the latest checkpoint (or of size S)\n"
    "  consistency --old FILE [--size S] [-o FILE]\n"
    "                        a proof that the trail extends the checkpoint in FILE\n"
    "  check-proof PROOF     checks a proof offline (needs only --node-key or -c)\n"
    "  export [--from N] [--to N] [--format jsonl|csv] [-o FILE]\n"
    "  tail [-n N] [-f [--count N] [--as OPERATOR] [--key FILE]]\n"
    "                        the last N records; -f: then the live feed (an operator's key)\n"
    "  checkpoints           the stored checkpoints, oldest first\n"
    "  cosign --key PEER.secret [CHECKPOINT | -]\n"
    "                        a peer node countersigns a checkpoint (prints it with cosig=)\n"
    "exit: 0 verifies / done, 1 does not verify / not found, 2 usage or files\n";

/* ----------------------------------------------------------------- setup */

int gbx_audit_tool_store(gbx_audit_tool_t *t)
{
    if (t->store)
        return GBX_AUDIT_OK;
    gbx_store_opts_t so;
    gbx_store_opts_init(&so);
    so.read_only = true;
    gbx_err_t rc = gbx_store_open(t->data, &so, &t->store);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-audit: %s: cannot open the store read-only: %s\n", t->data,
                gbx_err_name(rc));
        return GBX_AUDIT_USAGE;
    }
    return GBX_AUDIT_OK;
}

/*  The node's public key from FILE (a .pub). */
static int s_node_key(gbx_audit_tool_t *t, const char *file)
{
    gbx_pubid_t pub;
    gbx_err_t rc = gbx_pubid_load(file, &pub);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-audit: %s: %s\n", file, gbx_err_name(rc));
        return GBX_AUDIT_USAGE;
    }
    snprintf(t->node, sizeof t->node, "%s", pub.id);
    memcpy(t->node_pk, pub.sign_pk, GBX_KEY_BYTES);
    t->have_pk = 1;
    return GBX_AUDIT_OK;
}

static int s_from_config(gbx_audit_tool_t *t, const char *path)
{
    char err[512];
    if (gbx_config_load(path, &t->cfg, err, sizeof err) != GBX_OK) {
        fprintf(stderr, "gbx-audit: %s\n", err);
        return GBX_AUDIT_USAGE;
    }
    t->data = gbx_config_str(t->cfg, GBX_SETTING_NODE_DATA_DIR);
    const char *id = gbx_config_str(t->cfg, GBX_SETTING_NODE_ID);
    const gbx_node_t *n = gbx_registry_node(gbx_config_registry(t->cfg), id);
    if (!n) {
        fprintf(stderr, "gbx-audit: %s: node.id %s is not in the registry\n", path, id);
        return GBX_AUDIT_USAGE;
    }
    snprintf(t->node, sizeof t->node, "%s", id);
    memcpy(t->node_pk, n->pub.sign_pk, GBX_KEY_BYTES);
    t->have_pk = 1;
    return GBX_AUDIT_OK;
}

/*  A peer's signing key from the registry (NULL without one). */
static const uint8_t *s_peer_pk(const gbx_audit_tool_t *t, const char *peer)
{
    const gbx_node_t *n = t->cfg ? gbx_registry_node(gbx_config_registry(t->cfg), peer) : NULL;
    return n ? n->pub.sign_pk : NULL;
}

static int s_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-')
        return 0;
    *out = v;
    return 1;
}

/*  Reads a whole file (or stdin for "-"); NUL-terminated, malloc'ed. */
static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/*  Writes TEXT to PATH (NULL or "-": stdout), atomically for a file. */
static int s_write_out(const char *path, const char *text)
{
    if (!path || strcmp(path, "-") == 0) {
        fputs(text, stdout);
        return fflush(stdout) == 0 ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
    }
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return GBX_AUDIT_USAGE;
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "gbx-audit: %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? GBX_AUDIT_OK : GBX_AUDIT_USAGE;
}

/*  Writes O (stolen) as indented JSON and a newline to PATH (s_write_out). */
static int s_write_json(const char *path, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
    json_decref(o);
    char *withnl = NULL;
    if (!s || asprintf(&withnl, "%s\n", s) < 0) {
        free(s);
        return GBX_AUDIT_USAGE;
    }
    int rc = s_write_out(path, withnl);
    free(withnl);
    free(s);
    return rc;
}

static json_t *s_hexj(const uint8_t *bin, size_t len)
{
    char hex[2 * 64 + 1];
    gbx_hex(bin, len < 64 ? len : 64, hex);
    return json_string(hex);
}

/* ---------------------------------------------------------------- verify */

/*  The outcome of a verification, printed by s_report. */
typedef struct {
    const char *what; /* "store" or the export's path */
    uint64_t from, to;
    gbx_trail_check_t ck;
    uint64_t covered; /* records covered by a verified checkpoint */
    uint64_t cosigs, cosigs_unchecked;
    int ok;
    uint64_t bad_index; /* where it failed */
    char why[512];
} s_verdict_t;

static int s_report(const gbx_audit_tool_t *t, const s_verdict_t *v)
{
    if (t->json) {
        json_t *o =
            json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", v->ok, "trail",
                      v->what, "from", (json_int_t)v->from, "to", (json_int_t)v->to, "records",
                      (json_int_t)v->ck.records, "checkpoints", (json_int_t)v->ck.checkpoints,
                      "covered", (json_int_t)v->covered, "cosignatures", (json_int_t)v->cosigs,
                      "cosignatures_unchecked", (json_int_t)v->cosigs_unchecked);
        if (!v->ok) {
            json_object_set_new(o, "bad_index", json_integer((json_int_t)v->bad_index));
            json_object_set_new(o, "error", json_string(v->why));
        }
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else if (v->ok) {
        printf("gbx-audit: verify: OK: %s of node %s, records %" PRIu64 "..%" PRIu64 " (%" PRIu64
               "), %" PRIu64 " checkpoints with good signatures, %" PRIu64
               " records covered by one",
               v->what, t->node, v->from, v->to ? v->to - 1 : 0, v->ck.records, v->ck.checkpoints,
               v->covered);
        if (v->cosigs || v->cosigs_unchecked)
            printf(", %" PRIu64 " countersignatures good (%" PRIu64 " not checked: no registry)",
                   v->cosigs, v->cosigs_unchecked);
        printf("\n");
        if (v->covered < v->to)
            printf("gbx-audit: note: records %" PRIu64 "..%" PRIu64
                   " are chained but no checkpoint signs them yet\n",
                   v->covered, v->to - 1);
    } else {
        printf("gbx-audit: verify: FAILED at record %" PRIu64 ": %s\n", v->bad_index, v->why);
    }
    return v->ok ? GBX_AUDIT_OK : GBX_AUDIT_FAIL;
}

static void s_fail_at(s_verdict_t *v, uint64_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fail_at(s_verdict_t *v, uint64_t index, const char *fmt, ...)
{
    if (!v->ok)
        return; /* the first failure is the one that counts */
    v->ok = 0;
    v->bad_index = index;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

/*  Checks checkpoint CP at the current position, and its countersignatures. */
static void s_check_cp(const gbx_audit_tool_t *t, s_verdict_t *v, const gbx_checkpoint_t *cp,
                       const gbx_checkpoint_t *old)
{
    char why[512];
    if (strcmp(cp->node, t->node) != 0) {
        s_fail_at(v, cp->size, "checkpoint at %" PRIu64 " records names node %s, not %s", cp->size,
                  cp->node, t->node);
        return;
    }
    if (gbx_trail_check_checkpoint(&v->ck, cp, t->node_pk, why, sizeof why) != GBX_OK) {
        s_fail_at(v, cp->size ? cp->size - 1 : 0, "%s", why);
        return;
    }
    v->covered = cp->size;
    for (unsigned i = 0; i < cp->ncosig; i++) {
        const uint8_t *pk = s_peer_pk(t, cp->cosig[i].node);
        if (strcmp(cp->cosig[i].node, t->node) == 0)
            s_fail_at(v, cp->size - 1,
                      "checkpoint at %" PRIu64 " records: countersigned by the node itself",
                      cp->size);
        else if (!pk && t->cfg)
            s_fail_at(v, cp->size - 1,
                      "checkpoint at %" PRIu64 " records: countersigned by %s, not a node of "
                      "the registry",
                      cp->size, cp->cosig[i].node);
        else if (!pk)
            v->cosigs_unchecked++;
        else if (gbx_checkpoint_verify_cosig(cp, cp->cosig[i].node, pk) == GBX_OK)
            v->cosigs++;
        else
            s_fail_at(v, cp->size - 1,
                      "checkpoint at %" PRIu64 " records: %s's countersignature does not verify",
                      cp->size, cp->cosig[i].node);
    }
    if (old && old->size == cp->size && (sodium_memcmp(old->root, cp->root, 32) != 0))
        s_fail_at(v, cp->size - 1, "the trail was rewritten: checkpoint %" PRIu64 " differs",
                  cp->size);
}

/*  An earlier checkpoint OLD (from a file) when the walk reaches its size. */
static void s_check_old(const gbx_audit_tool_t *t, s_verdict_t *v, const gbx_checkpoint_t *old)
{
    gbx_hash_t root;
    if (gbx_checkpoint_verify(old, t->node_pk) != GBX_OK) {
        s_fail_at(v, old->size, "--checkpoint: its signature is not node %s's", t->node);
        return;
    }
    if (gbx_merkle_peaks_root(&v->ck.peaks, root) != GBX_OK ||
        sodium_memcmp(root, old->root, GBX_MERKLE_HASH) != 0 ||
        sodium_memcmp(v->ck.chain, old->chain, GBX_MERKLE_HASH) != 0)
        s_fail_at(v, old->size - 1,
                  "the trail does not extend the earlier checkpoint of %" PRIu64
                  " records: its history was rewritten",
                  old->size);
}

/*  The size of the first stored checkpoint of more than AT records
    (into *CP), UINT64_MAX when there is none; a checkpoint that cannot be
    read or names another size than its key fails the verdict. */
static uint64_t s_next_cp(gbx_store_t *st, s_verdict_t *v, uint64_t at, gbx_checkpoint_t *cp)
{
    gbx_err_t rc = gbx_trail_checkpoint_after(st, at, cp);
    if (rc == GBX_OK)
        return cp->size;
    if (rc != GBX_E_STATE)
        s_fail_at(v, at,
                  "a stored checkpoint after record %" PRIu64
                  " is unreadable or names another size than its key (tampered)",
                  at);
    return UINT64_MAX;
}

/*  1 if records lie below FIRST in ST (the retention anchor was moved
    over records that are still there). */
static int s_records_below(gbx_store_t *st, uint64_t first)
{
    gbx_store_iter_t *it = NULL;
    int below = 0;
    if (gbx_store_iter_new(st, GBX_KS_AUDIT, NULL, 0, &it) == GBX_OK && gbx_store_iter_valid(it)) {
        size_t klen = 0;
        const uint8_t *k = gbx_store_iter_key(it, &klen);
        below = klen != GBX_STORE_SEQ_KEY_BYTES || gbx_store_seq_from_key(k) < first;
    }
    gbx_store_iter_destroy(&it);
    return below;
}

/*  The upto= of an AUDIT_PRUNED record (REC, LEN), or UINT64_MAX when REC
    is another event. */
static uint64_t s_pruned_upto(const uint8_t *rec, size_t len)
{
    size_t el = 0, ul = 0;
    const char *e = gbx_audit_field((const char *)rec, len, "event", &el);
    const char *u = gbx_audit_field((const char *)rec, len, "upto", &ul);
    if (!e || el != 12 || memcmp(e, "AUDIT_PRUNED", 12) != 0 || !u || ul == 0 || ul > 20)
        return UINT64_MAX;
    char num[24];
    memcpy(num, u, ul);
    num[ul] = '\0';
    uint64_t n;
    return s_u64(num, &n) ? n : UINT64_MAX;
}

static int s_verify_store(gbx_audit_tool_t *t, uint64_t from, uint64_t to, int has_to,
                          const gbx_checkpoint_t *old)
{
    int rc = gbx_audit_tool_store(t);
    if (rc != GBX_AUDIT_OK)
        return rc;
    gbx_store_t *st = t->store;
    s_verdict_t v = {.what = "store", .ok = 1};
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(st), &h);
    uint64_t first = 0;
    gbx_hash_t chain;
    gbx_merkle_peaks_t peaks;
    if (gbx_trail_anchor(st, &first, chain, &peaks) != GBX_OK) {
        s_fail_at(&v, 0, "the retention anchor is unreadable");
        return s_report(t, &v);
    }
    if (from < first)
        from = first;
    if (!has_to) /* every record there is, whatever the head says */
        to = UINT64_MAX;
    v.from = from;
    v.to = to;
    if (from > h.size || (has_to && from > to)) {
        fprintf(stderr, "gbx-audit: verify: --from beyond the trail (%" PRIu64 " records)\n",
                h.size);
        return GBX_AUDIT_USAGE;
    }
    gbx_checkpoint_t cp;
    if (from > first) { /* mid-trail: start from the stored record before */
        uint8_t *val = NULL;
        size_t vlen = 0;
        gbx_trail_rec_t prev;
        if (gbx_trail_get(st, from - 1, &val, &vlen) != GBX_OK || !val ||
            gbx_trail_parse(val, vlen, &prev) != GBX_OK ||
            gbx_trail_peaks_at(st, from, &peaks) != GBX_OK) {
            free(val);
            s_fail_at(&v, from - 1, "record %" PRIu64 " (before --from) is missing or unreadable",
                      from - 1);
            return s_report(t, &v);
        }
        memcpy(chain, prev.chain, GBX_MERKLE_HASH);
        free(val);
    }
    gbx_trail_check_init(&v.ck, from, chain, &peaks);
    if (from == first && first > 0) { /* the anchor must be what a checkpoint signed */
        if (gbx_trail_checkpoint(st, first, &cp) != GBX_OK)
            s_fail_at(&v, first, "no checkpoint vouches for the retention anchor at %" PRIu64,
                      first);
        else
            s_check_cp(t, &v, &cp, NULL);
        if (s_records_below(st, first))
            s_fail_at(&v, first,
                      "records below the retention anchor (%" PRIu64 ") are still there: the "
                      "anchor was moved",
                      first);
    }
    if (old && old->size < from && v.ok) {
        /* before the records checked: it must be the stored checkpoint of its size */
        gbx_checkpoint_t kept;
        if (gbx_checkpoint_verify(old, t->node_pk) != GBX_OK)
            s_fail_at(&v, old->size, "--checkpoint: its signature is not node %s's", t->node);
        else if (gbx_trail_checkpoint(st, old->size, &kept) != GBX_OK ||
                 sodium_memcmp(kept.root, old->root, GBX_MERKLE_HASH) != 0 ||
                 sodium_memcmp(kept.chain, old->chain, GBX_MERKLE_HASH) != 0)
            s_fail_at(&v, old->size - 1,
                      "the trail no longer holds the earlier checkpoint of %" PRIu64
                      " records (before record %" PRIu64 "): its history was rewritten",
                      old->size, from);
    }
    if (old && old->size == from && from == first)
        s_check_old(t, &v, old);

    /* the records in order, each checkpoint where its size is reached */
    uint64_t next_cp = s_next_cp(st, &v, from, &cp);
    uint64_t last_prune = UINT64_MAX; /* upto= of the newest AUDIT_PRUNED record */
    gbx_trail_iter_t *it = NULL;
    if (gbx_trail_iter_new(st, from, &it) != GBX_OK) {
        fprintf(stderr, "gbx-audit: cannot read the store\n");
        return GBX_AUDIT_USAGE;
    }
    char why[512];
    const uint8_t *val;
    size_t vlen;
    while (v.ok && v.ck.next < to && gbx_trail_iter_next(it, &val, &vlen)) {
        if (gbx_trail_check_record(&v.ck, val, vlen, why, sizeof why) != GBX_OK) {
            s_fail_at(&v, v.ck.next, "%s", why);
            break;
        }
        uint64_t up = s_pruned_upto(val, vlen);
        if (up != UINT64_MAX)
            last_prune = up;
        if (old && old->size == v.ck.next)
            s_check_old(t, &v, old);
        while (v.ok && next_cp == v.ck.next) {
            s_check_cp(t, &v, &cp, old);
            next_cp = s_next_cp(st, &v, v.ck.next, &cp);
        }
    }
    if (gbx_trail_iter_error(it) != GBX_OK)
        s_fail_at(&v, v.ck.next, "the store could not be read past this record");
    gbx_trail_iter_destroy(&it);
    uint64_t end = has_to ? (to < h.size ? to : h.size) : h.size; /* what must be there */
    if (v.ok && v.ck.next < end)
        s_fail_at(&v, v.ck.next,
                  "record %" PRIu64 " and after are missing: the trail's head says %" PRIu64
                  " records (truncated or deleted)",
                  v.ck.next, h.size);
    if (v.ok && !has_to && v.ck.next > h.size)
        s_fail_at(&v, h.size,
                  "records beyond the trail's head (%" PRIu64 " records): the head was "
                  "rewritten",
                  h.size);
    if (v.ok && !has_to && next_cp != UINT64_MAX)
        s_fail_at(&v, v.ck.next,
                  "a checkpoint signs %" PRIu64 " records but the trail holds %" PRIu64
                  " (truncated)",
                  next_cp, v.ck.next);
    if (v.ok && from == first && first > 0 && !has_to && last_prune != first)
        s_fail_at(&v, first,
                  "the trail starts at record %" PRIu64 " but its last AUDIT_PRUNED record says "
                  "%s: the retention anchor was moved",
                  first, last_prune == UINT64_MAX ? "nothing was pruned" : "another place");
    if (v.ok && !has_to && sodium_memcmp(v.ck.chain, h.chain, GBX_MERKLE_HASH) != 0)
        s_fail_at(&v, v.ck.next ? v.ck.next - 1 : 0,
                  "the trail's head does not match its last record");
    if (v.ok && old && old->size > v.ck.next)
        s_fail_at(&v, v.ck.next,
                  "the earlier checkpoint signs %" PRIu64 " records; the trail holds %" PRIu64
                  " (truncated)",
                  old->size, v.ck.next);
    v.to = v.ck.next;
    return s_report(t, &v);
}

/*  One line of an export, parsed; NULL after s_fail_at. */
static json_t *s_export_line(s_verdict_t *v, const char *line, size_t len, size_t lineno)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "type"))) {
        s_fail_at(v, v->ck.next, "line %zu of the export is not an export line", lineno);
        json_decref(o);
        return NULL;
    }
    return o;
}

static int s_unhex_j(json_t *s, uint8_t *out, size_t len)
{
    const char *x = json_string_value(s);
    return x && gbx_unhex(x, strlen(x), out, len) == GBX_OK;
}

static int s_verify_export(gbx_audit_tool_t *t, const char *path, const gbx_checkpoint_t *old)
{
    size_t len = 0;
    char *text = s_slurp(path, &len);
    if (!text) {
        fprintf(stderr, "gbx-audit: %s: %s\n", path, strerror(errno));
        return GBX_AUDIT_USAGE;
    }
    s_verdict_t v = {.what = path, .ok = 1};
    int started = 0, declared_to = 0;
    uint64_t to = 0;
    size_t lineno = 0;
    char why[512];
    for (char *p = text; v.ok && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        lineno++;
        json_t *o = l ? s_export_line(&v, p, l, lineno) : NULL;
        p += l + 1;
        if (!o)
            continue;
        const char *type = json_string_value(json_object_get(o, "type"));
        if (lineno == 1 && strcmp(type, "export") != 0) {
            s_fail_at(&v, 0, "line 1 is not the export's header");
        } else if (strcmp(type, "export") == 0) {
            const char *node = json_string_value(json_object_get(o, "node"));
            if (lineno != 1 || !node || strcmp(node, t->node) != 0)
                s_fail_at(&v, 0, "the export's header names another node, or comes again");
            v.from = (uint64_t)json_integer_value(json_object_get(o, "from"));
            to = (uint64_t)json_integer_value(json_object_get(o, "to"));
            declared_to = 1;
        } else if (strcmp(type, "anchor") == 0) {
            gbx_hash_t chain;
            gbx_merkle_peaks_t pk;
            gbx_merkle_peaks_init(&pk);
            json_t *peaks = json_object_get(o, "peaks");
            uint64_t first = (uint64_t)json_integer_value(json_object_get(o, "first"));
            pk.size = first;
            pk.npeaks = (unsigned)__builtin_popcountll(first);
            int good = !started && s_unhex_j(json_object_get(o, "chain"), chain, sizeof chain) &&
                       json_is_array(peaks) && json_array_size(peaks) == pk.npeaks &&
                       first == v.from;
            for (unsigned i = 0; good && i < pk.npeaks; i++)
                good = s_unhex_j(json_array_get(peaks, i), pk.peak[i], GBX_MERKLE_HASH);
            if (!good)
                s_fail_at(&v, first, "the export's anchor line is malformed");
            gbx_trail_check_init(&v.ck, first, chain, &pk);
            started = 1;
            if (old && old->size == first && first > 0)
                s_check_old(t, &v, old);
        } else if (strcmp(type, "record") == 0) {
            const char *sealed = json_string_value(json_object_get(o, "sealed"));
            if (!started)
                s_fail_at(&v, 0, "a record comes before the export's anchor");
            else if (!sealed)
                s_fail_at(&v, v.ck.next, "line %zu: a record line without \"sealed\"", lineno);
            else if (gbx_trail_check_record(&v.ck, (const uint8_t *)sealed,
                                            json_string_length(json_object_get(o, "sealed")), why,
                                            sizeof why) != GBX_OK)
                s_fail_at(&v, v.ck.next, "%s (export line %zu)", why, lineno);
            else if (old && old->size == v.ck.next)
                s_check_old(t, &v, old);
        } else if (strcmp(type, "checkpoint") == 0) {
            const char *cpt = json_string_value(json_object_get(o, "text"));
            gbx_checkpoint_t cp;
            if (!started || !cpt || gbx_checkpoint_parse(cpt, strlen(cpt), &cp) != GBX_OK)
                s_fail_at(&v, v.ck.next, "line %zu: a malformed checkpoint", lineno);
            else if (cp.size != v.ck.next)
                s_fail_at(&v, v.ck.next,
                          "line %zu: a checkpoint of %" PRIu64 " records after record %" PRIu64
                          " (records missing or moved)",
                          lineno, cp.size, v.ck.next ? v.ck.next - 1 : 0);
            else
                s_check_cp(t, &v, &cp, old);
        } else {
            s_fail_at(&v, v.ck.next, "line %zu: unknown line type %s", lineno, type);
        }
        json_decref(o);
    }
    free(text);
    v.to = v.ck.next;
    if (v.ok && (!declared_to || !started))
        s_fail_at(&v, 0, "not an export: no header or anchor line");
    if (v.ok && v.ck.next != to)
        s_fail_at(&v, v.ck.next,
                  "the export declares records up to %" PRIu64 " but ends at %" PRIu64
                  " (truncated)",
                  to, v.ck.next);
    if (v.ok && old && old->size > v.ck.next)
        s_fail_at(&v, v.ck.next, "the export ends before the earlier checkpoint's %" PRIu64,
                  old->size);
    /* an export is for someone who holds nothing else: every record in it
       must be signed by a checkpoint in it (the anchor's too) */
    if (v.ok && v.covered < v.ck.next)
        s_fail_at(&v, v.covered,
                  "records %" PRIu64 "..%" PRIu64 " of the export are signed by no checkpoint in "
                  "it",
                  v.covered, v.ck.next - 1);
    return s_report(t, &v);
}

static int s_load_cp(const char *path, gbx_checkpoint_t *cp)
{
    size_t len = 0;
    char *text = s_slurp(path, &len);
    if (!text) {
        fprintf(stderr, "gbx-audit: %s: %s\n", path, strerror(errno));
        return GBX_AUDIT_USAGE;
    }
    gbx_err_t rc = gbx_checkpoint_parse(text, len, cp);
    free(text);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-audit: %s: not a checkpoint (gbx-checkpoint v1 ...)\n", path);
        return GBX_AUDIT_USAGE;
    }
    return GBX_AUDIT_OK;
}

static int s_cmd_verify(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {{"from", required_argument, 0, 'F'},
                                          {"to", required_argument, 0, 'T'},
                                          {"export", required_argument, 0, 'e'},
                                          {"checkpoint", required_argument, 0, 'k'},
                                          {0, 0, 0, 0}};
    uint64_t from = 0, to = 0;
    int has_to = 0, c;
    const char *export = NULL, *old_path = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if ((c == 'F' && !s_u64(optarg, &from)) || (c == 'T' && !(has_to = s_u64(optarg, &to))) ||
            c == '?') {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
        if (c == 'e')
            export = optarg;
        if (c == 'k')
            old_path = optarg;
    }
    if (optind != argc || (export && (from || has_to))) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    gbx_checkpoint_t old;
    if (old_path && s_load_cp(old_path, &old) != GBX_AUDIT_OK)
        return GBX_AUDIT_USAGE;
    return export ? s_verify_export(t, export, old_path ? &old : NULL)
                  : s_verify_store(t, from, to, has_to, old_path ? &old : NULL);
}

/* ----------------------------------------------------------------- proofs */

/*  The latest stored checkpoint (or the one of SIZE records). */
static int s_pick_cp(gbx_audit_tool_t *t, uint64_t size, gbx_checkpoint_t *cp)
{
    if (size)
        return gbx_trail_checkpoint(t->store, size, cp) == GBX_OK;
    gbx_trail_head_t h;
    gbx_trail_head(gbx_store_trail(t->store), &h);
    return h.checkpoint && gbx_trail_checkpoint(t->store, h.checkpoint, cp) == GBX_OK;
}

/*  The index of the first record of message ID (hex) with EVENT (NULL: any). */
static int s_find_message(gbx_audit_tool_t *t, const char *id, const char *event, uint64_t *index)
{
    gbx_trail_iter_t *it = NULL;
    if (gbx_trail_iter_new(t->store, 0, &it) != GBX_OK)
        return 0;
    int found = 0;
    const uint8_t *rec;
    size_t vlen;
    while (!found && gbx_trail_iter_next(it, &rec, &vlen)) {
        size_t fl = 0, el = 0;
        const char *v = (const char *)rec;
        const char *f = gbx_audit_field(v, vlen, "message_id", &fl);
        const char *e = gbx_audit_field(v, vlen, "event", &el);
        gbx_trail_rec_t r;
        if (f && fl == strlen(id) && memcmp(f, id, fl) == 0 &&
            (!event || (e && el == strlen(event) && memcmp(e, event, el) == 0)) &&
            gbx_trail_parse(rec, vlen, &r) == GBX_OK) {
            *index = r.index;
            found = 1;
        }
    }
    gbx_trail_iter_destroy(&it);
    return found;
}

static int s_cmd_prove(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {
        {"index", required_argument, 0, 'i'},  {"message", required_argument, 0, 'm'},
        {"event", required_argument, 0, 'e'},  {"size", required_argument, 0, 's'},
        {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    uint64_t index = 0, size = 0;
    int has_index = 0, c;
    const char *msg = NULL, *event = NULL, *out = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", longs, NULL)) != -1) {
        if ((c == 'i' && !(has_index = s_u64(optarg, &index))) ||
            (c == 's' && !s_u64(optarg, &size)) || c == '?') {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
        if (c == 'm')
            msg = optarg;
        if (c == 'e')
            event = optarg;
        if (c == 'o')
            out = optarg;
    }
    if (optind != argc || has_index == !!msg) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    int rc = gbx_audit_tool_store(t);
    if (rc != GBX_AUDIT_OK)
        return rc;
    if (msg && !s_find_message(t, msg, event, &index)) {
        fprintf(stderr, "gbx-audit: prove: no record of message %s%s%s\n", msg,
                event ? " with event " : "", event ? event : "");
        return GBX_AUDIT_FAIL;
    }
    gbx_checkpoint_t cp;
    if (!s_pick_cp(t, size, &cp) || cp.size <= index) {
        fprintf(stderr, "gbx-audit: prove: no checkpoint covers record %" PRIu64 " yet%s\n", index,
                size ? " (--size)" : " (wait for the next one)");
        return GBX_AUDIT_FAIL;
    }
    uint8_t *val = NULL;
    size_t vlen = 0, plen = 0;
    gbx_hash_t path[GBX_MERKLE_MAX_DEPTH];
    gbx_err_t grc = gbx_trail_get(t->store, index, &val, &vlen);
    if (grc == GBX_OK && val)
        grc = gbx_trail_prove(t->store, index, cp.size, path, &plen);
    if (grc != GBX_OK || !val) {
        free(val);
        fprintf(stderr, "gbx-audit: prove: record %" PRIu64 ": %s\n", index,
                val ? gbx_err_name(grc) : "not in the store (pruned?)");
        return GBX_AUDIT_FAIL;
    }
    char cptext[GBX_CHECKPOINT_TEXT_MAX];
    gbx_checkpoint_format(&cp, cptext, sizeof cptext);
    json_t *p = json_array();
    for (size_t i = 0; i < plen; i++)
        json_array_append_new(p, s_hexj(path[i], GBX_MERKLE_HASH));
    json_t *o =
        json_pack("{s:s, s:i, s:s, s:I, s:s%, s:o, s:s}", "type", "gbx-audit-inclusion-proof", "v",
                  1, "node", t->node, "index", (json_int_t)index, "record", (const char *)val, vlen,
                  "path", p, "checkpoint", cptext);
    free(val);
    return s_write_json(out, o);
}

static int s_cmd_consistency(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {{"old", required_argument, 0, 'k'},
                                          {"size", required_argument, 0, 's'},
                                          {"output", required_argument, 0, 'o'},
                                          {0, 0, 0, 0}};
    uint64_t size = 0;
    const char *old_path = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", longs, NULL)) != -1) {
        if ((c == 's' && !s_u64(optarg, &size)) || c == '?') {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
        if (c == 'k')
            old_path = optarg;
        if (c == 'o')
            out = optarg;
    }
    gbx_checkpoint_t old, cp;
    if (optind != argc || !old_path) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    int rc = s_load_cp(old_path, &old);
    if (rc == GBX_AUDIT_OK)
        rc = gbx_audit_tool_store(t);
    if (rc != GBX_AUDIT_OK)
        return rc;
    if (!s_pick_cp(t, size, &cp) || cp.size < old.size || old.size == 0) {
        fprintf(stderr, "gbx-audit: consistency: no checkpoint of at least %" PRIu64 " records\n",
                old.size);
        return GBX_AUDIT_FAIL;
    }
    gbx_hash_t proof[GBX_MERKLE_MAX_DEPTH + 1];
    size_t plen = 0;
    gbx_err_t grc = gbx_trail_consistency(t->store, old.size, cp.size, proof, &plen);
    if (grc != GBX_OK) {
        fprintf(stderr, "gbx-audit: consistency: %s\n", gbx_err_name(grc));
        return GBX_AUDIT_FAIL;
    }
    char a[GBX_CHECKPOINT_TEXT_MAX], b[GBX_CHECKPOINT_TEXT_MAX];
    gbx_checkpoint_format(&old, a, sizeof a);
    gbx_checkpoint_format(&cp, b, sizeof b);
    json_t *p = json_array();
    for (size_t i = 0; i < plen; i++)
        json_array_append_new(p, s_hexj(proof[i], GBX_MERKLE_HASH));
    json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:o}", "type", "gbx-audit-consistency-proof",
                          "v", 1, "node", t->node, "old", a, "new", b, "proof", p);
    return s_write_json(out, o);
}

/*  Parses checkpoint text field KEY of O and checks its signature. */
static const char *s_proof_cp(const gbx_audit_tool_t *t, json_t *o, const char *key,
                              gbx_checkpoint_t *cp)
{
    const char *text = json_string_value(json_object_get(o, key));
    if (!text || gbx_checkpoint_parse(text, strlen(text), cp) != GBX_OK)
        return "the proof's checkpoint is malformed";
    if (strcmp(cp->node, t->node) != 0)
        return "the checkpoint is another node's";
    if (gbx_checkpoint_verify(cp, t->node_pk) != GBX_OK)
        return "the checkpoint's signature is not the node's (forged)";
    return NULL;
}

static int s_cmd_check_proof(gbx_audit_tool_t *t, int argc, char **argv)
{
    if (argc != 2) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    size_t len = 0;
    char *text = s_slurp(argv[1], &len);
    json_error_t jerr;
    json_t *o = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    free(text);
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *why = NULL;
    gbx_checkpoint_t cp, old;
    gbx_hash_t hashes[GBX_MERKLE_MAX_DEPTH + 1];
    json_t *arr = NULL;
    size_t n = 0;
    if (!o || !type) {
        fprintf(stderr, "gbx-audit: %s: not a proof\n", argv[1]);
        json_decref(o);
        return GBX_AUDIT_USAGE;
    }
    int inclusion = strcmp(type, "gbx-audit-inclusion-proof") == 0;
    arr = json_object_get(o, inclusion ? "path" : "proof");
    if (!inclusion && strcmp(type, "gbx-audit-consistency-proof") != 0)
        why = "unknown proof type";
    else if (!json_is_array(arr) || json_array_size(arr) > GBX_MERKLE_MAX_DEPTH + !inclusion)
        why = "the proof's hashes are malformed";
    for (size_t i = 0; !why && i < json_array_size(arr); i++, n++)
        if (!s_unhex_j(json_array_get(arr, i), hashes[i], GBX_MERKLE_HASH))
            why = "the proof's hashes are malformed";
    if (!why)
        why = s_proof_cp(t, o, inclusion ? "checkpoint" : "new", &cp);
    gbx_trail_rec_t rec;
    const char *sealed = json_string_value(json_object_get(o, "record"));
    if (!why && inclusion) {
        gbx_hash_t root;
        if (!sealed ||
            gbx_trail_parse((const uint8_t *)sealed,
                            json_string_length(json_object_get(o, "record")), &rec) != GBX_OK)
            why = "the record is not a sealed record";
        else if (gbx_merkle_root_from_path(rec.leaf, rec.index, cp.size, hashes, n, root) !=
                     GBX_OK ||
                 sodium_memcmp(root, cp.root, GBX_MERKLE_HASH) != 0)
            why = "the record is not in the checkpoint's tree (the record or the path was "
                  "changed)";
    } else if (!why) {
        why = s_proof_cp(t, o, "old", &old);
        if (!why &&
            gbx_merkle_check_consistency(old.size, old.root, cp.size, cp.root, hashes, n) != GBX_OK)
            why = "the newer tree does not extend the older: history was rewritten";
    }
    if (t->json) {
        json_t *r = json_pack("{s:b, s:s}", "ok", !why, "type", type);
        if (why)
            json_object_set_new(r, "error", json_string(why));
        else if (inclusion)
            json_object_set_new(r, "index", json_integer((json_int_t)rec.index));
        char *s = json_dumps(r, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(r);
    } else if (why) {
        printf("gbx-audit: check-proof: FAILED: %s\n", why);
    } else if (inclusion) {
        printf("gbx-audit: check-proof: OK: record %" PRIu64 " is in node %s's trail of %" PRIu64
               " records signed at %" PRIu64 " ms\n%.*s",
               rec.index, t->node, cp.size, cp.at_ms, (int)rec.text_len, rec.text);
    } else {
        printf("gbx-audit: check-proof: OK: node %s's trail of %" PRIu64
               " records extends its trail of %" PRIu64 "\n",
               t->node, cp.size, old.size);
    }
    json_decref(o);
    return why ? GBX_AUDIT_FAIL : GBX_AUDIT_OK;
}

/* ------------------------------------------------------------ checkpoints */

/*  Lists the stored checkpoints, oldest first: size, time, countersigners
    and the text form (--json: one object per line). */
static int s_cmd_checkpoints(gbx_audit_tool_t *t, int argc, char **argv)
{
    if (argc != 1) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    int rc = gbx_audit_tool_store(t);
    if (rc != GBX_AUDIT_OK)
        return rc;
    gbx_checkpoint_t cp;
    uint64_t n = 0;
    for (uint64_t at = 0; gbx_trail_checkpoint_after(t->store, at, &cp) == GBX_OK; at = cp.size) {
        char text[GBX_CHECKPOINT_TEXT_MAX];
        if (gbx_checkpoint_format(&cp, text, sizeof text) != GBX_OK)
            continue;
        n++;
        if (t->json) {
            json_t *o =
                json_pack("{s:I, s:I, s:i, s:s}", "size", (json_int_t)cp.size, "at_ms",
                          (json_int_t)cp.at_ms, "cosignatures", (int)cp.ncosig, "text", text);
            char *j = json_dumps(o, JSON_COMPACT);
            printf("%s\n", j ? j : "{}");
            free(j);
            json_decref(o);
        } else {
            time_t sec = (time_t)(cp.at_ms / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&sec, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("%12" PRIu64 "  %s  %u cosig  %s\n", cp.size, when, cp.ncosig, text);
        }
    }
    return n ? GBX_AUDIT_OK : GBX_AUDIT_FAIL;
}

/* ----------------------------------------------------------------- cosign */

static int s_cmd_cosign(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {{"key", required_argument, 0, 'k'}, {0, 0, 0, 0}};
    const char *key = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'k')
            key = optarg;
        else {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
    }
    if (!key || argc - optind > 1) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    const char *src = optind < argc ? argv[optind] : "-";
    gbx_checkpoint_t cp;
    size_t len = 0;
    char *text = strncmp(src, "gbx-checkpoint ", 15) == 0 ? strdup(src) : s_slurp(src, &len);
    if (!text || gbx_checkpoint_parse(text, strlen(text), &cp) != GBX_OK) {
        fprintf(stderr, "gbx-audit: cosign: not a checkpoint\n");
        free(text);
        return GBX_AUDIT_USAGE;
    }
    free(text);
    if (gbx_checkpoint_verify(&cp, t->node_pk) != GBX_OK || strcmp(cp.node, t->node) != 0) {
        fprintf(stderr, "gbx-audit: cosign: the checkpoint is not signed by node %s: refused\n",
                t->node);
        return GBX_AUDIT_FAIL;
    }
    gbx_identity_t *peer = NULL;
    gbx_err_t rc = gbx_identity_load(key, &peer);
    if (rc == GBX_OK)
        rc = gbx_checkpoint_cosign(&cp, gbx_identity_public(peer)->id, gbx_identity_sign_sk(peer));
    gbx_identity_destroy(&peer);
    char out[GBX_CHECKPOINT_TEXT_MAX];
    if (rc == GBX_OK)
        rc = gbx_checkpoint_format(&cp, out, sizeof out);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-audit: cosign: %s: %s\n", key, gbx_err_name(rc));
        return GBX_AUDIT_USAGE;
    }
    printf("%s\n", out);
    return GBX_AUDIT_OK;
}

/* ------------------------------------------------------------------- tail */

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/*  Prints one sealed record (or checkpoint text) as one line. */
static void s_print_frame(const gbx_audit_tool_t *t, const char *v, size_t len)
{
    if (t->json) {
        json_t *o = json_object();
        if (len > 15 && memcmp(v, "gbx-checkpoint ", 15) == 0) {
            json_object_set_new(o, "type", json_string("checkpoint"));
            json_object_set_new(o, "text", json_stringn(v, len));
        } else {
            json_object_set_new(o, "type", json_string("record"));
            json_object_set_new(o, "sealed", json_stringn(v, len));
        }
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        for (size_t i = 0; i < len; i++) {
            char ch = v[i];
            if (ch == '\n')
                ch = i + 1 == len ? '\n' : ' ';
            else if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7e)
                ch = '?';
            putchar(ch);
        }
        if (len == 0 || v[len - 1] != '\n')
            putchar('\n');
    }
    fflush(stdout);
}

/*  Follows the live feed: operator AS (key file KEY) subscribes. */
static int s_follow(gbx_audit_tool_t *t, const char *as, const char *key, uint64_t count)
{
    if (!t->cfg) {
        fprintf(stderr, "gbx-audit: tail -f needs -c CONFIG (the feed's socket and node key)\n");
        return GBX_AUDIT_USAGE;
    }
    char *keypath = NULL;
    if (!key && as) {
        const char *path = gbx_config_path(t->cfg), *slash = strrchr(path, '/');
        if (asprintf(&keypath, "%.*s/keys/%s.secret", slash ? (int)(slash - path) : 1,
                     slash ? path : ".", as) < 0)
            return GBX_AUDIT_USAGE;
        key = keypath;
    }
    if (!key) {
        fprintf(stderr, "gbx-audit: tail -f: --as OPERATOR or --key FILE\n");
        return GBX_AUDIT_USAGE;
    }
    gbx_identity_t *me = NULL;
    gbx_err_t rc = gbx_identity_load(key, &me);
    if (rc != GBX_OK) {
        fprintf(stderr, "gbx-audit: %s: %s\n", key, gbx_err_name(rc));
        free(keypath);
        return GBX_AUDIT_USAGE;
    }
    free(keypath);
    const gbx_node_t *n = gbx_registry_node(gbx_config_registry(t->cfg), t->node);
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s", gbx_config_str(t->cfg, GBX_SETTING_LISTEN_AUDIT_FEED));
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    int zero = 0, code = GBX_AUDIT_OK;
    if (!sock || zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, n->pub.curve_pk, GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, gbx_identity_public(me)->curve_pk,
                       GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, gbx_identity_curve_sk(me), GBX_KEY_BYTES) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0) || zmq_connect(sock, ep) != 0) {
        fprintf(stderr, "gbx-audit: %s: %s\n", ep, zmq_strerror(errno));
        code = GBX_AUDIT_USAGE;
    }
    gbx_identity_destroy(&me);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* records arrive in order; a gap in i= means this subscriber fell behind */
    uint64_t seen = 0, expect = UINT64_MAX;
    while (code == GBX_AUDIT_OK && !s_stop && (count == 0 || seen < count)) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 200) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) >= 0) {
            const char *v = zmq_msg_data(&m);
            size_t len = zmq_msg_size(&m);
            gbx_trail_rec_t r;
            if (gbx_trail_parse((const uint8_t *)v, len, &r) == GBX_OK) {
                if (expect != UINT64_MAX && r.index != expect)
                    fprintf(stderr, "gbx-audit: tail: records %" PRIu64 "..%" PRIu64 " missed\n",
                            expect, r.index - 1);
                expect = r.index + 1;
                seen++;
            }
            s_print_frame(t, v, len);
        }
        zmq_msg_close(&m);
    }
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return code;
}

static int s_cmd_tail(gbx_audit_tool_t *t, int argc, char **argv)
{
    static const struct option longs[] = {{"follow", no_argument, 0, 'f'},
                                          {"count", required_argument, 0, 'C'},
                                          {"as", required_argument, 0, 'a'},
                                          {"key", required_argument, 0, 'k'},
                                          {0, 0, 0, 0}};
    uint64_t n = 10, count = 0;
    int follow = 0, c;
    const char *as = getenv("GBX_OPERATOR"), *key = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "fn:", longs, NULL)) != -1) {
        if ((c == 'n' && !s_u64(optarg, &n)) || (c == 'C' && !s_u64(optarg, &count)) || c == '?') {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
        if (c == 'f')
            follow = 1;
        if (c == 'a')
            as = optarg;
        if (c == 'k')
            key = optarg;
    }
    if (optind != argc) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    if (n > 0) { /* the last N from the store */
        int rc = gbx_audit_tool_store(t);
        if (rc != GBX_AUDIT_OK)
            return rc;
        gbx_trail_head_t h;
        gbx_trail_head(gbx_store_trail(t->store), &h);
        uint64_t from = h.size > n ? h.size - n : 0;
        if (from < h.first)
            from = h.first;
        gbx_trail_iter_t *it = NULL;
        const uint8_t *v;
        size_t vlen;
        if (gbx_trail_iter_new(t->store, from, &it) == GBX_OK)
            while (gbx_trail_iter_next(it, &v, &vlen))
                s_print_frame(t, (const char *)v, vlen);
        gbx_trail_iter_destroy(&it);
        gbx_store_destroy(&t->store); /* the feed goes on from the live node */
    }
    return follow ? s_follow(t, as, key, count) : GBX_AUDIT_OK;
}

/* ------------------------------------------------------------------- main */

typedef struct {
    const char *name;
    int (*fn)(gbx_audit_tool_t *t, int argc, char **argv);
} s_cmd_t;

static const s_cmd_t s_cmds[] = {
    {"verify", s_cmd_verify},           {"show", gbx_audit_cmd_show},
    {"query", gbx_audit_cmd_query},     {"prove", s_cmd_prove},
    {"consistency", s_cmd_consistency}, {"check-proof", s_cmd_check_proof},
    {"export", gbx_audit_cmd_export},   {"tail", s_cmd_tail},
    {"cosign", s_cmd_cosign},           {"checkpoints", s_cmd_checkpoints},
};

int main(int argc, char **argv)
{
    const char *cfg_arg = NULL, *data = NULL, *node_key = NULL;
    gbx_audit_tool_t t = {.json = 0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc)
            cfg_arg = argv[++i];
        else if (strcmp(a, "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(a, "--node-key") == 0 && i + 1 < argc)
            node_key = argv[++i];
        else if (strcmp(a, "--json") == 0)
            t.json = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(s_usage, stdout);
            return GBX_AUDIT_OK;
        } else {
            fputs(s_usage, stderr);
            return GBX_AUDIT_USAGE;
        }
    }
    const s_cmd_t *cmd = NULL;
    for (size_t k = 0; i < argc && k < sizeof s_cmds / sizeof s_cmds[0]; k++)
        if (strcmp(argv[i], s_cmds[k].name) == 0)
            cmd = &s_cmds[k];
    if (!cmd || (data && cfg_arg) || (data && !node_key)) {
        fputs(s_usage, stderr);
        return GBX_AUDIT_USAGE;
    }
    if (sodium_init() < 0)
        return GBX_AUDIT_USAGE;
    int rc;
    char *cfg_path = NULL;
    if (data) {
        t.data = data;
        rc = s_node_key(&t, node_key);
    } else {
        cfg_path = cfg_arg ? strdup(cfg_arg) : gbx_config_default_path();
        rc = cfg_path ? s_from_config(&t, cfg_path) : GBX_AUDIT_USAGE;
        if (rc == GBX_AUDIT_OK && node_key) /* an explicit key wins over the registry's */
            rc = s_node_key(&t, node_key);
    }
    if (rc == GBX_AUDIT_OK)
        rc = cmd->fn(&t, argc - i, argv + i);
    gbx_store_destroy(&t.store);
    gbx_config_destroy(&t.cfg);
    free(cfg_path);
    return rc;
}
