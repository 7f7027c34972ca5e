// softhsm_token.h: a private SoftHSM2 token per test run, in a temporary directory.
//
// SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and must not be finalised (see
// hsm::ModuleQuirks), so one process gets one token directory: create the SoftHsmToken before the
// first Module::Load (SoftHsmToken::Shared() does, lazily), and never fork() after it.
// The PINs of this throwaway token are passed on softhsm2-util's argv; never do that with a real
// token.
#ifndef SHAKEN_TESTS_TESTING_SOFTHSM_TOKEN_H_
#define SHAKEN_TESTS_TESTING_SOFTHSM_TOKEN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shaken::testing {

inline constexpr char kSoftHsmModule[] = "/usr/lib/softhsm/libsofthsm2.so";

// SoftHsmToken owns a temp dir with softhsm2.conf (objectstore.backend = file) and a tokens/
// directory holding the initialised tokens, and sets SOFTHSM2_CONF for the process. The destructor
// removes the directory. Not thread-safe to create; accessors are.
class SoftHsmToken {
 public:
  // Create initialises one token per label (user PIN `pin`, SO PIN `so_pin`). Fails if
  // softhsm2-util is missing or fails.
  static absl::StatusOr<std::unique_ptr<SoftHsmToken>> Create(
      std::vector<std::string> labels = {"shaken-test"});
  // Shared is the process-wide token (labels "shaken-test" and "shaken-test-2"), created on first
  // use; aborts the test binary if it cannot be created.
  static SoftHsmToken& Shared();
  ~SoftHsmToken();

  const std::string& dir() const { return dir_; }
  const std::string& token_dir() const { return token_dir_; }  // directories.tokendir
  const std::string& label() const { return labels_.front(); }
  const std::vector<std::string>& labels() const { return labels_; }
  const std::string& pin() const { return pin_; }
  const std::string& so_pin() const { return so_pin_; }
  // pin_file is a 0600 file holding the user PIN.
  const std::string& pin_file() const { return pin_file_; }
  std::string module_path() const { return kSoftHsmModule; }

  // TokenUri is "pkcs11:token=<label>"; KeyUri adds ";object=<key>;type=private".
  std::string TokenUri(const std::string& label = "") const;
  std::string KeyUri(const std::string& key_label, const std::string& token_label = "") const;

  // TokenSubdirs lists the per-token directories SoftHSM2 made under token_dir().
  std::vector<std::string> TokenSubdirs() const;

 private:
  SoftHsmToken() = default;
  std::string dir_, token_dir_, pin_file_;
  std::vector<std::string> labels_;
  std::string pin_ = "715293";
  std::string so_pin_ = "48151623";
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_SOFTHSM_TOKEN_H_
