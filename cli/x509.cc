#include "cli/x509.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "stir/absl_compat.h"
#include "stir/der.h"
#include "stir/status_macros.h"

namespace shaken::cli {
namespace {

using Asn1ObjPtr = stir::Asn1ObjectPtr;
using Asn1OctetPtr = stir::Asn1OctetStringPtr;
using Asn1TimePtr = stir::Asn1TimePtr;
using DistPointsPtr = stir::CrlDistPointsPtr;

// AlgorithmIdentifier { ecdsa-with-SHA256 } with parameters absent (RFC 5758 §3.2).
constexpr unsigned char kEcdsaWithSha256AlgId[] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48,
                                                   0xCE, 0x3D, 0x04, 0x03, 0x02};

std::string Bytes(const unsigned char* p, int n) {
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

// SignedDer assembles SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }: the outer form
// shared by Certificate (RFC 5280 §4.1), CertificationRequest (RFC 2986 §4.2) and CertificateList
// (RFC 5280 §5.1).
absl::StatusOr<std::string> SignedDer(std::string_view tbs, const stir::Signer& signer) {
  ASSIGN_OR_RETURN(stir::Es256Signature raw, signer.SignDigest(stir::Sha256(tbs)));
  ASSIGN_OR_RETURN(std::string sig_der, stir::EcdsaRawToDer(raw));
  std::string body(tbs);
  body.append(reinterpret_cast<const char*>(kEcdsaWithSha256AlgId),
              sizeof(kEcdsaWithSha256AlgId));
  body += stir::DerEncode(0x03, std::string(1, '\0') + sig_der);  // no unused bits
  return stir::DerEncode(0x30, body);
}

// PlaceholderKey is a throwaway P-256 key. OpenSSL 3.0 has no setter for the AlgorithmIdentifier
// inside an X509 or X509_CRL TBS structure; signing once with this key makes OpenSSL fill both
// AlgorithmIdentifiers with ecdsa-with-SHA256 exactly as it encodes them. That signature is then
// discarded: the TBS is signed again through the real Signer.
const EVP_PKEY* PlaceholderKey() {
  static EVP_PKEY* key = EVP_EC_gen("P-256");
  return key;
}

}  // namespace

absl::StatusOr<X509NamePtr> ParseName(std::string_view dn) {
  X509NamePtr name(X509_NAME_new());
  std::string text(absl::StripAsciiWhitespace(ToAbsl(dn)));
  std::vector<std::string> parts;
  if (text.starts_with("/")) {
    parts = absl::StrSplit(absl::string_view(text).substr(1), '/', absl::SkipEmpty());
  } else {
    parts = absl::StrSplit(text, ',', absl::SkipEmpty());
  }
  if (parts.empty()) return absl::InvalidArgumentError("empty distinguished name");
  for (std::string& part : parts) {
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad name component '", part, "' in '", ToAbsl(dn), "': expected KEY=value"));
    }
    std::string key(absl::StripAsciiWhitespace(part.substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(part.substr(eq + 1)));
    if (value.empty() ||
        !X509_NAME_add_entry_by_txt(name.get(), key.c_str(), MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                    0)) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("bad name component '", part, "' in '", ToAbsl(dn), "'"));
    }
  }
  return name;
}

absl::StatusOr<X509NamePtr> ShakenSubject(std::string_view country, std::string_view org,
                                          std::string_view cn) {
  if (country.size() != 2) {
    return absl::InvalidArgumentError("the country must be a 2-letter ISO 3166 code (e.g. US)");
  }
  if (org.empty() || cn.empty()) {
    return absl::InvalidArgumentError("the subject needs an organization (O) and a common name (CN)");
  }
  X509NamePtr name(X509_NAME_new());
  auto add = [&](const char* key, std::string_view v) {
    std::string s(v);
    return X509_NAME_add_entry_by_txt(name.get(), key, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(s.c_str()), -1, -1,
                                      0) == 1;
  };
  if (!add("C", country) || !add("O", org) || !add("CN", cn)) {
    return stir::OpenSslError(absl::StatusCode::kInvalidArgument, "subject name");
  }
  return name;
}

absl::Status SetRandomSerial(X509* cert) {
  stir::BignumPtr bn(BN_new());
  if (!bn || !BN_rand(bn.get(), 72, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "BN_rand");
  }
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "BN_to_ASN1_INTEGER");
  }
  return absl::OkStatus();
}

absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after) {
  if (not_after <= not_before) {
    return absl::InvalidArgumentError("notAfter must be later than notBefore");
  }
  Asn1TimePtr nb(ASN1_TIME_set(nullptr, static_cast<time_t>(absl::ToUnixSeconds(not_before))));
  Asn1TimePtr na(ASN1_TIME_set(nullptr, static_cast<time_t>(absl::ToUnixSeconds(not_after))));
  if (!nb || !na || !X509_set1_notBefore(cert, nb.get()) || !X509_set1_notAfter(cert, na.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "validity");
  }
  return absl::OkStatus();
}

absl::Status AddConfExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return stir::OpenSslError(absl::StatusCode::kInvalidArgument,
                              absl::StrCat(OBJ_nid2sn(nid), " extension '", value, "'"));
  }
  return absl::OkStatus();
}

absl::Status AddPolicies(X509* cert, const std::vector<std::string>& oids) {
  stir::CertificatePoliciesPtr policies(sk_POLICYINFO_new_null());
  if (!policies) return stir::OpenSslError(absl::StatusCode::kInternal, "CertificatePolicies");
  for (const std::string& oid : oids) {
    POLICYINFO* info = POLICYINFO_new();
    ASN1_OBJECT* obj = OBJ_txt2obj(oid.c_str(), 1);
    if (info == nullptr || obj == nullptr) {
      POLICYINFO_free(info);
      ASN1_OBJECT_free(obj);
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat("bad policy OID '", oid, "'"));
    }
    ASN1_OBJECT_free(info->policyid);
    info->policyid = obj;
    if (!sk_POLICYINFO_push(policies.get(), info)) {
      POLICYINFO_free(info);
      return stir::OpenSslError(absl::StatusCode::kInternal, "CertificatePolicies");
    }
  }
  if (X509_add1_ext_i2d(cert, NID_certificate_policies, policies.get(), 0, X509V3_ADD_DEFAULT) !=
      1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CertificatePolicies");
  }
  return absl::OkStatus();
}

absl::StatusOr<X509ExtPtr> MakeRawExtension(const char* oid, std::string_view der,
                                            bool critical) {
  Asn1ObjPtr obj(OBJ_txt2obj(oid, 1));
  Asn1OctetPtr data(ASN1_OCTET_STRING_new());
  if (!obj || !data ||
      !ASN1_OCTET_STRING_set(data.get(), reinterpret_cast<const unsigned char*>(der.data()),
                             static_cast<int>(der.size()))) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "extension value");
  }
  X509ExtPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), critical ? 1 : 0, data.get()));
  if (!ext) return stir::OpenSslError(absl::StatusCode::kInternal, "X509_EXTENSION_create");
  return ext;
}

absl::Status AddRawExtension(X509* cert, const char* oid, std::string_view der, bool critical) {
  ASSIGN_OR_RETURN(X509ExtPtr ext, MakeRawExtension(oid, der, critical));
  if (!X509_add_ext(cert, ext.get(), -1)) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "X509_add_ext");
  }
  return absl::OkStatus();
}

absl::Status AddCrlDistributionPoint(X509* cert, const std::string& url,
                                     const X509_NAME* crl_issuer) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad CRL URL '", url, "': expected an http:// or https:// URL"));
  }
  DistPointsPtr dps(sk_DIST_POINT_new_null());
  DIST_POINT* dp = DIST_POINT_new();
  if (!dps || dp == nullptr || !sk_DIST_POINT_push(dps.get(), dp)) {
    DIST_POINT_free(dp);
    return stir::OpenSslError(absl::StatusCode::kInternal, "DIST_POINT");
  }
  dp->distpoint = DIST_POINT_NAME_new();
  dp->distpoint->type = 0;  // fullName
  dp->distpoint->name.fullname = GENERAL_NAMES_new();
  GENERAL_NAME* uri = GENERAL_NAME_new();
  ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
  ASN1_STRING_set(ia5, url.data(), static_cast<int>(url.size()));
  GENERAL_NAME_set0_value(uri, GEN_URI, ia5);
  sk_GENERAL_NAME_push(dp->distpoint->name.fullname, uri);
  if (crl_issuer != nullptr) {
    dp->CRLissuer = GENERAL_NAMES_new();
    GENERAL_NAME* dir = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(dir, GEN_DIRNAME, X509_NAME_dup(crl_issuer));
    sk_GENERAL_NAME_push(dp->CRLissuer, dir);
  }
  if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CRLDistributionPoints");
  }
  return absl::OkStatus();
}

std::optional<std::string> FindExtensionDer(const STACK_OF(X509_EXTENSION) * exts,
                                            const char* oid) {
  Asn1ObjPtr obj(OBJ_txt2obj(oid, 1));
  if (!obj || exts == nullptr) return std::nullopt;
  int idx = X509v3_get_ext_by_OBJ(exts, obj.get(), -1);
  if (idx < 0) return std::nullopt;
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509v3_get_ext(exts, idx));
  return Bytes(ASN1_STRING_get0_data(data), ASN1_STRING_length(data));
}

absl::StatusOr<stir::X509Ptr> SignCertificate(X509* cert, const stir::Signer& signer,
                                              const EVP_PKEY* issuer_public) {
  if (!X509_sign(cert, const_cast<EVP_PKEY*>(PlaceholderKey()), EVP_sha256())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the certificate");
  }
  unsigned char* tbs = nullptr;
  int n = i2d_re_X509_tbs(cert, &tbs);
  if (n <= 0) return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the TBS");
  std::string tbs_der = Bytes(tbs, n);
  OPENSSL_free(tbs);
  ASSIGN_OR_RETURN(std::string der, SignedDer(tbs_der, signer));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  stir::X509Ptr out(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!out) return stir::OpenSslError(absl::StatusCode::kInternal, "decoding the certificate");
  if (X509_verify(out.get(), const_cast<EVP_PKEY*>(issuer_public)) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        "the new certificate's signature does not verify with the issuer certificate's public "
        "key: the signing key is not the issuer's");
  }
  return out;
}

absl::StatusOr<X509ReqPtr> SignRequest(X509_REQ* req, const stir::Signer& signer) {
  unsigned char* tbs = nullptr;
  int n = i2d_re_X509_REQ_tbs(req, &tbs);
  if (n <= 0) return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the CSR");
  std::string tbs_der = Bytes(tbs, n);
  OPENSSL_free(tbs);
  ASSIGN_OR_RETURN(std::string der, SignedDer(tbs_der, signer));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509ReqPtr out(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!out) return stir::OpenSslError(absl::StatusCode::kInternal, "decoding the CSR");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(out.get());
  if (pub == nullptr || X509_REQ_verify(out.get(), pub) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        "the CSR signature does not verify with its public key: the signing key is not the "
        "CSR's key");
  }
  return out;
}

absl::StatusOr<stir::X509CrlPtr> SignCrl(X509_CRL* crl, const stir::Signer& signer,
                                         const EVP_PKEY* issuer_public) {
  if (!X509_CRL_sign(crl, const_cast<EVP_PKEY*>(PlaceholderKey()), EVP_sha256())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the CRL");
  }
  unsigned char* tbs = nullptr;
  int n = i2d_re_X509_CRL_tbs(crl, &tbs);
  if (n <= 0) return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the CRL TBS");
  std::string tbs_der = Bytes(tbs, n);
  OPENSSL_free(tbs);
  ASSIGN_OR_RETURN(std::string der, SignedDer(tbs_der, signer));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  stir::X509CrlPtr out(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!out) return stir::OpenSslError(absl::StatusCode::kInternal, "decoding the CRL");
  if (X509_CRL_verify(out.get(), const_cast<EVP_PKEY*>(issuer_public)) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        "the CRL signature does not verify with the CA certificate's key: the signing key is "
        "not the CA's");
  }
  return out;
}

namespace {
template <typename F>
std::string ToPem(F write) {
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  write(bio.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}
}  // namespace

std::string CertificatePem(const X509* cert) {
  return ToPem([&](BIO* b) { PEM_write_bio_X509(b, const_cast<X509*>(cert)); });
}
std::string RequestPem(const X509_REQ* req) {
  return ToPem([&](BIO* b) { PEM_write_bio_X509_REQ(b, const_cast<X509_REQ*>(req)); });
}
std::string CrlPem(const X509_CRL* crl) {
  return ToPem([&](BIO* b) { PEM_write_bio_X509_CRL(b, const_cast<X509_CRL*>(crl)); });
}

absl::StatusOr<std::vector<stir::X509Ptr>> ReadCertificates(std::string_view data,
                                                            std::string_view what) {
  std::vector<stir::X509Ptr> out;
  if (data.find("-----BEGIN") != std::string_view::npos) {
    stir::BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    for (;;) {
      stir::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
      if (!cert) break;
      out.push_back(std::move(cert));
    }
    ERR_clear_error();
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    stir::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
    ERR_clear_error();
    if (cert) out.push_back(std::move(cert));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), " holds no PEM or DER certificate"));
  }
  return out;
}

absl::StatusOr<X509ReqPtr> ReadRequest(std::string_view data, std::string_view what) {
  X509ReqPtr req;
  if (data.find("-----BEGIN") != std::string_view::npos) {
    stir::BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(data.size())));
  }
  ERR_clear_error();
  if (!req) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), " is not a PEM or DER certificate signing request (PKCS#10)"));
  }
  return req;
}

bool SameKey(const EVP_PKEY* a, const EVP_PKEY* b) {
  return a != nullptr && b != nullptr && EVP_PKEY_eq(a, b) == 1;
}

absl::StatusOr<stir::BignumPtr> ParseSerial(std::string_view hex) {
  std::string s(hex);
  if (s.starts_with("0x") || s.starts_with("0X")) s = s.substr(2);
  s.erase(std::remove(s.begin(), s.end(), ':'), s.end());
  if (s.empty() || s.size() > 40 ||
      s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad serial '", ToAbsl(hex), "': expected up to 40 hex digits"));
  }
  BIGNUM* bn = nullptr;
  if (BN_hex2bn(&bn, s.c_str()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad serial '", ToAbsl(hex), "'"));
  }
  return stir::BignumPtr(bn);
}

}  // namespace shaken::cli
