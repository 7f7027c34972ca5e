#include "stir/cert_validator.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "stir/status_macros.h"

namespace shaken::stir {

struct CertValidator::Trust {
  CertValidatorOptions options;
  X509StorePtr store;
  bool have_crls = false;
  absl::Time crl_next_update = absl::InfiniteFuture();  // earliest nextUpdate of loaded CRLs
};

namespace {

absl::StatusOr<std::shared_ptr<const CertValidator::Trust>> LoadTrust(CertValidatorOptions options);

void FillNamesAndValidity(const X509* cert, CertificateInfo* info) {
  info->subject = NameText(X509_get_subject_name(cert), /*escape_non_ascii=*/true);
  info->issuer = NameText(X509_get_issuer_name(cert), /*escape_non_ascii=*/true);
  info->serial_hex = SerialHex(X509_get0_serialNumber(cert));
  info->not_before = Asn1TimeToTime(X509_get0_notBefore(cert));
  info->not_after = Asn1TimeToTime(X509_get0_notAfter(cert));
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

absl::StatusOr<std::shared_ptr<const CertValidator::Trust>> LoadTrust(
    CertValidatorOptions options) {
  if (options.ca_file.empty() && options.ca_dir.empty() && options.listed_anchors_pem.empty() &&
      !options.anchors_may_be_empty) {
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
  if (!options.listed_anchors_pem.empty()) {
    ASSIGN_OR_RETURN(std::vector<X509Ptr> listed,
                     ParsePemChain(options.listed_anchors_pem, 100000, 64 << 20));
    for (const X509Ptr& cert : listed) {
      if (!X509_STORE_add_cert(trust->store.get(), cert.get())) {
        return OpenSslError(absl::StatusCode::kInvalidArgument,
                            "cannot add a trust anchor of the CA list");
      }
    }
  }
  for (const std::string& path : options.crl_files) {
    ASSIGN_OR_RETURN(std::string data, ReadFile(path, 64 << 20));
    int loaded = 0;
    absl::StatusOr<std::vector<X509CrlPtr>> parsed = ParseCrls(data);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("CRL file ", path, " holds no PEM or DER CRL"));
    }
    std::vector<X509CrlPtr> crls = *std::move(parsed);
    for (X509CrlPtr& crl : crls) {
      if (!X509_STORE_add_crl(trust->store.get(), crl.get())) {
        return OpenSslError(absl::StatusCode::kInvalidArgument,
                            absl::StrCat("cannot add a CRL from ", path));
      }
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      if (next != nullptr)
        trust->crl_next_update = std::min(trust->crl_next_update, Asn1TimeToTime(next));
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

CertValidatorOptions CertValidator::options() const { return CurrentTrust()->options; }

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
    if (bad != nullptr) absl::StrAppend(&who, " (", NameText(X509_get_subject_name(bad), /*escape_non_ascii=*/true), ")");
    return CertificateResult::Failure(MapVerifyError(err),
                                      absl::StrCat(who, ": ", X509_verify_cert_error_string(err)));
  }

  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  auto verified = std::make_shared<VerifiedCertificate>();
  std::string detail;
  Reason profile = ValidateProfile(MakeProfileSubject(leaf, CertRole::kEndEntity, chain, now),
                                   opts.strictness, &verified->info, &detail);
  if (profile != Reason::kPassed) return CertificateResult::Failure(profile, std::move(detail));

  verified->valid_from = absl::InfinitePast();
  verified->valid_until = absl::InfiniteFuture();
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    verified->valid_from = std::max(verified->valid_from, Asn1TimeToTime(X509_get0_notBefore(c)));
    verified->valid_until = std::min(verified->valid_until, Asn1TimeToTime(X509_get0_notAfter(c)));
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

CrlCheck CertValidator::CheckCrl(std::string_view pem, X509_CRL* crl, absl::Time now) const {
  auto unusable = [](std::string d) { return CrlCheck{CrlCheck::kUnusable, std::move(d)}; };
  std::shared_ptr<const Trust> trust = CurrentTrust();
  const CertValidatorOptions& opts = trust->options;
  absl::StatusOr<std::vector<X509Ptr>> certs =
      ParsePemChain(pem, opts.max_chain_certs, opts.max_pem_bytes);
  if (!certs.ok()) return unusable(std::string(certs.status().message()));
  struct StackDeleter {
    void operator()(STACK_OF(X509) * sk) const { sk_X509_free(sk); }
  };
  struct CrlStackDeleter {
    void operator()(STACK_OF(X509_CRL) * sk) const { sk_X509_CRL_free(sk); }
  };
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  std::unique_ptr<STACK_OF(X509_CRL), CrlStackDeleter> crls(sk_X509_CRL_new_null());
  if (!untrusted || !crls || !sk_X509_CRL_push(crls.get(), crl)) {
    return unusable("out of memory");
  }
  for (size_t i = 1; i < certs->size(); ++i) sk_X509_push(untrusted.get(), (*certs)[i].get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || !X509_STORE_CTX_init(ctx.get(), trust->store.get(), (*certs)[0].get(),
                                   untrusted.get())) {
    ERR_clear_error();
    return unusable("cannot set up chain validation");
  }
  X509_STORE_CTX_set0_crls(ctx.get(), crls.get());
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(absl::ToUnixSeconds(now)));
  // The leaf only (the chain's CAs are the business of crl_files); extended CRL support lets
  // OpenSSL accept an indirect CRL whose issuer is the DP's cRLIssuer (RFC 5280 §5.2.5, §6.3.3).
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_EXTENDED_CRL_SUPPORT);
  if (X509_verify_cert(ctx.get()) == 1) return CrlCheck{CrlCheck::kGood, ""};
  const int err = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  std::string what = X509_verify_cert_error_string(err);
  if (err == X509_V_ERR_CERT_REVOKED) {
    std::string serial = SerialHex(X509_get0_serialNumber((*certs)[0].get()));
    return CrlCheck{CrlCheck::kRevoked,
                    absl::StrCat("the signing certificate (serial ", serial,
                                 ") is revoked by its CRL distribution point's CRL")};
  }
  return unusable(absl::StrCat("the CRL does not establish the signing certificate's status: ",
                               what));
}

}  // namespace shaken::stir
