#include "tests/testing/test_pki.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::testing {
namespace {

using stir::EvpPkeyPtr;
using stir::OpenSslError;
using stir::X509Ptr;

using X509NamePtr = stir::X509NamePtr;
using X509ExtPtr = stir::X509ExtensionPtr;
using Asn1IntPtr = stir::Asn1IntegerPtr;
using Asn1OctetPtr = stir::Asn1OctetStringPtr;
using Asn1ObjPtr = stir::Asn1ObjectPtr;
using Asn1TimePtr = stir::Asn1TimePtr;
using X509RevokedPtr = stir::X509RevokedPtr;

absl::StatusOr<EvpPkeyPtr> GenerateKey(LeafOptions::KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case LeafOptions::KeyType::kP256:
      key = EVP_EC_gen("P-256");
      break;
    case LeafOptions::KeyType::kP384:
      key = EVP_EC_gen("P-384");
      break;
    case LeafOptions::KeyType::kRsa2048:
      key = EVP_RSA_gen(2048);
      break;
  }
  if (key == nullptr) return OpenSslError(absl::StatusCode::kInternal, "key generation");
  return EvpPkeyPtr(key);
}

time_t UnixTime(absl::Time t) { return static_cast<time_t>(absl::ToUnixSeconds(t)); }

// RandomSerial sets a positive serial of 64 random bits plus a fixed high bit (ATIS-1000080
// v005: at least 64 bits from a CSPRNG).
absl::Status SetRandomSerial(X509* cert) {
  stir::BignumPtr bn(BN_new());
  if (!bn || !BN_rand(bn.get(), 72, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)) {
    return OpenSslError(absl::StatusCode::kInternal, "BN_rand");
  }
  ASN1_INTEGER* serial = X509_get_serialNumber(cert);
  if (BN_to_ASN1_INTEGER(bn.get(), serial) == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "BN_to_ASN1_INTEGER");
  }
  return absl::OkStatus();
}

X509NamePtr MakeName(const std::string& cn) {
  X509NamePtr name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "C", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("US"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("shakend test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return name;
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return OpenSslError(absl::StatusCode::kInternal, absl::StrCat("extension ", value));
  }
  return absl::OkStatus();
}

absl::Status AddRawExt(X509* cert, const char* oid, const std::string& der, bool critical) {
  Asn1ObjPtr obj(OBJ_txt2obj(oid, 1));
  Asn1OctetPtr data(ASN1_OCTET_STRING_new());
  if (!obj || !data ||
      !ASN1_OCTET_STRING_set(data.get(), reinterpret_cast<const unsigned char*>(der.data()),
                             static_cast<int>(der.size()))) {
    return OpenSslError(absl::StatusCode::kInternal, "raw extension");
  }
  X509ExtPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), critical ? 1 : 0, data.get()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_add_ext");
  }
  return absl::OkStatus();
}

struct CertSpec {
  std::string cn;
  absl::Time not_before;
  absl::Time not_after;
  bool ca = false;
};

// BuildCert makes a certificate for `key` signed by `issuer_key` (self-signed when issuer is
// null); the caller adds profile extensions through `extra` before signing.
template <typename Extra>
absl::StatusOr<X509Ptr> BuildCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer,
                                  EVP_PKEY* issuer_key, Extra extra) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_new");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  X509NamePtr subject = MakeName(spec.cn);
  X509_set_subject_name(cert.get(), subject.get());
  X509_set_issuer_name(cert.get(),
                       issuer != nullptr ? X509_get_subject_name(issuer) : subject.get());
  Asn1TimePtr nb(ASN1_TIME_set(nullptr, UnixTime(spec.not_before)));
  Asn1TimePtr na(ASN1_TIME_set(nullptr, UnixTime(spec.not_after)));
  if (!nb || !na || !X509_set1_notBefore(cert.get(), nb.get()) ||
      !X509_set1_notAfter(cert.get(), na.get()) || !X509_set_pubkey(cert.get(), key)) {
    return OpenSslError(absl::StatusCode::kInternal, "certificate fields");
  }
  X509* iss = issuer != nullptr ? issuer : cert.get();
  RETURN_IF_ERROR(AddExt(cert.get(), iss, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(extra(cert.get(), iss));
  if (!X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256())) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_sign");
  }
  return cert;
}

// AddCrlDistributionPoint adds one DP with `url`, naming `crl_issuer`'s subject as cRLIssuer
// when given.
absl::Status AddCrlDistributionPoint(X509* cert, const std::string& url, X509* crl_issuer) {
  stir::CrlDistPointsPtr dps(sk_DIST_POINT_new_null());
  DIST_POINT* dp = DIST_POINT_new();
  if (!dps || dp == nullptr) return absl::InternalError("DIST_POINT_new");
  sk_DIST_POINT_push(dps.get(), dp);
  dp->distpoint = DIST_POINT_NAME_new();
  dp->distpoint->type = 0;
  dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
  GENERAL_NAME* uri = GENERAL_NAME_new();
  ASN1_IA5STRING* text = ASN1_IA5STRING_new();
  ASN1_STRING_set(text, url.data(), static_cast<int>(url.size()));
  GENERAL_NAME_set0_value(uri, GEN_URI, text);
  sk_GENERAL_NAME_push(dp->distpoint->name.fullname, uri);
  if (crl_issuer != nullptr) {
    dp->CRLissuer = sk_GENERAL_NAME_new_null();
    GENERAL_NAME* dir = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(dir, GEN_DIRNAME, X509_NAME_dup(X509_get_subject_name(crl_issuer)));
    sk_GENERAL_NAME_push(dp->CRLissuer, dir);
  }
  if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "crlDistributionPoints");
  }
  return absl::OkStatus();
}

absl::StatusOr<TestCert> Finish(X509Ptr cert, EvpPkeyPtr key) {
  TestCert out;
  out.cert_pem = CertToPem(cert.get());
  out.key_pem = KeyToPem(key.get());
  out.cert = std::move(cert);
  out.key = std::move(key);
  return out;
}

absl::StatusOr<TestCert> MakeCa(const std::string& cn, absl::Time now, const TestCert* issuer) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(LeafOptions::KeyType::kP256));
  CertSpec spec{cn, now - absl::Hours(24), now + absl::Hours(24 * 365 * 10), true};
  ASSIGN_OR_RETURN(
      X509Ptr cert,
      BuildCert(spec, key.get(), issuer ? issuer->cert.get() : nullptr,
                issuer ? issuer->key.get() : nullptr, [&](X509* c, X509* iss) -> absl::Status {
                  RETURN_IF_ERROR(AddExt(c, iss, NID_basic_constraints, "critical,CA:TRUE"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
                  return absl::OkStatus();
                }));
  return Finish(std::move(cert), std::move(key));
}

}  // namespace

std::string CertToPem(const X509* cert) {
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), const_cast<X509*>(cert));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string KeyToPem(const EVP_PKEY* key) {
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::unique_ptr<TestPki>> TestPki::Create(absl::Time now) {
  std::unique_ptr<TestPki> pki(new TestPki());
  pki->now_ = now;
  ASSIGN_OR_RETURN(pki->root_, MakeCa("shakend test STI ROOT", now, nullptr));
  ASSIGN_OR_RETURN(pki->intermediate_, MakeCa("shakend test STI-CA", now, &pki->root_));
  return pki;
}

absl::StatusOr<TestCert> TestPki::IssueIntermediate(const std::string& common_name) const {
  return MakeCa(common_name, now_, &root_);
}

absl::StatusOr<TestCert> TestPki::IssueSpCa(const std::string& common_name,
                                             const std::string& tn_auth_list_der) const {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(LeafOptions::KeyType::kP256));
  CertSpec spec{common_name, now_ - absl::Hours(24), now_ + absl::Hours(24 * 365 * 5), true};
  ASSIGN_OR_RETURN(
      X509Ptr cert,
      BuildCert(spec, key.get(), intermediate_.cert.get(), intermediate_.key.get(),
                [&](X509* c, X509* iss) -> absl::Status {
                  RETURN_IF_ERROR(
                      AddExt(c, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
                  return AddRawExt(c, stir::kTnAuthListOid, tn_auth_list_der, /*critical=*/false);
                }));
  return Finish(std::move(cert), std::move(key));
}

absl::StatusOr<TestCert> TestPki::IssueLeaf(const LeafOptions& o) const {
  EvpPkeyPtr key;
  if (o.subject_public_key != nullptr) {
    EVP_PKEY* pub = const_cast<EVP_PKEY*>(o.subject_public_key);
    if (EVP_PKEY_up_ref(pub) != 1) return OpenSslError(absl::StatusCode::kInternal, "up_ref");
    key.reset(pub);
  } else {
    ASSIGN_OR_RETURN(key, GenerateKey(o.key_type));
  }
  CertSpec spec{o.common_name, now_ + o.not_before_offset, now_ + o.not_after_offset, o.ca};
  const TestCert& from = o.issuer != nullptr ? *o.issuer : intermediate_;
  X509* issuer = o.self_signed ? nullptr : from.cert.get();
  EVP_PKEY* issuer_key = o.self_signed ? nullptr : from.key.get();
  ASSIGN_OR_RETURN(
      X509Ptr cert,
      BuildCert(spec, key.get(), issuer, issuer_key, [&](X509* c, X509* iss) -> absl::Status {
        RETURN_IF_ERROR(
            AddExt(c, iss, NID_basic_constraints, o.ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
        switch (o.key_usage) {
          case LeafOptions::KeyUsage::kDigitalSignature:
            RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,digitalSignature"));
            break;
          case LeafOptions::KeyUsage::kKeyCertSign:
            RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,keyCertSign"));
            break;
          case LeafOptions::KeyUsage::kAbsent:
            break;
        }
        if (!o.policy_oids.empty()) {
          // Built directly: the config-string form wants a config database for bare OIDs.
          CERTIFICATEPOLICIES* pols = CERTIFICATEPOLICIES_new();
          for (const std::string& oid : o.policy_oids) {
            POLICYINFO* info = POLICYINFO_new();
            ASN1_OBJECT_free(info->policyid);
            info->policyid = OBJ_txt2obj(oid.c_str(), 1);
            sk_POLICYINFO_push(pols, info);
          }
          int ok = X509_add1_ext_i2d(c, NID_certificate_policies, pols, 0, X509V3_ADD_DEFAULT);
          CERTIFICATEPOLICIES_free(pols);
          if (ok != 1) return OpenSslError(absl::StatusCode::kInternal, "certificatePolicies");
        }
        if (!o.crl_url.empty()) {
          RETURN_IF_ERROR(AddCrlDistributionPoint(c, o.crl_url, o.crl_issuer ? iss : nullptr));
        }
        if (o.tn_auth_list) {
          std::string der;
          if (o.tn_auth_list_der.has_value()) {
            der = *o.tn_auth_list_der;
          } else if (!o.tn_auth_entries.empty()) {
            // Unchecked: tests encode what a verifier must refuse.
            der = stir::EncodeTnAuthListUnchecked(o.tn_auth_entries);
          } else {
            der = stir::EncodeTnAuthListUnchecked({{stir::TnAuthEntry::Kind::kSpc, o.spc, 0}});
          }
          RETURN_IF_ERROR(AddRawExt(c, stir::kTnAuthListOid, der, /*critical=*/false));
        }
        return absl::OkStatus();
      }));
  const std::string issuers =
      o.issuer != nullptr && !o.self_signed ? o.issuer->cert_pem + o.issuer->issuers_pem : "";
  if (o.subject_public_key != nullptr) {
    TestCert out;
    out.cert_pem = CertToPem(cert.get());
    out.cert = std::move(cert);
    out.key = std::move(key);
    out.issuers_pem = issuers;
    return out;
  }
  ASSIGN_OR_RETURN(TestCert out, Finish(std::move(cert), std::move(key)));
  out.issuers_pem = issuers;
  return out;
}

std::string TestPki::ChainPem(const TestCert& leaf) const {
  return absl::StrCat(leaf.cert_pem, leaf.issuers_pem, intermediate_.cert_pem);
}

absl::StatusOr<std::string> TestPki::CrlPem(const std::vector<const X509*>& revoked,
                                            bool issuer_is_root, absl::Duration next_update) const {
  const TestCert& issuer = issuer_is_root ? root_ : intermediate_;
  stir::X509CrlPtr crl(X509_CRL_new());
  if (!crl || !X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.get()))) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_CRL_new");
  }
  Asn1TimePtr last(ASN1_TIME_set(nullptr, UnixTime(now_ - absl::Hours(1))));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, UnixTime(now_ + next_update)));
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (const X509* cert : revoked) {
    X509RevokedPtr rev(X509_REVOKED_new());
    X509_REVOKED_set_serialNumber(rev.get(),
                                  const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(cert)));
    X509_REVOKED_set_revocationDate(rev.get(), last.get());
    if (!X509_CRL_add0_revoked(crl.get(), rev.get())) {
      return OpenSslError(absl::StatusCode::kInternal, "X509_CRL_add0_revoked");
    }
    rev.release();
  }
  X509_CRL_sort(crl.get());
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer.cert.get(), nullptr, nullptr, crl.get(), 0);
  X509ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1) ||
      !X509_CRL_sign(crl.get(), issuer.key.get(), EVP_sha256())) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_CRL_sign");
  }
  stir::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "shaken-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  if (p != nullptr) path_ = p;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::filesystem::path full = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(full.parent_path());
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out << content;
  return full.string();
}

absl::Status WriteHashedCaDir(const std::string& dir, const std::vector<const X509*>& certs) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::map<unsigned long, int> next_index;
  for (const X509* cert : certs) {
    unsigned long hash = X509_subject_name_hash(const_cast<X509*>(cert));
    std::string name = absl::StrFormat("%08lx.%d", hash, next_index[hash]++);
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary | std::ios::trunc);
    out << CertToPem(cert);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", name));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<TestCert> IssueClientFrom(const TestCert& ca_cert, const std::string& name,
                                         const std::string& san, absl::Time now) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(LeafOptions::KeyType::kP256));
  CertSpec spec{name, now - absl::Hours(1), now + absl::Hours(24 * 30), false};
  ASSIGN_OR_RETURN(
      X509Ptr cert,
      BuildCert(spec, key.get(), ca_cert.cert.get(), ca_cert.key.get(),
                [&](X509* c, X509* iss) -> absl::Status {
                  RETURN_IF_ERROR(AddExt(c, iss, NID_basic_constraints, "critical,CA:FALSE"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,digitalSignature"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_ext_key_usage, "clientAuth"));
                  if (!san.empty()) RETURN_IF_ERROR(AddExt(c, iss, NID_subject_alt_name, san));
                  return absl::OkStatus();
                }));
  return Finish(std::move(cert), std::move(key));
}

}  // namespace

absl::StatusOr<TlsServerPki> TlsServerPki::Create(absl::Time now) {
  TlsServerPki pki;
  ASSIGN_OR_RETURN(pki.ca, MakeCa("shakend test TLS CA", now, nullptr));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateKey(LeafOptions::KeyType::kP256));
  CertSpec spec{"localhost", now - absl::Hours(1), now + absl::Hours(24 * 30), false};
  ASSIGN_OR_RETURN(
      X509Ptr cert,
      BuildCert(spec, key.get(), pki.ca.cert.get(), pki.ca.key.get(),
                [&](X509* c, X509* iss) -> absl::Status {
                  RETURN_IF_ERROR(AddExt(c, iss, NID_basic_constraints, "critical,CA:FALSE"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,digitalSignature"));
                  RETURN_IF_ERROR(AddExt(c, iss, NID_ext_key_usage, "serverAuth"));
                  RETURN_IF_ERROR(
                      AddExt(c, iss, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"));
                  return absl::OkStatus();
                }));
  ASSIGN_OR_RETURN(pki.server, Finish(std::move(cert), std::move(key)));
  return pki;
}

absl::StatusOr<TestCert> TlsServerPki::IssueClient(const std::string& name, absl::Time now,
                                                    const TestCert* issuer) const {
  return IssueClientFrom(issuer != nullptr ? *issuer : ca, name, "DNS:" + name, now);
}

absl::StatusOr<TestCert> TlsServerPki::IssueClientWithNames(const std::string& common_name,
                                                            const std::string& san,
                                                            absl::Time now) const {
  return IssueClientFrom(ca, common_name, san, now);
}

absl::StatusOr<TestCert> MakeTestCa(const std::string& common_name, absl::Time now) {
  return MakeCa(common_name, now, nullptr);
}

}  // namespace shaken::testing
