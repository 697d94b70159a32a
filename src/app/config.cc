#include "app/config.h"

#include <charconv>
#include <cstdlib>
#include <thread>

#include "authz/rate_limiter.h"
#include "core/time.h"

namespace agentgate::app {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

Error Bad(std::string message) {
  return MakeError(Code::kInvalidField, std::move(message));
}

bool ParseInt(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status ParseListen(const std::string& value, http::ServerOptions& server) {
  std::string host, port;
  if (!value.empty() && value.front() == '[') {
    auto close = value.find(']');
    if (close == std::string::npos || close + 1 >= value.size() || value[close + 1] != ':') {
      return Bad("--listen must be HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
    }
    host = value.substr(1, close - 1);
    port = value.substr(close + 2);
  } else {
    auto colon = value.rfind(':');
    if (colon == std::string::npos) {
      return Bad("--listen must be HOST:PORT, e.g. 127.0.0.1:8080");
    }
    host = value.substr(0, colon);
    port = value.substr(colon + 1);
  }
  std::int64_t p = 0;
  if (host.empty() || !ParseInt(port, p) || p < 0 || p > 65535) {
    return Bad("--listen must be HOST:PORT with a port from 0 to 65535, got '" + value + "'");
  }
  if (host == "localhost") host = "127.0.0.1";
  server.host = host;
  server.port = static_cast<std::uint16_t>(p);
  return Ok();
}

Status ApplyRateLimit(const std::string& value, api::ServiceOptions& service) {
  auto eq = value.find('=');
  std::string name = value.substr(0, eq);
  authz::RateLimitPolicy* policy = nullptr;
  if (name == "register") policy = &service.register_limit;
  if (name == "check") policy = &service.check_limit;
  if (name == "magic-link") policy = &service.magic_link_limit;
  if (name == "request-email") policy = &service.request_email_limit;
  if (!policy || eq == std::string::npos) {
    return Bad("--rate-limit must be NAME=N/WINDOW with NAME one of register, check, "
               "magic-link, request-email (e.g. check=1000/min), got '" + value + "'");
  }
  std::int64_t limit = 0, window = 0;
  std::string spec = value.substr(eq + 1);
  if (spec == "off") {
    policy->enabled = false;
    return Ok();
  }
  if (!authz::ParseRateSpec(spec, limit, window)) {
    return Bad("--rate-limit " + name + ": '" + spec +
               "' is not N/WINDOW (e.g. 10/h, 1000/min, 5/15m, or off)");
  }
  policy->limit = limit;
  policy->window_ms = window;
  policy->enabled = true;
  return Ok();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string ServeHelp() {
  return R"(Usage: agentgate serve [options]

Runs the agentgate server. With no options it listens on 127.0.0.1:8080 and keeps its data
in ./data (SQLite).

Options (environment variable in brackets):
  --listen HOST:PORT        address to listen on; port 0 picks a free one
                            [AGENTGATE_LISTEN] (default 127.0.0.1:8080)
  --data-dir DIR            where the SQLite database lives [AGENTGATE_DATA_DIR] (default ./data)
  --base-url URL            public URL used in links and docs [AGENTGATE_BASE_URL]
                            (default http://<listen address>)
  --threads N               network threads [AGENTGATE_THREADS] (default: number of cores)
  --max-body SIZE           largest request body in bytes, or with k/m suffix (default 1m)
  --read-timeout DURATION   deadline to read one request, and keep-alive idle time (default 30s)
  --admin-email EMAIL       a person who may revoke anyone's grants; repeatable
                            [AGENTGATE_ADMIN_EMAILS, comma-separated]. With none, the first
                            person to sign in becomes the admin.
  --smtp-url URL            send sign-in links over SMTP, e.g. smtp://127.0.0.1:25
                            [AGENTGATE_SMTP_URL]. Without it links are printed to this log.
  --mail-from ADDRESS       sender of sign-in mail [AGENTGATE_MAIL_FROM] (default agentgate@localhost)
  --rate-limit NAME=N/WIN   override a rate limit: register=10/h, check=1000/min,
                            magic-link=5/15m, request-email=20/h (the defaults; the last is
                            permission-request emails per person asked); N/WIN or 'off';
                            repeatable
  --no-rate-limits          turn every rate limit off (benchmarks)
  --no-check-records        count checks but do not keep a record of each one
  --flush-interval DURATION how often check bookkeeping is written (default 1s)
  --check-retention DURATION how long the activity log (check records included) and finished
                            webhook deliveries are kept (default 30d)
  --token-ttl DURATION      default lifetime of access tokens (default 90d)
  --allow-private-egress    let webhook URLs, OAuth endpoints and connected apps (/act) be at
                            private, loopback and link-local addresses (refused by default:
                            they reach into your own network)
  --act-timeout DURATION    deadline of one /act run with its retries (default 30s)
  --action-run-retention DURATION  how long action run logs are kept (default 30d)
  --request-ttl DURATION    how long a permission request waits for a decision before it
                            expires (default 7d)
  --mcp-origin ORIGIN       a browser origin (scheme://host[:port]) allowed to call /mcp besides
                            this server's own and loopback ones; repeatable
  --webhook-retry-base DURATION  wait before the first webhook retry; doubles each time, with
                            jitter (default 1m)
  --webhook-retry-max DURATION   longest wait between webhook retries (default 6h)
  --webhook-timeout DURATION     time limit of one webhook delivery attempt (default 15s)
  --log-level LEVEL         debug, info, warn or error [AGENTGATE_LOG_LEVEL] (default info)
  --access-log              log one line per request (method, path, status, time, request id)
  -h, --help                show this help

Stop it with Ctrl-C or SIGTERM: requests in flight finish and pending writes are flushed.
)";
}

Result<ServeConfig> ParseServeArgs(const std::vector<std::string>& args) {
  ServeConfig c;
  c.server.threads = static_cast<int>(std::thread::hardware_concurrency());
  if (c.server.threads <= 0) c.server.threads = 2;
  std::string listen = Env("AGENTGATE_LISTEN");
  if (listen.empty()) listen = "127.0.0.1:8080";
  if (auto v = Env("AGENTGATE_DATA_DIR"); !v.empty()) c.data_dir = v;
  c.base_url = Env("AGENTGATE_BASE_URL");
  c.smtp_url = Env("AGENTGATE_SMTP_URL");
  if (auto v = Env("AGENTGATE_MAIL_FROM"); !v.empty()) c.mail_from = v;
  std::string threads = Env("AGENTGATE_THREADS");
  std::string log_level = Env("AGENTGATE_LOG_LEVEL");
  std::vector<std::string> admins;
  if (auto v = Env("AGENTGATE_ADMIN_EMAILS"); !v.empty()) {
    std::size_t start = 0;
    while (start <= v.size()) {
      auto comma = v.find(',', start);
      std::string e = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!e.empty()) admins.push_back(Lower(e));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  bool cli_admins = false;

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto need = [&](std::string& out) -> Status {
      if (has_inline) {
        out = value;
        return Ok();
      }
      if (i + 1 >= args.size()) return Bad(arg + " needs a value (see agentgate serve --help)");
      out = args[++i];
      return Ok();
    };
    Status s;
    std::string v;
    if (arg == "-h" || arg == "--help") {
      c.help = true;
      return c;
    } else if (arg == "--listen") {
      if (!(s = need(listen)).ok()) return s.take_error();
    } else if (arg == "--data-dir") {
      if (!(s = need(c.data_dir)).ok()) return s.take_error();
    } else if (arg == "--base-url") {
      if (!(s = need(c.base_url)).ok()) return s.take_error();
    } else if (arg == "--threads") {
      if (!(s = need(threads)).ok()) return s.take_error();
    } else if (arg == "--max-body") {
      if (!(s = need(v)).ok()) return s.take_error();
      std::int64_t mult = 1;
      if (!v.empty() && (v.back() == 'k' || v.back() == 'K')) mult = 1024, v.pop_back();
      else if (!v.empty() && (v.back() == 'm' || v.back() == 'M')) mult = 1 << 20, v.pop_back();
      std::int64_t n = 0;
      if (!ParseInt(v, n) || n <= 0 || n > (1LL << 30) / mult) {
        return Bad("--max-body must be a positive size like 1048576, 512k or 1m");
      }
      c.server.max_body_bytes = static_cast<std::size_t>(n * mult);
    } else if (arg == "--read-timeout" || arg == "--flush-interval" ||
               arg == "--check-retention" || arg == "--token-ttl" ||
               arg == "--webhook-retry-base" || arg == "--webhook-retry-max" ||
               arg == "--webhook-timeout" || arg == "--act-timeout" ||
               arg == "--action-run-retention" || arg == "--request-ttl") {
      if (!(s = need(v)).ok()) return s.take_error();
      auto ms = ParseDurationMs(v);
      if (!ms.ok()) return Bad(arg + ": " + std::string(ms.error().Message()));
      if (arg == "--token-ttl") c.service.token_ttl_ms = *ms;
      if (arg == "--webhook-retry-base") c.webhooks.retry_base_ms = *ms;
      if (arg == "--webhook-retry-max") c.webhooks.retry_max_ms = *ms;
      if (arg == "--webhook-timeout") c.webhooks.timeout_ms = *ms;
      if (arg == "--read-timeout") c.server.read_timeout_ms = *ms;
      if (arg == "--flush-interval") c.flush_interval_ms = *ms;
      if (arg == "--check-retention") c.check_retention_ms = *ms;
      if (arg == "--act-timeout") {
        if (*ms < 100 || *ms > 600'000) return Bad("--act-timeout must be between 100ms and 10m");
        c.service.act_timeout_ms = *ms;
      }
      if (arg == "--action-run-retention") c.service.action_run_retention_ms = *ms;
      if (arg == "--request-ttl") {
        if (*ms < 1000) return Bad("--request-ttl must be at least 1s");
        c.service.request_ttl_ms = *ms;
      }
    } else if (arg == "--admin-email") {
      if (!(s = need(v)).ok()) return s.take_error();
      if (!cli_admins) admins.clear();
      cli_admins = true;
      admins.push_back(Lower(v));
    } else if (arg == "--smtp-url") {
      if (!(s = need(c.smtp_url)).ok()) return s.take_error();
    } else if (arg == "--mail-from") {
      if (!(s = need(c.mail_from)).ok()) return s.take_error();
    } else if (arg == "--rate-limit") {
      if (!(s = need(v)).ok()) return s.take_error();
      if (!(s = ApplyRateLimit(v, c.service)).ok()) return s.take_error();
    } else if (arg == "--no-rate-limits") {
      c.service.register_limit.enabled = false;
      c.service.check_limit.enabled = false;
      c.service.magic_link_limit.enabled = false;
      c.service.request_email_limit.enabled = false;
    } else if (arg == "--mcp-origin") {
      if (!(s = need(v)).ok()) return s.take_error();
      std::string origin = Lower(v);
      while (!origin.empty() && origin.back() == '/') origin.pop_back();
      auto scheme = origin.find("://");
      bool valid = (origin.rfind("http://", 0) == 0 || origin.rfind("https://", 0) == 0) &&
                   scheme != std::string::npos && origin.size() > scheme + 3 &&
                   origin.find('/', scheme + 3) == std::string::npos;
      if (!valid) {
        return Bad("--mcp-origin must be an origin like https://app.example.com (scheme, host, "
                   "optional port; no path)");
      }
      c.service.mcp_origins.push_back(origin);
    } else if (arg == "--allow-private-egress") {
      c.service.allow_private_egress = true;
      c.webhooks.allow_private_egress = true;
    } else if (arg == "--no-check-records") {
      c.service.record_checks = false;
    } else if (arg == "--log-level") {
      if (!(s = need(log_level)).ok()) return s.take_error();
    } else if (arg == "--access-log") {
      c.server.access_log = true;
    } else {
      return Bad("unknown option '" + args[i] + "' (see agentgate serve --help)");
    }
  }

  if (Status s = ParseListen(listen, c.server); !s.ok()) return s.take_error();
  if (!threads.empty()) {
    std::int64_t n = 0;
    if (!ParseInt(threads, n) || n < 1 || n > 256) {
      return Bad("--threads must be a number from 1 to 256");
    }
    c.server.threads = static_cast<int>(n);
  }
  if (!log_level.empty()) {
    if (log_level == "debug") c.log_level = LogLevel::kDebug;
    else if (log_level == "info") c.log_level = LogLevel::kInfo;
    else if (log_level == "warn") c.log_level = LogLevel::kWarn;
    else if (log_level == "error") c.log_level = LogLevel::kError;
    else return Bad("--log-level must be debug, info, warn or error");
  }
  if (!c.base_url.empty() && c.base_url.rfind("http://", 0) != 0 &&
      c.base_url.rfind("https://", 0) != 0) {
    return Bad("--base-url must start with http:// or https://");
  }
  if (!c.smtp_url.empty() && c.smtp_url.rfind("smtp://", 0) != 0 &&
      c.smtp_url.rfind("smtps://", 0) != 0) {
    return Bad("--smtp-url must start with smtp:// or smtps://");
  }
  c.service.admin_emails = std::move(admins);
  return c;
}

}  // namespace agentgate::app
