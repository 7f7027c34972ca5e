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
  out->set_div_tn(v.div_tn);
  out->set_div_hi(v.div_hi);
  if (v.diverts.has_value()) out->set_diverts(static_cast<int32_t>(*v.diverts));
  for (const std::string& r : v.rph_auth) out->add_rph_auth(r);
  out->set_sph(v.sph);
}

void FillVerifyResponse(const stir::VerifyResult& result, shaken::v1::VerifyResponse* out) {
  FillVerdict(result.overall, out->mutable_verdict());
  for (const stir::Verdict& v : result.headers) FillVerdict(v, out->add_identities());
  for (const stir::DivResult& d : result.divs) {
    shaken::v1::DivResult* r = out->add_divs();
    r->set_identity(static_cast<int32_t>(d.header));
    r->set_tn(d.div_tn);
    r->set_passed(d.passed);
    r->set_verstat(std::string(stir::VerstatName(d.verstat)));
    r->set_reason(std::string(stir::ReasonName(d.reason)));
    r->set_detail(d.detail);
    if (d.diverts.has_value()) r->set_diverts(static_cast<int32_t>(*d.diverts));
  }
  out->set_verstat_priority(std::string(stir::PriorityVerstatName(result.verstat_priority)));
  for (const stir::RcdResult& c : result.rcds) {
    shaken::v1::RcdResult* r = out->add_rcds();
    r->set_identity(static_cast<int32_t>(c.header));
    r->set_passed(c.passed);
    r->set_reason(std::string(stir::ReasonName(c.reason)));
    r->set_detail(c.detail);
    r->set_nam(c.nam);
    r->set_apn(c.apn);
    r->set_icn(c.icn);
    r->set_jcl(c.jcl);
    r->set_jcd(c.jcd);
    r->set_crn(c.crn);
    if (c.passed && out->display_name().empty()) out->set_display_name(c.nam);
  }
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
