// The HTTP server with a real client (libcurl) on loopback: answers from another thread,
// keep-alive, the body limit, drain and stop with a request still unanswered.
#include "http/server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace shaken::http {
namespace {

// EchoHandler answers POST /echo with the body from another thread, holds POST /hold until
// Release, and refuses everything else at the headers.
class EchoHandler : public Handler {
 public:
  std::optional<Response> OnHeaders(const Request& r) override {
    if (r.path == "/echo" || r.path == "/hold") return std::nullopt;
    return Response{.status = 404, .body = "no"};
  }
  Response TooLarge(const Request&, size_t max) override {
    return Response{.status = 413, .body = std::to_string(max)};
  }
  Response Unavailable() override { return Response{.status = 503, .body = "draining"}; }
  void OnRequest(std::unique_ptr<Exchange> ex) override {
    if (ex->request().path == "/hold") {
      absl::MutexLock lock(&mu_);
      held_.push_back(std::move(ex));
      return;
    }
    std::thread([ex = std::move(ex)]() mutable {
      Response r;
      r.headers.push_back({"X-Peer-Known", ex->request().peer.empty() ? "no" : "yes"});
      r.body = ex->request().body;
      ex->Respond(std::move(r));
    }).detach();
  }
  int held() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }

 private:
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Exchange>> held_;
};

size_t Append(char* p, size_t s, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, s * n);
  return s * n;
}

struct Answer {
  long status = 0;
  std::string body;
  long connects = 0;
};

Answer Post(CURL* c, int port, const std::string& path, const std::string& body) {
  Answer a;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &a.connects);
  }
  return a;
}

TEST(HttpServer, AnswersFromAnotherThreadOnOneKeepAliveConnection) {
  EchoHandler h;
  auto server = Server::Start({.address = "127.0.0.1:0", .max_body_bytes = 100}, &h);
  ASSERT_TRUE(server.ok()) << server.status();
  CURL* c = curl_easy_init();
  long connects = 0;
  for (int i = 0; i < 20; ++i) {
    Answer a = Post(c, (*server)->port(), "/echo", "hello " + std::to_string(i));
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.body, "hello " + std::to_string(i));
    connects += a.connects;
  }
  EXPECT_EQ(connects, 1) << "keep-alive: one connection for every request";
  EXPECT_EQ(Post(c, (*server)->port(), "/other", "x").status, 404);
  Answer big = Post(c, (*server)->port(), "/echo", std::string(101, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body, "100");
  EXPECT_EQ(Post(c, (*server)->port(), "/echo", "after").body, "after");
  curl_easy_cleanup(c);
}

TEST(HttpServer, StopAnswersWhatIsStillHeld) {
  EchoHandler h;
  auto server = Server::Start({.address = "127.0.0.1:0"}, &h);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  Answer held;
  std::thread client([&] {
    CURL* c = curl_easy_init();
    held = Post(c, port, "/hold", "x");
    curl_easy_cleanup(c);
  });
  for (int i = 0; i < 500 && h.held() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(h.held(), 1);
  EXPECT_EQ((*server)->in_flight(), 1);
  (*server)->Drain();
  CURL* c = curl_easy_init();
  EXPECT_EQ(Post(c, port, "/echo", "x").status, 503) << "a new request while draining";
  curl_easy_cleanup(c);
  (*server)->Stop(absl::Now() + absl::Milliseconds(200));
  client.join();
  EXPECT_EQ(held.status, 503);
}

// ConnectLoopback opens a TCP connection to 127.0.0.1:`port`; -1 when it cannot.
int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Raw bytes on a socket: what libmicrohttpd answers to what is not HTTP, or too big.
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return "";
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (int i = 0; i < 100; ++i) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

TEST(HttpServer, GarbageAndOversizedHeadersGetAnAnswerAndTheServerGoesOn) {
  EchoHandler h;
  auto server = Server::Start({.address = "127.0.0.1:0", .header_memory_bytes = 8192}, &h);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_EQ(RawExchange(port, "\x16\x03\x01 not http at all\r\n\r\n").substr(0, 12), "HTTP/1.1 400");
  const std::string big = "POST /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') +
                          "\r\nContent-Length: 1\r\n\r\nx";
  const std::string answer = RawExchange(port, big);
  EXPECT_TRUE(answer.substr(0, 12) == "HTTP/1.1 431" || answer.substr(0, 12) == "HTTP/1.1 413")
      << answer.substr(0, 100);
  EXPECT_EQ(RawExchange(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\nok")
                .substr(0, 12),
            "HTTP/1.1 200");
}

// ThreadRecorder notes which server thread took each request.
class ThreadRecorder : public EchoHandler {
 public:
  void OnRequest(std::unique_ptr<Exchange> ex) override {
    {
      absl::MutexLock lock(&mu_);
      threads_.insert(std::this_thread::get_id());
    }
    EchoHandler::OnRequest(std::move(ex));
  }
  size_t threads() {
    absl::MutexLock lock(&mu_);
    return threads_.size();
  }

 private:
  absl::Mutex mu_;
  std::set<std::thread::id> threads_;
};

// EchoOn sends one POST /echo on `fd` and returns what came back until the echoed body, the
// end of the stream or 10 s.
std::string EchoOn(int fd) {
  const std::string request =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return "";
  }
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[512];
  while (got.find("\r\n\r\nhi") == std::string::npos) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// An SBC opens its keep-alive connections together at start-up. They must land on different
// event threads: a thread serves its connections one request at a time, so connections all on
// one thread leave the others idle however busy the SBC is.
TEST(HttpServer, ConnectionsOpenedTogetherAreSpreadOverTheThreads) {
  ThreadRecorder h;
  auto server = Server::Start({.address = "127.0.0.1:0", .threads = 2}, &h);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    fds.push_back(ConnectLoopback((*server)->port()));
    ASSERT_GE(fds.back(), 0);
  }
  for (int fd : fds) {
    const std::string got = EchoOn(fd);
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
    close(fd);
  }
  EXPECT_EQ(h.threads(), 2u);
}

// A connection beyond max_connections is closed at once; those within it are served.
TEST(HttpServer, AConnectionBeyondTheLimitIsClosed) {
  EchoHandler h;
  auto server = Server::Start({.address = "127.0.0.1:0", .max_connections = 2}, &h);
  ASSERT_TRUE(server.ok()) << server.status();
  const int a = ConnectLoopback((*server)->port());
  const int b = ConnectLoopback((*server)->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(EchoOn(a).substr(0, 12), "HTTP/1.1 200");  // both are in before the third comes
  EXPECT_EQ(EchoOn(b).substr(0, 12), "HTTP/1.1 200");
  const int c = ConnectLoopback((*server)->port());
  ASSERT_GE(c, 0);
  EXPECT_EQ(EchoOn(c), "");  // closed without an answer
  close(c);
  EXPECT_EQ(EchoOn(a).substr(0, 12), "HTTP/1.1 200");  // the others go on
  close(a);
  close(b);
}

// An IPv6 listener: the socket the Listener binds serves IPv6 clients, and the peer address
// reaches the handler.
TEST(HttpServer, ServesOnTheIpv6Loopback) {
  EchoHandler h;
  auto server = Server::Start({.address = "[::1]:0"}, &h);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
  const int fd = socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>((*server)->port()));
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string got = EchoOn(fd);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
  EXPECT_NE(got.find("X-Peer-Known: yes"), std::string::npos) << got;
  close(fd);
}

TEST(HttpServer, RefusesAnAddressItCannotUse) {
  EchoHandler h;
  EXPECT_FALSE(Server::Start({.address = "no-port"}, &h).ok());
  EXPECT_FALSE(Server::Start({.address = "192.0.2.1:0"}, &h).ok());
}

}  // namespace
}  // namespace shaken::http
