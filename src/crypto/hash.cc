#include "crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "crypto/random.h"

namespace agentgate::crypto {

namespace {

// OpenSSL 3's one-shot SHA256() looks the algorithm up on every call (measured: 338 ns for an
// agent secret). Fetch it once, and keep one digest context per thread (about 110 ns).
struct Sha256Context {
  Sha256Context() : md(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx(EVP_MD_CTX_new()) {}
  ~Sha256Context() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
  Sha256Context(const Sha256Context&) = delete;
  Sha256Context& operator=(const Sha256Context&) = delete;
  EVP_MD* md;
  EVP_MD_CTX* ctx;
};

}  // namespace

Digest Sha256(std::string_view data) {
  Digest d;
  thread_local Sha256Context context;
  unsigned int size = 0;
  if (context.md && context.ctx && EVP_DigestInit_ex2(context.ctx, context.md, nullptr) == 1 &&
      EVP_DigestUpdate(context.ctx, data.data(), data.size()) == 1 &&
      EVP_DigestFinal_ex(context.ctx, d.data(), &size) == 1 && size == d.size()) {
    return d;
  }
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

std::string DigestHex(const Digest& d) { return HexEncode(d); }

std::string Sha256Hex(std::string_view data) { return DigestHex(Sha256(data)); }

bool DigestFromHex(std::string_view hex, Digest& out) {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool ConstantTimeEqual(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace agentgate::crypto
