// transports.h: what listen.sip's transports need besides the SIP stack: the URL sofia-sip binds
// for a configured address, and the UDP receive buffer check. No sofia-sip type here:
// redirect_server.cc includes sofia's headers after its own definitions of the callback "magic"
// types.
#ifndef SHAKEN_DAEMON_SIP_TRANSPORTS_H_
#define SHAKEN_DAEMON_SIP_TRANSPORTS_H_

#include <cstddef>
#include <string>

namespace shaken::daemon::sip {

// SofiaUrl turns a listen.sip address ("127.0.0.1:5060", "[::1]:0") into the URL sofia binds;
// `transport` is "udp" or "tcp".
std::string SofiaUrl(const std::string& hostport, const char* transport);

// WarnIfReceiveBufferCapped: Linux caps SO_RCVBUF at net.core.rmem_max for a process without
// CAP_NET_ADMIN, silently; say so at start-up, since the smaller buffer drops INVITE bursts.
void WarnIfReceiveBufferCapped(size_t wanted);

}  // namespace shaken::daemon::sip

#endif  // SHAKEN_DAEMON_SIP_TRANSPORTS_H_
