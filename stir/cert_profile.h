// cert_profile.h: the SHAKEN certificate profile (ATIS-1000080 §6.4.1, SHAKEN CP v1.3/v1.4,
// RFC 8226; the CE-* items of docs/standards.md) as ONE table of rules. Each rule looks at a
// certificate once and returns findings, each tagged with who enforces it. Two readers:
//   - CertValidator (ValidateProfile) applies the rules to a signing certificate in table order
//     and stops at the first finding its ProfileStrictness forbids;
//   - `shakenctl cert check` (cli/lint.cc) reports every rule as a PASS / FAIL / WARN / INFO row,
//     for an end-entity, an intermediate or a root certificate.
// The profile's object identifiers live here and in tn_auth_list.h, nowhere else.
#ifndef SHAKEN_STIR_CERT_PROFILE_H_
#define SHAKEN_STIR_CERT_PROFILE_H_

#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/tn_auth_list.h"
#include "stir/verdict.h"

namespace shaken::stir {

// The SHAKEN certificate policy arc (SHAKEN CP) and its policies: .3 (CP v1.3) and .4 (CP v1.4)
// are current; .1 is flagged invalid by the zlint SHAKEN lints (P17).
inline constexpr char kShakenPolicyArc[] = "2.16.840.1.114569.1.1";
inline constexpr char kShakenPolicyV1[] = "2.16.840.1.114569.1.1.1";
inline constexpr char kShakenPolicyV13[] = "2.16.840.1.114569.1.1.3";
inline constexpr char kShakenPolicyV14[] = "2.16.840.1.114569.1.1.4";

// ProfileStrictness selects how closely a validation enforces the profile.
//   kLenient: what real traffic needs (P16, P17): a TNAuthList with at least one well-formed
//     entry; any policy OID in the SHAKEN arc 2.16.840.1.114569.1.1.*; KeyUsage, if present,
//     allows digitalSignature; deviations from ATIS-1000080 are reported as profile_warnings.
//   kStrict: ATIS-1000080 v005 as the zlint SHAKEN lints read it: exactly one TNAuthList entry, an
//     SPC of digits and upper-case letters, or else a delegate certificate's TNAuthList (RFC 9060,
//     ATIS-1000092): TN and range entries only, no SPC (CA certificates of a delegate chain may
//     then carry a TNAuthList too, which the DL-3 rule reads); exactly one SHAKEN policy OID, .3
//     or .4 (.1 rejected);
//     KeyUsage present, critical, digitalSignature only; BasicConstraints critical; X.509 v3;
//     ecdsa-with-SHA256; OpenSSL's X509_V_FLAG_X509_STRICT chain checks.
// Both: EC P-256 leaf key, leaf not a CA, chain to a configured trust anchor, validity at `now`;
// DL-3 (RFC 9060): each CA of the chain that carries a TNAuthList encompasses the TNAuthList of
// the nearest certificate below it that carries one (EntriesOutsideScope; kCertScopeExceeded).
enum class ProfileStrictness { kLenient, kStrict };

enum class CertRole { kEndEntity, kIntermediate, kRoot };
std::string_view CertRoleName(CertRole role);  // "end-entity", "intermediate", "root"

// RoleOf guesses the role: BasicConstraints CA:TRUE and self-issued (issuer name = subject
// name: a root, or a rollover certificate) -> root, CA:TRUE -> intermediate, else end-entity.
CertRole RoleOf(const X509* cert);

// Enforcement says who holds a certificate to a finding.
enum class Enforcement {
  kAlways,       // every validation rejects (lenient and strict); the lint's FAIL
  kStrict,       // a strict validation rejects; a lenient one keeps `note` as a profile warning
  kStrictOnly,   // a strict validation rejects; a lenient one does not look; the lint's FAIL
  kFullProfile,  // only the complete profile (the lint's FAIL): validations do not check it
  kAdvice,       // the lint's WARN: a recommendation, not a requirement
};

// ProfileFinding is one way a certificate departs from a rule.
struct ProfileFinding {
  Enforcement enforcement = Enforcement::kFullProfile;
  Reason reason = Reason::kCertInvalid;  // what a validation that stops here reports
  std::string detail;                    // the sentence a rejecting validation reports
  std::string note;                      // the short form (lint row, lenient warning); "" = detail
};

// ProfileSubject is a certificate seen by the rules, its extensions decoded once.
struct ProfileSubject {
  const X509* cert = nullptr;
  CertRole role = CertRole::kEndEntity;
  // The verified chain, leaf first, when a validation knows it; null for a lone certificate.
  const STACK_OF(X509)* chain = nullptr;
  absl::Time now = absl::InfinitePast();
  // Decoded by MakeProfileSubject: how many TNAuthList extensions there are, the list (when
  // exactly one; an error when it is malformed), and the CertificatePolicies OIDs (nullopt when
  // that extension is malformed or repeated).
  int tn_auth_list_extensions = 0;
  absl::StatusOr<std::vector<TnAuthEntry>> tn_auth_list = std::vector<TnAuthEntry>{};
  std::optional<std::vector<std::string>> policy_oids;
};
ProfileSubject MakeProfileSubject(const X509* cert, CertRole role,
                                  const STACK_OF(X509) * chain = nullptr,
                                  absl::Time now = absl::InfinitePast());

// RuleResult is one rule applied to one certificate.
struct RuleResult {
  std::string item;       // the requirement as it reads for the certificate's role
  std::string observed;   // what the certificate holds
  bool info_only = false; // information, not a requirement (the lint's INFO)
  std::vector<ProfileFinding> findings;  // empty: the certificate meets the rule
};

struct ProfileRule {
  std::string_view id;  // "CE-6" (docs/standards.md), "EXT", "VALID"
  RuleResult (*check)(const ProfileSubject& subject);
};

// ShakenProfileRules is the table, in the order a validation applies it.
std::span<const ProfileRule> ShakenProfileRules();

// Judgement is what a validation under a strictness makes of one finding.
enum class Judgement { kIgnore, kWarn, kReject };
Judgement Judge(const ProfileFinding& finding, ProfileStrictness strictness);

// ValidateProfile applies the table to a signing certificate (role kEndEntity, with its verified
// chain) and stops at the first finding `strictness` rejects: returns its reason and sets
// `detail`. Otherwise returns kPassed, with the lenient warnings in info->profile_warnings and
// info's TNAuthList, SPC and policy OIDs filled.
Reason ValidateProfile(const ProfileSubject& subject, ProfileStrictness strictness,
                       CertificateInfo* info, std::string* detail);

// DescribeCertificate reads what CertificateInfo holds from one certificate (names, serial,
// validity, TNAuthList, policy OIDs) without judging it. INVALID_ARGUMENT when its TNAuthList is
// malformed. For a profile's own certificate, `cert show` and the like.
absl::StatusOr<CertificateInfo> DescribeCertificate(const X509* cert);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CERT_PROFILE_H_
