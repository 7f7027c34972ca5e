#include "stir/pem_chain.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

constexpr std::string_view kBeginCert = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEndCert = "-----END CERTIFICATE-----";

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
    OpenSslMallocPtr<char> name(name_raw);
    OpenSslMallocPtr<char> header(header_raw);
    OpenSslMallocPtr<unsigned char> data(data_raw);
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

}  // namespace shaken::stir
