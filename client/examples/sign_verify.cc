// sign_verify.cc: signs one call through a running shakend, then verifies the Identity header
// it got back, with the C++ API (shaken/client.h).
//
//   shaken_client_example [--target H:P] [--ca FILE] [--cert FILE --key FILE]
//                         [--server-name NAME] [--insecure] [--profile P] [--attest A|B|C]
//                         [--orig TN] [--dest TN]
//
// Every option also comes from the environment: SHAKEN_TARGET, SHAKEN_CA, SHAKEN_CERT,
// SHAKEN_KEY, SHAKEN_SERVER_NAME, SHAKEN_INSECURE=1, SHAKEN_PROFILE. Only file paths are taken on
// the command line, never a secret. Exit status: 0 when the call verified, 1 when it did not,
// 2 on an error.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "shaken/client.h"

namespace {

std::string Env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

int Usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--target H:P] [--ca FILE] [--cert FILE --key FILE] [--server-name NAME]"
               " [--insecure] [--profile P] [--attest A|B|C] [--orig TN] [--dest TN]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  shaken::client::ClientOptions options;
  options.target = Env("SHAKEN_TARGET", "127.0.0.1:7443");
  options.root_ca_file = Env("SHAKEN_CA");
  options.client_cert_file = Env("SHAKEN_CERT");
  options.client_key_file = Env("SHAKEN_KEY");
  options.server_name_override = Env("SHAKEN_SERVER_NAME");
  options.insecure_plaintext = Env("SHAKEN_INSECURE") == "1";
  options.user_agent = "shaken-client-example";
  shaken::client::SignParams sign;
  sign.profile = Env("SHAKEN_PROFILE");
  sign.attest = "A";
  sign.orig_tn = "12155551212";
  std::string dest = "12155551213";

  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--insecure") {
      options.insecure_plaintext = true;
      continue;
    }
    if (i + 1 >= argc) return Usage(argv[0]);
    std::string value = argv[++i];
    if (flag == "--target") options.target = value;
    else if (flag == "--ca") options.root_ca_file = value;
    else if (flag == "--cert") options.client_cert_file = value;
    else if (flag == "--key") options.client_key_file = value;
    else if (flag == "--server-name") options.server_name_override = value;
    else if (flag == "--profile") sign.profile = value;
    else if (flag == "--attest") sign.attest = value;
    else if (flag == "--orig") sign.orig_tn = value;
    else if (flag == "--dest") dest = value;
    else return Usage(argv[0]);
  }
  sign.dest_tns = {dest};
  sign.request_id = "example-1";

  absl::StatusOr<std::unique_ptr<shaken::client::Client>> client =
      shaken::client::Client::New(options);
  if (!client.ok()) {
    std::cerr << "client: " << client.status() << "\n";
    return 2;
  }

  absl::StatusOr<shaken::client::SignResult> signed_call = (*client)->Sign(sign);
  if (!signed_call.ok()) {
    std::cerr << "Sign: " << signed_call.status() << "\n";
    return 2;
  }
  std::cout << "Identity: " << signed_call->identity << "\n";

  shaken::client::VerifyParams verify;
  verify.identities = {signed_call->identity};
  verify.from_tn = sign.orig_tn;
  verify.to_tns = sign.dest_tns;
  verify.date = signed_call->iat;
  verify.request_id = "example-1";
  absl::StatusOr<shaken::client::VerifyResult> verdict = (*client)->Verify(verify);
  if (!verdict.ok()) {
    std::cerr << "Verify: " << verdict.status() << "\n";
    return 2;
  }
  const shaken::client::Verdict& v = verdict->overall;
  std::cout << "verstat=" << v.verstat << " reason=" << v.reason << " attest=" << v.attest
            << " origid=" << v.origid << " spc=" << v.certificate.spc << "\n";
  if (!v.passed) {
    std::cout << "Reason: SIP ;cause=" << v.sip_code << " ;text=\"" << v.sip_reason << "\" ("
              << v.detail << ")\n";
    return 1;
  }
  return 0;
}
