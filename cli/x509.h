// x509.h: building and signing X.509 objects (certificates, CSRs, CRLs) with any stir::Signer, so
// that one code path serves a key in a PKCS#11 token (hsm::KeyPool) and a lab key in a PEM file
// (stir::MemorySigner). The private key never reaches OpenSSL: OpenSSL encodes the TBS part, we
// sign its SHA-256 through the Signer and assemble the signed DER ourselves.
#ifndef SHAKEN_CLI_X509_H_
#define SHAKEN_CLI_X509_H_

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/fingerprint.h"
#include "stir/openssl_util.h"
#include "stir/signer.h"

namespace shaken::cli {

using stir::X509ReqPtr;
using X509NamePtr = stir::X509NamePtr;
using X509ExtPtr = stir::X509ExtensionPtr;

// ParseName parses "C=US,O=Example,CN=SHAKEN 709J" or "/C=US/O=Example/CN=SHAKEN 709J".
absl::StatusOr<X509NamePtr> ParseName(std::string_view dn);
// ShakenSubject is C=<country>, O=<org>, CN=<cn>.
absl::StatusOr<X509NamePtr> ShakenSubject(std::string_view country, std::string_view org,
                                          std::string_view cn);

// SetRandomSerial sets a positive serial with 71 random bits from OpenSSL's CSPRNG and the top
// bit of 72 set (ATIS-1000080 v005: at least 64 bits from a CSPRNG; CE-2).
absl::Status SetRandomSerial(X509* cert);
// SetValidity sets notBefore/notAfter.
absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after);

// AddConfExtension adds an extension given in openssl.cnf syntax ("critical,CA:TRUE"), with
// `issuer` for AKI (the certificate itself when self-signed).
absl::Status AddConfExtension(X509* cert, X509* issuer, int nid, const std::string& value);
// AddPolicies adds CertificatePolicies (non-critical) with one PolicyInformation per OID and no
// qualifiers.
absl::Status AddPolicies(X509* cert, const std::vector<std::string>& oids);
// AddRawExtension adds an extension with an arbitrary OID and DER value.
absl::Status AddRawExtension(X509* cert, const char* oid, std::string_view der, bool critical);
// MakeRawExtension builds one (for CSRs).
absl::StatusOr<X509ExtPtr> MakeRawExtension(const char* oid, std::string_view der, bool critical);
// AddCrlDistributionPoint adds CRLDistributionPoints with one DistributionPoint holding `url`
// (fullName URI) and, when `crl_issuer` is not null, cRLIssuer (ATIS-1000080 v004+, CE-9).
absl::Status AddCrlDistributionPoint(X509* cert, const std::string& url,
                                     const X509_NAME* crl_issuer);

// FindExtensionDer returns the DER value of the extension `oid` in `exts`; nullopt when absent.
std::optional<std::string> FindExtensionDer(const STACK_OF(X509_EXTENSION) * exts,
                                            const char* oid);

// SignCertificate signs `cert` (every field set) with `signer` as ecdsa-with-SHA256 and returns
// the signed certificate, decoded afresh from its DER. It then checks the signature with
// `issuer_public` (the issuer certificate's key): a mismatched key is an error, not a bad file.
absl::StatusOr<stir::X509Ptr> SignCertificate(X509* cert, const stir::Signer& signer,
                                              const EVP_PKEY* issuer_public);
// SignRequest signs a CSR (its public key must be `signer`'s) and checks it.
absl::StatusOr<X509ReqPtr> SignRequest(X509_REQ* req, const stir::Signer& signer);
// SignCrl signs a CRL and checks it with `issuer_public`.
absl::StatusOr<stir::X509CrlPtr> SignCrl(X509_CRL* crl, const stir::Signer& signer,
                                         const EVP_PKEY* issuer_public);

// PEM encoders.
std::string CertificatePem(const X509* cert);
std::string RequestPem(const X509_REQ* req);
std::string CrlPem(const X509_CRL* crl);

// ReadCertificates reads every certificate of a PEM (or a single DER) file body; INVALID_ARGUMENT
// names `what` when there is none.
absl::StatusOr<std::vector<stir::X509Ptr>> ReadCertificates(std::string_view data,
                                                            std::string_view what);
// ReadRequest reads a PEM or DER CSR.
absl::StatusOr<X509ReqPtr> ReadRequest(std::string_view data, std::string_view what);

// SameKey tells whether two public keys are equal.
bool SameKey(const EVP_PKEY* a, const EVP_PKEY* b);

// ParseSerial reads a serial given in hex ("0x" optional), as stir::SerialHex writes it.
absl::StatusOr<stir::BignumPtr> ParseSerial(std::string_view hex);

// Sha256Fingerprint is SHA-256 of `der` as colon-separated upper-case hex (stir/fingerprint.h).
using stir::Sha256Fingerprint;

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_X509_H_
