// pem_chain.h: the x5u body (RFC 8224 §9, ATIS-1000080 §5.3.1): a PEM certificate chain, leaf
// first, read strictly because it comes from the network.
#ifndef SHAKEN_STIR_PEM_CHAIN_H_
#define SHAKEN_STIR_PEM_CHAIN_H_

#include <cstddef>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "stir/openssl_util.h"

namespace shaken::stir {

// ParsePemChain parses a PEM certificate chain (leaf first). Fails (INVALID_ARGUMENT) on empty
// input, a body over max_bytes, text outside BEGIN/END CERTIFICATE blocks other than whitespace,
// a block that does not decode to exactly one DER certificate, or more than max_certs
// certificates.
absl::StatusOr<std::vector<X509Ptr>> ParsePemChain(std::string_view pem, size_t max_certs = 8,
                                                   size_t max_bytes = 64 * 1024);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_PEM_CHAIN_H_
