#include "cli/lint.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/x509.h"
#include "stir/cert_validator.h"

namespace shaken::cli {
namespace {

using CertPoliciesPtr =
    std::unique_ptr<CERTIFICATEPOLICIES, stir::OpenSslDeleter<CERTIFICATEPOLICIES_free>>;
using DistPointsPtr = std::unique_ptr<CRL_DIST_POINTS, stir::OpenSslDeleter<CRL_DIST_POINTS_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, stir::OpenSslDeleter<BASIC_CONSTRAINTS_free>>;

std::string Oid(const ASN1_OBJECT* obj) {
  char buf[128];
  OBJ_obj2txt(buf, sizeof(buf), obj, 1);
  return buf;
}

bool ExtCritical(const X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::string Curve(const EVP_PKEY* key) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) return "";
  return name;
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

std::string_view LintStatusName(LintStatus s) {
  switch (s) {
    case LintStatus::kPass:
      return "PASS";
    case LintStatus::kFail:
      return "FAIL";
    case LintStatus::kWarn:
      return "WARN";
    case LintStatus::kInfo:
      return "INFO";
  }
  return "?";
}

CertRole RoleOf(const X509* cert) {
  X509* c = const_cast<X509*>(cert);
  if (X509_check_ca(c) == 0) return CertRole::kEndEntity;
  // Self-issued (issuer name = subject name) covers both the self-signed root and the rollover
  // certificates of `ca self-issue`, which follow the root profile.
  const bool self_issued =
      X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
  return self_issued ? CertRole::kRoot : CertRole::kIntermediate;
}

bool HasFailure(const std::vector<LintRow>& rows) {
  for (const LintRow& r : rows) {
    if (r.status == LintStatus::kFail) return true;
  }
  return false;
}

std::vector<LintRow> LintCertificate(const X509* cert_in, CertRole role, absl::Time now) {
  X509* cert = const_cast<X509*>(cert_in);
  std::vector<LintRow> rows;
  auto add = [&](const char* id, const char* item, LintStatus s, std::string detail) {
    rows.push_back({id, item, s, std::move(detail)});
  };
  const bool ee = role == CertRole::kEndEntity;
  const bool root = role == CertRole::kRoot;
  (void)X509_get_extension_flags(cert);  // computes the cached extension data
  ERR_clear_error();

  // CE-1.
  const long version = X509_get_version(cert);
  add("CE-1", "X.509 version 3", version == X509_VERSION_3 ? LintStatus::kPass : LintStatus::kFail,
      absl::StrCat("version ", version + 1));

  // CE-2.
  {
    stir::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
    const int bits = bn ? BN_num_bits(bn.get()) : 0;
    const bool positive = bn && !BN_is_negative(bn.get()) && !BN_is_zero(bn.get());
    LintStatus s = !positive ? LintStatus::kFail : bits >= 64 ? LintStatus::kPass : LintStatus::kFail;
    add("CE-2", "serial positive, >= 64 bits", s,
        absl::StrCat(SerialHex(X509_get0_serialNumber(cert)), " (", bits, " bits)"));
  }

  // CE-3.
  {
    const int sig_nid = X509_get_signature_nid(cert);
    EVP_PKEY* key = X509_get0_pubkey(cert);
    std::string curve = key != nullptr ? Curve(key) : "";
    const bool p256 = key != nullptr && stir::IsP256Key(key);
    const bool sig_ok = sig_nid == NID_ecdsa_with_SHA256 ||
                        (!ee && sig_nid == NID_ecdsa_with_SHA384);  // CP v1.4 §6.1.5 for CAs
    const bool key_ok = p256 || (!ee && curve == "secp384r1");
    add("CE-3", "ecdsa-with-SHA256, EC P-256 key", sig_ok && key_ok ? LintStatus::kPass : LintStatus::kFail,
        absl::StrCat("signature ", OBJ_nid2ln(sig_nid), ", key ",
                     key == nullptr ? "unreadable"
                                    : absl::StrCat(EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?",
                                                   curve.empty() ? "" : " ", curve)));
  }

  // CE-4.
  {
    const X509_NAME* subject = X509_get_subject_name(cert);
    std::string c = NameEntry(subject, NID_countryName);
    std::string o = NameEntry(subject, NID_organizationName);
    std::string cn = NameEntry(subject, NID_commonName);
    std::vector<std::string> problems;
    LintStatus s = LintStatus::kPass;
    if (c.empty() || o.empty() || cn.empty()) {
      s = LintStatus::kFail;
      problems.push_back("subject must hold C, O and CN");
    }
    if (!c.empty() && c != "US") {
      if (s == LintStatus::kPass) s = LintStatus::kWarn;
      problems.push_back("C is not US (SHAKEN CP v1.4 §3.1)");
    }
    if (ee) {
      absl::StatusOr<stir::CertificateInfo> info = stir::DescribeCertificate(cert);
      std::string spc = info.ok() ? info->spc : "";
      if (!spc.empty() && cn != absl::StrCat("SHAKEN ", spc)) {
        s = LintStatus::kFail;
        problems.push_back(absl::StrCat("CN must be \"SHAKEN ", spc, "\""));
      }
    }
    if (root && cn.find("ROOT") == std::string::npos && cn.find("Root") == std::string::npos) {
      if (s == LintStatus::kPass) s = LintStatus::kWarn;
      problems.push_back("a root CN should include \"ROOT\"");
    }
    add("CE-4", "subject C, O, CN", s,
        absl::StrCat(NameText(subject), problems.empty() ? "" : ": ", absl::StrJoin(problems, "; ")));
  }

  // CE-5.
  {
    int crit = 0;
    BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
    ERR_clear_error();
    LintStatus s = LintStatus::kPass;
    std::string detail;
    if (!bc) {
      s = LintStatus::kFail;
      detail = "absent";
    } else {
      detail = absl::StrCat(crit == 1 ? "critical, " : "not critical, ", bc->ca ? "CA:TRUE" : "CA:FALSE");
      if (crit != 1) s = LintStatus::kFail;
      if (ee == (bc->ca != 0)) s = LintStatus::kFail;
    }
    add("CE-5", ee ? "BasicConstraints critical, CA:FALSE" : "BasicConstraints critical, CA:TRUE",
        s, detail);
  }

  // CE-6.
  {
    const uint32_t flags = X509_get_extension_flags(cert);
    const uint32_t ku = X509_get_key_usage(cert);
    LintStatus s = LintStatus::kPass;
    std::vector<std::string> bits;
    if (ku & KU_DIGITAL_SIGNATURE) bits.push_back("digitalSignature");
    if (ku & KU_KEY_CERT_SIGN) bits.push_back("keyCertSign");
    if (ku & KU_CRL_SIGN) bits.push_back("cRLSign");
    if (ku & ~(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN)) bits.push_back("others");
    std::string detail;
    if (!(flags & EXFLAG_KUSAGE)) {
      s = LintStatus::kFail;
      detail = "absent";
    } else {
      detail = absl::StrCat(ExtCritical(cert, NID_key_usage) ? "critical, " : "not critical, ",
                            absl::StrJoin(bits, ", "));
      if (!ExtCritical(cert, NID_key_usage)) s = LintStatus::kFail;
      if (ee && ku != KU_DIGITAL_SIGNATURE) s = LintStatus::kFail;
      if (!ee) {
        if (!(ku & KU_KEY_CERT_SIGN) || (ku & ~(KU_KEY_CERT_SIGN | KU_CRL_SIGN))) {
          s = LintStatus::kFail;
        } else if (ku & KU_CRL_SIGN && s == LintStatus::kPass) {
          s = LintStatus::kWarn;
          detail += " (ATIS-1000080 v005: keyCertSign only; cRLSign is needed to sign CRLs)";
        }
      }
    }
    add("CE-6", ee ? "KeyUsage critical, digitalSignature only" : "KeyUsage critical, keyCertSign",
        s, detail);
  }

  // CE-7.
  {
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert);
    const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
    LintStatus s = LintStatus::kPass;
    std::vector<std::string> notes;
    if (ski == nullptr) {
      s = LintStatus::kFail;
      notes.push_back("no SubjectKeyIdentifier");
    } else {
      // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value.
      const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert);
      unsigned char sha1[SHA_DIGEST_LENGTH];
      SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), sha1);
      if (ASN1_STRING_length(ski) != SHA_DIGEST_LENGTH ||
          memcmp(ASN1_STRING_get0_data(ski), sha1, SHA_DIGEST_LENGTH) != 0) {
        s = LintStatus::kWarn;
        notes.push_back("SKI is not the 160-bit SHA-1 of the public key (v005)");
      } else {
        notes.push_back("SKI = SHA-1 of the key");
      }
    }
    if (aki == nullptr) {
      if (!root) {
        s = LintStatus::kFail;
        notes.push_back("no AuthorityKeyIdentifier");
      }
    } else {
      notes.push_back("AKI present");
    }
    add("CE-7", root ? "SKI" : "SKI and AKI", s, absl::StrJoin(notes, "; "));
  }

  // CE-8.
  {
    int crit = 0;
    CertPoliciesPtr cp(static_cast<CERTIFICATEPOLICIES*>(
        X509_get_ext_d2i(cert, NID_certificate_policies, &crit, nullptr)));
    ERR_clear_error();
    std::vector<std::string> oids;
    for (int i = 0; cp && i < sk_POLICYINFO_num(cp.get()); ++i) {
      oids.push_back(Oid(sk_POLICYINFO_value(cp.get(), i)->policyid));
    }
    const std::string v13 = absl::StrCat(stir::kShakenPolicyArc, ".3");
    const std::string v14 = absl::StrCat(stir::kShakenPolicyArc, ".4");
    LintStatus s = LintStatus::kPass;
    std::string detail = oids.empty() ? "absent" : absl::StrJoin(oids, ", ");
    if (root) {
      if (!oids.empty()) {
        s = LintStatus::kFail;
        detail += " (the root must not carry the SHAKEN policy, v005)";
      }
    } else if (oids.size() != 1 || (oids[0] != v13 && oids[0] != v14)) {
      s = LintStatus::kFail;
      detail += absl::StrCat(" (expected exactly one of ", v13, ", ", v14, ")");
    }
    add("CE-8", root ? "no CertificatePolicies on the root" : "one SHAKEN policy OID (.3 or .4)", s,
        detail);
  }

  // CE-9.
  {
    int crit = 0;
    DistPointsPtr dps(static_cast<CRL_DIST_POINTS*>(
        X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit, nullptr)));
    ERR_clear_error();
    LintStatus s = LintStatus::kPass;
    std::vector<std::string> notes;
    const int n = dps ? sk_DIST_POINT_num(dps.get()) : 0;
    if (root) {
      if (n > 0) {
        s = LintStatus::kFail;
        notes.push_back("a root must not carry CRLDistributionPoints (v005)");
      } else {
        notes.push_back("absent");
      }
    } else if (n == 0) {
      s = ee ? LintStatus::kFail : LintStatus::kWarn;
      notes.push_back("absent");
    } else {
      if (n != 1) {
        s = LintStatus::kFail;
        notes.push_back(absl::StrCat(n, " distribution points (expected one)"));
      }
      const DIST_POINT* dp = sk_DIST_POINT_value(dps.get(), 0);
      bool http = false;
      if (dp->distpoint != nullptr && dp->distpoint->type == 0) {
        for (int i = 0; i < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); ++i) {
          const GENERAL_NAME* g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, i);
          if (g->type == GEN_URI) {
            std::string url(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier)),
                            static_cast<size_t>(ASN1_STRING_length(g->d.uniformResourceIdentifier)));
            notes.push_back(url);
            if (url.starts_with("http://") || url.starts_with("https://")) http = true;
          }
        }
      }
      if (!http) {
        s = LintStatus::kFail;
        notes.push_back("no HTTP URL");
      }
      if (dp->CRLissuer == nullptr) {
        if (s == LintStatus::kPass) s = ee ? LintStatus::kFail : LintStatus::kWarn;
        notes.push_back("no cRLIssuer (ATIS-1000080 v004+)");
      } else {
        notes.push_back("cRLIssuer present");
      }
    }
    add("CE-9", root ? "no CRLDistributionPoints on the root"
                     : "one CRL distribution point: HTTP URL + cRLIssuer",
        s, absl::StrJoin(notes, "; "));
  }

  // CE-10.
  {
    const bool present = [&] {
      ASN1_OBJECT* obj = OBJ_txt2obj(stir::kTnAuthListOid, 1);
      const bool p = obj != nullptr && X509_get_ext_by_OBJ(cert, obj, -1) >= 0;
      ASN1_OBJECT_free(obj);
      return p;
    }();
    absl::StatusOr<stir::CertificateInfo> info = stir::DescribeCertificate(cert);
    LintStatus s = LintStatus::kPass;
    std::string detail;
    if (!info.ok()) {
      s = LintStatus::kFail;
      detail = std::string(info.status().message());
    } else if (!ee) {
      if (present) {
        s = LintStatus::kFail;
        detail = "a CA certificate carries a TNAuthList (v005)";
      } else {
        detail = "absent";
      }
    } else if (!present) {
      s = LintStatus::kFail;
      detail = "absent";
    } else {
      std::vector<std::string> entries;
      for (const stir::TnAuthEntry& e : info->tn_auth_list) {
        switch (e.kind) {
          case stir::TnAuthEntry::Kind::kSpc:
            entries.push_back(absl::StrCat("spc ", e.value));
            break;
          case stir::TnAuthEntry::Kind::kOne:
            entries.push_back(absl::StrCat("tn ", e.value));
            break;
          case stir::TnAuthEntry::Kind::kRange:
            entries.push_back(absl::StrCat("range ", e.value, "+", e.count));
            break;
        }
      }
      detail = absl::StrJoin(entries, ", ");
      if (info->tn_auth_list.size() != 1 ||
          info->tn_auth_list[0].kind != stir::TnAuthEntry::Kind::kSpc) {
        s = LintStatus::kFail;
        detail += " (expected exactly one SPC entry)";
      } else if (!ValidateSpc(info->spc).ok()) {
        s = LintStatus::kFail;
        detail += " (SPC must be digits and upper-case letters)";
      }
    }
    add("CE-10", ee ? "TNAuthList with exactly one SPC" : "no TNAuthList on a CA", s, detail);
  }

  // CE-11.
  {
    static const std::set<int> kAllowed = {NID_key_usage, NID_basic_constraints,
                                           NID_certificate_policies, NID_subject_key_identifier,
                                           NID_authority_key_identifier,
                                           NID_crl_distribution_points};
    std::vector<std::string> extra;
    for (int i = 0; i < X509_get_ext_count(cert); ++i) {
      const ASN1_OBJECT* obj = X509_EXTENSION_get_object(X509_get_ext(cert, i));
      const int nid = OBJ_obj2nid(obj);
      std::string oid = Oid(obj);
      if (kAllowed.count(nid) || oid == stir::kTnAuthListOid) continue;
      extra.push_back(nid != NID_undef ? OBJ_nid2sn(nid) : oid);
    }
    add("CE-11", "no unspecified extensions", extra.empty() ? LintStatus::kPass : LintStatus::kFail,
        extra.empty() ? "only KU, BC, CP, SKI, AKI, CRLDP, TNAuthList"
                      : absl::StrCat("unexpected: ", absl::StrJoin(extra, ", ")));
  }

  // Validity at `now` and CE-14 (limits unconfirmed: information only).
  {
    absl::Time nb = Asn1TimeToAbsl(X509_get0_notBefore(cert));
    absl::Time na = Asn1TimeToAbsl(X509_get0_notAfter(cert));
    LintStatus s = (now < nb || now > na) ? LintStatus::kFail : LintStatus::kPass;
    add("VALID", "valid now", s,
        absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%SZ", nb, absl::UTCTimeZone()), " .. ",
                     absl::FormatTime("%Y-%m-%d %H:%M:%SZ", na, absl::UTCTimeZone()),
                     now < nb ? " (not yet valid)" : now > na ? " (expired)" : ""));
    add("CE-14", "validity period", LintStatus::kInfo,
        absl::StrCat(absl::ToInt64Hours(na - nb) / 24, " days (no limit confirmed in the standards)"));
  }
  return rows;
}

}  // namespace shaken::cli
