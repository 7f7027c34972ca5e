// acme_flow_test.cc: the SP side of ACME end to end with shakenctl: the lab STI-PA's token, the
// demo STI-CA (`ca serve`, a child process on 127.0.0.1), and `acme order` with the account key
// and the SHAKEN key in a SoftHSM2 token. The issued chain is checked by openssl, `cert check`,
// `passport verify` (a PASSporT signed by the token key) and secsipidx. Also: the CA killed
// between order and finalize comes back from its SQLite state and the flow completes; `acme
// renew`; External Account Binding; and the client against pebble, an ACME server no one here
// wrote.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/client.h"
#include "cli/acme/problem.h"
#include "cli/common.h"
#include "cli/sp_cert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "stir/tn_auth_list.h"
#include "tests/acme_lab.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

class AcmeFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lab_ = AcmeLab::Create();
    ASSERT_NE(lab_, nullptr);
  }
  std::string P(const std::string& name) const { return lab_->P(name); }
  std::unique_ptr<AcmeLab> lab_;
};

std::string Stdout(std::vector<std::string> argv) {
  RunResult r = RunProgram(std::move(argv));
  EXPECT_EQ(r.exit_code, 0) << r.output();
  return r.out;
}

TEST_F(AcmeFlowTest, FullSpFlowWithBothKeysInTheToken) {
  ASSERT_TRUE(lab_->StartCa());
  const std::string token = lab_->PaToken("709J.atc", "709J", lab_->AccountKey());
  RunResult order =
      lab_->Order(P("sp-chain.pem"), {"--spc", "709J", "--pa-token", token, "--json"});
  ASSERT_EQ(order.exit_code, 0) << order.output() << lab_->CaLog();
  auto summary = nlohmann::json::parse(order.out);
  EXPECT_EQ(summary["subject"], "CN=SHAKEN 709J,O=Lab Telecom,C=US");
  EXPECT_EQ(summary["chain_length"], 2);

  // The chain verifies with openssl; the leaf's key is the token's SHAKEN key.
  RunResult verify = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root.pem"),
                                 "-untrusted", P("ica.pem"), P("sp-chain.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.output();
  const std::string leaf_pub =
      Stdout({"openssl", "x509", "-in", P("sp-chain.pem"), "-noout", "-pubkey"});
  const std::string token_pub = Stdout({SHAKENCTL_PATH, "key", "export-public", "--key",
                                        lab_->SpKey(), "--pin-source", lab_->Pin()});
  EXPECT_EQ(leaf_pub, token_pub);
  EXPECT_NE(leaf_pub, Stdout({SHAKENCTL_PATH, "key", "export-public", "--key", lab_->AccountKey(),
                              "--pin-source", lab_->Pin()}));
  RunResult check = Shakenctl({"cert", "check", P("sp-chain.pem")});
  EXPECT_EQ(check.exit_code, 0) << check.output();

  // A PASSporT signed by the token key verifies with the chain: from the file, and fetched
  // from its x5u over HTTPS.
  lab_->web().SetRoute("/sp-chain.pem",
                       {.headers = {{"Content-Type", "application/pem-certificate-chain"}},
                        .body = ReadFileOrEmpty(P("sp-chain.pem"))});
  const std::string x5u = absl::StrCat("https://127.0.0.1:", lab_->web_port(), "/sp-chain.pem");
  RunResult created =
      Shakenctl({"passport", "create", "--key", lab_->SpKey(), "--pin-source", lab_->Pin(), "--x5u",
                 x5u, "--x5u-any-port", "--attest", "A", "--orig", "12155550121", "--dest",
                 "12155550131", "--print", "identity"});
  ASSERT_EQ(created.exit_code, 0) << created.output();
  const std::string identity(absl::StripAsciiWhitespace(created.out));
  RunResult by_file =
      Shakenctl({"passport", "verify", "--cert", P("sp-chain.pem"), "--ca-file", P("root.pem"),
                 "--from", "12155550121", "--to", "12155550131", identity});
  EXPECT_EQ(by_file.exit_code, 0) << by_file.output();
  RunResult by_x5u = Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--tls-ca-file",
                                P("tls-ca.pem"), "--allow-private-x5u", identity});
  EXPECT_EQ(by_x5u.exit_code, 0) << by_x5u.output();
  if (access("/usr/bin/secsipidx", X_OK) == 0) {
    std::ofstream(P("leaf.pub.pem")) << leaf_pub;
    RunResult s = RunProgram({"/usr/bin/secsipidx", "-check", "-expire", "60", "-fpubkey",
                              P("leaf.pub.pem"), "-identity", identity});
    EXPECT_EQ(s.exit_code, 0) << s.output();
  }

  // The same key as account and certificate key is refused before anything is sent.
  RunResult same = Shakenctl({"acme",
                              "order",
                              "--directory",
                              lab_->Directory(),
                              "--tls-ca-file",
                              P("tls-ca.pem"),
                              "--account-key",
                              lab_->SpKey(),
                              "--key",
                              lab_->SpKey(),
                              "--pin-source",
                              lab_->Pin(),
                              "--spc",
                              "709J",
                              "--org",
                              "X",
                              "--pa-token",
                              token,
                              "--ca-file",
                              P("root.pem"),
                              "-o",
                              P("x.pem")});
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_THAT(same.err, HasSubstr("separate ACME account key"));
  // The token was used: presenting it again is a replay.
  RunResult replay = lab_->Order(P("again.pem"), {"--spc", "709J", "--pa-token", token});
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_THAT(replay.err, HasSubstr("unauthorized"));
  EXPECT_THAT(replay.err, HasSubstr("already used"));
  EXPECT_FALSE(FileExists(P("again.pem")));
}

TEST_F(AcmeFlowTest, CaKilledBetweenOrderAndFinalizeKeepsItsStateAndTheFlowCompletes) {
  const int port = FreeLoopbackPort();
  ASSERT_TRUE(lab_->StartCa(port));
  auto account = stir::MemorySigner::Generate();
  auto sp = stir::MemorySigner::Generate();
  ASSERT_OK(account);
  ASSERT_OK(sp);
  acme::ClientOptions co;
  co.tls_ca_file = P("tls-ca.pem");
  co.poll_timeout = absl::Seconds(20);
  auto client = acme::AcmeClient::Connect(lab_->Directory(), account->get(), (*account)->key(), co);
  ASSERT_OK(client);
  auto kid = (*client)->NewAccount(std::nullopt);
  ASSERT_OK(kid);
  auto der = stir::EncodeTnAuthList({{stir::TnAuthEntry::Kind::kSpc, "709J"}});
  ASSERT_OK(der);
  auto order = (*client)->NewOrder(
      stir::Json::array({{{"type", "TNAuthList"}, {"value", acme::TnAuthListValue(*der)}}}));
  ASSERT_OK(order);
  const std::string authz_url = order->body["authorizations"][0];
  auto authz = (*client)->PostAsGet(authz_url);
  ASSERT_OK(authz);
  const std::string chall = (*authz)["challenges"][0]["url"];
  EXPECT_EQ((*authz)["challenges"][0]["type"], "tkauth-01");
  EXPECT_EQ((*authz)["challenges"][0]["tkauth-type"], "atc");
  auto pub = stir::PublicKeyToPem((*account)->key());
  ASSERT_OK(pub);
  std::ofstream(P("acct.pub.pem")) << *pub;
  const std::string token = ReadFileOrEmpty(lab_->PaToken("t.atc", "709J", P("acct.pub.pem")));
  ASSERT_OK((*client)->Respond(chall, {{"atc", std::string(absl::StripAsciiWhitespace(token))}}));
  auto ready = (*client)->WaitFor(order->url, {"ready"});
  ASSERT_OK(ready);

  // A crash: SIGKILL, nothing flushed at exit. Then a restart on the same port and state.
  lab_->StopCa(SIGKILL);
  ASSERT_TRUE(lab_->StartCa(port));
  // The account, the order (ready), and the nonce the client holds all survived.
  auto again = (*client)->PostAsGet(order->url);
  ASSERT_OK(again);
  EXPECT_EQ((*again)["status"], "ready");
  stir::EvpPkeyPtr sp_pub(EVP_PKEY_dup(const_cast<EVP_PKEY*>((*sp)->key())));
  cli::LoadedKey key{std::move(*sp), std::move(sp_pub), "memory"};
  auto subject = cli::ShakenSubject("US", "Lab Telecom", "SHAKEN 709J");
  ASSERT_OK(subject);
  auto csr = cli::BuildShakenCsr({{stir::TnAuthEntry::Kind::kSpc, "709J"}}, subject->get(), key);
  ASSERT_OK(csr);
  unsigned char* p = nullptr;
  int n = i2d_X509_REQ(csr->get(), &p);
  std::string csr_der(reinterpret_cast<char*>(p), n);
  OPENSSL_free(p);
  ASSERT_OK((*client)->Finalize((*ready)["finalize"], csr_der));
  auto valid = (*client)->WaitFor(order->url, {"valid"});
  ASSERT_OK(valid);
  auto pem = (*client)->DownloadCertificate((*valid)["certificate"]);
  ASSERT_OK(pem);
  std::ofstream(P("restart-chain.pem")) << *pem;
  RunResult verify = RunProgram({"openssl", "verify", "-CAfile", P("root.pem"), "-untrusted",
                                 P("ica.pem"), P("restart-chain.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.output();
  // The jti of the token used before the crash is still known: a replay is refused.
  auto order2 = (*client)->NewOrder(
      stir::Json::array({{{"type", "TNAuthList"}, {"value", acme::TnAuthListValue(*der)}}}));
  ASSERT_OK(order2);
  auto authz2 = (*client)->PostAsGet(order2->body["authorizations"][0]);
  ASSERT_OK(authz2);
  auto replay = (*client)->Respond((*authz2)["challenges"][0]["url"],
                                   {{"atc", std::string(absl::StripAsciiWhitespace(token))}});
  EXPECT_EQ(acme::ProblemType(replay.status()), "unauthorized");
  EXPECT_THAT(std::string(replay.status().message()), HasSubstr("already used"));
}

// DL-4 (RFC 9448 §3, RFC 9060): an SP-CA certificate over ACME, only with an Authority Token
// whose atc "ca" is true; the SP-CA then issues delegate certificates within its SPC's scope.
TEST_F(AcmeFlowTest, SpCaCertificateOnlyWithATokenThatAllowsIt) {
  ASSERT_TRUE(lab_->StartCa());
  const std::string plain = lab_->PaToken("no-ca.atc", "709J", lab_->AccountKey());
  RunResult refused =
      lab_->Order(P("no-ca.pem"), {"--spc", "709J", "--sp-ca", "--pa-token", plain});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("unauthorized"));
  EXPECT_THAT(refused.err, HasSubstr("\"ca\": true"));
  EXPECT_FALSE(FileExists(P("no-ca.pem")));

  const std::string token =
      lab_->PaToken("ca.atc", "709J", lab_->AccountKey(), {"--ca"});
  RunResult order =
      lab_->Order(P("spca.pem"), {"--spc", "709J", "--sp-ca", "--pa-token", token, "--json"});
  ASSERT_EQ(order.exit_code, 0) << order.output() << lab_->CaLog();
  const std::string text = Stdout({"openssl", "x509", "-in", P("spca.pem"), "-noout", "-text"});
  EXPECT_THAT(text, HasSubstr("CA:TRUE, pathlen:0"));
  EXPECT_THAT(text, HasSubstr("Certificate Sign, CRL Sign"));
  RunResult chain = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root.pem"),
                                "-untrusted", P("ica.pem"), P("spca.pem")});
  EXPECT_EQ(chain.exit_code, 0) << chain.output();

  // The SP-CA (its key in the token) issues an enterprise's delegate certificate for TNs: inside
  // its SPC's scope, and the chain root -> STI-CA -> SP-CA -> delegate verifies.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("ent.key")}).exit_code, 0);
  RunResult csr = Shakenctl({"csr", "create", "--key", P("ent.key"), "--cn", "Example Enterprise",
                             "--org", "Example Enterprise", "--tn", "12155550121", "-o",
                             P("ent.csr")});
  ASSERT_EQ(csr.exit_code, 0) << csr.output();
  RunResult issued = Shakenctl({"ca", "issue", "--ca-cert", P("spca.pem"), "--ca-key",
                                lab_->SpKey(), "--pin-source", lab_->Pin(), "--allow-delegate",
                                "--csr", P("ent.csr"), "-o", P("ent.pem")});
  ASSERT_EQ(issued.exit_code, 0) << issued.output();
  std::ofstream(P("untrusted.pem"))
      << ReadFileOrEmpty(P("spca.pem")) << ReadFileOrEmpty(P("ica.pem"));
  RunResult delegate = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root.pem"),
                                   "-untrusted", P("untrusted.pem"), P("ent.pem")});
  EXPECT_EQ(delegate.exit_code, 0) << delegate.output();
}

TEST_F(AcmeFlowTest, RenewDoesNothingUntilDueThenRenewsWithTheSameOrANewKey) {
  ASSERT_TRUE(lab_->StartCa());
  RunResult first = lab_->Order(
      P("chain.pem"), {"--spc", "709J", "--pa-key", P("pa.key"), "--pa-x5u", lab_->PaX5u()});
  ASSERT_EQ(first.exit_code, 0) << first.output();
  const std::string before = ReadFileOrEmpty(P("chain.pem"));
  const std::string serial_before =
      Stdout({"openssl", "x509", "-in", P("chain.pem"), "-noout", "-serial"});
  std::vector<std::string> renew = {
      "acme",          "renew",         "--directory",   lab_->Directory(),
      "--tls-ca-file", P("tls-ca.pem"), "--account-key", lab_->AccountKey(),
      "--key",         lab_->SpKey(),   "--pin-source",  lab_->Pin(),
      "--org",         "Lab Telecom",   "--ca-file",     P("root.pem"),
      "--cert",        P("chain.pem"),  "--pa-key",      P("pa.key"),
      "--pa-x5u",      lab_->PaX5u()};
  RunResult not_due = Shakenctl(renew);
  EXPECT_EQ(not_due.exit_code, 0) << not_due.output();
  EXPECT_THAT(not_due.err, HasSubstr("not due"));
  EXPECT_EQ(ReadFileOrEmpty(P("chain.pem")), before);
  renew.insert(renew.end(), {"--within-days", "400"});  // a 365-day certificate is now due
  RunResult due = Shakenctl(renew);
  ASSERT_EQ(due.exit_code, 0) << due.output();
  EXPECT_THAT(due.err, HasSubstr("renewing"));
  const std::string after = ReadFileOrEmpty(P("chain.pem"));
  EXPECT_NE(after, before);
  EXPECT_EQ(Stdout({"openssl", "x509", "-in", P("chain.pem"), "-noout", "-pubkey"}),
            Stdout({SHAKENCTL_PATH, "key", "export-public", "--key", lab_->SpKey(), "--pin-source",
                    lab_->Pin()}));
  EXPECT_NE(Stdout({"openssl", "x509", "-in", P("chain.pem"), "-noout", "-serial"}), serial_before);

  // A renewal may roll the key: another token key, the same account.
  RunResult gen = Shakenctl(
      {"key", "generate", "--key", lab_->TokenKey("sp-2027"), "--pin-source", lab_->Pin()});
  ASSERT_EQ(gen.exit_code, 0) << gen.output();
  std::vector<std::string> roll = renew;
  for (size_t i = 0; i + 1 < roll.size(); ++i) {
    if (roll[i] == "--key") roll[i + 1] = lab_->TokenKey("sp-2027");
  }
  RunResult rolled = Shakenctl(roll);
  ASSERT_EQ(rolled.exit_code, 0) << rolled.output();
  EXPECT_EQ(Stdout({"openssl", "x509", "-in", P("chain.pem"), "-noout", "-pubkey"}),
            Stdout({SHAKENCTL_PATH, "key", "export-public", "--key", lab_->TokenKey("sp-2027"),
                    "--pin-source", lab_->Pin()}));
}

// The STI-CA's own key in the token: every certificate is signed there, on a worker thread.
TEST_F(AcmeFlowTest, CaKeyInTheToken) {
  const std::string ca_key = lab_->TokenKey("sti-ca");
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", ca_key, "--pin-source", lab_->Pin()}).exit_code,
            0);
  RunResult ica =
      Shakenctl({"ca", "issue-intermediate", "--ca-cert", P("root.pem"), "--ca-key", P("root.key"),
                 "--subject-key", ca_key, "--pin-source", lab_->Pin(), "--cn",
                 "Lab STI-CA in a token", "--org", "Lab STI-CA", "-o", P("ica-token.pem")});
  ASSERT_EQ(ica.exit_code, 0) << ica.output();
  ASSERT_TRUE(lab_->StartCa(
      0, {"--ca-cert", P("ica-token.pem"), "--ca-key", ca_key, "--pin-source", lab_->Pin()}));
  RunResult order = lab_->Order(
      P("chain.pem"), {"--spc", "709J", "--pa-key", P("pa.key"), "--pa-x5u", lab_->PaX5u()});
  ASSERT_EQ(order.exit_code, 0) << order.output() << lab_->CaLog();
  RunResult verify = RunProgram({"openssl", "verify", "-CAfile", P("root.pem"), "-untrusted",
                                 P("ica-token.pem"), P("chain.pem")});
  EXPECT_EQ(verify.exit_code, 0) << verify.output();
  EXPECT_THAT(Stdout({"openssl", "x509", "-in", P("chain.pem"), "-noout", "-issuer"}),
              HasSubstr("Lab STI-CA in a token"));
}

TEST_F(AcmeFlowTest, ExternalAccountBindingWhenRequired) {
  std::ofstream(P("eab-keys")) << "# kid key\nlab-kid-1 c2hha2VuLWxhYi1lYWIta2V5LTAwMDE\n";
  std::ofstream(P("eab.key")) << "c2hha2VuLWxhYi1lYWIta2V5LTAwMDE\n";
  std::ofstream(P("bad-eab.key")) << "c2hha2VuLWxhYi1lYWIta2V5LTk5OTk\n";
  ASSERT_TRUE(lab_->StartCa(0, {"--eab-keys", P("eab-keys"), "--eab-required"}));
  std::vector<std::string> base = {"--spc",     "709J",     "--pa-key",
                                   P("pa.key"), "--pa-x5u", lab_->PaX5u()};
  RunResult none = lab_->Order(P("c0.pem"), base);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("externalAccountRequired"));
  std::vector<std::string> bad = base;
  bad.insert(bad.end(), {"--eab-kid", "lab-kid-1", "--eab-key-source", "file:" + P("bad-eab.key")});
  RunResult wrong = lab_->Order(P("c1.pem"), bad);
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("unauthorized"));
  EXPECT_THAT(wrong.err, HasSubstr("MAC"));
  std::vector<std::string> good = base;
  good.insert(good.end(), {"--eab-kid", "lab-kid-1", "--eab-key-source", "file:" + P("eab.key")});
  RunResult ok = lab_->Order(P("c2.pem"), good);
  EXPECT_EQ(ok.exit_code, 0) << ok.output() << lab_->CaLog();
}

// Bad command lines fail before any network or token work, and say what to give.
TEST(AcmeCliTest, BadInputIsAClearErrorNotAHang) {
  TempDir dir;
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", dir.path() + "/a.key"}).exit_code, 0);
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", dir.path() + "/b.key"}).exit_code, 0);
  const std::vector<std::string> base = {"acme",
                                         "order",
                                         "--account-key",
                                         dir.path() + "/a.key",
                                         "--key",
                                         dir.path() + "/b.key",
                                         "-o",
                                         dir.path() + "/out.pem"};
  auto order = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Shakenctl(args);
  };
  const std::string dir_url = absl::StrCat("https://127.0.0.1:", FreeLoopbackPort(), "/dir");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  } cases[] = {
      {{"--directory", dir_url}, 1, "--spc SPC or --identifier"},
      {{"--directory", dir_url, "--spc", "709J", "--identifier", "dns:x.test"}, 1, "--spc SPC or"},
      {{"--directory", dir_url, "--spc", "709j"}, 1, "upper-case"},
      {{"--directory", dir_url, "--spc", "709J"}, 1, "--ca-file"},
      {{"--directory", dir_url, "--spc", "709J", "--ca-file", "x"}, 1, "--pa-token"},
      {{"--directory", dir_url, "--identifier", "ftp:x"}, 1, "dns:NAME"},
      {{"--directory", dir_url, "--identifier", "dns:a,IP:1.2.3.4"}, 1, "not a DNS name"},
      {{"--directory", "http://ca.example/dir", "--identifier", "dns:x.test"}, 1, "https://"},
      {{"--directory", dir_url, "--identifier", "dns:x.test"}, 1, "Couldn't connect"},
      {{"--directory", dir_url, "--identifier", "dns:x.test", "--eab-kid", "k"},
       1,
       "--eab-key-source"},
      {{"--identifier", "dns:x.test"}, 2, "--directory"},
  };
  for (const Case& c : cases) {
    RunResult r = order(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << ": " << r.output();
    EXPECT_THAT(r.err, HasSubstr(c.says)) << absl::StrJoin(c.args, " ");
    EXPECT_FALSE(FileExists(dir.path() + "/out.pem"));
  }
  RunResult same = Shakenctl({"acme", "order", "--directory", dir_url, "--account-key",
                              dir.path() + "/a.key", "--key", dir.path() + "/a.key", "--identifier",
                              "dns:x.test", "-o", dir.path() + "/out.pem"});
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_THAT(same.err, HasSubstr("separate ACME account key"));
  RunResult pa = Shakenctl({"pa", "token", "--key", dir.path() + "/a.key", "--x5u",
                            "https://pa.test/pa.pem", "--spc", "709J"});
  EXPECT_EQ(pa.exit_code, 1);
  EXPECT_THAT(pa.err, HasSubstr("--account-key"));
  RunResult pa_url = Shakenctl({"pa", "token", "--key", dir.path() + "/a.key", "--x5u", "pa.pem",
                                "--spc", "709J", "--account-key", dir.path() + "/b.key"});
  EXPECT_EQ(pa_url.exit_code, 1);
  EXPECT_THAT(pa_url.err, HasSubstr("x5u"));
  RunResult serve = Shakenctl({"ca", "serve", "--tls-cert", "x"});
  EXPECT_EQ(serve.exit_code, 2);
  RunResult renew =
      Shakenctl({"acme", "renew", "--directory", dir_url, "--account-key", dir.path() + "/a.key",
                 "--key", dir.path() + "/b.key", "--cert", dir.path() + "/missing.pem"});
  EXPECT_EQ(renew.exit_code, 1);
  EXPECT_THAT(renew.err, HasSubstr("missing.pem"));
}

// pebble (Debian package `pebble`), an RFC 8555 server written elsewhere, with challenge
// validation off (PEBBLE_VA_ALWAYS_VALID): the client's JWS, nonces (pebble rejects 5% of good
// nonces: badNonce retries), account, order, finalize, polling and download against it.
TEST(AcmePebbleTest, ClientCompletesADnsOrderAgainstPebble) {
  if (access("/usr/bin/pebble", X_OK) != 0)
    GTEST_SKIP() << "pebble is not installed (deploy/install-deps.sh)";
  TempDir dir;
  auto tls = TlsServerPki::Create(absl::Now());
  ASSERT_OK(tls);
  const std::string cert = dir.Write("tls.pem", tls->server.cert_pem);
  const std::string key = dir.Write("tls.key", tls->server.key_pem);
  const std::string ca = dir.Write("tls-ca.pem", tls->ca.cert_pem);
  const int port = FreeLoopbackPort(), mgmt = FreeLoopbackPort();
  nlohmann::json config = {{"pebble",
                            {{"listenAddress", absl::StrCat("127.0.0.1:", port)},
                             {"managementListenAddress", absl::StrCat("127.0.0.1:", mgmt)},
                             {"certificate", cert},
                             {"privateKey", key},
                             {"httpPort", FreeLoopbackPort()},
                             {"tlsPort", FreeLoopbackPort()},
                             {"ocspResponderURL", ""},
                             {"externalAccountBindingRequired", false}}}};
  const std::string config_file = dir.Write("pebble.json", config.dump());
  auto pebble =
      Child::Start({"/usr/bin/pebble", "-config", config_file}, dir.path() + "/pebble.log",
                   {{"PEBBLE_VA_ALWAYS_VALID", "1"}, {"PEBBLE_VA_NOSLEEP", "1"}});
  ASSERT_OK(pebble);
  const std::string directory = absl::StrCat("https://127.0.0.1:", port, "/dir");
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = RunProgram({"curl", "-sf", "--max-time", "2", "--cacert", ca, directory}).exit_code == 0;
    if (!up) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(up) << pebble->Log();
  RunResult root = RunProgram({"curl", "-sf", "--max-time", "5", "--cacert", ca, "-o",
                               dir.path() + "/pebble-root.pem",
                               absl::StrCat("https://127.0.0.1:", mgmt, "/roots/0")});
  ASSERT_EQ(root.exit_code, 0) << root.output();
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", dir.path() + "/acct.key"}).exit_code, 0);
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", dir.path() + "/cert.key"}).exit_code, 0);
  RunResult order =
      Shakenctl({"acme", "order", "--directory", directory, "--tls-ca-file", ca, "--account-key",
                 dir.path() + "/acct.key", "--key", dir.path() + "/cert.key", "--identifier",
                 "dns:example.test", "--ca-file", dir.path() + "/pebble-root.pem", "-o",
                 dir.path() + "/dns-chain.pem", "--json", "--poll-timeout", "30"});
  ASSERT_EQ(order.exit_code, 0) << order.output() << pebble->Log();
  EXPECT_EQ(nlohmann::json::parse(order.out)["subject"], "CN=example.test");
  RunResult san = RunProgram({"openssl", "x509", "-in", dir.path() + "/dns-chain.pem", "-noout",
                              "-ext", "subjectAltName"});
  EXPECT_THAT(san.out, HasSubstr("DNS:example.test"));
  // A CA other than pebble's root does not verify pebble's chain: the check is real.
  RunResult wrong =
      Shakenctl({"acme", "order", "--directory", directory, "--tls-ca-file", ca, "--account-key",
                 dir.path() + "/acct.key", "--key", dir.path() + "/cert.key", "--identifier",
                 "dns:example.test", "--ca-file", ca, "-o", dir.path() + "/x.pem"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("does not verify"));
  pebble->Signal(SIGTERM);
  EXPECT_TRUE(pebble->Wait(absl::Seconds(10)).has_value());
}

}  // namespace
}  // namespace shaken::testing
