#include "api/webhook_dispatcher.h"

#include "webhooks/backoff.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"
#include "webhooks/signature.h"

namespace agentgate::api {
namespace {

constexpr int kClaimBatch = 4;

}  // namespace

WebhookDispatcher::WebhookDispatcher(DispatcherOptions options, store::Store& store,
                                     const crypto::Keyring& sealer, const Clock& clock,
                                     crypto::Random& random, Logger& logger)
    : options_(options),
      store_(store),
      sealer_(sealer),
      clock_(clock),
      random_(random),
      logger_(logger) {}

WebhookDispatcher::~WebhookDispatcher() { Stop(); }

void WebhookDispatcher::Start() {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Loop(); });
  }
}

void WebhookDispatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void WebhookDispatcher::Notify() {
  {
    std::lock_guard lock(mu_);
    ++notified_;
  }
  cv_.notify_all();
}

void WebhookDispatcher::Loop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      seen = notified_;
    }
    std::int64_t now = clock_.NowMs();
    // The lease outlasts an attempt by a margin, so a live worker never loses its message.
    auto due = store_.ClaimDueWebhookMessages(now, now + 2 * options_.timeout_ms + 5'000,
                                              kClaimBatch);
    if (!due.ok()) {
      logger_.Warn("webhooks: cannot read the outbox: " + std::string(due.error().Message()));
    } else {
      for (const auto& message : *due) Attempt(message);
      if (due->size() == kClaimBatch) continue;  // more may be waiting
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms),
                 [&] { return stop_ || notified_ != seen; });
    if (stop_) return;
  }
}

void WebhookDispatcher::Attempt(const store::DueWebhookMessage& due) {
  const store::WebhookMessage& m = due.message;
  const store::WebhookEndpoint& e = due.endpoint;
  store::WebhookAttempt attempt;
  attempt.message_row = m.row;
  attempt.endpoint_id = e.id;
  attempt.attempt = m.attempts + 1;
  attempt.at_ms = clock_.NowMs();
  attempt.trigger = m.next_trigger.empty() ? "auto" : m.next_trigger;

  webhooks::DeliveryResult result;
  auto dest = webhooks::ResolveDestination(e.url, options_.allow_private_egress);
  std::vector<std::vector<std::uint8_t>> keys;
  if (dest.ok()) {
    auto add_key = [&](const std::string& sealed) -> Status {
      auto opened = sealer_.Open(sealed);
      if (!opened.ok()) return opened.take_error();
      auto key = webhooks::DecodeSecret(*opened);
      if (!key.ok()) return key.take_error();
      keys.push_back(std::move(*key));
      return Ok();
    };
    Status s = add_key(e.secret_sealed);
    if (s.ok() && !e.previous_secret_sealed.empty() &&
        e.previous_secret_until_ms > attempt.at_ms) {
      s = add_key(e.previous_secret_sealed);
    }
    if (!s.ok()) {
      logger_.Error("webhooks: cannot open the signing secret of " + e.id + ": " +
                    std::string(s.error().Message()));
      result.error = "the server could not read this endpoint's signing secret";
    }
  } else {
    result.error = std::string(dest.error().Message());
  }
  if (result.error.empty()) {
    std::int64_t timestamp_s = attempt.at_ms / 1000;
    webhooks::HeaderList headers = {
        {std::string(webhooks::kIdHeader), m.msg_id},
        {std::string(webhooks::kTimestampHeader), std::to_string(timestamp_s)},
        {std::string(webhooks::kSignatureHeader),
         webhooks::SignatureHeader(keys, m.msg_id, timestamp_s, m.payload)},
    };
    result = webhooks::Deliver(*dest, headers, m.payload, options_.timeout_ms);
  }
  attempt.status = result.status;
  attempt.error = result.error;
  attempt.duration_ms = result.duration_ms;
  attempt.response_excerpt = result.response_excerpt;

  store::AttemptOutcome outcome;
  std::int64_t next_at = 0;
  std::string disable_reason;
  if (result.ok()) {
    outcome = store::AttemptOutcome::kDelivered;
  } else if (result.status == 410) {
    outcome = store::AttemptOutcome::kGone;
    disable_reason = "the receiver answered 410 Gone";
  } else if (attempt.attempt >= webhooks::kMaxAttempts) {
    outcome = store::AttemptOutcome::kFailed;
  } else {
    outcome = store::AttemptOutcome::kRetry;
    if (attempt.error.empty() && result.status != 0) {
      attempt.error = "the receiver answered HTTP " + std::to_string(result.status);
    }
    next_at = clock_.NowMs() + webhooks::RetryDelayMs(attempt.attempt, options_.retry_base_ms,
                                                      options_.retry_max_ms,
                                                      result.retry_after_s, random_);
  }
  if (outcome == store::AttemptOutcome::kFailed && attempt.error.empty()) {
    attempt.error = "the receiver answered HTTP " + std::to_string(result.status) +
                    "; gave up after " + std::to_string(attempt.attempt) + " attempts";
  }
  if (Status s = store_.RecordWebhookAttempt(attempt, outcome, next_at, disable_reason); !s.ok()) {
    // The lease runs out and the message is tried again: at least once, never lost.
    logger_.Warn("webhooks: cannot record an attempt for " + m.msg_id + ": " +
                 std::string(s.error().Message()));
  }
  if (outcome == store::AttemptOutcome::kGone) {
    logger_.Warn("webhooks: endpoint " + e.id + " disabled: " + disable_reason);
  }
}

}  // namespace agentgate::api
