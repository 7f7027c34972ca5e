#include "stir/cert_profile.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "stir/openssl_util.h"

namespace shaken::stir {
namespace {

X509* Mutable(const X509* cert) { return const_cast<X509*>(cert); }  // OpenSSL 3.0 const gaps

bool ExtensionCritical(const X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::string CurveName(const EVP_PKEY* key) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) return "";
  return name;
}

bool IsUpperAlnum(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && !(c >= 'A' && c <= 'Z')) {
      return false;
    }
  }
  return !s.empty();
}

ProfileFinding Finding(Enforcement enforcement, Reason reason, std::string detail,
                       std::string note = "") {
  return ProfileFinding{enforcement, reason, std::move(detail), std::move(note)};
}

// A requirement of the complete profile that validations do not check (the lint's FAIL).
ProfileFinding Full(std::string note) {
  return Finding(Enforcement::kFullProfile, Reason::kCertInvalid, std::move(note));
}
ProfileFinding Advice(std::string note) {
  return Finding(Enforcement::kAdvice, Reason::kCertInvalid, std::move(note));
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%SZ", t, absl::UTCTimeZone());
}

// ---------------------------------------------------------------------------------------------
// The rules, one function each, in the order of the table at the end.

RuleResult Extensions(const ProfileSubject& s) {
  RuleResult r{"extensions decode, none repeated",
               absl::StrCat(X509_get_ext_count(s.cert), " extensions")};
  if (X509_get_extension_flags(Mutable(s.cert)) & EXFLAG_INVALID) {
    r.findings.push_back(Finding(Enforcement::kAlways, Reason::kCertInvalid,
                                 "the certificate has malformed or duplicate extensions"));
  }
  return r;
}

RuleResult Version(const ProfileSubject& s) {  // CE-1
  const long version = X509_get_version(s.cert);
  RuleResult r{"X.509 version 3", absl::StrCat("version ", version + 1)};
  if (version != X509_VERSION_3) {
    r.findings.push_back(Finding(Enforcement::kStrictOnly, Reason::kCertInvalid,
                                 "the signing certificate is not X.509 v3"));
  }
  return r;
}

RuleResult Serial(const ProfileSubject& s) {  // CE-2
  const ASN1_INTEGER* serial = X509_get0_serialNumber(s.cert);
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  const int bits = bn ? BN_num_bits(bn.get()) : 0;
  const bool positive = bn && !BN_is_negative(bn.get()) && !BN_is_zero(bn.get());
  RuleResult r{"serial positive, >= 64 bits", absl::StrCat(SerialHex(serial), " (", bits, " bits)")};
  if (!positive || bits < 64) {
    r.findings.push_back(Full("the serial must be positive with at least 64 bits (ATIS-1000080 v005)"));
  }
  return r;
}

RuleResult Algorithms(const ProfileSubject& s) {  // CE-3
  const bool ee = s.role == CertRole::kEndEntity;
  const int sig_nid = X509_get_signature_nid(s.cert);
  EVP_PKEY* key = X509_get0_pubkey(s.cert);
  const std::string curve = key != nullptr ? CurveName(key) : "";
  const char* type = key != nullptr ? EVP_PKEY_get0_type_name(key) : nullptr;
  RuleResult r{"ecdsa-with-SHA256, EC P-256 key",
               absl::StrCat("signature ", OBJ_nid2ln(sig_nid), ", key ",
                            key == nullptr ? "unreadable"
                                           : absl::StrCat(type ? type : "?",
                                                          curve.empty() ? "" : " ", curve))};
  const bool p256 = key != nullptr && IsP256Key(key);
  if (ee) {
    if (!p256) {
      r.findings.push_back(
          Finding(Enforcement::kAlways, Reason::kCertKeyType,
                  "the signing certificate's key is not an EC P-256 key (ATIS-1000080 §6.4.1)"));
    }
    if (sig_nid != NID_ecdsa_with_SHA256) {
      r.findings.push_back(Finding(Enforcement::kStrictOnly, Reason::kCertInvalid,
                                   "the signing certificate is not signed with ecdsa-with-SHA256"));
    }
  } else {
    // SHAKEN CP v1.4 §6.1.5 allows CAs P-384 keys and ecdsa-with-SHA384.
    if (!p256 && curve != "secp384r1") r.findings.push_back(Full("a CA key must be P-256 or P-384"));
    if (sig_nid != NID_ecdsa_with_SHA256 && sig_nid != NID_ecdsa_with_SHA384) {
      r.findings.push_back(Full("a CA certificate is signed with ecdsa-with-SHA256 or -SHA384"));
    }
  }
  return r;
}

RuleResult Subject(const ProfileSubject& s) {  // CE-4
  const X509_NAME* subject = X509_get_subject_name(s.cert);
  const std::string c = NameEntry(subject, NID_countryName);
  const std::string o = NameEntry(subject, NID_organizationName);
  const std::string cn = NameEntry(subject, NID_commonName);
  RuleResult r{"subject C, O, CN", NameText(subject)};
  if (c.empty() || o.empty() || cn.empty()) r.findings.push_back(Full("subject must hold C, O and CN"));
  if (!c.empty() && c != "US") r.findings.push_back(Advice("C is not US (SHAKEN CP v1.4 §3.1)"));
  if (s.role == CertRole::kEndEntity && s.tn_auth_list.ok()) {
    const std::string spc = FirstSpc(*s.tn_auth_list);
    if (!spc.empty() && cn != absl::StrCat("SHAKEN ", spc)) {
      r.findings.push_back(Full(absl::StrCat("CN must be \"SHAKEN ", spc, "\"")));
    }
  }
  if (s.role == CertRole::kRoot && cn.find("ROOT") == std::string::npos &&
      cn.find("Root") == std::string::npos) {
    r.findings.push_back(Advice("a root CN should include \"ROOT\""));
  }
  return r;
}

RuleResult BasicConstraints(const ProfileSubject& s) {  // CE-5
  const bool ee = s.role == CertRole::kEndEntity;
  const uint32_t flags = X509_get_extension_flags(Mutable(s.cert));
  const bool present = (flags & EXFLAG_BCONS) != 0;
  const bool critical = ExtensionCritical(s.cert, NID_basic_constraints);
  const bool ca = (flags & EXFLAG_CA) != 0;
  RuleResult r{ee ? "BasicConstraints critical, CA:FALSE" : "BasicConstraints critical, CA:TRUE",
               !present ? "absent"
                        : absl::StrCat(critical ? "critical, " : "not critical, ",
                                       ca ? "CA:TRUE" : "CA:FALSE")};
  if (ee) {
    if (ca) {
      r.findings.push_back(
          Finding(Enforcement::kAlways, Reason::kCertInvalid,
                  "the signing certificate is a CA certificate (BasicConstraints CA:TRUE)"));
    }
    if (!present || !critical) {
      r.findings.push_back(
          Finding(Enforcement::kStrictOnly, Reason::kCertInvalid,
                  "BasicConstraints must be present and critical (ATIS-1000080 §6.4.1)"));
    }
  } else {
    if (!present || !critical) r.findings.push_back(Full("BasicConstraints must be critical"));
    if (present && !ca) r.findings.push_back(Full("a CA certificate needs CA:TRUE"));
  }
  return r;
}

RuleResult KeyUsage(const ProfileSubject& s) {  // CE-6
  const bool ee = s.role == CertRole::kEndEntity;
  const bool present = (X509_get_extension_flags(Mutable(s.cert)) & EXFLAG_KUSAGE) != 0;
  const bool critical = ExtensionCritical(s.cert, NID_key_usage);
  const uint32_t ku = X509_get_key_usage(Mutable(s.cert));
  std::vector<std::string> bits;
  if (ku & KU_DIGITAL_SIGNATURE) bits.push_back("digitalSignature");
  if (ku & KU_KEY_CERT_SIGN) bits.push_back("keyCertSign");
  if (ku & KU_CRL_SIGN) bits.push_back("cRLSign");
  if (ku & ~(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN)) bits.push_back("others");
  RuleResult r{ee ? "KeyUsage critical, digitalSignature only" : "KeyUsage critical, keyCertSign",
               !present ? "absent"
                        : absl::StrCat(critical ? "critical, " : "not critical, ",
                                       absl::StrJoin(bits, ", "))};
  if (ee) {
    const char* strict = "KeyUsage must be present, critical and digitalSignature only "
                         "(ATIS-1000080 §6.4.1)";
    auto strict_finding = [&](const char* note) {
      r.findings.push_back(Finding(Enforcement::kStrict, Reason::kCertKeyUsage, strict, note));
    };
    if (!present) {
      strict_finding("KeyUsage is absent");
      return r;
    }
    if (!(ku & KU_DIGITAL_SIGNATURE)) {
      r.findings.push_back(Finding(Enforcement::kAlways, Reason::kCertKeyUsage,
                                   "KeyUsage does not allow digitalSignature"));
    }
    if (!critical) strict_finding("KeyUsage is not critical");
    if (ku != KU_DIGITAL_SIGNATURE) strict_finding("KeyUsage has bits besides digitalSignature");
    return r;
  }
  if (!present) {
    r.findings.push_back(Full("KeyUsage is absent"));
    return r;
  }
  if (!critical) r.findings.push_back(Full("KeyUsage is not critical"));
  if (!(ku & KU_KEY_CERT_SIGN) || (ku & ~(KU_KEY_CERT_SIGN | KU_CRL_SIGN))) {
    r.findings.push_back(Full("a CA's KeyUsage is keyCertSign (and cRLSign) only"));
  } else if (ku & KU_CRL_SIGN) {
    r.findings.push_back(
        Advice("ATIS-1000080 v005: keyCertSign only; cRLSign is needed to sign CRLs"));
  }
  return r;
}

RuleResult KeyIdentifiers(const ProfileSubject& s) {  // CE-7
  const bool root = s.role == CertRole::kRoot;
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(Mutable(s.cert));
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(Mutable(s.cert));
  RuleResult r{root ? "SKI" : "SKI and AKI", ""};
  std::vector<std::string> seen;
  if (ski == nullptr) {
    r.findings.push_back(Full("no SubjectKeyIdentifier"));
  } else {
    // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value.
    const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(s.cert);
    unsigned char sha1[SHA_DIGEST_LENGTH];
    SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), sha1);
    if (ASN1_STRING_length(ski) != SHA_DIGEST_LENGTH ||
        memcmp(ASN1_STRING_get0_data(ski), sha1, SHA_DIGEST_LENGTH) != 0) {
      r.findings.push_back(Advice("SKI is not the 160-bit SHA-1 of the public key (v005)"));
    } else {
      seen.push_back("SKI = SHA-1 of the key");
    }
  }
  if (aki != nullptr) {
    seen.push_back("AKI present");
  } else if (!root) {
    r.findings.push_back(Full("no AuthorityKeyIdentifier"));
  }
  r.observed = absl::StrJoin(seen, "; ");
  return r;
}

RuleResult Policies(const ProfileSubject& s) {  // CE-8
  const bool root = s.role == CertRole::kRoot;
  RuleResult r{root ? "no CertificatePolicies on the root" : "one SHAKEN policy OID (.3 or .4)",
               ""};
  if (!s.policy_oids.has_value()) {
    r.observed = "malformed";
    r.findings.push_back(Finding(Enforcement::kAlways, Reason::kCertInvalid,
                                 "the CertificatePolicies extension is malformed or repeated"));
    return r;
  }
  const std::vector<std::string>& oids = *s.policy_oids;
  const std::string found = absl::StrCat("found [", absl::StrJoin(oids, ", "), "]");
  r.observed = oids.empty() ? "absent" : absl::StrJoin(oids, ", ");
  if (root) {
    if (!oids.empty()) r.findings.push_back(Full("the root must not carry the SHAKEN policy, v005"));
    return r;
  }
  const std::string arc = absl::StrCat(kShakenPolicyArc, ".");
  const std::string strict = absl::StrCat("the certificate policy must be exactly one of ",
                                          kShakenPolicyV13, " or ", kShakenPolicyV14, "; ", found);
  bool any_shaken = false;
  for (const std::string& oid : oids) {
    if (!oid.starts_with(arc)) continue;
    any_shaken = true;
    if (oid == kShakenPolicyV1) {
      r.findings.push_back(Finding(Enforcement::kStrict, Reason::kCertPolicy, strict,
                                   absl::StrCat("certificate policy ", oid, " is considered invalid")));
    } else if (oid != kShakenPolicyV13 && oid != kShakenPolicyV14) {
      r.findings.push_back(Finding(Enforcement::kStrict, Reason::kCertPolicy, strict,
                                   absl::StrCat("unknown SHAKEN certificate policy ", oid)));
    }
  }
  if (!any_shaken) {
    r.findings.insert(r.findings.begin(),
                      Finding(Enforcement::kAlways, Reason::kCertPolicy,
                              absl::StrCat("no SHAKEN certificate policy (", kShakenPolicyArc,
                                           ".*); ", found)));
  } else if (oids.size() != 1) {
    r.findings.push_back(Finding(Enforcement::kStrictOnly, Reason::kCertPolicy, strict,
                                 "more than one certificate policy"));
  }
  return r;
}

RuleResult CrlDistributionPoints(const ProfileSubject& s) {  // CE-9
  const bool ee = s.role == CertRole::kEndEntity;
  const bool root = s.role == CertRole::kRoot;
  int crit = 0;
  CrlDistPointsPtr dps(static_cast<CRL_DIST_POINTS*>(
      X509_get_ext_d2i(s.cert, NID_crl_distribution_points, &crit, nullptr)));
  ERR_clear_error();
  RuleResult r{root ? "no CRLDistributionPoints on the root"
                    : "one CRL distribution point: HTTP URL + cRLIssuer",
               ""};
  const int n = dps ? sk_DIST_POINT_num(dps.get()) : 0;
  if (n == 0) {
    r.observed = "absent";
    if (ee) r.findings.push_back(Full("no CRL distribution point"));
    if (s.role == CertRole::kIntermediate) r.findings.push_back(Advice("no CRL distribution point"));
    return r;
  }
  if (root) {
    r.findings.push_back(Full("a root must not carry CRLDistributionPoints (v005)"));
    return r;
  }
  if (n != 1) r.findings.push_back(Full(absl::StrCat(n, " distribution points (expected one)")));
  const DIST_POINT* dp = sk_DIST_POINT_value(dps.get(), 0);
  std::vector<std::string> urls = DistributionPointUris(dp);
  bool http = false;
  for (const std::string& url : urls) {
    if (url.starts_with("http://") || url.starts_with("https://")) http = true;
  }
  if (!http) r.findings.push_back(Full("no HTTP URL"));
  if (dp->CRLissuer == nullptr) {
    r.findings.push_back(ee ? Full("no cRLIssuer (ATIS-1000080 v004+)")
                            : Advice("no cRLIssuer (ATIS-1000080 v004+)"));
  } else {
    urls.push_back("cRLIssuer present");
  }
  r.observed = absl::StrJoin(urls, "; ");
  return r;
}

RuleResult TnAuthList(const ProfileSubject& s) {  // CE-10
  const bool ee = s.role == CertRole::kEndEntity;
  RuleResult r{ee ? "TNAuthList with exactly one SPC" : "no TNAuthList on a CA", "absent"};
  if (s.tn_auth_list_extensions > 1) {
    r.observed = "repeated";
    r.findings.push_back(Finding(Enforcement::kAlways, Reason::kCertInvalid,
                                 "the TNAuthList extension appears more than once"));
    return r;
  }
  if (!s.tn_auth_list.ok()) {
    r.observed = "malformed";
    r.findings.push_back(Finding(
        Enforcement::kAlways, Reason::kCertInvalid,
        absl::StrCat("the TNAuthList extension is malformed: ", s.tn_auth_list.status().message())));
    return r;
  }
  if (!ee) {
    if (s.tn_auth_list_extensions == 1) {
      r.observed = "present";
      r.findings.push_back(Full("a CA certificate carries a TNAuthList (v005)"));
    }
    return r;
  }
  if (s.tn_auth_list_extensions == 0) {
    r.findings.push_back(Finding(Enforcement::kAlways, Reason::kCertNoTnAuthList,
                                 absl::StrCat("the signing certificate has no TNAuthList extension "
                                              "(RFC 8226, OID ",
                                              kTnAuthListOid, ")"),
                                 "absent"));
    return r;
  }
  const std::vector<TnAuthEntry>& entries = *s.tn_auth_list;
  std::vector<std::string> shown;
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        shown.push_back(absl::StrCat("spc ", e.value));
        break;
      case TnAuthEntry::Kind::kOne:
        shown.push_back(absl::StrCat("tn ", e.value));
        break;
      case TnAuthEntry::Kind::kRange:
        shown.push_back(absl::StrCat("range ", e.value, "+", e.count));
        break;
    }
  }
  r.observed = absl::StrJoin(shown, ", ");
  // Two shapes are a SHAKEN profile: exactly one SPC (ATIS-1000080 v005), or only TN and range
  // entries (a delegate certificate, RFC 9060 / ATIS-1000092), whose numbers the verifier checks
  // orig.tn against (Verifier::Finish, DL-2). The complete profile (the lint) knows the first only.
  const std::string spc = FirstSpc(entries);
  const bool delegate = spc.empty();  // ParseTnAuthList refuses an empty list
  const bool single_spc = entries.size() == 1 && !delegate;
  if (delegate) {
    r.findings.push_back(Full("a delegate certificate (RFC 9060): expected exactly one SPC entry"));
  } else {
    if (!single_spc) {
      r.findings.push_back(Finding(
          Enforcement::kStrict, Reason::kCertNoTnAuthList,
          "TNAuthList must hold exactly one SPC entry (ATIS-1000080 v005), or only TN and range "
          "entries (a delegate certificate, RFC 9060)",
          "TNAuthList has more than one entry"));
    }
    if (!IsUpperAlnum(spc)) {
      r.findings.push_back(Finding(Enforcement::kStrict, Reason::kCertInvalid,
                                   "the SPC must be digits and upper-case letters (ATIS-1000080 v005)",
                                   "the SPC is not digits and upper-case letters"));
    } else if (absl::Status valid = ValidateSpc(spc); !valid.ok()) {
      r.findings.push_back(Full(std::string(valid.message())));
    }
  }
  // CA certificates must not carry a TNAuthList (ATIS-1000080 v005). A delegate chain (RFC 9060)
  // follows its own profile: there the delegating CA's certificate carries the scope it may
  // delegate, and the DL-3 rule checks that scope under both policies.
  Asn1ObjectPtr oid(OBJ_txt2obj(kTnAuthListOid, 1));
  for (int i = 1; !delegate && oid && s.chain != nullptr && i < sk_X509_num(s.chain); ++i) {
    if (X509_get_ext_by_OBJ(sk_X509_value(s.chain, i), oid.get(), -1) >= 0) {
      r.findings.push_back(
          Finding(Enforcement::kStrictOnly, Reason::kCertInvalid,
                  "a CA certificate of the chain carries a TNAuthList (ATIS-1000080 v005)"));
      break;
    }
  }
  return r;
}

RuleResult ChainScope(const ProfileSubject& s) {  // DL-3 (RFC 9060 §4)
  RuleResult r{"each CA's TNAuthList encompasses its subordinate's (RFC 9060)",
               "no CA of the chain carries a TNAuthList"};
  if (s.chain == nullptr) {
    r.observed = "not checked: needs the verified chain";
    r.info_only = true;
    return r;
  }
  if (s.tn_auth_list_extensions != 1 || !s.tn_auth_list.ok()) return r;  // CE-10 decides
  // Each CA that carries a TNAuthList must encompass the nearest certificate below it that
  // carries one: a CA without a list in between neither widens nor narrows the scope.
  std::vector<TnAuthEntry> below = *s.tn_auth_list;
  std::string below_name = "the signing certificate";
  std::vector<std::string> scopes;
  for (int i = 1; i < sk_X509_num(s.chain); ++i) {
    const X509* ca = sk_X509_value(s.chain, i);
    ProfileSubject c = MakeProfileSubject(ca, CertRole::kIntermediate);
    if (c.tn_auth_list_extensions == 0) continue;
    const std::string name = absl::StrCat(
        "the CA certificate at depth ", i, " (", NameText(X509_get_subject_name(ca), true), ")");
    if (c.tn_auth_list_extensions > 1 || !c.tn_auth_list.ok()) {
      r.findings.push_back(Finding(
          Enforcement::kAlways, Reason::kCertInvalid,
          absl::StrCat("the TNAuthList of ", name, " is ",
                       c.tn_auth_list.ok() ? "repeated"
                                           : absl::StrCat("malformed: ",
                                                          c.tn_auth_list.status().message()))));
      return r;
    }
    const std::vector<TnAuthEntry> outside = EntriesOutsideScope(*c.tn_auth_list, below);
    if (!outside.empty()) {
      r.observed = absl::StrCat("depth ", i, ": ", TnAuthScopeText(*c.tn_auth_list));
      r.findings.push_back(Finding(
          Enforcement::kAlways, Reason::kCertScopeExceeded,
          absl::StrCat("the TNAuthList of ", below_name, " holds ", TnAuthScopeText(outside),
                       ", outside the TNAuthList of its issuer, ", name, ": ",
                       TnAuthScopeText(*c.tn_auth_list), " (RFC 9060)")));
      return r;
    }
    scopes.push_back(absl::StrCat("depth ", i, ": ", TnAuthScopeText(*c.tn_auth_list)));
    below = *std::move(c.tn_auth_list);
    below_name = name;
  }
  if (!scopes.empty()) r.observed = absl::StrJoin(scopes, "; ");
  return r;
}

RuleResult OtherExtensions(const ProfileSubject& s) {  // CE-11
  static const std::set<int> kAllowed = {NID_key_usage, NID_basic_constraints,
                                         NID_certificate_policies, NID_subject_key_identifier,
                                         NID_authority_key_identifier, NID_crl_distribution_points};
  std::vector<std::string> extra;
  for (int i = 0; i < X509_get_ext_count(s.cert); ++i) {
    const ASN1_OBJECT* obj = X509_EXTENSION_get_object(X509_get_ext(s.cert, i));
    const int nid = OBJ_obj2nid(obj);
    const std::string oid = OidText(obj);
    if (kAllowed.count(nid) || oid == kTnAuthListOid) continue;
    extra.push_back(nid != NID_undef ? OBJ_nid2sn(nid) : oid);
  }
  RuleResult r{"no unspecified extensions", "only KU, BC, CP, SKI, AKI, CRLDP, TNAuthList"};
  if (!extra.empty()) {
    r.observed = absl::StrCat("unexpected: ", absl::StrJoin(extra, ", "));
    r.findings.push_back(Full("only the extensions of ATIS-1000080 §6.4.1"));
  }
  return r;
}

RuleResult Validity(const ProfileSubject& s) {  // at `now`; a validation asks OpenSSL instead
  const absl::Time nb = Asn1TimeToTime(X509_get0_notBefore(s.cert));
  const absl::Time na = Asn1TimeToTime(X509_get0_notAfter(s.cert));
  RuleResult r{"valid now", absl::StrCat(FormatUtc(nb), " .. ", FormatUtc(na))};
  if (s.now < nb) r.findings.push_back(Full("not yet valid"));
  if (s.now > na) r.findings.push_back(Full("expired"));
  return r;
}

RuleResult ValidityPeriod(const ProfileSubject& s) {  // CE-14: limits unconfirmed
  const absl::Time nb = Asn1TimeToTime(X509_get0_notBefore(s.cert));
  const absl::Time na = Asn1TimeToTime(X509_get0_notAfter(s.cert));
  RuleResult r{"validity period",
               absl::StrCat(absl::ToInt64Hours(na - nb) / 24,
                            " days (no limit confirmed in the standards)")};
  r.info_only = true;
  return r;
}

constexpr ProfileRule kRules[] = {
    {"EXT", Extensions},
    {"CE-1", Version},
    {"CE-2", Serial},
    {"CE-3", Algorithms},
    {"CE-4", Subject},
    {"CE-5", BasicConstraints},
    {"CE-6", KeyUsage},
    {"CE-7", KeyIdentifiers},
    {"CE-8", Policies},
    {"CE-9", CrlDistributionPoints},
    {"CE-10", TnAuthList},
    {"DL-3", ChainScope},
    {"CE-11", OtherExtensions},
    {"VALID", Validity},
    {"CE-14", ValidityPeriod},
};

// The DER value of the only extension `oid` of `cert`; sets *count to how many there are.
std::optional<std::string_view> ExtensionValue(const X509* cert, const char* oid, int* count) {
  *count = 0;
  Asn1ObjectPtr obj(OBJ_txt2obj(oid, 1));
  if (!obj) return std::nullopt;
  int first = -1;
  for (int idx = X509_get_ext_by_OBJ(cert, obj.get(), -1); idx >= 0;
       idx = X509_get_ext_by_OBJ(cert, obj.get(), idx)) {
    if (first < 0) first = idx;
    ++*count;
  }
  if (first < 0) return std::nullopt;
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, first));
  return std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                          static_cast<size_t>(ASN1_STRING_length(data)));
}

}  // namespace

std::string_view CertRoleName(CertRole role) {
  switch (role) {
    case CertRole::kEndEntity:
      return "end-entity";
    case CertRole::kIntermediate:
      return "intermediate";
    case CertRole::kRoot:
      return "root";
  }
  return "?";
}

CertRole RoleOf(const X509* cert) {
  X509* c = Mutable(cert);
  if (X509_check_ca(c) == 0) return CertRole::kEndEntity;
  // Self-issued (issuer name = subject name) covers both the self-signed root and the rollover
  // certificates of `ca self-issue`, which follow the root profile.
  const bool self_issued = X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
  return self_issued ? CertRole::kRoot : CertRole::kIntermediate;
}

ProfileSubject MakeProfileSubject(const X509* cert, CertRole role, const STACK_OF(X509) * chain,
                                  absl::Time now) {
  (void)X509_get_extension_flags(Mutable(cert));  // computes OpenSSL's cached extension data
  ERR_clear_error();
  ProfileSubject s;
  s.cert = cert;
  s.role = role;
  s.chain = chain;
  s.now = now;
  std::optional<std::string_view> tn = ExtensionValue(cert, kTnAuthListOid, &s.tn_auth_list_extensions);
  if (tn.has_value()) s.tn_auth_list = ParseTnAuthList(*tn);
  int crit = 0;
  CertificatePoliciesPtr policies(static_cast<CERTIFICATEPOLICIES*>(
      X509_get_ext_d2i(cert, NID_certificate_policies, &crit, nullptr)));
  ERR_clear_error();
  if (policies || crit == -1) {
    s.policy_oids.emplace();
    for (int i = 0; policies && i < sk_POLICYINFO_num(policies.get()); ++i) {
      s.policy_oids->push_back(OidText(sk_POLICYINFO_value(policies.get(), i)->policyid));
    }
  }
  return s;
}

std::span<const ProfileRule> ShakenProfileRules() { return kRules; }

Judgement Judge(const ProfileFinding& finding, ProfileStrictness strictness) {
  const bool strict = strictness == ProfileStrictness::kStrict;
  switch (finding.enforcement) {
    case Enforcement::kAlways:
      return Judgement::kReject;
    case Enforcement::kStrict:
      return strict ? Judgement::kReject : Judgement::kWarn;
    case Enforcement::kStrictOnly:
      return strict ? Judgement::kReject : Judgement::kIgnore;
    case Enforcement::kFullProfile:
    case Enforcement::kAdvice:
      return Judgement::kIgnore;
  }
  return Judgement::kIgnore;
}

Reason ValidateProfile(const ProfileSubject& subject, ProfileStrictness strictness,
                       CertificateInfo* info, std::string* detail) {
  std::vector<std::string> warnings;
  for (const ProfileRule& rule : ShakenProfileRules()) {
    RuleResult result = rule.check(subject);
    for (ProfileFinding& f : result.findings) {
      switch (Judge(f, strictness)) {
        case Judgement::kReject:
          *detail = std::move(f.detail);
          return f.reason;
        case Judgement::kWarn:
          warnings.push_back(f.note.empty() ? std::move(f.detail) : std::move(f.note));
          break;
        case Judgement::kIgnore:
          break;
      }
    }
  }
  if (subject.tn_auth_list.ok()) info->tn_auth_list = *subject.tn_auth_list;
  info->spc = FirstSpc(info->tn_auth_list);
  if (subject.policy_oids.has_value()) info->policy_oids = *subject.policy_oids;
  for (std::string& w : warnings) info->profile_warnings.push_back(std::move(w));
  return Reason::kPassed;
}

absl::StatusOr<CertificateInfo> DescribeCertificate(const X509* cert) {
  ProfileSubject s = MakeProfileSubject(cert, CertRole::kEndEntity);
  if (!s.tn_auth_list.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TNAuthList extension is malformed: ", s.tn_auth_list.status().message()));
  }
  CertificateInfo info;
  info.subject = NameText(X509_get_subject_name(cert), /*escape_non_ascii=*/true);
  info.issuer = NameText(X509_get_issuer_name(cert), /*escape_non_ascii=*/true);
  info.serial_hex = SerialHex(X509_get0_serialNumber(cert));
  info.not_before = Asn1TimeToTime(X509_get0_notBefore(cert));
  info.not_after = Asn1TimeToTime(X509_get0_notAfter(cert));
  info.tn_auth_list = *std::move(s.tn_auth_list);
  info.spc = FirstSpc(info.tn_auth_list);
  if (s.policy_oids.has_value()) info.policy_oids = *std::move(s.policy_oids);
  return info;
}

}  // namespace shaken::stir
