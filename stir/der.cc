#include "stir/der.h"

#include "absl/strings/str_cat.h"
#include "stir/status_macros.h"

namespace shaken::stir {

absl::StatusOr<DerElement> ReadDerElement(std::string_view& in) {
  if (in.size() < 2) return absl::InvalidArgumentError("truncated DER element");
  DerElement tlv;
  tlv.tag = static_cast<uint8_t>(in[0]);
  if ((tlv.tag & 0x1F) == 0x1F) return absl::InvalidArgumentError("high-tag-number DER tag");
  size_t pos = 1;
  uint8_t first = static_cast<uint8_t>(in[pos++]);
  size_t length = 0;
  if (first < 0x80) {
    length = first;
  } else {
    size_t n = first & 0x7F;
    if (n == 0) return absl::InvalidArgumentError("indefinite DER length");
    if (n > 4) return absl::InvalidArgumentError("DER length too large");
    if (in.size() - pos < n) return absl::InvalidArgumentError("truncated DER length");
    for (size_t i = 0; i < n; ++i) length = (length << 8) | static_cast<uint8_t>(in[pos++]);
    if (length < 0x80 || (n > 1 && (length >> (8 * (n - 1))) == 0)) {
      return absl::InvalidArgumentError("non-minimal DER length");
    }
  }
  if (length > in.size() - pos) {
    return absl::InvalidArgumentError(
        absl::StrCat("DER length ", length, " exceeds the ", in.size() - pos, " bytes left"));
  }
  tlv.value = in.substr(pos, length);
  in.remove_prefix(pos + length);
  return tlv;
}

absl::StatusOr<DerElement> ReadOnlyDerElement(std::string_view in, std::string_view what) {
  ASSIGN_OR_RETURN(DerElement tlv, ReadDerElement(in));
  if (!in.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("trailing bytes after ", absl::string_view(what.data(), what.size())));
  return tlv;
}

std::string DerEncode(uint8_t tag, std::string_view content) {
  std::string out(1, static_cast<char>(tag));
  size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<char>(n));
  } else {
    std::string len;
    for (; n != 0; n >>= 8) len.insert(len.begin(), static_cast<char>(n & 0xff));
    out.push_back(static_cast<char>(0x80 | len.size()));
    out += len;
  }
  out.append(content);
  return out;
}

std::string DerUnsignedInteger(uint64_t v) {
  std::string content;
  do {
    content.insert(content.begin(), static_cast<char>(v & 0xff));
    v >>= 8;
  } while (v != 0);
  if (static_cast<unsigned char>(content[0]) & 0x80) content.insert(content.begin(), '\0');
  return DerEncode(0x02, content);
}

}  // namespace shaken::stir
