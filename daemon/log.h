// log.h: structured logs (text or JSON lines) and the audit stream, on top of spdlog.
//
//   LogInfo("listening", {{"api", "127.0.0.1:50051"}});
//   -> text: 2026-11-29T14:00:00.123Z info listening api=127.0.0.1:50051
//   -> json: {"ts":"2026-11-29T14:00:00.123Z","level":"info","event":"listening","api":"..."}
//
// Nothing secret is ever passed here: no PIN, no key, no pin-value URI. TNs appear in audit
// records only when the configuration says so (logging.audit_tns).
#ifndef SHAKEN_DAEMON_LOG_H_
#define SHAKEN_DAEMON_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace shaken::daemon {

// A record's field: a key and its value. The value is a view: a record is formatted before Log or
// Audit returns, so temporaries in the call (absl::StrCat(...)) live long enough, and a field that
// is already a string is not copied (an audit record per signature stays cheap). A field marked
// `number` (its value decimal digits, e.g. {"latency_us", "231", true}) is a JSON number in JSON
// records; a value that is not one is written as a string.
struct LogField {
  std::string_view key;
  std::string_view value;
  bool number = false;
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// How records are written (logging.format): one line of text, or one JSON object, per record.
enum class LogFormat { kText, kJson };

// What to do while audit records cannot be written (logging.audit_on_failure).
enum class AuditFailurePolicy {
  kRefuse,    // refuse to sign (UNAVAILABLE) until a record can be written again
  kContinue,  // keep signing; audit is reported degraded (metrics, error logs)
};

// InitLogging sets the format, the level (records below it are dropped), and where audit records go (a file,
// appended; empty: standard error, with the log stream). Call once, before any other thread logs;
// until then logs go to standard error as text at info. The audit file is opened O_APPEND and,
// when created, given mode 0640 whatever the umask.
absl::Status InitLogging(LogFormat format, LogLevel level, const std::string& audit_file,
                         AuditFailurePolicy on_failure = AuditFailurePolicy::kRefuse);

// SetLogLevel changes the level of the running log stream (configuration reload). Thread-safe.
void SetLogLevel(LogLevel level);

// Log writes one record. Thread-safe.
void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
inline void LogInfo(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, event, fields);
}
inline void LogWarn(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarn, event, fields);
}
inline void LogError(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, event, fields);
}

// Audit writes one audit record (fixed schema per event, e.g. "sign"). Always written,
// whatever the log level, as a whole line in one write(2): a write that fails or comes up short
// is counted (AuditWriteFailures), marks audit unavailable until a later record is written whole,
// and a short write is cut back off the file so that no torn record remains. Thread-safe.
void Audit(std::string_view event, std::initializer_list<LogField> fields);

// AuditAvailable is false after an audit write failed and until one succeeds again. Cheap (an
// atomic load). Thread-safe.
bool AuditAvailable();
// AuditWriteFailures counts failed audit writes since start (shaken_audit_write_failures_total).
uint64_t AuditWriteFailures();
// CheckAuditForSigning is OK unless the policy is kRefuse and audit is unavailable; then
// UNAVAILABLE naming the audit file. A refused call's own audit record is the probe that brings
// audit back once the file can be written again.
absl::Status CheckAuditForSigning();

// ReopenAuditFile opens logging.audit_file again by its name, so that after a rotation
// (`mv audit.log audit.log.1`, then SIGHUP) records go to a new audit.log (created 0640) and none
// is lost or torn: each lands whole in the old file or the new one. On failure (say the directory
// is not writable) records keep going to the old file and the error says why. No-op when audit
// records go to standard error. Thread-safe.
absl::Status ReopenAuditFile();

// RouteGrpcLogs sends gRPC's own log lines (gpr_log: "Handshake failed ...", transport errors)
// through Log, so that a JSON log stream stays JSON: event "grpc" with the message and the gRPC
// source location, or "tls_handshake_failed" for a failed TLS handshake; gRPC's ERROR is error,
// INFO info, DEBUG debug. How much gRPC says is still set by GRPC_VERBOSITY (default ERROR).
// Call once at start-up.
void RouteGrpcLogs();

// FlushLogs flushes both streams (at shutdown).
void FlushLogs();

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_LOG_H_
