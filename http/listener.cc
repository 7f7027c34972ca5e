#include "http/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shaken::http {

absl::StatusOr<std::unique_ptr<Listener>> Listener::Listen(const sockaddr* addr, socklen_t len) {
  const int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  const int on = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (addr->sa_family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(std::strerror(e));
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("eventfd: ", std::strerror(e)));
  }
  const int port = ntohs(bound.ss_family == AF_INET6
                             ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                             : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<Listener>(new Listener(fd, stop_fd, port));
}

Listener::~Listener() {
  Stop();
  close(stop_fd_);
}

void Listener::Start(OnAccept on_accept) {
  thread_ = std::thread([this, on_accept = std::move(on_accept)] { Run(on_accept); });
}

void Listener::Stop() {
  if (fd_ < 0) return;
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  close(fd_);
  fd_ = -1;
}

void Listener::Run(const OnAccept& on_accept) {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      if (Pause()) return;
      continue;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    const int c =
        accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) {
      on_accept(c, reinterpret_cast<const sockaddr*>(&peer), peer_len);
      continue;
    }
    // A connection that went away before it was taken, or none after all: poll again.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
        errno == EPROTO) {
      continue;
    }
    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or anything else: the
    // connection waits in the backlog. Try again in 100 ms rather than spin on a socket that
    // stays readable.
    if (Pause()) return;
  }
}

bool Listener::Pause() const {
  pollfd stop = {stop_fd_, POLLIN, 0};
  return poll(&stop, 1, 100) > 0;
}

}  // namespace shaken::http
