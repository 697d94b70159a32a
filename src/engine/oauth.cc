#include "engine/oauth.h"

#include <array>
#include <cctype>
#include <charconv>

#include <boost/url/encode.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "crypto/base64.h"
#include "crypto/hash.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"

namespace agentgate::engine {
namespace {

// The most of a token response we read: real ones are well under 10 KiB.
constexpr std::size_t kMaxTokenResponseBytes = 64 * 1024;

std::string PercentEncode(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::optional<std::int64_t> NumberOf(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64())
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v.as_uint64(), 1ULL << 40));
  if (v.is_double()) return static_cast<std::int64_t>(v.as_double());
  if (v.is_string()) {
    std::int64_t n = 0;
    const auto& s = v.as_string();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size()) return n;
  }
  return std::nullopt;
}

bool PermanentError(std::string_view error) {
  return error == "invalid_grant" || error == "invalid_client" || error == "unauthorized_client" ||
         error == "unsupported_grant_type" || error == "invalid_scope";
}

}  // namespace

std::string NewPkceVerifier(crypto::Random& random) {
  std::array<std::uint8_t, 32> bytes{};
  random.Fill(bytes);
  return crypto::Base64UrlEncode(bytes);
}

std::string PkceChallenge(std::string_view verifier) {
  crypto::Digest d = crypto::Sha256(verifier);
  return crypto::Base64UrlEncode(d);
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += PercentEncode(name);
    out.push_back('=');
    out += PercentEncode(value);
  }
  return out;
}

std::string WithQuery(std::string url, const std::vector<std::pair<std::string, std::string>>& q) {
  if (q.empty()) return url;
  std::size_t hash = url.find('#');
  std::string fragment;
  if (hash != std::string::npos) {
    fragment = url.substr(hash);
    url.resize(hash);
  }
  url.push_back(url.find('?') == std::string::npos ? '?' : '&');
  url += FormEncode(q);
  return url + fragment;
}

std::optional<TokenSet> ParseTokenResponse(std::string_view body) {
  json::object fields;
  auto parsed = ParseJsonObject(body);
  if (parsed.ok()) {
    fields = std::move(*parsed);
  } else {
    // application/x-www-form-urlencoded (GitHub without Accept: application/json).
    std::string owned(body);  // Boost.URL 1.81's parse_query misreads views into larger buffers
    if (!boost::urls::parse_query(owned)) return std::nullopt;  // params_view would throw
    boost::urls::encoding_opts form;
    form.space_as_plus = true;
    for (const auto& param : boost::urls::params_view(owned, form)) {
      if (param.has_value) fields[param.key] = param.value;
    }
  }
  const json::value* access = fields.if_contains("access_token");
  if (access == nullptr || !access->is_string() || access->as_string().empty()) return std::nullopt;
  TokenSet t;
  for (auto& [name, value] : fields) {
    if (name == "access_token") {
      t.access_token = std::string(value.as_string());
    } else if (name == "refresh_token" && value.is_string()) {
      t.refresh_token = std::string(value.as_string());
    } else if (name == "token_type" && value.is_string()) {
      t.token_type = std::string(value.as_string());
    } else if (name == "scope" && value.is_string()) {
      t.scope = std::string(value.as_string());
    } else if (name == "expires_in") {
      t.expires_in_s = NumberOf(value);
      if (t.expires_in_s && *t.expires_in_s <= 0) t.expires_in_s.reset();
    } else {
      t.extra[name] = value;
    }
  }
  return t;
}

TokenResult TokenEndpoint::ExchangeCode(const std::string& token_url, const OAuthClient& client,
                                        const std::string& code, const std::string& redirect_uri,
                                        const std::string& code_verifier) const {
  std::vector<std::pair<std::string, std::string>> form = {
      {"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", redirect_uri}};
  if (!code_verifier.empty()) form.emplace_back("code_verifier", code_verifier);
  return Post(token_url, client, std::move(form));
}

TokenResult TokenEndpoint::Refresh(const std::string& token_url, const OAuthClient& client,
                                   const std::string& refresh_token) const {
  return Post(token_url, client,
              {{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}});
}

TokenResult TokenEndpoint::ClientCredentials(const std::string& token_url,
                                             const OAuthClient& client,
                                             const std::string& scope) const {
  std::vector<std::pair<std::string, std::string>> form = {{"grant_type", "client_credentials"}};
  if (!scope.empty()) form.emplace_back("scope", scope);
  return Post(token_url, client, std::move(form));
}

TokenResult TokenEndpoint::Post(const std::string& token_url, const OAuthClient& client,
                                std::vector<std::pair<std::string, std::string>> form) const {
  TokenResult result;
  auto dest = webhooks::ResolveDestination(token_url, allow_private_, "token endpoint");
  if (!dest.ok()) {
    result.failure = {
        0, "network_error",
        "the token endpoint cannot be reached: " + std::string(dest.error().Message()), false};
    return result;
  }
  webhooks::OutboundRequest req;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  if (client.client_auth == "basic") {
    // RFC 6749 2.3.1: each part form-encoded, then Basic.
    std::string pair = PercentEncode(client.client_id) + ":" + PercentEncode(client.client_secret);
    req.headers.emplace_back("Authorization", "Basic " + crypto::Base64Encode(pair));
  } else {
    form.emplace_back("client_id", client.client_id);
    if (!client.client_secret.empty()) form.emplace_back("client_secret", client.client_secret);
  }
  std::string body = FormEncode(form);
  req.body = body;
  req.timeout_ms = timeout_ms_;
  req.max_response_bytes = kMaxTokenResponseBytes;
  webhooks::DeliveryResult r = webhooks::Send(*dest, req);
  if (r.status == 0) {
    result.failure = {0, "network_error", "the token endpoint did not answer: " + r.error, false};
    return result;
  }
  if (r.status >= 200 && r.status < 300) {
    result.tokens = ParseTokenResponse(r.body);
    if (!result.tokens) {
      result.failure = {r.status, "invalid_response",
                        "the token endpoint's answer has no access_token", false};
    }
    return result;
  }
  std::string error = "http_" + std::to_string(r.status);
  std::string description;
  if (auto parsed = ParseJsonObject(r.body); parsed.ok()) {
    const json::object& o = *parsed;
    if (const auto* e = o.if_contains("error"); e != nullptr && e->is_string()) {
      error = std::string(e->as_string()).substr(0, 100);
    }
    if (const auto* d = o.if_contains("error_description"); d != nullptr && d->is_string()) {
      description = std::string(d->as_string()).substr(0, 500);
    }
  }
  if (description.empty()) description = "the token endpoint answered " + std::to_string(r.status);
  // 400/401 with an OAuth error code about the grant or client are final; 5xx and 429 are not.
  bool permanent = PermanentError(error) || (r.status == 401 && error.rfind("http_", 0) == 0);
  result.failure = {r.status, error, description, permanent};
  return result;
}

}  // namespace agentgate::engine
