// http_load.h: load_bench's HTTP/1.1 keep-alive load generator (RunHttp in load_bench.cc, the one
// that drives secsipidx's HTTP server), for the other benchmarks of this folder (sbc_bench). A
// benchmark that uses it compiles load_bench.cc with SHAKEN_LOAD_BENCH_NO_MAIN.
#ifndef SHAKEN_BENCH_HTTP_LOAD_H_
#define SHAKEN_BENCH_HTTP_LOAD_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace shaken::bench {

struct HttpLoad {
  double rate = 0;  // answers per second inside the measured window
  double p50_ms = 0, p99_ms = 0;
  size_t calls = 0;
  uint64_t errors = 0;  // answers that were not a 200 holding a JWS
  double server_cpu_us = 0;  // CPU of `server_pid` per call
};

// RunHttpLoad keeps `conns` keep-alive connections to 127.0.0.1:`port`, each with one copy of
// `request` (a whole HTTP/1.1 request) outstanding, for `seconds`, from one epoll thread, and
// prints one line named `name` (not for "warm-up"). A closed connection or a short write ends the
// process (after killing `server_pid`).
HttpLoad RunHttpLoad(const std::string& name, int port, const std::string& request, int conns,
                     double seconds, pid_t server_pid);

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_HTTP_LOAD_H_
