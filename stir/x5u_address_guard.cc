// x5u_address_guard.cc: the address half of the x5u policy declared in x5u_fetcher.h: the SSRF
// guard (IsBlockedAddress, IsBlockedIp), allowed-address lists (ParseCidr) and the judgement the
// fetcher applies to every address it is about to connect to (IsAddressAllowed, IsIpAllowed).
// The URL half (CheckX5uUrl) and the transfer are in x5u_fetcher.cc.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {
namespace {

bool InV4(uint32_t addr, uint32_t net, int bits) {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (addr & mask) == (net & mask);
}

uint32_t V4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

// BlockedV4 takes a host-order IPv4 address.
bool BlockedV4(uint32_t a) {
  return InV4(a, V4(0, 0, 0, 0), 8) ||        // "this network", unspecified
         InV4(a, V4(10, 0, 0, 0), 8) ||       // RFC 1918
         InV4(a, V4(100, 64, 0, 0), 10) ||    // CGNAT (RFC 6598)
         InV4(a, V4(127, 0, 0, 0), 8) ||      // loopback
         InV4(a, V4(169, 254, 0, 0), 16) ||   // link-local
         InV4(a, V4(172, 16, 0, 0), 12) ||    // RFC 1918
         InV4(a, V4(192, 0, 0, 0), 24) ||     // IETF protocol assignments
         InV4(a, V4(192, 0, 2, 0), 24) ||     // TEST-NET-1
         InV4(a, V4(192, 168, 0, 0), 16) ||   // RFC 1918
         InV4(a, V4(198, 18, 0, 0), 15) ||    // benchmarking
         InV4(a, V4(198, 51, 100, 0), 24) ||  // TEST-NET-2
         InV4(a, V4(203, 0, 113, 0), 24) ||   // TEST-NET-3
         InV4(a, V4(224, 0, 0, 0), 4) ||      // multicast
         InV4(a, V4(240, 0, 0, 0), 4);        // reserved, broadcast
}

bool BlockedV6(const in6_addr& addr) {
  const uint8_t* b = addr.s6_addr;
  auto embedded_v4 = [&](int offset) {
    return (uint32_t(b[offset]) << 24) | (uint32_t(b[offset + 1]) << 16) |
           (uint32_t(b[offset + 2]) << 8) | uint32_t(b[offset + 3]);
  };
  static const uint8_t kZero[16] = {};
  if (std::memcmp(b, kZero, 16) == 0) return true;                                // ::
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return true;                  // ::1
  if ((b[0] & 0xFE) == 0xFC) return true;                                         // fc00::/7 ULA
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return true;                         // fe80::/10
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return true;                         // fec0::/10
  if (b[0] == 0xFF) return true;                                                  // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8) return true;  // doc
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::memcmp(b, kMapped, 12) == 0) return BlockedV4(embedded_v4(12));  // ::ffff:a.b.c.d
  if (std::memcmp(b, kZero, 12) == 0) return BlockedV4(embedded_v4(12));    // ::a.b.c.d
  static const uint8_t kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kNat64, 12) == 0) return BlockedV4(embedded_v4(12));  // 64:ff9b::/96
  return false;
}

}  // namespace

bool IsBlockedAddress(const struct sockaddr* addr) {
  if (addr == nullptr) return true;
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return BlockedV4(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    return BlockedV6(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr);
  }
  return true;
}

bool IsBlockedIp(std::string_view ip) {
  std::string text(ip);
  sockaddr_in v4 = {};
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return IsBlockedAddress(reinterpret_cast<const sockaddr*>(&v4));
  }
  sockaddr_in6 v6 = {};
  if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return IsBlockedAddress(reinterpret_cast<const sockaddr*>(&v6));
  }
  return true;
}

namespace {

// Judged is an address as the SSRF policy sees it: IPv4 (also when embedded in IPv6) or IPv6.
struct Judged {
  int family = 0;
  uint32_t v4 = 0;  // host order
  const uint8_t* v6 = nullptr;
};

Judged Judge(const struct sockaddr* addr) {
  Judged j;
  if (addr == nullptr) return j;
  if (addr->sa_family == AF_INET) {
    j.family = AF_INET;
    j.v4 = ntohl(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr.s_addr);
    return j;
  }
  if (addr->sa_family != AF_INET6) return j;
  const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr;
  static const uint8_t kZero[12] = {};
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static const uint8_t kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  const bool zero_or_one = std::memcmp(b, kZero, 12) == 0 && b[12] == 0 && b[13] == 0 &&
                           b[14] == 0 && b[15] <= 1;  // :: and ::1 are IPv6, not ::0.0.0.x
  if (!zero_or_one && (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kZero, 12) == 0 ||
                       std::memcmp(b, kNat64, 12) == 0)) {
    j.family = AF_INET;
    j.v4 = (uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15];
    return j;
  }
  j.family = AF_INET6;
  j.v6 = b;
  return j;
}

bool NeverAllowed(const Judged& a) {
  if (a.family == AF_INET) {
    return InV4(a.v4, V4(0, 0, 0, 0), 8) ||              // unspecified, "this network"
           InV4(a.v4, V4(169, 254, 0, 0), 16) ||         // link-local, cloud metadata
           InV4(a.v4, V4(100, 100, 100, 200), 32) ||     // Alibaba Cloud metadata (CGNAT)
           InV4(a.v4, V4(224, 0, 0, 0), 4) ||            // multicast
           a.v4 == V4(255, 255, 255, 255);               // limited broadcast
  }
  const uint8_t* b = a.v6;
  static const uint8_t kZero[16] = {};
  static const uint8_t kAwsMetadata[16] = {0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0,
                                           0,    0,    0,    0,    0, 0, 0x02, 0x54};
  return std::memcmp(b, kZero, 16) == 0 ||                 // ::
         (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) ||        // fe80::/10 link-local
         b[0] == 0xFF ||                                   // multicast
         std::memcmp(b, kAwsMetadata, 16) == 0;            // fd00:ec2::254
}

bool IsLoopback(const Judged& a) {
  if (a.family == AF_INET) return InV4(a.v4, V4(127, 0, 0, 0), 8);
  static const uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a.v6, kOne, 16) == 0;
}

bool InCidr(const Judged& a, const IpCidr& c) {
  if (a.family != c.family) return false;
  uint8_t bytes[16] = {};
  size_t n = 4;
  if (a.family == AF_INET) {
    bytes[0] = a.v4 >> 24, bytes[1] = a.v4 >> 16, bytes[2] = a.v4 >> 8, bytes[3] = a.v4;
  } else {
    std::memcpy(bytes, a.v6, 16);
    n = 16;
  }
  int bits = c.prefix_length;
  for (size_t i = 0; i < n && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xFF : static_cast<uint8_t>(0xFF << (8 - bits));
    if ((bytes[i] & mask) != (c.address[i] & mask)) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<IpCidr> ParseCidr(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string ip(text.substr(0, slash));
  IpCidr c;
  if (inet_pton(AF_INET, ip.c_str(), c.address.data()) == 1) {
    c.family = AF_INET;
    c.prefix_length = 32;
  } else if (inet_pton(AF_INET6, ip.c_str(), c.address.data()) == 1) {
    c.family = AF_INET6;
    c.prefix_length = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", ip, "\" is not an IPv4 or IPv6 address (want a CIDR such as 10.0.0.0/8)"));
  }
  if (slash != std::string_view::npos) {
    int n = -1;
    const std::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 || !absl::SimpleAtoi(absl::string_view(len.data(), len.size()), &n) ||
        n < 0 || n > c.prefix_length) {
      return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text),
                                                     "\": the prefix length must be 0..",
                                                     c.prefix_length));
    }
    c.prefix_length = n;
  }
  const size_t bytes = c.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < bytes; ++i) {
    const int first_bit = static_cast<int>(i) * 8;
    const uint8_t host_mask = c.prefix_length >= first_bit + 8 ? 0
                              : c.prefix_length <= first_bit
                                  ? 0xFF
                                  : static_cast<uint8_t>(0xFF >> (c.prefix_length - first_bit));
    if ((c.address[i] & host_mask) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", std::string(text), "\" has host bits set; write the network address"));
    }
  }
  return c;
}

bool IsAddressAllowed(const struct sockaddr* addr, const X5uPolicy& options) {
  const Judged a = Judge(addr);
  if (a.family == 0 || NeverAllowed(a)) return false;
  const bool listed = std::any_of(options.allow_cidrs.begin(), options.allow_cidrs.end(),
                                  [&](const IpCidr& c) { return InCidr(a, c); });
  if (IsLoopback(a)) return options.allow_private_addresses || listed;
  if (IsBlockedAddress(addr)) return listed;
  return true;
}

bool IsIpAllowed(std::string_view ip, const X5uPolicy& options) {
  const std::string text(ip);
  sockaddr_in v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return IsAddressAllowed(reinterpret_cast<const sockaddr*>(&v4), options);
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return IsAddressAllowed(reinterpret_cast<const sockaddr*>(&v6), options);
  }
  return false;
}

}  // namespace shaken::stir
