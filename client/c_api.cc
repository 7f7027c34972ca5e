// c_api.cc: the C ABI (shaken/shaken_client.h) over the C++ client. Sees no gRPC type.
//
// Every entry point checks its pointers before touching them (a NULL is answered with
// INVALID_ARGUMENT, never a crash) and catches C++ exceptions at the boundary: our code throws
// none, but std::bad_alloc must not unwind into a C caller.
#include "shaken/shaken_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "shaken/client.h"

struct shaken_client {
  std::unique_ptr<shaken::client::Client> client;
};

struct shaken_sign_stream {
  std::unique_ptr<shaken::client::SignStreamSession> session;
};

namespace {

using shaken::client::Client;
using shaken::client::ClientOptions;

constexpr int kInvalidArgument = 3;
constexpr int kResourceExhausted = 8;
constexpr int kInternal = 13;

int SetError(shaken_error* err, int code, const std::string& message) {
  if (err != nullptr) {
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", message.c_str());
  }
  return code;
}

int SetStatus(shaken_error* err, const absl::Status& status) {
  return SetError(err, static_cast<int>(status.code()), std::string(status.message()));
}

int Ok(shaken_error* err) { return SetError(err, 0, ""); }

int InvalidArgument(shaken_error* err, const std::string& message) {
  return SetError(err, kInvalidArgument, message);
}

// Str copies an optional C string: NULL reads as "".
std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// Dup allocates a copy with malloc; the result is released by the matching *_free.
char* Dup(const std::string& s) {
  char* p = static_cast<char*>(malloc(s.size() + 1));
  if (p == nullptr) throw std::bad_alloc();
  memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

// Strings checks an array of `n` C strings named `what`; NULL elements are errors.
bool Strings(const char* const* array, size_t n, const char* what, std::vector<std::string>* out,
             shaken_error* err) {
  if (n > 0 && array == nullptr) {
    InvalidArgument(err, absl::StrCat(what, " is NULL but its count is ", n));
    return false;
  }
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (array[i] == nullptr) {
      InvalidArgument(err, absl::StrCat(what, "[", i, "] is NULL"));
      return false;
    }
    out->emplace_back(array[i]);
  }
  return true;
}

std::optional<absl::Duration> Timeout(uint32_t ms) {
  if (ms == 0) return std::nullopt;
  return absl::Milliseconds(ms);
}

void FreeVerdict(shaken_verdict* v) {
  free(v->verstat);
  free(v->sip_reason);
  free(v->reason);
  free(v->detail);
  free(v->attest);
  free(v->origid);
  free(v->orig_tn);
  free(v->x5u);
  free(v->cert_subject);
  free(v->cert_spc);
  free(v->cert_serial);
  free(v->ppt);
  for (size_t i = 0; i < v->num_dest_tns && v->dest_tns != nullptr; ++i) free(v->dest_tns[i]);
  free(v->dest_tns);
  memset(v, 0, sizeof *v);
}

// FillVerdict fills a zeroed `out`; on bad_alloc the caller frees what was filled.
void FillVerdict(const shaken::client::Verdict& v, shaken_verdict* out) {
  out->passed = v.passed ? 1 : 0;
  out->sip_code = v.sip_code;
  out->iat = v.iat;
  out->cert_not_after = v.certificate.not_after;
  out->verstat = Dup(v.verstat);
  out->sip_reason = Dup(v.sip_reason);
  out->reason = Dup(v.reason);
  out->detail = Dup(v.detail);
  out->attest = Dup(v.attest);
  out->origid = Dup(v.origid);
  out->orig_tn = Dup(v.orig_tn);
  out->x5u = Dup(v.x5u);
  out->cert_subject = Dup(v.certificate.subject);
  out->cert_spc = Dup(v.certificate.spc);
  out->cert_serial = Dup(v.certificate.serial);
  out->ppt = Dup(v.ppt);
  if (!v.dest_tns.empty()) {
    out->dest_tns = static_cast<char**>(calloc(v.dest_tns.size(), sizeof(char*)));
    if (out->dest_tns == nullptr) throw std::bad_alloc();
    out->num_dest_tns = v.dest_tns.size();
    for (size_t i = 0; i < v.dest_tns.size(); ++i) out->dest_tns[i] = Dup(v.dest_tns[i]);
  }
}

// Guarded runs the body of the C function `fn` and turns a C++ exception into its code: none may
// cross the C ABI. The body returns 0 or a code (with `err` filled).
template <typename Body>
int Guarded(const char* fn, shaken_error* err, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return SetError(err, kResourceExhausted, absl::StrCat(fn, ": out of memory"));
  } catch (...) {
    return SetError(err, kInternal, absl::StrCat(fn, ": unexpected C++ exception"));
  }
}

// FillOrFree runs `fill` on a zeroed result; if it throws (out of memory half-way), `free_fn`
// releases what was allocated and zeroes the result before the exception goes on.
template <typename Result, typename Fill>
void FillOrFree(Result* result, void (*free_fn)(Result*), Fill&& fill) {
  try {
    fill();
  } catch (...) {
    free_fn(result);
    throw;
  }
}

// ToSignParams checks `request` for the C function `fn` and converts it; returns 0 or the code
// (with `err` filled).
int ToSignParams(const char* fn, const shaken_sign_request* request,
                 shaken::client::SignParams* p, shaken_error* err, bool attest_optional = false) {
  if (request == nullptr) return InvalidArgument(err, absl::StrCat(fn, ": request is NULL"));
  if (request->attest == nullptr && !attest_optional) {
    return InvalidArgument(err, absl::StrCat(fn, ": request->attest is NULL"));
  }
  if (request->orig_tn == nullptr) {
    return InvalidArgument(err, absl::StrCat(fn, ": request->orig_tn is NULL"));
  }
  if (!Strings(request->dest_tns, request->num_dest_tns,
               absl::StrCat(fn, ": request->dest_tns").c_str(), &p->dest_tns, err)) {
    return err != nullptr ? err->code : kInvalidArgument;
  }
  p->profile = Str(request->profile);
  p->attest = Str(request->attest);
  p->orig_tn = request->orig_tn;
  if (request->has_iat != 0) p->iat = request->iat;
  p->origid = Str(request->origid);
  p->request_id = Str(request->request_id);
  return 0;
}

// FillSignResult copies `r` into `result` (zeroed on a bad_alloc, which it rethrows).
void FillSignResult(const shaken::client::SignResult& r, shaken_sign_result* result) {
  FillOrFree(result, shaken_sign_result_free, [&] {
    result->iat = r.iat;
    result->identity = Dup(r.identity);
    result->passport = Dup(r.passport);
    result->origid = Dup(r.origid);
    result->profile = Dup(r.profile);
    result->request_id = Dup(r.request_id);
  });
}

// VerifyCall checks `request` for the C function `fn` and verifies it with `resource_priority`;
// on failure `err` is filled and the status returned.
absl::StatusOr<shaken::client::VerifyResult> VerifyCall(const char* fn, shaken_client* client,
                                                        const shaken_verify_request* request,
                                                        std::vector<std::string> resource_priority,
                                                        shaken_error* err) {
  auto invalid = [&](const std::string& why) {
    InvalidArgument(err, absl::StrCat(fn, ": ", why));
    return absl::InvalidArgumentError(why);
  };
  if (client == nullptr) return invalid("client is NULL");
  if (request == nullptr) return invalid("request is NULL");
  if (request->from_tn == nullptr) return invalid("request->from_tn is NULL");
  shaken::client::VerifyParams p;
  if (!Strings(request->identities, request->num_identities,
               absl::StrCat(fn, ": request->identities").c_str(), &p.identities, err) ||
      !Strings(request->to_tns, request->num_to_tns, absl::StrCat(fn, ": request->to_tns").c_str(),
               &p.to_tns, err)) {
    return absl::InvalidArgumentError(err != nullptr ? err->message : "invalid request");
  }
  p.from_tn = request->from_tn;
  if (request->has_date != 0) p.date = request->date;
  p.request_id = Str(request->request_id);
  p.resource_priority = std::move(resource_priority);
  absl::StatusOr<shaken::client::VerifyResult> r =
      client->client->Verify(p, Timeout(request->timeout_ms));
  if (!r.ok()) SetStatus(err, r.status());
  return r;
}

// FillVerifyResult fills a zeroed `result` (bad_alloc goes on; the caller frees).
void FillVerifyResult(const shaken::client::VerifyResult& r, shaken_verify_result* result) {
  FillVerdict(r.overall, &result->overall);
  if (r.identities.empty()) return;
  result->identities =
      static_cast<shaken_verdict*>(calloc(r.identities.size(), sizeof(shaken_verdict)));
  if (result->identities == nullptr) throw std::bad_alloc();
  result->num_identities = r.identities.size();
  for (size_t i = 0; i < r.identities.size(); ++i) {
    FillVerdict(r.identities[i], &result->identities[i]);
  }
}

}  // namespace

extern "C" {

void shaken_client_options_init(shaken_client_options* opts) {
  if (opts != nullptr) memset(opts, 0, sizeof *opts);
}

int shaken_client_new(const shaken_client_options* opts, shaken_client** out, shaken_error* err) {
  if (out != nullptr) *out = nullptr;
  if (opts == nullptr) return InvalidArgument(err, "shaken_client_new: opts is NULL");
  if (out == nullptr) return InvalidArgument(err, "shaken_client_new: out is NULL");
  return Guarded("shaken_client_new", err, [&] {
    ClientOptions o;
    o.target = Str(opts->target);
    o.root_ca_file = Str(opts->root_ca_file);
    o.client_cert_file = Str(opts->client_cert_file);
    o.client_key_file = Str(opts->client_key_file);
    o.server_name_override = Str(opts->server_name_override);
    o.insecure_plaintext = opts->insecure_plaintext != 0;
    if (opts->default_timeout_ms != 0) o.default_timeout = absl::Milliseconds(opts->default_timeout_ms);
    if (opts->max_attempts != 0) {
      // Out-of-range values reach ValidateOptions, which names the limit.
      o.retry.max_attempts = opts->max_attempts > 1000 ? 1000 : static_cast<int>(opts->max_attempts);
    }
    if (opts->initial_backoff_ms != 0) o.retry.initial_backoff = absl::Milliseconds(opts->initial_backoff_ms);
    if (opts->max_backoff_ms != 0) o.retry.max_backoff = absl::Milliseconds(opts->max_backoff_ms);
    if (opts->keepalive_time_ms != 0) o.keepalive.time = absl::Milliseconds(opts->keepalive_time_ms);
    if (opts->keepalive_timeout_ms != 0) o.keepalive.timeout = absl::Milliseconds(opts->keepalive_timeout_ms);
    if (opts->disable_keepalive != 0) o.keepalive.time = absl::ZeroDuration();
    o.user_agent = Str(opts->user_agent);

    absl::StatusOr<std::unique_ptr<Client>> client = Client::New(std::move(o));
    if (!client.ok()) return SetStatus(err, client.status());
    auto handle = std::make_unique<shaken_client>();
    handle->client = *std::move(client);
    *out = handle.release();
    return Ok(err);
  });
}

void shaken_client_free(shaken_client* client) { delete client; }

int shaken_sign(shaken_client* client, const shaken_sign_request* request,
                shaken_sign_result* result, shaken_error* err) {
  if (result != nullptr) memset(result, 0, sizeof *result);
  if (client == nullptr) return InvalidArgument(err, "shaken_sign: client is NULL");
  if (request == nullptr) return InvalidArgument(err, "shaken_sign: request is NULL");
  if (result == nullptr) return InvalidArgument(err, "shaken_sign: result is NULL");
  return Guarded("shaken_sign", err, [&] {
    shaken::client::SignParams p;
    if (int code = ToSignParams("shaken_sign", request, &p, err); code != 0) return code;
    absl::StatusOr<shaken::client::SignResult> r =
        client->client->Sign(p, Timeout(request->timeout_ms));
    if (!r.ok()) return SetStatus(err, r.status());
    FillSignResult(*r, result);
    return Ok(err);
  });
}

void shaken_sign_result_free(shaken_sign_result* result) {
  if (result == nullptr) return;
  free(result->identity);
  free(result->passport);
  free(result->origid);
  free(result->profile);
  free(result->request_id);
  memset(result, 0, sizeof *result);
}

int shaken_verify(shaken_client* client, const shaken_verify_request* request,
                  shaken_verify_result* result, shaken_error* err) {
  if (result != nullptr) memset(result, 0, sizeof *result);
  if (result == nullptr) return InvalidArgument(err, "shaken_verify: result is NULL");
  return Guarded("shaken_verify", err, [&] {
    absl::StatusOr<shaken::client::VerifyResult> r =
        VerifyCall("shaken_verify", client, request, {}, err);
    if (!r.ok()) return err != nullptr ? err->code : static_cast<int>(r.status().code());
    FillOrFree(result, shaken_verify_result_free, [&] { FillVerifyResult(*r, result); });
    return Ok(err);
  });
}

void shaken_verify_result_free(shaken_verify_result* result) {
  if (result == nullptr) return;
  FreeVerdict(&result->overall);
  for (size_t i = 0; i < result->num_identities && result->identities != nullptr; ++i) {
    FreeVerdict(&result->identities[i]);
  }
  free(result->identities);
  memset(result, 0, sizeof *result);
}

int shaken_sign_stream_open(shaken_client* client, uint32_t timeout_ms, shaken_sign_stream** out,
                            shaken_error* err) {
  if (out != nullptr) *out = nullptr;
  if (client == nullptr) return InvalidArgument(err, "shaken_sign_stream_open: client is NULL");
  if (out == nullptr) return InvalidArgument(err, "shaken_sign_stream_open: out is NULL");
  return Guarded("shaken_sign_stream_open", err, [&] {
    std::optional<absl::Duration> timeout;
    if (timeout_ms > 0) timeout = absl::Milliseconds(timeout_ms);
    absl::StatusOr<std::unique_ptr<shaken::client::SignStreamSession>> session =
        client->client->OpenSignStream(timeout);
    if (!session.ok()) return SetStatus(err, session.status());
    *out = new shaken_sign_stream{*std::move(session)};
    return Ok(err);
  });
}

int shaken_sign_stream_send(shaken_sign_stream* stream, const shaken_sign_request* request,
                            shaken_error* err) {
  if (stream == nullptr) return InvalidArgument(err, "shaken_sign_stream_send: stream is NULL");
  return Guarded("shaken_sign_stream_send", err, [&] {
    shaken::client::SignParams p;
    if (int code = ToSignParams("shaken_sign_stream_send", request, &p, err); code != 0) {
      return code;
    }
    return SetStatus(err, stream->session->Send(p));
  });
}

int shaken_sign_stream_next(shaken_sign_stream* stream, shaken_stream_sign* out,
                            shaken_error* err) {
  if (out != nullptr) memset(out, 0, sizeof *out);
  if (stream == nullptr) return InvalidArgument(err, "shaken_sign_stream_next: stream is NULL");
  if (out == nullptr) return InvalidArgument(err, "shaken_sign_stream_next: out is NULL");
  return Guarded("shaken_sign_stream_next", err, [&] {
    absl::StatusOr<shaken::client::StreamedSign> next = stream->session->Next();
    if (!next.ok()) return SetStatus(err, next.status());
    FillOrFree(out, shaken_stream_sign_free, [&] {
      out->request_id = Dup(next->request_id);
      if (next->result.ok()) {
        out->message = Dup("");
        FillSignResult(*next->result, &out->result);
      } else {
        out->code = static_cast<int>(next->result.status().code());
        out->message = Dup(std::string(next->result.status().message()));
      }
    });
    return Ok(err);
  });
}

int shaken_sign_stream_close_send(shaken_sign_stream* stream, shaken_error* err) {
  if (stream == nullptr) {
    return InvalidArgument(err, "shaken_sign_stream_close_send: stream is NULL");
  }
  return Guarded("shaken_sign_stream_close_send", err,
                 [&] { return SetStatus(err, stream->session->CloseSend()); });
}

void shaken_sign_stream_free(shaken_sign_stream* stream) { delete stream; }

void shaken_stream_sign_free(shaken_stream_sign* out) {
  if (out == nullptr) return;
  free(out->request_id);
  free(out->message);
  shaken_sign_result_free(&out->result);
  memset(out, 0, sizeof *out);
}

static_assert(static_cast<int>(shaken::client::ProfileInfo::Health::kServing) ==
                  SHAKEN_PROFILE_SERVING &&
              static_cast<int>(shaken::client::ProfileInfo::Health::kDegraded) ==
                  SHAKEN_PROFILE_DEGRADED &&
              static_cast<int>(shaken::client::ProfileInfo::Health::kDown) == SHAKEN_PROFILE_DOWN,
              "the C health values mirror ProfileInfo::Health");

int shaken_list_profiles(shaken_client* client, uint32_t timeout_ms,
                         shaken_profile_list* result, shaken_error* err) {
  if (result != nullptr) memset(result, 0, sizeof *result);
  if (client == nullptr) return InvalidArgument(err, "shaken_list_profiles: client is NULL");
  if (result == nullptr) return InvalidArgument(err, "shaken_list_profiles: result is NULL");
  return Guarded("shaken_list_profiles", err, [&] {
    absl::StatusOr<std::vector<shaken::client::ProfileInfo>> r =
        client->client->ListProfiles(Timeout(timeout_ms));
    if (!r.ok()) return SetStatus(err, r.status());
    if (r->empty()) return Ok(err);
    FillOrFree(result, shaken_profile_list_free, [&] {
      result->profiles =
          static_cast<shaken_profile*>(calloc(r->size(), sizeof(shaken_profile)));
      if (result->profiles == nullptr) throw std::bad_alloc();
      result->num_profiles = r->size();
      for (size_t i = 0; i < r->size(); ++i) {
        const shaken::client::ProfileInfo& in = (*r)[i];
        shaken_profile* out = &result->profiles[i];
        out->name = Dup(in.name);
        out->key = Dup(in.key);
        out->x5u = Dup(in.x5u);
        out->cert_subject = Dup(in.certificate.subject);
        out->cert_spc = Dup(in.certificate.spc);
        out->cert_serial = Dup(in.certificate.serial);
        out->cert_not_after = in.certificate.not_after;
        out->allowed_attest = Dup(absl::StrJoin(in.allowed_attest, ","));
        out->health = static_cast<int>(in.health);
        out->is_default = in.is_default ? 1 : 0;
      }
    });
    return Ok(err);
  });
}

void shaken_profile_list_free(shaken_profile_list* result) {
  if (result == nullptr) return;
  for (size_t i = 0; i < result->num_profiles && result->profiles != nullptr; ++i) {
    shaken_profile* p = &result->profiles[i];
    for (char* s : {p->name, p->key, p->x5u, p->cert_subject, p->cert_spc, p->cert_serial,
                    p->allowed_attest}) {
      free(s);
    }
  }
  free(result->profiles);
  memset(result, 0, sizeof *result);
}

const char* shaken_code_name(int code) {
  // gRPC's names are abseil's (absl::StatusCodeToString; the codes are the same numbers), kept
  // here with static storage for C callers.
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (int c = 0; c <= 16; ++c) v.push_back(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)));
    return v;
  }();
  if (code < 0 || code > 16) return "UNKNOWN_CODE";
  return names[static_cast<size_t>(code)].c_str();
}

// ABI 1.2: rph and rcd.
int shaken_sign_ppt(shaken_client* client, const shaken_sign_request* request,
                    const shaken_ppt_request* ppt, shaken_sign_result* result, shaken_error* err) {
  if (result != nullptr) memset(result, 0, sizeof *result);
  if (client == nullptr) return InvalidArgument(err, "shaken_sign_ppt: client is NULL");
  if (ppt == nullptr) return InvalidArgument(err, "shaken_sign_ppt: ppt is NULL");
  if (result == nullptr) return InvalidArgument(err, "shaken_sign_ppt: result is NULL");
  return Guarded("shaken_sign_ppt", err, [&] {
    shaken::client::SignParams p;
    if (int code = ToSignParams("shaken_sign_ppt", request, &p, err, /*attest_optional=*/true);
        code != 0) {
      return code;
    }
    if (!Strings(ppt->rph_auth, ppt->num_rph_auth, "shaken_sign_ppt: ppt->rph_auth", &p.rph_auth,
                 err)) {
      return err != nullptr ? err->code : kInvalidArgument;
    }
    p.ppt = Str(ppt->ppt);
    p.rph_sph = Str(ppt->rph_sph);
    p.rcd = {Str(ppt->rcd_nam), Str(ppt->rcd_apn), Str(ppt->rcd_icn),
             Str(ppt->rcd_jcl), Str(ppt->rcd_jcd), Str(ppt->rcd_crn)};
    absl::StatusOr<shaken::client::SignResult> r =
        client->client->Sign(p, Timeout(request->timeout_ms));
    if (!r.ok()) return SetStatus(err, r.status());
    FillSignResult(*r, result);
    return Ok(err);
  });
}

int shaken_verify_ppt(shaken_client* client, const shaken_verify_request* request,
                      const char* const* resource_priority, size_t num_resource_priority,
                      shaken_verify_ppt_result* result, shaken_error* err) {
  if (result != nullptr) memset(result, 0, sizeof *result);
  if (result == nullptr) return InvalidArgument(err, "shaken_verify_ppt: result is NULL");
  return Guarded("shaken_verify_ppt", err, [&] {
    std::vector<std::string> rp;
    if (!Strings(resource_priority, num_resource_priority, "shaken_verify_ppt: resource_priority",
                 &rp, err)) {
      return err != nullptr ? err->code : kInvalidArgument;
    }
    absl::StatusOr<shaken::client::VerifyResult> r =
        VerifyCall("shaken_verify_ppt", client, request, std::move(rp), err);
    if (!r.ok()) return err != nullptr ? err->code : static_cast<int>(r.status().code());
    FillOrFree(result, shaken_verify_ppt_result_free, [&] {
      FillVerifyResult(*r, &result->call);
      result->verstat_priority = Dup(r->verstat_priority);
      result->display_name = Dup(r->display_name);
      if (r->rcds.empty()) return;
      result->rcds =
          static_cast<shaken_rcd_result*>(calloc(r->rcds.size(), sizeof(shaken_rcd_result)));
      if (result->rcds == nullptr) throw std::bad_alloc();
      result->num_rcds = r->rcds.size();
      for (size_t i = 0; i < r->rcds.size(); ++i) {
        const shaken::client::RcdResult& c = r->rcds[i];
        shaken_rcd_result& out = result->rcds[i];
        out.identity = static_cast<size_t>(c.identity);
        out.passed = c.passed ? 1 : 0;
        for (auto [field, value] : {std::pair{&out.reason, &c.reason}, {&out.detail, &c.detail},
                                    {&out.nam, &c.rcd.nam}, {&out.apn, &c.rcd.apn},
                                    {&out.icn, &c.rcd.icn}, {&out.jcl, &c.rcd.jcl},
                                    {&out.jcd, &c.rcd.jcd}, {&out.crn, &c.rcd.crn}}) {
          *field = Dup(*value);
        }
      }
    });
    return Ok(err);
  });
}

void shaken_verify_ppt_result_free(shaken_verify_ppt_result* result) {
  if (result == nullptr) return;
  shaken_verify_result_free(&result->call);
  free(result->verstat_priority);
  free(result->display_name);
  for (size_t i = 0; i < result->num_rcds && result->rcds != nullptr; ++i) {
    shaken_rcd_result& c = result->rcds[i];
    for (char* p : {c.reason, c.detail, c.nam, c.apn, c.icn, c.jcl, c.jcd, c.crn}) free(p);
  }
  free(result->rcds);
  memset(result, 0, sizeof *result);
}

}  // extern "C"

// ABI 1.0: the library still exports shaken_verify and shaken_verify_result_free for programs
// built against the 1.0 header, whose shaken_verdict ends at cert_not_after (the 1.1 header
// reaches the *_abi1_1 functions through its macros). They run the one verification and hand
// over the 1.0 prefix of each verdict.
namespace {

struct shaken_verdict_abi1_0 {  // shaken_verdict up to cert_not_after, as ABI 1.0 has it
  int passed;
  char *verstat;
  int sip_code;
  char *sip_reason;
  char *reason;
  char *detail;
  char *attest;
  char *origid;
  char *orig_tn;
  int64_t iat;
  char *x5u;
  char *cert_subject;
  char *cert_spc;
  char *cert_serial;
  int64_t cert_not_after;
};
static_assert(offsetof(shaken_verdict, ppt) == sizeof(shaken_verdict_abi1_0) &&
                  offsetof(shaken_verdict, cert_not_after) ==
                      offsetof(shaken_verdict_abi1_0, cert_not_after),
              "ABI 1.1 only appends to shaken_verdict");

struct shaken_verify_result_abi1_0 {
  shaken_verdict_abi1_0 overall;
  size_t num_identities;
  shaken_verdict_abi1_0 *identities;
};

// ToAbi10 moves the 1.0 prefix of `v` into `out` and frees the rest of `v`.
void ToAbi10(shaken_verdict* v, shaken_verdict_abi1_0* out) {
  memcpy(out, v, sizeof *out);
  memset(v, 0, sizeof *out);
  FreeVerdict(v);
}

void FreeAbi10(shaken_verdict_abi1_0* v) {
  shaken_verdict current;
  memset(&current, 0, sizeof current);
  memcpy(&current, v, sizeof *v);
  FreeVerdict(&current);
  memset(v, 0, sizeof *v);
}

}  // namespace

#undef shaken_verify
#undef shaken_verify_result_free

extern "C" {

SHAKEN_CLIENT_EXPORT int shaken_verify(shaken_client* client, const shaken_verify_request* request,
                                       shaken_verify_result_abi1_0* result, shaken_error* err);
SHAKEN_CLIENT_EXPORT void shaken_verify_result_free(shaken_verify_result_abi1_0* result);

int shaken_verify(shaken_client* client, const shaken_verify_request* request,
                  shaken_verify_result_abi1_0* result, shaken_error* err) {
  if (result == nullptr) return InvalidArgument(err, "shaken_verify: result is NULL");
  memset(result, 0, sizeof *result);
  shaken_verify_result current;
  memset(&current, 0, sizeof current);
  int code = shaken_verify_abi1_1(client, request, &current, err);
  if (code != 0) return code;
  if (current.num_identities > 0) {
    result->identities = static_cast<shaken_verdict_abi1_0*>(
        calloc(current.num_identities, sizeof(shaken_verdict_abi1_0)));
    if (result->identities == nullptr) {
      shaken_verify_result_free_abi1_1(&current);
      return SetError(err, kResourceExhausted, "shaken_verify: out of memory");
    }
  }
  ToAbi10(&current.overall, &result->overall);
  result->num_identities = current.num_identities;
  for (size_t i = 0; i < current.num_identities; ++i) {
    ToAbi10(&current.identities[i], &result->identities[i]);
  }
  shaken_verify_result_free_abi1_1(&current);
  return 0;
}

void shaken_verify_result_free(shaken_verify_result_abi1_0* result) {
  if (result == nullptr) return;
  FreeAbi10(&result->overall);
  for (size_t i = 0; i < result->num_identities && result->identities != nullptr; ++i) {
    FreeAbi10(&result->identities[i]);
  }
  free(result->identities);
  memset(result, 0, sizeof *result);
}

}  // extern "C"
