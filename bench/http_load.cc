#include "bench/http_load.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace shaken::bench {
namespace {

struct HttpConn {
  int fd = -1;
  std::string in;
  int64_t start_ns = 0;
  bool busy = false;
};

}  // namespace

LatencyRecorder RunHttp(const std::string& name, int port, const std::string& request, int conns,
                 double seconds) {
  LatencyRecorder rec(name);
  int ep = epoll_create1(0);
  std::vector<HttpConn> cs(conns);
  for (int i = 0; i < conns; ++i) {
    cs[i].fd = ConnectLoopback(port);
    if (cs[i].fd < 0) Die("cannot connect to secsipidx");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  uint64_t in_window = 0;
  int busy = 0;
  auto send_one = [&](HttpConn& c) {
    c.start_ns = NowNs();
    c.busy = true;
    ++busy;
    if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      Die("secsipidx: short send");
    }
  };
  for (auto& c : cs) send_one(c);
  std::vector<epoll_event> evs(conns);
  char buf[8192];
  while (busy > 0 && NowNs() < end + kDrainNs) {
    int n = epoll_wait(ep, evs.data(), conns, 100);
    for (int k = 0; k < n; ++k) {
      HttpConn& c = cs[evs[k].data.u32];
      ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
      if (r <= 0) Die("secsipidx closed a keep-alive connection");
      c.in.append(buf, static_cast<size_t>(r));
      size_t hdr = c.in.find("\r\n\r\n");
      if (hdr == std::string::npos) continue;
      size_t cl = c.in.find("Content-Length: ");
      if (cl == std::string::npos || cl > hdr) Die("secsipidx: response without Content-Length");
      size_t body_len = std::strtoul(c.in.c_str() + cl + 16, nullptr, 10);
      if (c.in.size() < hdr + 4 + body_len) continue;
      const int64_t t = NowNs();
      if (c.in.compare(0, 12, "HTTP/1.1 200") == 0 && c.in.compare(hdr + 4, 3, "eyJ") == 0) {
        rec.Add(t - c.start_ns);
        if (t <= end) ++in_window;
      } else {
        rec.Error(c.in.substr(0, std::min<size_t>(c.in.size(), 120)));
      }
      c.in.erase(0, hdr + 4 + body_len);
      c.busy = false;
      --busy;
      if (t < end) send_one(c);
    }
  }
  for (auto& c : cs) close(c.fd);
  close(ep);
  rec.SetWindow(in_window, end - t0);
  return rec;
}

}  // namespace shaken::bench
