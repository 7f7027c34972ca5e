#include "daemon/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <grpc/support/log.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "stir/json.h"

namespace shaken::daemon {
namespace {

absl::StatusOr<int> OpenAuditFile(const std::string& path);

// AuditSink writes whole audit records to one file descriptor, which Reopen replaces.
class AuditSink {
 public:
  AuditSink(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~AuditSink() {
    if (owned_) close(fd_);
  }
  AuditSink(const AuditSink&) = delete;
  AuditSink& operator=(const AuditSink&) = delete;

  // Write writes `line` (ending in '\n') in one write(2). Returns 0, or the errno of a record
  // that did not land whole (ENOSPC for a short write).
  int Write(const std::string& line) {
    absl::MutexLock lock(&mu_);
    ssize_t n;
    do {
      n = write(fd_, line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(line.size())) return 0;
    const int error = n < 0 ? errno : ENOSPC;
    if (n > 0) {
      // A short write (a full disk) left a torn record at the end of the file: with O_APPEND and
      // this mutex, the file offset is the end of exactly these n bytes. Cut them off.
      const off_t end = lseek(fd_, 0, SEEK_CUR);
      if (end >= n) (void)ftruncate(fd_, end - n);
    }
    return error;
  }

  // Reopen opens the file by its name again (after logrotate moved it away) and writes every
  // later record there; a record being written meanwhile lands whole in one of the two. On
  // failure the old file keeps receiving records. Standard error is not reopened.
  absl::Status Reopen() {
    if (!owned_) return absl::OkStatus();
    absl::StatusOr<int> fd = OpenAuditFile(name_);
    if (!fd.ok()) return fd.status();
    absl::MutexLock lock(&mu_);
    close(fd_);
    fd_ = *fd;
    return absl::OkStatus();
  }
  const std::string& name() const { return name_; }

 private:
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  const bool owned_;
  const std::string name_;
};

struct State {
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<AuditSink> audit;
  bool json = false;
  AuditFailurePolicy on_failure = AuditFailurePolicy::kRefuse;
};

std::atomic<bool> audit_available{true};
std::atomic<uint64_t> audit_failures{0};

// OpenAuditFile opens `path` for appending; a file it creates gets mode 0640 whatever the umask.
absl::StatusOr<int> OpenAuditFile(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_CREAT | O_EXCL, 0640);
    if (fd >= 0 && fchmod(fd, 0640) != 0) {
      const int e = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("cannot set mode 0640 on logging.audit_file ", path, ": ", strerror(e)));
    }
  }
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open logging.audit_file ", path, ": ", strerror(errno)));
  }
  return fd;
}

// Replaced whole by InitLogging (before other threads start), read everywhere else.
std::shared_ptr<State>& CurrentState() {
  static std::shared_ptr<State> state = [] {
    auto s = std::make_shared<State>();
    s->log = std::make_shared<spdlog::logger>("shakend",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s->log->set_pattern("%v");
    s->log->set_level(spdlog::level::info);
    s->audit = std::make_shared<AuditSink>(STDERR_FILENO, false, "standard error");
    return s;
  }();
  return state;
}

spdlog::level::level_enum ToSpd(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      break;
  }
  return spdlog::level::err;
}

std::string_view LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      break;
  }
  return "error";
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) {
      return true;
    }
  }
  return false;
}

// AppendTimestamp appends "2026-11-29T14:00:00.123Z". The calendar part is formatted once per
// second per thread: an audit record per signature must stay cheap.
void AppendTimestamp(std::string* out) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached;
  const absl::Time now = absl::Now();
  const int64_t ms = absl::ToUnixMillis(now);
  const int64_t second = ms / 1000;
  if (second != cached_second) {
    cached = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second),
                              absl::UTCTimeZone());
    cached_second = second;
  }
  out->append(cached);
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03dZ", static_cast<int>(ms % 1000));
  out->append(frac);
}

// IsDecimal: an optional '-' and 1..18 digits, no leading zero (a valid JSON integer that every
// consumer reads exactly).
bool IsDecimal(std::string_view v) {
  if (!v.empty() && v.front() == '-') v.remove_prefix(1);
  if (v.empty() || v.size() > 18 || (v.size() > 1 && v.front() == '0')) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// AppendQuoted appends `v` as a JSON string (one line, unambiguous whatever it holds).
void AppendQuoted(std::string_view v, std::string* out) {
  if (stir::IsValidUtf8(v)) {
    stir::AppendJsonString(v, out);
  } else {
    out->append(nlohmann::json(std::string(v)).dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace));
  }
}

std::string Format(const State& s, std::string_view level, std::string_view event,
                   std::initializer_list<LogField> fields) {
  std::string out;
  out.reserve(160);
  if (s.json) {
    out.append("{\"ts\":\"");
    AppendTimestamp(&out);
    out.append("\",\"level\":");
    AppendQuoted(level, &out);
    out.append(",\"event\":");
    AppendQuoted(event, &out);
    for (const LogField& f : fields) {
      out.push_back(',');
      AppendQuoted(f.key, &out);
      out.push_back(':');
      if (f.number && IsDecimal(f.value)) {
        out.append(f.value);
      } else {
        AppendQuoted(f.value, &out);
      }
    }
    out.push_back('}');
    return out;
  }
  AppendTimestamp(&out);
  out.push_back(' ');
  out.append(level);
  out.push_back(' ');
  out.append(event);
  for (const LogField& f : fields) {
    out.push_back(' ');
    out.append(f.key);
    out.push_back('=');
    if (NeedsQuoting(f.value)) {
      AppendQuoted(f.value, &out);
    } else {
      out.append(f.value);
    }
  }
  return out;
}

}  // namespace

absl::Status InitLogging(LogFormat format, LogLevel level, const std::string& audit_file,
                         AuditFailurePolicy on_failure) {
  auto s = std::make_shared<State>();
  s->json = format == LogFormat::kJson;
  s->log = std::make_shared<spdlog::logger>("shakend",
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
  s->log->set_pattern("%v");
  s->log->set_level(ToSpd(level));
  s->log->flush_on(spdlog::level::warn);
  s->on_failure = on_failure;
  if (audit_file.empty()) {
    s->audit = std::make_shared<AuditSink>(STDERR_FILENO, false, "standard error");
  } else {
    absl::StatusOr<int> fd = OpenAuditFile(audit_file);
    if (!fd.ok()) return fd.status();
    s->audit = std::make_shared<AuditSink>(*fd, true, audit_file);
  }
  audit_available.store(true);
  CurrentState() = std::move(s);
  return absl::OkStatus();
}

void SetLogLevel(LogLevel level) { CurrentState()->log->set_level(ToSpd(level)); }

void RouteGrpcLogs() {
  gpr_set_log_function(+[](gpr_log_func_args* args) {
    LogLevel level = LogLevel::kError;
    if (args->severity == GPR_LOG_SEVERITY_INFO) level = LogLevel::kInfo;
    if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = LogLevel::kDebug;
    const std::string_view message = args->message != nullptr ? args->message : "";
    const std::string_view event =
        message.find("Handshake failed") != std::string_view::npos ? "tls_handshake_failed"
                                                                   : "grpc";
    std::string source = args->file != nullptr ? args->file : "";
    if (const size_t slash = source.rfind('/'); slash != std::string::npos) source.erase(0, slash + 1);
    absl::StrAppend(&source, ":", args->line);
    Log(level, event, {{"message", message}, {"source", source}});
  });
}

absl::Status ReopenAuditFile() {
  std::shared_ptr<State> s = CurrentState();
  return s->audit->Reopen();
}

void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  const State& s = *CurrentState();
  if (!s.log->should_log(ToSpd(level))) return;
  s.log->log(ToSpd(level), Format(s, LevelName(level), event, fields));
}

void Audit(std::string_view event, std::initializer_list<LogField> fields) {
  const State& s = *CurrentState();
  std::string line = Format(s, "audit", event, fields);
  line.push_back('\n');
  const int e = s.audit->Write(line);
  if (e == 0) {
    if (!audit_available.exchange(true)) {
      LogWarn("audit_writable_again", {{"file", s.audit->name()}});
    }
    return;
  }
  audit_failures.fetch_add(1, std::memory_order_relaxed);
  if (audit_available.exchange(false)) {
    LogError("audit_write_failed",
             {{"file", s.audit->name()},
              {"error", strerror(e)},
              {"on_failure", s.on_failure == AuditFailurePolicy::kRefuse ? "refuse" : "continue"}});
  }
}

bool AuditAvailable() { return audit_available.load(std::memory_order_relaxed); }
uint64_t AuditWriteFailures() { return audit_failures.load(std::memory_order_relaxed); }

absl::Status CheckAuditForSigning() {
  if (AuditAvailable()) return absl::OkStatus();
  const State& s = *CurrentState();
  if (s.on_failure == AuditFailurePolicy::kContinue) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "not signing: audit records cannot be written to ", s.audit->name(),
      " (logging.audit_on_failure: refuse)"));
}

void FlushLogs() {
  const State& s = *CurrentState();
  s.log->flush();
}

}  // namespace shaken::daemon
