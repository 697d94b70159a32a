#include "core/log.h"

#include <chrono>
#include <string>

#include "core/time.h"

namespace agentgate {

void Logger::Log(LogLevel level, std::string_view message) {
  if (!Enabled(level)) return;
  static constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
  SystemClock clock;
  std::string line = FormatIso8601(clock.NowMs());
  line += ' ';
  line += kNames[static_cast<int>(level)];
  line += ' ';
  line += message;
  line += '\n';
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace agentgate
