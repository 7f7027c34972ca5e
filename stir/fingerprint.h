// fingerprint.h: the one "SHA-256 in colon-separated upper-case hex" of shakend: the fingerprints
// shakenctl prints for keys and certificates (spki-sha256, sha256), and the body of the ACME
// Authority Token's account-key fingerprint ("SHA256 " + it, cli/acme/jws.h).
#ifndef SHAKEN_STIR_FINGERPRINT_H_
#define SHAKEN_STIR_FINGERPRINT_H_

#include <string>
#include <string_view>

namespace shaken::stir {

// Sha256Fingerprint is SHA-256 of `der` as colon-separated upper-case hex ("AB:01:...", 95
// characters).
std::string Sha256Fingerprint(std::string_view der);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_FINGERPRINT_H_
