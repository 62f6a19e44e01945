/*  tp_cases: the decision-case table of the policy engine (tp_cases.h). */
#include "tp_cases.h"

#include <string.h>

/* Enums, short. */
#define REQ        GBX__V1__MESSAGE_KIND__REQUEST
#define RESP       GBX__V1__MESSAGE_KIND__RESPONSE
#define VERIFY     GBX__V1__MESSAGE_KIND__VERIFY
#define C_PUBLIC   GBX__V1__DATA_CLASS__PUBLIC
#define C_INTERNAL GBX__V1__DATA_CLASS__INTERNAL
#define C_PERSONAL GBX__V1__DATA_CLASS__PERSONAL
#define C_SENS     GBX__V1__DATA_CLASS__SENSITIVE_PERSONAL
#define C_IMPORT   GBX__V1__DATA_CLASS__IMPORTANT
#define C_CORE     GBX__V1__DATA_CLASS__CORE
#define M_RESTR    GBX__V1__HK_MARKING__RESTRICTED
#define M_CONF     GBX__V1__HK_MARKING__CONFIDENTIAL
#define M_SECRET   GBX__V1__HK_MARKING__SECRET
#define M_TOP      GBX__V1__HK_MARKING__TOP_SECRET
#define R_GBA      GBX__V1__LEGAL_ROUTE__GBA_STANDARD_CONTRACT
#define R_NSC      GBX__V1__LEGAL_ROUTE__NATIONAL_STANDARD_CONTRACT
#define R_CERT     GBX__V1__LEGAL_ROUTE__CERTIFICATION
#define R_SA       GBX__V1__LEGAL_ROUTE__SECURITY_ASSESSMENT
#define R_EX       GBX__V1__LEGAL_ROUTE__EXEMPTION
#define R_MC       GBX__V1__LEGAL_ROUTE__MODEL_CLAUSES
#define K_NOTICE   GBX__V1__CONSENT_TYPE__NOTICE
#define K_CONSENT  GBX__V1__CONSENT_TYPE__CONSENT
#define K_SEP      GBX__V1__CONSENT_TYPE__SEPARATE_CONSENT

/* Route references of the sample. */
#define GBA     "GBA-SC-2024-0193"
#define GBA_H   "GBA-SC-2024-0517"
#define GBA_OLD "GBA-SC-2023-0042"
#define NSC     "NSC-GD-2025-0088"
#define CERT    "CERT-PIP-2025-0007"
#define SA      "CAC-SA-2025-0031"
#define SA_OLD  "CAC-SA-2022-0009"
#define EX      "CAC-2024-EXEMPT-LT100K"
#define MC      "HK-RMC-2025-014"

/* Other references. */
#define AGREE  "XB-COOP-2024-01"
#define PIA    "PIA-2025-031"
#define NOTICE "NOTICE-2025-07"
#define CONSNT "CONSENT-2026-1122-0001"
#define IAMS   "iams:4f1c9e"
#define RA     "HKTD-RA-2026-77"

/* Expected outcome and reason. */
#define ALLOWED  .outcome = GBX_OUTCOME_ALLOW, .reason = GBX_OK
#define HELD     .outcome = GBX_OUTCOME_HOLD, .reason = GBX_OK
#define DENIED   .outcome = GBX_OUTCOME_DENY, .reason = GBX_E_POLICY_DENIED
#define NO_MATCH .outcome = GBX_OUTCOME_DENY, .reason = GBX_E_POLICY_NO_MATCH, .rule = ""
#define BUILTIN  DENIED, .rule = "builtin:"

const tp_case_t tp_cases[] = {
    /* ------------------------------------------------------------ PUBLIC */
    {"public_hk_gd_label", .from = "hk.dpo", .to = "gd.gsdb", .service = "XB-STATS-MONTHLY-GD",
     .kind = REQ, .cls = C_PUBLIC, .agreement = AGREE, BUILTIN},
    {"public_gd_hk_label", .from = "gd.gsdb", .to = "hk.dpo", .service = "XB-STATS-MONTHLY",
     .kind = REQ, .cls = C_PUBLIC, .agreement = AGREE, BUILTIN},

    /* ---------------------------------------------------------- INTERNAL */
    {"internal_request_gd_hk", .from = "gd.gsdb", .to = "hk.dpo", .service = "XB-STATS-MONTHLY",
     .kind = REQ, .cls = C_INTERNAL, .agreement = AGREE, ALLOWED, .rule = "internal-stats"},
    {"internal_response_hk_gd", .from = "hk.dpo", .to = "gd.gsdb", .service = "XB-STATS-MONTHLY",
     .kind = RESP, .cls = C_INTERNAL, .agreement = AGREE, ALLOWED, .rule = "internal-stats"},
    {"internal_gd_request_hk_gd", .from = "hk.dpo", .to = "gd.gsdb",
     .service = "XB-STATS-MONTHLY-GD", .kind = REQ, .cls = C_INTERNAL, .agreement = AGREE, ALLOWED,
     .rule = "internal-stats"},
    {"internal_gd_response_gd_hk", .from = "gd.gsdb", .to = "hk.dpo",
     .service = "XB-STATS-MONTHLY-GD", .kind = RESP, .cls = C_INTERNAL, .agreement = AGREE, ALLOWED,
     .rule = "internal-stats"},
    {"internal_no_agreement", .from = "gd.gsdb", .to = "hk.dpo", .service = "XB-STATS-MONTHLY",
     .kind = REQ, .cls = C_INTERNAL, DENIED, .rule = "internal-stats"},
    {"internal_restricted", .from = "hk.dpo", .to = "gd.gsdb", .service = "XB-STATS-MONTHLY",
     .kind = RESP, .cls = C_INTERNAL, .marking = M_RESTR, .release = RA, .agreement = AGREE,
     NO_MATCH},
    {"internal_restricted_no_ra", .from = "hk.dpo", .to = "gd.gsdb", .service = "XB-STATS-MONTHLY",
     .kind = RESP, .cls = C_INTERNAL, .marking = M_RESTR, .agreement = AGREE, BUILTIN},
    {"internal_payload_too_big", .from = "hk.dpo", .to = "gd.gsdb", .service = "XB-STATS-MONTHLY",
     .kind = RESP, .cls = C_INTERNAL, .agreement = AGREE, .payload = 2 * TP_MIB, DENIED,
     .rule = "internal-stats"},
    {"internal_within_hk", .from = "hk.kiosk", .to = "hk.dpo", .service = "XB-STATS-MONTHLY",
     .kind = REQ, .cls = C_INTERNAL, .agreement = AGREE, NO_MATCH},
    {"internal_other_requester", .from = "gd.amr", .to = "hk.dpo", .service = "XB-STATS-MONTHLY",
     .kind = REQ, .cls = C_INTERNAL, .agreement = AGREE, NO_MATCH},

    /* ------------------------------------------------------------ VERIFY */
    {"verify_degree", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = VERIFY, .cls = C_INTERNAL, .agreement = AGREE, .payload = 64, ALLOWED,
     .rule = "degree-verify", .count_key = "m/2026-11-22/hk.immd/LEGAL_ROUTE_NONE", .count_add = 1},
    {"verify_answer", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = RESP, .cls = C_INTERNAL, .agreement = AGREE, .payload = 8, ALLOWED,
     .rule = "degree-verify-answer"},
    {"verify_rate_under", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = VERIFY, .cls = C_INTERNAL, .agreement = AGREE, .payload = 64,
     .counters = {{"m/2026-11-22/hk.immd/LEGAL_ROUTE_NONE", 19999}}, ALLOWED,
     .rule = "degree-verify", .count_key = "m/2026-11-22/hk.immd/LEGAL_ROUTE_NONE", .count_add = 1},
    {"verify_rate_cap", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = VERIFY, .cls = C_INTERNAL, .agreement = AGREE, .payload = 64,
     .counters = {{"m/2026-11-22/hk.immd/LEGAL_ROUTE_NONE", 20000}}, HELD, .rule = "degree-verify",
     .count_key = "m/2026-11-22/hk.immd/LEGAL_ROUTE_NONE", .count_add = 1},
    {"verify_as_request", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = REQ, .cls = C_INTERNAL, .agreement = AGREE, .payload = 64, NO_MATCH},
    {"verify_payload_big", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE-VERIFY",
     .kind = VERIFY, .cls = C_INTERNAL, .agreement = AGREE, .payload = TP_MIB, DENIED,
     .rule = "degree-verify"},
    {"verify_labelled_personal", .from = "hk.immd", .to = "gd.edu",
     .service = "GD-EDU-DEGREE-VERIFY", .kind = VERIFY, .cls = C_PERSONAL, .agreement = AGREE,
     .payload = 64, .route = R_GBA, .route_ref = GBA, .consent = K_CONSENT, .consent_ref = CONSNT,
     NO_MATCH},

    /* ----------------------------------------------- PERSONAL, HK -> GD */
    {"pi_hk_gd_notified_coextract", .from = "hk.cr", .to = "gd.qh-amr",
     .service = "HK-CR-COEXTRACT", .kind = RESP, .cls = C_PERSONAL, .purpose = "CR-REGISTER-SEARCH",
     .route = R_GBA, .route_ref = GBA, .subjects = 3, ALLOWED, .rule = "pi-hk-gd-notified",
     .count_key = "s/2026/hk.cr/GBA_STANDARD_CONTRACT", .count_add = 3},
    {"pi_hk_gd_model_clauses", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC",
     .kind = RESP, .cls = C_PERSONAL, .purpose = "TD-XB-VEHICLE", .route = R_MC, .route_ref = MC,
     .subjects = 1, ALLOWED, .rule = "pi-hk-gd-notified", .count_key = "s/2026/hk.td/MODEL_CLAUSES",
     .count_add = 1},
    {"pi_hk_gd_uscc_request", .from = "hk.cr", .to = "gd.amr", .service = "GD-AMR-USCC",
     .kind = REQ, .cls = C_PERSONAL, .purpose = "CR-GD-ENTITY-CHECK", .route = R_GBA,
     .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-hk-gd-notified"},
    {"pi_hk_gd_consent", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE", .kind = REQ,
     .cls = C_PERSONAL, .purpose = "IMMD-OTHER", .consent = K_CONSENT, .consent_ref = CONSNT,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-hk-gd-consent"},
    {"pi_hk_gd_no_consent", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE",
     .kind = REQ, .cls = C_PERSONAL, .purpose = "IMMD-OTHER", .route = R_GBA, .route_ref = GBA,
     .subjects = 1, DENIED, .rule = "pi-hk-gd-consent"},
    {"pi_hk_gd_notice_only", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE",
     .kind = REQ, .cls = C_PERSONAL, .purpose = "IMMD-OTHER", .consent = K_NOTICE,
     .consent_ref = NOTICE, .route = R_GBA, .route_ref = GBA, .subjects = 1, DENIED,
     .rule = "pi-hk-gd-consent"},
    {"pi_hk_gd_no_route", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE",
     .kind = REQ, .cls = C_PERSONAL, .purpose = "IMMD-TALENT-VERIFY", .consent = K_CONSENT,
     .consent_ref = CONSNT, .subjects = 1, DENIED, .rule = "pi-hk-gd-notified"},
    {"pi_hk_gd_nsc_route", .from = "hk.immd", .to = "gd.edu", .service = "GD-EDU-DEGREE",
     .kind = REQ, .cls = C_PERSONAL, .purpose = "IMMD-TALENT-VERIFY", .route = R_NSC,
     .route_ref = NSC, .subjects = 1, DENIED, .rule = "pi-hk-gd-notified"},
    {"pi_hk_gd_mc_expired_window", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC",
     .kind = RESP, .cls = C_PERSONAL, .purpose = "TD-XB-VEHICLE", .route = R_MC, .route_ref = MC,
     .subjects = 1, .now = TP_2028_MARCH, DENIED, .rule = "pi-hk-gd-notified"},
    {"tax_secrecy_ok", .from = "hk.ird", .to = "gd.sz-tax", .service = "HK-IRD-CORS", .kind = RESP,
     .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-hk-gd-tax-secrecy"},
    {"tax_secrecy_no_consent", .from = "hk.ird", .to = "gd.sz-tax", .service = "HK-IRD-CORS",
     .kind = RESP, .cls = C_PERSONAL, .purpose = "CR-REGISTER-SEARCH", .route = R_GBA,
     .route_ref = GBA, .subjects = 1, DENIED, .rule = "pi-hk-gd-tax-secrecy"},
    {"tax_secrecy_other_requester", .from = "hk.ird", .to = "gd.amr", .service = "HK-IRD-CORS",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, NO_MATCH},
    {"restricted_with_release", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC",
     .kind = RESP, .cls = C_PERSONAL, .marking = M_RESTR, .release = RA, .purpose = "TD-XB-VEHICLE",
     .route = R_GBA, .route_ref = GBA, .subjects = 1, HELD, .rule = "pi-hk-gd-notified"},
    {"restricted_no_release", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC",
     .kind = RESP, .cls = C_PERSONAL, .marking = M_RESTR, .purpose = "TD-XB-VEHICLE",
     .route = R_GBA, .route_ref = GBA, .subjects = 1, BUILTIN},
    {"confidential", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC", .kind = RESP,
     .cls = C_PERSONAL, .marking = M_CONF, .release = RA, .purpose = "TD-XB-VEHICLE",
     .route = R_GBA, .route_ref = GBA, .subjects = 1, BUILTIN},
    {"secret", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC", .kind = RESP,
     .cls = C_PERSONAL, .marking = M_SECRET, .release = RA, .purpose = "TD-XB-VEHICLE",
     .route = R_GBA, .route_ref = GBA, .subjects = 1, BUILTIN},
    {"top_secret", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC", .kind = RESP,
     .cls = C_PERSONAL, .marking = M_TOP, .release = RA, .purpose = "TD-XB-VEHICLE", .route = R_GBA,
     .route_ref = GBA, .subjects = 1, BUILTIN},
    {"core_hk_gd", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC", .kind = RESP,
     .cls = C_CORE, .purpose = "TD-XB-VEHICLE", .route = R_GBA, .route_ref = GBA, .consent = K_SEP,
     .consent_ref = CONSNT, .subjects = 1, BUILTIN},
    {"direct_marketing_deny", .from = "hk.td", .to = "gd.traffic", .service = "HK-TD-VEHLIC",
     .kind = RESP, .cls = C_PERSONAL, .purpose = "DIRECT-MARKETING", .consent = K_CONSENT,
     .consent_ref = CONSNT, .route = R_GBA, .route_ref = GBA, .subjects = 1, DENIED,
     .rule = "no-direct-marketing"},
    {"corpid_future_rule", .from = "hk.kiosk", .to = "gd.amr", .service = "GD-AMR-USCC",
     .kind = REQ, .cls = C_PERSONAL, .end_user = IAMS, .consent = K_CONSENT, .consent_ref = CONSNT,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, NO_MATCH},
    {"corpid_effective", .from = "hk.kiosk", .to = "gd.amr", .service = "GD-AMR-USCC", .kind = REQ,
     .cls = C_PERSONAL, .end_user = IAMS, .consent = K_CONSENT, .consent_ref = CONSNT,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, .now = TP_2027_FEB, ALLOWED,
     .rule = "pi-uscc-corpid", .count_key = "s/2027/hk.kiosk/GBA_STANDARD_CONTRACT",
     .count_add = 1},

    /* ------------------------------------- SENSITIVE_PERSONAL, HK -> GD */
    {"sp_hk_gd_paycert_request", .from = "hk.kiosk", .to = "gd.tax", .service = "GD-SI-PAYCERT",
     .kind = REQ, .cls = C_SENS, .consent = K_CONSENT, .consent_ref = CONSNT, .end_user = IAMS,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "sp-hk-gd-paycert-request",
     .count_key = "s/2026/hk.kiosk/GBA_STANDARD_CONTRACT/SENSITIVE_PERSONAL", .count_add = 1},
    {"sp_hk_gd_notice_only", .from = "hk.kiosk", .to = "gd.tax", .service = "GD-SI-PAYCERT",
     .kind = REQ, .cls = C_SENS, .consent = K_NOTICE, .consent_ref = NOTICE, .end_user = IAMS,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, DENIED, .rule = "sp-hk-gd-paycert-request"},
    {"sp_hk_gd_no_end_user", .from = "hk.kiosk", .to = "gd.tax", .service = "GD-SI-PAYCERT",
     .kind = REQ, .cls = C_SENS, .consent = K_CONSENT, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, DENIED, .rule = "sp-hk-gd-paycert-request"},
    {"sp_hk_gd_ttl_too_long", .from = "hk.kiosk", .to = "gd.tax", .service = "GD-SI-PAYCERT",
     .kind = REQ, .cls = C_SENS, .consent = K_CONSENT, .consent_ref = CONSNT, .end_user = IAMS,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, .ttl = 2 * TP_DAY, DENIED,
     .rule = "sp-hk-gd-paycert-request"},
    {"sp_hk_gd_label_lower", .from = "hk.kiosk", .to = "gd.tax", .service = "GD-SI-PAYCERT",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .end_user = IAMS,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, BUILTIN},
    {"sp_hk_gd_ehr_summary", .from = "hk.ehealth", .to = "gd.hkush", .service = "HK-EHR-SUMMARY",
     .kind = RESP, .cls = C_SENS, .consent = K_CONSENT, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA_H, .subjects = 1, ALLOWED, .rule = "sp-hk-gd-health"},
    {"sp_hk_gd_upload_ack", .from = "hk.ehealth", .to = "gd.hkush", .service = "GD-EHR-UPLOAD",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA_H, .subjects = 1, ALLOWED, .rule = "sp-hk-gd-health"},

    /* ----------------------------------------------- PERSONAL, GD -> HK */
    {"pi_gd_hk_gba_response", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 2, ALLOWED, .rule = "pi-gd-hk-gba",
     .count_key = "s/2026/gd.amr/GBA_STANDARD_CONTRACT", .count_add = 2},
    {"pi_gd_hk_gba_request", .from = "gd.qh-amr", .to = "hk.cr", .service = "HK-CR-COEXTRACT",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_vehlic_request", .from = "gd.traffic", .to = "hk.td", .service = "HK-TD-VEHLIC",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_cors_request", .from = "gd.sz-tax", .to = "hk.ird", .service = "HK-IRD-CORS",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_degree_response", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_CONSENT, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"disabled_rule_not_applied", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_no_consent", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC", .kind = RESP,
     .cls = C_PERSONAL, .impact = PIA, .route = R_GBA, .route_ref = GBA, .subjects = 1, DENIED,
     .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_consent_no_ref", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .impact = PIA, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_no_impact", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC", .kind = RESP,
     .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_expired_ref", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_OLD, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_last_day", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_OLD, .subjects = 1, .created = TP_2025_LAST,
     .now = TP_2025_LAST + 30000, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_day_after", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_OLD, .subjects = 1, .created = TP_2026_FIRST,
     .now = TP_2026_FIRST + 30000, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_backdated", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_OLD, .subjects = 1, .created = TP_2025_LAST,
     .now = TP_2026_FIRST, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_wrong_exporter", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_H, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_undeclared", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = "GBA-SC-2099-0001", .subjects = 1, DENIED,
     .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_ref_other_route", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = NSC, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_model_clauses", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_MC, .route_ref = MC, .subjects = 1, DENIED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_nsc", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE", .kind = RESP,
     .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA, .route = R_NSC,
     .route_ref = NSC, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-contract",
     .count_key = "s/2026/gd.edu/NATIONAL_STANDARD_CONTRACT", .count_add = 1},
    {"pi_gd_hk_nsc_cap_under", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_NSC, .route_ref = NSC, .subjects = 9,
     .counters = {{"s/2026/gd.edu/ALL_ROUTES", 999990}}, ALLOWED, .rule = "pi-gd-hk-contract",
     .count_key = "s/2026/gd.edu/NATIONAL_STANDARD_CONTRACT", .count_add = 9},
    {"pi_gd_hk_nsc_cap_over", .from = "gd.edu", .to = "hk.immd", .service = "GD-EDU-DEGREE",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_NSC, .route_ref = NSC, .subjects = 10,
     .counters = {{"s/2026/gd.edu/ALL_ROUTES", 999990}}, DENIED, .rule = "pi-gd-hk-contract"},
    {"pi_gd_hk_exemption_under", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 10,
     .counters = {{"s/2026/gd.amr/ALL_ROUTES", 99989}}, ALLOWED, .rule = "pi-gd-hk-exemption",
     .rule_version = 2, .count_key = "s/2026/gd.amr/EXEMPTION", .count_add = 10},
    {"pi_gd_hk_exemption_over", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 10,
     .counters = {{"s/2026/gd.amr/ALL_ROUTES", 99990}}, DENIED, .rule = "pi-gd-hk-exemption",
     .rule_version = 2},
    {"pi_gd_hk_exemption_one", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 0,
     .counters = {{"s/2026/gd.amr/ALL_ROUTES", 99999}}, DENIED, .rule = "pi-gd-hk-exemption",
     .rule_version = 2},
    {"pi_gd_hk_exemption_other", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 10,
     .counters = {{"s/2026/gd.edu/ALL_ROUTES", 99999}, {"s/2026/gd.amr/EXEMPTION", 99999}}, ALLOWED,
     .rule = "pi-gd-hk-exemption", .rule_version = 2, .count_key = "s/2026/gd.amr/ALL_ROUTES",
     .count_add = 10},
    {"pi_gd_hk_exemption_all_routes", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 10,
     .counters = {{"s/2026/gd.amr/ALL_ROUTES", 99995}, {"s/2026/gd.amr/EXEMPTION", 10}}, DENIED,
     .rule = "pi-gd-hk-exemption", .rule_version = 2},
    {"pipl_art36_off", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC", .kind = RESP,
     .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "pi-gd-hk-gba"},
    {"pi_gd_hk_exemption_new_year", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 10, .now = TP_2027_NY,
     .counters = {{"s/2026/gd.amr/ALL_ROUTES", 99999}}, ALLOWED, .rule = "pi-gd-hk-exemption",
     .rule_version = 2, .count_key = "s/2027/gd.amr/EXEMPTION", .count_add = 10},

    /* ------------------------------------- SENSITIVE_PERSONAL, GD -> HK */
    {"sp_gd_hk_paycert_gba", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1, ALLOWED, .rule = "sp-gd-hk-gba",
     .count_key = "s/2026/gd.tax/GBA_STANDARD_CONTRACT/SENSITIVE_PERSONAL", .count_add = 1},
    {"sp_gd_hk_consent_not_separate", .from = "gd.tax", .to = "hk.kiosk",
     .service = "GD-SI-PAYCERT", .kind = RESP, .cls = C_SENS, .consent = K_CONSENT,
     .consent_ref = CONSNT, .impact = PIA, .route = R_GBA, .route_ref = GBA, .subjects = 1, DENIED,
     .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_no_impact", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .route = R_GBA,
     .route_ref = GBA, .subjects = 1, DENIED, .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_wrong_filing", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_H, .subjects = 1, DENIED, .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_exemption", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_EX, .route_ref = EX, .subjects = 1, DENIED, .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_bulk_under", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1,
     .counters = {{"s/2026/gd.tax/GBA_STANDARD_CONTRACT/SENSITIVE_PERSONAL", 9998}}, ALLOWED,
     .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_bulk_hold", .from = "gd.tax", .to = "hk.kiosk", .service = "GD-SI-PAYCERT",
     .kind = RESP, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, .subjects = 1,
     .counters = {{"s/2026/gd.tax/GBA_STANDARD_CONTRACT/SENSITIVE_PERSONAL", 9999}}, HELD,
     .rule = "sp-gd-hk-gba", .count_key = "s/2026/gd.tax/GBA_STANDARD_CONTRACT/SENSITIVE_PERSONAL",
     .count_add = 1},
    {"sp_gd_hk_ehr_upload", .from = "gd.hkush", .to = "hk.ehealth", .service = "GD-EHR-UPLOAD",
     .kind = REQ, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_GBA, .route_ref = GBA_H, .subjects = 1, .payload = 8 * TP_MIB, ALLOWED,
     .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_upload_cert", .from = "gd.hkush", .to = "hk.ehealth", .service = "GD-EHR-UPLOAD",
     .kind = REQ, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_CERT, .route_ref = CERT, .subjects = 1, DENIED, .rule = "sp-gd-hk-gba"},
    {"sp_gd_hk_summary_cert", .from = "gd.hkush", .to = "hk.ehealth", .service = "HK-EHR-SUMMARY",
     .kind = REQ, .cls = C_SENS, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA,
     .route = R_CERT, .route_ref = CERT, .subjects = 9,
     .counters = {{"s/2026/gd.hkush/ALL_ROUTES/SENSITIVE_PERSONAL", 9990}}, ALLOWED,
     .rule = "sp-gd-hk-contract", .count_key = "s/2026/gd.hkush/CERTIFICATION/SENSITIVE_PERSONAL",
     .count_add = 9},
    {"sp_gd_hk_summary_cert_over", .from = "gd.hkush", .to = "hk.ehealth",
     .service = "HK-EHR-SUMMARY", .kind = REQ, .cls = C_SENS, .consent = K_SEP,
     .consent_ref = CONSNT, .impact = PIA, .route = R_CERT, .route_ref = CERT, .subjects = 10,
     .counters = {{"s/2026/gd.hkush/ALL_ROUTES/SENSITIVE_PERSONAL", 9990}}, DENIED,
     .rule = "sp-gd-hk-contract"},
    {"sp_gd_hk_cert_class_counter", .from = "gd.hkush", .to = "hk.ehealth",
     .service = "HK-EHR-SUMMARY", .kind = REQ, .cls = C_SENS, .consent = K_SEP,
     .consent_ref = CONSNT, .impact = PIA, .route = R_CERT, .route_ref = CERT, .subjects = 1,
     .counters = {{"s/2026/gd.hkush/ALL_ROUTES", 50000}}, ALLOWED, .rule = "sp-gd-hk-contract"},

    /* --------------------------------------------------------- IMPORTANT */
    {"important_no_sa", .from = "gd.nr", .to = "hk.landsd", .service = "GD-GEO-HIRES", .kind = RESP,
     .cls = C_IMPORT, .agreement = AGREE, DENIED, .rule = "important-gd-hk"},
    {"important_expired_sa", .from = "gd.nr", .to = "hk.landsd", .service = "GD-GEO-HIRES",
     .kind = RESP, .cls = C_IMPORT, .route = R_SA, .route_ref = SA_OLD, DENIED,
     .rule = "important-gd-hk"},
    {"important_valid_sa", .from = "gd.nr", .to = "hk.landsd", .service = "GD-GEO-HIRES",
     .kind = RESP, .cls = C_IMPORT, .route = R_SA, .route_ref = SA, .payload = 64 * TP_MIB, HELD,
     .rule = "important-gd-hk", .count_key = "m/2026-11-22/gd.nr/SECURITY_ASSESSMENT",
     .count_add = 1},
    {"important_gba", .from = "gd.nr", .to = "hk.landsd", .service = "GD-GEO-HIRES", .kind = RESP,
     .cls = C_IMPORT, .route = R_GBA, .route_ref = GBA, DENIED, .rule = "important-gd-hk"},
    {"important_sa_other_exporter", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC",
     .kind = RESP, .cls = C_IMPORT, .route = R_SA, .route_ref = SA, .consent = K_SEP,
     .consent_ref = CONSNT, .impact = PIA, DENIED, .rule = "important-gd-hk"},
    {"important_hk_gd", .from = "hk.cr", .to = "gd.qh-amr", .service = "HK-CR-COEXTRACT",
     .kind = RESP, .cls = C_IMPORT, .route = R_GBA, .route_ref = GBA,
     .purpose = "CR-REGISTER-SEARCH", NO_MATCH},
    {"geo_request", .from = "hk.landsd", .to = "gd.nr", .service = "GD-GEO-HIRES", .kind = REQ,
     .cls = C_IMPORT, .agreement = AGREE, .payload = 2048, ALLOWED, .rule = "geo-hires-request"},
    {"geo_request_too_big", .from = "hk.landsd", .to = "gd.nr", .service = "GD-GEO-HIRES",
     .kind = REQ, .cls = C_IMPORT, .agreement = AGREE, .payload = TP_MIB, DENIED,
     .rule = "geo-hires-request"},
    {"geo_request_label_lower", .from = "hk.landsd", .to = "gd.nr", .service = "GD-GEO-HIRES",
     .kind = REQ, .cls = C_PERSONAL, .agreement = AGREE, .payload = 2048, BUILTIN},

    /* ------------------------------------------- built in and no match */
    {"unknown_service", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-NONE", .kind = RESP,
     .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA, .route = R_GBA,
     .route_ref = GBA, BUILTIN},
    {"unknown_version", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC", .version = 2,
     .kind = RESP, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, BUILTIN},
    {"provider_mismatch_request", .from = "gd.qh-amr", .to = "hk.td", .service = "HK-CR-COEXTRACT",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, BUILTIN},
    {"provider_mismatch_response", .from = "hk.td", .to = "gd.qh-amr", .service = "HK-CR-COEXTRACT",
     .kind = RESP, .cls = C_PERSONAL, .purpose = "CR-REGISTER-SEARCH", .route = R_GBA,
     .route_ref = GBA, BUILTIN},
    {"unknown_agency", .from = "gd.nowhere", .to = "hk.cr", .service = "HK-CR-COEXTRACT",
     .kind = REQ, .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA,
     .route = R_GBA, .route_ref = GBA, BUILTIN},
    {"core_gd_hk", .from = "gd.amr", .to = "hk.cr", .service = "GD-AMR-USCC", .kind = RESP,
     .cls = C_CORE, .consent = K_SEP, .consent_ref = CONSNT, .impact = PIA, .route = R_SA,
     .route_ref = SA, .agreement = AGREE, BUILTIN},
    {"within_gd", .from = "gd.qh-amr", .to = "gd.amr", .service = "GD-AMR-USCC", .kind = REQ,
     .cls = C_PERSONAL, .consent = K_NOTICE, .consent_ref = NOTICE, .impact = PIA, .route = R_GBA,
     .route_ref = GBA, NO_MATCH},
};
const size_t tp_ncases = sizeof tp_cases / sizeof tp_cases[0];

const tp_case_t *tp_case(const char *name)
{
    for (size_t i = 0; name && i < tp_ncases; i++)
        if (strcmp(tp_cases[i].name, name) == 0)
            return &tp_cases[i];
    return NULL;
}

static char *s_str(const char *s)
{
    return (char *)(s ? s : "");
}

void tp_header(const tp_case_t *c, uint64_t now, gbx_header_t *h)
{
    gbx_header_init(h);
    h->from_agency = s_str(c->from);
    h->to_agency = s_str(c->to);
    h->service_code = s_str(c->service);
    h->service_version = c->version ? c->version : 1;
    h->kind = c->kind;
    h->data_class = c->cls;
    h->hk_marking = c->marking ? c->marking : GBX__V1__HK_MARKING__UNCLASSIFIED;
    h->purpose_code = s_str(c->purpose);
    h->case_ref = "CASE-2026-0001";
    h->end_user_ref = s_str(c->end_user);
    h->legal_route = c->route;
    h->legal_route_ref = s_str(c->route_ref);
    h->consent_ref = s_str(c->consent_ref);
    h->consent_type = c->consent;
    h->subject_count = c->subjects;
    h->created_at_ms = c->created ? c->created : now - 1000;
    h->expires_at_ms = h->created_at_ms + (c->ttl ? c->ttl : TP_HOUR);
    h->payload_length = c->payload ? c->payload : 1024;
    h->impact_assessment_ref = s_str(c->impact);
    h->release_authority_ref = s_str(c->release);
    h->agreement_ref = s_str(c->agreement);
}

gbx_err_t tp_counter(void *arg, const char *key, uint64_t *value)
{
    const tp_case_t *c = arg;
    *value = 0;
    for (size_t i = 0; i < TP_COUNTERS_MAX; i++)
        if (c->counters[i].key && strcmp(c->counters[i].key, key) == 0)
            *value = c->counters[i].value;
    return GBX_OK;
}

int tp_presets_counters(const tp_case_t *c)
{
    for (size_t i = 0; i < TP_COUNTERS_MAX; i++)
        if (c->counters[i].key)
            return 1;
    return 0;
}
