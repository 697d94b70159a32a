// Service: the AgentPass API. Owns the permission index, rate limiters and check bookkeeping,
// and turns HTTP requests into store and index operations.
//
// Dependencies (store, clock, random source, logger, mailer) come in through the constructor and
// must outlive the Service. Handlers are registered on a Router; "inline" ones (checks, agent
// profile) touch memory only, the rest may wait for the store and run on the worker pool.
//
// Thread safety: after Load(), every handler and Flush() may run concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "authz/permission_index.h"
#include "authz/rate_limiter.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/random.h"
#include "http/router.h"
#include "mail/mailer.h"
#include "store/store.h"

namespace agentgate::api {

inline constexpr std::string_view kVersion = "0.1.0";

struct ServiceOptions {
  std::string base_url = "http://127.0.0.1:8080";
  std::vector<std::string> admin_emails;  // lower case
  authz::RateLimitPolicy register_limit{"register", 10, 3'600'000, true};
  authz::RateLimitPolicy check_limit{"check", 1000, 60'000, true};
  authz::RateLimitPolicy magic_link_limit{"magic-link", 5, 900'000, true};
  std::int64_t session_ttl_ms = 30LL * 86'400'000;
  std::int64_t link_ttl_ms = 15LL * 60'000;
  bool record_checks = true;               // keep a record of every check
  std::size_t max_pending_checks = 500'000;  // ~75 MB at most; beyond it records (not counts) drop
};

// Check records waiting to be written, in shards so concurrent checks rarely share a lock.
// Counting is never dropped; records beyond max_pending (shared out over the shards in use) are,
// and counted in dropped().
class CheckLog {
 public:
  void Record(store::CheckRecord&& record, std::int64_t day, bool keep_record);
  // Takes everything pending.
  store::Bookkeeping Drain();
  std::int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::size_t max_pending = 1'000'000;

 private:
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<store::CheckRecord> records;
    std::int64_t day = -1;
    std::int64_t day_count = 0;
    std::vector<std::pair<std::int64_t, std::int64_t>> other_days;
  };
  static constexpr std::size_t kShards = 16;
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> next_shard_{0};
  std::atomic<std::int64_t> dropped_{0};
};

class Service {
 public:
  Service(ServiceOptions options, store::Store& store, const Clock& clock,
          crypto::Random& random, Logger& logger, mail::Mailer* mailer);

  // Builds the permission index from the store.
  Status Load();
  void SetBaseUrl(std::string base_url);
  const std::string& base_url() const { return options_.base_url; }
  void RegisterRoutes(http::Router& router);

  // Writes pending check bookkeeping in one transaction. Called periodically and at shutdown.
  Status Flush();
  // Prunes expired links, sessions and old check records; drops expired grants from memory.
  void Housekeeping(std::int64_t check_retention_ms);

  authz::PermissionIndex& index() { return index_; }

 private:
  struct Caller;  // a signed-in person

  // Handlers.
  http::Response Register(http::Request& req);
  http::Response CheckGet(http::Request& req);
  http::Response CheckPost(http::Request& req);
  http::Response Grant(http::Request& req);
  http::Response Revoke(http::Request& req);
  http::Response ListPermissions(http::Request& req);
  http::Response MagicLink(http::Request& req);
  http::Response Verify(http::Request& req);
  http::Response SessionInfo(http::Request& req);
  http::Response Logout(http::Request& req);
  http::Response AgentProfile(http::Request& req);
  http::Response Health(http::Request& req);
  http::Response Stats(http::Request& req);
  http::Response Dashboard(http::Request& req);

  // Wraps a write handler with Idempotency-Key handling: the first response to a key (per
  // credential, method and path) is stored for 24 hours and replayed to retries; the same key
  // with a different body is refused; validation failures and server errors are not stored.
  http::Handler Idempotent(http::Handler inner);

  http::Response Fail(const http::Request& req, Error error) const;
  http::Response Json(int status, std::string body) const;
  http::Response Decide(http::Request& req, std::string_view agent_id, std::string_view action,
                        const json::object* context);
  // The signed-in person, or unauthorized.
  Result<store::SessionInfo> RequireSession(const http::Request& req);
  // Refuses cookie-authenticated writes from other sites.
  Status CheckOrigin(const http::Request& req) const;
  bool IsAdmin(const store::UserRecord& user) const;
  void AddRateHeaders(http::Response& res, const authz::RateLimiter& limiter,
                      const authz::RateLimitResult& r) const;

  ServiceOptions options_;
  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
  Logger& logger_;
  mail::Mailer* mailer_;  // null: links go to the log

  authz::PermissionIndex index_;
  authz::RateLimiter register_limiter_;
  authz::RateLimiter check_limiter_;
  authz::RateLimiter magic_link_limiter_;
  CheckLog check_log_;
  std::mutex flush_mu_;  // held while pending checks move from memory to the store
  std::int64_t dropped_reported_ = 0;  // guarded by flush_mu_
};

}  // namespace agentgate::api
