// http_load.h: load_bench's HTTP/1.1 driver, for secsipidx's HTTP signing server
// (`secsipidx -http-srv`): the same closed loop as the gRPC drivers over plain keep-alive
// connections.
#ifndef SHAKEN_BENCH_HTTP_LOAD_H_
#define SHAKEN_BENCH_HTTP_LOAD_H_

#include <string>

#include "bench/latency_recorder.h"

namespace shaken::bench {

// RunHttp keeps `conns` keep-alive connections to 127.0.0.1:`port`, each with one `request`
// outstanding, driven by one epoll thread, for `seconds`. A response counts when it is 200 with
// a JWS body ("eyJ..."); Die()s when a connection breaks.
LatencyRecorder RunHttp(const std::string& name, int port, const std::string& request, int conns,
                        double seconds);

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_HTTP_LOAD_H_
