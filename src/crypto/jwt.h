// JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (JWS "HS256", RFC 7515 compact form), the
// only algorithm this server signs or accepts.
//
// A token is base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(secret, the
// first two parts with their dot)), each part base64url without padding. SignJwtHs256 writes the
// header {"alg":"HS256","typ":"JWT"}, byte for byte what the npm jsonwebtoken package writes, so
// its tokens and ours look alike.
//
// VerifyJwtHs256 accepts a token only when all of these hold, checked in this order:
//   - at most kMaxJwtSize bytes, exactly three dot-separated parts, each strict base64url;
//   - the header is a JSON object whose "alg" is the string "HS256", exactly. Anything else is
//     refused before the signature is looked at: "none" (any case), other HMACs, and RS256/ES256,
//     whose "public key" an attacker would otherwise pass off as the HMAC secret;
//   - the header has no "crit" (no extension is understood here, so any listed one is unmet), and
//     its "typ", if present, is the string "JWT" in any case;
//   - the signature is 32 bytes equal, compared in constant time, to the HMAC under `secret`; an
//     empty secret never verifies;
//   - the payload is a JSON object; its "exp" is present and a finite number (integer or
//     fraction) with exp + leeway > now; its "nbf", if present, is a finite number with
//     nbf - leeway <= now; its "iat", if present, is a finite number.
// Claims are checked only after the signature, so a forged token never learns which claim
// failed. With duplicate member names in the header or payload, the last one counts (as RFC 7515
// section 4 allows); it cannot help a forger, since only HS256 is ever computed.
//
// Errors: every refusal is an Error with code invalid_token (HTTP 401), except an expired token,
// which is token_expired (401). Each cause has its own message (e.g. "The token's algorithm must
// be HS256", "The token's signature does not match", "The token has no exp claim", "The token has
// expired"), and a remediation for whoever signs the tokens. Messages never repeat the secret.
//
// Thread safety: pure functions, safe from any thread. Nothing keeps a reference to its
// arguments.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace agentgate::crypto {

// Longer tokens are refused unread.
inline constexpr std::size_t kMaxJwtSize = 8192;

// header {"alg":"HS256","typ":"JWT"}; `payload_json` is encoded as given, byte for byte, and
// should be a JSON object with an "exp" for VerifyJwtHs256 to accept the token. HMAC-SHA256 with
// `secret` as the key bytes; an empty secret makes a token that nothing here verifies. Cannot
// fail; aborts if OpenSSL itself fails, as OsRandom does.
std::string SignJwtHs256(std::string_view payload_json, std::string_view secret);

// A token's header and payload.
struct JwtClaims {
  boost::json::object header;
  boost::json::object payload;
};

// The header and payload of a well-formed token, WITHOUT verifying anything else: no algorithm,
// signature or time check. Only for choosing the secret to verify with (e.g. by the payload's
// "workspaceKey"); never trust what it returns. Errors (invalid_token): over kMaxJwtSize, not
// three base64url parts, header or payload not a JSON object.
Result<JwtClaims> PeekJwt(std::string_view token);

// PeekJwt(token).payload.
Result<boost::json::object> PeekJwtPayload(std::string_view token);

// The payload of a token that passes every rule above at `now_s` (Unix seconds), allowing
// `leeway_s` seconds of clock skew on exp and nbf (a negative leeway counts as 0).
Result<boost::json::object> VerifyJwtHs256(std::string_view token, std::string_view secret,
                                           std::int64_t now_s, std::int64_t leeway_s = 30);

}  // namespace agentgate::crypto
