// A small leveled logger writing one line per event to a stream (stderr by default).
//
// Thread safety: Log() may be called from any thread; lines are written whole. Never pass a
// secret (agent secret, session token, link token) to it: callers log ids and hashes only.
#pragma once

#include <cstdio>
#include <mutex>
#include <string_view>

namespace agentgate {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

class Logger {
 public:
  explicit Logger(LogLevel min_level = LogLevel::kInfo, std::FILE* out = stderr)
      : min_level_(min_level), out_(out) {}

  bool Enabled(LogLevel level) const { return level >= min_level_; }
  void Log(LogLevel level, std::string_view message);
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Warn(std::string_view m) { Log(LogLevel::kWarn, m); }
  void Error(std::string_view m) { Log(LogLevel::kError, m); }
  void Debug(std::string_view m) { Log(LogLevel::kDebug, m); }

 private:
  LogLevel min_level_;
  std::FILE* out_;
  std::mutex mu_;
};

}  // namespace agentgate
