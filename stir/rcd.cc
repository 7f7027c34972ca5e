// rcd.cc: rich call data (RFC 9795): rcd, rcdi and crn claims, their digests, and the check that
// decides what reaches the called party. See rcd.h.
#include "stir/rcd.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/tn.h"

namespace shaken::stir {
namespace {

constexpr std::string_view kSha256Prefix = "sha256-";

absl::Status Invalid(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ": ", ToAbsl(why)));
}

absl::Status CheckText(std::string_view field, const std::optional<std::string>& text) {
  if (!text.has_value()) return absl::OkStatus();
  if (text->empty()) return Invalid(field, "is empty; leave it out instead");
  if (text->size() > kMaxRcdTextBytes) {
    return Invalid(field, absl::StrCat("is longer than ", kMaxRcdTextBytes, " bytes"));
  }
  if (!IsValidUtf8(*text)) return Invalid(field, "is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status CheckUrl(std::string_view field, const std::optional<std::string>& url,
                      const X5uPolicy& policy) {
  if (!url.has_value()) return absl::OkStatus();
  FetchResult allowed = CheckX5uUrl(*url, policy);
  if (!allowed.ok()) {
    return Invalid(field, absl::StrCat("verifiers would not fetch it under the x5u fetch policy "
                                       "(", allowed.detail, "); publish it at an https URL as "
                                       "the x5u"));
  }
  return absl::OkStatus();
}

// ParseJsonArray parses `text` as one JSON array under the strict parser's limits.
absl::StatusOr<Json> ParseJsonArray(std::string_view text) {
  ASSIGN_OR_RETURN(Json wrapped, ParseStrictJson(absl::StrCat("{\"a\":", ToAbsl(text), "}")));
  Json& a = wrapped["a"];
  if (!a.is_array()) return absl::InvalidArgumentError("not a JSON array");
  return std::move(a);
}

// ResolvePointer follows an RFC 6901 JSON pointer from `root`; null when it names nothing.
const Json* ResolvePointer(const Json& root, std::string_view pointer) {
  if (pointer.empty()) return &root;
  if (pointer.front() != '/') return nullptr;
  const Json* at = &root;
  size_t pos = 1;
  while (true) {
    const size_t end = std::min(pointer.find('/', pos), pointer.size());
    std::string token;
    for (size_t i = pos; i < end; ++i) {
      if (pointer[i] == '~' && i + 1 < end && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        token.push_back(pointer[++i] == '0' ? '~' : '/');
      } else if (pointer[i] == '~') {
        return nullptr;
      } else {
        token.push_back(pointer[i]);
      }
    }
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      size_t index = 0;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || p != token.data() + token.size() || token.empty() ||
          (token.size() > 1 && token[0] == '0') || index >= at->size()) {
        return nullptr;
      }
      at = &(*at)[index];
    } else {
      return nullptr;
    }
    if (end == pointer.size()) return at;
    pos = end + 1;
  }
}

// The fetches to make for signing: (pointer, url) of icn and jcl.
std::vector<std::pair<std::string, std::string>> SigningReferences(const RcdSigning& rcd) {
  std::vector<std::pair<std::string, std::string>> out;
  if (rcd.icn.has_value()) out.emplace_back("/icn", *rcd.icn);
  if (rcd.jcl.has_value()) out.emplace_back("/jcl", *rcd.jcl);
  return out;
}

// DigestFromFetch turns a fetch of the content at `pointer` into its rcdi digest.
absl::StatusOr<std::string> DigestFromFetch(std::string_view pointer, const FetchResult& r) {
  const std::string_view field = pointer.substr(1);
  if (r.reason == Reason::kX5uNotAllowed) {
    return Invalid(field, absl::StrCat("refused by the x5u fetch policy: ", r.detail));
  }
  if (!r.ok()) {
    return absl::UnavailableError(absl::StrCat(
        ToAbsl(field), ": fetching the content for its rcdi digest failed (",
        ToAbsl(ReasonName(r.reason)), "): ", r.detail));
  }
  if (pointer == "/jcl" && !ParseJsonArray(r.body).ok()) {
    return Invalid(field, "the content at the URL is not a jCard (a JSON array, RFC 7095)");
  }
  return RcdiDigest(r.body);
}

}  // namespace

std::string RcdiDigest(std::string_view content) {
  const Sha256Digest d = Sha256(content);
  std::string b64 = Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(d.data()),
                                                     d.size()));
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b64.size() % 4 != 0) b64.push_back('=');
  return absl::StrCat(ToAbsl(kSha256Prefix), b64);
}

bool RcdiDigestMatches(std::string_view digest, std::string_view content) {
  if (digest.size() < kSha256Prefix.size() ||
      !absl::EqualsIgnoreCase(ToAbsl(digest.substr(0, kSha256Prefix.size())),
                              ToAbsl(kSha256Prefix))) {
    return false;
  }
  std::string b64(digest.substr(kSha256Prefix.size()));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  absl::StatusOr<std::string> raw = Base64UrlDecode(b64);
  if (!raw.ok() || raw->size() != 32) return false;
  const Sha256Digest d = Sha256(content);
  return std::equal(d.begin(), d.end(), reinterpret_cast<const uint8_t*>(raw->data()));
}

absl::Status AddRcdClaims(const RcdSigning& rcd, const X5uPolicy& policy, Json* payload) {
  RETURN_IF_ERROR(CheckText("nam", rcd.nam));
  RETURN_IF_ERROR(CheckText("crn", rcd.crn));
  RETURN_IF_ERROR(CheckUrl("icn", rcd.icn, policy));
  RETURN_IF_ERROR(CheckUrl("jcl", rcd.jcl, policy));
  Json obj = Json::object();
  if (rcd.nam) obj["nam"] = *rcd.nam;
  if (rcd.apn) {
    absl::StatusOr<std::string> tn = CanonicalizeTn(*rcd.apn);
    if (!tn.ok()) return Invalid("apn", ToStd(tn.status().message()));
    obj["apn"] = *tn;
  }
  if (rcd.icn) obj["icn"] = *rcd.icn;
  if (rcd.jcl) obj["jcl"] = *rcd.jcl;
  if (rcd.jcd) {
    absl::StatusOr<Json> jcd = ParseJsonArray(*rcd.jcd);
    if (!jcd.ok()) {
      return Invalid("jcd", absl::StrCat("must be a jCard, a JSON array (RFC 7095): ",
                                         jcd.status().message()));
    }
    obj["jcd"] = *std::move(jcd);
  }
  Json rcdi = Json::object();
  for (const auto& [pointer, digest] : rcd.rcdi) {
    const Json* target = ResolvePointer(obj, pointer);
    if (target == nullptr || !target->is_string()) {
      return Invalid("rcdi", absl::StrCat("\"", pointer.substr(0, 64),
                                          "\" names no URL of the rcd claim"));
    }
    if (!absl::StartsWith(digest, ToAbsl(kSha256Prefix))) {
      return Invalid("rcdi", "digests are \"sha256-\" and a base64 SHA-256 (RFC 9795)");
    }
    rcdi[pointer] = digest;
  }
  for (const auto& [pointer, url] : SigningReferences(rcd)) {
    if (!rcdi.contains(pointer)) {
      return Invalid(std::string_view(pointer).substr(1),
                     "content by reference needs its rcdi digest (RFC 9795); compute it from the "
                     "fetched content (ComputeRcdi)");
    }
  }
  if (!obj.empty()) (*payload)["rcd"] = std::move(obj);
  if (!rcdi.empty()) (*payload)["rcdi"] = std::move(rcdi);
  if (rcd.crn) (*payload)["crn"] = *rcd.crn;
  return absl::OkStatus();
}

absl::Status ComputeRcdi(const CertificateFetcher& fetcher, RcdSigning& rcd) {
  rcd.rcdi.clear();
  for (const auto& [pointer, url] : SigningReferences(rcd)) {
    ASSIGN_OR_RETURN(std::string digest, DigestFromFetch(pointer, fetcher.FetchContent(url)));
    rcd.rcdi.emplace_back(pointer, std::move(digest));
  }
  return absl::OkStatus();
}

void ComputeRcdiAsync(const CertificateFetcher& fetcher, RcdSigning rcd, absl::Time deadline,
                      RcdiDone done) {
  const std::vector<std::pair<std::string, std::string>> refs = SigningReferences(rcd);
  rcd.rcdi.clear();
  if (refs.empty()) {
    std::move(done)(std::move(rcd));
    return;
  }
  struct State {
    RcdSigning rcd;
    std::vector<absl::StatusOr<std::string>> digests;
    std::atomic<size_t> left;
    RcdiDone done;
  };
  auto state = std::make_shared<State>();
  state->rcd = std::move(rcd);
  state->digests.resize(refs.size(), absl::UnknownError("not fetched"));
  state->left.store(refs.size());
  state->done = std::move(done);
  for (size_t i = 0; i < refs.size(); ++i) {
    fetcher.FetchContentAsync(
        refs[i].second, deadline, [state, i, pointer = refs[i].first](FetchResult r) {
          state->digests[i] = DigestFromFetch(pointer, r);
          if (state->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
          const std::vector<std::pair<std::string, std::string>> all =
              SigningReferences(state->rcd);
          for (size_t k = 0; k < all.size(); ++k) {
            if (!state->digests[k].ok()) {
              std::move(state->done)(state->digests[k].status());
              return;
            }
            state->rcd.rcdi.emplace_back(all[k].first, *std::move(state->digests[k]));
          }
          std::move(state->done)(std::move(state->rcd));
        });
  }
}

absl::Status CheckRcdClaims(const PassportClaims& c) {
  auto invalid = [](std::string_view why) {
    return ReasonError(Reason::kClaimInvalid, absl::StrCat(ToAbsl(why), " (RFC 9795)"));
  };
  if (c.rcd.has_value()) {
    const Json& rcd = *c.rcd;
    if (!rcd.is_object()) return invalid("claim rcd must be an object");
    for (const char* name : {"nam", "apn", "icn", "jcl"}) {
      auto it = rcd.find(name);
      if (it != rcd.end() && !it->is_string()) {
        return invalid(absl::StrCat("claim rcd.", name, " must be a string"));
      }
    }
    if (auto it = rcd.find("jcd"); it != rcd.end() && !it->is_array()) {
      return invalid("claim rcd.jcd must be a jCard array");
    }
  }
  if (c.rcdi.has_value()) {
    if (!c.rcdi->is_object()) return invalid("claim rcdi must be an object");
    if (c.rcdi->size() > kMaxRcdiEntries) {
      return invalid(absl::StrCat("claim rcdi holds more than ", kMaxRcdiEntries, " digests"));
    }
    for (const auto& [pointer, digest] : c.rcdi->items()) {
      if (!absl::StartsWith(pointer, "/") || !digest.is_string()) {
        return invalid("claim rcdi maps JSON pointers such as \"/icn\" to digest strings");
      }
    }
  }
  return absl::OkStatus();
}

std::optional<RcdCheck> StartRcdCheck(const PassportClaims& claims, size_t header) {
  if (!claims.rcd.has_value() && !claims.crn.has_value()) return std::nullopt;
  RcdCheck check;
  RcdResult& r = check.content;
  r.header = header;
  r.crn = claims.crn.value_or("");
  static const Json kEmpty = Json::object();
  const Json& rcd = claims.rcd.has_value() ? *claims.rcd : kEmpty;
  auto text = [&rcd](const char* name) {
    auto it = rcd.find(name);
    return it != rcd.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  r.nam = text("nam");
  r.apn = text("apn");
  r.icn = text("icn");
  r.jcl = text("jcl");
  if (auto it = rcd.find("jcd"); it != rcd.end()) r.jcd = it->dump();
  const Json rcdi = claims.rcdi.value_or(Json::object());
  for (const char* name : {"icn", "jcl"}) {
    const std::string pointer = absl::StrCat("/", name);
    if (rcd.contains(name) && !rcdi.contains(pointer)) {
      check.references_status = ReasonError(
          Reason::kRcdiMissing, absl::StrCat("rcd.", name, " is content by reference without an "
                                             "rcdi digest (RFC 9795): not shown"));
      return check;
    }
  }
  for (const auto& [pointer, digest] : rcdi.items()) {
    // Content by reference: icn, jcl, or a URL value inside the inline jCard.
    const bool by_reference =
        pointer == "/icn" || pointer == "/jcl" || absl::StartsWith(pointer, "/jcd/");
    const Json* target = by_reference ? ResolvePointer(rcd, pointer) : nullptr;
    if (target == nullptr || !target->is_string()) {
      check.references_status = ReasonError(
          Reason::kRcdiMismatch,
          absl::StrCat("rcdi names \"", pointer.substr(0, 64), "\", which is no URL of the rcd "
                       "claim this verifier checks (URLs inside a jcl jCard are not fetched): "
                       "not shown"));
      check.references.clear();  // nothing is fetched for rich call data that is dropped
      return check;
    }
    check.references.push_back({pointer, target->get<std::string>(), digest.get<std::string>()});
  }
  check.fetched.resize(check.references.size());
  return check;
}

RcdResult JudgeRcd(RcdCheck& check, const Verdict& header) {
  RcdResult out = check.content;
  auto drop = [&out](Reason reason, std::string detail) {
    RcdResult dropped;
    dropped.header = out.header;
    dropped.reason = reason;
    dropped.detail = std::move(detail);
    return dropped;
  };
  if (!header.passed) {
    return drop(header.reason,
                absl::StrCat("the rich call data of a PASSporT that did not verify is not shown: ",
                             header.detail));
  }
  if (!check.references_status.ok()) {
    return drop(ReasonOf(check.references_status, Reason::kRcdiMismatch),
                std::string(check.references_status.message()));
  }
  for (size_t i = 0; i < check.references.size(); ++i) {
    const RcdCheck::Reference& ref = check.references[i];
    const FetchResult& f = check.fetched[i];
    if (!f.ok()) {
      return drop(f.reason == Reason::kPassed ? Reason::kFetchFailed : f.reason,
                  absl::StrCat("rcdi ", ref.pointer, ": the content could not be fetched: ",
                               f.detail));
    }
    if (!RcdiDigestMatches(ref.digest, f.body)) {
      return drop(Reason::kRcdiMismatch,
                  absl::StrCat("rcdi ", ref.pointer, ": the content at ", ref.url.substr(0, 128),
                               " does not match its digest (RFC 9795): not shown"));
    }
  }
  out.passed = true;
  out.reason = Reason::kPassed;
  return out;
}

}  // namespace shaken::stir
