// load_bench: shakend under load, as a separate process on 127.0.0.1, against in-process
// denominators and against secsipidx's HTTP signing server (targets and results: bench/README.md).
//
//   1. Starts the `shakend` binary (mTLS; profile "token": a SoftHSM2 key, pool sized for this
//      machine; profile "file": a PEM key, attest C) and waits for its health listener.
//   2. In process, 2 threads each: hsm::KeyPool::SignDigest on the same token key with the same
//      pool options ("pool"), and stir::Verifier with a warm X5uCertificateSource ("inproc
//      verify"). These are the denominators.
//   3. gRPC load on one mTLS channel, async API (one CompletionQueue driven by one thread):
//      unary Sign (token), SignStream (token; several streams, each pipelined), Verify (warm
//      certificate cache; every verdict must pass), each closed-loop with N calls in flight.
//   4. Unary Sign open-loop at 80 % of the measured unary maximum (right after it): a call every
//      1/rate s from a pacing thread, latency counted from the scheduled send time (no
//      coordinated omission).
//   5. shakend's "file" profile against `secsipidx -http-srv` with the same PEM key, the same
//      concurrency (HTTP/1.1 keep-alive connections, one epoll thread), the same 2 cores.
//   6. The floor: the same phases against a server that does nothing but the gRPC call and the
//      cryptographic operation, with shakend's keys, pool options, verifier and TLS settings
//      (this binary re-run as `--floor-server`). Its figures bound what any shaken.v1 server can
//      reach on this machine; shakend's are read as a share of them.
//   7. VmRSS of the shakend process after the first second of load and at the end (--soak adds
//      five minutes of mixed Sign / SignStream / Verify load).
// Every loop is bounded in count and time. Ends with the floor's ratios and then one line:
//   load_bench_floor: sign_vs_pool=... (the same five figures for the floor server)
//   load_bench: sign_vs_pool=X stream_vs_pool=S verify_vs_inproc=Y sign_p99_ms=Z soft_vs_secsipidx=W
//
// Flags: --seconds=N (each measured phase, default 8), --inflight=N (unary and Verify, 16),
// --streams=N --window=N (SignStream, 4 x 8), --pool=N (token sessions, default 2 x cores),
// --soft-inflight=N (file profile and secsipidx, 8), --inproc-seconds=N (4), --soak,
// --soak-seconds=N (300), --only=PHASES (comma-separated: sign, paced, stream, verify, file,
// secsipidx, floor, slowhsm, storm; default all), --plaintext (API listener without TLS).
//
// Production latency: "slowhsm" starts a second shakend whose token signs
// through the fault-injecting PKCS#11 module at 5 ms per signature, 32 sessions, 64 calls in
// flight (Little's law bound: 6,400/s); "storm" measures Sign at --inflight calls before and while
// 200 Verify calls wait on x5u URLs that answer after 3 s. Summary:
//   load_bench_latency: slowhsm_vs_bound=X storm_sign_p99_ratio=Y storm_sign_failures=N
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "daemon/config.h"
#include "daemon/profiles.h"
#include "daemon/server.h"
#include "hsm/key_pool.h"
#include "hsm/secret.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/verification_stack.h"
#include "bench/http_load.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/softhsm_token.h"

extern char** environ;

namespace {

using namespace shaken;  // NOLINT: a benchmark's main file
using shaken::v1::SignRequest;
using shaken::v1::SignResponse;
using shaken::v1::SignStreamResponse;
using shaken::v1::VerifyRequest;
using shaken::v1::VerifyResponse;

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";
constexpr int kIdentities = 64;         // distinct PASSporTs cycled through by Verify
constexpr int64_t kDrainNs = 10'000'000'000;  // at most 10 s to collect outstanding calls
constexpr int kMaxPacedInflight = 512;

struct Flags {
  int seconds = 8;
  int inflight = 16;
  int streams = 4;
  int window = 8;
  int pool = 0;  // 0: 2 x cores
  int soft_inflight = 8;
  int inproc_seconds = 4;
  bool soak = false;
  bool plaintext = false;  // no TLS on the API listener: splits TLS from gRPC in the figures
  int soak_seconds = 300;
  std::string shakend = SHAKEND_BINARY;
  std::string only;  // comma-separated phases (sign,paced,stream,verify,file,secsipidx,floor)
  std::string floor_server;  // internal: run as the floor server with this shakend config
  int floor_port = 0;

  // Runs: whether --only selects `phase`. "floor" alone (no gRPC phase named) selects every gRPC
  // phase, against shakend and the floor.
  bool Runs(absl::string_view phase) const {
    if (only.empty()) return true;
    static constexpr absl::string_view kGrpcPhases[] = {"sign", "paced", "stream", "verify",
                                                        "file"};
    bool floor = false, any_grpc_phase = false;
    for (absl::string_view p : absl::StrSplit(only, ',')) {
      if (p == phase) return true;
      floor = floor || p == "floor";
      for (absl::string_view g : kGrpcPhases) any_grpc_phase = any_grpc_phase || p == g;
    }
    if (!floor || any_grpc_phase) return false;
    if (phase == "slowhsm" || phase == "storm") return false;  // not floor phases
    for (absl::string_view g : kGrpcPhases) {
      if (g == phase) return true;
    }
    return false;
  }
};

// --- process bookkeeping --------------------------------------------------------------------

pid_t g_shakend = -1;
pid_t g_secsipidx = -1;
pid_t g_floor = -1;
pid_t g_slow = -1;  // the shakend behind the slow token (--only=slowhsm)

void StopChild(pid_t* pid, int sig) {
  if (*pid <= 0) return;
  kill(*pid, sig);
  for (int i = 0; i < 500; ++i) {  // 10 s
    if (waitpid(*pid, nullptr, WNOHANG) == *pid) {
      *pid = -1;
      return;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(*pid, SIGKILL);
  waitpid(*pid, nullptr, 0);
  *pid = -1;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  StopChild(&g_secsipidx, SIGKILL);
  StopChild(&g_floor, SIGKILL);
  StopChild(&g_slow, SIGKILL);
  StopChild(&g_shakend, SIGKILL);
  std::fflush(stderr);
  _exit(1);  // SoftHSM2 must not be finalised from exit handlers
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(std::string(what) + ": " + std::string(v.status().message()));
  return *std::move(v);
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// WaitForListener waits up to 30 s for child `*pid` to accept connections on 127.0.0.1:`port`;
// Die()s with its log when it exits or does not listen by then.
void WaitForListener(pid_t* pid, int port, const std::string& what, const std::string& log) {
  for (int i = 0; i < 600; ++i) {  // 30 s
    int fd = ConnectLoopback(port);
    if (fd >= 0) {
      close(fd);
      return;
    }
    if (waitpid(*pid, nullptr, WNOHANG) == *pid) {
      *pid = -1;
      Die(what + " exited:\n" + testing::ReadFileOrEmpty(log));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Die(what + " does not listen after 30 s:\n" + testing::ReadFileOrEmpty(log));
}

// VmRSS of `pid` in KiB (0 when unreadable).
long RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// CPU time (user + system) of process `pid` so far, in ns (clock-tick resolution).
int64_t ProcCpuNs(pid_t pid) {
  std::string stat = testing::ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  size_t p = stat.rfind(')');
  if (p == std::string::npos) return 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  const char* c = stat.c_str() + p + 2;
  long long utime = 0, stime = 0;
  if (std::sscanf(c, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime) != 2) {
    return 0;
  }
  return (utime + stime) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
}

// CPU time of this process so far, in ns.
int64_t SelfCpuNs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& t) { return t.tv_sec * 1'000'000'000LL + t.tv_usec * 1000LL; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The system_clock time point `ns` (a NowNs() value) corresponds to, for gRPC deadlines.
std::chrono::system_clock::time_point WallAt(int64_t ns) {
  return std::chrono::system_clock::now() + std::chrono::nanoseconds(ns - NowNs());
}

pid_t g_server_pid = -1;  // whose CPU a Recorder charges as "server" (shakend, then secsipidx)

// --- Recorder: one phase's per-call latencies, throughput and CPU cost -------------------------

class Recorder {
 public:
  explicit Recorder(std::string name)
      : name_(std::move(name)),
        server_cpu0_(g_server_pid > 0 ? ProcCpuNs(g_server_pid) : 0),
        client_cpu0_(SelfCpuNs()) {
    lat_.reserve(1 << 16);
  }
  void Add(int64_t ns) { lat_.push_back(ns); }
  void Error(const std::string& what) {
    if (errors_++ == 0) first_error_ = what;
  }
  // Completions inside the measured window, over its length.
  // Also closes the CPU accounting (server: g_server_pid; client: this process).
  void SetWindow(uint64_t completed, int64_t window_ns) {
    completed_ = completed;
    window_ns_ = window_ns;
    if (g_server_pid > 0) server_cpu_ = ProcCpuNs(g_server_pid) - server_cpu0_;
    client_cpu_ = SelfCpuNs() - client_cpu0_;
  }
  double ServerCpuUs() const { return lat_.empty() ? 0 : server_cpu_ / 1e3 / lat_.size(); }
  double ClientCpuUs() const { return lat_.empty() ? 0 : client_cpu_ / 1e3 / lat_.size(); }
  double rate() const { return window_ns_ > 0 ? completed_ * 1e9 / window_ns_ : 0.0; }
  uint64_t errors() const { return errors_; }
  size_t count() const { return lat_.size(); }
  double PercentileMs(double p) {
    if (lat_.empty()) return 0;
    if (!sorted_) {
      std::sort(lat_.begin(), lat_.end());
      sorted_ = true;
    }
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(lat_.size()));
    return lat_[std::min(i, lat_.size() - 1)] / 1e6;
  }
  void Print(const std::string& detail) {
    std::printf("%-26s %9.0f /s  p50 %6.3f  p90 %6.3f  p99 %7.3f  p99.9 %7.3f ms  n=%zu err=%llu  "
                "cpu/call server %.0f us client %.0f us  %s\n",
                name_.c_str(), rate(), PercentileMs(50), PercentileMs(90), PercentileMs(99),
                PercentileMs(99.9), lat_.size(), static_cast<unsigned long long>(errors_),
                ServerCpuUs(), ClientCpuUs(), detail.c_str());
    if (errors_ > 0) std::printf("%-26s first error: %s\n", "", first_error_.c_str());
    std::fflush(stdout);
  }

 private:
  std::string name_;
  std::vector<int64_t> lat_;
  bool sorted_ = false;
  uint64_t errors_ = 0;
  std::string first_error_;
  uint64_t completed_ = 0;
  int64_t window_ns_ = 0;
  int64_t server_cpu0_ = 0, client_cpu0_ = 0, server_cpu_ = 0, client_cpu_ = 0;
};

// --- gRPC unary load ---------------------------------------------------------------------------

template <typename Req, typename Resp>
struct UnaryTarget {
  std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>>(
      grpc::ClientContext*, const Req&, grpc::CompletionQueue*)>
      prepare;
  std::function<const Req&(uint64_t)> request;  // the i-th request; must outlive the run
  std::function<std::string(const Resp&)> check;  // "" when the response is right
};

template <typename Resp>
struct UnaryCall {
  grpc::ClientContext ctx;
  Resp resp;
  grpc::Status status;
  int64_t start_ns = 0;  // actual (closed loop) or scheduled (open loop) send time
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> rpc;
};

template <typename Req, typename Resp>
void Issue(const UnaryTarget<Req, Resp>& t, grpc::CompletionQueue* cq, uint64_t i,
           int64_t start_ns) {
  auto* c = new UnaryCall<Resp>();
  c->start_ns = start_ns;
  c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  c->rpc = t.prepare(&c->ctx, t.request(i), cq);
  c->rpc->StartCall();
  c->rpc->Finish(&c->resp, &c->status, c);
}

template <typename Req, typename Resp>
void Complete(const UnaryTarget<Req, Resp>& t, void* tag, Recorder* rec, int64_t end,
              uint64_t* in_window) {
  auto* c = static_cast<UnaryCall<Resp>*>(tag);
  const int64_t done = NowNs();
  std::string bad = c->status.ok() ? t.check(c->resp)
                                   : absl::StrCat("rpc ", c->status.error_code(), ": ",
                                                  c->status.error_message());
  if (bad.empty()) {
    rec->Add(done - c->start_ns);
    if (done <= end) ++*in_window;
  } else {
    rec->Error(bad);
  }
  delete c;
}

// Closed loop: `inflight` calls always outstanding for `seconds`, one thread on one CQ.
template <typename Req, typename Resp>
Recorder RunClosed(const std::string& name, const UnaryTarget<Req, Resp>& t, int inflight,
                   double seconds) {
  Recorder rec(name);
  grpc::CompletionQueue cq;
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  uint64_t issued = 0, in_window = 0;
  int outstanding = 0;
  for (;;) {
    const int64_t now = NowNs();
    if (now < end) {
      for (; outstanding < inflight; ++outstanding) Issue(t, &cq, issued++, NowNs());
    } else if (outstanding == 0 || now > end + kDrainNs) {
      break;
    }
    void* tag = nullptr;
    bool ok = false;
    grpc::CompletionQueue::NextStatus st =
        cq.AsyncNext(&tag, &ok, WallAt(now < end ? end : end + kDrainNs));
    if (st == grpc::CompletionQueue::GOT_EVENT) {
      --outstanding;
      Complete(t, tag, &rec, end, &in_window);
    }
  }
  rec.SetWindow(in_window, end - t0);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
    Complete(t, tag, &rec, end, &in_window);  // only after a drain timeout: counted late
  }
  return rec;
}

// Open loop: a call every 1/rate s from a pacing thread (at most kMaxPacedInflight outstanding;
// when the cap is reached the schedule is kept and the wait counts in the latency), completions
// collected by this thread. Latency runs from the scheduled send time.
template <typename Req, typename Resp>
Recorder RunPaced(const std::string& name, const UnaryTarget<Req, Resp>& t, double rate,
                  double seconds, uint64_t* late_sends) {
  Recorder rec(name);
  grpc::CompletionQueue cq;
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  const double interval = 1e9 / rate;
  std::atomic<int> outstanding{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> pacer_done{false};
  uint64_t late = 0;
  std::thread pacer([&] {
    for (uint64_t i = 0;; ++i) {
      const int64_t when = t0 + static_cast<int64_t>(static_cast<double>(i) * interval);
      if (when >= end) break;
      const int64_t now = NowNs();
      if (when > now) std::this_thread::sleep_for(std::chrono::nanoseconds(when - now));
      while (outstanding.load(std::memory_order_acquire) >= kMaxPacedInflight && NowNs() < end) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (NowNs() - when > 1'000'000) ++late;  // sent more than 1 ms behind schedule
      outstanding.fetch_add(1, std::memory_order_acq_rel);
      sent.fetch_add(1, std::memory_order_relaxed);
      Issue(t, &cq, i, when);
    }
    pacer_done.store(true);
  });
  uint64_t in_window = 0, completed = 0;
  for (;;) {
    const int64_t now = NowNs();
    if (pacer_done.load() && completed == sent.load()) break;
    if (now > end + kDrainNs) break;
    void* tag = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&tag, &ok, WallAt(std::min(now + 50'000'000, end + kDrainNs))) ==
        grpc::CompletionQueue::GOT_EVENT) {
      Complete(t, tag, &rec, end, &in_window);
      ++completed;
      outstanding.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  pacer.join();
  rec.SetWindow(in_window, end - t0);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) Complete(t, tag, &rec, end, &in_window);
  *late_sends = late;
  return rec;
}

// --- gRPC SignStream load ----------------------------------------------------------------------

struct Stream;
enum class OpKind { kStart, kWrite, kRead, kWritesDone, kFinish };
struct Op {
  OpKind kind;
  Stream* stream;
};

struct Stream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<SignRequest, SignStreamResponse>> rw;
  SignStreamResponse resp;
  grpc::Status status;
  std::deque<int64_t> sent;  // send times of the requests not yet answered (answers in order)
  bool writing = false, writes_done = false, reads_over = false, finished = false, broken = false;
  Op start{OpKind::kStart, this}, write{OpKind::kWrite, this}, read{OpKind::kRead, this},
      done{OpKind::kWritesDone, this}, fin{OpKind::kFinish, this};
};

// `streams` SignStream calls, each keeping `window` requests outstanding, for `seconds`.
Recorder RunStreams(const std::string& name, shaken::v1::Shaken::Stub* stub, const SignRequest& req,
                    int streams, int window, double seconds) {
  Recorder rec(name);
  grpc::CompletionQueue cq;
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    auto s = std::make_unique<Stream>();
    s->ctx.set_deadline(WallAt(end + kDrainNs));
    s->rw = stub->PrepareAsyncSignStream(&s->ctx, &cq);
    s->rw->StartCall(&s->start);
    all.push_back(std::move(s));
  }
  uint64_t in_window = 0;
  int open = streams;
  bool stopping = false;
  auto maybe_write = [&](Stream* s) {
    if (s->broken || s->writing || s->writes_done) return;
    if (stopping) {
      s->writes_done = true;
      s->rw->WritesDone(&s->done);
    } else if (static_cast<int>(s->sent.size()) < window) {
      s->writing = true;
      s->sent.push_back(NowNs());
      s->rw->Write(req, &s->write);
    }
  };
  while (open > 0) {
    const int64_t now = NowNs();
    if (!stopping && now >= end) {
      stopping = true;
      for (auto& s : all) maybe_write(s.get());
    }
    if (now > end + kDrainNs) break;
    void* tag = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&tag, &ok, WallAt(stopping ? end + kDrainNs : end)) !=
        grpc::CompletionQueue::GOT_EVENT) {
      continue;
    }
    Op* op = static_cast<Op*>(tag);
    Stream* s = op->stream;
    switch (op->kind) {
      case OpKind::kStart:
        if (!ok) {
          s->broken = true;
          s->rw->Finish(&s->status, &s->fin);
          break;
        }
        s->rw->Read(&s->resp, &s->read);
        maybe_write(s);
        break;
      case OpKind::kWrite:
        s->writing = false;
        if (!ok) s->broken = true;
        maybe_write(s);
        break;
      case OpKind::kWritesDone:
        break;
      case OpKind::kRead:
        if (!ok) {  // the server closed the stream: collect its status
          s->reads_over = true;
          s->rw->Finish(&s->status, &s->fin);
          break;
        }
        if (!s->sent.empty()) {
          const int64_t t = NowNs();
          if (s->resp.has_response() && !s->resp.response().identity().empty()) {
            rec.Add(t - s->sent.front());
            if (t <= end) ++in_window;
          } else {
            rec.Error(absl::StrCat("stream error ", s->resp.error().code(), ": ",
                                   s->resp.error().message()));
          }
          s->sent.pop_front();
        }
        s->rw->Read(&s->resp, &s->read);
        maybe_write(s);
        break;
      case OpKind::kFinish:
        s->finished = true;
        --open;
        if (!s->status.ok()) {
          rec.Error(absl::StrCat("stream rpc ", s->status.error_code(), ": ",
                                 s->status.error_message()));
        }
        break;
    }
  }
  for (auto& s : all) {
    if (!s->finished) s->ctx.TryCancel();
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  rec.SetWindow(in_window, end - t0);
  return rec;
}

// --- in-process denominators -------------------------------------------------------------------

// `threads` threads call fn() for `seconds`; returns calls per second (and this process's CPU
// time per call in *cpu_us), or Die()s on an error.
double RunThreads(int threads, double seconds, const std::function<absl::Status()>& fn,
                  double* cpu_us = nullptr) {
  const int64_t cpu0 = SelfCpuNs();
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex mu;
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&] {
      uint64_t n = 0;
      while (!failed.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 16; ++k, ++n) {
          absl::Status s = fn();
          if (!s.ok()) {
            std::lock_guard<std::mutex> l(mu);
            error = std::string(s.message());
            failed = true;
            break;
          }
        }
        if (NowNs() >= end) break;
      }
      total += n;
    });
  }
  for (auto& t : ts) t.join();
  if (failed) Die("in-process run failed: " + error);
  if (cpu_us != nullptr) *cpu_us = total.load() > 0 ? (SelfCpuNs() - cpu0) / 1e3 / total.load() : 0;
  return total.load() * 1e9 / static_cast<double>(NowNs() - t0);
}

// --- HTTP/1.1 keep-alive load on secsipidx ----------------------------------------------------

struct HttpConn {
  int fd = -1;
  std::string in;
  int64_t start_ns = 0;
  bool busy = false;
};

// `conns` keep-alive connections, each with one request outstanding, driven by one epoll thread.
Recorder RunHttp(const std::string& name, int port, const std::string& request, int conns,
                 double seconds) {
  Recorder rec(name);
  int ep = epoll_create1(0);
  std::vector<HttpConn> cs(conns);
  for (int i = 0; i < conns; ++i) {
    cs[i].fd = ConnectLoopback(port);
    if (cs[i].fd < 0) Die("cannot connect to secsipidx");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  uint64_t in_window = 0;
  int busy = 0;
  auto send_one = [&](HttpConn& c) {
    c.start_ns = NowNs();
    c.busy = true;
    ++busy;
    if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      Die("secsipidx: short send");
    }
  };
  for (auto& c : cs) send_one(c);
  std::vector<epoll_event> evs(conns);
  char buf[8192];
  while (busy > 0 && NowNs() < end + kDrainNs) {
    int n = epoll_wait(ep, evs.data(), conns, 100);
    for (int k = 0; k < n; ++k) {
      HttpConn& c = cs[evs[k].data.u32];
      ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
      if (r <= 0) Die("secsipidx closed a keep-alive connection");
      c.in.append(buf, static_cast<size_t>(r));
      size_t hdr = c.in.find("\r\n\r\n");
      if (hdr == std::string::npos) continue;
      size_t cl = c.in.find("Content-Length: ");
      if (cl == std::string::npos || cl > hdr) Die("secsipidx: response without Content-Length");
      size_t body_len = std::strtoul(c.in.c_str() + cl + 16, nullptr, 10);
      if (c.in.size() < hdr + 4 + body_len) continue;
      const int64_t t = NowNs();
      // A 200 whose body holds a JWS: secsipidx answers it bare, shakend's REST front end in JSON.
      if (c.in.compare(0, 12, "HTTP/1.1 200") == 0 &&
          c.in.substr(hdr + 4, body_len).find("eyJ") != std::string::npos) {
        rec.Add(t - c.start_ns);
        if (t <= end) ++in_window;
      } else {
        rec.Error(c.in.substr(0, std::min<size_t>(c.in.size(), 120)));
      }
      c.in.erase(0, hdr + 4 + body_len);
      c.busy = false;
      --busy;
      if (t < end) send_one(c);
    }
  }
  for (auto& c : cs) close(c.fd);
  close(ep);
  rec.SetWindow(in_window, end - t0);
  return rec;
}

SignRequest MakeSign(const std::string& profile, const std::string& attest) {
  SignRequest r;
  r.set_profile(profile);
  r.set_attest(attest);
  r.mutable_orig()->set_tn(kOrig);
  r.mutable_dest()->add_tn(kDest);
  return r;
}

// --- the phases, against shakend or the floor server --------------------------------------------

UnaryTarget<SignRequest, SignResponse> SignTarget(shaken::v1::Shaken::Stub* stub,
                                                  const SignRequest& req) {
  UnaryTarget<SignRequest, SignResponse> t;
  t.prepare = [stub](grpc::ClientContext* ctx, const SignRequest& r, grpc::CompletionQueue* cq) {
    return stub->PrepareAsyncSign(ctx, r, cq);
  };
  t.request = [&req](uint64_t) -> const SignRequest& { return req; };
  t.check = [](const SignResponse& r) -> std::string {
    return r.identity().empty() ? "empty identity" : "";
  };
  return t;
}

UnaryTarget<VerifyRequest, VerifyResponse> VerifyTarget(shaken::v1::Shaken::Stub* stub,
                                                        const std::vector<VerifyRequest>& reqs) {
  UnaryTarget<VerifyRequest, VerifyResponse> t;
  t.prepare = [stub](grpc::ClientContext* ctx, const VerifyRequest& r, grpc::CompletionQueue* cq) {
    return stub->PrepareAsyncVerify(ctx, r, cq);
  };
  t.request = [&reqs](uint64_t i) -> const VerifyRequest& { return reqs[i % reqs.size()]; };
  t.check = [](const VerifyResponse& r) -> std::string {
    return r.verdict().passed()
               ? ""
               : "verdict " + r.verdict().reason() + ": " + r.verdict().detail();
  };
  return t;
}

struct Suite {
  explicit Suite(const std::string& who)
      : unary(who + " Sign (token)"),
        paced(who + " Sign @80% (token)"),
        stream(who + " SignStream (token)"),
        verify(who + " Verify"),
        soft(who + " Sign (file key)") {}
  uint64_t errors() const {
    return unary.errors() + paced.errors() + stream.errors() + verify.errors() + soft.errors();
  }
  Recorder unary, paced, stream, verify, soft;
};

// RunSuite runs the selected phases against `stub`: unary Sign (token) closed loop, then open
// loop at 80 % of the rate just measured, SignStream, Verify (warm cache; `fresh_verify` makes
// PASSporTs within their iat window), unary Sign with the file key.
Suite RunSuite(const std::string& who, shaken::v1::Shaken::Stub* stub, const Flags& flags,
               const std::function<const std::vector<VerifyRequest>&()>& fresh_verify,
               const std::string& note) {
  const double T = flags.seconds;
  const SignRequest token_sign = MakeSign("token", "A");
  const SignRequest file_sign = MakeSign("file", "C");
  const auto token_t = SignTarget(stub, token_sign);
  Suite s(who);
  if (flags.Runs("sign") || flags.Runs("paced")) {
    s.unary = RunClosed(who + " Sign (token)", token_t, flags.inflight, T);
    s.unary.Print(absl::StrCat(flags.inflight, " in flight", note));
  }
  // Right after the maximum was measured: the machine's other load changes minute to minute.
  if (flags.Runs("paced")) {
    const double paced_rate = 0.8 * s.unary.rate();
    uint64_t late = 0;
    s.paced = RunPaced(who + " Sign @80% (token)", token_t, std::max(paced_rate, 1.0), T, &late);
    s.paced.Print(absl::StrCat("open loop at ", static_cast<long>(paced_rate), "/s, ", late,
                               " sends >1 ms late", note));
    // The pacing thread wakes up once per call: in this phase the load generator costs about
    // twice its closed-loop CPU per call, on the same cores as the server. When it cannot keep
    // to its schedule the latencies measure the machine as much as the server.
    if (late * 100 > s.paced.count()) {
      std::printf("%-26s warning: %.1f %% of the sends left more than 1 ms late: the machine, not "
                  "only the server, is saturated at this rate\n",
                  "", 100.0 * static_cast<double>(late) / static_cast<double>(s.paced.count()));
    }
  }
  if (flags.Runs("stream")) {
    RunStreams("warm-up", stub, token_sign, flags.streams, flags.window, 1.0);
    s.stream = RunStreams(who + " SignStream (token)", stub, token_sign, flags.streams,
                          flags.window, T);
    s.stream.Print(absl::StrCat(flags.streams, " streams x ", flags.window, " outstanding", note));
  }
  if (flags.Runs("verify")) {
    const auto verify_t = VerifyTarget(stub, fresh_verify());
    RunClosed("warm-up", verify_t, flags.inflight, 1.0);
    s.verify = RunClosed(who + " Verify", verify_t, flags.inflight, T);
    s.verify.Print(absl::StrCat(flags.inflight, " in flight, warm cache", note));
  }
  if (flags.Runs("file")) {
    const auto file_t = SignTarget(stub, file_sign);
    RunClosed("warm-up", file_t, flags.soft_inflight, 1.0);
    s.soft = RunClosed(who + " Sign (file key)", file_t, flags.soft_inflight, T);
    s.soft.Print(absl::StrCat(flags.soft_inflight, " in flight, 1 connection", note));
  }
  return s;
}

// MakeVerifier builds the verification stack as shakend builds its own
// (daemon::VerifierSettingsFrom) from a configuration's verifier section.
std::unique_ptr<stir::VerificationStack> MakeVerifier(const daemon::VerifierConfig& config) {
  return Must(stir::VerificationStack::New(daemon::VerifierSettingsFrom(config)), "verifier");
}

// --- the gRPC floor ------------------------------------------------------------------------------

// FloorService is shaken.v1 reduced to what no server can avoid: the gRPC call and the one
// cryptographic operation, with the same code and options as shakend (profile "token": the
// KeyPool on the token; profile "file": the in-memory key; Verify: stir::Verifier with a warm
// certificate cache). Sign answers with a response of a real response's size, made once. No
// request checks, PASSporT, authorization, audit record or metrics. What it reaches on this
// machine is the most any shaken.v1 server can reach here: shakend's figures are read against it.
class FloorService final : public shaken::v1::Shaken::CallbackService {
 public:
  struct Profile {
    const stir::Signer* signer;
    SignResponse canned;
  };
  FloorService(Profile token, Profile file, const stir::Verifier* verifier)
      : token_(std::move(token)),
        file_(std::move(file)),
        verifier_(verifier),
        digest_(stir::Sha256("load_bench: floor")) {}

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const SignRequest* req,
                                 SignResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(SignOne(req->profile(), resp));
    return reactor;
  }

  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx, const VerifyRequest* req,
                                   VerifyResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    std::vector<std::string_view> ids(req->identity().begin(), req->identity().end());
    stir::CallInfo call;
    call.from_tn = req->from().tn();
    call.to_tns.assign(req->to().tn().begin(), req->to().tn().end());
    absl::StatusOr<stir::VerifyResult> r = verifier_->VerifyViews(ids, call);
    if (!r.ok()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(r.status().message())));
      return reactor;
    }
    resp->mutable_verdict()->set_passed(r->overall.passed);
    resp->mutable_verdict()->set_reason(std::string(stir::ReasonName(r->overall.reason)));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // One message in, one signature, one message out, then the next read: requests the client
  // pipelines wait in the stream's flow-control window.
  class Stream final : public grpc::ServerBidiReactor<SignRequest, SignStreamResponse> {
   public:
    explicit Stream(const FloorService* service) : service_(service) { StartRead(&req_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      out_.Clear();
      grpc::Status st = service_->SignOne(req_.profile(), out_.mutable_response());
      if (!st.ok()) {
        out_.mutable_error()->set_code(st.error_code());
        out_.mutable_error()->set_message(st.error_message());
      }
      StartWrite(&out_);
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        StartRead(&req_);
      } else {
        Finish(grpc::Status::CANCELLED);
      }
    }
    void OnDone() override { delete this; }

   private:
    const FloorService* service_;
    SignRequest req_;
    SignStreamResponse out_;
  };

  grpc::ServerBidiReactor<SignRequest, SignStreamResponse>* SignStream(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new Stream(this);
  }

 private:
  grpc::Status SignOne(const std::string& profile, SignResponse* resp) const {
    const Profile& p = profile == "file" ? file_ : token_;
    absl::StatusOr<stir::Es256Signature> sig = p.signer->SignDigest(digest_);
    if (!sig.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(sig.status().message()));
    }
    *resp = p.canned;
    return grpc::Status::OK;
  }

  const Profile token_, file_;
  const stir::Verifier* verifier_;
  const stir::Sha256Digest digest_;
};

// FloorMain serves FloorService on 127.0.0.1:`port` with shakend's configuration `config_path`
// (its API TLS / mTLS settings, profiles "token" and "file", verifier settings) until SIGTERM.
int FloorMain(const std::string& config_path, int port) {
  daemon::Config config = Must(daemon::LoadConfig(config_path), "floor: configuration");
  std::vector<std::unique_ptr<daemon::SigningProfile>> profiles;
  std::vector<SignResponse> canned;
  for (const char* name : {"token", "file"}) {
    const daemon::ProfileConfig* pc = nullptr;
    for (const auto& p : config.profiles) {
      if (p.name == name) pc = &p;
    }
    if (pc == nullptr) Die(absl::StrCat("floor: no profile \"", name, "\" in ", config_path));
    profiles.push_back(Must(daemon::SigningProfile::Open(*pc, config, &stir::SystemClock::Shared()),
                            "floor: profile"));
    stir::ShakenClaims claims;
    claims.attest = pc->attest.front();
    claims.orig_tn = kOrig;
    claims.dest_tns = {kDest};
    stir::SignedPassport one =
        Must(profiles.back()->Sign(claims, absl::InfiniteFuture()), "floor: sign");
    SignResponse r;
    r.set_identity(one.identity);
    r.set_passport(one.jws);
    r.set_origid(one.origid);
    r.set_iat(one.iat);
    r.set_profile(name);
    canned.push_back(std::move(r));
  }
  std::unique_ptr<stir::VerificationStack> verifier = MakeVerifier(config.verifier);

  FloorService service({&profiles[0]->signer(), canned[0]}, {&profiles[1]->signer(), canned[1]},
                       &verifier->verifier());

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (config.tls.has_value()) {
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({testing::ReadFileOrEmpty(config.tls->key_file),
                                       testing::ReadFileOrEmpty(config.tls->cert_file)});
    if (!config.tls->client_ca_file.empty()) {
      opts.pem_root_certs = testing::ReadFileOrEmpty(config.tls->client_ca_file);
      opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(opts);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  grpc::ServerBuilder b;
  int bound = 0;
  b.AddListeningPort(absl::StrCat("127.0.0.1:", port), creds, &bound);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (server == nullptr || bound == 0) Die(absl::StrCat("floor: cannot listen on port ", port));
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  _exit(0);  // SoftHSM2 must not be finalised from exit handlers
}

// --- set-up ------------------------------------------------------------------------------------

std::shared_ptr<grpc::Channel> MakeChannel(const testing::DaemonEnv& env, const std::string& target,
                                           bool plaintext) {
  if (plaintext) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ch = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      Die("cannot connect to shakend at " + target);
    }
    return ch;
  }
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = testing::ReadFileOrEmpty(env.TlsCaFile());
  so.pem_cert_chain = testing::ReadFileOrEmpty(env.ClientCertFile("sbc1.test"));
  so.pem_private_key = testing::ReadFileOrEmpty(env.ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  auto ch = grpc::CreateCustomChannel(target, grpc::SslCredentials(so), args);
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    Die("cannot connect to shakend at " + target);
  }
  return ch;
}


// Fresh PASSporTs from shakend's token profile (iat now: Verify checks freshness, 60 s).
std::vector<std::string> SignIdentities(shaken::v1::Shaken::Stub* stub) {
  std::vector<std::string> out;
  SignRequest req = MakeSign("token", "A");
  for (int i = 0; i < kIdentities; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    SignResponse resp;
    grpc::Status st = stub->Sign(&ctx, req, &resp);
    if (!st.ok()) Die("Sign for the Verify load: " + st.error_message());
    out.push_back(resp.identity());
  }
  return out;
}

double ArgValue(const char* arg, const char* name, bool* matched) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return 0;
  double v = 0;
  if (!absl::SimpleAtod(arg + n + 1, &v) || v <= 0) Die(absl::StrCat("bad value in ", arg));
  *matched = true;
  return v;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    bool m = false;
    if (std::strcmp(a, "--soak") == 0) {
      f.soak = true;
      continue;
    }
    if (std::strcmp(a, "--plaintext") == 0) {
      f.plaintext = true;
      continue;
    }
    if (std::strncmp(a, "--floor-server=", 15) == 0) {
      f.floor_server = a + 15;
      continue;
    }
    if (std::strncmp(a, "--only=", 7) == 0) {
      f.only = a + 7;
      continue;
    }
    if (std::strncmp(a, "--shakend=", 10) == 0) {
      f.shakend = a + 10;
      continue;
    }
    struct {
      const char* name;
      int* field;
    } ints[] = {{"--seconds", &f.seconds},          {"--inflight", &f.inflight},
                {"--streams", &f.streams},          {"--window", &f.window},
                {"--pool", &f.pool},                {"--soft-inflight", &f.soft_inflight},
                {"--inproc-seconds", &f.inproc_seconds}, {"--soak-seconds", &f.soak_seconds},
                {"--floor-port", &f.floor_port}};
    for (auto& e : ints) {
      double v = ArgValue(a, e.name, &m);
      if (m) {
        *e.field = static_cast<int>(v);
        break;
      }
    }
    if (!m) {
      std::fprintf(stderr,
                   "usage: load_bench [--seconds=8] [--inflight=16] [--streams=4] [--window=8]\n"
                   "                  [--pool=2xcores] [--soft-inflight=8] [--inproc-seconds=4]\n"
                   "                  [--soak] [--soak-seconds=300] [--shakend=PATH] [--plaintext]\n"
                   "                  [--only=sign,paced,stream,verify,file,secsipidx,floor]\n");
      std::exit(2);
    }
  }
  f.inflight = std::min(f.inflight, 1024);
  f.soft_inflight = std::min(f.soft_inflight, 1024);
  f.streams = std::min(f.streams, 256);
  f.window = std::min(f.window, 1024);
  return f;
}

}  // namespace

// --- production latency: a network-HSM-like token, a storm of slow x5u servers -----------------

// WaitServing waits up to 30 s for child `*pid`'s health listener at `target` to say SERVING.
void WaitServing(pid_t* pid, const std::string& target, const std::string& log) {
  for (int i = 0; i < 600; ++i) {
    auto h = testing::HealthStatus(target, "");
    if (h.ok() && *h == 1) return;
    if (waitpid(*pid, nullptr, WNOHANG) == *pid) {
      *pid = -1;
      Die("shakend exited at start-up:\n" + testing::ReadFileOrEmpty(log));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Die("shakend is not SERVING after 30 s:\n" + testing::ReadFileOrEmpty(log));
}

// RunSlowHsm starts a second shakend whose token profile signs through the fault-injecting
// PKCS#11 module (tests/testing/fault_pkcs11.h) with `delay` per C_Sign, like a network HSM, and
// `pool` sessions, then drives its Sign closed-loop with `inflight` calls. Little's law bounds the
// rate at pool / delay.
Recorder RunSlowHsm(const testing::DaemonEnv& env, const std::string& yaml, const Flags& flags,
                    int pool, int inflight, absl::Duration delay) {
  const int api = testing::FreeLoopbackPort(), health = testing::FreeLoopbackPort();
  const testing::SoftHsmToken& token = testing::SoftHsmToken::Shared();
  std::string y = yaml;
  // The API and health listeners on ports of their own, no metrics listener, the fault module in
  // front of the same SoftHSM2 token, `pool` sessions all opened at start.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"  api: 127.0.0.1:", absl::StrCat("  api: 127.0.0.1:", api, "\n#")},
           {"  health: 127.0.0.1:", absl::StrCat("  health: 127.0.0.1:", health, "\n#")},
           {"  metrics: 127.0.0.1:", "#"},
           {"module: " + token.module_path(), std::string("module: ") + SHAKEN_FAULT_P11_MODULE},
           {"  pool_size: ", absl::StrCat("  pool_size: ", pool, "\n#")},
           {"  open_at_start: ", absl::StrCat("  open_at_start: ", pool, "\n#")}}) {
    const size_t at = y.find(from);
    if (at == std::string::npos) Die("unexpected configuration: no " + from);
    y.replace(at, from.size(), to);
  }
  const std::string config = env.dir() + "/slowhsm.yaml";
  std::ofstream(config) << y;
  const std::string log = env.dir() + "/slowhsm.log";
  const std::string delay_us = absl::StrCat(absl::ToInt64Microseconds(delay));
  setenv("SHAKEN_FAULT_P11_SIGN_DELAY_US", delay_us.c_str(), 1);
  g_slow = Spawn({flags.shakend, "--config", config}, log, log);
  unsetenv("SHAKEN_FAULT_P11_SIGN_DELAY_US");
  if (g_slow <= 0) Die("cannot start shakend for the slowhsm phase");
  WaitServing(&g_slow, absl::StrCat("127.0.0.1:", health), log);
  auto channel = MakeChannel(env, absl::StrCat("127.0.0.1:", api), flags.plaintext);
  auto stub = shaken::v1::Shaken::NewStub(channel);
  const SignRequest sign = MakeSign("token", "A");
  const auto target = SignTarget(stub.get(), sign);
  g_server_pid = g_slow;
  RunClosed("warm-up", target, inflight, 1.0);
  Recorder rec = RunClosed("slowhsm Sign (token)", target, inflight, flags.seconds);
  g_server_pid = g_shakend;
  rec.Print(absl::StrCat(inflight, " in flight, ", pool, " sessions, ",
                         absl::FormatDuration(delay), " per signature"));
  stub.reset();
  channel.reset();
  StopChild(&g_slow, SIGTERM);
  return rec;
}

// Storm keeps `outstanding` Verify calls in flight against shakend, each with an Identity header
// whose x5u is a fresh URL on a route that answers after `x5u_delay` (never a cache hit), from its
// own thread, until Stop. Their verdicts are whatever the verifier decides in time (mostly 436
// fetch_timeout, since the per-host fetch limit lets few through); what counts is that the RPCs
// are answered. Sign runs meanwhile.
class Storm {
 public:
  Storm(shaken::v1::Shaken::Stub* stub, testing::DaemonEnv& env, int outstanding,
        absl::Duration x5u_delay, int identities)
      : stub_(stub), outstanding_(outstanding) {
    const std::string chain = Must(stir::ReadFile(env.FileChainPath()), "file chain");
    testing::HttpResponse slow;
    slow.body = chain;
    slow.delay_before = x5u_delay;
    env.x5u_server().SetPrefixRoute("/storm/", slow);
    auto signer = Must(stir::MemorySigner::FromPem(Must(stir::ReadFile(env.FileKeyPath()),
                                                        "file key")),
                       "file key");
    stir::ShakenClaims claims;
    claims.attest = "C";
    claims.orig_tn = kOrig;
    claims.dest_tns = {kDest};
    for (int i = 0; i < identities; ++i) {
      auto ps = Must(stir::PassportSigner::Create(
                         signer.get(), env.x5u_server().Url(absl::StrCat("/storm/", i, ".pem")),
                         &stir::SystemClock::Shared(), stir::PassportSigner::Options{.x5u_policy = {.allow_any_port = true}}),
                     "storm passport signer");
      VerifyRequest r;
      r.add_identity(Must(ps->Sign(claims), "storm passport").identity);
      r.mutable_from()->set_tn(kOrig);
      r.mutable_to()->add_tn(kDest);
      requests_.push_back(std::move(r));
    }
    thread_ = std::thread([this] { Run(); });
  }

  // Stop stops issuing, waits for the calls in flight (at most their 10 s deadline + 2 s).
  void Stop() {
    stop_.store(true);
    thread_.join();
  }
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
    VerifyResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<VerifyResponse>> rpc;
    int64_t start_ns = 0;
  };
  void Issue() {
    auto* c = new Call();
    c->start_ns = NowNs();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    c->rpc = stub_->PrepareAsyncVerify(&c->ctx, requests_[next_++ % requests_.size()], &cq_);
    c->rpc->StartCall();
    c->rpc->Finish(&c->resp, &c->status, c);
    peak_ = std::max<uint64_t>(peak_, ++in_flight_);
  }
  void Run() {
    for (int i = 0; i < outstanding_; ++i) Issue();
    const int64_t give_up = NowNs() + 3600'000'000'000;  // replaced when stopping
    int64_t drain_until = give_up;
    while (in_flight_ > 0 && NowNs() < drain_until) {
      void* tag = nullptr;
      bool ok = false;
      if (cq_.AsyncNext(&tag, &ok, WallAt(NowNs() + 100'000'000)) !=
          grpc::CompletionQueue::GOT_EVENT) {
        if (stop_.load() && drain_until == give_up) drain_until = NowNs() + 12'000'000'000;
        continue;
      }
      auto* c = static_cast<Call*>(tag);
      --in_flight_;
      ++answered_;
      if (c->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++deadline_exceeded_;  // allowed: the 436 verdict, or the caller's own deadline
      } else if (!c->status.ok() && rpc_errors_++ == 0) {
        first_error_ = absl::StrCat(c->status.error_code(), ": ", c->status.error_message(),
                                    " after ", (NowNs() - c->start_ns) / 1000000, " ms");
      } else if (c->status.ok()) {
        ++(c->resp.verdict().passed() ? passed_ : refused_);
      }
      delete c;
      if (!stop_.load()) {
        Issue();
      } else if (drain_until == give_up) {
        drain_until = NowNs() + 12'000'000'000;
      }
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  }

  shaken::v1::Shaken::Stub* stub_;
  const int outstanding_;
  std::vector<VerifyRequest> requests_;
  grpc::CompletionQueue cq_;
  std::atomic<bool> stop_{false};
  size_t next_ = 0;
  uint64_t in_flight_ = 0, peak_ = 0, answered_ = 0, rpc_errors_ = 0, deadline_exceeded_ = 0;
  uint64_t passed_ = 0, refused_ = 0;
  std::string first_error_;
  std::thread thread_;
};

#ifndef SHAKEN_LOAD_BENCH_NO_MAIN  // sbc_bench links this file for RunHttp (http_load.h)
int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  if (!flags.floor_server.empty()) return FloorMain(flags.floor_server, flags.floor_port);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (flags.pool <= 0) flags.pool = 2 * cores;
  const double T = flags.seconds;

  // The token, PKI, x5u server and client certificates; shakend runs as its own process.
  // Audit records go to /dev/null (each is still formatted and written through, as in production,
  // but a soak would otherwise fill the disk).
  auto env = Must(testing::DaemonEnv::Create(
                      {.pool_size = flags.pool,
                       .extra_yaml = "logging:\n  audit_file: /dev/null\n",
                       .start_daemon = false}),
                  "test environment");
  const int api = testing::FreeLoopbackPort(), health = testing::FreeLoopbackPort(), metrics = testing::FreeLoopbackPort();
  std::string yaml = absl::StrReplaceAll(
      env->config_yaml(), {{"api: 127.0.0.1:0\n", absl::StrCat("api: 127.0.0.1:", api, "\n")},
                           {"health: 127.0.0.1:0\n", absl::StrCat("health: 127.0.0.1:", health, "\n")},
                           {"metrics: 127.0.0.1:0\n",
                            absl::StrCat("metrics: 127.0.0.1:", metrics, "\n")}});
  if (flags.plaintext) {
    // No TLS and no per-client rules (they name certificate identities).
    const size_t tls = yaml.find("  tls:\n");
    const size_t pkcs11 = yaml.find("pkcs11:\n");
    if (tls == std::string::npos || pkcs11 == std::string::npos) Die("unexpected configuration");
    yaml.replace(tls, pkcs11 - tls, "  allow_insecure: true\n");
  }
  const std::string dir = env->dir();
  const std::string config = dir + "/load.yaml";
  std::ofstream(config) << yaml;
  const std::string shakend_log = dir + "/shakend.log";
  g_shakend = Spawn({flags.shakend, "--config", config}, shakend_log, shakend_log);
  if (g_shakend <= 0) Die("cannot start " + flags.shakend);
  const std::string health_target = absl::StrCat("127.0.0.1:", health);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {  // 30 s
    auto h = testing::HealthStatus(health_target, "");
    ready = h.ok() && *h == 1;
    if (!ready) absl::SleepFor(absl::Milliseconds(50));
    if (waitpid(g_shakend, nullptr, WNOHANG) == g_shakend) {
      g_shakend = -1;
      Die("shakend exited at start-up:\n" + testing::ReadFileOrEmpty(shakend_log));
    }
  }
  if (!ready) Die("shakend is not SERVING after 30 s:\n" + testing::ReadFileOrEmpty(shakend_log));
  const long rss_idle = RssKb(g_shakend);
  g_server_pid = g_shakend;

  auto channel = MakeChannel(*env, absl::StrCat("127.0.0.1:", api), flags.plaintext);
  auto stub = shaken::v1::Shaken::NewStub(channel);
  std::vector<std::string> identities = SignIdentities(stub.get());

  std::printf("load_bench: %d cores, shakend pid %d, pool %d sessions, %g s per phase; load %s\n",
              cores, g_shakend, flags.pool, T, testing::ReadFileOrEmpty("/proc/loadavg").c_str());

  // --- in-process denominators (shakend idle) ---
  testing::SoftHsmToken& token = testing::SoftHsmToken::Shared();
  hsm::SignerConfig sc;
  sc.module_path = token.module_path();
  sc.key_uri = env->token_key_uri();
  sc.pin = hsm::PinSource::FromFile(token.pin_file());
  sc.pool.size = flags.pool;  // the daemon's pkcs11 options (tests/daemon_fixture.cc)
  sc.pool.open_at_start = flags.pool;
  sc.pool.backoff_initial = absl::Milliseconds(20);
  sc.pool.backoff_max = absl::Milliseconds(200);
  std::unique_ptr<hsm::KeyPool> pool = Must(hsm::OpenKeyPool(sc), "in-process key pool");
  const stir::Sha256Digest digest = stir::Sha256("load_bench: a PASSporT header.claims");
  auto pool_sign = [&]() -> absl::Status { return pool->SignDigest(digest).status(); };
  RunThreads(2, 0.5, pool_sign);  // warm-up
  double pool_cpu = 0, verify_cpu = 0;
  const double pool_rate = RunThreads(2, flags.inproc_seconds, pool_sign, &pool_cpu);
  std::printf("%-26s %9.0f /s  cpu/call %.0f us  (hsm::KeyPool::SignDigest, 2 threads)\n",
              "inproc pool sign", pool_rate, pool_cpu);

  // The same verifier settings as shakend's (its configuration's verifier section).
  std::unique_ptr<stir::VerificationStack> inproc =
      MakeVerifier(Must(daemon::ParseConfig(yaml, config), "configuration").verifier);
  const stir::Verifier& verifier = inproc->verifier();
  const stir::CallInfo call{.from_tn = kOrig, .to_tns = {kDest}};
  std::atomic<uint64_t> vi{0};
  auto inproc_verify = [&]() -> absl::Status {
    const std::string& id = identities[vi.fetch_add(1, std::memory_order_relaxed) % kIdentities];
    absl::StatusOr<stir::VerifyResult> r = verifier.Verify({id}, call);
    if (!r.ok()) return r.status();
    if (!r->overall.passed) return absl::InternalError("verdict: " + r->overall.detail);
    return absl::OkStatus();
  };
  RunThreads(2, 0.5, inproc_verify);  // warm-up: one x5u fetch, one chain validation
  const double verify_rate = RunThreads(2, flags.inproc_seconds, inproc_verify, &verify_cpu);
  std::printf("%-26s %9.0f /s  cpu/call %.0f us  (stir::Verifier, warm x5u cache, 2 threads)\n",
              "inproc stir verify", verify_rate, verify_cpu);
  std::fflush(stdout);

  // --- gRPC load ---
  const SignRequest token_sign = MakeSign("token", "A");
  const SignRequest file_sign = MakeSign("file", "C");
  std::vector<VerifyRequest> verify_reqs(kIdentities);
  // Fresh PASSporTs from shakend (Verify checks iat against a 60 s window).
  auto refresh_verify = [&]() -> const std::vector<VerifyRequest>& {
    identities = SignIdentities(stub.get());
    for (int i = 0; i < kIdentities; ++i) {
      verify_reqs[i].Clear();
      verify_reqs[i].add_identity(identities[i]);
      verify_reqs[i].mutable_from()->set_tn(kOrig);
      verify_reqs[i].mutable_to()->add_tn(kDest);
    }
    return verify_reqs;
  };
  const auto token_t = SignTarget(stub.get(), token_sign);
  const auto verify_target = VerifyTarget(stub.get(), verify_reqs);

  RunClosed("warm-up", token_t, flags.inflight, 1.0);
  const long rss_start = RssKb(g_shakend);
  Suite grpc = RunSuite("grpc", stub.get(), flags, refresh_verify, "");
  Recorder& unary = grpc.unary;
  Recorder& paced = grpc.paced;
  Recorder& stream = grpc.stream;
  Recorder& verify = grpc.verify;
  Recorder& soft = grpc.soft;

  Recorder peer("secsipidx sign-csv");
  if (flags.Runs("secsipidx")) {
    const int sport = testing::FreeLoopbackPort();
    g_secsipidx = Spawn({"/usr/bin/secsipidx", "-http-srv", absl::StrCat("127.0.0.1:", sport), "-k",
                         env->FileKeyPath()},
                        "/dev/null", dir + "/secsipidx.log");
    if (g_secsipidx <= 0) Die("cannot start /usr/bin/secsipidx");
    WaitForListener(&g_secsipidx, sport, "secsipidx", dir + "/secsipidx.log");
    const std::string body = absl::StrCat(kOrig, ",", kDest, ",C,,", env->file_x5u());
    const std::string http = absl::StrCat("POST /v1/sign-csv HTTP/1.1\r\nHost: 127.0.0.1:", sport,
                                          "\r\nContent-Type: text/plain\r\nContent-Length: ",
                                          body.size(), "\r\n\r\n", body);
    g_server_pid = g_secsipidx;
    RunHttp("warm-up", sport, http, flags.soft_inflight, 1.0);
    peer = RunHttp("secsipidx sign-csv", sport, http, flags.soft_inflight, T);
    peer.Print(absl::StrCat(flags.soft_inflight, " keep-alive connections"));
    g_server_pid = g_shakend;
    StopChild(&g_secsipidx, SIGTERM);
  }

  // --- the floor: the same keys and verifier behind a server that does nothing else ---
  Suite floor("floor");
  if (flags.Runs("floor")) {
    const int fport = testing::FreeLoopbackPort();
    g_floor = Spawn({"/proc/self/exe", "--floor-server=" + config,
                     absl::StrCat("--floor-port=", fport)},
                    dir + "/floor.log", dir + "/floor.log");
    if (g_floor <= 0) Die("cannot start the floor server");
    WaitForListener(&g_floor, fport, "the floor server", dir + "/floor.log");
    auto fchannel = MakeChannel(*env, absl::StrCat("127.0.0.1:", fport), flags.plaintext);
    auto fstub = shaken::v1::Shaken::NewStub(fchannel);
    g_server_pid = g_floor;
    RunClosed("warm-up", SignTarget(fstub.get(), token_sign), flags.inflight, 1.0);
    floor = RunSuite("floor", fstub.get(), flags, refresh_verify, "; floor server");
    g_server_pid = g_shakend;
    fstub.reset();
    fchannel.reset();
    StopChild(&g_floor, SIGTERM);
  }

  // --- production latency ---
  Recorder slowhsm("slowhsm Sign (token)");
  constexpr int kSlowPool = 32, kSlowInflight = 64;
  constexpr absl::Duration kSlowDelay = absl::Milliseconds(5);
  if (flags.Runs("slowhsm")) {
    slowhsm = RunSlowHsm(*env, yaml, flags, kSlowPool, kSlowInflight, kSlowDelay);
  }
  Recorder calm("storm: Sign, no storm"), stormy("storm: Sign during storm");
  uint64_t storm_verify_errors = 0;
  if (flags.Runs("storm")) {
    calm = RunClosed("storm: Sign, no storm", token_t, flags.inflight, T);
    calm.Print(absl::StrCat(flags.inflight, " in flight, baseline"));
    Storm storm(stub.get(), *env, 200, absl::Seconds(3), 4000);
    absl::SleepFor(absl::Milliseconds(500));  // the storm's 200 calls are waiting by now
    stormy = RunClosed("storm: Sign during storm", token_t, flags.inflight, T);
    stormy.Print(absl::StrCat(flags.inflight, " in flight while 200 Verify wait on a 3 s x5u"));
    storm.Stop();
    storm_verify_errors = storm.rpc_errors();
    std::printf("%-26s %llu Verify calls answered (peak %llu in flight): %llu passed, %llu "
                "refused (436 in time), %llu DEADLINE_EXCEEDED, %llu other RPC errors%s%s\n",
                "storm: Verify", static_cast<unsigned long long>(storm.answered()),
                static_cast<unsigned long long>(storm.in_flight_peak()),
                static_cast<unsigned long long>(storm.passed()),
                static_cast<unsigned long long>(storm.refused()),
                static_cast<unsigned long long>(storm.deadline_exceeded()),
                static_cast<unsigned long long>(storm.rpc_errors()),
                storm.rpc_errors() > 0 ? "; first: " : "", storm.first_error().c_str());
  }

  // --- soak: mixed load, RSS every chunk ---
  long rss_soak_start = 0, rss_end = 0;
  if (flags.soak) {
    rss_soak_start = RssKb(g_shakend);
    std::printf("soak: %d s of Sign / SignStream / Verify in 10 s chunks; RSS %ld KiB\n",
                flags.soak_seconds, rss_soak_start);
    const int64_t soak_end = NowNs() + static_cast<int64_t>(flags.soak_seconds) * 1'000'000'000;
    for (int chunk = 0; NowNs() < soak_end; ++chunk) {
      const double secs = std::min(10.0, (soak_end - NowNs()) / 1e9);
      if (secs < 0.5) break;
      Recorder r("soak");
      switch (chunk % 3) {
        case 0:
          r = RunClosed("soak Sign", token_t, flags.inflight, secs);
          break;
        case 1:
          r = RunStreams("soak SignStream", stub.get(), token_sign, flags.streams, flags.window, secs);
          break;
        default:
          refresh_verify();
          r = RunClosed("soak Verify", verify_target, flags.inflight, secs);
          break;
      }
      std::printf("soak %3d s  %-10s %7.0f /s  err=%llu  RSS %ld KiB\n",
                  static_cast<int>(flags.soak_seconds - (soak_end - NowNs()) / 1'000'000'000),
                  chunk % 3 == 0 ? "Sign" : chunk % 3 == 1 ? "SignStream" : "Verify", r.rate(),
                  static_cast<unsigned long long>(r.errors()), RssKb(g_shakend));
      std::fflush(stdout);
    }
  }
  rss_end = RssKb(g_shakend);

  const std::string load_after = testing::ReadFileOrEmpty("/proc/loadavg");
  StopChild(&g_shakend, SIGTERM);
  channel.reset();

  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  auto growth = [](long from, long to) { return from > 0 ? 100.0 * (to - from) / from : 0.0; };
  std::printf("rss: idle %ld KiB, start of load %ld KiB, end %ld KiB (%+.1f %%)\n", rss_idle,
              rss_start, rss_end, growth(rss_start, rss_end));
  if (flags.soak) {
    std::printf("rss: soak of %d s from %ld KiB to %ld KiB (%+.1f %%)\n", flags.soak_seconds,
                rss_soak_start, rss_end, growth(rss_soak_start, rss_end));
  }
  std::printf("soft: shakend file key %.0f /s p99 %.3f ms; secsipidx %.0f /s p99 %.3f ms\n",
              soft.rate(), soft.PercentileMs(99), peer.rate(), peer.PercentileMs(99));
  std::printf("load average at the end: %s", load_after.c_str());
  const uint64_t errors = grpc.errors() + peer.errors() + floor.errors() + slowhsm.errors() +
                         calm.errors() + stormy.errors() + storm_verify_errors;
  if (errors > 0) std::printf("load_bench: %llu failed calls (see above)\n",
                              static_cast<unsigned long long>(errors));
  if (flags.soak) {
    std::printf("rss_growth_pct=%.1f (over the %d s soak)\n", growth(rss_soak_start, rss_end),
                flags.soak_seconds);
  } else {
    std::printf("rss_growth_pct=%.1f (short run, from the first second of load: mostly warm-up; "
                "--soak gives the 5-minute figure)\n",
                growth(rss_start, rss_end));
  }
  if (flags.Runs("floor")) {
    std::printf("floor: shakend's rate as a share of the floor's: Sign %.0f %%, Sign @80%% p99 "
                "%.2f vs %.2f ms, SignStream %.0f %%, Verify %.0f %%, Sign (file key) %.0f %%\n",
                100 * ratio(unary.rate(), floor.unary.rate()), paced.PercentileMs(99),
                floor.paced.PercentileMs(99), 100 * ratio(stream.rate(), floor.stream.rate()),
                100 * ratio(verify.rate(), floor.verify.rate()),
                100 * ratio(soft.rate(), floor.soft.rate()));
    std::printf(
        "load_bench_floor: sign_vs_pool=%.2f stream_vs_pool=%.2f verify_vs_inproc=%.2f "
        "sign_p99_ms=%.2f soft_vs_secsipidx=%.2f\n",
        ratio(floor.unary.rate(), pool_rate), ratio(floor.stream.rate(), pool_rate),
        ratio(floor.verify.rate(), verify_rate), floor.paced.PercentileMs(99),
        ratio(floor.soft.rate(), peer.rate()));
  }
  std::printf(
      "load_bench: sign_vs_pool=%.2f stream_vs_pool=%.2f verify_vs_inproc=%.2f sign_p99_ms=%.2f "
      "soft_vs_secsipidx=%.2f\n",
      ratio(unary.rate(), pool_rate), ratio(stream.rate(), pool_rate),
      ratio(verify.rate(), verify_rate), paced.PercentileMs(99), ratio(soft.rate(), peer.rate()));
  if (flags.Runs("slowhsm") || flags.Runs("storm")) {
    const double bound = kSlowPool / absl::ToDoubleSeconds(kSlowDelay);
    std::printf("load_bench_latency: slowhsm_vs_bound=%.2f storm_sign_p99_ratio=%.2f "
                "storm_sign_failures=%llu\n",
                ratio(slowhsm.rate(), bound),
                ratio(stormy.PercentileMs(99), calm.PercentileMs(99)),
                static_cast<unsigned long long>(stormy.errors()));
  }
  std::fflush(stdout);

  pool.reset();
  inproc.reset();
  env.reset();
  std::error_code ec;
  std::filesystem::remove_all(token.dir(), ec);
  // SoftHSM2 crashes when de-initialised from exit handlers: leave without running them.
  _exit(errors > 0 ? 1 : 0);
}
#endif  // SHAKEN_LOAD_BENCH_NO_MAIN

// http_load.h: RunHttp for the other benchmarks of this folder.
shaken::bench::HttpLoad shaken::bench::RunHttpLoad(const std::string& name, int port,
                                                   const std::string& request, int conns,
                                                   double seconds, pid_t server_pid) {
  g_server_pid = server_pid;
  g_secsipidx = server_pid;  // killed by Die()
  Recorder rec = RunHttp(name, port, request, conns, seconds);
  g_secsipidx = -1;
  HttpLoad out;
  out.rate = rec.rate();
  out.p50_ms = rec.PercentileMs(50);
  out.p99_ms = rec.PercentileMs(99);
  out.calls = rec.count();
  out.errors = rec.errors();
  out.server_cpu_us = rec.ServerCpuUs();
  if (name != "warm-up") rec.Print(absl::StrCat(conns, " keep-alive connections"));
  return out;
}
