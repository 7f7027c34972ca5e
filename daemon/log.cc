#include "daemon/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "stir/json.h"

namespace shaken::daemon {
namespace {

struct State {
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> audit;
  bool json = false;
};

// Replaced whole by InitLogging (before other threads start), read everywhere else.
std::shared_ptr<State>& CurrentState() {
  static std::shared_ptr<State> state = [] {
    auto s = std::make_shared<State>();
    s->log = std::make_shared<spdlog::logger>("shakend",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s->log->set_pattern("%v");
    s->log->set_level(spdlog::level::info);
    s->audit = s->log;
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
    for (const auto& [k, v] : fields) {
      out.push_back(',');
      AppendQuoted(k, &out);
      out.push_back(':');
      AppendQuoted(v, &out);
    }
    out.push_back('}');
    return out;
  }
  AppendTimestamp(&out);
  out.push_back(' ');
  out.append(level);
  out.push_back(' ');
  out.append(event);
  for (const auto& [k, v] : fields) {
    out.push_back(' ');
    out.append(k);
    out.push_back('=');
    if (NeedsQuoting(v)) {
      AppendQuoted(v, &out);
    } else {
      out.append(v);
    }
  }
  return out;
}

}  // namespace

absl::Status InitLogging(const std::string& format, const std::string& level,
                         const std::string& audit_file) {
  auto s = std::make_shared<State>();
  s->json = format == "json";
  s->log = std::make_shared<spdlog::logger>("shakend",
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
  s->log->set_pattern("%v");
  spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  s->log->set_level(lvl);
  s->log->flush_on(spdlog::level::warn);
  if (audit_file.empty()) {
    s->audit = std::make_shared<spdlog::logger>("audit", s->log->sinks().front());
  } else {
    try {
      s->audit = std::make_shared<spdlog::logger>(
          "audit", std::make_shared<spdlog::sinks::basic_file_sink_mt>(audit_file));
    } catch (const spdlog::spdlog_ex& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot open logging.audit_file ", audit_file, ": ", e.what()));
    }
  }
  s->audit->set_pattern("%v");
  // An audit record is written through at once: it must survive a crash right after it.
  s->audit->flush_on(spdlog::level::trace);
  s->audit->set_level(spdlog::level::trace);
  CurrentState() = std::move(s);
  return absl::OkStatus();
}

void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  const State& s = *CurrentState();
  if (!s.log->should_log(ToSpd(level))) return;
  s.log->log(ToSpd(level), Format(s, LevelName(level), event, fields));
}

void Audit(std::string_view event, std::initializer_list<LogField> fields) {
  const State& s = *CurrentState();
  s.audit->info(Format(s, "audit", event, fields));
}

void FlushLogs() {
  const State& s = *CurrentState();
  s.log->flush();
  s.audit->flush();
}

}  // namespace shaken::daemon
