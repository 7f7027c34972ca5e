// client.h: an RFC 8555 ACME client over libcurl, for `shakenctl acme order | renew`: directory,
// nonces (a badNonce answer is retried with the nonce it carries), account (jwk, then kid; EAB),
// orders, authorizations, challenges, finalize, polling that honours Retry-After, and the
// certificate download. The account key signs through stir::Signer, so it may live in a
// PKCS#11 token. Blocking; one client per thread.
//
// Server refusals come back as absl::Status with the ACME problem type attached (problem.h:
// ProblemType(status) is "badNonce", "unauthorized", ...) and the server's detail as message.
#ifndef SHAKEN_CLI_ACME_CLIENT_H_
#define SHAKEN_CLI_ACME_CLIENT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/acme/jws.h"
#include "stir/signer.h"

namespace shaken::acme {

struct ClientOptions {
  std::string tls_ca_file;  // PEM CA bundle for the server's TLS certificate; empty: system
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration poll_timeout = absl::Minutes(2);  // bound on every wait for a status
  absl::Duration max_retry_after = absl::Seconds(30);
  int max_bad_nonce_retries = 3;
};

struct HttpResult {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

struct Eab {
  std::string kid;
  std::string mac_key;  // raw bytes (the CA hands out base64url; decoded by the caller)
};

class AcmeClient {
 public:
  // Connect reads the directory. `signer` and `account_key` (its public half) must outlive the
  // client.
  static absl::StatusOr<std::unique_ptr<AcmeClient>> Connect(std::string directory_url,
                                                             const stir::Signer* signer,
                                                             const EVP_PKEY* account_key,
                                                             ClientOptions options);
  ~AcmeClient();

  const Json& directory() const { return directory_; }
  const std::string& account_url() const { return kid_; }

  // NewAccount registers the key (or finds its existing account): the account URL.
  absl::StatusOr<std::string> NewAccount(const std::optional<Eab>& eab,
                                         bool only_return_existing = false);

  struct Order {
    std::string url;
    Json body;
  };
  // NewOrder asks for `identifiers` ([{"type":..., "value":...}]).
  absl::StatusOr<Order> NewOrder(const Json& identifiers);
  // PostAsGet fetches a resource as the account (RFC 8555 §6.3).
  absl::StatusOr<Json> PostAsGet(const std::string& url);
  // Respond POSTs `payload` to a challenge URL.
  absl::StatusOr<Json> Respond(const std::string& challenge_url, const Json& payload);
  // WaitFor polls `url` until its status is one of `done` (returned) or "invalid" (error with
  // the object's error), sleeping Retry-After (clamped to [1 s, max_retry_after]) between
  // polls, at most poll_timeout in all.
  absl::StatusOr<Json> WaitFor(const std::string& url, std::initializer_list<const char*> done);
  // Finalize sends the CSR (DER) and returns the order as answered.
  absl::StatusOr<Json> Finalize(const std::string& finalize_url, std::string_view csr_der);
  // DownloadCertificate fetches the PEM chain (application/pem-certificate-chain).
  absl::StatusOr<std::string> DownloadCertificate(const std::string& url);

  // Lower-level pieces, used by tests to send what a correct client would not.
  absl::StatusOr<std::string> FreshNonce();
  // SignedBody is the JWS for a POST to `url`: jwk in the header when no account URL is known
  // (or `use_jwk`), otherwise kid.
  absl::StatusOr<std::string> SignedBody(const std::string& url, std::string_view payload,
                                         const std::string& nonce, bool use_jwk = false);
  // Send sends one HTTP request (no retry).
  absl::StatusOr<HttpResult> Send(const std::string& method, const std::string& url,
                                  std::string_view body,
                                  std::string_view content_type = "application/jose+json");
  // Post signs and sends, retrying on badNonce; a problem answer becomes an error status.
  absl::StatusOr<HttpResult> Post(const std::string& url, std::string_view payload,
                                  bool use_jwk = false);

 private:
  AcmeClient(const stir::Signer* signer, const EVP_PKEY* key, ClientOptions options)
      : signer_(signer), key_(key), options_(std::move(options)) {}
  std::string DirectoryUrl(const char* name) const;

  const stir::Signer* signer_;
  const EVP_PKEY* key_;
  ClientOptions options_;
  Json directory_;
  Json jwk_;
  std::string kid_;
  std::string nonce_;  // the last Replay-Nonce received, unused
};

// ProblemFromResponse turns an HTTP error answer into a status: the problem document's type and
// detail when it is one, otherwise the HTTP status and the start of the body.
absl::Status ProblemFromResponse(const HttpResult& r, std::string_view what);

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_CLIENT_H_
