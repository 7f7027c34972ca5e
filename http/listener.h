// listener.h: the HTTP server's listening socket and the thread that accepts on it. The server
// hands each accepted connection to libmicrohttpd itself (MHD_add_connection), which places it on
// a worker thread by its descriptor: connections opened together (an SBC opening its pool at
// start-up) are spread over the workers. Left to libmicrohttpd's own accept, one worker takes a
// burst of up to ten connections by itself and the others stay idle.
#ifndef SHAKEN_HTTP_LISTENER_H_
#define SHAKEN_HTTP_LISTENER_H_

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"

namespace shaken::http {

class Listener {
 public:
  // Called on the accepting thread for each connection; it owns `fd` from then on.
  using OnAccept = std::function<void(int fd, const sockaddr* peer, socklen_t peer_len)>;

  // Listen binds `addr` (SO_REUSEADDR; an IPv6 address is IPv6 only) and listens. The error
  // says why (address in use, not an address of this host).
  static absl::StatusOr<std::unique_ptr<Listener>> Listen(const sockaddr* addr, socklen_t len);
  ~Listener();  // Stop()

  int port() const { return port_; }
  // Start accepts on a thread of its own, calling `on_accept` for each connection. Once.
  void Start(OnAccept on_accept);
  // Stop ends the accepting thread (no call to on_accept after it returns) and closes the
  // socket. Idempotent.
  void Stop();

 private:
  Listener(int fd, int stop_fd, int port) : fd_(fd), stop_fd_(stop_fd), port_(port) {}
  void Run(const OnAccept& on_accept);
  // Pause waits 100 ms after an error; true when Stop asked to end meanwhile.
  bool Pause() const;

  int fd_;
  int stop_fd_;  // an eventfd: written by Stop
  int port_;
  std::thread thread_;
};

}  // namespace shaken::http

#endif  // SHAKEN_HTTP_LISTENER_H_
