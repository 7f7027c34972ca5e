#include "stir/fingerprint.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "stir/openssl_util.h"

namespace shaken::stir {

std::string Sha256Fingerprint(std::string_view der) {
  Sha256Digest d = Sha256(der);
  std::string out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) out += ':';
    absl::StrAppend(&out, absl::Hex(d[i], absl::kZeroPad2));
  }
  return absl::AsciiStrToUpper(out);
}

}  // namespace shaken::stir
