// fuzz_rest: the REST API's documents (daemon/rest/rest_json.h). ParseSigningRequest and
// ParseVerificationRequest on untrusted bodies: a request they accept holds what the service core
// needs (attest A/B/C, numbers, identities, an echoable requestId), a refusal is a catalogue
// entry, and every answer and error document written from the input's bytes is one JSON object.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/rest/rest_json.h"
#include "stir/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using shaken::daemon::rest::Dialect;
using shaken::daemon::rest::RestError;

void CheckDocument(const std::string& doc) {
  auto parsed = shaken::stir::ParseStrictJson(doc, {.max_bytes = doc.size() + 1, .max_depth = 8});
  FUZZ_CHECK(parsed.ok());
}

void CheckError(const RestError& e) {
  FUZZ_CHECK(e.status >= 400 && e.status <= 599);
  FUZZ_CHECK(e.message_id.size() == 7);
  FUZZ_CHECK(e.message_id.substr(0, 3) == "SVC" || e.message_id.substr(0, 3) == "POL");
  CheckDocument(shaken::daemon::rest::ErrorDocument(e, Dialect::kAtis));
  CheckDocument(shaken::daemon::rest::ErrorDocument(e, Dialect::k3gpp));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace rest = shaken::daemon::rest;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  rest::SigningInput s = rest::ParseSigningRequest(text);
  if (s.error.has_value()) {
    CheckError(*s.error);
  } else {
    // A shaken request has an attest; an rph one (3GPP ppt "rph") has rph.auth values and may
    // lack it (the core then refuses one that has it).
    const bool attest = s.attest == "A" || s.attest == "B" || s.attest == "C";
    FUZZ_CHECK(s.rph_auth.empty() ? attest : attest || s.attest.empty());
    FUZZ_CHECK(!s.orig_tn.empty() && !s.dest_tns.empty());
    for (const auto& tn : s.dest_tns) FUZZ_CHECK(!tn.empty());
    FUZZ_CHECK(!s.request_id.has_value() || rest::ValidRequestId(*s.request_id));
    CheckDocument(rest::SigningAnswer(s.dialect, text, s.request_id));
  }

  rest::VerificationInput v = rest::ParseVerificationRequest(text);
  if (v.error.has_value()) {
    CheckError(*v.error);
  } else if (v.heartbeat) {
    FUZZ_CHECK(v.identities.empty());
    CheckDocument(rest::HeartbeatAnswer(v.dialect, v.request_id));
  } else {
    FUZZ_CHECK(!v.identities.empty() && !v.from_tn.empty() && !v.to_tns.empty());
    for (const auto& id : v.identities) FUZZ_CHECK(!id.empty());
    rest::VerdictText t{.passed = size % 2 == 0, .verstat = std::string(text), .sip_code = 438,
                        .sip_reason = std::string(text), .detail = std::string(text),
                        .ppt = std::string(text)};
    CheckDocument(rest::VerificationAnswer(v.dialect, t, {t, t}, v.request_id));
  }

  // Header values from the wire.
  (void)rest::AcceptsJson(text);
  (void)rest::MediaType(text);
  return 0;
}
