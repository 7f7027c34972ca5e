// SIP over TLS (listen.sip.tls) end to end: a TLS client on loopback (OpenSSL, as an SBC's TLS
// stack) sends INVITEs to a real shakend whose token is SoftHSM2. With client_ca_file, only a
// client certificate from those CAs gets through the handshake, and the rules' sources still
// decide who may ask; the files are checked at start-up, naming the one that is wrong.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/sip/transports.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/sip_messages.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Invite is an INVITE to sign (attestation A), sent over TLS from `local`.
std::string Invite(const std::string& local, int n) {
  return absl::StrCat(
      "INVITE sip:+12155550131@127.0.0.1;user=phone SIP/2.0\r\n"
      "Via: SIP/2.0/TLS ", local, ";branch=z9hG4bK-tls-", n, "\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:+12155550121@", local, ";user=phone>;tag=t", n, "\r\n"
      "To: <sip:+12155550131@127.0.0.1;user=phone>\r\n"
      "Call-ID: tls-", n, "@shakend.test\r\n"
      "CSeq: 1 INVITE\r\n"
      "Contact: <sips:sbc@", local, ">\r\n"
      "Attestation-Info: A\r\n"
      "Content-Length: 0\r\n\r\n");
}

struct TlsResult {
  bool handshake = false;
  std::string answer;  // the first final answer ("" when none came)
};

// TlsInvite connects from `source` (a 127.0.0.0/8 address) to 127.0.0.1:`port`, handshakes
// trusting `ca_file` (and presenting `cert_file` / `key_file` when not empty), sends an INVITE and
// reads until a final answer, the connection's end or 5 s.
TlsResult TlsInvite(int port, const std::string& ca_file, const std::string& cert_file,
                    const std::string& key_file, const std::string& source = "127.0.0.1") {
  static int n = 0;
  TlsResult out;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (ctx == nullptr || SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    ADD_FAILURE() << "cannot set up the TLS client";
    return out;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!cert_file.empty() &&
      (SSL_CTX_use_certificate_file(ctx.get(), cert_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    ADD_FAILURE() << "cannot load " << cert_file;
    return out;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port;
    return out;
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set1_host(ssl.get(), "localhost");
  out.handshake = SSL_connect(ssl.get()) == 1;
  if (out.handshake) {
    const std::string invite = Invite(absl::StrCat(source, ":", ntohs(local.sin_port)), ++n);
    out.handshake = SSL_write(ssl.get(), invite.data(), static_cast<int>(invite.size())) > 0;
  }
  // TLS 1.3: a refused client certificate shows on the first read, not in SSL_connect.
  std::string received;
  char buf[4096];
  while (out.handshake) {
    const int got = SSL_read(ssl.get(), buf, sizeof buf);
    if (got <= 0) break;
    received.append(buf, static_cast<size_t>(got));
    // Answers carry no body here: each ends at its blank line.
    size_t start = 0;
    for (size_t end; (end = received.find("\r\n\r\n", start)) != std::string::npos;
         start = end + 4) {
      std::string answer = received.substr(start, end + 4 - start);
      if (!absl::StartsWith(answer, "SIP/2.0 1")) {
        out.answer = std::move(answer);
        break;
      }
    }
    if (!out.answer.empty()) break;
  }
  if (out.answer.empty() && received.empty()) out.handshake = false;
  ERR_clear_error();
  close(fd);
  return out;
}

class SipTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create({
        .sip_listener = true,
        .clients_extra_yaml = "  - {identity: sbc-sip, methods: [Sign, Verify], "
                              "profiles: [token], sources: [127.0.0.1/32]}\n",
    });
    ASSERT_OK(env);
    env_ = env->release();
    ASSERT_GT(env_->daemon().sip_tls_port(), 0);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  static TlsResult Invite(const std::string& client, const std::string& source = "127.0.0.1") {
    return TlsInvite(env_->daemon().sip_tls_port(), env_->TlsCaFile(),
                     client.empty() ? "" : env_->ClientCertFile(client),
                     client.empty() ? "" : env_->ClientKeyFile(client), source);
  }
  static DaemonEnv* env_;
};
DaemonEnv* SipTlsTest::env_ = nullptr;

TEST_F(SipTlsTest, InviteFromATrustedClientIsSignedInA302) {
  TlsResult r = Invite("sbc1.test");
  ASSERT_TRUE(r.handshake);
  ASSERT_THAT(r.answer, StartsWith("SIP/2.0 302"));
  EXPECT_THAT(Header(r.answer, "Contact"), HasSubstr("<sip:+12155550131@127.0.0.1"));
  EXPECT_THAT(Header(r.answer, "Identity"),
              HasSubstr(";info=<" + env_->token_x5u() + ">;alg=ES256;ppt=shaken"));
  // The same connection's transport is TLS end to end: the Via names it.
  EXPECT_THAT(Header(r.answer, "Via"), StartsWith("SIP/2.0/TLS"));
}

TEST_F(SipTlsTest, ClientWithoutACertificateIsRefusedInTheHandshake) {
  TlsResult r = Invite("");
  EXPECT_FALSE(r.handshake);
  EXPECT_EQ(r.answer, "");
}

TEST_F(SipTlsTest, ClientCertificateFromAnotherCaIsRefusedInTheHandshake) {
  TlsResult r = Invite("rogue.test");
  EXPECT_FALSE(r.handshake);
  EXPECT_EQ(r.answer, "");
}

TEST_F(SipTlsTest, TrustedCertificateFromASourceOutsideTheRulesGets403) {
  // The certificate authenticates the connection; the rules' sources still authorize it.
  TlsResult r = Invite("sbc1.test", "127.0.0.2");
  ASSERT_TRUE(r.handshake);
  EXPECT_THAT(r.answer, StartsWith("SIP/2.0 403"));
  EXPECT_EQ(Header(r.answer, "Identity"), "");
}

TEST_F(SipTlsTest, StalledHandshakesDoNotStopTheListener) {
  // Connections that never finish a handshake (silent, or half a ClientHello) wait on the SIP
  // thread's event loop without blocking it: a well-behaved SBC is served meanwhile.
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(env_->daemon().sip_tls_port()));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  std::vector<int> stalled;
  for (int i = 0; i < 8; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    if (i % 2 == 1) {
      const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};  // 7 of 517
      ASSERT_EQ(write(fd, partial, sizeof partial), static_cast<ssize_t>(sizeof partial));
    }
    stalled.push_back(fd);
  }
  TlsResult r = Invite("sbc1.test");
  EXPECT_THAT(r.answer, StartsWith("SIP/2.0 302"));
  EXPECT_TRUE(AnswersOptions(env_->daemon().sip_udp_port()));
  for (int fd : stalled) close(fd);
}

TEST_F(SipTlsTest, UdpBesideTlsStillServes) {
  EXPECT_TRUE(AnswersOptions(env_->daemon().sip_udp_port()));
}

// The files are checked before the listener exists: a mistake names the file, and the private
// directory sofia-sip reads them from is gone afterwards.
TEST(SipTlsFilesTest, KeyOfAnotherCertificateIsAStartUpErrorNamingTheFile) {
  auto env = DaemonEnv::Create({.start_daemon = false});
  ASSERT_OK(env);
  const std::string& d = (*env)->dir();
  daemon::TlsConfig tls{.cert_file = d + "/server.pem", .key_file = d + "/sbc1.test.key"};
  auto dir = daemon::sip::TlsFileDirectory::Create(tls);
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(std::string(dir.status().message()),
              HasSubstr("listen.sip.tls.key_file: " + d + "/sbc1.test.key: is not the key of"));

  tls.key_file = d + "/server.key";
  tls.client_ca_file = d + "/server.key";  // a key, not a CA certificate
  dir = daemon::sip::TlsFileDirectory::Create(tls);
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(std::string(dir.status().message()), HasSubstr("listen.sip.tls.client_ca_file"));

  tls.client_ca_file = d + "/tls-ca.pem";
  dir = daemon::sip::TlsFileDirectory::Create(tls);
  ASSERT_OK(dir);
  const std::string path = (*dir)->path();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((path + "/agent.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(std::filesystem::exists(path + "/cafile.pem"));
  dir->reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace shaken::testing
