// Random identifiers and secrets.
//
// Random is the injected source of randomness: the production one draws from OpenSSL's CSPRNG.
// Thread safety: OsRandom is safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace agentgate::crypto {

class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL RAND_bytes; aborts if the CSPRNG fails (there is no safe fallback).
class OsRandom final : public Random {
 public:
  void Fill(std::span<std::uint8_t> out) override;
};

std::string HexEncode(std::span<const std::uint8_t> bytes);

// "ap_" + 16 hex chars (64 bits).
std::string NewAgentId(Random& random);
// "sk_ap_" + 64 hex chars (256 bits).
std::string NewAgentSecret(Random& random);
// RFC 4122 version 4 UUID, lower case.
std::string NewUuid(Random& random);
// prefix + 43 base64url chars (256 bits), for session and link tokens.
std::string NewToken(Random& random, std::string_view prefix);

}  // namespace agentgate::crypto
