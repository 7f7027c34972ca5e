#include "stir/verification_stack.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

// Named prefixes the part that failed to an error.
absl::Status InPart(const char* part, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(part, ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<VerificationStack>> VerificationStack::New(
    VerifierSettings settings, const Clock* clock, VerificationStackParts parts) {
  if (parts.without_validator && !parts.make_source) {
    return absl::InvalidArgumentError(
        "a verification stack without a validator needs its own certificate source "
        "(VerificationStackParts::make_source)");
  }
  std::unique_ptr<VerificationStack> stack(new VerificationStack());

  // The one x5u policy, for the fetcher and the verifier alike.
  static_cast<X5uPolicy&>(settings.fetcher) = settings.x5u_policy;
  settings.verifier.x5u_policy = settings.x5u_policy;

  if (parts.validator != nullptr) {
    stack->validator_ = std::move(parts.validator);
  } else if (!parts.without_validator) {
    absl::StatusOr<std::unique_ptr<CertValidator>> v = CertValidator::New(settings.validator);
    if (!v.ok()) return InPart("verifier trust anchors", v.status());
    stack->owned_validator_ = *std::move(v);
    stack->validator_ = stack->owned_validator_;
  }

  std::shared_ptr<const CertificateFetcher> fetcher = std::move(parts.fetcher);
  if (fetcher == nullptr) {
    absl::StatusOr<std::unique_ptr<X5uFetcher>> f = X5uFetcher::New(settings.fetcher);
    if (!f.ok()) return InPart("x5u fetcher", f.status());
    stack->x5u_fetcher_ = f->get();
    fetcher = *std::move(f);
  }
  const std::shared_ptr<const CertificateFetcher> unwrapped = fetcher;
  if (parts.wrap_fetcher) {
    fetcher = parts.wrap_fetcher(std::move(fetcher));
    if (fetcher == nullptr) return absl::InvalidArgumentError("wrap_fetcher returned no fetcher");
  }
  stack->fetcher_ = fetcher;

  if (parts.make_source) {
    absl::StatusOr<std::unique_ptr<CertificateSource>> source =
        parts.make_source(fetcher, stack->validator_);
    if (!source.ok()) return source.status();
    if (*source == nullptr) return absl::InvalidArgumentError("make_source returned no source");
    stack->source_ = *std::move(source);
  } else {
    if (settings.follow_crl_distribution_points && stack->validator_ != nullptr) {
      // The fetcher as built or given, not wrapped: the wrappers count and rewrite x5u fetches.
      absl::StatusOr<std::unique_ptr<CrlChecker>> crl =
          CrlChecker::New(unwrapped, stack->validator_, settings.crl);
      if (!crl.ok()) return InPart("CRL checker", crl.status());
      stack->crl_checker_ = *std::move(crl);
    }
    absl::StatusOr<std::unique_ptr<X5uCertificateSource>> cache = X5uCertificateSource::New(
        fetcher, stack->validator_, settings.cache, std::move(parts.store), stack->crl_checker_);
    if (!cache.ok()) return InPart("certificate cache", cache.status());
    stack->cache_ = cache->get();
    stack->source_ = *std::move(cache);
  }
  stack->verifier_ = std::make_unique<Verifier>(
      stack->source_.get(), clock != nullptr ? clock : &SystemClock::Shared(), settings.verifier,
      stack->fetcher_.get());
  return stack;
}

VerificationStack::~VerificationStack() {
  // The source first: it waits for fetches in progress, whose completions use the verifier.
  source_.reset();
  verifier_.reset();
}

absl::Status VerificationStack::ReloadTrust() {
  if (owned_validator_ == nullptr) {
    return absl::FailedPreconditionError(
        "this verification stack does not own its validator: reload it where it was built");
  }
  return owned_validator_->Reload();
}

absl::Status VerificationStack::SetListedAnchors(std::string pem) {
  if (owned_validator_ == nullptr) {
    return absl::FailedPreconditionError(
        "this verification stack does not own its validator: set the anchors where it was built");
  }
  CertValidatorOptions options = owned_validator_->options();
  options.listed_anchors_pem = std::move(pem);
  return owned_validator_->Reload(std::move(options));
}

}  // namespace shaken::stir
