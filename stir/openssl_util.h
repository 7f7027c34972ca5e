// openssl_util.h: the choke point for OpenSSL: owning pointers for its objects, one helper that
// turns its error queue into an absl::Status, and the ES256 encodings (raw r||s vs DER).
#ifndef SHAKEN_STIR_OPENSSL_UTIL_H_
#define SHAKEN_STIR_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/signer.h"

namespace shaken::stir {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, OpenSslDeleter<X509_CRL_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<X509_REQ_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, OpenSslDeleter<X509_REVOKED_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslDeleter<ASN1_INTEGER_free>>;
using Asn1OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, OpenSslDeleter<ASN1_OCTET_STRING_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>>;
using CertificatePoliciesPtr =
    std::unique_ptr<CERTIFICATEPOLICIES, OpenSslDeleter<CERTIFICATEPOLICIES_free>>;
using CrlDistPointsPtr = std::unique_ptr<CRL_DIST_POINTS, OpenSslDeleter<CRL_DIST_POINTS_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, OpenSslDeleter<BASIC_CONSTRAINTS_free>>;

// OpenSslFree releases what OpenSSL allocated with OPENSSL_malloc (a macro, so not a template
// argument): BN_bn2hex and i2d_* outputs.
struct OpenSslFree {
  void operator()(void* p) const;
};
template <typename T>
using OpenSslMallocPtr = std::unique_ptr<T, OpenSslFree>;

// OpenSslError drains this thread's OpenSSL error queue into a status with `code`, whose message
// starts with `what` and ends with OpenSSL's own reasons.
absl::Status OpenSslError(absl::StatusCode code, std::string_view what);

// Sha256 hashes `data`. Never fails for in-memory input.
Sha256Digest Sha256(std::string_view data);

// EcdsaRawToDer converts a JWS r||s signature to the DER ECDSA-Sig-Value that X.509 and OpenSSL's
// verify functions use.
absl::StatusOr<std::string> EcdsaRawToDer(const Es256Signature& raw);

// EcdsaDerToRaw converts a DER ECDSA-Sig-Value (P-256) to r||s. Fails on malformed DER or on r or
// s longer than 32 bytes.
absl::StatusOr<Es256Signature> EcdsaDerToRaw(std::string_view der);

// ReadPrivateKeyPem parses a PEM private key: SEC1 "EC PRIVATE KEY" or PKCS#8, unencrypted, or
// encrypted ("ENCRYPTED PRIVATE KEY", or a legacy "Proc-Type: 4,ENCRYPTED" header) when
// `passphrase` is given. It never prompts. INVALID_ARGUMENT says which: not a key, encrypted
// without a passphrase, or a wrong passphrase (or damaged key).
absl::StatusOr<EvpPkeyPtr> ReadPrivateKeyPem(std::string_view pem,
                                             std::optional<std::string_view> passphrase = {});

// IsEncryptedPrivateKeyPem says whether `pem` holds an encrypted private key.
bool IsEncryptedPrivateKeyPem(std::string_view pem);

// PrivateKeyToPem writes `key` as PKCS#8 PEM; when `passphrase` is given, encrypted
// ("ENCRYPTED PRIVATE KEY", PBES2: AES-256-CBC under PBKDF2-HMAC-SHA256, 600,000 iterations,
// random salt). The caller wipes the
// result when it is not encrypted.
absl::StatusOr<std::string> PrivateKeyToPem(const EVP_PKEY* key,
                                            std::optional<std::string_view> passphrase = {});

// ReadPublicKeyPem parses a PEM SubjectPublicKeyInfo ("PUBLIC KEY").
absl::StatusOr<EvpPkeyPtr> ReadPublicKeyPem(std::string_view pem);

// PublicKeyToPem and PublicKeyToDer encode the public half of `key` as SubjectPublicKeyInfo.
absl::StatusOr<std::string> PublicKeyToPem(const EVP_PKEY* key);
absl::StatusOr<std::string> PublicKeyToDer(const EVP_PKEY* key);

// PublicKeyFromP256Point builds an EC P-256 public key from an uncompressed point (0x04 || X || Y).
absl::StatusOr<EvpPkeyPtr> PublicKeyFromP256Point(std::string_view point);

// IsP256Key tells whether `key` is an EC key on the P-256 (prime256v1) curve.
bool IsP256Key(const EVP_PKEY* key);

// VerifyEs256 checks an r||s signature over `digest` with the public key `key`. OK when the
// signature is valid; INVALID_ARGUMENT (with no OpenSSL internals) when it is not.
absl::Status VerifyEs256(const EVP_PKEY* key, const Sha256Digest& digest,
                         const Es256Signature& sig);

// SerialHex is a certificate serial number as upper-case hex without separators ("" when it does
// not decode): the form of `cert show`, CertificateInfo::serial_hex and the CA database.
std::string SerialHex(const ASN1_INTEGER* serial);

// Asn1TimeToTime converts an ASN1_TIME (UTCTime or GeneralizedTime); InfinitePast when `t` is null
// or malformed.
absl::Time Asn1TimeToTime(const ASN1_TIME* t);

// OidText is an object identifier as text: dotted decimal by default, or with `numeric` false
// OpenSSL's long name when it has one ("X509v3 Key Usage"). "" when it does not fit 128 bytes.
std::string OidText(const ASN1_OBJECT* obj, bool numeric = true);

// NameText is a distinguished name in the RFC 2253 one-line form, non-ASCII kept as UTF-8, or
// with `escape_non_ascii` escaped as RFC 2253 has it (CertificateInfo's subject and issuer).
std::string NameText(const X509_NAME* name, bool escape_non_ascii = false);

// NameEntry is the first value of attribute `nid` (NID_commonName, ...) in `name` as UTF-8, or "".
std::string NameEntry(const X509_NAME* name, int nid);

// CertificateDer is the DER encoding of `cert` ("" if OpenSSL cannot encode it).
std::string CertificateDer(const X509* cert);

// ParseCrls parses the CRLs in `data`: one or more PEM CRLs, else one DER CRL. INVALID_ARGUMENT
// when it holds none. Bound the size of `data` before calling (untrusted input).
absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(std::string_view data);

// DistributionPointUris lists the URIs of a CRL distribution point's fullName (none for a
// relative name or no name), in order.
std::vector<std::string> DistributionPointUris(const DIST_POINT* dp);

// ReadFile reads a whole (small) file, at most `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 1 << 20);

// WriteFileAtomic writes `data` to a temporary file beside `path` (mode `mode`, whatever the
// umask), fsyncs it, then renames it onto `path` when `replace`, or links it there when not (so
// an existing file is never clobbered: ALREADY_EXISTS). Readers see the old file or the whole new
// one, never a part. Blocks on the disk: never call it on a request or event-loop thread.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode,
                             bool replace);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_OPENSSL_UTIL_H_
