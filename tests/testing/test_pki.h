// test_pki.h: a test STI PKI (root CA -> intermediate CA -> SP end-entity certificate) and a test
// TLS PKI (CA -> server certificate for 127.0.0.1/localhost), generated at test time with OpenSSL.
//
// The SP certificate follows the SHAKEN profile (ATIS-1000080 §6.4.1; CE-* in docs/standards.md):
// P-256 key, ecdsa-with-SHA256, TNAuthList with one SPC (RFC 8226), certificate policy
// 2.16.840.1.114569.1.1.3, KU digitalSignature critical, BC CA:FALSE critical, SKI/AKI, CRLDP and a
// random 64-bit+ serial. LeafOptions knobs produce each defect a verifier must reject.
#ifndef SHAKEN_TESTS_TESTING_TEST_PKI_H_
#define SHAKEN_TESTS_TESTING_TEST_PKI_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/openssl_util.h"

namespace shaken::testing {

// TestCert is a certificate with its private key and PEM encodings.
struct TestCert {
  stir::X509Ptr cert;
  stir::EvpPkeyPtr key;
  std::string cert_pem;
  std::string key_pem;  // PKCS#8
  // The CA certificates between this leaf and the PKI's intermediate, its issuer first (an SP-CA
  // for a delegate leaf, RFC 9060); TestPki::ChainPem puts them after the leaf.
  std::string issuers_pem;
};

// LeafOptions describes the SP (end-entity) certificate to issue; defaults give a valid one.
struct LeafOptions {
  enum class KeyType { kP256, kP384, kRsa2048 };
  enum class KeyUsage { kDigitalSignature, kKeyCertSign, kAbsent };

  std::string spc = "709J";
  // TNAuthList entries (SPC, TN, range) to encode instead of the single `spc`, e.g. the TNs and
  // ranges of a delegate certificate (RFC 9060). Ignored when tn_auth_list_der is set.
  std::vector<stir::TnAuthEntry> tn_auth_entries;
  // Replaces the whole TNAuthList extension value (DER) when set; "" with tn_auth_list=true
  // produces an empty value.
  std::optional<std::string> tn_auth_list_der;
  bool tn_auth_list = true;  // false: no TNAuthList extension
  std::vector<std::string> policy_oids = {"2.16.840.1.114569.1.1.3"};  // empty: no extension
  KeyUsage key_usage = KeyUsage::kDigitalSignature;
  KeyType key_type = KeyType::kP256;
  bool self_signed = false;  // not issued by the intermediate
  bool ca = false;           // BasicConstraints CA:TRUE
  // Validity, relative to the PKI's `now` unless absolute times are given.
  absl::Duration not_before_offset = -absl::Hours(1);
  absl::Duration not_after_offset = absl::Hours(24 * 90);
  std::string common_name = "SHAKEN 709J";
  // The CRL distribution point's URL (ATIS-1000080 CE-9); "" leaves the extension out. With
  // crl_issuer, the DP also names the intermediate as its cRLIssuer (the CRL that CrlPem signs
  // with the intermediate).
  std::string crl_url = "https://sti-pa.test/crl";
  bool crl_issuer = false;
  // Certify this public key (e.g. one that lives in a PKCS#11 token) instead of generating a key
  // pair; key_type is ignored and the TestCert has no private key PEM.
  const EVP_PKEY* subject_public_key = nullptr;
  // Issue from this CA (an SP-CA from TestPki::IssueSpCa) instead of the intermediate.
  const TestCert* issuer = nullptr;
};

// TestPki is a root and an intermediate CA able to issue leaves and CRLs. Not thread-safe.
class TestPki {
 public:
  // Create generates the CAs, valid from `now - 1 day` to `now + 10 years`.
  static absl::StatusOr<std::unique_ptr<TestPki>> Create(absl::Time now);

  absl::StatusOr<TestCert> IssueLeaf(const LeafOptions& options = {}) const;
  // Issue another intermediate under the root (e.g. to revoke it).
  absl::StatusOr<TestCert> IssueIntermediate(const std::string& common_name) const;
  // IssueSpCa issues an SP-CA under the intermediate (RFC 9060, ATIS-1000092): CA:TRUE with
  // pathlen 0, keyCertSign, and `tn_auth_list_der` (not checked) as the TNAuthList of the scope
  // it may delegate. Leaves issued from it (LeafOptions::issuer) chain through it.
  absl::StatusOr<TestCert> IssueSpCa(const std::string& common_name,
                                     const std::string& tn_auth_list_der) const;

  // ChainPem is the x5u body: the leaf, its issuers_pem (an SP-CA), then the intermediate.
  std::string ChainPem(const TestCert& leaf) const;

  // CrlPem returns a CRL signed by the intermediate (issuer_is_root=false) or by the root,
  // revoking `revoked`, valid from now-1h to now+next_update.
  absl::StatusOr<std::string> CrlPem(const std::vector<const X509*>& revoked, bool issuer_is_root,
                                     absl::Duration next_update = absl::Hours(24 * 7)) const;

  const TestCert& root() const { return root_; }
  const TestCert& intermediate() const { return intermediate_; }
  absl::Time now() const { return now_; }

 private:
  TestPki() = default;
  absl::Time now_;
  TestCert root_;
  TestCert intermediate_;
};

// TempDir is a directory removed (recursively) when the object is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Write creates `name` (relative) with `content`; returns its full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// WriteHashedCaDir writes each PEM certificate of `certs` into `dir` as <subject-hash>.N, the
// c_rehash layout X509_LOOKUP_hash_dir reads. Creates `dir`.
absl::Status WriteHashedCaDir(const std::string& dir, const std::vector<const X509*>& certs);

// TlsServerPki is a test TLS CA and a server certificate for 127.0.0.1 / localhost
// (subjectAltName IP:127.0.0.1, DNS:localhost; EKU serverAuth).
struct TlsServerPki {
  TestCert ca;
  TestCert server;
  static absl::StatusOr<TlsServerPki> Create(absl::Time now);
  // IssueClient issues a TLS client certificate (EKU clientAuth, subjectAltName DNS:<name>, CN
  // <name>) from this CA, or from `issuer` (e.g. a CA the server does not trust).
  absl::StatusOr<TestCert> IssueClient(const std::string& name, absl::Time now,
                                       const TestCert* issuer = nullptr) const;
  // IssueClientWithNames issues a TLS client certificate from this CA with subject CN
  // `common_name` and subjectAltName `san` in OpenSSL's syntax ("DNS:a,email:b,URI:c"); an empty
  // `san` leaves the extension out.
  absl::StatusOr<TestCert> IssueClientWithNames(const std::string& common_name,
                                                const std::string& san, absl::Time now) const;
};

// MakeTestCa makes a self-signed CA (for "a CA nobody trusts" cases).
absl::StatusOr<TestCert> MakeTestCa(const std::string& common_name, absl::Time now);

// CertToPem / KeyToPem encode for tests.
std::string CertToPem(const X509* cert);
std::string KeyToPem(const EVP_PKEY* key);

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_TEST_PKI_H_
