#include "bench/grpc_load.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "tests/testing/https_server.h"

namespace shaken::bench {
namespace {

constexpr int kMaxPacedInflight = 512;


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
void Complete(const UnaryTarget<Req, Resp>& t, void* tag, LatencyRecorder* rec, int64_t end,
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

}  // namespace

template <typename Req, typename Resp>
LatencyRecorder RunClosed(const std::string& name, const UnaryTarget<Req, Resp>& t, int inflight,
                   double seconds) {
  LatencyRecorder rec(name);
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

template <typename Req, typename Resp>
LatencyRecorder RunPaced(const std::string& name, const UnaryTarget<Req, Resp>& t, double rate,
                  double seconds, uint64_t* late_sends) {
  LatencyRecorder rec(name);
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

template LatencyRecorder RunClosed(const std::string&, const UnaryTarget<SignRequest, SignResponse>&,
                                   int, double);
template LatencyRecorder RunClosed(const std::string&,
                                   const UnaryTarget<VerifyRequest, VerifyResponse>&, int, double);
template LatencyRecorder RunPaced(const std::string&, const UnaryTarget<SignRequest, SignResponse>&,
                                  double, double, uint64_t*);

LatencyRecorder RunStreams(const std::string& name, shaken::v1::Shaken::Stub* stub, const SignRequest& req,
                    int streams, int window, double seconds) {
  LatencyRecorder rec(name);
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


Storm::Storm(shaken::v1::Shaken::Stub* stub, testing::DaemonEnv& env, int outstanding,
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

void Storm::Stop() {
  stop_.store(true);
  thread_.join();
}

void Storm::Issue() {
  auto* c = new Call();
  c->start_ns = NowNs();
  c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  c->rpc = stub_->PrepareAsyncVerify(&c->ctx, requests_[next_++ % requests_.size()], &cq_);
  c->rpc->StartCall();
  c->rpc->Finish(&c->resp, &c->status, c);
  peak_ = std::max<uint64_t>(peak_, ++in_flight_);
}

void Storm::Run() {
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

}  // namespace shaken::bench
