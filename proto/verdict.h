// verdict.h: stir's verdicts in the public API's words: shaken.v1.Verdict and VerifyResponse
// (proto/shaken/v1/shaken.proto), as the daemon answers Verify, and their proto3 JSON mapping, as
// `shakenctl passport verify --json` prints it. One mapping for every front end and tool.
#ifndef SHAKEN_PROTO_VERDICT_H_
#define SHAKEN_PROTO_VERDICT_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "shaken/v1/shaken.pb.h"
#include "stir/verdict.h"
#include "stir/verifier.h"

namespace shaken::proto {

// FillVerdict maps a stir verdict into the public API's.
void FillVerdict(const stir::Verdict& v, shaken::v1::Verdict* out);

// FillVerifyResponse maps a verification: the call's verdict and one per Identity header.
void FillVerifyResponse(const stir::VerifyResult& result, shaken::v1::VerifyResponse* out);

// ToJson is `message`'s proto3 JSON mapping (google::protobuf::util::MessageToJsonString) with
// the field names of the .proto (sip_code, not sipCode), every field printed (a failed verdict
// says "passed": false), indented.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

}  // namespace shaken::proto

#endif  // SHAKEN_PROTO_VERDICT_H_
