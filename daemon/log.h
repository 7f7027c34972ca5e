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

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace shaken::daemon {

// A record's field: a key and its value. The value is a view: a record is formatted before Log or
// Audit returns, so temporaries in the call (absl::StrCat(...)) live long enough, and a field that
// is already a string is not copied (an audit record per signature stays cheap).
using LogField = std::pair<std::string_view, std::string_view>;

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// InitLogging sets the format ("text" or "json"), the level, and where audit records go (a file,
// appended; empty: the log stream, standard error). Call once, before any other thread logs;
// until then logs go to standard error as text at info.
absl::Status InitLogging(const std::string& format, const std::string& level,
                         const std::string& audit_file);

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
// whatever the log level. Thread-safe.
void Audit(std::string_view event, std::initializer_list<LogField> fields);

// FlushLogs flushes both streams (at shutdown).
void FlushLogs();

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_LOG_H_
