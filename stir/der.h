// der.h: the little DER that shakend reads and writes itself (RFC 8226 TNAuthList, the outer
// SEQUENCE of a signed certificate, CSR or CRL). Everything else in X.509 goes through OpenSSL.
#ifndef SHAKEN_STIR_DER_H_
#define SHAKEN_STIR_DER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shaken::stir {

// DerElement is one tag-length-value; `value` points into the input it was read from.
struct DerElement {
  uint8_t tag = 0;
  std::string_view value;
};

// ReadDerElement reads one DER TLV from the front of `in` and advances `in` past it. Low-tag-number
// form only; definite lengths of at most 4 length bytes, minimally encoded. INVALID_ARGUMENT (never
// a crash) on truncation, a high tag number, an indefinite, non-minimal or overlong length.
absl::StatusOr<DerElement> ReadDerElement(std::string_view& in);

// ReadOnlyDerElement reads the single TLV that `in` holds; trailing bytes are an error naming
// `what`.
absl::StatusOr<DerElement> ReadOnlyDerElement(std::string_view in, std::string_view what);

// DerEncode encodes one TLV (definite length, short or long form).
std::string DerEncode(uint8_t tag, std::string_view content);

// DerUnsignedInteger encodes `v` as a minimal non-negative DER INTEGER.
std::string DerUnsignedInteger(uint64_t v);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_DER_H_
