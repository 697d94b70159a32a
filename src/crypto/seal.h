// Secrets encrypted at rest (webhook signing secrets, and anything else the server must be able
// to read back, unlike tokens, which are stored only as digests).
//
// Two forms: Sealer, one key and "v1:" texts, below; and Keyring, several keys named by key ids
// and "v2:<kid>:" texts, which can rotate its key and still open everything sealed before
// (including "v1:" texts), further down.
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
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// A Keyring holds several 32-byte sealing keys, each named by its key id (kid): "k" + the first 8
// hex characters of the SHA-256 of the key bytes (e.g. "k3fa29c01"). One of them is current; Seal
// uses it and writes
//
//   "v2:" + kid + ":" + base64url-without-padding(nonce[12] || ciphertext || tag[16])
//
// with AES-256-GCM under a fresh random nonce, binding the whole "v2:<kid>:" prefix in as
// associated data, so a text cannot be relabelled with another key id. Open reads the kid and
// opens the text under that key, whichever is current: rotating the key leaves every older text
// readable. Open also reads the "v1:" texts of Sealer (which name no key), under the legacy key:
// the one loaded from <data_dir>/master.key, Sealer's file; when there is no such file, under
// each key held, since GCM's tag tells the right one.
//
// Where the keys come from (Load):
//   - <data_dir>/keys/<kid>.key: one raw 32-byte key per file, mode 0600, made like Sealer's key
//     file (temporary file, fsync, link into place, fsync of the directory); the directory is
//     made with mode 0700;
//   - <data_dir>/keys/current: the current kid and a newline, replaced atomically (temporary
//     file, fsync, rename, fsync of the directory);
//   - <data_dir>/master.key: Sealer's key file, loaded as the legacy key. When there is no
//     keys/current yet, it becomes the current key: it is copied to keys/<kid>.key and
//     keys/current is written, so the first Rotate moves on from it;
//   - configuration: the key in AGENTGATE_MASTER_KEY (standard base64 of 32 bytes; make one with
//     `openssl rand -base64 32`), passed as `configured_key_b64`, is then the current key, whatever
//     keys/current says, and is never written to disk; the keys in the directory are still loaded
//     to open older texts. Older configured keys, still needed to open what they sealed, go in
//     AGENTGATE_PREVIOUS_MASTER_KEYS, comma-separated (SplitKeyList), passed as
//     `configured_previous_keys_b64`. With a configured key, Load writes nothing at all.
// With no configured key, keys/current names the current key; without keys/current, master.key
// is current (as above), else the one file in keys/, else (no key anywhere) Load draws a new key,
// writes it and makes it current.
//
// Rotation: Rotate draws a new key, writes keys/<kid>.key, then keys/current, then makes it
// current in memory. Older keys stay in keys/ (never delete one while texts sealed under it
// remain: NeedsReseal finds those). A key that came from configuration cannot be rotated here:
// the operator sets a new AGENTGATE_MASTER_KEY and moves the old one to
// AGENTGATE_PREVIOUS_MASTER_KEYS.
//
// Thread safety: Seal, Open, CurrentKid and NeedsReseal are safe from any number of threads at
// once, and concurrently with Rotate (a shared mutex; Rotate holds it exclusively only to switch
// keys, not while writing files); concurrent Rotates run one after the other. Moving a Keyring
// is not thread-safe; a moved-from Keyring may only be destroyed or assigned to. Ownership: the
// Keyring owns copies of its keys and wipes them (OPENSSL_cleanse) when destroyed.
// Errors: Load, Open and Rotate return Error values and never throw. Open's errors have code
// server_error (unknown format, altered text, a kid this server does not have); Load's have code
// server_error and name the file or variable and the fix; Rotate's have code server_error for a
// failed write, or conflict when the current key came from configuration. Seal cannot fail
// (OpenSSL failing aborts, as in Sealer).
class Keyring {
 public:
  static constexpr std::size_t kKeySize = 32;

  // See above. `random` draws new keys and temporary file names, and is not kept.
  static Result<Keyring> Load(const std::string& data_dir, std::string_view configured_key_b64,
                              const std::vector<std::string>& configured_previous_keys_b64,
                              Random& random);
  // The same without AGENTGATE_PREVIOUS_MASTER_KEYS.
  static Result<Keyring> Load(const std::string& data_dir, std::string_view configured_key_b64,
                              Random& random);

  // The entries of AGENTGATE_PREVIOUS_MASTER_KEYS: split at commas, spaces around each dropped,
  // empty entries skipped (base64 has no comma).
  static std::vector<std::string> SplitKeyList(std::string_view comma_separated);

  // "k" + the first 8 lower-case hex characters of SHA-256(key).
  static std::string KeyId(std::span<const std::uint8_t, kKeySize> key);

  Keyring(Keyring&&) noexcept;
  Keyring& operator=(Keyring&&) noexcept;
  ~Keyring();

  // "v2:<current kid>:..." as described above; a different string every call. `random` supplies
  // the nonce and must be a CSPRNG (OsRandom) outside tests.
  std::string Seal(std::string_view plaintext, Random& random) const;

  // The plaintext of a "v2:" text sealed under any key held, or of a "v1:" text under the legacy
  // key. Errors (server_error): unknown format; "sealed under key <kid>, which this server does
  // not have"; altered, or sealed under another key.
  Result<std::string> Open(std::string_view sealed) const;

  // The current key's id. The view stays valid for the life of the Keyring (key ids are never
  // dropped), but names the previous key after a Rotate.
  std::string_view CurrentKid() const;

  // True unless `sealed` is a "v2:" text under the current key: a "v1:" text, one under an older
  // key, or anything else. Looks at the prefix only; does not open the text.
  bool NeedsReseal(std::string_view sealed) const;

  // Draws a new key, stores it as above and makes it current; returns its kid.
  Result<std::string> Rotate(Random& random);

 private:
  struct State;
  explicit Keyring(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace agentgate::crypto
