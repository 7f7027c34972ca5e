// fuzz_config: the daemon's YAML configuration (daemon::ParseConfig, yaml-cpp underneath), then
// the warnings an accepted configuration gets at start-up. Nothing named in it is opened: files,
// keys and tokens are used only later, by the daemon. (Only functions that do no file I/O are
// called here.)
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto config = shaken::daemon::ParseConfig(yaml, "fuzz.yaml");
  if (!config.ok()) {
    FUZZ_CHECK(!config.status().message().empty());
    return 0;
  }
  (void)shaken::daemon::ConfigWarnings(*config);
  return 0;
}
