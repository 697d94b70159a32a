// Server configuration: flags of `agentgate serve`, with environment variables as fallbacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/service.h"
#include "api/webhook_dispatcher.h"
#include "core/log.h"
#include "core/result.h"
#include "http/server.h"

namespace agentgate::app {

struct ServeConfig {
  http::ServerOptions server;
  api::ServiceOptions service;
  api::DispatcherOptions webhooks;
  std::string data_dir = "./data";
  std::string base_url;  // empty: http://<listen address>
  std::string smtp_url;
  std::string mail_from = "agentgate@localhost";
  LogLevel log_level = LogLevel::kInfo;
  std::int64_t flush_interval_ms = 1000;
  std::int64_t check_retention_ms = 30LL * 86'400'000;
  std::int64_t drain_timeout_ms = 10'000;
  bool help = false;
};

// Parses `serve` arguments (argv after "serve") and AGENTGATE_* environment variables.
// Flags win over the environment. Errors name the offending flag.
Result<ServeConfig> ParseServeArgs(const std::vector<std::string>& args);

std::string ServeHelp();

}  // namespace agentgate::app
