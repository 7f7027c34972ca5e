// grpc_load.h: load_bench's gRPC drivers on one mTLS channel with the async API, each phase one
// CompletionQueue driven by one thread: unary calls closed-loop (N in flight) or open-loop (paced,
// latency from the scheduled send time: no coordinated omission), pipelined SignStream calls, and
// a storm of Verify calls waiting on slow x5u servers.
#ifndef SHAKEN_BENCH_GRPC_LOAD_H_
#define SHAKEN_BENCH_GRPC_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "bench/latency_recorder.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "tests/daemon_fixture.h"

namespace shaken::bench {

// UnaryTarget is one unary method under load: how to start a call, the i-th request, and what a
// right response is.
template <typename Req, typename Resp>
struct UnaryTarget {
  std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>>(
      grpc::ClientContext*, const Req&, grpc::CompletionQueue*)>
      prepare;
  std::function<const Req&(uint64_t)> request;  // the i-th request; must outlive the run
  std::function<std::string(const Resp&)> check;  // "" when the response is right
};

// RunClosed keeps `inflight` calls outstanding for `seconds` (Sign and Verify).
template <typename Req, typename Resp>
LatencyRecorder RunClosed(const std::string& name, const UnaryTarget<Req, Resp>& t, int inflight,
                          double seconds);

// RunPaced sends a call every 1/rate s from a pacing thread (at most 512 outstanding; when the cap
// is reached the schedule is kept and the wait counts in the latency), completions collected by
// this thread; latency runs from the scheduled send time. *late_sends counts sends more than 1 ms
// behind their schedule. (Sign.)
template <typename Req, typename Resp>
LatencyRecorder RunPaced(const std::string& name, const UnaryTarget<Req, Resp>& t, double rate,
                         double seconds, uint64_t* late_sends);

// RunStreams runs `streams` SignStream calls, each keeping `window` requests outstanding, for
// `seconds`.
LatencyRecorder RunStreams(const std::string& name, shaken::v1::Shaken::Stub* stub,
                           const shaken::v1::SignRequest& req, int streams, int window,
                           double seconds);

// SignTarget signs `req` (which must outlive the target) every call; VerifyTarget cycles through
// `reqs` and expects every verdict to pass.
UnaryTarget<shaken::v1::SignRequest, shaken::v1::SignResponse> SignTarget(
    shaken::v1::Shaken::Stub* stub, const shaken::v1::SignRequest& req);
UnaryTarget<shaken::v1::VerifyRequest, shaken::v1::VerifyResponse> VerifyTarget(
    shaken::v1::Shaken::Stub* stub, const std::vector<shaken::v1::VerifyRequest>& reqs);

// Storm keeps `outstanding` Verify calls in flight against shakend, each with an Identity header
// whose x5u is a fresh URL on a route that answers after `x5u_delay` (never a cache hit), from its
// own thread, until Stop. Their verdicts are whatever the verifier decides in time (mostly 436
// fetch_timeout, since the per-host fetch limit lets few through); what counts is that the RPCs
// are answered. Sign runs meanwhile.
class Storm {
 public:
  Storm(shaken::v1::Shaken::Stub* stub, testing::DaemonEnv& env, int outstanding,
        absl::Duration x5u_delay, int identities);

  // Stop stops issuing, waits for the calls in flight (at most their 10 s deadline + 2 s).
  void Stop();
  uint64_t answered() const { return answered_; }
  uint64_t rpc_errors() const { return rpc_errors_; }
  uint64_t deadline_exceeded() const { return deadline_exceeded_; }
  uint64_t passed() const { return passed_; }
  uint64_t refused() const { return refused_; }
  uint64_t in_flight_peak() const { return peak_; }
  const std::string& first_error() const { return first_error_; }

 private:
  struct Call {
    grpc::ClientContext ctx;
    shaken::v1::VerifyResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<shaken::v1::VerifyResponse>> rpc;
    int64_t start_ns = 0;
  };
  void Issue();
  void Run();

  shaken::v1::Shaken::Stub* stub_;
  const int outstanding_;
  std::vector<shaken::v1::VerifyRequest> requests_;
  grpc::CompletionQueue cq_;
  std::atomic<bool> stop_{false};
  size_t next_ = 0;
  uint64_t in_flight_ = 0, peak_ = 0, answered_ = 0, rpc_errors_ = 0, deadline_exceeded_ = 0;
  uint64_t passed_ = 0, refused_ = 0;
  std::string first_error_;
  std::thread thread_;
};

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_GRPC_LOAD_H_
