// SHA-256 digests of high-entropy tokens, and constant-time comparison.
//
// Secrets are stored and indexed only by their SHA-256 (right for >=256-bit random tokens, where
// a slow password hash adds nothing). Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace agentgate::crypto {

using Digest = std::array<std::uint8_t, 32>;

Digest Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
std::string DigestHex(const Digest& d);
// Parses 64 hex chars; false on anything else.
bool DigestFromHex(std::string_view hex, Digest& out);
bool ConstantTimeEqual(const Digest& a, const Digest& b);

struct DigestHash {
  std::size_t operator()(const Digest& d) const noexcept {
    std::size_t h;
    static_assert(sizeof h <= sizeof(Digest));
    __builtin_memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

}  // namespace agentgate::crypto
