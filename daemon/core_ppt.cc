// core_ppt.cc: the ServiceCore's signing paths for PASSporT types beyond shaken and div: rph
// (RFC 8443) and rcd (RFC 9795), and the rich call data a shaken PASSporT may carry
// (ATIS-1000094). The rcdi digests need the content by reference: it is fetched by the
// verifier's x5u fetcher on its own thread, never on the calling (gRPC or HTTP) thread.
#include <memory>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/core.h"
#include "daemon/core_internal.h"
#include "stir/passport.h"
#include "stir/rcd.h"
#include "stir/rph.h"

namespace shaken::daemon {

using internal::Invalid;
using shaken::v1::SignRequest;

absl::Status ServiceCore::CheckPptFields(const SignRequest& req, std::string_view ppt) {
  if (!stir::IsSupportedPpt(ppt)) {
    return Invalid(absl::StrCat("ppt \"", ToAbsl(ppt.substr(0, 16)),
                                "\" is not a PASSporT type this server signs: shaken, div, rph "
                                "or rcd"));
  }
  if (req.has_div() != (ppt == stir::kPptDiv)) {
    return Invalid(ppt == stir::kPptDiv ? "div is required with ppt \"div\""
                                        : "div is set: a div request has ppt \"div\" or none");
  }
  if (req.has_rph() != (ppt == stir::kPptRph)) {
    return Invalid(ppt == stir::kPptRph ? "rph is required with ppt \"rph\""
                                        : "rph is set: an rph request has ppt \"rph\" or none");
  }
  if (ppt == stir::kPptRcd && !req.has_rcd()) return Invalid("rcd is required with ppt \"rcd\"");
  if (req.has_rcd() && ppt != stir::kPptRcd && ppt != stir::kPptShaken) {
    return Invalid(absl::StrCat("rcd goes in a shaken or an rcd PASSporT, not with ppt \"",
                                ToAbsl(ppt), "\""));
  }
  return absl::OkStatus();
}

stir::RcdSigning ServiceCore::RcdFrom(const shaken::v1::Rcd& rcd) {
  auto opt = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
  };
  return {.nam = opt(rcd.nam()), .apn = opt(rcd.apn()), .icn = opt(rcd.icn()),
          .jcl = opt(rcd.jcl()), .jcd = opt(rcd.jcd()), .crn = opt(rcd.crn())};
}

std::optional<absl::Status> ServiceCore::ApiFieldError(const absl::Status& status,
                                                       std::string_view ppt) {
  static constexpr std::pair<std::string_view, std::string_view> kDiv[] = {
      {"original", "div.original"}, {"div_tn", "div.tn"}, {"hi ", "div.hi "}};
  static constexpr std::pair<std::string_view, std::string_view> kRph[] = {
      {"auth", "rph.auth"}, {"sph", "rph.sph"}, {"orig tn", "orig.tn"}, {"dest tn", "dest.tn"}};
  static constexpr std::pair<std::string_view, std::string_view> kRcd[] = {
      {"nam:", "rcd.nam:"}, {"apn:", "rcd.apn:"}, {"icn:", "rcd.icn:"}, {"jcl:", "rcd.jcl:"},
      {"jcd:", "rcd.jcd:"}, {"crn:", "rcd.crn:"}, {"rcdi:", "rcd: its rcdi:"},
      {"rcd needs", "rcd needs"}};
  std::span<const std::pair<std::string_view, std::string_view>> names;
  if (ppt == stir::kPptDiv) names = kDiv;
  if (ppt == stir::kPptRph) names = kRph;
  if (ppt == stir::kPptRcd || ppt == stir::kPptShaken) names = kRcd;
  for (const auto& [stir_name, api_name] : names) {
    absl::string_view m = status.message();
    if (absl::ConsumePrefix(&m, ToAbsl(stir_name))) {
      return absl::Status(status.code(), absl::StrCat(ToAbsl(api_name), m));
    }
  }
  return std::nullopt;
}

void ServiceCore::WithRcdi(std::unique_ptr<SignCall> call, stir::RcdSigning rcd,
                           absl::Time deadline, RcdNext next) const {
  if (!rcd.icn.has_value() && !rcd.jcl.has_value()) {
    std::move(next)(std::move(call), std::move(rcd));
    return;
  }
  std::shared_ptr<const stir::CertificateFetcher> fetcher = verifier_in_force()->fetcher;
  if (fetcher == nullptr) {
    CompleteSign(std::move(call),
                 absl::FailedPreconditionError(
                     "rcd.icn and rcd.jcl need their content fetched for the rcdi digests, with "
                     "the verifier's x5u fetcher; this server has verification disabled "
                     "(verifier.enabled)"));
    return;
  }
  const stir::CertificateFetcher& f = *fetcher;
  stir::ComputeRcdiAsync(
      f, std::move(rcd), deadline,
      [this, call = std::move(call), next = std::move(next),
       fetcher = std::move(fetcher)](absl::StatusOr<stir::RcdSigning> done) mutable {
        if (!done.ok()) {
          absl::Status status = ApiFieldError(done.status(), stir::kPptRcd).value_or(done.status());
          CompleteSign(std::move(call), std::move(status));
          return;
        }
        std::move(next)(std::move(call), *std::move(done));
      });
}

void ServiceCore::StartSignRphOrRcd(std::unique_ptr<SignCall> call, std::string_view ppt,
                                    absl::Time deadline) const {
  const SignRequest& req = *call->req;
  absl::Status invalid;
  if (!req.attest().empty()) {
    invalid = Invalid(absl::StrCat("attest must be empty with ppt \"", ToAbsl(ppt),
                                   "\": only a shaken PASSporT attests"));
  } else if (!req.origid().empty()) {
    invalid = Invalid(absl::StrCat("origid must be empty with ppt \"", ToAbsl(ppt), "\""));
  } else if (ppt == stir::kPptRph &&
             static_cast<size_t>(req.rph().auth_size()) > stir::kMaxRphValues) {
    invalid = Invalid(absl::StrCat("rph.auth has more than ", stir::kMaxRphValues, " values"));
  } else {
    invalid = internal::OrigDestError(req);
  }
  if (!invalid.ok()) {
    CompleteSign(std::move(call), std::move(invalid));
    return;
  }
  const SigningProfile* profile = call->profile;
  // A delegate certificate's scope, as for shaken (ServiceCore::StartSign).
  if (absl::Status scope = profile->CheckOrigScope(req.orig().tn()); !scope.ok()) {
    CompleteSign(std::move(call), std::move(scope));
    return;
  }
  const std::vector<std::string> dest(req.dest().tn().begin(), req.dest().tn().end());
  std::optional<int64_t> iat;
  if (req.has_iat()) iat = req.iat();
  if (ppt == stir::kPptRph) {
    stir::RphClaims claims{.orig_tn = req.orig().tn(), .dest_tns = dest,
                           .auth = {req.rph().auth().begin(), req.rph().auth().end()},
                           .iat = iat};
    if (!req.rph().sph().empty()) claims.sph = req.rph().sph();
    profile->SignRphAsync(claims, deadline, SignDone(std::move(call), stir::kPptRph));
    return;
  }
  stir::RcdClaims claims{.orig_tn = req.orig().tn(), .dest_tns = dest, .iat = iat};
  WithRcdi(std::move(call), RcdFrom(req.rcd()), deadline,
           [this, claims = std::move(claims), deadline](std::unique_ptr<SignCall> call,
                                                        stir::RcdSigning rcd) mutable {
             claims.rcd = std::move(rcd);
             const SigningProfile* profile = call->profile;
             profile->SignRcdAsync(claims, deadline, SignDone(std::move(call), stir::kPptRcd));
           });
}

}  // namespace shaken::daemon
