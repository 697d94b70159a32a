#include "webhooks/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>

#include "crypto/base64.h"

namespace agentgate::webhooks {
namespace {

constexpr std::size_t kNewSecretBytes = 32;
constexpr std::size_t kMacSize = 32;

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "fatal: %s failed (OpenSSL); cannot sign a webhook\n", what);
  std::abort();
}

// HMAC is fetched once per process; an EVP_MAC is immutable and may be shared by threads.
struct HmacAlgorithm {
  HmacAlgorithm() : mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr)) {}
  ~HmacAlgorithm() { EVP_MAC_free(mac); }
  HmacAlgorithm(const HmacAlgorithm&) = delete;
  HmacAlgorithm& operator=(const HmacAlgorithm&) = delete;
  EVP_MAC* mac;
};

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

std::array<std::uint8_t, kMacSize> HmacSha256(std::span<const std::uint8_t> key,
                                              std::initializer_list<std::string_view> parts) {
  static const HmacAlgorithm algorithm;
  if (algorithm.mac == nullptr) Fatal("EVP_MAC_fetch(HMAC)");
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(algorithm.mac));
  if (!ctx) Fatal("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  // A null key pointer means "keep the previous key" to EVP_MAC_init; an empty key must still be
  // a (zero-length) key.
  static const std::uint8_t kNoKey = 0;
  const std::uint8_t* key_data = key.empty() ? &kNoKey : key.data();
  if (EVP_MAC_init(ctx.get(), key_data, key.size(), params) != 1) Fatal("EVP_MAC_init");
  for (std::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      Fatal("EVP_MAC_update");
    }
  }
  std::array<std::uint8_t, kMacSize> out{};
  std::size_t size = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &size, out.size()) != 1 || size != out.size()) {
    Fatal("EVP_MAC_final");
  }
  return out;
}

}  // namespace

std::string NewWebhookSecret(crypto::Random& random) {
  std::array<std::uint8_t, kNewSecretBytes> key{};
  random.Fill(key);
  std::string secret = std::string(kSecretPrefix) + crypto::Base64Encode(key);
  OPENSSL_cleanse(key.data(), key.size());
  return secret;
}

Result<std::vector<std::uint8_t>> DecodeSecret(std::string_view whsec) {
  std::string_view text = whsec;
  if (text.starts_with(kSecretPrefix)) text.remove_prefix(kSecretPrefix.size());
  if (text.empty()) return MakeError(Code::kInvalidField, "webhook secret is empty");
  std::string decoded;
  if (!crypto::Base64Decode(text, decoded)) {
    return MakeError(Code::kInvalidField,
                     "webhook secret must be \"whsec_\" followed by standard base64 (A-Z a-z 0-9 "
                     "+ /, '=' padding, no spaces)");
  }
  const std::size_t got = decoded.size();
  if (got < kMinSecretBytes || got > kMaxSecretBytes) {
    OPENSSL_cleanse(decoded.data(), decoded.size());
    return MakeError(Code::kInvalidField, "webhook secret decodes to " + std::to_string(got) +
                                              " bytes; Standard Webhooks secrets are 24 to 64 "
                                              "bytes");
  }
  std::vector<std::uint8_t> key(decoded.begin(), decoded.end());
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return key;
}

std::string NewMessageId(crypto::Random& random) {
  static constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::array<std::uint8_t, 16> bytes{};
  random.Fill(bytes);
  std::string id = "msg_";
  // 128 bits in 5-bit groups: 25 full groups and 3 bits left, which make the 26th character.
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      id.push_back(kBase32[(acc >> bits) & 31]);
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) id.push_back(kBase32[(acc << (5 - bits)) & 31]);
  return id;
}

std::string Sign(std::span<const std::uint8_t> key, std::string_view msg_id,
                 std::int64_t timestamp_s, std::string_view body) {
  const std::string timestamp = std::to_string(timestamp_s);
  const auto mac = HmacSha256(key, {msg_id, ".", timestamp, ".", body});
  return "v1," + crypto::Base64Encode(mac);
}

std::string SignatureHeader(const std::vector<std::vector<std::uint8_t>>& keys,
                            std::string_view msg_id, std::int64_t timestamp_s,
                            std::string_view body) {
  std::string header;
  for (const auto& key : keys) {
    if (!header.empty()) header.push_back(' ');
    header += Sign(key, msg_id, timestamp_s, body);
  }
  return header;
}

}  // namespace agentgate::webhooks
