#include "proto/verdict.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace shaken::proto {

void FillVerdict(const stir::Verdict& v, shaken::v1::Verdict* out) {
  out->set_passed(v.passed);
  out->set_verstat(std::string(stir::VerstatName(v.verstat)));
  out->set_sip_code(v.sip_code);
  out->set_sip_reason(std::string(v.sip_reason));
  out->set_reason(std::string(stir::ReasonName(v.reason)));
  out->set_detail(v.detail);
  out->set_ppt(v.ppt);
  out->set_attest(v.attest);
  out->set_origid(v.origid);
  if (!v.orig_tn.empty()) out->mutable_orig()->set_tn(v.orig_tn);
  for (const auto& tn : v.dest_tns) out->mutable_dest()->add_tn(tn);
  if (v.iat.has_value()) out->set_iat(*v.iat);
  out->set_x5u(v.x5u);
  if (!v.cert_subject.empty() || !v.cert_spc.empty()) {
    auto* c = out->mutable_certificate();
    c->set_subject(v.cert_subject);
    c->set_spc(v.cert_spc);
    c->set_serial(v.cert_serial);
    if (v.cert_not_after.has_value()) c->set_not_after(absl::ToUnixSeconds(*v.cert_not_after));
  }
}

void FillVerifyResponse(const stir::VerifyResult& result, shaken::v1::VerifyResponse* out) {
  FillVerdict(result.overall, out->mutable_verdict());
  for (const stir::Verdict& v : result.headers) FillVerdict(v, out->add_identities());
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("JSON mapping of ", message.GetTypeName(), ": ",
                                            status.ToString()));
  }
  return out;
}

}  // namespace shaken::proto
