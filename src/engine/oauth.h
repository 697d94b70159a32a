// The OAuth 2 client side of connections: the authorization-code redirect with PKCE, and the
// token endpoint (code exchange, refresh, client credentials).
//
// Token endpoints are called through the webhooks egress guard and sender: the host is resolved
// and checked (no private or loopback addresses unless allowed), the connection is pinned to the
// checked addresses, redirects are not followed, and proxies from the environment are ignored.
//
// Thread safety: TokenEndpoint is immutable after construction and may be used from any thread;
// each call makes its own HTTP request. Calls block for at most the timeout (plus DNS).
// Errors: a call never throws; failures come back in TokenResult::failure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "crypto/random.h"

namespace agentgate::engine {

// The OAuth client an integration uses: its id and secret, and how they reach the token
// endpoint ("basic": HTTP Basic, RFC 6749 2.3.1; "body": client_id and client_secret in the
// form).
struct OAuthClient {
  std::string client_id;
  std::string client_secret;
  std::string client_auth = "body";
};

// A successful token response (RFC 6749 5.1).
struct TokenSet {
  std::string access_token;
  std::string refresh_token;  // "" when none was issued
  std::string token_type;
  std::string scope;
  std::optional<std::int64_t> expires_in_s;
  json::object extra;  // every other field (instance_url, id_token, ...)
};

// Why a token request failed. permanent: the grant itself is dead (invalid_grant,
// unauthorized_client, invalid_client...), so retrying cannot help and the connection must be
// reconnected; otherwise (network, 5xx, 429) it may work later.
struct TokenFailure {
  int status = 0;           // HTTP status; 0 when no answer
  std::string error;        // the OAuth error code, or "network_error" / "invalid_response"
  std::string description;  // error_description or what went wrong, fit to show
  bool permanent = false;
};

struct TokenResult {
  std::optional<TokenSet> tokens;
  TokenFailure failure;  // when !tokens
  bool ok() const { return tokens.has_value(); }
};

// PKCE (RFC 7636): a verifier of 43 base64url characters (256 bits) and its S256 challenge.
std::string NewPkceVerifier(crypto::Random& random);
std::string PkceChallenge(std::string_view verifier);

// application/x-www-form-urlencoded, in the given order.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);
// Appends fields as query parameters to url (which may already have a query).
std::string WithQuery(std::string url, const std::vector<std::pair<std::string, std::string>>& q);

// Parses a token endpoint's answer body: JSON (RFC 6749), or a form-encoded body (GitHub's
// default). nullopt when it has no access_token.
std::optional<TokenSet> ParseTokenResponse(std::string_view body);

class TokenEndpoint {
 public:
  TokenEndpoint(bool allow_private_egress, std::int64_t timeout_ms)
      : allow_private_(allow_private_egress), timeout_ms_(timeout_ms) {}

  TokenResult ExchangeCode(const std::string& token_url, const OAuthClient& client,
                           const std::string& code, const std::string& redirect_uri,
                           const std::string& code_verifier) const;
  TokenResult Refresh(const std::string& token_url, const OAuthClient& client,
                      const std::string& refresh_token) const;
  TokenResult ClientCredentials(const std::string& token_url, const OAuthClient& client,
                                const std::string& scope) const;

 private:
  TokenResult Post(const std::string& token_url, const OAuthClient& client,
                   std::vector<std::pair<std::string, std::string>> form) const;

  bool allow_private_;
  std::int64_t timeout_ms_;
};

}  // namespace agentgate::engine
