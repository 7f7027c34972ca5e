#include "daemon/sip/redirect_server.h"

#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

// sofia-sip's callbacks take typed "magic" pointers; ours are the Loop.
#define SU_ROOT_MAGIC_T shaken::daemon::sip::RedirectServer::Loop
#define SU_WAKEUP_ARG_T shaken::daemon::sip::RedirectServer::Loop
#define SU_TIMER_ARG_T shaken::daemon::sip::RedirectServer::Loop
#define NTA_LEG_MAGIC_T shaken::daemon::sip::RedirectServer::Loop

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "daemon/log.h"
#include "daemon/sip/sip_rules.h"
#include "daemon/sip/transports.h"
#include "stir/absl_compat.h"
#include "stir/passport.h"

extern "C" {
// sofia-sip's per-module log objects (not declared in its public headers).
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

namespace shaken::daemon::sip {
namespace {

// NTP (1900) to Unix (1970) epoch: sofia's sip_time_t counts from 1900.
constexpr int64_t kNtpToUnixSeconds = 2208988800LL;
// RFC 3261 §17.2.1: a 100 Trying unless the final answer comes within 200 ms. The loop looks
// every kTick and sends it to INVITEs waiting longer than kTryingAfter.
constexpr absl::Duration kTryingAfter = absl::Milliseconds(100);
constexpr int kTickMs = 50;
constexpr char kAllow[] = "Allow: INVITE, ACK, CANCEL, OPTIONS";
// Each message's memory starts as one block of its size plus this (sofia-sip's preload): the
// parsed headers of a request, and the answer built from them, come out of it instead of a
// malloc each (sip_bench: about a tenth less CPU per call).
constexpr unsigned kMessagePreload = 4096;

// Sofia writes its diagnostics through su_log; they go to our log stream at debug level.
void SofiaLog(void* /*stream*/, char const* fmt, va_list ap) {
  char buf[512];
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (n <= 0) return;
  std::string_view line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (!line.empty()) Log(LogLevel::kDebug, "sip_stack", {{"message", line}});
}

void InitSofiaOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    su_init();
    // P-Asserted-Identity and the other extension headers are parsed (sip_p_asserted_identity).
    sip_update_default_mclass(sip_extend_mclass(nullptr));
    for (su_log_t* l : {su_log_default, nta_log, tport_log}) su_log_redirect(l, SofiaLog, nullptr);
  });
}

// FindHeader: the first extension header named `name` (case-insensitive), or null.
const sip_unknown_t* FindHeader(const sip_t* sip, const char* name) {
  for (const sip_unknown_t* u = sip->sip_unknown; u != nullptr; u = u->un_next) {
    if (u->un_name != nullptr && strcasecmp(u->un_name, name) == 0) return u;
  }
  return nullptr;
}

// UrlTn: the telephone number of a sip:, sips: or tel: URI (RFC 8224 §8.3).
absl::StatusOr<std::string> UrlTn(const url_t* url) {
  const char* user = url->url_type == url_tel ? url->url_host : url->url_user;
  if (user == nullptr) return absl::InvalidArgumentError("the URI has no user part (no number)");
  return TnFromUriUser(user);
}

// CallingTn: P-Asserted-Identity (the first that is a telephone number), else From.
absl::StatusOr<std::string> CallingTn(const sip_t* sip) {
  for (const sip_p_asserted_identity_t* a = sip_p_asserted_identity(sip); a != nullptr;
       a = a->paid_next) {
    absl::StatusOr<std::string> tn = UrlTn(a->paid_url);
    if (tn.ok()) return tn;
  }
  if (sip->sip_from == nullptr) return absl::InvalidArgumentError("no From header");
  return UrlTn(sip->sip_from->a_url);
}

// AssertedPrefix is a P-Asserted-Identity value up to where ";verstat=...>" goes: the display
// name and the URI without a verstat parameter of its own or URI headers.
std::string AssertedPrefix(const char* display, const url_t* url) {
  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string out;
  url_t* u = url_hdup(home, url);
  if (u != nullptr) {
    if (u->url_params != nullptr) {
      const char* rest = url_strip_param_string(const_cast<char*>(u->url_params), "verstat");
      u->url_params = rest != nullptr && *rest != '\0' ? rest : nullptr;
    }
    u->url_headers = nullptr;
    char* text = url_as_string(home, u);
    if (display != nullptr && *display != '\0') out = absl::StrCat(display, " ");
    absl::StrAppend(&out, "<", text != nullptr ? text : "");
  }
  su_home_deinit(home);
  return out;
}

}  // namespace

// Pending is one INVITE handed to the core: what the core reads until it completes, and what the
// answer needs. No sofia object: a completion may drop it on any thread.
struct Pending {
  uint64_t id = 0;
  SipRequestRole role = SipRequestRole::kSign;
  Caller caller;
  shaken::v1::SignRequest sign_request;
  shaken::v1::SignResponse sign_response;
  shaken::v1::VerifyRequest verify_request;
  shaken::v1::VerifyResponse verify_response;
  std::string contact;                // <Request-URI>
  std::vector<std::string> asserted;  // AssertedPrefix of each identity to rewrite
  absl::Status status;
};

// Mailbox hands completed Pendings to the loop: from the loop itself (a completion inside the
// call) straight to `local`, from any other thread through `queue` and the eventfd. Shared with
// the completions, so that one arriving after the server stopped finds it closed and drops.
struct Mailbox {
  absl::Mutex mu;
  std::vector<std::unique_ptr<Pending>> queue ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;
  int efd = -1;
  std::thread::id loop_id;                             // set before the first call
  std::vector<std::unique_ptr<Pending>>* local = nullptr;  // loop thread only

  void Post(std::unique_ptr<Pending> p) {
    if (std::this_thread::get_id() == loop_id && local != nullptr) {
      local->push_back(std::move(p));
      return;
    }
    absl::MutexLock lock(&mu);
    if (closed) return;
    const bool was_empty = queue.empty();
    queue.push_back(std::move(p));
    if (was_empty) Wake();
  }
  // Wake writes the eventfd; the loop drains the whole queue on each wake-up.
  void Wake() const {
    const uint64_t one = 1;
    (void)!write(efd, &one, sizeof one);
  }
};

class RedirectServer::Loop {
 public:
  Loop(const SipConfig& config, RedirectServerDeps deps)
      : config_(config),
        deps_(std::move(deps)),
        mailbox_(std::make_shared<Mailbox>()),
        max_iat_skew_ns_(absl::ToInt64Nanoseconds(deps_.max_iat_skew)) {}

  void SetMaxIatSkew(absl::Duration skew) {
    max_iat_skew_ns_.store(absl::ToInt64Nanoseconds(skew), std::memory_order_relaxed);
  }

  // Start runs the loop on its own thread and returns once the transports are bound (or not).
  absl::Status Start(int* udp_port, int* tcp_port) {
    thread_ = std::thread([this] { Main(); });
    started_.WaitForNotification();
    if (!start_status_.ok()) {
      thread_.join();
      return start_status_;
    }
    *udp_port = udp_port_;
    *tcp_port = tcp_port_;
    return absl::OkStatus();
  }

  void Shutdown(absl::Time deadline) {
    if (!thread_.joinable()) return;
    draining_.store(true);
    while (in_flight_count_.load() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    stopping_.store(true);
    {
      absl::MutexLock lock(&mailbox_->mu);
      mailbox_->Wake();
    }
    thread_.join();
  }

 private:
  struct InFlight {
    nta_incoming_t* irq;
    absl::Time start;
    bool trying_sent;
  };

  void Main() {
    InitSofiaOnce();
    mailbox_->loop_id = std::this_thread::get_id();
    start_status_ = Open();
    const bool ok = start_status_.ok();
    started_.Notify();
    if (ok) su_root_run(root_);
    Close();
  }

  absl::Status Open() {
    root_ = su_root_create(this);
    if (root_ == nullptr) return absl::InternalError("sofia-sip: su_root_create failed");
    mailbox_->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mailbox_->efd < 0) return absl::InternalError("eventfd failed");
    if (su_wait_create(&wait_, mailbox_->efd, SU_WAIT_IN) != 0 ||
        su_root_register(root_, &wait_, &Loop::OnWake, this, 0) < 0) {
      return absl::InternalError("sofia-sip: cannot register the wake-up descriptor");
    }
    registered_ = true;
    struct Bind {
      const std::string* address;
      const char* transport;
      const char* key;
    };
    std::vector<Bind> binds;
    if (!config_.udp.empty()) binds.push_back({&config_.udp, "udp", "listen.sip.udp"});
    if (!config_.tcp.empty()) binds.push_back({&config_.tcp, "tcp", "listen.sip.tcp"});
    for (const Bind& b : binds) {
      const std::string url = SofiaUrl(*b.address, b.transport);
      const bool bound =
          agent_ == nullptr
              ? (agent_ = nta_agent_create(
                     root_, URL_STRING_MAKE(url.c_str()), nullptr, nullptr,
                     NTATAG_MAXSIZE(config_.max_message_bytes),
                     // Answer a CANCEL of an INVITE still in the core with 487 ourselves.
                     NTATAG_CANCEL_487(1), NTATAG_UA(0), NTATAG_PRELOAD(kMessagePreload),
                     // T4 sets Timer I, the Confirmed state of our INVITE transactions (and
                     // client timers a redirect server never runs).
                     NTATAG_SIP_T4(static_cast<unsigned>(absl::ToInt64Milliseconds(
                         config_.timer_i))),
                     TPTAG_UDP_RMEM(static_cast<unsigned>(config_.udp_receive_buffer)),
                     TAG_END())) != nullptr
              : nta_agent_add_tport(
                    agent_, URL_STRING_MAKE(url.c_str()),
                    TPTAG_UDP_RMEM(static_cast<unsigned>(config_.udp_receive_buffer)),
                    TAG_END()) == 0;
      if (!bound) {
        return absl::UnavailableError(absl::StrCat("cannot listen on ", b.key, " ", *b.address,
                                                   " (address in use, or not of this host?)"));
      }
    }
    for (tport_t* tp = tport_primaries(nta_agent_tports(agent_)); tp != nullptr;
         tp = tport_next(tp)) {
      const tp_name_t* name = tport_name(tp);
      int port = 0;
      if (name == nullptr || name->tpn_port == nullptr ||
          !absl::SimpleAtoi(name->tpn_port, &port)) {
        continue;
      }
      if (strcasecmp(name->tpn_proto, "udp") == 0) udp_port_ = port;
      if (strcasecmp(name->tpn_proto, "tcp") == 0) tcp_port_ = port;
    }
    if (udp_port_ != 0) WarnIfReceiveBufferCapped(config_.udp_receive_buffer);
    // The default leg: every request outside a dialog comes here (a redirect server has none).
    leg_ = nta_leg_tcreate(agent_, &Loop::OnRequest, this, NTATAG_NO_DIALOG(1), TAG_END());
    if (leg_ == nullptr) return absl::InternalError("sofia-sip: nta_leg_tcreate failed");
    tick_ = su_timer_create(su_root_task(root_), kTickMs);
    if (tick_ == nullptr || su_timer_run(tick_, &Loop::OnTick, this) != 0) {
      return absl::InternalError("sofia-sip: cannot start the 100 Trying timer");
    }
    return absl::OkStatus();
  }

  void Close() {
    {
      absl::MutexLock lock(&mailbox_->mu);
      mailbox_->closed = true;
      mailbox_->queue.clear();
      if (mailbox_->efd >= 0) close(mailbox_->efd);
      mailbox_->efd = -1;
    }
    for (auto& [id, f] : in_flight_) nta_incoming_destroy(f.irq);
    in_flight_.clear();
    in_flight_count_.store(0);
    if (tick_ != nullptr) su_timer_destroy(tick_);
    if (leg_ != nullptr) nta_leg_destroy(leg_);
    if (agent_ != nullptr) nta_agent_destroy(agent_);
    if (registered_) su_root_unregister(root_, &wait_, &Loop::OnWake, this);
    if (root_ != nullptr) su_root_destroy(root_);
  }

  static int OnWake(Loop* self, su_wait_t* /*w*/, Loop* /*arg*/) {
    uint64_t n = 0;
    (void)!read(self->mailbox_->efd, &n, sizeof n);
    std::vector<std::unique_ptr<Pending>> done;
    {
      absl::MutexLock lock(&self->mailbox_->mu);
      done.swap(self->mailbox_->queue);
    }
    for (auto& p : done) self->Finish(std::move(p));
    if (self->stopping_.load()) su_root_break(self->root_);
    return 0;
  }

  static void OnTick(Loop* self, su_timer_t* /*t*/, Loop* /*arg*/) {
    usize_t transactions = 0;
    nta_agent_get_stats(self->agent_, NTATAG_S_IRQ_HASH_USED_REF(transactions), TAG_END());
    self->deps_.core->metrics()->SetSipTransactions(transactions);
    const absl::Time now = absl::Now();
    for (auto& [id, f] : self->in_flight_) {
      if (!f.trying_sent && now - f.start >= kTryingAfter) {
        nta_incoming_treply(f.irq, SIP_100_TRYING, TAG_END());
        f.trying_sent = true;
      }
    }
  }

  static int OnRequest(Loop* self, nta_leg_t* /*leg*/, nta_incoming_t* irq, const sip_t* sip) {
    self->Handle(irq, sip);
    return 0;  // answered (or being answered) by us
  }

  // Reply sends a final answer and lets NTA keep the transaction for retransmissions.
  void Reply(nta_incoming_t* irq, SipRequestRole role, absl::Time start, int code,
             const char* phrase, const std::string& headers, const char* contact = nullptr) {
    nta_incoming_treply(irq, code, phrase, TAG_IF(contact != nullptr, SIPTAG_CONTACT_STR(contact)),
                        TAG_IF(!headers.empty(), SIPTAG_HEADER_STR(headers.c_str())), TAG_END());
    nta_incoming_destroy(irq);
    deps_.core->metrics()->RecordSip(role, code, absl::Now() - start);
  }

  // Refuse answers `why` (a refusal of ours or of the core) as AnswerForRefusal says, with a
  // Warning saying what was wrong; a 503 for overload carries Retry-After.
  void Refuse(nta_incoming_t* irq, SipRequestRole role, absl::Time start, const absl::Status& why,
              SipAnswer answer) {
    std::string headers = absl::StrCat("Warning: 399 shakend \"",
                                       QuotedText(ToStd(why.message())), "\"");
    if (answer.retry_after) {
      absl::StrAppend(&headers, "\r\nRetry-After: ",
                      absl::ToInt64Seconds(config_.retry_after));
    }
    Reply(irq, role, start, answer.code, answer.phrase, headers);
  }

  // Identify names the caller by the source address of its request.
  Caller Identify(nta_incoming_t* irq) const {
    msg_t* msg = nta_incoming_getrequest(irq);
    const su_addrinfo_t* ai = msg != nullptr ? msg_addrinfo(msg) : nullptr;
    Caller caller = deps_.core->authorizer().IdentifyAddress(ai != nullptr ? ai->ai_addr : nullptr);
    if (msg != nullptr) msg_destroy(msg);
    return caller;
  }

  void Handle(nta_incoming_t* irq, const sip_t* sip) {
    const absl::Time start = absl::Now();
    if (sip == nullptr || sip->sip_request == nullptr) {
      nta_incoming_destroy(irq);
      return;
    }
    const sip_method_t method = sip->sip_request->rq_method;
    if (method == sip_method_ack) {  // an ACK outside any transaction of ours: nothing to do
      nta_incoming_destroy(irq);
      return;
    }
    const SipRequestRole kind = method == sip_method_invite    ? SipRequestRole::kSign
                                : method == sip_method_options ? SipRequestRole::kOptions
                                                               : SipRequestRole::kOther;
    Caller caller = Identify(irq);
    if (!caller.unrestricted && caller.rules.empty()) {
      Reply(irq, kind, start, SIP_403_FORBIDDEN, "");
      return;
    }
    if (method == sip_method_options) {
      // The SBC's heartbeat: 200 while the daemon serves, 503 while it does not (NOT_SERVING).
      if (draining_.load() || !deps_.serving()) {
        Reply(irq, kind, start, SIP_503_SERVICE_UNAVAILABLE,
              absl::StrCat("Retry-After: ", absl::ToInt64Seconds(config_.retry_after)));
      } else {
        Reply(irq, kind, start, SIP_200_OK, kAllow);
      }
      return;
    }
    if (method == sip_method_cancel) {  // NTA matched none of our INVITEs
      Reply(irq, kind, start, SIP_481_NO_TRANSACTION, "");
      return;
    }
    if (method != sip_method_invite) {
      Reply(irq, kind, start, SIP_405_METHOD_NOT_ALLOWED, kAllow);
      return;
    }
    if (draining_.load()) {
      Reply(irq, kind, start, SIP_503_SERVICE_UNAVAILABLE,
            absl::StrCat("Retry-After: ", absl::ToInt64Seconds(config_.retry_after)));
      return;
    }
    // RFC 3261 §8.2 and §16.3: a request that may not travel further is not redirected on.
    if (sip->sip_max_forwards != nullptr && sip->sip_max_forwards->mf_count == 0) {
      Reply(irq, kind, start, SIP_483_TOO_MANY_HOPS, "");
      return;
    }
    const bool has_identity = FindHeader(sip, "Identity") != nullptr || FindHeader(sip, "y");
    // The caller's rules may say what the listener says otherwise: the first that does wins.
    SipRole role = config_.role;
    const std::string* profile = &config_.profile;
    const std::string* default_attest = &config_.default_attest;
    for (auto it = caller.rules.rbegin(); it != caller.rules.rend(); ++it) {
      if ((*it)->sip_role.has_value()) role = *(*it)->sip_role;
      if (!(*it)->sip_profile.empty()) profile = &(*it)->sip_profile;
      if (!(*it)->sip_default_attest.empty()) default_attest = &(*it)->sip_default_attest;
    }
    if (role == SipRole::kAuto) role = has_identity ? SipRole::kVerify : SipRole::kSign;

    auto p = std::make_unique<Pending>();
    p->caller = std::move(caller);
    p->role = role == SipRole::kSign ? SipRequestRole::kSign : SipRequestRole::kVerify;
    {
      su_home_t home[1] = {SU_HOME_INIT(home)};
      char* ruri = url_as_string(home, sip->sip_request->rq_url);
      p->contact = absl::StrCat("<", ruri != nullptr ? ruri : "", ">");
      su_home_deinit(home);
    }
    const url_t* called =
        config_.dest_from_request_uri || sip->sip_to == nullptr ? sip->sip_request->rq_url
                                                                : sip->sip_to->a_url;
    std::optional<int64_t> date;
    if (sip->sip_date != nullptr) {
      date = static_cast<int64_t>(sip->sip_date->d_time) - kNtpToUnixSeconds;
    }
    absl::Status invalid;
    if (p->role == SipRequestRole::kSign) {
      invalid = BuildSign(sip, called, date, *profile, *default_attest, p.get());
      // RFC 8224 §6.1: no PASSporT for a Date outside the freshness policy: 403 Stale Date.
      if (invalid.ok() && date.has_value() &&
          absl::AbsDuration(absl::FromUnixSeconds(*date) - start) >
              absl::Nanoseconds(max_iat_skew_ns_.load(std::memory_order_relaxed))) {
        Reply(irq, p->role, start, 403, "Stale Date", "");
        return;
      }
    } else {
      BuildVerify(sip, called, date, p.get());
    }
    if (!invalid.ok()) {
      Refuse(irq, p->role, start, invalid, {400, "Bad Request", false});
      return;
    }
    Call(irq, start, std::move(p));
  }

  absl::Status BuildSign(const sip_t* sip, const url_t* called, std::optional<int64_t> date,
                         const std::string& profile, const std::string& default_attest,
                         Pending* p) const {
    shaken::v1::SignRequest& r = p->sign_request;
    absl::StatusOr<std::string> orig = CallingTn(sip);
    if (!orig.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the calling number (P-Asserted-Identity, else From): ", orig.status().message()));
    }
    absl::StatusOr<std::string> dest = UrlTn(called);
    if (!dest.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the called number (", config_.dest_from_request_uri ? "Request-URI" : "To",
                       "): ", dest.status().message()));
    }
    r.mutable_orig()->set_tn(*std::move(orig));
    r.mutable_dest()->add_tn(*std::move(dest));
    std::string attest;
    for (const std::string& name : config_.attestation_headers) {
      const sip_unknown_t* h = FindHeader(sip, name.c_str());
      if (h == nullptr || h->un_value == nullptr) continue;
      // "Attestation-Info: A", possibly with parameters after ';'.
      std::string_view v = h->un_value;
      v = v.substr(0, v.find(';'));
      attest = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(ToAbsl(v)));
      if (!stir::IsAttestLevel(attest)) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " must be A, B or C; got \"", attest.substr(0, 8), "\""));
      }
      break;
    }
    if (attest.empty()) attest = default_attest;
    if (attest.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no attestation level: send one of the headers ",
                       absl::StrJoin(config_.attestation_headers, ", "),
                       " (or set listen.sip.default_attest, or the client's sip_default_attest)"));
    }
    r.set_attest(attest);
    for (const char* name : {"Origination-ID", "P-Origination-ID"}) {
      if (const sip_unknown_t* h = FindHeader(sip, name); h != nullptr && h->un_value != nullptr) {
        r.set_origid(std::string(absl::StripAsciiWhitespace(h->un_value)));
        break;
      }
    }
    if (date.has_value()) r.set_iat(*date);
    r.set_profile(profile);
    if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr) {
      r.set_request_id(std::string(sip->sip_call_id->i_id).substr(0, 128));
    }
    return absl::OkStatus();
  }

  void BuildVerify(const sip_t* sip, const url_t* called, std::optional<int64_t> date,
                   Pending* p) const {
    shaken::v1::VerifyRequest& r = p->verify_request;
    for (const sip_unknown_t* u = sip->sip_unknown; u != nullptr; u = u->un_next) {
      if (u->un_name != nullptr && u->un_value != nullptr &&
          (strcasecmp(u->un_name, "Identity") == 0 || strcasecmp(u->un_name, "y") == 0)) {
        r.add_identity(u->un_value);
      }
    }
    // An unusable number is left empty: the core answers it (a 438 verdict, or 400).
    if (absl::StatusOr<std::string> from = CallingTn(sip); from.ok()) {
      r.mutable_from()->set_tn(*std::move(from));
    }
    if (absl::StatusOr<std::string> to = UrlTn(called); to.ok()) {
      r.mutable_to()->add_tn(*std::move(to));
    }
    if (date.has_value()) r.set_time(*date);
    if (sip->sip_call_id != nullptr && sip->sip_call_id->i_id != nullptr) {
      r.set_request_id(std::string(sip->sip_call_id->i_id).substr(0, 128));
    }
    for (const sip_p_asserted_identity_t* a = sip_p_asserted_identity(sip); a != nullptr;
         a = a->paid_next) {
      p->asserted.push_back(AssertedPrefix(a->paid_display, a->paid_url));
    }
    if (p->asserted.empty() && sip->sip_from != nullptr) {
      p->asserted.push_back(AssertedPrefix(sip->sip_from->a_display, sip->sip_from->a_url));
    }
  }

  // Call hands `p` to the core. A completion on this thread (a refusal, a software key, cached
  // certificates) is answered before Call returns; any other comes back through the mailbox.
  void Call(nta_incoming_t* irq, absl::Time start, std::unique_ptr<Pending> p) {
    p->id = ++next_id_;
    in_flight_[p->id] = {irq, start, false};
    in_flight_count_.fetch_add(1);
    std::vector<std::unique_ptr<Pending>> local;
    mailbox_->local = &local;
    Pending& c = *p;
    const ServiceCore::CallContext ctx{&c.caller, Front::kSip,
                                       c.role == SipRequestRole::kSign ? Method::kSign
                                                                       : Method::kVerify,
                                       start + config_.timeout};
    auto done = [mailbox = mailbox_, p = std::move(p)](absl::Status status) mutable {
      p->status = std::move(status);
      mailbox->Post(std::move(p));
    };
    if (c.role == SipRequestRole::kSign) {
      deps_.core->StartSign(ctx, c.sign_request, &c.sign_response, std::move(done));
    } else {
      deps_.core->StartVerify(ctx, c.verify_request, &c.verify_response, std::move(done));
    }
    mailbox_->local = nullptr;
    for (auto& finished : local) Finish(std::move(finished));
  }

  // Finish answers a Pending the core completed.
  void Finish(std::unique_ptr<Pending> p) {
    auto it = in_flight_.find(p->id);
    if (it == in_flight_.end()) return;
    nta_incoming_t* irq = it->second.irq;
    const absl::Time start = it->second.start;
    in_flight_.erase(it);
    in_flight_count_.fetch_sub(1);
    if (!p->status.ok()) {
      Refuse(irq, p->role, start, p->status, AnswerForRefusal(p->status));
      return;
    }
    if (p->role == SipRequestRole::kSign) {
      // The only answer that carries an Identity: one the core completed whole.
      Reply(irq, p->role, start, SIP_302_MOVED_TEMPORARILY,
            absl::StrCat("Identity: ", p->sign_response.identity()), p->contact.c_str());
      return;
    }
    const shaken::v1::Verdict& v = p->verify_response.verdict();
    std::string headers;
    for (const std::string& prefix : p->asserted) {
      // 3GPP TS 24.229 §7.2A.20: verstat is a parameter of the asserted identity's URI.
      if (!headers.empty()) headers += "\r\n";
      absl::StrAppend(&headers, "P-Asserted-Identity: ", prefix, ";verstat=", v.verstat(), ">");
    }
    if (v.passed() && !v.attest().empty()) {
      absl::StrAppend(&headers, "\r\nAttestation-Info: ", v.attest());
    }
    if (!v.passed()) {
      absl::StrAppend(&headers, "\r\nReason: ", StirReasonOf(v));
      if (config_.decline_failed) {
        Reply(irq, p->role, start, SIP_603_DECLINE, headers);
        return;
      }
    }
    Reply(irq, p->role, start, SIP_302_MOVED_TEMPORARILY, headers, p->contact.c_str());
  }

  const SipConfig config_;
  const RedirectServerDeps deps_;
  std::shared_ptr<Mailbox> mailbox_;
  std::thread thread_;
  absl::Notification started_;
  absl::Status start_status_;
  int udp_port_ = 0;
  int tcp_port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_count_{0};
  std::atomic<int64_t> max_iat_skew_ns_;
  // Loop thread only.
  su_root_t* root_ = nullptr;
  su_wait_t wait_{};
  bool registered_ = false;
  nta_agent_t* agent_ = nullptr;
  nta_leg_t* leg_ = nullptr;
  su_timer_t* tick_ = nullptr;
  uint64_t next_id_ = 0;
  absl::flat_hash_map<uint64_t, InFlight> in_flight_;
};

absl::StatusOr<std::unique_ptr<RedirectServer>> RedirectServer::Start(const SipConfig& config,
                                                                      RedirectServerDeps deps) {
  std::unique_ptr<RedirectServer> s(new RedirectServer());
  s->loop_ = std::make_unique<Loop>(config, std::move(deps));
  if (absl::Status st = s->loop_->Start(&s->udp_port_, &s->tcp_port_); !st.ok()) return st;
  return s;
}

void RedirectServer::SetMaxIatSkew(absl::Duration skew) {
  if (loop_ != nullptr) loop_->SetMaxIatSkew(skew);
}

void RedirectServer::Shutdown(absl::Time deadline) {
  if (loop_ != nullptr) loop_->Shutdown(deadline);
}

RedirectServer::~RedirectServer() { Shutdown(absl::Now()); }

}  // namespace shaken::daemon::sip
