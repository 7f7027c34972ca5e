// sip_messages.h: small helpers for tests that talk SIP to a server on loopback (shakend's
// redirect server, Kamailio): header values of a received message, what arrives on a UDP socket,
// one request over UDP, and "is it up yet". Not a SIP parser: header lines are split as text,
// which is enough for the messages the tests themselves provoke.
#ifndef SHAKEN_TESTS_TESTING_SIP_MESSAGES_H_
#define SHAKEN_TESTS_TESTING_SIP_MESSAGES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace shaken::testing {

// AllHeaders returns every value of header `name` (case-insensitive) in `message`, in order;
// Header the first one ("" when absent).
std::vector<std::string> AllHeaders(const std::string& message, std::string_view name);
std::string Header(const std::string& message, std::string_view name);

// Received reads what arrives on `fd` within `wait` (nothing: "").
std::string Received(int fd, absl::Duration wait);

// LoopbackUdpSocket: a UDP socket bound to an ephemeral 127.0.0.1 port, which *port receives
// (-1 when it cannot be made). SendUdp sends `message` in one datagram to 127.0.0.1:`port`.
int LoopbackUdpSocket(int* port);
bool SendUdp(int fd, int port, std::string_view message);

// UdpRequest sends `message` in one datagram from an ephemeral 127.0.0.1 port to 127.0.0.1:`port`
// and returns what comes back until a final (non-1xx) answer arrives or `wait` passes.
// "[local_port]" in `message` is replaced by the port it is sent from (for the Via header).
std::string UdpRequest(int port, std::string message, absl::Duration wait);

// AnswersOptions tells whether a SIP server on UDP 127.0.0.1:`port` answers an OPTIONS with 200
// within 200 ms.
bool AnswersOptions(int port);

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_SIP_MESSAGES_H_
