// One webhook delivery attempt: a single HTTP POST with libcurl.
//
// Deliver() connects only to the addresses the egress guard checked (Destination::addresses):
// the host name is pinned to them (CURLOPT_RESOLVE), and every socket libcurl opens is checked
// against them again, so neither a changed DNS answer nor a future libcurl code path can reach an
// address that was not checked. It never follows redirects (the spec counts a 3xx as a failure),
// ignores proxy settings from the environment (http_proxy, ...), and verifies TLS certificates
// against the system's CA store for https.
//
// Connections are kept alive and reused by later calls from the same thread to the same scheme,
// host and port (a kept connection was opened to an address checked for that host).
//
// Thread safety: Deliver may be called from any number of threads at once; each thread uses its
// own libcurl handle. libcurl's global state is initialised once per process on first use (in a
// thread-safe way) and never torn down; calling curl_global_init elsewhere as well is harmless.
// Ownership: only the thread's handle and its idle connections are kept after Deliver returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webhooks/egress.h"

namespace agentgate::webhooks {

inline constexpr std::string_view kUserAgent = "agentgate-webhooks/0.1";
inline constexpr std::size_t kResponseExcerptBytes = 1024;

struct DeliveryResult {
  // The HTTP status of the response; 0 when no response arrived (see `error`).
  int status = 0;
  // From the response's Retry-After header (delta-seconds or HTTP-date), in seconds from now,
  // never negative; nullopt when absent or unparseable.
  std::optional<std::int64_t> retry_after_s;
  // Wall time of the attempt, connection included.
  std::int64_t duration_ms = 0;
  // Why no response arrived ("connection refused or unreachable", "no response within 15 s",
  // ...), fit to show to the webhook's owner; "" when the receiver answered.
  std::string error;
  // No answer within the time limit (then `error` says so too).
  bool timed_out = false;
  // The connection was made, so the request may have reached the receiver (and been acted on)
  // even when no answer came back.
  bool connected = false;
  // The first kResponseExcerptBytes bytes of the response body, with invalid UTF-8 replaced by
  // U+FFFD so it can be stored and shown as text.
  std::string response_excerpt;
  // Send() with max_response_bytes other than the excerpt size: the body as received (bytes, not
  // sanitized), at most max_response_bytes; truncated when more arrived.
  std::string body;
  bool truncated = false;
  // The final response's headers, when asked for (keep_headers), in order (at most 100).
  std::vector<std::pair<std::string, std::string>> headers;

  // Standard Webhooks: only a 2xx answer is a successful delivery.
  bool ok() const { return status >= 200 && status <= 299; }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// POSTs `body` to `dest` with `headers` (typically webhook-id, webhook-timestamp and
// webhook-signature) plus "Content-Type: application/json" (unless `headers` has its own) and
// "User-Agent: agentgate-webhooks/0.1". `timeout_ms` bounds the whole attempt, connection
// included. Never throws. A header name or value containing CR, LF or NUL, or a destination with
// no addresses, is refused without sending anything (status 0 and an `error`).
DeliveryResult Deliver(const Destination& dest, const HeaderList& headers, std::string_view body,
                       std::int64_t timeout_ms);

// The general form, for calls to other services (OAuth token endpoints, connected apps): any
// method (upper-case letters; GET and HEAD send no body), the response body up to
// max_response_bytes (further bytes are read up to 64 KiB or that size and dropped; beyond that
// the transfer is cut short), and, with keep_headers, the response headers. The same egress and
// header rules as Deliver apply.
struct OutboundRequest {
  std::string method = "POST";
  HeaderList headers;
  std::string_view body;
  std::int64_t timeout_ms = 15'000;
  std::size_t max_response_bytes = kResponseExcerptBytes;
  bool keep_headers = false;
};
DeliveryResult Send(const Destination& dest, const OutboundRequest& req);

// Seconds to wait according to a Retry-After value: delta-seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT", and the obsolete RFC 850 and asctime forms), relative to
// `now_s` (Unix seconds). Never negative (a date in the past gives 0); nullopt if unparseable.
// Exposed for tests.
std::optional<std::int64_t> ParseRetryAfter(std::string_view value, std::int64_t now_s);

}  // namespace agentgate::webhooks
