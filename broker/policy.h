/*  gbx_policy: the per-data-class policy (issue 4; the domain model is
    shared/domain/data-classes.md, the file format docs/policy.md).

    A policy is one YAML file, parsed with libfyaml like the config, loaded
    whole and then only read: decisions are safe from many threads. A reload
    loads a new gbx_policy_t beside the old one and swaps the pointer; every
    message is decided by exactly one loaded version, named by its hash
    (BLAKE2b-256 of the file's bytes).

      version: "2026-11-22.1"            # the operator's name for it
      groups:                            # named groups of agencies
        gd-gov: [gd.tax, gd.amr, gd.edu]
      routes:                            # route references and their windows
        - ref: GBA-SC-2024-0193          # legal_route_ref as senders write it
          route: GBA_STANDARD_CONTRACT
          valid_from: 2024-11-01         # dates in UTC+8 (HK and Guangdong)
          valid_until: 2027-10-31        # inclusive
          exporters: [gd.tax, gd-gov]    # optional: who may rely on it
      rules:
        - id: paycert-gd-hk              # unique; [A-Za-z0-9._:-], <= 64
          version: 3                     # >= 1 (default 1)
          enabled: true                  # default true
          effective_from: 2024-11-01     # optional, UTC+8 date, inclusive
          effective_until: 2027-10-31    # optional, inclusive
          match:                         # every key optional; a list = any of
            direction: [GD_TO_HK]        # HK_TO_GD GD_TO_HK WITHIN_HK WITHIN_GD
            requester: [hk.kiosk]        # agencies or group names
            provider: [gd.tax]
            service: [GD-SI-PAYCERT]
            service_version: [1]
            kind: [REQUEST, RESPONSE]    # REQUEST RESPONSE VERIFY
            class: [SENSITIVE_PERSONAL]  # PUBLIC .. CORE
            marking: [UNCLASSIFIED]      # UNCLASSIFIED .. TOP_SECRET
            purpose: [SI-CERT]           # purpose codes
            exporter: [gd-gov]           # from_agency: agencies or groups
            route: [GBA_STANDARD_CONTRACT]  # the legal route it claims
          require:                       # every key optional
            routes: [GBA_STANDARD_CONTRACT]   # legal_route must be one
            route_ref_valid: true        # ref declared for that route, valid on
                                         # the message's created date and on
                                         # the decision's, and the exporter may
                                         # rely on it
            consent: SEPARATE_CONSENT    # consent_ref given, consent_type >= it
            impact_assessment: true      # impact_assessment_ref given
            end_user_ref: true
            agreement_ref: true
            release_authority: true
            max_payload: 1MiB            # payload_length <= it
            max_ttl: 1d                  # expires - created <= it
            recipient_in: [HK, GBA]      # HK, GBA (the nine cities), GD, or
                                         # city names: where to_agency sits
          volume:                        # optional
            subjects_per_year: 100000    # sum of subject_count per exporter +
                                         # route (+ class with per_class: true)
                                         # per calendar year in UTC+8
            messages_per_day: 50000      # per exporter + route (+ class)
            per_class: false
            across_routes: false         # true: count the exporter's messages
                                         # on every route, not this one only
            at_cap: DENY                 # DENY or HOLD when a message would
                                         # cross a cap
          outcome: ALLOW                 # ALLOW, DENY or HOLD (a DENY rule
                                         # has no require or volume)
          reason: "why, for DENY"        # optional text

    Direction is the message's own crossing: the jurisdiction of
    from_agency to that of to_agency (registry). The requester is
    from_agency for REQUEST and VERIFY, to_agency for RESPONSE; the provider
    the other one. The exporter (volume counters) is from_agency.

    Decision, in this order (gbx_policy_decide):
      1. Built in, whatever a rule says (rule ids "builtin:..."):
         the service (code, version) must be in the registry and its
         provider must be the message's provider; a message labelled lower
         than its service's class is DENIED (a label never dodges a rule);
         CORE is DENIED; a marking of CONFIDENTIAL or above is DENIED;
         RESTRICTED needs release_authority_ref and is at least HOLD.
      2. Rules that are enabled, effective on the decision date and match.
         None: POLICY_NO_MATCH (no match = deny).
      3. A matching DENY rule denies (deny beats allow): POLICY_DENIED.
      4. A matching ALLOW or HOLD rule applies when every requirement holds;
         then its volume caps: a message that would take a counter past its
         cap gets at_cap instead of the rule's outcome.
      5. No rule applies: POLICY_DENIED, explained by the first requirement
         that failed. Else the most restrictive outcome of the rules that
         apply: DENY > HOLD > ALLOW; the deciding rule is the first (in
         file order) with that outcome.
    The decision names the rule, its version and the policy hash, and says
    why in one line; it lists the counter increments to write in the same
    batch as the message when the outcome is ALLOW or HOLD.

    Counters are keyed by text (gbx_policy_count_t.key):
      "s/<year>/<exporter>/<route>[/<class>]"   subjects per year
      "m/<yyyy-mm-dd>/<exporter>/<route>[/<class>]"   messages per day
    with <route> "ALL_ROUTES" for the caps that count every route. Every
    accepted message with subjects adds them to its four subject counters
    (per route and on every route, with and without its class), whatever
    the policy says, so a cap that a reload adds sees the year so far; the
    message counters are kept while some rule caps messages.
    and read through a callback (the writer reads them through its batch,
    so messages earlier in the same group count). */
#ifndef GBX_POLICY_H
#define GBX_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "gbx/envelope.h"
#include "gbx/err.h"
#include "registry.h"

#define GBX_POLICY_ID_MAX     64  /* bytes of a rule id */
#define GBX_POLICY_WHY_MAX    255 /* bytes of a decision's explanation */
#define GBX_POLICY_COUNTS_MAX 8   /* counter increments of one decision */
#define GBX_POLICY_KEY_MAX    191 /* bytes of a counter key */

typedef struct gbx_policy gbx_policy_t;

typedef enum {
    GBX_OUTCOME_DENY = 0,
    GBX_OUTCOME_ALLOW = 1,
    GBX_OUTCOME_HOLD = 2,
} gbx_outcome_t;

typedef struct {
    char key[GBX_POLICY_KEY_MAX + 1];
    uint64_t add;
} gbx_policy_count_t;

typedef struct {
    gbx_outcome_t outcome;
    gbx_err_t reason;                    /* GBX_OK (ALLOW, HOLD), POLICY_DENIED,
                                            POLICY_NO_MATCH */
    char rule_id[GBX_POLICY_ID_MAX + 1]; /* the deciding rule; "" for no match */
    uint32_t rule_version;               /* 0 for built-in decisions */
    char why[GBX_POLICY_WHY_MAX + 1];    /* one line, for humans and the audit */
    uint8_t policy_hash[GBX_HASH_BYTES];
    size_t n_counts; /* to add when the message is stored */
    gbx_policy_count_t counts[GBX_POLICY_COUNTS_MAX];
} gbx_decision_t;

/*  Reads counter KEY into *VALUE (0 when absent). */
typedef gbx_err_t (*gbx_policy_counter_fn)(void *arg, const char *key, uint64_t *value);

/*  Loads the policy file PATH, checking every agency, group and service it
    names against REG. Errors: GBX_E_IO (unreadable), GBX_E_MALFORMED (not
    YAML, or not a mapping at the top), GBX_E_FIELD_INVALID (anything else
    wrong), GBX_E_NOMEM, GBX_E_ARG; ERR (ERRLEN bytes, may be NULL) gets
    "PATH:LINE:COL: SETTING: what is wrong". */
gbx_err_t gbx_policy_load(const char *path, const gbx_registry_t *reg, gbx_policy_t **out,
                          char *err, size_t errlen);
/*  The same from TEXT (LEN bytes); NAME stands for the path in errors. */
gbx_err_t gbx_policy_parse(const char *name, const char *text, size_t len,
                           const gbx_registry_t *reg, gbx_policy_t **out, char *err, size_t errlen);
void gbx_policy_destroy(gbx_policy_t **self_p);

/*  The file's version: text; its hash; the number of rules. */
const char *gbx_policy_version(const gbx_policy_t *self);
const uint8_t *gbx_policy_hash(const gbx_policy_t *self);
size_t gbx_policy_rule_count(const gbx_policy_t *self);

/*  Decides header H at NOW_MS (Unix ms) against REG (the registry the
    policy was loaded with). COUNTER (may be NULL: every counter 0) reads
    volume counters. GBX_OK with *OUT filled, whatever the outcome; an error
    (GBX_E_ARG, or what COUNTER returned) only when no decision was made. */
gbx_err_t gbx_policy_decide(const gbx_policy_t *self, const gbx_registry_t *reg,
                            const gbx_header_t *h, uint64_t now_ms, gbx_policy_counter_fn counter,
                            void *counter_arg, gbx_decision_t *out);

/*  The sample policy shipped with the project (broker/default-policy.yaml,
    written for the demo registry of gbx_config_write_default, which writes
    it beside a new config), compiled in. */
extern const char gbx_policy_sample[];
extern const size_t gbx_policy_sample_len;

/*  "ALLOW", "DENY", "HOLD". */
const char *gbx_outcome_name(gbx_outcome_t o);

#endif
