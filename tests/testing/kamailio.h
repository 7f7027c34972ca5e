// kamailio.h: Kamailio (Debian's package) as a SIP peer in tests: started on a free UDP port of
// 127.0.0.1 with a configuration file and -A defines, ready once it answers OPTIONS.
#ifndef SHAKEN_TESTS_TESTING_KAMAILIO_H_
#define SHAKEN_TESTS_TESTING_KAMAILIO_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {

class Kamailio {
 public:
  // Start runs `kamailio -f cfg` listening on udp:127.0.0.1:<a free port>, its runtime files and
  // log under `dir`, each define passed as -A NAME="value"; it returns once Kamailio answers an
  // OPTIONS with 200 (FAILED_PRECONDITION with its log when it does not within 5 s).
  static absl::StatusOr<std::unique_ptr<Kamailio>> Start(
      const std::string& cfg, const std::string& dir,
      const std::vector<std::pair<std::string, std::string>>& defines);
  // Stop sends SIGTERM (Kamailio's main process stops its children; SIGKILL would orphan them)
  // and tells whether it exited within 10 s. The destructor stops it too.
  bool Stop();
  ~Kamailio();

  int port() const { return port_; }
  std::string Log() const { return child_.Log(); }

 private:
  Kamailio(Child child, int port) : child_(std::move(child)), port_(port) {}
  Child child_;
  int port_;
  bool stopped_ = false;
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_KAMAILIO_H_
