#include "http/message.h"

#include <boost/url/parse.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>

#include "core/json.h"

namespace agentgate::http {

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kGet: return "GET";
    case Method::kHead: return "HEAD";
    case Method::kPost: return "POST";
    case Method::kPut: return "PUT";
    case Method::kPatch: return "PATCH";
    case Method::kDelete: return "DELETE";
    case Method::kOptions: return "OPTIONS";
    case Method::kOther: return "OTHER";
  }
  return "OTHER";
}

std::string_view Request::Param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

Response ErrorResponse(const Error& error, std::string_view request_id,
                       std::string_view base_url) {
  Response r;
  r.status = error.HttpStatus();
  std::string& b = r.body;
  b.reserve(256);
  b += "{\"error\":";
  AppendJsonString(b, error.Name());
  b += ",\"message\":";
  AppendJsonString(b, error.Message());
  b += ",\"docs\":";
  AppendJsonString(b, std::string(base_url) + "/docs/errors#" + std::string(error.Name()));
  b += ",\"remediation\":";
  AppendJsonString(b, error.Remediation());
  b += ",\"request_id\":";
  AppendJsonString(b, request_id);
  b += "}";
  // A 503 is temporary by definition: say when to come back (429s carry their own, from the
  // rate limiter's window).
  if (r.status == 503) r.Header("Retry-After", "5");
  return r;
}

Query::Query(std::string_view raw) {
  if (raw.empty()) return;
  // Boost.URL 1.81 reads the last value up to a NUL terminator rather than to the end of the
  // view it was given (seen with views into Beast's header storage), so parse a terminated copy.
  const std::string owned(raw);
  auto parsed = boost::urls::parse_query(owned);
  if (!parsed) {
    valid_ = false;
    return;
  }
  for (auto param : boost::urls::params_view(*parsed)) {
    pairs_.emplace_back(std::string(param.key), std::string(param.value));
  }
}

std::optional<std::string> Query::Get(std::string_view key, bool* repeated) const {
  std::optional<std::string> found;
  for (const auto& [k, v] : pairs_) {
    if (k != key) continue;
    if (found) {
      if (repeated) *repeated = true;
      return found;
    }
    found = v;
  }
  return found;
}

std::string_view CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = part.substr(0, eq);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    if (key != name) continue;
    std::string_view value = part.substr(eq + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return {};
}

std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace agentgate::http
