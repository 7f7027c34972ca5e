// cli_ceremony_test.cc: the full key ceremony with shakenctl on a real SoftHSM2 token, checked
// by the openssl binary, then PASSporTs signed by the token key and verified by shakenctl against
// an HTTPS x5u on loopback and against a CA directory made by `ca-dir add`. Every documented exit
// code of `passport verify` is exercised, and token errors (bad URI, wrong PIN) are clear.
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli_test_support.h"
#include "tests/testing/https_server.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

class CeremonyTest : public CliTokenTest<CeremonyTest> {
 public:
  static constexpr char kTokenLabel[] = "cli-sp";
};

TEST_F(CeremonyTest, TokenInitThenKeyInTheNewToken) {
  const std::string so = dir_.Write("so.pin", "24681357\n");
  const std::string user = dir_.Write("user.pin", "97531\n");
  auto init = Shakenctl({"token", "init", "--label", "cli-fresh", "--so-pin-source", "file:" + so,
                         "--pin-source", "file:" + user, "--json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(nlohmann::json::parse(init.out)["uri"], "pkcs11:token=cli-fresh");
  auto again = Shakenctl({"token", "init", "--label", "cli-fresh", "--so-pin-source",
                          "file:" + so, "--pin-source", "file:" + user});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));

  auto gen = Shakenctl({"key", "generate", "--key", "pkcs11:token=cli-fresh;object=k1",
                        "--pin-source", "file:" + user, "--json"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto j = nlohmann::json::parse(gen.out);
  EXPECT_EQ(j["extractable"], false);
  EXPECT_EQ(j["sensitive"], true);
  EXPECT_EQ(j["never_extractable"], true);
  EXPECT_EQ(j["curve"], "P-256");

  auto list = Shakenctl({"key", "list", "--token", "pkcs11:token=cli-fresh", "--pin-source",
                         "file:" + user, "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)["keys"].size(), 1u);

  auto show = Shakenctl({"key", "show", "--key", "pkcs11:token=cli-fresh;object=k1",
                         "--pin-source", "file:" + user});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("CKA_EXTRACTABLE=false"));

  // Deleting needs a confirmation; then the key is gone.
  EXPECT_EQ(Shakenctl({"key", "delete", "--key", "pkcs11:token=cli-fresh;object=k1",
                       "--pin-source", "file:" + user})
                .exit_code,
            2);
  auto del = Shakenctl({"key", "delete", "--key", "pkcs11:token=cli-fresh;object=k1",
                        "--pin-source", "file:" + user, "--yes"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  auto gone = Shakenctl({"key", "show", "--key", "pkcs11:token=cli-fresh;object=k1",
                         "--pin-source", "file:" + user});
  EXPECT_EQ(gone.exit_code, 1);
}

TEST_F(CeremonyTest, TokenErrorsAreClear) {
  auto bad_uri = Shakenctl({"key", "list", "--token", "pkcs11:token=cli-sp;bogus=1",
                            "--pin-source", Pin()});
  EXPECT_EQ(bad_uri.exit_code, 1);
  EXPECT_THAT(bad_uri.err, HasSubstr("bad PKCS#11 URI"));

  const std::string wrong = dir_.Write("wrong.pin", "000000\n");
  auto wrong_pin = Shakenctl({"key", "list", "--token", "pkcs11:token=cli-sp", "--pin-source",
                              "file:" + wrong});
  EXPECT_EQ(wrong_pin.exit_code, 1);
  EXPECT_THAT(wrong_pin.err, HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(wrong_pin.err, ::testing::Not(HasSubstr("000000")));

  // No PIN source and no terminal: says how to give one.
  auto no_pin = Shakenctl({"key", "list", "--token", "pkcs11:token=cli-sp"});
  EXPECT_EQ(no_pin.exit_code, 1);
  EXPECT_THAT(no_pin.err, HasSubstr("--pin-source"));

  auto no_token = Shakenctl({"key", "list", "--token", "pkcs11:token=nope", "--pin-source",
                             Pin()});
  EXPECT_EQ(no_token.exit_code, 1);

  // A CSR with a wrong PIN leaves no file behind.
  auto csr = Shakenctl({"csr", "create", "--key", "pkcs11:token=cli-sp;object=none",
                        "--pin-source", "file:" + wrong, "--spc", "709J", "--org", "X", "-o",
                        P("x.csr")});
  EXPECT_EQ(csr.exit_code, 1);
  EXPECT_FALSE(FileExists(P("x.csr")));
}

TEST_F(CeremonyTest, FullCeremonyAndPassportsOverHttpsAndCaDir) {
  // 1. Root in a file, intermediate in a file.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("root.key")}).exit_code, 0);
  auto root = Shakenctl({"ca", "init", "--key", P("root.key"), "--cn", "Ceremony STI ROOT",
                         "--org", "Ceremony STI-PA", "-o", P("root.pem"), "--json"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("ica.key")}).exit_code, 0);
  auto ica = Shakenctl({"ca", "issue-intermediate", "--ca-cert", P("root.pem"), "--ca-key",
                        P("root.key"), "--subject-key", P("ica.key"), "--cn", "Ceremony STI-CA",
                        "--org", "Ceremony CA", "-o", P("ica.pem")});
  ASSERT_EQ(ica.exit_code, 0) << ica.err;

  // 2. The SP key in the token, the CSR signed by it.
  const std::string key_uri = "pkcs11:token=cli-sp;object=sp-ceremony";
  auto gen = Shakenctl({"key", "generate", "--key", key_uri, "--pin-source", Pin()});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.out, HasSubstr("CKA_EXTRACTABLE=false"));
  auto csr = Shakenctl({"csr", "create", "--key", key_uri, "--pin-source", Pin(), "--spc", "709J",
                        "--org", "Ceremony Telecom", "-o", P("sp.csr")});
  ASSERT_EQ(csr.exit_code, 0) << csr.err;
  auto req_verify = RunProgram({"openssl", "req", "-in", P("sp.csr"), "-noout", "-verify"});
  EXPECT_EQ(req_verify.exit_code, 0) << req_verify.err;
  EXPECT_THAT(req_verify.out + req_verify.err, HasSubstr("verify OK"));
  auto csr_show = Shakenctl({"csr", "show", P("sp.csr"), "--json"});
  ASSERT_EQ(csr_show.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(csr_show.out)["tn_auth_list_der_hex"], "3008a00616043730394a");

  // 3. Issue; openssl accepts the chain; asn1parse shows the RFC 8226 DER.
  auto issue = Shakenctl({"ca", "issue", "--ca-cert", P("ica.pem"), "--ca-key", P("ica.key"),
                          "--csr", P("sp.csr"), "--spc", "709J", "--crl-url",
                          "http://crl.example.net/sti.crl", "--days", "90", "-o", P("sp.pem")});
  ASSERT_EQ(issue.exit_code, 0) << issue.err;
  auto ossl = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root.pem"),
                          "-untrusted", P("ica.pem"), P("sp.pem")});
  EXPECT_EQ(ossl.exit_code, 0) << ossl.out << ossl.err;
  EXPECT_THAT(ossl.out, HasSubstr("sp.pem: OK"));
  auto asn1 = RunProgram({"openssl", "asn1parse", "-in", P("sp.pem")});
  ASSERT_EQ(asn1.exit_code, 0);
  EXPECT_THAT(asn1.out, HasSubstr(":1.3.6.1.5.5.7.1.26"));
  EXPECT_THAT(asn1.out, HasSubstr("[HEX DUMP]:3008A00616043730394A"));
  auto text = RunProgram({"openssl", "x509", "-in", P("sp.pem"), "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("Policy: 2.16.840.1.114569.1.1.3"));
  EXPECT_THAT(text.out, HasSubstr("URI:http://crl.example.net/sti.crl"));
  // The certificate carries the token key.
  auto pub = Shakenctl({"key", "export-public", "--key", key_uri, "--pin-source", Pin()});
  auto cert_pub = RunProgram({"openssl", "x509", "-in", P("sp.pem"), "-noout", "-pubkey"});
  EXPECT_EQ(pub.out, cert_pub.out);
  // The profile lint passes for all three.
  for (const char* f : {"sp.pem", "ica.pem", "root.pem"}) {
    auto lint = Shakenctl({"cert", "check", P(f)});
    EXPECT_EQ(lint.exit_code, 0) << f << "\n" << lint.out;
  }

  // A CRL revoking the leaf: openssl sees it revoked.
  auto crl = Shakenctl({"ca", "crl", "--ca-cert", P("ica.pem"), "--ca-key", P("ica.key"),
                        "--revoke-cert", P("sp.pem"), "-o", P("ica.crl")});
  ASSERT_EQ(crl.exit_code, 0) << crl.err;
  auto revoked = RunProgram({"openssl", "verify", "-crl_check", "-CRLfile", P("ica.crl"),
                             "-CAfile", P("root.pem"), "-untrusted", P("ica.pem"), P("sp.pem")});
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_THAT(revoked.out + revoked.err, HasSubstr("revoked"));

  // 4. The x5u on loopback HTTPS.
  const std::string chain = ReadFileOrEmpty(P("sp.pem")) + ReadFileOrEmpty(P("ica.pem"));
  dir_.Write("chain.pem", chain);
  ASSERT_OK_AND_ASSIGN(TlsServerPki tls, TlsServerPki::Create(absl::Now()));
  const std::string tls_ca = dir_.Write("tls-ca.pem", tls.ca.cert_pem);
  ASSERT_OK_AND_ASSIGN(auto server, HttpsServer::Start({.tls = true,
                                                        .cert_pem = tls.server.cert_pem,
                                                        .key_pem = tls.server.key_pem}));
  server->SetRoute("/sp.pem",
                   {.status = 200,
                    .headers = {{"Content-Type", "application/pem-certificate-chain"}},
                    .body = chain});
  const std::string x5u = server->Url("/sp.pem");

  auto created = Shakenctl({"passport", "create", "--key", key_uri, "--pin-source", Pin(),
                            "--x5u", x5u, "--x5u-any-port", "--attest", "A", "--orig",
                            "+1 (215) 555-0121", "--dest", "+12155550131", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto pj = nlohmann::json::parse(created.out);
  const std::string identity = pj["identity"];
  const std::string jws = pj["jws"];
  const int64_t iat = pj["iat"];

  std::vector<std::string> https = {"passport", "verify", "--ca-file", P("root.pem"),
                                    "--tls-ca-file", tls_ca, "--allow-private-x5u"};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };

  // 0: passed over HTTPS, with From/To matching.
  auto ok = Shakenctl(with(https, {"--from", "12155550121", "--to", "12155550131", identity}));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("TN-Validation-Passed"));
  EXPECT_GE(server->RequestCount("/sp.pem"), 1);

  // rph (RFC 8443) and rcd (RFC 9795) PASSporTs: created, then verified together with the
  // call's Resource-Priority; the icon is fetched for its rcdi digest on both sides.
  server->SetRoute("/logo.png", {.body = "PNG logo"});
  const std::vector<std::string> create = {"passport", "create", "--key", key_uri, "--pin-source",
                                           Pin(), "--x5u", x5u, "--x5u-any-port", "--orig",
                                           "12155550121", "--dest", "12155550131", "--print",
                                           "identity"};
  auto rph = Shakenctl(with(create, {"--ppt", "rph", "--rph", "ets.0", "--sph", "psap-callback"}));
  ASSERT_EQ(rph.exit_code, 0) << rph.err;
  auto rcd = Shakenctl(with(create, {"--ppt", "rcd", "--nam", "Acme", "--icn",
                                     server->Url("/logo.png"), "--tls-ca-file", tls_ca,
                                     "--allow-private-rcd", "--crn", "Refill"}));
  ASSERT_EQ(rcd.exit_code, 0) << rcd.err;
  EXPECT_EQ(server->RequestCount("/logo.png"), 1);
  const std::string rph_identity(absl::StripAsciiWhitespace(rph.out));
  const std::string rcd_identity(absl::StripAsciiWhitespace(rcd.out));
  auto both = Shakenctl(with(https, {"--from", "12155550121", "--to", "12155550131",
                                     "--resource-priority", "ets.0", "--json", identity,
                                     rph_identity, rcd_identity}));
  ASSERT_EQ(both.exit_code, 0) << both.out << both.err;
  auto bj = nlohmann::json::parse(both.out);
  EXPECT_EQ(bj["verstat_priority"], "RPH-Validation-Passed") << both.out;
  EXPECT_EQ(bj["display_name"], "Acme") << both.out;
  EXPECT_EQ(bj["rcds"][0]["crn"], "Refill") << both.out;
  EXPECT_EQ(server->RequestCount("/logo.png"), 2);
  // The text form says the priority and shows the rich call data.
  auto failed = Shakenctl(with(https, {"--from", "12155550121", "--to", "12155550131",
                                     "--resource-priority", "wps.1", identity, rph_identity,
                                     rcd_identity}));
  EXPECT_EQ(failed.exit_code, 0) << failed.err;
  EXPECT_THAT(failed.out, HasSubstr("priority: RPH-Validation-Failed"));
  EXPECT_THAT(failed.out, HasSubstr("name:   Acme"));
  // Rich call data whose icon cannot be fetched is not signed.
  auto gone = Shakenctl(with(create, {"--ppt", "rcd", "--nam", "Acme", "--icn",
                                      server->Url("/gone.png"), "--tls-ca-file", tls_ca,
                                      "--allow-private-rcd"}));
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_THAT(gone.err, HasSubstr("icn: fetching the content"));
  EXPECT_EQ(Shakenctl(with(create, {"--ppt", "rph"})).exit_code, 2);

  // 0: a bare JWS (info = its x5u).
  EXPECT_EQ(Shakenctl(with(https, {jws})).exit_code, 0);

  // 0: against a CA directory made by `ca-dir add`, with --cert (no fetch).
  auto add = Shakenctl({"ca-dir", "add", "--dir", P("sti-ca"), P("root.pem"), "--json"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  auto added = nlohmann::json::parse(add.out);
  EXPECT_THAT(added[0]["file"].get<std::string>(), ::testing::MatchesRegex(".*/[0-9a-f]{8}\\.0"));
  auto list = Shakenctl({"ca-dir", "list", "--dir", P("sti-ca"), "--json"});
  EXPECT_EQ(nlohmann::json::parse(list.out)[0]["hash_matches"], true);
  auto cadir = Shakenctl({"passport", "verify", "--ca-dir", P("sti-ca"), "--cert", P("chain.pem"),
                          "--json", identity});
  EXPECT_EQ(cadir.exit_code, 0) << cadir.out << cadir.err;
  // --json prints the public API's shaken.v1.VerifyResponse (proto3 JSON mapping).
  EXPECT_EQ(nlohmann::json::parse(cadir.out)["verdict"]["certificate"]["spc"], "709J");
  // ... and over HTTPS with the CA directory.
  EXPECT_EQ(Shakenctl({"passport", "verify", "--ca-dir", P("sti-ca"), "--tls-ca-file", tls_ca,
                       "--allow-private-x5u", identity})
                .exit_code,
            0);

  // 3: 403 stale (verify later than the window).
  auto stale = Shakenctl(with(https, {"--at", std::to_string(iat + 3600), identity}));
  EXPECT_EQ(stale.exit_code, 3) << stale.out;
  EXPECT_THAT(stale.out, HasSubstr("403"));

  // 4: 428, nothing to verify.
  EXPECT_EQ(Shakenctl(https).exit_code, 4);

  // 5: 436, the x5u cannot be fetched (404), or is not allowed without the lab flag.
  server->SetRoute("/sp.pem", {.status = 404, .body = "gone"});
  auto fetch = Shakenctl(with(https, {identity}));
  EXPECT_EQ(fetch.exit_code, 5) << fetch.out;
  EXPECT_THAT(fetch.out, HasSubstr("436"));
  auto blocked = Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--tls-ca-file",
                            tls_ca, identity});
  EXPECT_EQ(blocked.exit_code, 5) << blocked.out;

  // 6: 437, an untrusted root; and revoked by the CRL.
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", P("other.key")}).exit_code, 0);
  ASSERT_EQ(Shakenctl({"ca", "init", "--key", P("other.key"), "--cn", "Other STI ROOT", "-o",
                       P("other.pem")})
                .exit_code,
            0);
  auto untrusted = Shakenctl({"passport", "verify", "--ca-file", P("other.pem"), "--cert",
                              P("chain.pem"), identity});
  EXPECT_EQ(untrusted.exit_code, 6) << untrusted.out;
  auto rev = Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--cert",
                        P("chain.pem"), "--crl", P("ica.crl"), "--json", identity});
  EXPECT_EQ(rev.exit_code, 6) << rev.out;
  EXPECT_EQ(nlohmann::json::parse(rev.out)["verdict"]["reason"], "cert_revoked");

  // 7: 438, orig mismatch and a tampered signature.
  auto mismatch = Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--cert",
                             P("chain.pem"), "--from", "12155550199", identity});
  EXPECT_EQ(mismatch.exit_code, 7) << mismatch.out;
  std::string tampered = jws;
  char& last = tampered[tampered.size() - 2];
  last = last == 'A' ? 'B' : 'A';
  auto bad_sig = Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--cert",
                            P("chain.pem"), "--json", tampered});
  EXPECT_EQ(bad_sig.exit_code, 7) << bad_sig.out;
  EXPECT_EQ(nlohmann::json::parse(bad_sig.out)["verdict"]["reason"], "signature_invalid");

  // --no-path-check: only the signature with the leaf's key (untrusted root is fine).
  EXPECT_EQ(Shakenctl({"passport", "verify", "--no-path-check", "--cert", P("sp.pem"), identity})
                .exit_code,
            0);
  EXPECT_EQ(Shakenctl({"passport", "verify", "--no-path-check", "--cert", P("sp.pem"), tampered})
                .exit_code,
            7);

  // 2: usage errors (a --from that is not a TN; an unknown option). 1: an unreadable --cert.
  EXPECT_EQ(Shakenctl(with(https, {"--from", "not-a-tn", identity})).exit_code, 2);
  EXPECT_EQ(Shakenctl(with(https, {"--bogus", identity})).exit_code, 2);
  EXPECT_EQ(Shakenctl({"passport", "verify", "--ca-file", P("root.pem"), "--cert",
                       P("missing.pem"), identity})
                .exit_code,
            1);

  // passport dump decodes without verifying.
  auto dump = Shakenctl({"passport", "dump", "--json", identity});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  auto dj = nlohmann::json::parse(dump.out);
  EXPECT_EQ(dj["payload"]["orig"]["tn"], "12155550121");
  EXPECT_EQ(dj["header"]["x5u"], x5u);

  // passport create rejects a bad TN with a clear message.
  auto bad_tn = Shakenctl({"passport", "create", "--key", key_uri, "--pin-source", Pin(),
                           "--x5u", x5u, "--x5u-any-port", "--attest", "A", "--orig", "CALL-ME",
                           "--dest", "1"});
  EXPECT_EQ(bad_tn.exit_code, 1);
  EXPECT_THAT(bad_tn.err, HasSubstr("orig"));
  server->Stop();
}

// Root key rollover (RFC 4210 §4.4): the new root key gets a NewWithOld certificate, self-issued
// under the old root's name and signed by the old key, so relying parties that still trust only
// the old root validate chains under the new key.
TEST_F(CeremonyTest, SelfIssuedRolloverCertificateLinksTheNewRootKeyToTheOldRoot) {
  for (const char* k : {"root-old.key", "root-new.key", "ica.key", "sp.key"}) {
    ASSERT_EQ(Shakenctl({"key", "generate", "--key", P(k)}).exit_code, 0) << k;
  }
  for (const char* r : {"root-old", "root-new"}) {
    auto root = Shakenctl({"ca", "init", "--key", P(absl::StrCat(r, ".key")), "--cn",
                           "Rollover STI ROOT", "--org", "Rollover STI-PA", "-o",
                           P(absl::StrCat(r, ".pem"))});
    ASSERT_EQ(root.exit_code, 0) << root.err;
  }
  auto link = Shakenctl({"ca", "self-issue", "--ca-cert", P("root-old.pem"), "--ca-key",
                         P("root-old.key"), "--subject-key", P("root-new.key"), "-o",
                         P("new-with-old.pem")});
  ASSERT_EQ(link.exit_code, 0) << link.err;
  auto text = RunProgram({"openssl", "x509", "-in", P("new-with-old.pem"), "-noout", "-subject",
                          "-issuer", "-pubkey"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("subject=C = US, O = Rollover STI-PA, CN = Rollover STI ROOT"));
  EXPECT_THAT(text.out, HasSubstr("issuer=C = US, O = Rollover STI-PA, CN = Rollover STI ROOT"));
  auto new_pub = RunProgram({"openssl", "x509", "-in", P("root-new.pem"), "-noout", "-pubkey"});
  EXPECT_THAT(text.out, HasSubstr(new_pub.out)) << "the link certifies the new key";
  EXPECT_EQ(Shakenctl({"cert", "check", P("new-with-old.pem")}).exit_code, 0);

  // A leaf under the new key, through an intermediate the new root signed.
  auto ica = Shakenctl({"ca", "issue-intermediate", "--ca-cert", P("root-new.pem"), "--ca-key",
                        P("root-new.key"), "--subject-key", P("ica.key"), "--cn",
                        "Rollover STI-CA", "--org", "Rollover CA", "-o", P("ica.pem")});
  ASSERT_EQ(ica.exit_code, 0) << ica.err;
  ASSERT_EQ(Shakenctl({"csr", "create", "--key", P("sp.key"), "--spc", "709J", "--org",
                       "Rollover Telecom", "-o", P("sp.csr")})
                .exit_code,
            0);
  auto sp = Shakenctl({"ca", "issue", "--ca-cert", P("ica.pem"), "--ca-key", P("ica.key"),
                       "--csr", P("sp.csr"), "--spc", "709J", "-o", P("sp.pem")});
  ASSERT_EQ(sp.exit_code, 0) << sp.err;
  dir_.Write("untrusted.pem", ReadFileOrEmpty(P("ica.pem")) + ReadFileOrEmpty(P("new-with-old.pem")));
  // Trusting only the old root: the chain holds through the link, and not without it.
  auto through = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root-old.pem"),
                             "-untrusted", P("untrusted.pem"), P("sp.pem")});
  EXPECT_EQ(through.exit_code, 0) << through.out << through.err;
  auto without = RunProgram({"openssl", "verify", "-x509_strict", "-CAfile", P("root-old.pem"),
                             "-untrusted", P("ica.pem"), P("sp.pem")});
  EXPECT_NE(without.exit_code, 0) << without.out;

  // Certifying the CA's own key is refused with the reason.
  auto same = Shakenctl({"ca", "self-issue", "--ca-cert", P("root-old.pem"), "--ca-key",
                         P("root-old.key"), "--subject-key", P("root-old.key"), "-o",
                         P("same.pem")});
  EXPECT_NE(same.exit_code, 0);
  EXPECT_THAT(same.err, HasSubstr("binds another key"));
}

}  // namespace
}  // namespace shaken::testing
