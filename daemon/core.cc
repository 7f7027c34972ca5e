#include "daemon/core.h"
#include "daemon/core_internal.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "stir/identity_header.h"
#include "absl/time/clock.h"
#include "daemon/log.h"
#include "proto/verdict.h"
#include "stir/absl_compat.h"
#include "stir/passport.h"
#include "stir/rph.h"
#include "stir/status_macros.h"

namespace shaken::daemon {

absl::Status internal::OrigDestError(const shaken::v1::SignRequest& req) {
  if (req.orig().tn().empty()) return Invalid("orig.tn is required: the calling number");
  if (req.orig().tn().size() > kMaxTnInputBytes) return Invalid("orig.tn is too long");
  if (req.dest().tn().empty()) return Invalid("dest.tn needs at least one called number");
  if (static_cast<size_t>(req.dest().tn_size()) > stir::kMaxDestTns) {
    return Invalid(absl::StrCat("dest.tn has ", req.dest().tn_size(), " numbers; at most ",
                                stir::kMaxDestTns));
  }
  for (const std::string& tn : req.dest().tn()) {
    if (tn.size() > kMaxTnInputBytes) return Invalid("dest.tn has a number that is too long");
  }
  return absl::OkStatus();
}

namespace {

using shaken::v1::SignRequest;
using shaken::v1::SignResponse;

using internal::Invalid;
using internal::kMaxProfileNameBytes;
using internal::kMaxRequestIdBytes;
using internal::kMaxTnInputBytes;

std::string Micros(absl::Duration d) { return absl::StrCat(absl::ToInt64Microseconds(d)); }

}  // namespace

std::string_view FrontName(Front f) {
  switch (f) {
    case Front::kRest:
      return "rest";
    case Front::kSip:
      return "sip";
    case Front::kGrpc:
      break;
  }
  return "grpc";
}


std::shared_ptr<const ProfileSet> ProfileSet::Make(
    std::vector<std::shared_ptr<SigningProfile>> profiles, Metrics* metrics) {
  auto set = std::make_shared<ProfileSet>();
  set->profiles = std::move(profiles);
  for (size_t i = 0; i < set->profiles.size(); ++i) {
    const SigningProfile& p = *set->profiles[i];
    set->index[p.name()] = i;
    if (p.config().is_default) set->default_index = i;
    set->metric_series.push_back(metrics != nullptr ? metrics->ProfileSeries(p.name())
                                                    : Metrics::kMaxProfileSeries);
  }
  return set;
}

ServiceCore::ServiceCore(ServiceDeps deps)
    : deps_(std::move(deps)),
      // Held only here from now on, so that a replaced set's last holder is its replacer.
      profiles_(std::exchange(deps_.profiles, nullptr)),
      verifier_(std::make_shared<const VerifierInForce>(std::exchange(deps_.verifier, {}))),
      audit_tns_(deps_.audit_tns) {}

// SignCall is one signature in progress: what its audit record and its completion need.
void ServiceCore::AuditSign(const SignCall& c, const absl::Status& status) const {
  const SignRequest& req = *c.req;
  const absl::Duration latency = absl::Now() - c.start;
  if (c.profile != nullptr && status.ok()) {
    deps_.metrics->RecordSign(c.set->metric_series[c.index], latency);
  }
  std::string tns;
  if (audit_tns_.load(std::memory_order_relaxed)) {
    tns = absl::StrCat(req.orig().tn(), "->", absl::StrJoin(req.dest().tn(), ","));
  }
  const std::string_view requested_profile = req.profile();
  const std::string_view request_id = req.request_id();
  Audit("sign", {{"client", c.caller->identity},
                 {"method", MethodName(c.method)},
                 {"profile", c.profile != nullptr ? std::string_view(c.profile->name())
                                                  : requested_profile.substr(0, 64)},
                 {"attest", std::string_view(req.attest()).substr(0, 8)},
                 {"result", GrpcCodeName(static_cast<int>(status.code()))},
                 {"latency_us", Micros(latency), /*number=*/true},
                 {"request_id", request_id.substr(0, kMaxRequestIdBytes)},
                 {"origid", c.resp->origid()},
                 {"tns", tns},
                 {"front", FrontName(c.front)}});
}

void ServiceCore::CompleteSign(std::unique_ptr<SignCall> call, absl::Status status) const {
  AuditSign(*call, status);
  Done done = std::move(call->done);
  call.reset();
  std::move(done)(std::move(status));
}

std::string ServiceCore::ProfilesFor(const ProfileSet& set, const Caller& caller,
                                     std::string_view method) {
  std::vector<std::string> names;
  for (const auto& p : set.profiles) {
    if (Authorizer::MayUse(caller, method, p->name())) names.push_back(p->name());
  }
  if (names.empty()) return "none";
  return absl::StrJoin(names, ", ");
}

void ServiceCore::StartSign(const CallContext& ctx, const SignRequest& req, SignResponse* resp,
                            Done done) const {
  const Caller& caller = *ctx.caller;
  const Method method = ctx.method;
  const absl::Time deadline = ctx.deadline;
  auto call = std::make_unique<SignCall>();
  call->caller = &caller;
  call->front = ctx.front;
  call->method = method;
  call->start = absl::Now();
  call->req = &req;
  call->resp = resp;
  call->done = std::move(done);
  const std::string_view method_name = MethodName(method);

  if (!Authorizer::MayCall(caller, method_name)) {
    CompleteSign(std::move(call),
                 absl::PermissionDeniedError(absl::StrCat("client ", caller.identity,
                                                          " may not call ", ToAbsl(method_name))));
    return;
  }
  // logging.audit_on_failure: refuse. The refusal's own audit record probes the file again.
  if (absl::Status a = CheckAuditForSigning(); !a.ok()) {
    CompleteSign(std::move(call), std::move(a));
    return;
  }
  if (req.request_id().size() > kMaxRequestIdBytes) {
    CompleteSign(std::move(call), Invalid(absl::StrCat("request_id is longer than ",
                                                       kMaxRequestIdBytes, " bytes")));
    return;
  }
  if (req.profile().size() > kMaxProfileNameBytes) {
    CompleteSign(std::move(call), Invalid("profile name is too long"));
    return;
  }
  // One lookup for a named profile; the default profile's index was found at construction. A
  // profile the caller may not use is named only by the caller's own request.
  call->set = profiles_.load();
  const ProfileSet& set = *call->set;
  size_t chosen = set.default_index;
  if (!req.profile().empty()) {
    const auto named = set.index.find(req.profile());
    if (named == set.index.end()) {
      CompleteSign(std::move(call),
                   Invalid(absl::StrCat("unknown profile \"", req.profile(),
                                        "\"; profiles this client may use: ",
                                        ProfilesFor(set, caller, method_name))));
      return;
    }
    chosen = named->second;
  }
  const SigningProfile* profile = set.profiles[chosen].get();
  if (!Authorizer::MayUse(caller, method_name, profile->name())) {
    CompleteSign(std::move(call),
                 absl::PermissionDeniedError(absl::StrCat(
                     "client ", caller.identity, " may not sign with profile ",
                     req.profile().empty() ? "(the default)" : req.profile(),
                     "; profiles this client may use: ", ProfilesFor(set, caller, method_name))));
    return;
  }
  call->index = chosen;
  call->profile = profile;
  // The certificate a verifier would fetch from x5u must be valid now; health() says DOWN too.
  if (absl::Status validity = profile->CheckCertificateValidity(); !validity.ok()) {
    CompleteSign(std::move(call), std::move(validity));
    return;
  }
  // The PASSporT type: given (3GPP Ms "ppt"), or told by the fields set.
  const std::string_view ppt = !req.ppt().empty() ? std::string_view(req.ppt())
                               : req.has_div()    ? stir::kPptDiv
                               : req.has_rph()    ? stir::kPptRph
                                                  : stir::kPptShaken;
  if (absl::Status s = CheckPptFields(req, ppt); !s.ok()) {
    CompleteSign(std::move(call), std::move(s));
    return;
  }
  if (ppt == stir::kPptDiv) {
    StartSignDiv(std::move(call), deadline);
    return;
  }
  if (ppt == stir::kPptRph || ppt == stir::kPptRcd) {
    StartSignRphOrRcd(std::move(call), ppt, deadline);
    return;
  }
  absl::Status invalid;
  if (!stir::IsAttestLevel(req.attest())) {
    invalid = Invalid(absl::StrCat("attest \"", req.attest().substr(0, 8),
                                   "\" must be A, B or C (RFC 8588 §4)"));
  } else if (!profile->AllowsAttest(req.attest())) {
    invalid = Invalid(absl::StrCat("profile ", profile->name(), " signs attest ",
                                   absl::StrJoin(profile->config().attest, ", "), " only; got ",
                                   req.attest()));
  } else {
    invalid = internal::OrigDestError(req);
  }
  if (!invalid.ok()) {
    CompleteSign(std::move(call), std::move(invalid));
    return;
  }
  stir::ShakenClaims claims;
  claims.attest = req.attest();
  claims.orig_tn = req.orig().tn();
  claims.dest_tns.assign(req.dest().tn().begin(), req.dest().tn().end());
  if (req.has_iat()) claims.iat = req.iat();
  if (!req.origid().empty()) claims.origid = req.origid();
  // A delegate certificate signs for its own numbers only (RFC 9060): refused here, where the
  // gRPC, REST and SIP front ends all pass, before the key is asked.
  if (absl::Status scope = profile->CheckOrigScope(claims.orig_tn); !scope.ok()) {
    CompleteSign(std::move(call), std::move(scope));
    return;
  }
  if (!req.has_rcd()) {
    profile->SignAsync(claims, deadline, SignDone(std::move(call), stir::kPptShaken));
    return;
  }
  // ATIS-1000094: rich call data in the shaken PASSporT, its rcdi digests first.
  stir::RcdSigning rcd = RcdFrom(req.rcd());  // apart: `claims` moves into the continuation
  WithRcdi(std::move(call), std::move(rcd), deadline,
           [this, claims = std::move(claims), deadline](std::unique_ptr<SignCall> call,
                                                        stir::RcdSigning rcd) mutable {
             claims.rcd = std::move(rcd);
             const SigningProfile* profile = call->profile;
             profile->SignAsync(claims, deadline, SignDone(std::move(call), stir::kPptShaken));
           });
}

void ServiceCore::StartSignDiv(std::unique_ptr<SignCall> call, absl::Time deadline) const {
  const SignRequest& req = *call->req;
  const shaken::v1::Div& div = req.div();
  absl::Status invalid;
  if (!req.attest().empty()) {
    invalid = Invalid("attest must be empty with div: a div PASSporT has no attest (RFC 8946)");
  } else if (!req.origid().empty()) {
    invalid = Invalid("origid must be empty with div: a div PASSporT has no origid (RFC 8946)");
  } else if (!req.orig().tn().empty()) {
    invalid = Invalid("orig.tn must be empty with div: orig is copied from div.original");
  } else if (div.original().empty()) {
    invalid = Invalid("div.original is required: the Identity header value of the PASSporT "
                      "being diverted");
  } else if (div.original().size() > stir::kMaxIdentityHeaderBytes) {
    invalid = Invalid(absl::StrCat("div.original is longer than ", stir::kMaxIdentityHeaderBytes,
                                   " bytes"));
  } else if (div.tn().size() > kMaxTnInputBytes) {
    invalid = Invalid("div.tn is too long");
  } else if (div.hi().size() > 64) {
    invalid = Invalid("div.hi is too long: a History-Info index such as \"1.2\"");
  } else if (req.dest().tn().empty()) {
    invalid = Invalid("dest.tn needs at least one number with div: the new target");
  } else if (static_cast<size_t>(req.dest().tn_size()) > stir::kMaxDestTns) {
    invalid = Invalid(absl::StrCat("dest.tn has ", req.dest().tn_size(), " numbers; at most ",
                                   stir::kMaxDestTns));
  }
  if (!invalid.ok()) {
    CompleteSign(std::move(call), std::move(invalid));
    return;
  }
  stir::DivClaims claims;
  claims.original = div.original();
  for (const std::string& tn : req.dest().tn()) {
    if (tn.size() > kMaxTnInputBytes) {
      CompleteSign(std::move(call), Invalid("dest.tn has a number that is too long"));
      return;
    }
    claims.dest_tns.push_back(tn);
  }
  if (!div.tn().empty()) claims.div_tn = div.tn();
  if (!div.hi().empty()) claims.hi = div.hi();
  if (req.has_iat()) claims.iat = req.iat();
  const SigningProfile* profile = call->profile;
  profile->SignDivAsync(claims, deadline, SignDone(std::move(call), stir::kPptDiv));
}

stir::PassportSigner::SignDone ServiceCore::SignDone(std::unique_ptr<SignCall> call,
                                                     std::string_view ppt) const {
  return [this, call = std::move(call), ppt](
             absl::StatusOr<stir::SignedPassport> signed_passport) mutable {
        const SigningProfile* profile = call->profile;
        if (!signed_passport.ok()) {
          absl::Status status = signed_passport.status();
          // A request's own fields are named as in the API (stir's DivClaims original, div_tn,
          // hi are div.original, div.tn, div.hi; RphClaims auth is rph.auth; ...); a stale
          // original is the request's fault too.
          bool request_error = status.code() == absl::StatusCode::kInvalidArgument;
          if (std::optional<absl::Status> renamed = ApiFieldError(status, ppt)) {
            status = *std::move(renamed);
            request_error = true;
          }
          if (!request_error) {
            status = stir::WithPrefix(status, absl::StrCat("profile ", profile->name(), ": "));
            LogWarn("sign_failed", {{"profile", profile->name()},
                                    {"code", GrpcCodeName(static_cast<int>(status.code()))},
                                    {"error", ToStd(status.message())}});
          }
          CompleteSign(std::move(call), std::move(status));
          return;
        }
        SignResponse* resp = call->resp;
        resp->set_identity(std::move(signed_passport->identity));
        resp->set_passport(std::move(signed_passport->jws));
        resp->set_origid(std::move(signed_passport->origid));
        resp->set_iat(signed_passport->iat);
        resp->set_request_id(call->req->request_id());
        resp->set_profile(profile->name());
        CompleteSign(std::move(call), absl::OkStatus());
  };
}


absl::Status ServiceCore::VerifyRequestError(const shaken::v1::VerifyRequest& req) {
  // ATIS-1000082 E1/E2: the request itself must be usable.
  if (req.identity().empty()) {
    return Invalid("identity is required: the Identity header value(s) of the call");
  }
  if (static_cast<size_t>(req.identity_size()) > stir::kMaxIdentityHeaders) {
    return Invalid(absl::StrCat("identity has ", req.identity_size(), " values; at most ",
                                stir::kMaxIdentityHeaders));
  }
  if (req.from().tn().empty()) {
    return Invalid("from.tn is required: the P-Asserted-Identity or From number");
  }
  if (req.from().tn().size() > kMaxTnInputBytes) return Invalid("from.tn is too long");
  if (req.to().tn().empty()) return Invalid("to.tn is required: the To number");
  if (static_cast<size_t>(req.to().tn_size()) > stir::kMaxDestTns) {
    return Invalid(absl::StrCat("to.tn has ", req.to().tn_size(), " numbers; at most ",
                                stir::kMaxDestTns));
  }
  for (const std::string& tn : req.to().tn()) {
    if (tn.size() > kMaxTnInputBytes) return Invalid("to.tn has a number that is too long");
  }
  if (static_cast<size_t>(req.resource_priority_size()) > stir::kMaxRphValues) {
    return Invalid(absl::StrCat("resource_priority has more than ", stir::kMaxRphValues,
                                " values"));
  }
  for (const std::string& rp : req.resource_priority()) {
    if (rp.size() > 1024) return Invalid("resource_priority has a value longer than 1024 bytes");
  }
  // An Identity value over stir::kMaxIdentityHeaderBytes is not refused here: it gets its 438
  // verdict (identity_malformed) like any other malformed header.
  if (req.request_id().size() > kMaxRequestIdBytes) {
    return Invalid(absl::StrCat("request_id is longer than ", kMaxRequestIdBytes, " bytes"));
  }
  return absl::OkStatus();
}

void ServiceCore::StartVerify(const CallContext& ctx, const shaken::v1::VerifyRequest& req,
                              shaken::v1::VerifyResponse* resp, Done done) const {
  const absl::Time start = absl::Now();
  if (!Authorizer::MayCall(*ctx.caller, MethodName(ctx.method))) {
    std::move(done)(absl::PermissionDeniedError(absl::StrCat(
        "client ", ctx.caller->identity, " may not call ", ToAbsl(MethodName(ctx.method)))));
    return;
  }
  std::shared_ptr<const VerifierInForce> in_force = verifier_.load();
  if (in_force->verifier == nullptr) {
    std::move(done)(absl::FailedPreconditionError(
        "verification is disabled on this server (verifier.enabled)"));
    return;
  }
  if (absl::Status invalid = VerifyRequestError(req); !invalid.ok()) {
    std::move(done)(std::move(invalid));
    return;
  }
  // Verification has its own bound, apart from signing's: however slow the x5u servers of the
  // calls being verified, they hold at most this many calls, never a signing slot or a thread.
  if (verify_in_flight_.fetch_add(1, std::memory_order_relaxed) >= in_force->max_in_flight) {
    verify_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    std::move(done)(absl::ResourceExhaustedError(
        absl::StrCat("verifier: ", in_force->max_in_flight,
                     " verifications already in progress (verifier.max_in_flight); retry later")));
    return;
  }
  stir::CallInfo call;
  call.from_tn = req.from().tn();
  call.to_tns.assign(req.to().tn().begin(), req.to().tn().end());
  if (req.has_time()) call.date = absl::FromUnixSeconds(req.time());
  call.resource_priority.assign(req.resource_priority().begin(), req.resource_priority().end());
  std::vector<std::string_view> identities(req.identity().begin(), req.identity().end());
  // Answer before the caller's deadline, so that a certificate still being fetched becomes a 436
  // verdict the caller receives rather than its own DEADLINE_EXCEEDED: at 90 % of the caller's
  // budget, at most 1 s early. (When a storm of slow x5u servers times out ~200 calls at once,
  // their answers took over 100 ms to reach the client on this 2-core machine; 100 ms early lost
  // most of them, 10 % loses none: bench/README.md, storm.)
  absl::Time deadline = ctx.deadline;
  if (deadline < absl::InfiniteFuture()) {
    const absl::Duration margin =
        std::clamp((deadline - start) / 10, absl::Milliseconds(5), absl::Milliseconds(1000));
    deadline -= margin;
  }
  const stir::Verifier& verifier = *in_force->verifier;
  // The completion keeps the verifier it started with (a reload may replace it meanwhile).
  verifier.VerifyAsync(
      identities, call, deadline,
      [this, &req, resp, in_force = std::move(in_force),
       done = std::move(done)](absl::StatusOr<stir::VerifyResult> result) mutable {
        verify_in_flight_.fetch_sub(1, std::memory_order_relaxed);
        if (!result.ok()) {
          std::move(done)(result.status());
          return;
        }
        proto::FillVerifyResponse(*result, resp);
        for (const stir::Verdict& v : result->headers) deps_.metrics->RecordVerdict(v.reason);
        resp->set_request_id(req.request_id());
        std::move(done)(absl::OkStatus());
      });
}

absl::Status ServiceCore::ListProfiles(const Caller& caller,
                                       shaken::v1::ListProfilesResponse* resp) const {
  if (!Authorizer::MayCall(caller, "ListProfiles")) {
    return absl::PermissionDeniedError(
        absl::StrCat("client ", caller.identity, " may not call ListProfiles"));
  }
  const std::shared_ptr<const ProfileSet> set = profiles_.load();
  for (size_t i = 0; i < set->profiles.size(); ++i) {
    const SigningProfile* p = set->profiles[i].get();
    if (!Authorizer::MayUse(caller, "Sign", p->name()) &&
        !Authorizer::MayUse(caller, "SignStream", p->name()) && !caller.unrestricted) {
      continue;
    }
    auto* out = resp->add_profiles();
    out->set_name(p->name());
    out->set_key(p->key_description());
    out->set_x5u(p->config().x5u);
    auto cert = p->certificate();
    out->mutable_certificate()->set_subject(cert->subject);
    out->mutable_certificate()->set_spc(cert->spc);
    out->mutable_certificate()->set_serial(cert->serial_hex);
    out->mutable_certificate()->set_not_after(absl::ToUnixSeconds(cert->not_after));
    out->mutable_certificate()->set_not_before(absl::ToUnixSeconds(cert->not_before));
    for (const auto& a : p->config().attest) out->add_allowed_attest(a);
    switch (p->health()) {
      case hsm::Health::kServing:
        out->set_health(shaken::v1::Profile::SERVING);
        break;
      case hsm::Health::kDegraded:
        out->set_health(shaken::v1::Profile::DEGRADED);
        break;
      case hsm::Health::kDown:
        out->set_health(shaken::v1::Profile::DOWN);
        break;
    }
    out->set_is_default(i == set->default_index);
  }
  return absl::OkStatus();
}

}  // namespace shaken::daemon
