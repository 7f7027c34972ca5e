#include "stir/cert_validator.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "stir/status_macros.h"

namespace shaken::stir {

// ---------------------------------------------------------------------------------------------
// PEM chain parsing.

namespace {

constexpr std::string_view kBeginCert = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEndCert = "-----END CERTIFICATE-----";

using Asn1ObjPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;
using CertPoliciesPtr =
    std::unique_ptr<CERTIFICATEPOLICIES, OpenSslDeleter<CERTIFICATEPOLICIES_free>>;

struct OpensslFreeDeleter {
  void operator()(void* p) const { OPENSSL_free(p); }
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view SkipSpace(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  return s.substr(i);
}

}  // namespace

absl::StatusOr<std::vector<X509Ptr>> ParsePemChain(std::string_view pem, size_t max_certs,
                                                   size_t max_bytes) {
  if (pem.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate chain is ", pem.size(), " bytes; the limit is ", max_bytes));
  }
  std::vector<X509Ptr> certs;
  std::string_view rest = SkipSpace(pem);
  if (rest.empty()) return absl::InvalidArgumentError("certificate chain is empty");
  while (!rest.empty()) {
    if (!rest.starts_with(kBeginCert)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate ", certs.size() + 1,
          ": expected '-----BEGIN CERTIFICATE-----' (the body must be a PEM chain, leaf first)"));
    }
    size_t end = rest.find(kEndCert);
    if (end == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", certs.size() + 1, ": missing END CERTIFICATE line"));
    }
    if (certs.size() == max_certs) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate chain has more than ", max_certs, " certificates"));
    }
    std::string_view block = rest.substr(0, end + kEndCert.size());
    rest = SkipSpace(rest.substr(block.size()));

    BioPtr bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    char* name_raw = nullptr;
    char* header_raw = nullptr;
    unsigned char* data_raw = nullptr;
    long len = 0;
    int ok = bio ? PEM_read_bio(bio.get(), &name_raw, &header_raw, &data_raw, &len) : 0;
    std::unique_ptr<char, OpensslFreeDeleter> name(name_raw);
    std::unique_ptr<char, OpensslFreeDeleter> header(header_raw);
    std::unique_ptr<unsigned char, OpensslFreeDeleter> data(data_raw);
    ERR_clear_error();
    if (!ok || len <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", certs.size() + 1, ": bad PEM base64"));
    }
    if (header != nullptr && header.get()[0] != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", certs.size() + 1, ": PEM headers are not allowed"));
    }
    const unsigned char* p = data.get();
    X509Ptr cert(d2i_X509(nullptr, &p, len));
    if (!cert || p != data.get() + len) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", certs.size() + 1, ": not a DER X.509 certificate"));
    }
    certs.push_back(std::move(cert));
  }
  return certs;
}

// ---------------------------------------------------------------------------------------------
// TNAuthList (RFC 8226 §9) with a small bounds-checked DER reader.

namespace {

struct Tlv {
  uint8_t tag = 0;
  std::string_view value;
};

constexpr size_t kMaxTnEntries = 1024;
constexpr size_t kMaxSpcBytes = 64;
constexpr uint64_t kMaxRangeCount = uint64_t{1} << 63;  // as documented in cert_validator.h

// ReadTlv reads one DER TLV from the front of `in` (low-tag-number form only; definite lengths of
// at most 4 length bytes, minimally encoded) and advances `in`.
absl::StatusOr<Tlv> ReadTlv(std::string_view& in) {
  if (in.size() < 2) return absl::InvalidArgumentError("truncated DER element");
  Tlv tlv;
  tlv.tag = static_cast<uint8_t>(in[0]);
  if ((tlv.tag & 0x1F) == 0x1F) return absl::InvalidArgumentError("high-tag-number DER tag");
  size_t pos = 1;
  uint8_t first = static_cast<uint8_t>(in[pos++]);
  size_t length = 0;
  if (first < 0x80) {
    length = first;
  } else {
    size_t n = first & 0x7F;
    if (n == 0) return absl::InvalidArgumentError("indefinite DER length");
    if (n > 4) return absl::InvalidArgumentError("DER length too large");
    if (in.size() - pos < n) return absl::InvalidArgumentError("truncated DER length");
    for (size_t i = 0; i < n; ++i) length = (length << 8) | static_cast<uint8_t>(in[pos++]);
    if (length < 0x80 || (n > 1 && (length >> (8 * (n - 1))) == 0)) {
      return absl::InvalidArgumentError("non-minimal DER length");
    }
  }
  if (length > in.size() - pos) {
    return absl::InvalidArgumentError(
        absl::StrCat("DER length ", length, " exceeds the ", in.size() - pos, " bytes left"));
  }
  tlv.value = in.substr(pos, length);
  in.remove_prefix(pos + length);
  return tlv;
}

absl::StatusOr<Tlv> ReadOnly(std::string_view in, std::string_view what) {
  ASSIGN_OR_RETURN(Tlv tlv, ReadTlv(in));
  if (!in.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("trailing bytes after ", absl::string_view(what.data(), what.size())));
  return tlv;
}

absl::StatusOr<std::string> TelephoneNumber(const Tlv& tlv) {
  if (tlv.tag != 0x16) return absl::InvalidArgumentError("TelephoneNumber is not an IA5String");
  if (tlv.value.empty() || tlv.value.size() > 15) {
    return absl::InvalidArgumentError("TelephoneNumber must have 1 to 15 characters");
  }
  for (char c : tlv.value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '#' && c != '*') {
      return absl::InvalidArgumentError("TelephoneNumber has a character outside 0-9 # *");
    }
  }
  return std::string(tlv.value);
}

absl::StatusOr<uint64_t> PositiveInteger(const Tlv& tlv) {
  if (tlv.tag != 0x02) return absl::InvalidArgumentError("count is not an INTEGER");
  std::string_view v = tlv.value;
  if (v.empty()) return absl::InvalidArgumentError("empty INTEGER");
  if (static_cast<uint8_t>(v[0]) & 0x80) return absl::InvalidArgumentError("negative count");
  if (v.size() > 1 && v[0] == 0 && !(static_cast<uint8_t>(v[1]) & 0x80)) {
    return absl::InvalidArgumentError("non-minimal INTEGER");
  }
  if (v[0] == 0) v.remove_prefix(1);
  if (v.size() > 8) return absl::InvalidArgumentError("count too large");
  uint64_t value = 0;
  for (char c : v) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

}  // namespace

absl::StatusOr<std::vector<TnAuthEntry>> ParseTnAuthList(std::string_view der) {
  ASSIGN_OR_RETURN(Tlv list, ReadOnly(der, "TNAuthorizationList"));
  if (list.tag != 0x30) return absl::InvalidArgumentError("TNAuthorizationList is not a SEQUENCE");
  std::vector<TnAuthEntry> entries;
  std::string_view rest = list.value;
  while (!rest.empty()) {
    if (entries.size() == kMaxTnEntries) {
      return absl::InvalidArgumentError(
          absl::StrCat("TNAuthorizationList has more than ", kMaxTnEntries, " entries"));
    }
    ASSIGN_OR_RETURN(Tlv entry, ReadTlv(rest));
    TnAuthEntry out;
    switch (entry.tag) {
      case 0xA0: {  // spc [0] EXPLICIT ServiceProviderCode (IA5String)
        ASSIGN_OR_RETURN(Tlv spc, ReadOnly(entry.value, "spc"));
        if (spc.tag != 0x16) return absl::InvalidArgumentError("spc is not an IA5String");
        if (spc.value.empty() || spc.value.size() > kMaxSpcBytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("spc must have 1 to ", kMaxSpcBytes, " characters"));
        }
        for (char c : spc.value) {
          if (c < 0x21 || c > 0x7E) {
            return absl::InvalidArgumentError("spc has a non-printable or non-ASCII character");
          }
        }
        out.kind = TnAuthEntry::Kind::kSpc;
        out.value = std::string(spc.value);
        break;
      }
      case 0xA1: {  // range [1] TelephoneNumberRange ::= SEQUENCE { start, count }
        std::string_view body = entry.value;
        // Explicit tagging wraps a SEQUENCE; implicit tagging holds its members directly.
        if (!body.empty() && static_cast<uint8_t>(body[0]) == 0x30) {
          ASSIGN_OR_RETURN(Tlv seq, ReadOnly(body, "range"));
          body = seq.value;
        }
        ASSIGN_OR_RETURN(Tlv start, ReadTlv(body));
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(start));
        ASSIGN_OR_RETURN(Tlv count, ReadOnly(body, "range count"));
        ASSIGN_OR_RETURN(out.count, PositiveInteger(count));
        if (out.count < 2) return absl::InvalidArgumentError("range count must be at least 2");
        if (out.count > kMaxRangeCount) {
          return absl::InvalidArgumentError(
              absl::StrCat("range count ", out.count, " exceeds 2^63"));
        }
        out.kind = TnAuthEntry::Kind::kRange;
        break;
      }
      case 0xA2: {  // one [2] EXPLICIT TelephoneNumber
        ASSIGN_OR_RETURN(Tlv tn, ReadOnly(entry.value, "one"));
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(tn));
        out.kind = TnAuthEntry::Kind::kOne;
        break;
      }
      case 0x82: {  // one [2] IMPLICIT TelephoneNumber
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(Tlv{0x16, entry.value}));
        out.kind = TnAuthEntry::Kind::kOne;
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat("TNEntry has tag 0x", absl::Hex(entry.tag),
                                                       "; expected [0] spc, [1] range or [2] one"));
    }
    entries.push_back(std::move(out));
  }
  if (entries.empty()) return absl::InvalidArgumentError("TNAuthorizationList is empty");
  return entries;
}

bool TnAuthListHasTns(const std::vector<TnAuthEntry>& entries) {
  for (const TnAuthEntry& e : entries) {
    if (e.kind != TnAuthEntry::Kind::kSpc) return true;
  }
  return false;
}

namespace {

// DigitsValue reads a string of 1 to 18 decimal digits (a TelephoneNumber has at most 15).
std::optional<uint64_t> DigitsValue(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

bool TnAuthListCovers(const std::vector<TnAuthEntry>& entries, std::string_view tn) {
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        break;
      case TnAuthEntry::Kind::kOne:
        if (e.value == tn) return true;
        break;
      case TnAuthEntry::Kind::kRange: {
        // RFC 8226 §9: `count` numbers from `start`, all as long as `start`; a number with
        // '#' or '*', or of another length, is in no range.
        if (e.value.size() != tn.size()) break;
        std::optional<uint64_t> start = DigitsValue(e.value);
        std::optional<uint64_t> value = DigitsValue(tn);
        if (start && value && *value >= *start && *value - *start < e.count) return true;
        break;
      }
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// CertValidator.

struct CertValidator::Trust {
  CertValidatorOptions options;
  X509StorePtr store;
  bool have_crls = false;
  absl::Time crl_next_update = absl::InfiniteFuture();  // earliest nextUpdate of loaded CRLs
};

namespace {

absl::Time Asn1ToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || !ASN1_TIME_to_tm(t, &tm)) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string SerialHex(const X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  std::unique_ptr<char, OpensslFreeDeleter> hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : "";
}

std::string OidText(const ASN1_OBJECT* obj) {
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof(buf), obj, /*no_name=*/1);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return "";
  return std::string(buf, static_cast<size_t>(n));
}

absl::StatusOr<std::shared_ptr<const CertValidator::Trust>> LoadTrust(CertValidatorOptions options);

void FillNamesAndValidity(const X509* cert, CertificateInfo* info) {
  info->subject = NameToString(X509_get_subject_name(cert));
  info->issuer = NameToString(X509_get_issuer_name(cert));
  info->serial_hex = SerialHex(cert);
  info->not_before = Asn1ToTime(X509_get0_notBefore(cert));
  info->not_after = Asn1ToTime(X509_get0_notAfter(cert));
}

// Ignores "no CRL for this issuer" when CRLs are optional (require_crl = false).
int VerifyCallbackCrlOptional(int ok, X509_STORE_CTX* ctx) {
  if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
  }
  return ok;
}

// MapVerifyError turns an X509_verify_cert error into a reason (ATIS-1000082 E17 and the 437
// family of docs/standards.md#reasons).
Reason MapVerifyError(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Reason::kCertExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Reason::kCertNotYetValid;
    case X509_V_ERR_CERT_REVOKED:
      return Reason::kCertRevoked;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return Reason::kCertUntrusted;
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
      return Reason::kCertKeyUsage;
    default:
      return Reason::kCertInvalid;
  }
}

void AddWarning(CertificateInfo* info, std::string text) {
  info->profile_warnings.push_back(std::move(text));
}

// FindUniqueExtension returns the index of the extension `obj`, -1 if absent, -2 if repeated.
int FindUniqueExtension(const X509* cert, const ASN1_OBJECT* obj) {
  int idx = X509_get_ext_by_OBJ(cert, obj, -1);
  if (idx < 0) return -1;
  if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0) return -2;
  return idx;
}

bool IsUpperAlnum(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && !(c >= 'A' && c <= 'Z')) {
      return false;
    }
  }
  return !s.empty();
}

// CheckProfile applies the SHAKEN end-entity profile (ATIS-1000080 §6.4.1) to `leaf` and fills
// `info`. Returns kPassed or the failing reason with `detail`.
Reason CheckProfile(X509* leaf, STACK_OF(X509) * chain, bool strict, CertificateInfo* info,
                    std::string* detail) {
  const uint32_t flags = X509_get_extension_flags(leaf);
  if (flags & EXFLAG_INVALID) {
    *detail = "the certificate has malformed or duplicate extensions";
    return Reason::kCertInvalid;
  }
  // CE-3: id-ecPublicKey on P-256.
  EVP_PKEY* key = X509_get0_pubkey(leaf);
  if (key == nullptr || !IsP256Key(key)) {
    *detail = "the signing certificate's key is not an EC P-256 key (ATIS-1000080 §6.4.1)";
    return Reason::kCertKeyType;
  }
  // CE-5: the end entity is not a CA.
  if (flags & EXFLAG_CA) {
    *detail = "the signing certificate is a CA certificate (BasicConstraints CA:TRUE)";
    return Reason::kCertInvalid;
  }
  // CE-6: KeyUsage critical, digitalSignature only.
  const int ku_idx = X509_get_ext_by_NID(leaf, NID_key_usage, -1);
  const bool ku_present = (flags & EXFLAG_KUSAGE) != 0;
  const uint32_t ku = X509_get_key_usage(leaf);
  if (ku_present && !(ku & KU_DIGITAL_SIGNATURE)) {
    *detail = "KeyUsage does not allow digitalSignature";
    return Reason::kCertKeyUsage;
  }
  const bool ku_critical =
      ku_idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(leaf, ku_idx)) == 1;
  if (strict) {
    if (!ku_present || !ku_critical || ku != KU_DIGITAL_SIGNATURE) {
      *detail =
          "KeyUsage must be present, critical and digitalSignature only "
          "(ATIS-1000080 §6.4.1)";
      return Reason::kCertKeyUsage;
    }
  } else if (!ku_present) {
    AddWarning(info, "KeyUsage is absent");
  } else {
    if (!ku_critical) AddWarning(info, "KeyUsage is not critical");
    if (ku != KU_DIGITAL_SIGNATURE) AddWarning(info, "KeyUsage has bits besides digitalSignature");
  }
  // CE-10: TNAuthList (RFC 8226).
  Asn1ObjPtr tn_oid(OBJ_txt2obj(kTnAuthListOid, 1));
  if (!tn_oid) {
    *detail = "internal: cannot build the TNAuthList OID";
    return Reason::kCertInvalid;
  }
  int tn_idx = FindUniqueExtension(leaf, tn_oid.get());
  if (tn_idx == -1) {
    *detail =
        "the signing certificate has no TNAuthList extension (RFC 8226, OID "
        "1.3.6.1.5.5.7.1.26)";
    return Reason::kCertNoTnAuthList;
  }
  if (tn_idx == -2) {
    *detail = "the TNAuthList extension appears more than once";
    return Reason::kCertInvalid;
  }
  const ASN1_OCTET_STRING* tn_data = X509_EXTENSION_get_data(X509_get_ext(leaf, tn_idx));
  absl::StatusOr<std::vector<TnAuthEntry>> tn_list = ParseTnAuthList(
      std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(tn_data)),
                       static_cast<size_t>(ASN1_STRING_length(tn_data))));
  if (!tn_list.ok()) {
    *detail = absl::StrCat("the TNAuthList extension is malformed: ", tn_list.status().message());
    return Reason::kCertInvalid;
  }
  info->tn_auth_list = *std::move(tn_list);
  for (const TnAuthEntry& e : info->tn_auth_list) {
    if (e.kind == TnAuthEntry::Kind::kSpc) {
      info->spc = e.value;
      break;
    }
  }
  // Two shapes are a SHAKEN profile: exactly one SPC (ATIS-1000080 v005), or only TN and range
  // entries (a delegate certificate, RFC 9060 / ATIS-1000092), whose numbers the verifier checks
  // orig.tn against (Verifier::Finish, DL-2).
  const bool single_spc =
      info->tn_auth_list.size() == 1 && info->tn_auth_list[0].kind == TnAuthEntry::Kind::kSpc;
  const bool delegate = info->spc.empty();  // ParseTnAuthList refuses an empty list
  if (strict) {
    if (!single_spc && !delegate) {
      *detail =
          "TNAuthList must hold exactly one SPC entry (ATIS-1000080 v005), or only TN and range "
          "entries (a delegate certificate, RFC 9060)";
      return Reason::kCertNoTnAuthList;
    }
    if (single_spc && !IsUpperAlnum(info->spc)) {
      *detail = "the SPC must be digits and upper-case letters (ATIS-1000080 v005)";
      return Reason::kCertInvalid;
    }
  } else if (!delegate) {
    if (info->tn_auth_list.size() > 1) AddWarning(info, "TNAuthList has more than one entry");
    if (!IsUpperAlnum(info->spc)) {
      AddWarning(info, "the SPC is not digits and upper-case letters");
    }
  }
  // CE-8: certificate policy in the SHAKEN arc; .3 (CP v1.3) and .4 (CP v1.4) are current, .1
  // is flagged invalid by the zlint SHAKEN lints (P17).
  int crit = 0;
  CertPoliciesPtr policies(static_cast<CERTIFICATEPOLICIES*>(
      X509_get_ext_d2i(leaf, NID_certificate_policies, &crit, nullptr)));
  if (!policies && crit != -1) {
    ERR_clear_error();
    *detail = "the CertificatePolicies extension is malformed or repeated";
    return Reason::kCertInvalid;
  }
  std::vector<std::string> shaken_oids;
  for (int i = 0; policies && i < sk_POLICYINFO_num(policies.get()); ++i) {
    std::string oid = OidText(sk_POLICYINFO_value(policies.get(), i)->policyid);
    if (std::string_view(oid).starts_with(absl::StrCat(kShakenPolicyArc, ".")))
      shaken_oids.push_back(oid);
    info->policy_oids.push_back(std::move(oid));
  }
  if (shaken_oids.empty()) {
    *detail = absl::StrCat("no SHAKEN certificate policy (", kShakenPolicyArc, ".*); found [",
                           absl::StrJoin(info->policy_oids, ", "), "]");
    return Reason::kCertPolicy;
  }
  const std::string cp_v13 = absl::StrCat(kShakenPolicyArc, ".3");
  const std::string cp_v14 = absl::StrCat(kShakenPolicyArc, ".4");
  const std::string cp_v1 = absl::StrCat(kShakenPolicyArc, ".1");
  if (strict) {
    if (info->policy_oids.size() != 1 || (shaken_oids[0] != cp_v13 && shaken_oids[0] != cp_v14)) {
      *detail = absl::StrCat("the certificate policy must be exactly one of ", cp_v13, " or ",
                             cp_v14, "; found [", absl::StrJoin(info->policy_oids, ", "), "]");
      return Reason::kCertPolicy;
    }
  } else {
    for (const std::string& oid : shaken_oids) {
      if (oid == cp_v1) {
        AddWarning(info, absl::StrCat("certificate policy ", cp_v1, " is considered invalid"));
      } else if (oid != cp_v13 && oid != cp_v14) {
        AddWarning(info, absl::StrCat("unknown SHAKEN certificate policy ", oid));
      }
    }
  }
  if (strict) {
    // CE-1, CE-3, CE-5.
    if (X509_get_version(leaf) != X509_VERSION_3) {
      *detail = "the signing certificate is not X.509 v3";
      return Reason::kCertInvalid;
    }
    if (X509_get_signature_nid(leaf) != NID_ecdsa_with_SHA256) {
      *detail = "the signing certificate is not signed with ecdsa-with-SHA256";
      return Reason::kCertInvalid;
    }
    int bc_idx = X509_get_ext_by_NID(leaf, NID_basic_constraints, -1);
    if (bc_idx < 0 || X509_EXTENSION_get_critical(X509_get_ext(leaf, bc_idx)) != 1) {
      *detail = "BasicConstraints must be present and critical (ATIS-1000080 §6.4.1)";
      return Reason::kCertInvalid;
    }
    // CE-10: CA certificates must not carry a TNAuthList. In a delegate chain (RFC 9060) the
    // delegating CA's certificate carries the scope it may delegate; DL-3 (that scope covers the
    // leaf's) is not checked yet, so such a list neither helps nor is required.
    for (int i = 1; !delegate && i < sk_X509_num(chain); ++i) {
      if (X509_get_ext_by_OBJ(sk_X509_value(chain, i), tn_oid.get(), -1) >= 0) {
        *detail = "a CA certificate of the chain carries a TNAuthList (ATIS-1000080 v005)";
        return Reason::kCertInvalid;
      }
    }
  }
  return Reason::kPassed;
}

absl::StatusOr<std::shared_ptr<const CertValidator::Trust>> LoadTrust(
    CertValidatorOptions options) {
  if (options.ca_file.empty() && options.ca_dir.empty()) {
    return absl::InvalidArgumentError(
        "no trust anchors: set a CA file and/or a CA directory of hashed names (c_rehash)");
  }
  auto trust = std::make_shared<CertValidator::Trust>();
  trust->store.reset(X509_STORE_new());
  if (!trust->store) return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_new");
  if (!options.ca_file.empty() &&
      !X509_STORE_load_file(trust->store.get(), options.ca_file.c_str())) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        absl::StrCat("cannot load trust anchors from CA file ", options.ca_file,
                                     " (expected PEM certificates)"));
  }
  if (!options.ca_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.ca_dir, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("CA directory ", options.ca_dir, " does not exist or is not a directory"));
    }
    if (!X509_STORE_load_path(trust->store.get(), options.ca_dir.c_str())) {
      return OpenSslError(absl::StatusCode::kInvalidArgument,
                          absl::StrCat("cannot use CA directory ", options.ca_dir));
    }
  }
  for (const std::string& path : options.crl_files) {
    ASSIGN_OR_RETURN(std::string data, ReadFile(path, 64 << 20));
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    int loaded = 0;
    std::vector<X509CrlPtr> crls;
    while (true) {
      X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
      if (!crl) break;
      crls.push_back(std::move(crl));
    }
    ERR_clear_error();
    if (crls.empty()) {  // DER
      const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
      X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size())));
      if (crl) crls.push_back(std::move(crl));
    }
    for (X509CrlPtr& crl : crls) {
      if (!X509_STORE_add_crl(trust->store.get(), crl.get())) {
        return OpenSslError(absl::StatusCode::kInvalidArgument,
                            absl::StrCat("cannot add a CRL from ", path));
      }
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      if (next != nullptr)
        trust->crl_next_update = std::min(trust->crl_next_update, Asn1ToTime(next));
      ++loaded;
    }
    if (loaded == 0) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("CRL file ", path, " holds no PEM or DER CRL"));
    }
    trust->have_crls = true;
  }
  trust->options = std::move(options);
  return std::shared_ptr<const CertValidator::Trust>(std::move(trust));
}

}  // namespace

CertValidator::CertValidator(std::shared_ptr<const Trust> trust) : trust_(std::move(trust)) {}
CertValidator::~CertValidator() = default;

absl::StatusOr<std::unique_ptr<CertValidator>> CertValidator::New(CertValidatorOptions options) {
  if (options.max_chain_certs == 0 || options.max_pem_bytes == 0) {
    return absl::InvalidArgumentError("max_chain_certs and max_pem_bytes must be positive");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const Trust> trust, LoadTrust(std::move(options)));
  return std::unique_ptr<CertValidator>(new CertValidator(std::move(trust)));
}

std::shared_ptr<const CertValidator::Trust> CertValidator::CurrentTrust() const {
  absl::MutexLock lock(&mu_);
  return trust_;
}

ProfileStrictness CertValidator::strictness() const { return CurrentTrust()->options.strictness; }

absl::Status CertValidator::Reload() { return Reload(CurrentTrust()->options); }

absl::Status CertValidator::Reload(CertValidatorOptions new_options) {
  if (new_options.max_chain_certs == 0 || new_options.max_pem_bytes == 0) {
    return absl::InvalidArgumentError("max_chain_certs and max_pem_bytes must be positive");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const Trust> trust, LoadTrust(std::move(new_options)));
  {
    absl::MutexLock lock(&mu_);
    trust_.swap(trust);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  return absl::OkStatus();  // the old Trust is freed here, outside the lock
}

CertificateResult CertValidator::ValidatePem(std::string_view pem, absl::Time now) const {
  std::shared_ptr<const Trust> trust = CurrentTrust();
  const CertValidatorOptions& opts = trust->options;
  absl::StatusOr<std::vector<X509Ptr>> certs =
      ParsePemChain(pem, opts.max_chain_certs, opts.max_pem_bytes);
  if (!certs.ok()) {
    return CertificateResult::Failure(Reason::kFetchNotPem, std::string(certs.status().message()));
  }
  X509* leaf = (*certs)[0].get();

  struct StackDeleter {
    void operator()(STACK_OF(X509) * sk) const { sk_X509_free(sk); }  // not the certificates
  };
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < certs->size(); ++i) sk_X509_push(untrusted.get(), (*certs)[i].get());

  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || !untrusted ||
      !X509_STORE_CTX_init(ctx.get(), trust->store.get(), leaf, untrusted.get())) {
    ERR_clear_error();
    return CertificateResult::Failure(Reason::kCertInvalid, "cannot set up chain validation");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(absl::ToUnixSeconds(now)));
  unsigned long flags = 0;
  if (trust->have_crls) {
    flags |= X509_V_FLAG_CRL_CHECK;
    if (opts.crl_check_all) flags |= X509_V_FLAG_CRL_CHECK_ALL;
  }
  if (opts.strictness == ProfileStrictness::kStrict) flags |= X509_V_FLAG_X509_STRICT;
  X509_VERIFY_PARAM_set_flags(param, flags);
  if (!opts.require_crl) X509_STORE_CTX_set_verify_cb(ctx.get(), VerifyCallbackCrlOptional);

  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    ERR_clear_error();
    std::string who = depth == 0 ? "the signing certificate"
                                 : absl::StrCat("the chain certificate at depth ", depth);
    if (bad != nullptr) absl::StrAppend(&who, " (", NameToString(X509_get_subject_name(bad)), ")");
    return CertificateResult::Failure(MapVerifyError(err),
                                      absl::StrCat(who, ": ", X509_verify_cert_error_string(err)));
  }

  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  auto verified = std::make_shared<VerifiedCertificate>();
  std::string detail;
  Reason profile = CheckProfile(leaf, chain, opts.strictness == ProfileStrictness::kStrict,
                                &verified->info, &detail);
  if (profile != Reason::kPassed) return CertificateResult::Failure(profile, std::move(detail));

  verified->valid_from = absl::InfinitePast();
  verified->valid_until = absl::InfiniteFuture();
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    verified->valid_from = std::max(verified->valid_from, Asn1ToTime(X509_get0_notBefore(c)));
    verified->valid_until = std::min(verified->valid_until, Asn1ToTime(X509_get0_notAfter(c)));
  }
  // A validation that relied on CRLs is good only until the earliest CRL must be refreshed.
  if (trust->have_crls)
    verified->valid_until = std::min(verified->valid_until, trust->crl_next_update);
  verified->public_key.reset(X509_get_pubkey(leaf));
  FillNamesAndValidity(leaf, &verified->info);
  CertificateResult out;
  out.cert = std::move(verified);
  return out;
}

absl::StatusOr<CertificateInfo> DescribeCertificate(const X509* cert) {
  CertificateInfo info;
  FillNamesAndValidity(cert, &info);
  Asn1ObjPtr tn_oid(OBJ_txt2obj(kTnAuthListOid, 1));
  int tn_idx = tn_oid ? X509_get_ext_by_OBJ(cert, tn_oid.get(), -1) : -1;
  if (tn_idx >= 0) {
    const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, tn_idx));
    absl::StatusOr<std::vector<TnAuthEntry>> list = ParseTnAuthList(
        std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                         static_cast<size_t>(ASN1_STRING_length(data))));
    if (!list.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the TNAuthList extension is malformed: ", list.status().message()));
    }
    info.tn_auth_list = *std::move(list);
    for (const TnAuthEntry& e : info.tn_auth_list) {
      if (e.kind == TnAuthEntry::Kind::kSpc) {
        info.spc = e.value;
        break;
      }
    }
  }
  int crit = 0;
  CertPoliciesPtr policies(static_cast<CERTIFICATEPOLICIES*>(
      X509_get_ext_d2i(cert, NID_certificate_policies, &crit, nullptr)));
  ERR_clear_error();
  for (int i = 0; policies && i < sk_POLICYINFO_num(policies.get()); ++i) {
    info.policy_oids.push_back(OidText(sk_POLICYINFO_value(policies.get(), i)->policyid));
  }
  return info;
}

}  // namespace shaken::stir
