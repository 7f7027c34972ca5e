#include "daemon/sip/transports.h"

#include <cstdint>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/log.h"

namespace shaken::daemon::sip {

std::string SofiaUrl(const std::string& hostport, const char* transport) {
  const size_t colon = hostport.rfind(':');
  std::string port = hostport.substr(colon + 1);
  if (port == "0") port = "*";  // sofia: any free port
  return absl::StrCat("sip:", hostport.substr(0, colon), ":", port, ";transport=", transport);
}

void WarnIfReceiveBufferCapped(size_t wanted) {
  size_t max = 0;
  std::ifstream("/proc/sys/net/core/rmem_max") >> max;
  if (wanted == 0 || max == 0 || wanted <= max) return;
  std::ifstream status("/proc/self/status");
  constexpr uint64_t kCapNetAdmin = uint64_t{1} << 12;
  for (std::string line; std::getline(status, line);) {
    uint64_t caps = 0;
    if (line.rfind("CapEff:", 0) == 0 && absl::SimpleHexAtoi(line.substr(7), &caps) &&
        (caps & kCapNetAdmin) != 0) {
      return;  // sofia-sip sets it with SO_RCVBUFFORCE
    }
  }
  LogWarn("sip_receive_buffer_capped",
          {{"listen.sip.udp_receive_buffer", absl::StrCat(wanted)},
           {"net.core.rmem_max", absl::StrCat(max)},
           {"fix", "raise net.core.rmem_max (sysctl) to at least udp_receive_buffer"}});
}

}  // namespace shaken::daemon::sip
