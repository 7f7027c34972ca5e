// fake_shakend_main.cc: runs FakeShakenServer (plaintext, 127.0.0.1, ephemeral port) as a process
// for the example test: writes the port to the file named by argv[1], then serves until stdin
// closes or 60 s pass.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/time/clock.h"
#include "client/fake_shaken_server.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fake_shakend PORT_FILE\n";
    return 2;
  }
  auto server = shaken::client::testing::FakeShakenServer::Start();
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  {
    std::ofstream out(std::string(argv[1]) + ".tmp");
    out << (*server)->port() << "\n";
  }
  std::rename((std::string(argv[1]) + ".tmp").c_str(), argv[1]);
  absl::SleepFor(absl::Seconds(60));
  return 0;
}
