// Actions: the request an action (or an inline /act "api") sends to an app, how an action's
// template is rendered with its input, how a run's record is kept free of secrets, and how a
// call through a connection is retried.
//
// Pure functions and values, no I/O (RegistrableDomain reads libpsl's built-in list); safe from
// any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace agentgate::engine {

inline constexpr std::string_view kApiRequestType = "api-request-to-external-app";

// An HTTP request to an app, relative to the connector's base URL.
struct ApiRequest {
  std::string method = "GET";  // upper case: GET, POST, PUT, PATCH, DELETE or HEAD
  std::string path;            // begins with '/', may carry its own "?query"
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<json::value> body;  // nullopt: no body; a string is sent as is, else as JSON
};

// Parses {method?, path, query?, headers?, body?}: an inline /act "api" or an action's
// config.request. `where` prefixes the field names in errors ("api", "config.request").
// method defaults to GET, any case accepted; query values are strings, numbers or booleans;
// header names are RFC 9110 tokens and values have no CR, LF or NUL; Host, Authorization,
// Cookie, Proxy-Authorization, Content-Length, Transfer-Encoding, Connection, TE, Upgrade and
// Expect cannot be set; no body with GET or HEAD; unknown fields refused. The path is checked with
// CheckApiPath (placeholders "{{input.x}}" pass it: they are checked again once rendered).
// Errors: invalid_field / missing_fields naming the field, egress_denied for a path that leaves
// the base URL.
Result<ApiRequest> ParseApiRequest(const json::value& value, std::string_view where);
// The request as JSON again ({method, path, query?, headers?, body?}), for storing and showing.
// A query name that repeats (a rendered request's array input) shows as an array of its values;
// a repeated header as one value joined with ", ".
json::object ApiRequestToJson(const ApiRequest& request);

// A path under the base URL: starts with '/', at most 2048 characters, no "//" prefix, "://",
// backslash, control characters, spaces or '#', and no "." or ".." segment (also percent-encoded)
// or "%2f" or "%5c" (an encoded backslash, a separator to some servers). Errors: invalid_field
// (`field` named) or egress_denied.
Status CheckApiPath(std::string_view path, std::string_view field = "api.path");
// True for the headers agentgate sets itself (see ParseApiRequest).
bool ForbiddenHeader(std::string_view name);

// Renders an action's request template with its input.
// - "{{input.a.b}}" placeholders (spaces inside the braces allowed; names [A-Za-z0-9_-]; other
//   text between braces stays literal) in the path (the value percent-encoded as one segment:
//   all but unreserved characters, so "/" is "%2F"; an empty value is refused), query values and
//   header values (the value as text: strings as they are, numbers and booleans as JSON; objects,
//   arrays and null refused with invalid_input; a header value with CR, LF or NUL too), and body
//   strings: a body string that is exactly one placeholder takes the value with its JSON type;
//   inside a longer string, as text (other values as JSON).
// - A placeholder naming a missing input field: invalid_input naming it ("input.a.b is required
//   by the action's request").
// - Default placement of the input: when the template has no body (POST, PUT, PATCH), the body is
//   the input's top-level fields not used by any placeholder (as a JSON object; nothing when
//   that is empty); when it has no query (GET, DELETE, HEAD; a "?..." in the path does not
//   count), those fields go to the query string (strings, numbers and booleans; an array repeats
//   the name; objects and nulls are refused with invalid_input).
// The rendered path is checked again with CheckApiPath (an input of ".." gives egress_denied).
Result<ApiRequest> RenderActionRequest(const ApiRequest& request_template,
                                       const json::object& input);

// Keeps secrets out of run logs: every known secret value is replaced by "[REDACTED]" wherever it
// appears, also percent-encoded, JSON-escaped or inside HTTP Basic credentials.
class Redactor {
 public:
  static constexpr std::string_view kMark = "[REDACTED]";
  // Values shorter than 4 characters are ignored (they would redact ordinary text).
  void AddSecret(std::string_view value);
  // Also redacts the base64 form of "user:password" as sent in "Authorization: Basic".
  void AddBasicCredentials(std::string_view user, std::string_view password);
  // Names of headers (and query parameters) whose whole value is a credential, whatever it is:
  // Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key by default, plus those
  // added here (the connector's injected names). Case-insensitive (for query parameters too:
  // redacting more is the safe side).
  void AddCredentialName(std::string_view name);

  std::string Redact(std::string_view text) const;
  // Header values: credential names replaced entirely, others by Redact.
  std::vector<std::pair<std::string, std::string>> RedactHeaders(
      const std::vector<std::pair<std::string, std::string>>& headers) const;
  // A URL: each query parameter named by AddCredentialName replaced entirely, then Redact.
  std::string RedactUrl(std::string_view url) const;

 private:
  std::vector<std::string> secrets_;  // longest first
  std::vector<std::string> names_;    // lower case
};

// The registrable domain of a host ("api.github.com" -> "github.com", "a.b.co.uk" -> "b.co.uk"),
// from the Public Suffix List (libpsl's built-in copy). An IP literal, or a host that is itself
// a public suffix, is its own and only domain. Lower case.
std::string RegistrableDomain(std::string_view host);
// Whether a redirect from `from_host` to `to_host` stays within one registrable domain.
bool SameRegistrableDomain(std::string_view from_host, std::string_view to_host);

// When to try a call to an app again.
struct RetryPolicy {
  int max_attempts = 4;              // the first attempt included
  std::int64_t deadline_ms = 30'000;  // no attempt starts (or waits) past this, from the first
  std::int64_t base_delay_ms = 250;  // exponential back-off without Retry-After: base * 2^(n-1)
  std::int64_t max_delay_ms = 8'000;
};
// GET, HEAD, PUT, DELETE and OPTIONS (RFC 9110 §9.2.2).
bool IsIdempotentMethod(std::string_view method);
// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) answered
// `status` (0: no answer) with Retry-After `retry_after_s`, `elapsed_ms` after the first began;
// nullopt when not to retry: the status is not 429, 502, 503 or 504 (or 0, a network failure),
// the request may not be repeated (`repeatable`: an idempotent method or an Idempotency-Key), the
// attempts are used up, or the wait would end past the deadline (a Retry-After longer than that
// is not honoured by waiting less: the call gives up).
std::optional<std::int64_t> RetryDelayMs(int status, std::optional<std::int64_t> retry_after_s,
                                         int attempt, std::int64_t elapsed_ms, bool repeatable,
                                         const RetryPolicy& policy);

// Ranks texts by relevance to an intent ("create a contact"): lower-cased words, common English
// stop words dropped, simple suffix stemming (s, es, ing, ed), weighted term overlap (BM25-like:
// rarer words count more). Returns the indices of the texts with a score above zero, best first
// (ties keep the input order).
std::vector<std::size_t> RankByIntent(std::string_view intent,
                                      const std::vector<std::string>& texts);

}  // namespace agentgate::engine
