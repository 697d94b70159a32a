// WebhookDispatcher: delivers the persistent outbox (webhook_messages) to receivers, as the
// Standard Webhooks specification says.
//
// Worker threads claim due messages from the store with a lease (so a message is in one worker's
// hands at a time, even across processes sharing a database), sign each attempt with the
// endpoint's secret (and, during a rotation, its previous one), POST it through the egress guard,
// and record the attempt together with what follows: delivered; retried later with exponential
// back-off and jitter, no sooner than the receiver's Retry-After; given up after kMaxAttempts; or,
// on 410 Gone, the endpoint disabled. Because every state lives in the store, a restart loses
// nothing: a message whose worker died is taken again when its lease runs out.
//
// Thread safety: Notify() may be called from any thread. Start() and Stop() from one thread.
// Ownership: store, sealer, clock, random and logger must outlive the dispatcher.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/time.h"
#include "crypto/random.h"
#include "crypto/seal.h"
#include "store/store.h"

namespace agentgate::api {

struct DispatcherOptions {
  bool allow_private_egress = false;     // tests deliver to 127.0.0.1
  std::int64_t retry_base_ms = 60'000;   // first retry after about this long
  std::int64_t retry_max_ms = 6LL * 3'600'000;
  std::int64_t timeout_ms = 15'000;      // per attempt, connection included
  std::int64_t poll_ms = 1'000;          // look for due retries at least this often
  int workers = 2;
};

class WebhookDispatcher {
 public:
  WebhookDispatcher(DispatcherOptions options, store::Store& store, const crypto::Keyring& sealer,
                    const Clock& clock, crypto::Random& random, Logger& logger);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  void Start();
  // Lets attempts in flight finish (each bounded by timeout_ms), then joins the workers.
  void Stop();
  // New messages may be due: wake the workers now rather than at the next poll.
  void Notify();

 private:
  void Loop();
  void Attempt(const store::DueWebhookMessage& due);

  DispatcherOptions options_;
  store::Store& store_;
  const crypto::Keyring& sealer_;
  const Clock& clock_;
  crypto::Random& random_;
  Logger& logger_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::uint64_t notified_ = 0;  // guarded by mu_: bumped by Notify
  std::vector<std::thread> workers_;
};

}  // namespace agentgate::api
