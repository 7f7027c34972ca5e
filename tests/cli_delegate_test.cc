// cli_delegate_test.cc: delegate certificates with shakenctl (RFC 9060; ATIS-1000092): root ->
// STI-CA -> SP-CA (its key in a SoftHSM2 token) -> delegate end-entity certificate, checked by the
// openssl binary; a delegate CSR outside the SP-CA's scope is refused; `passport create --cert`
// signs only for the delegate's numbers and `passport verify` accepts the chain (DL-3).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli_test_support.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DelegateCliTest : public CliTokenTest<DelegateCliTest> {
 public:
  static constexpr char kTokenLabel[] = "cli-spca";

 protected:
  // EnterpriseCsr makes a key file `name`.key and a delegate CSR `name`.csr for `tn_flags`.
  void EnterpriseCsr(const std::string& name, std::vector<std::string> tn_flags) {
    ASSERT_EQ(Shakenctl({"key", "generate", "--key", P(name + ".key")}).exit_code, 0);
    std::vector<std::string> args = {"csr", "create", "--key", P(name + ".key"), "--cn",
                                     "Example Enterprise", "--org", "Example Enterprise",
                                     "-o", P(name + ".csr")};
    args.insert(args.end(), tn_flags.begin(), tn_flags.end());
    auto csr = Shakenctl(args);
    ASSERT_EQ(csr.exit_code, 0) << csr.err;
  }
};

TEST_F(DelegateCliTest, RootStiCaSpCaDelegateAndScopeRefusals) {
  // Root and STI-CA in files.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("root.key")}).exit_code, 0);
  auto root = Shakenctl({"ca", "init", "--key", P("root.key"), "--cn", "Delegate STI ROOT",
                         "--org", "Delegate STI-PA", "-o", P("root.pem")});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("ica.key")}).exit_code, 0);
  auto ica = Shakenctl({"ca", "issue-intermediate", "--ca-cert", P("root.pem"), "--ca-key",
                        P("root.key"), "--subject-key", P("ica.key"), "--path-len", "1", "--cn",
                        "Delegate STI-CA", "--org", "Delegate CA", "-o", P("ica.pem")});
  ASSERT_EQ(ica.exit_code, 0) << ica.err;

  // The SP-CA's key in the token; its scope 12155550100-12155550149 and 12155551000.
  const std::string spca_key = "pkcs11:token=cli-spca;object=spca";
  auto gen = Shakenctl({"key", "generate", "--key", spca_key, "--pin-source", Pin()});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  std::vector<std::string> spca_args = {
      "ca", "issue-sp-ca", "--ca-cert", P("ica.pem"), "--ca-key", P("ica.key"), "--subject-key",
      spca_key, "--pin-source", Pin(), "--cn", "Example SP-CA", "--org", "Example Carrier",
      "-o", P("spca.pem")};
  // Without a scope: refused, saying which flags give one.
  auto no_scope = Shakenctl(spca_args);
  EXPECT_EQ(no_scope.exit_code, 1);
  EXPECT_THAT(no_scope.err, HasSubstr("give --spc <SPC> (or --tn / --tn-range"));
  spca_args.insert(spca_args.end(), {"--tn-range", "+1 215 555 0100:50", "--tn", "12155551000"});
  auto spca = Shakenctl(spca_args);
  ASSERT_EQ(spca.exit_code, 0) << spca.err;
  auto spca_text = RunProgram({"openssl", "x509", "-in", P("spca.pem"), "-noout", "-text"});
  EXPECT_THAT(spca_text.out, HasSubstr("CA:TRUE, pathlen:0"));
  EXPECT_THAT(spca_text.out, HasSubstr("Certificate Sign"));
  auto spca_asn1 = RunProgram({"openssl", "asn1parse", "-in", P("spca.pem")});
  // one [2] "12155551000", range [1] { "12155550100", 50 } (RFC 8226, explicit tags; --spc,
  // --tn, then --tn-range entries).
  EXPECT_THAT(spca_asn1.out,
              HasSubstr("[HEX DUMP]:3023A20D160B3132313535353531303030A1123010160B313231353535"
                        "3530313030020132"));

  // A delegate end-entity certificate inside the scope, issued with the token key.
  EnterpriseCsr("ent", {"--tn-range", "12155550120:10", "--tn", "12155551000"});
  std::vector<std::string> issue = {"ca", "issue", "--ca-cert", P("spca.pem"), "--ca-key",
                                    spca_key, "--pin-source", Pin(), "--allow-delegate",
                                    "--crl-url", "http://crl.example.net/spca.crl"};
  auto in_scope = Shakenctl([&] {
    auto a = issue;
    a.insert(a.end(), {"--csr", P("ent.csr"), "-o", P("ent.pem")});
    return a;
  }());
  ASSERT_EQ(in_scope.exit_code, 0) << in_scope.err;
  dir_.Write("untrusted.pem", ReadFileOrEmpty(P("spca.pem")) + ReadFileOrEmpty(P("ica.pem")));
  auto ossl = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root.pem"),
                          "-untrusted", P("untrusted.pem"), P("ent.pem")});
  EXPECT_EQ(ossl.exit_code, 0) << ossl.out << ossl.err;
  EXPECT_THAT(ossl.out, HasSubstr("ent.pem: OK"));

  // Outside the scope: refused, naming the entries outside and the SP-CA's scope.
  EnterpriseCsr("wide", {"--tn-range", "12155550140:20", "--tn", "12155550100"});
  auto outside = Shakenctl([&] {
    auto a = issue;
    a.insert(a.end(), {"--csr", P("wide.csr"), "-o", P("wide.pem")});
    return a;
  }());
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_THAT(outside.err,
              HasSubstr("the requested TNAuthList holds 12155550140-12155550159, outside the "
                        "issuing CA's TNAuthList (12155551000, 12155550100-12155550149;"));
  EXPECT_FALSE(FileExists(P("wide.pem")));
  // An SPC CSR is outside a TN-only scope too.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("spc.key")}).exit_code, 0);
  ASSERT_EQ(Shakenctl({"csr", "create", "--key", P("spc.key"), "--spc", "709J", "--org", "X",
                       "-o", P("spc.csr")})
                .exit_code,
            0);
  auto spc = Shakenctl([&] {
    auto a = issue;
    a.insert(a.end(), {"--csr", P("spc.csr"), "-o", P("spc.pem")});
    return a;
  }());
  EXPECT_EQ(spc.exit_code, 1);
  EXPECT_THAT(spc.err, HasSubstr("holds SPC 709J, outside"));
  // A sub-SP-CA under the SP-CA is held to its scope as well.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("sub.key")}).exit_code, 0);
  auto sub = Shakenctl({"ca", "issue-sp-ca", "--ca-cert", P("spca.pem"), "--ca-key", spca_key,
                        "--pin-source", Pin(), "--subject-key", P("sub.key"), "--cn", "Sub",
                        "--org", "Sub", "--tn", "12155552000", "-o", P("sub.pem")});
  EXPECT_EQ(sub.exit_code, 1);
  EXPECT_THAT(sub.err, HasSubstr("holds 12155552000, outside the issuing CA's TNAuthList"));

  // passport create --cert: the delegate signs its own numbers only.
  const std::string chain =
      ReadFileOrEmpty(P("ent.pem")) + ReadFileOrEmpty(P("spca.pem")) + ReadFileOrEmpty(P("ica.pem"));
  dir_.Write("chain.pem", chain);
  std::vector<std::string> create = {"passport", "create", "--key", P("ent.key"), "--cert",
                                     P("chain.pem"), "--x5u", "https://cert.example.net/ent.pem",
                                     "--attest", "A", "--dest", "12155550131", "--json"};
  auto refused = Shakenctl([&] {
    auto a = create;
    a.insert(a.end(), {"--orig", "+12155550199"});
    return a;
  }());
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err,
              HasSubstr("orig 12155550199 is outside the delegate certificate's TNAuthList "
                        "(12155551000, 12155550120-12155550129) of --cert"));
  auto wrong_key = Shakenctl({"passport", "create", "--key", P("wide.key"), "--cert",
                              P("chain.pem"), "--x5u", "https://cert.example.net/ent.pem",
                              "--attest", "A", "--orig", "12155550121", "--dest", "1"});
  EXPECT_EQ(wrong_key.exit_code, 1);
  EXPECT_THAT(wrong_key.err, HasSubstr("does not certify the --key"));
  auto signed_ok = Shakenctl([&] {
    auto a = create;
    a.insert(a.end(), {"--orig", "12155550121"});
    return a;
  }());
  ASSERT_EQ(signed_ok.exit_code, 0) << signed_ok.err;
  const std::string identity = nlohmann::json::parse(signed_ok.out)["identity"];

  // The chain verifies under both policies (DL-3: the SP-CA encompasses the delegate).
  for (bool strict : {true, false}) {
    std::vector<std::string> verify = {"passport", "verify", "--ca-file", P("root.pem"),
                                       "--cert", P("chain.pem"), "--from", "12155550121",
                                       identity};
    if (strict) verify.push_back("--strict");
    auto verified = Shakenctl(verify);
    EXPECT_EQ(verified.exit_code, 0) << strict << "\n" << verified.out << verified.err;
    EXPECT_THAT(verified.out, HasSubstr("TN-Validation-Passed"));
  }
  // openssl's own view of the delegate chain is unaffected by TNAuthList.
  EXPECT_THAT(ossl.err, Not(HasSubstr("error")));
}

}  // namespace
}  // namespace shaken::testing
