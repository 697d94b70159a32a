#include "api/service.h"

#include <algorithm>

#include "api/docs.h"
#include "core/json.h"

namespace agentgate::api {

// ---- CheckLog ------------------------------------------------------------------------------

void CheckLog::Record(store::CheckRecord&& record, std::int64_t day, bool keep_record) {
  // Each thread gets its own shard (round-robin), so network threads never share a lock here.
  thread_local const std::size_t shard_index =
      next_shard_.fetch_add(1, std::memory_order_relaxed) % kShards;
  Shard& shard = shards_[shard_index];
  // The cap is shared out over the shards in use, so no counter is written by every thread on
  // every check (next_shard_ changes only when a new thread first records).
  std::size_t in_use = std::min<std::size_t>(
      kShards, std::max<std::size_t>(1, next_shard_.load(std::memory_order_relaxed)));
  std::lock_guard lock(shard.mu);
  bool keep = keep_record && shard.records.size() < max_pending / in_use;
  if (keep_record && !keep) dropped_.fetch_add(1, std::memory_order_relaxed);
  if (shard.day != day) {
    if (shard.day_count > 0) shard.other_days.emplace_back(shard.day, shard.day_count);
    shard.day = day;
    shard.day_count = 0;
  }
  ++shard.day_count;
  if (keep) shard.records.push_back(std::move(record));
}

store::Bookkeeping CheckLog::Drain() {
  store::Bookkeeping b;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    if (b.checks.empty()) {
      b.checks.swap(shard.records);
    } else {
      std::move(shard.records.begin(), shard.records.end(), std::back_inserter(b.checks));
      shard.records.clear();
    }
    for (auto& d : shard.other_days) b.checks_per_day.push_back(d);
    shard.other_days.clear();
    if (shard.day_count > 0) b.checks_per_day.emplace_back(shard.day, shard.day_count);
    shard.day_count = 0;
  }
  return b;
}

// ---- Service -------------------------------------------------------------------------------

Service::Service(ServiceOptions options, store::Store& store, const Clock& clock,
                 crypto::Random& random, Logger& logger, mail::Mailer* mailer)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      random_(random),
      logger_(logger),
      mailer_(mailer),
      register_limiter_(options_.register_limit),
      check_limiter_(options_.check_limit),
      magic_link_limiter_(options_.magic_link_limit) {
  check_log_.max_pending = options_.max_pending_checks;
}

Status Service::Load() {
  std::int64_t now = clock_.NowMs();
  Status s = store_.LoadAgents([this](store::AgentRecord&& a) {
    authz::AgentInfo info;
    info.id = std::move(a.id);
    info.name = std::move(a.name);
    info.description = std::move(a.description);
    info.developer_email = std::move(a.developer_email);
    info.metadata_json = std::move(a.metadata_json);
    info.status = std::move(a.status);
    info.secret_hash = a.secret_hash;
    info.created_at_ms = a.created_at_ms;
    info.last_seen_ms = a.last_seen_ms;
    index_.PutAgent(info);
  });
  if (!s.ok()) return s;
  std::size_t skipped = 0;
  s = store_.LoadActiveGrants(now, [this, &skipped](store::GrantRecord&& g) {
    authz::GrantInfo info;
    info.id = std::move(g.id);
    info.agent_id = std::move(g.agent_id);
    info.action = std::move(g.action);
    info.granted_by = std::move(g.granted_by);
    info.granted_by_email = std::move(g.granted_by_email);
    info.expires_at_ms = g.expires_at_ms.value_or(authz::kNever);
    info.scope_json = std::move(g.scope_json);
    info.created_at_ms = g.created_at_ms;
    if (!index_.AddGrant(info)) ++skipped;
  });
  if (!s.ok()) return s;
  if (skipped > 0) {
    logger_.Warn(std::to_string(skipped) +
                 " grants could not be indexed (unknown agent or bad "
                 "scope) and will not answer checks");
  }
  return Ok();
}

void Service::SetBaseUrl(std::string base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  options_.base_url = std::move(base_url);
}

void Service::RegisterRoutes(http::Router& router) {
  using http::Dispatch;
  using http::Method;
  auto bind = [this](http::Response (Service::*fn)(http::Request&)) {
    return [this, fn](http::Request& req) { return (this->*fn)(req); };
  };
  // Hot path first: the router tries routes in order.
  router.Add(Method::kGet, "/permission/check", Dispatch::kInline, bind(&Service::CheckGet));
  router.Add(Method::kPost, "/permission/check", Dispatch::kInline, bind(&Service::CheckPost));
  router.Add(Method::kGet, "/agent/:agent_id", Dispatch::kInline, bind(&Service::AgentProfile));
  // Registration is not idempotent-replayable: its response carries the agent's secret, which
  // must not be stored; POST /permission/check is a read.
  router.Add(Method::kPost, "/agent/register", Dispatch::kBlocking, bind(&Service::Register));
  router.Add(Method::kPost, "/permission/grant", Dispatch::kBlocking,
             Idempotent(bind(&Service::Grant)));
  router.Add(Method::kPost, "/permission/revoke", Dispatch::kBlocking,
             Idempotent(bind(&Service::Revoke)));
  router.Add(Method::kGet, "/permissions", Dispatch::kBlocking, bind(&Service::ListPermissions));
  router.Add(Method::kPost, "/auth/magic-link", Dispatch::kBlocking,
             Idempotent(bind(&Service::MagicLink)));
  router.Add(Method::kGet, "/auth/verify", Dispatch::kBlocking, bind(&Service::Verify));
  router.Add(Method::kGet, "/auth/session", Dispatch::kBlocking, bind(&Service::SessionInfo));
  router.Add(Method::kPost, "/auth/logout", Dispatch::kBlocking,
             Idempotent(bind(&Service::Logout)));
  router.Add(Method::kGet, "/health", Dispatch::kInline, bind(&Service::Health));
  router.Add(Method::kGet, "/stats", Dispatch::kBlocking, bind(&Service::Stats));
  router.Add(Method::kGet, "/dashboard", Dispatch::kBlocking, bind(&Service::Dashboard));
  RegisterDocRoutes(router, [this] { return options_.base_url; });
}

Status Service::Flush() {
  std::lock_guard lock(flush_mu_);
  store::Bookkeeping batch = check_log_.Drain();
  batch.last_seen = index_.DrainLastSeen();
  if (std::int64_t dropped = check_log_.dropped(); dropped > dropped_reported_) {
    logger_.Warn(
        std::to_string(dropped - dropped_reported_) + " check records were not kept (more than " +
        std::to_string(options_.max_pending_checks) + " pending); the checks are still counted");
    dropped_reported_ = dropped;
  }
  if (batch.empty()) return Ok();
  Status s = store_.FlushBookkeeping(batch);
  if (!s.ok()) {
    logger_.Error("flushing check bookkeeping failed: " + std::string(s.error().Message()));
  }
  return s;
}

void Service::Housekeeping(std::int64_t check_retention_ms) {
  std::int64_t now = clock_.NowMs();
  Status s = store_.Prune(now, now - check_retention_ms);
  if (!s.ok()) logger_.Warn("pruning failed: " + std::string(s.error().Message()));
  index_.Sweep(now);
}

// ---- idempotency ---------------------------------------------------------------------------

namespace {

constexpr std::int64_t kIdempotencyTtlMs = 24LL * 3'600'000;
// A record still "running" this long after it started belongs to a request that died with its
// server; a retry may take it over.
constexpr std::int64_t kIdempotencyStaleMs = 5LL * 60'000;
// Response headers kept with a stored response (names as literals: Response keeps views).
constexpr std::string_view kReplayedHeaders[] = {"Location", "Set-Cookie", "Cache-Control",
                                                 "RateLimit", "RateLimit-Policy"};

bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

http::Handler Service::Idempotent(http::Handler inner) {
  return [this, inner = std::move(inner)](http::Request& req) -> http::Response {
    if (req.idempotency_key.empty()) return inner(req);
    if (!ValidIdempotencyKey(req.idempotency_key)) {
      return Fail(req, MakeError(Code::kInvalidField,
                                 "Idempotency-Key must be 1-255 visible ASCII characters "
                                 "(a UUID is a good choice)"));
    }
    // Keys are scoped to the credential that sent them (never stored in plaintext).
    std::string scope;
    if (std::string_view bearer = http::BearerToken(req.authorization); !bearer.empty()) {
      scope = "bearer:" + crypto::Sha256Hex(bearer);
    } else if (std::string_view s = http::CookieValue(req.cookie, "ap_session"); !s.empty()) {
      scope = "session:" + crypto::Sha256Hex(s);
    } else {
      scope = "ip:" + std::string(req.remote_ip);
    }
    std::string method(http::MethodName(req.method));
    crypto::Digest key = crypto::Sha256(scope + "\n" + method + "\n" + std::string(req.path) +
                                        "\n" + std::string(req.idempotency_key));
    crypto::Digest fingerprint =
        crypto::Sha256(method + "\n" + std::string(req.path) + "\n" + req.body);
    std::int64_t now = clock_.NowMs();
    auto begun = store_.BeginIdempotent(key, fingerprint, now, now + kIdempotencyTtlMs,
                                        now - kIdempotencyStaleMs);
    if (!begun.ok()) return Fail(req, begun.take_error());
    switch (begun->state) {
      case store::IdempotencyState::kMismatch:
        return Fail(req, MakeError(Code::kIdempotencyKeyReused));
      case store::IdempotencyState::kInProgress: {
        http::Response r = Fail(req, MakeError(Code::kIdempotencyConflict));
        r.Header("Retry-After", "1");
        return r;
      }
      case store::IdempotencyState::kReplay: {
        http::Response r;
        r.status = begun->status;
        r.content_type = begun->content_type;
        r.body = std::move(begun->body);
        boost::system::error_code ec;
        json::value headers = json::parse(begun->headers_json, ec);
        if (!ec && headers.is_object()) {
          for (std::string_view name : kReplayedHeaders) {
            if (auto it = headers.as_object().find(name);
                it != headers.as_object().end() && it->value().is_string()) {
              r.Header(name, std::string(it->value().get_string()));
            }
          }
        }
        r.Header("Idempotent-Replayed", "true");
        return r;
      }
      case store::IdempotencyState::kStarted:
        break;
    }
    http::Response r;
    try {
      r = inner(req);
    } catch (...) {
      (void)store_.AbandonIdempotent(key);
      throw;
    }
    if (r.status >= 400) {
      // Not stored: the caller may fix the request, or retry after a server error, with the
      // same key.
      if (Status s = store_.AbandonIdempotent(key); !s.ok()) {
        logger_.Warn("could not release an Idempotency-Key: " + std::string(s.error().Message()));
      }
      return r;
    }
    json::object headers;
    for (const auto& [name, value] : r.headers) {
      for (std::string_view kept : kReplayedHeaders) {
        if (name == kept) headers[name] = value;
      }
    }
    if (Status s =
            store_.FinishIdempotent(key, r.status, r.content_type, Serialize(headers), r.body);
        !s.ok()) {
      logger_.Warn("could not store the response for an Idempotency-Key: " +
                   std::string(s.error().Message()));
    }
    return r;
  };
}

// ---- helpers -------------------------------------------------------------------------------

http::Response Service::Fail(const http::Request& req, Error error) const {
  if (error.code == Code::kServerError && !error.message.empty()) {
    // The detail is for the operator's log, not the client.
    logger_.Error(req.request_id + " " + std::string(req.path) + ": " + error.message);
    error.message.clear();
  }
  return http::ErrorResponse(error, req.request_id, options_.base_url);
}

http::Response Service::Json(int status, std::string body) const {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool Service::IsAdmin(const store::UserRecord& user) const {
  if (user.is_admin) return true;
  for (const auto& e : options_.admin_emails) {
    if (e == user.email) return true;
  }
  return false;
}

Result<store::SessionInfo> Service::RequireSession(const http::Request& req) {
  std::string_view token = http::CookieValue(req.cookie, "ap_session");
  if (token.empty()) {
    return MakeError(Code::kUnauthorized,
                     "Sign in first: this endpoint needs the ap_session cookie",
                     "Request a sign-in link with POST /auth/magic-link and follow it; send the "
                     "ap_session cookie it sets.");
  }
  auto found = store_.FindSession(crypto::Sha256(token), clock_.NowMs());
  if (!found.ok()) return found.take_error();
  if (!found->has_value()) {
    return MakeError(Code::kUnauthorized, "The session is invalid or has expired",
                     "Sign in again with POST /auth/magic-link.");
  }
  return std::move(**found);
}

namespace {

// "scheme://host[:port]" of a URL, lower-cased.
std::string OriginOf(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  auto host_end = url.find('/', scheme_end + 3);
  std::string out(url.substr(0, host_end));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string HostOfOrigin(std::string_view origin) {
  auto p = origin.find("://");
  return p == std::string_view::npos ? std::string() : std::string(origin.substr(p + 3));
}

}  // namespace

Status Service::CheckOrigin(const http::Request& req) const {
  if (req.sec_fetch_site == "cross-site") {
    return MakeError(Code::kForbidden, "Cross-site request refused (Sec-Fetch-Site: cross-site)",
                     "Send this request from the agentgate dashboard, or without a session "
                     "cookie from a server-side client.");
  }
  if (req.origin.empty()) return Ok();
  std::string origin = OriginOf(req.origin);
  std::string host(req.host);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!origin.empty() && (origin == OriginOf(options_.base_url) || HostOfOrigin(origin) == host)) {
    return Ok();
  }
  return MakeError(Code::kForbidden,
                   "Cross-site request refused: Origin " + std::string(req.origin.substr(0, 200)) +
                       " does not match this server",
                   "Cookie-authenticated writes must come from the server's own origin (" +
                       OriginOf(options_.base_url) + ").");
}

void Service::AddRateHeaders(http::Response& res, const authz::RateLimiter& limiter,
                             const authz::RateLimitResult& r) const {
  if (!limiter.policy().enabled) return;
  res.Header("RateLimit-Policy", limiter.policy_header());
  res.Header("RateLimit", limiter.RateLimitHeader(r));
  if (!r.allowed) res.Header("Retry-After", std::to_string(r.reset_seconds));
}

}  // namespace agentgate::api
