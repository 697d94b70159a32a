#include "crypto/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "crypto/base64.h"

namespace agentgate::crypto {

void OsRandom::Fill(std::span<std::uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fputs("fatal: the system random generator failed\n", stderr);
    std::abort();
  }
}

std::string HexEncode(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string NewAgentId(Random& random) {
  std::array<std::uint8_t, 8> b;
  random.Fill(b);
  return "ap_" + HexEncode(b);
}

std::string NewAgentSecret(Random& random) {
  std::array<std::uint8_t, 32> b;
  random.Fill(b);
  return "sk_ap_" + HexEncode(b);
}

std::string NewUuid(Random& random) {
  std::array<std::uint8_t, 16> b;
  random.Fill(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string NewToken(Random& random, std::string_view prefix) {
  std::array<std::uint8_t, 33> b;  // 264 bits, 44 chars; we keep 43 chars = 258 bits
  random.Fill(b);
  std::string out(prefix);
  out += Base64UrlEncode(b);
  out.pop_back();
  return out;
}

}  // namespace agentgate::crypto
