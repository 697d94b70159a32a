// Standard Webhooks signing (https://www.standardwebhooks.com, spec version 1.0.0), symmetric
// scheme only.
//
// Each delivery carries three headers: webhook-id (the message id, the same on every retry),
// webhook-timestamp (Unix seconds of this attempt) and webhook-signature, a space-separated list
// of "v1,<base64 HMAC-SHA256>" over "<msg_id>.<timestamp>.<body>", one per signing key. Several
// keys sign at once during a secret rotation, so that receivers holding either secret accept the
// message. The receiver's libraries (standardwebhooks, svix) verify exactly this format; the unit
// tests pin it to the reference libraries' published test vector.
//
// Secrets are shown to users as "whsec_" + standard base64 of the key bytes.
//
// Thread safety: every function here is pure apart from the Random it is given, and is safe from
// any thread (as long as that Random is; OsRandom is). Nothing keeps a reference to its arguments.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "crypto/random.h"

namespace agentgate::webhooks {

// Header names, lower case as the spec writes them.
inline constexpr std::string_view kIdHeader = "webhook-id";
inline constexpr std::string_view kTimestampHeader = "webhook-timestamp";
inline constexpr std::string_view kSignatureHeader = "webhook-signature";

inline constexpr std::string_view kSecretPrefix = "whsec_";
// The spec asks for 24 to 64 bytes of key; new secrets use 32.
inline constexpr std::size_t kMinSecretBytes = 24;
inline constexpr std::size_t kMaxSecretBytes = 64;

// "whsec_" + standard base64 (with padding) of 32 random bytes: 50 characters.
std::string NewWebhookSecret(crypto::Random& random);

// The key bytes of a "whsec_..." secret. As in the reference libraries, the "whsec_" prefix may
// be left out. Errors (code invalid_field, message saying what is wrong): not standard base64
// (padding included, no whitespace), or fewer than 24 or more than 64 bytes once decoded.
Result<std::vector<std::uint8_t>> DecodeSecret(std::string_view whsec);

// "msg_" + 26 lower-case base32 characters (128 random bits). Contains no '.', which the spec
// forbids in ids because the signed content is '.'-delimited.
std::string NewMessageId(crypto::Random& random);

// "v1," + base64(HMAC-SHA256(key, msg_id + "." + timestamp_s + "." + body)).
// `msg_id` must not contain '.' (see NewMessageId); `body` must be exactly the bytes sent.
std::string Sign(std::span<const std::uint8_t> key, std::string_view msg_id,
                 std::int64_t timestamp_s, std::string_view body);

// The webhook-signature header value: Sign() for each key, in order, separated by single spaces.
// Empty when `keys` is empty.
std::string SignatureHeader(const std::vector<std::vector<std::uint8_t>>& keys,
                            std::string_view msg_id, std::int64_t timestamp_s,
                            std::string_view body);

}  // namespace agentgate::webhooks
