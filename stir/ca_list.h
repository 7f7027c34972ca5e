// ca_list.h: the list of approved STI-CA trust anchors an STI-PA publishes (ATIS-1000080: the VS
// trusts only the roots the STI-PA approves, CE-15), as shakend reads it from
// verifier.ca_list_url: a PEM bundle of CA certificates. The daemon fetches it on a schedule
// with the x5u fetch policy (daemon/ca_list_refresher.h); this file only judges a body.
#ifndef SHAKEN_STIR_CA_LIST_H_
#define SHAKEN_STIR_CA_LIST_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shaken::stir {

struct CaListLimits {
  size_t max_bytes = 1 << 20;
  size_t max_certs = 1000;
};

// CaList is an accepted list.
struct CaList {
  std::string pem;  // the anchors kept, PEM, in list order, duplicates dropped
  // SHA-256 of each kept certificate's DER (lower-case hex) and its subject (RFC 2253), same order.
  std::vector<std::string> fingerprints;
  std::vector<std::string> subjects;
  // Certificates left out because they are outside their validity at `now` ("subject: why").
  std::vector<std::string> dropped;
};

// ParseCaList accepts `body` when it is a PEM bundle (nothing but CERTIFICATE blocks) within
// `limits` whose every certificate is a CA (basicConstraints cA true and, when keyUsage is
// present, keyCertSign); any other certificate refuses the whole list, since a list that carries
// one is not what an STI-PA publishes. Certificates expired or not yet valid at `now` are dropped
// (reported in `dropped`); a list left with no anchor is refused. INVALID_ARGUMENT saying what is
// wrong, naming the certificate by its position and subject.
absl::StatusOr<CaList> ParseCaList(std::string_view body, absl::Time now,
                                   const CaListLimits& limits = {});

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CA_LIST_H_
