#include "tests/testing/sip_messages.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace shaken::testing {

std::vector<std::string> AllHeaders(const std::string& message, std::string_view name) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(message, absl::ByAnyChar("\r\n"))) {
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)),
                               absl::string_view(name.data(), name.size()))) {
      out.emplace_back(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return out;
}

std::string Header(const std::string& message, std::string_view name) {
  auto all = AllHeaders(message, name);
  return all.empty() ? "" : all.front();
}

std::string Received(int fd, absl::Duration wait) {
  std::string out;
  const absl::Time until = absl::Now() + wait;
  for (int i = 0; i < 1000 && absl::Now() < until; ++i) {
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()));
    if (poll(&p, 1, std::max(ms, 0)) <= 0) break;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int LoopbackUdpSocket(int* port) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
  socklen_t len = sizeof local;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(local.sin_port);
  return fd;
}

bool SendUdp(int fd, int port, std::string_view message) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons(static_cast<uint16_t>(port));
  return sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&to),
                sizeof to) == static_cast<ssize_t>(message.size());
}

std::string UdpRequest(int port, std::string message, absl::Duration wait) {
  int local_port = 0;
  const int fd = LoopbackUdpSocket(&local_port);
  if (fd < 0) return "";
  absl::StrReplaceAll({{"[local_port]", absl::StrCat(local_port)}}, &message);
  SendUdp(fd, port, message);
  // Until the final answer (a UDP datagram holds one whole message) or `wait`.
  std::string answer;
  const absl::Time until = absl::Now() + wait;
  for (int i = 0; i < 100 && absl::Now() < until; ++i) {
    std::string got = Received(fd, std::min(until - absl::Now(), absl::Milliseconds(20)));
    answer += got;
    if (absl::StartsWith(got, "SIP/2.0 ") && !absl::StartsWith(got, "SIP/2.0 1")) break;
  }
  close(fd);
  return answer;
}

bool AnswersOptions(int port) {
  const int64_t n = absl::ToUnixNanos(absl::Now());
  const std::string options = absl::StrCat(
      "OPTIONS sip:127.0.0.1:", port,
      " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:[local_port];branch=z9hG4bK-ready-", n,
      "\r\nMax-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
      "Call-ID: ready-", n, "@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
  return absl::StartsWith(UdpRequest(port, options, absl::Milliseconds(200)), "SIP/2.0 200");
}

}  // namespace shaken::testing
