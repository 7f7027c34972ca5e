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
    absl::StatusOr<std::unique_ptr<X5uCertificateSource>> cache = X5uCertificateSource::New(
        fetcher, stack->validator_, settings.cache, std::move(parts.store));
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

}  // namespace shaken::stir
