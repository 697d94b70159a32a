#include "crypto/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "core/json.h"
#include "crypto/base64.h"

namespace agentgate::crypto {
namespace {

namespace json = boost::json;

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::size_t kMacSize = 32;
// Deeper JSON than this in a token is refused rather than parsed (the header and payload are
// flat objects in practice).
constexpr std::size_t kMaxJsonDepth = 32;

constexpr std::string_view kFixFormat =
    "Send the token exactly as issued: three base64url parts (header, payload, signature) "
    "separated by dots, signed with HS256.";
constexpr std::string_view kFixAlgorithm =
    "Sign the token with HS256 (HMAC-SHA256) and the shared secret; no other algorithm is "
    "accepted.";
constexpr std::string_view kFixSignature =
    "Sign the token with the secret this server holds for it, and send it unaltered.";
constexpr std::string_view kFixClaims =
    "Sign a new token whose payload is a JSON object with a numeric exp claim (Unix seconds) in "
    "the future.";

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "fatal: %s failed (OpenSSL); cannot compute a JWT signature\n", what);
  std::abort();
}

std::array<std::uint8_t, kMacSize> HmacSha256(std::string_view key, std::string_view data) {
  // A null key pointer would mean "no key" to OpenSSL; an empty key must still be a key.
  static const std::uint8_t kNoKey = 0;
  const void* key_data = key.empty() ? static_cast<const void*>(&kNoKey) : key.data();
  std::array<std::uint8_t, kMacSize> out{};
  std::size_t size = 0;
  char digest[] = "SHA256";
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key_data, key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                out.size(), &size) == nullptr ||
      size != out.size()) {
    Fatal("EVP_Q_mac(HMAC-SHA256)");
  }
  return out;
}

Error Invalid(std::string message, std::string_view remediation) {
  return MakeError(Code::kInvalidToken, std::move(message), std::string(remediation));
}

struct Parts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header "." payload
};

Result<Parts> Split(std::string_view token) {
  if (token.empty()) return Invalid("The token is empty", kFixFormat);
  if (token.size() > kMaxJwtSize) {
    return Invalid("The token is longer than " + std::to_string(kMaxJwtSize) + " bytes",
                   kFixFormat);
  }
  const std::size_t first = token.find('.');
  const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return Invalid("The token must have exactly three parts separated by dots", kFixFormat);
  }
  return Parts{token.substr(0, first), token.substr(first + 1, second - first - 1),
               token.substr(second + 1), token.substr(0, second)};
}

// `part` decoded from base64url and parsed as a JSON object; `what` names it in errors.
Result<json::object> DecodeObject(std::string_view part, std::string_view what) {
  std::string text;
  if (!Base64UrlDecode(part, text)) {
    return Invalid("The token's " + std::string(what) + " is not valid base64url", kFixFormat);
  }
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec, {}, options);
  if (ec) return Invalid("The token's " + std::string(what) + " is not valid JSON", kFixFormat);
  if (!value.is_object()) {
    return Invalid("The token's " + std::string(what) + " is not a JSON object", kFixFormat);
  }
  return std::move(value.as_object());
}

bool IsFiniteNumber(const json::value& v) {
  return v.is_int64() || v.is_uint64() || (v.is_double() && std::isfinite(v.get_double()));
}

// Compares a finite JSON number with `bound` exactly (no rounding of either): -1, 0 or 1.
int CompareNumber(const json::value& v, __int128 bound) {
  __int128 whole = 0;
  bool has_fraction = false;
  if (v.is_int64()) {
    whole = v.get_int64();
  } else if (v.is_uint64()) {
    whole = v.get_uint64();
  } else {
    const double d = v.get_double();
    // Beyond 2^100 no bound (within +-2^64) comes close; below it floor(d) fits exactly.
    if (d >= 0x1p100) return 1;
    if (d <= -0x1p100) return -1;
    const double floored = std::floor(d);
    whole = static_cast<__int128>(floored);
    has_fraction = floored != d;
  }
  if (whole < bound) return -1;  // d < whole + 1 <= bound
  if (whole > bound) return 1;
  return has_fraction ? 1 : 0;
}

// Checks the registered time claims of a payload whose signature has been verified.
Status CheckTimes(const json::object& payload, std::int64_t now_s, std::int64_t leeway_s) {
  const __int128 now = now_s;
  const __int128 leeway = std::max<std::int64_t>(leeway_s, 0);

  const json::value* exp = payload.if_contains("exp");
  if (exp == nullptr) return Invalid("The token has no exp claim", kFixClaims);
  if (!IsFiniteNumber(*exp)) {
    return Invalid("The token's exp claim must be a number (Unix seconds)", kFixClaims);
  }
  // Valid while exp + leeway > now.
  if (CompareNumber(*exp, now - leeway) <= 0) {
    return MakeError(Code::kTokenExpired,
                     "The token has expired (exp " + Serialize(*exp) + ", now " +
                         std::to_string(now_s) + ", leeway " +
                         std::to_string(static_cast<std::int64_t>(leeway)) + " s)",
                     std::string(kFixClaims));
  }

  if (const json::value* nbf = payload.if_contains("nbf")) {
    if (!IsFiniteNumber(*nbf)) {
      return Invalid("The token's nbf claim must be a number (Unix seconds)", kFixClaims);
    }
    // Valid once nbf - leeway <= now.
    if (CompareNumber(*nbf, now + leeway) > 0) {
      return Invalid("The token is not valid yet (nbf " + Serialize(*nbf) + ", now " +
                         std::to_string(now_s) + ")",
                     "Wait until the token's nbf time, or sign a token without a future nbf.");
    }
  }

  if (const json::value* iat = payload.if_contains("iat")) {
    if (!IsFiniteNumber(*iat)) {
      return Invalid("The token's iat claim must be a number (Unix seconds)", kFixClaims);
    }
  }
  return Ok();
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

Status CheckHeader(const json::object& header) {
  const json::value* alg = header.if_contains("alg");
  if (alg == nullptr) {
    return Invalid("The token's algorithm must be HS256, and its header has no alg", kFixAlgorithm);
  }
  if (!alg->is_string()) {
    return Invalid("The token's algorithm must be HS256, and its alg is not a string",
                   kFixAlgorithm);
  }
  if (alg->get_string() != "HS256") {
    return Invalid("The token's algorithm must be HS256", kFixAlgorithm);
  }
  if (header.contains("crit")) {
    return Invalid(
        "The token's header lists crit extensions, which this server does not understand",
        "Sign the token without a crit header parameter.");
  }
  if (const json::value* typ = header.if_contains("typ")) {
    if (!typ->is_string() || !EqualsIgnoringAsciiCase(typ->get_string(), "JWT")) {
      return Invalid("The token's typ must be JWT", "Sign the token with typ \"JWT\", or none.");
    }
  }
  return Ok();
}

}  // namespace

std::string SignJwtHs256(std::string_view payload_json, std::string_view secret) {
  std::string token = Base64UrlEncode(kHeader);
  token.push_back('.');
  token += Base64UrlEncode(payload_json);
  const auto mac = HmacSha256(secret, token);
  token.push_back('.');
  token += Base64UrlEncode(mac);
  return token;
}

Result<JwtClaims> PeekJwt(std::string_view token) {
  try {
    auto parts = Split(token);
    if (!parts.ok()) return parts.take_error();
    auto header = DecodeObject(parts->header, "header");
    if (!header.ok()) return header.take_error();
    auto payload = DecodeObject(parts->payload, "payload");
    if (!payload.ok()) return payload.take_error();
    std::string signature;
    if (!Base64UrlDecode(parts->signature, signature)) {
      return Invalid("The token's signature is not valid base64url", kFixFormat);
    }
    return JwtClaims{std::move(*header), std::move(*payload)};
  } catch (const std::bad_alloc&) {
    return MakeError(Code::kServerError, "out of memory reading a token");
  }
}

Result<json::object> PeekJwtPayload(std::string_view token) {
  auto claims = PeekJwt(token);
  if (!claims.ok()) return claims.take_error();
  return std::move(claims->payload);
}

Result<json::object> VerifyJwtHs256(std::string_view token, std::string_view secret,
                                    std::int64_t now_s, std::int64_t leeway_s) {
  try {
    auto parts = Split(token);
    if (!parts.ok()) return parts.take_error();

    // The header decides nothing but whether to go on: only HS256 is ever computed below.
    auto header = DecodeObject(parts->header, "header");
    if (!header.ok()) return header.take_error();
    if (Status s = CheckHeader(*header); !s.ok()) return s.take_error();

    std::string signature;
    if (!Base64UrlDecode(parts->signature, signature)) {
      return Invalid("The token's signature is not valid base64url", kFixFormat);
    }
    if (signature.size() != kMacSize) {
      return Invalid("The token's signature must be 32 bytes (HMAC-SHA256), not " +
                         std::to_string(signature.size()),
                     kFixAlgorithm);
    }
    if (secret.empty()) {
      return Invalid("The token cannot be verified: there is no secret to verify it with",
                     kFixSignature);
    }
    auto expected = HmacSha256(secret, parts->signing_input);
    const bool match = CRYPTO_memcmp(expected.data(), signature.data(), kMacSize) == 0;
    OPENSSL_cleanse(expected.data(), expected.size());
    if (!match) return Invalid("The token's signature does not match", kFixSignature);

    auto payload = DecodeObject(parts->payload, "payload");
    if (!payload.ok()) return payload.take_error();
    if (Status s = CheckTimes(*payload, now_s, leeway_s); !s.ok()) return s.take_error();
    return std::move(*payload);
  } catch (const std::bad_alloc&) {
    return MakeError(Code::kServerError, "out of memory verifying a token");
  }
}

}  // namespace agentgate::crypto
