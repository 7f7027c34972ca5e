// check.cc: compiled against an installed shakenclient with find_package; uses the C++ API
// without a server.
#include <iostream>

#include "shaken/client.h"

int main() {
  if (shaken::client::Client::New({}).status().code() != absl::StatusCode::kInvalidArgument) {
    std::cerr << "check.cc: an empty target must be INVALID_ARGUMENT\n";
    return 1;
  }
  shaken::client::ClientOptions o;
  o.target = "127.0.0.1:1";
  o.insecure_plaintext = true;
  auto client = shaken::client::Client::New(o);
  if (!client.ok()) {
    std::cerr << "check.cc: " << client.status() << "\n";
    return 1;
  }
  std::cout << "check.cc: OK (" << (*client)->target() << ")\n";
  return 0;
}
