// transports.h: what listen.sip's transports need besides the SIP stack: the URL sofia-sip binds
// for a configured address, the UDP receive buffer check, and SIP over TLS's files. No sofia-sip
// type here: redirect_server.cc includes sofia's headers after its own
// definitions of the callback "magic" types.
#ifndef SHAKEN_DAEMON_SIP_TRANSPORTS_H_
#define SHAKEN_DAEMON_SIP_TRANSPORTS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/config.h"

namespace shaken::daemon::sip {

// SofiaUrl turns a listen.sip address ("127.0.0.1:5060", "[::1]:0") into the URL sofia binds;
// `transport` is "udp", "tcp" or "tls" (a sips: URL).
std::string SofiaUrl(const std::string& hostport, const char* transport);

// WarnIfReceiveBufferCapped: Linux caps SO_RCVBUF at net.core.rmem_max for a process without
// CAP_NET_ADMIN, silently; say so at start-up, since the smaller buffer drops INVITE bursts.
void WarnIfReceiveBufferCapped(size_t wanted);

// CheckTlsFiles checks listen.sip.tls's files as start-up does (TlsFileDirectory::Create):
// INVALID_ARGUMENT naming the setting and the file when the certificate or key does not parse,
// the key is not the certificate's or is encrypted, or the client CA file holds no certificate.
// For `shakend --check-config`.
absl::Status CheckTlsFiles(const TlsConfig& tls);

// TlsFileDirectory holds listen.sip.tls's certificate, key and client CAs laid out as sofia-sip
// 1.12's TLS transport reads them: a directory with agent.pem (certificate and key in one file)
// and cafile.pem. The directory is private (0700, files 0600) and is removed with the object:
// keep it only until the transport is bound (the TLS context has read the files by then).
class TlsFileDirectory {
 public:
  // Create checks the files first, so that a mistake is a start-up error naming the file rather
  // than a TLS listener without a certificate (sofia-sip only logs it): the certificate and key
  // must parse and match, the client CA file (when set) must hold at least one certificate. The
  // directory goes under $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), else $TMPDIR, else
  // /tmp.
  static absl::StatusOr<std::unique_ptr<TlsFileDirectory>> Create(const TlsConfig& tls);
  ~TlsFileDirectory();
  TlsFileDirectory(const TlsFileDirectory&) = delete;
  TlsFileDirectory& operator=(const TlsFileDirectory&) = delete;

  const std::string& path() const { return path_; }

 private:
  explicit TlsFileDirectory(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace shaken::daemon::sip

#endif  // SHAKEN_DAEMON_SIP_TRANSPORTS_H_
