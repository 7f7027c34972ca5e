#include "stir/verifier.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "stir/absl_compat.h"
#include "stir/cert_validator.h"
#include "stir/div_chain.h"
#include "stir/identity_header.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/rph.h"
#include "stir/status_macros.h"
#include "stir/time_text.h"
#include "stir/tn.h"

namespace shaken::stir {
namespace {

// n/2 for P-256, big-endian: a signature with s above it is the "high-S" twin of a low-S one.
constexpr uint8_t kP256HalfOrder[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

std::string Truncated(std::string_view s, size_t n = 64) {
  if (s.size() <= n) return std::string(s);
  return absl::StrCat(ToAbsl(s.substr(0, n)), "...");
}

bool SameTnSet(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a) {
    if (std::find(b.begin(), b.end(), x) == b.end()) return false;
  }
  for (const auto& x : b) {
    if (std::find(a.begin(), a.end(), x) == a.end()) return false;
  }
  return true;
}

}  // namespace

Verifier::Verifier(CertificateSource* certs, const Clock* clock, VerifierOptions options,
                   const CertificateFetcher* content)
    : certs_(certs), clock_(clock), options_(options), content_(content) {}

// Pending is a header that passed every local check (steps 1-10) and needs its certificate.
struct Verifier::Pending {
  Verdict verdict;  // filled so far
  std::string x5u;
  std::string signing_input;
  std::string signature;
};

Verdict Verifier::VerifyOne(std::string_view identity, std::string_view from_tn,
                            const std::vector<std::string>& to_tns,
                            std::optional<absl::Time> date) const {
  const absl::Time now = clock_->Now();
  std::variant<Verdict, Pending> local = Prepare(identity, from_tn, to_tns, date, {}, now, nullptr);
  if (Verdict* done = std::get_if<Verdict>(&local)) return std::move(*done);
  Pending& p = std::get<Pending>(local);
  return Finish(p, certs_->Lookup(p.x5u, now));
}

std::variant<Verdict, Verifier::Pending> Verifier::Prepare(std::string_view identity,
                                                          std::string_view from_tn,
                                                          const std::vector<std::string>& to_tns,
                                                          std::optional<absl::Time> date,
                                                          const std::vector<std::string>& rp,
                                                          absl::Time now,
                                                          std::optional<RcdCheck>* rcd) const {
  Verdict v;
  auto fail = [&v](const absl::Status& s, Reason fallback) {
    v.SetReason(ReasonOf(s, fallback), std::string(s.message()));
    return v;
  };

  // 1-3. The Identity header.
  absl::StatusOr<IdentityHeader> header = ParseIdentityHeader(identity);
  if (!header.ok()) return fail(header.status(), Reason::kIdentityMalformed);
  if (header->ppt.has_value()) v.ppt = *header->ppt;
  if (header->ppt.has_value() && !IsSupportedPpt(*header->ppt)) {
    v.ppt_not_supported = true;
    v.SetReason(Reason::kPptUnsupported,
                absl::StrCat("Identity ppt=", Truncated(*header->ppt, 16),
                             " is not handled; this verifier handles ppt=shaken, div, rph and "
                             "rcd"));
    return v;
  }
  if (!header->info.has_value()) {
    v.SetReason(Reason::kInfoMissing, "the Identity header has no info parameter (RFC 8224 §4)");
    return v;
  }

  // 4. The JWS.
  absl::StatusOr<DecodedPassport> passport = DecodePassport(header->digest);
  if (!passport.ok()) return fail(passport.status(), Reason::kPassportMalformed);
  const PassportHeader& h = passport->header;

  // 5-7. The JOSE header.
  for (const auto& [member, name] : {std::pair{&h.ppt, "ppt"}, std::pair{&h.typ, "typ"},
                                     std::pair{&h.alg, "alg"}, std::pair{&h.x5u, "x5u"}}) {
    if (!member->has_value()) {
      v.SetReason(Reason::kHeaderParamMissing,
                  absl::StrCat("the PASSporT header has no \"", name, "\" (RFC 8225 §4)"));
      return v;
    }
  }
  v.ppt = *h.ppt;
  v.x5u = *h.x5u;
  if (!IsSupportedPpt(*h.ppt)) {
    v.SetReason(Reason::kPptUnsupported,
                absl::StrCat("PASSporT ppt \"", Truncated(*h.ppt, 16),
                             "\" is none of shaken, div, rph and rcd"));
    return v;
  }
  if (header->ppt.has_value() && *header->ppt != *h.ppt) {
    v.SetReason(Reason::kPptMismatch, "the Identity ppt parameter differs from the PASSporT ppt");
    return v;
  }
  // A div PASSporT is linked to the call's others through its Identity ppt=div (RFC 8224 §4: the
  // ppt parameter names a PASSporT extension); without it the call is not seen as diverted. The
  // same holds for rph and rcd: only shaken may leave the parameter out.
  if (!header->ppt.has_value() && *h.ppt != kPptShaken) {
    v.SetReason(Reason::kPptMismatch,
                absl::StrCat("a ", Truncated(*h.ppt, 16), " PASSporT's Identity header must "
                             "carry ppt=", Truncated(*h.ppt, 16), " (RFC 8224 §4)"));
    return v;
  }
  if (*h.x5u != *header->info) {
    v.SetReason(Reason::kX5uMismatch,
                absl::StrCat("x5u \"", Truncated(*h.x5u), "\" differs from info \"",
                             Truncated(*header->info), "\""));
    return v;
  }
  if (!absl::StartsWith(*h.x5u, "https://") &&
      !(options_.x5u_policy.allow_http && absl::StartsWith(*h.x5u, "http://"))) {
    v.SetReason(Reason::kX5uNotAllowed, "x5u must be an https URL (ATIS-1000080, SH-10)");
    return v;
  }
  if (*h.typ != kTypPassport) {
    v.SetReason(Reason::kTypInvalid,
                absl::StrCat("typ \"", Truncated(*h.typ, 16), "\" is not \"passport\""));
    return v;
  }
  if (*h.alg != kAlgEs256) {
    v.SetReason(Reason::kAlgUnsupported,
                absl::StrCat("alg \"", Truncated(*h.alg, 16),
                             "\" is not accepted; SHAKEN signs with ES256 only"));
    return v;
  }
  // RFC 8224 §4.1: an Identity alg parameter, when present, names the PASSporT's alg.
  if (header->alg.has_value() && *header->alg != *h.alg) {
    v.SetReason(Reason::kAlgMismatch, absl::StrCat("the Identity alg parameter \"",
                                                   Truncated(*header->alg, 16),
                                                   "\" differs from the PASSporT alg ES256"));
    return v;
  }

  // 8. Claims.
  absl::StatusOr<PassportClaims> claims = ExtractClaims(passport->payload, *h.ppt);
  if (!claims.ok()) return fail(claims.status(), Reason::kClaimInvalid);
  v.attest = claims->attest.value_or("");
  v.origid = claims->origid.value_or("");
  v.div_tn = claims->div_tn.value_or("");
  v.div_hi = claims->div_hi.value_or("");
  v.orig_tn = *claims->orig_tn;
  v.dest_tns = claims->dest_tns;
  v.iat = claims->iat;
  v.rph_auth = claims->rph_auth;
  v.sph = claims->sph.value_or("");
  if (rcd != nullptr) *rcd = StartRcdCheck(*claims, 0);

  // 9. Freshness.
  if (date.has_value() && absl::AbsDuration(now - *date) > options_.date_window) {
    v.SetReason(Reason::kDateStale,
                absl::StrCat("the Date header is ", OffsetText(*date, now),
                             "; the window is ", SecondsText(options_.date_window)));
    return v;
  }
  const absl::Time iat = absl::FromUnixSeconds(*claims->iat);
  const absl::Duration age = now - iat;
  if (age > options_.iat_window) {
    v.SetReason(Reason::kIatStale, absl::StrCat("iat is ", OffsetText(iat, now),
                                                "; the window is ",
                                                SecondsText(options_.iat_window)));
    return v;
  }
  if (-age > options_.iat_window) {
    v.SetReason(Reason::kIatFuture, absl::StrCat("iat is ", OffsetText(iat, now),
                                                 "; the window is ",
                                                 SecondsText(options_.iat_window)));
    return v;
  }

  // 10. orig and dest against the call. The claims are canonical (ExtractClaims checked), the
  // call's numbers were canonicalized by Verify (P3: '+' and separators on the SIP side).
  if (!from_tn.empty() && *claims->orig_tn != from_tn) {
    v.SetReason(Reason::kOrigMismatch,
                absl::StrCat("orig.tn ", Truncated(*claims->orig_tn, 32),
                             " does not match the caller ", Truncated(from_tn, 32)));
    return v;
  }
  if (!to_tns.empty() && !SameTnSet(claims->dest_tns, to_tns)) {
    v.SetReason(Reason::kDestMismatch, "dest.tn does not match the called number(s)");
    return v;
  }
  // RFC 8443: the rph PASSporT vouches for the call's Resource-Priority; every r-value the
  // request asks for must be among rph.auth.
  std::string missing;
  if (*h.ppt == kPptRph && !RphCovers(claims->rph_auth, rp, &missing)) {
    v.SetReason(Reason::kRphMismatch,
                rp.empty() ? std::string("the call carries no Resource-Priority header for its "
                                         "rph PASSporT to vouch for (RFC 8443)")
                           : absl::StrCat("the call's Resource-Priority value ",
                                          Truncated(missing, 64), " is not in rph.auth "
                                          "(RFC 8443)"));
    return v;
  }

  Pending p;
  p.verdict = std::move(v);
  p.x5u = *h.x5u;
  p.signing_input = std::move(passport->signing_input);
  p.signature = std::move(passport->signature);
  return p;
}

Verdict Verifier::Finish(Pending& p, CertificateResult cert) const {
  Verdict& v = p.verdict;
  // 11. The certificate.
  if (!cert.ok()) {
    v.SetReason(cert.reason == Reason::kPassed ? Reason::kFetchFailed : cert.reason,
                std::move(cert.detail));
    return v;
  }
  v.cert_subject = cert.cert->info.subject;
  v.cert_spc = cert.cert->info.spc;
  v.cert_serial = cert.cert->info.serial_hex;
  v.cert_not_after = cert.cert->info.not_after;

  // 12. The signature, over the bytes received (PP-5), never re-serialized JSON.
  if (p.signature.size() != 64) {
    v.SetReason(Reason::kSignatureInvalid,
                absl::StrCat("an ES256 signature is 64 bytes (r||s); this one is ",
                             p.signature.size()));
    return v;
  }
  Es256Signature sig;
  std::memcpy(sig.data(), p.signature.data(), sig.size());
  if (options_.require_low_s && std::memcmp(sig.data() + 32, kP256HalfOrder, 32) > 0) {
    v.SetReason(Reason::kSignatureInvalid, "high-S signature refused by policy");
    return v;
  }
  if (!VerifyEs256(cert.cert->public_key.get(), Sha256(p.signing_input), sig).ok()) {
    v.SetReason(Reason::kSignatureInvalid,
                "the signature does not verify with the x5u certificate's key");
    return v;
  }

  // 13. The certificate's authority over orig (DL-2; RFC 9060, ATIS-1000092). A TNAuthList with
  // TN or range entries (a delegate certificate) scopes its holder to those numbers, under every
  // profile policy; an SPC-only list names the signer and scopes nothing (SH-13). After the
  // signature, so the verdict says the certificate's own holder signed for a number it does not
  // hold. 438, not 437: the credential itself is valid and acceptable (it signs its own numbers
  // fine); what is wrong is this Identity header's claim, as with orig_mismatch (E16).
  const std::vector<TnAuthEntry>& tns = cert.cert->info.tn_auth_list;
  if (TnAuthListHasTns(tns) && !TnAuthListCovers(tns, v.orig_tn)) {
    v.SetReason(Reason::kOrigNotInTnAuthList,
                absl::StrCat("orig.tn ", Truncated(v.orig_tn, 32),
                             " is not among the TNs and ranges of the signing certificate's "
                             "TNAuthList (RFC 9060)"));
    return v;
  }
  v.SetReason(Reason::kPassed);
  return v;
}

absl::StatusOr<VerifyResult> Verifier::Verify(const std::vector<std::string>& identity_headers,
                                              const CallInfo& call) const {
  return VerifyAll(identity_headers, call);
}

absl::StatusOr<VerifyResult> Verifier::VerifyViews(
    const std::vector<std::string_view>& identity_headers, const CallInfo& call) const {
  return VerifyAll(identity_headers, call);
}

absl::StatusOr<Verifier::CanonicalCall> Verifier::Canonicalize(size_t headers,
                                                                const CallInfo& call) const {
  if (headers > kMaxIdentityHeaders) {
    return absl::InvalidArgumentError(absl::StrCat("a call carries at most ",
                                                   kMaxIdentityHeaders,
                                                   " Identity header values"));
  }
  CanonicalCall out;
  out.date = call.date;
  absl::StatusOr<std::vector<std::string>> rp = ParseResourcePriority(call.resource_priority);
  if (!rp.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resource_priority: ", rp.status().message()));
  }
  out.resource_priority = *std::move(rp);
  if (!call.from_tn.empty()) {
    absl::StatusOr<std::string> f = CanonicalizeTn(call.from_tn);
    if (!f.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("from tn: ", f.status().message()));
    }
    out.from = *std::move(f);
  }
  out.to.reserve(call.to_tns.size());
  for (const std::string& tn : call.to_tns) {
    absl::StatusOr<std::string> t = CanonicalizeTn(tn);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("to tn: ", t.status().message()));
    out.to.push_back(*std::move(t));
  }
  return out;
}

void Verifier::Conclude(VerifyResult& result, bool diverted, const std::vector<std::string>& to,
                        RcdChecks& rcd) {
  if (diverted) result.divs = LinkDivChain(result.headers, to);
  for (size_t i = 0; i < rcd.size(); ++i) {
    if (!rcd[i].has_value()) continue;
    rcd[i]->content.header = i;
    result.rcds.push_back(JudgeRcd(*rcd[i], result.headers[i]));
  }
  bool any_rph = false;
  bool rph_passed = false;
  for (const Verdict& v : result.headers) {
    if (v.ppt_not_supported || v.ppt != kPptRph) continue;
    any_rph = true;
    rph_passed = rph_passed || v.passed;
  }
  result.verstat_priority = !any_rph     ? PriorityVerstat::kNone
                            : rph_passed ? PriorityVerstat::kPassed
                                         : PriorityVerstat::kFailed;
  ChooseOverall(result);
}

void Verifier::ChooseOverall(VerifyResult& result) {
  // ID-7: pick the call's verdict. RFC 8224's 428 is for a request without an Identity header
  // "without ppt or with a supported ppt": a header whose ppt this verifier does not handle
  // counts as absent, so it neither decides nor spoils the call's verdict.
  std::vector<const Verdict*> counted;
  std::vector<std::string> ignored;
  for (const Verdict& v : result.headers) {
    if (!v.ppt_not_supported) {
      counted.push_back(&v);
    } else if (ignored.size() < 4) {
      ignored.push_back(absl::StrCat("ppt=", Truncated(v.ppt, 16)));
    }
  }
  if (counted.empty()) {
    result.overall = Verdict();
    if (result.headers.empty()) {
      result.overall.SetReason(Reason::kNoIdentity, "the call carries no Identity header");
    } else {
      result.overall.SetReason(
          Reason::kNoIdentity,
          absl::StrCat("the call carries no Identity header with a supported ppt (",
                       absl::StrJoin(ignored, ", "), result.headers.size() > ignored.size() ? ", ..." : "",
                       " not handled; this verifier handles ppt=shaken, div, rph and rcd)"));
    }
    return;
  }
  // A passing div links to a passing PASSporT it diverts (LinkDivChain), so a shaken one
  // speaks for the call when one passes: its orig and attest are the caller's. Then a div, then
  // an rph or rcd PASSporT (they vouch for orig too, but not with an attestation).
  const Verdict* chosen = nullptr;
  for (std::string_view ppt : {kPptShaken, kPptDiv, std::string_view()}) {
    for (const Verdict* v : counted) {
      if (chosen == nullptr && v->passed && (ppt.empty() || v->ppt == ppt)) chosen = v;
    }
  }
  if (chosen == nullptr) {
    for (const Verdict* v : counted) {
      if (v->sip_code != 436) {
        chosen = v;
        break;
      }
    }
  }
  result.overall = chosen != nullptr ? *chosen : *counted.front();
}

template <typename Strings>
absl::StatusOr<VerifyResult> Verifier::VerifyAll(const Strings& identity_headers,
                                                 const CallInfo& call) const {
  ASSIGN_OR_RETURN(CanonicalCall c, Canonicalize(identity_headers.size(), call));
  const bool diverted = std::any_of(identity_headers.begin(), identity_headers.end(),
                                    [](std::string_view h) { return IsDivIdentity(h); });
  // A diverted call's To is checked against the end of the div chain (LinkDivChain), not each.
  const std::vector<std::string> no_to;
  VerifyResult result;
  result.headers.reserve(identity_headers.size());
  RcdChecks rcd(identity_headers.size());
  const absl::Time now = clock_->Now();
  size_t i = 0;
  for (std::string_view identity : identity_headers) {
    std::variant<Verdict, Pending> local = Prepare(
        identity, c.from, diverted ? no_to : c.to, c.date, c.resource_priority, now, &rcd[i]);
    if (Verdict* done = std::get_if<Verdict>(&local)) {
      result.headers.push_back(std::move(*done));
    } else {
      Pending& p = std::get<Pending>(local);
      result.headers.push_back(Finish(p, certs_->Lookup(p.x5u, now)));
    }
    // 15. The rich call data's content, for a header that passed (blocking: tools).
    if (rcd[i].has_value() && result.headers[i].passed) {
      for (size_t k = 0; k < rcd[i]->references.size(); ++k) {
        rcd[i]->fetched[k] = content_ != nullptr
                                 ? content_->FetchContent(rcd[i]->references[k].url)
                                 : FetchResult::Failure(Reason::kFetchFailed,
                                                        "this verifier has no content fetcher");
      }
    }
    ++i;
  }
  Conclude(result, diverted, c.to, rcd);
  return result;
}

// AsyncCall is one VerifyAsync call: its headers' verdicts, and how many still wait for a
// certificate. The last lookup to land completes it.
struct Verifier::AsyncCall {
  VerifyResult result;
  std::vector<Pending> pending;  // by header index; only those whose certificate is awaited
  std::atomic<int> outstanding{1};  // one for the dispatching thread itself
  VerifyDone done;
  bool diverted = false;
  std::vector<std::string> to;
  RcdChecks rcd;  // by header index
};

void Verifier::VerifyAsync(const std::vector<std::string_view>& identity_headers,
                           const CallInfo& call, absl::Time deadline, VerifyDone done) const {
  absl::StatusOr<CanonicalCall> c = Canonicalize(identity_headers.size(), call);
  if (!c.ok()) {
    std::move(done)(c.status());
    return;
  }
  const absl::Time now = clock_->Now();
  auto state = std::make_shared<AsyncCall>();
  state->done = std::move(done);
  state->diverted = std::any_of(identity_headers.begin(), identity_headers.end(),
                                [](std::string_view h) { return IsDivIdentity(h); });
  state->to = c->to;
  const std::vector<std::string> no_to;
  state->result.headers.resize(identity_headers.size());
  state->pending.resize(identity_headers.size());
  state->rcd.resize(identity_headers.size());
  std::vector<size_t> awaiting;
  for (size_t i = 0; i < identity_headers.size(); ++i) {
    std::variant<Verdict, Pending> local =
        Prepare(identity_headers[i], c->from, state->diverted ? no_to : c->to, c->date,
                c->resource_priority, now, &state->rcd[i]);
    if (Verdict* v = std::get_if<Verdict>(&local)) {
      state->result.headers[i] = std::move(*v);
    } else {
      state->pending[i] = std::get<Pending>(std::move(local));
      awaiting.push_back(i);
    }
  }
  auto land = [this](const std::shared_ptr<AsyncCall>& s) {
    if (s->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    Conclude(s->result, s->diverted, s->to, s->rcd);
    std::move(s->done)(std::move(s->result));
  };
  state->outstanding.fetch_add(static_cast<int>(awaiting.size()), std::memory_order_relaxed);
  for (size_t i : awaiting) {
    const std::string x5u = state->pending[i].x5u;
    certs_->LookupAsync(x5u, now, deadline, [this, state, i, land,
                                             deadline](CertificateResult cert) {
      state->result.headers[i] = Finish(state->pending[i], std::move(cert));
      // 15. The rich call data's content, fetched on the fetcher's thread; each fetch holds
      // the call open (outstanding) until it lands.
      std::optional<RcdCheck>& rcd = state->rcd[i];
      if (rcd.has_value() && state->result.headers[i].passed && !rcd->references.empty()) {
        if (content_ == nullptr) {
          for (FetchResult& f : rcd->fetched) {
            f = FetchResult::Failure(Reason::kFetchFailed, "this verifier has no content fetcher");
          }
        } else {
          state->outstanding.fetch_add(static_cast<int>(rcd->references.size()),
                                       std::memory_order_relaxed);
          for (size_t k = 0; k < rcd->references.size(); ++k) {
            // The fetch or the deadline, whichever comes first, lands this reference: the
            // caller's answer never waits for a slow content server past its deadline.
            auto answered = std::make_shared<std::atomic<bool>>(false);
            std::optional<TimerQueue::Id> timer;
            if (deadline < absl::InfiniteFuture()) {
              timer = content_timers_.Schedule(deadline, [state, i, k, land, answered]() {
                if (answered->exchange(true)) return;
                state->rcd[i]->fetched[k] = FetchResult::Failure(
                    Reason::kFetchTimeout, "the content was not fetched before the deadline");
                land(state);
              });
            }
            content_->FetchContentAsync(
                rcd->references[k].url, deadline,
                [this, state, i, k, land, answered, timer](FetchResult f) {
                  if (answered->exchange(true)) return;
                  if (timer.has_value()) content_timers_.Cancel(*timer);
                  state->rcd[i]->fetched[k] = std::move(f);
                  land(state);
                });
          }
        }
      }
      land(state);
    });
  }
  land(state);
}

}  // namespace shaken::stir
