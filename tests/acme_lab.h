// acme_lab.h: the lab of the ACME tests: a SoftHSM2 token holding the SP's ACME account key and
// SHAKEN key, an STI PKI (root, intermediate) and an STI-PA PKI (root, token-signing
// certificate) made with shakenctl, the PA certificate published over HTTPS on loopback
// (tests/testing/https_server.h), and `shakenctl ca serve` run as a child process on 127.0.0.1
// with its SQLite state in the lab directory. Every wait is bounded.
#ifndef SHAKEN_TESTS_ACME_LAB_H_
#define SHAKEN_TESTS_ACME_LAB_H_

#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/cli_test_support.h"
#include "tests/testing/https_server.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {

class AcmeLab {
 public:
  // Create builds the whole lab; nullptr (with the failure added to the test) when a step fails.
  static std::unique_ptr<AcmeLab> Create() {
    std::unique_ptr<AcmeLab> lab(new AcmeLab());
    if (!lab->Build()) return nullptr;
    return lab;
  }

  std::string P(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Pin() const { return "file:" + token_->pin_file(); }
  std::string AccountKey() const { return token_->KeyUri("acme-account", "acme-sp"); }
  std::string SpKey() const { return token_->KeyUri("sp-2026", "acme-sp"); }
  std::string TokenKey(const std::string& label) const { return token_->KeyUri(label, "acme-sp"); }
  std::string PaX5u() const { return absl::StrCat("https://127.0.0.1:", web_->port(), "/pa.pem"); }
  HttpsServer& web() { return *web_; }
  int web_port() const { return web_->port(); }

  // StartCa runs `shakenctl ca serve` on `port` (0: any) with the lab's CA, state file and PA
  // anchors plus `extra` flags, and waits (10 s at most) for its port file.
  bool StartCa(int port = 0, std::vector<std::string> extra = {}) {
    std::remove(P("ca.port").c_str());
    std::vector<std::string> argv = {SHAKENCTL_PATH,
                                     "ca",
                                     "serve",
                                     "--listen",
                                     absl::StrCat("127.0.0.1:", port),
                                     "--port-file",
                                     P("ca.port"),
                                     "--tls-cert",
                                     P("tls.pem"),
                                     "--tls-key",
                                     P("tls.key"),
                                     "--ca-cert",
                                     P("ica.pem"),
                                     "--ca-key",
                                     P("ica.key"),
                                     "--state",
                                     P("acme.db"),
                                     "--pa-trust",
                                     P("pa-root.pem"),
                                     "--x5u-tls-ca-file",
                                     P("tls-ca.pem"),
                                     "--allow-private-x5u",
                                     "--crl-url",
                                     "http://crl.lab.test/sti.crl"};
    // A flag in `extra` replaces the default one (its value follows it).
    for (size_t i = 0; i + 1 < extra.size(); ++i) {
      for (size_t j = 3; j + 1 < argv.size(); ++j) {
        if (argv[j] == extra[i] && argv[j].rfind("--", 0) == 0) {
          argv.erase(argv.begin() + j, argv.begin() + j + 2);
          break;
        }
      }
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = Child::Start(argv, P("ca.log"));
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return false;
    }
    ca_.emplace(*std::move(child));
    for (int i = 0; i < 200; ++i) {
      std::string text = ReadFileOrEmpty(P("ca.port"));
      if (!text.empty() && text.back() == '\n') {
        ca_port_ = std::stoi(text);
        return true;
      }
      if (ca_->Wait(absl::Milliseconds(50)).has_value()) break;
    }
    ADD_FAILURE() << "ca serve did not start: " << ca_->Log();
    return false;
  }
  // StopCa ends the CA: SIGKILL (a crash: nothing flushed at exit) or SIGTERM.
  void StopCa(int sig = SIGTERM) {
    if (!ca_.has_value()) return;
    ca_->Signal(sig);
    EXPECT_TRUE(ca_->Wait(absl::Seconds(10)).has_value());
    ca_.reset();
  }
  int ca_port() const { return ca_port_; }
  std::string Directory() const {
    return absl::StrCat("https://127.0.0.1:", ca_port_, "/acme/directory");
  }
  std::string CaLog() const { return ca_.has_value() ? ca_->Log() : ""; }

  // PaToken runs `shakenctl pa token` for `spc` and `account_key` (a key or its public half);
  // `extra` adds flags. Returns the token file.
  std::string PaToken(const std::string& name, const std::string& spc,
                      const std::string& account_key, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"pa",           "token", "--key", P("pa.key"),     "--x5u",
                                     PaX5u(),        "--spc", spc,     "--account-key", account_key,
                                     "--pin-source", Pin(),   "-o",    P(name),         "--force"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = Shakenctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.output();
    return P(name);
  }

  // Order runs `shakenctl acme order` with the token keys against the running CA.
  RunResult Order(const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"acme",
                                     "order",
                                     "--directory",
                                     Directory(),
                                     "--tls-ca-file",
                                     P("tls-ca.pem"),
                                     "--account-key",
                                     AccountKey(),
                                     "--key",
                                     SpKey(),
                                     "--pin-source",
                                     Pin(),
                                     "--org",
                                     "Lab Telecom",
                                     "--ca-file",
                                     P("root.pem"),
                                     "-o",
                                     out,
                                     "--poll-timeout",
                                     "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Shakenctl(args);
  }

 private:
  AcmeLab() = default;

  bool Run(std::vector<std::string> args) {
    RunResult r = Shakenctl(args);
    if (r.exit_code != 0) ADD_FAILURE() << absl::StrJoin(args, " ") << ": " << r.output();
    return r.exit_code == 0;
  }

  bool Build() {
    auto t = SoftHsmToken::Create({"acme-sp"});
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return false;
    }
    token_ = *std::move(t);
    const absl::Time now = absl::Now();
    auto tls = TlsServerPki::Create(now);
    if (!tls.ok()) {
      ADD_FAILURE() << tls.status();
      return false;
    }
    dir_.Write("tls.pem", tls->server.cert_pem);
    dir_.Write("tls.key", tls->server.key_pem);
    dir_.Write("tls-ca.pem", tls->ca.cert_pem);
    const bool ok =
        Run({"key", "generate", "--key", P("root.key")}) &&
        Run({"ca", "init", "--key", P("root.key"), "--cn", "Lab STI ROOT", "--org", "Lab STI-PA",
             "-o", P("root.pem")}) &&
        Run({"key", "generate", "--key", P("ica.key")}) &&
        Run({"ca", "issue-intermediate", "--ca-cert", P("root.pem"), "--ca-key", P("root.key"),
             "--subject-key", P("ica.key"), "--cn", "Lab STI-CA", "--org", "Lab STI-CA",
             // path length 1: this STI-CA also certifies SP-CAs (RFC 9060, DL-4)
             "--path-len", "1", "--crl-url", "http://crl.lab.test/root.crl", "-o", P("ica.pem")}) &&
        Run({"key", "generate", "--key", P("pa-root.key")}) &&
        Run({"ca", "init", "--key", P("pa-root.key"), "--cn", "Lab STI-PA ROOT", "--org",
             "Lab STI-PA", "-o", P("pa-root.pem")}) &&
        Run({"key", "generate", "--key", P("pa.key")}) &&
        Run({"ca", "issue-intermediate", "--ca-cert", P("pa-root.pem"), "--ca-key",
             P("pa-root.key"), "--subject-key", P("pa.key"), "--cn", "Lab STI-PA tokens", "--org",
             "Lab STI-PA", "-o", P("pa.pem")}) &&
        Run({"key", "generate", "--key", AccountKey(), "--pin-source", Pin()}) &&
        Run({"key", "generate", "--key", SpKey(), "--pin-source", Pin()});
    if (!ok) return false;
    auto web =
        HttpsServer::Start({.cert_pem = tls->server.cert_pem, .key_pem = tls->server.key_pem});
    if (!web.ok()) {
      ADD_FAILURE() << web.status();
      return false;
    }
    web_ = *std::move(web);
    web_->SetRoute("/pa.pem", {.headers = {{"Content-Type", "application/pem-certificate-chain"}},
                               .body = ReadFileOrEmpty(P("pa.pem"))});
    return true;
  }

  TempDir dir_;
  std::unique_ptr<SoftHsmToken> token_;
  std::unique_ptr<HttpsServer> web_;
  std::optional<Child> ca_;
  int ca_port_ = 0;
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_ACME_LAB_H_
