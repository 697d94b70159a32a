// Secrets encrypted at rest (webhook signing secrets, and anything else the server must be able
// to read back, unlike tokens, which are stored only as digests).
//
// A Sealer holds one 32-byte key and turns a plaintext into a printable, self-describing string:
//
//   "v1:" + base64url-without-padding(nonce[12] || ciphertext || tag[16])
//
// sealed with AES-256-GCM under a fresh random nonce, with the "v1:" prefix bound in as associated
// data. The version prefix leaves room for another algorithm or key later without guessing.
// Random 96-bit nonces are safe for far more than 2^32 seals under one key, which is far beyond
// what a server stores.
//
// The key lives in a file next to the database (see LoadOrCreate), never in the database itself:
// a copy of the database alone does not reveal the secrets.
//
// Thread safety: a Sealer is immutable after construction; Seal and Open are safe from any number
// of threads at once (each call uses its own cipher context). Ownership: the Sealer owns a copy
// of the key and wipes it when destroyed; it keeps no reference to its arguments.
// Errors: Open and LoadOrCreate return Error values and never throw. Seal cannot fail on any
// input; if OpenSSL itself fails (out of memory) it aborts, as OsRandom does, because there is no
// safe way to go on without the secret stored.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "crypto/random.h"

namespace agentgate::crypto {

class Sealer {
 public:
  static constexpr std::size_t kKeySize = 32;

  explicit Sealer(std::span<const std::uint8_t, kKeySize> key);
  ~Sealer();
  Sealer(const Sealer&) = default;
  Sealer& operator=(const Sealer&) = default;

  // Reads the raw 32-byte key at `key_path`, or, if there is no file there, draws a new key from
  // `random` and creates the file atomically: written to a temporary file with mode 0600, fsynced,
  // then linked into place (never overwriting a key another process created meanwhile, whose key
  // is then used instead), and the directory fsynced so the key survives a crash with the data
  // sealed under it.
  //
  // Errors (code server_error, with a message naming the path and the fix): the file is not a
  // regular file, has any permission bit for group or others ("chmod 600 <path>"), is not exactly
  // 32 bytes, or cannot be read or created (missing directory, permissions).
  static Result<Sealer> LoadOrCreate(const std::string& key_path, Random& random);

  // "v1:..." as described above; a different string every call, even for the same plaintext.
  // `random` supplies the nonce and must be a CSPRNG (OsRandom) outside tests: a nonce repeated
  // under one key would break GCM's confidentiality and integrity.
  std::string Seal(std::string_view plaintext, Random& random) const;

  // The plaintext sealed by Seal under this key. Errors (code server_error): the text is not of
  // the "v1:" form, or it was sealed under another key, or it was altered in any way.
  Result<std::string> Open(std::string_view sealed) const;

 private:
  std::array<std::uint8_t, kKeySize> key_;
};

}  // namespace agentgate::crypto
