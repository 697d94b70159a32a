#include "crypto/seal.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "crypto/base64.h"
#include "crypto/hash.h"

namespace agentgate::crypto {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
// EVP takes int lengths; larger inputs go through in pieces of this size.
constexpr std::size_t kChunk = std::size_t{1} << 30;
constexpr std::size_t kKeySize = Sealer::kKeySize;
static_assert(Keyring::kKeySize == kKeySize);

// Key bytes that wipe themselves, so that every copy made along the way is cleaned up.
struct SecretKey {
  std::array<std::uint8_t, kKeySize> bytes{};

  SecretKey() = default;
  explicit SecretKey(std::span<const std::uint8_t, kKeySize> key) {
    std::copy(key.begin(), key.end(), bytes.begin());
  }
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

  bool operator==(const SecretKey& other) const {
    return CRYPTO_memcmp(bytes.data(), other.bytes.data(), kKeySize) == 0;
  }
};

SecretKey NewKey(Random& random) {
  SecretKey key;
  random.Fill(key.bytes);
  return key;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "fatal: %s failed (OpenSSL); cannot seal a secret\n", what);
  std::abort();
}

Error SealError(std::string message) {
  return MakeError(Code::kServerError, std::move(message),
                   "check that the server runs with the key file it sealed its secrets with");
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the result: close can report a failed delayed write.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string ErrnoText(int err) { return std::strerror(err); }

Error KeyFileError(const std::string& path, std::string what, std::string remediation = {}) {
  // The catalogue's server_error remediation ("retry") is wrong here: only the operator can fix
  // a key file.
  if (remediation.empty()) remediation = "fix the sealing key file or its directory, then restart";
  return MakeError(Code::kServerError, "sealing key file " + path + ": " + std::move(what),
                   std::move(remediation));
}

// The key at `path`, or nullopt if there is no file there.
Result<std::optional<SecretKey>> ReadKeyFile(const std::string& path) {
  // O_NONBLOCK: a FIFO planted at the path must not block the server's start; only a regular
  // file is accepted below, for which the flag changes nothing.
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw < 0) {
    const int err = errno;
    if (err == ENOENT) return std::optional<SecretKey>();
    return KeyFileError(path, "cannot open: " + ErrnoText(err),
                        "make it readable by the user the server runs as");
  }
  Fd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return KeyFileError(path, "cannot stat: " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) return KeyFileError(path, "is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return KeyFileError(path,
                        std::string("is accessible by group or others (mode ") + mode +
                            "); it protects every stored webhook secret",
                        "run: chmod 600 " + path);
  }
  // One byte more than a key, to tell "exactly 32" from "longer".
  std::array<std::uint8_t, Sealer::kKeySize + 1> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      OPENSSL_cleanse(buf.data(), buf.size());
      return KeyFileError(path, "cannot read: " + ErrnoText(err));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != Sealer::kKeySize) {
    OPENSSL_cleanse(buf.data(), buf.size());
    return KeyFileError(
        path,
        got > Sealer::kKeySize ? "is longer than 32 bytes"
                               : "has " + std::to_string(got) + " bytes, not 32",
        "a sealing key file holds exactly 32 raw bytes; restore the original from a backup "
        "(secrets sealed under it cannot be opened without it), or, on a new installation, "
        "remove it so that a new key is created");
  }
  std::optional<SecretKey> key(std::in_place,
                               std::span<const std::uint8_t, kKeySize>(buf.data(), kKeySize));
  OPENSSL_cleanse(buf.data(), buf.size());
  return key;
}

// Writes everything; 0, or the errno of the failed write.
int WriteAll(int fd, std::span<const std::uint8_t> data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

// fsyncs the directory holding `path`, so that a new name in it is durable.
void SyncParentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int raw = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return;  // best effort: the key file itself is already synced
  Fd fd(raw);
  (void)::fsync(fd.get());
}

// A temporary file next to `path` with a random name, created exclusively with mode 0600,
// holding `data`, fsynced and closed. Returns its name, or the error naming `path`.
Result<std::string> WriteTemporaryFile(const std::string& path, std::span<const std::uint8_t> data,
                                       Random& random) {
  std::array<std::uint8_t, 8> tag{};
  random.Fill(tag);
  std::string tmp = path + ".tmp-" + HexEncode(tag);

  // O_EXCL with a random name: never follow or reuse a file someone placed there.
  const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) {
    const int err = errno;
    return KeyFileError(path, "cannot create " + tmp + ": " + ErrnoText(err),
                        "check that the directory exists and is writable by the server's user");
  }
  Fd fd(raw);
  // Cleans up after a failed step; `err` is the errno of that step.
  auto fail = [&](const char* step, int err) -> Error {
    ::unlink(tmp.c_str());
    return KeyFileError(path, std::string("cannot ") + step + " " + tmp + ": " + ErrnoText(err));
  };
  // The umask can only take bits away from 0600, but a umask such as 0400 would leave a file
  // the server itself cannot read back: set the mode explicitly.
  if (::fchmod(fd.get(), 0600) != 0) return fail("chmod", errno);
  if (int err = WriteAll(fd.get(), data); err != 0) return fail("write", err);
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (fd.Close() != 0) return fail("close", errno);
  return tmp;
}

// Creates the key file at `path` holding `key`, atomically. If a key file appeared there
// meanwhile, it is left alone and its key is returned instead.
Result<SecretKey> CreateKeyFile(const std::string& path, const SecretKey& key, Random& random) {
  auto written = WriteTemporaryFile(path, key.bytes, random);
  if (!written.ok()) return written.take_error();
  const std::string& tmp = *written;

  // link() rather than rename(): it fails instead of replacing a key file that another process
  // created in the meantime, whose key may already have sealed secrets.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    if (err == EEXIST) {
      ::unlink(tmp.c_str());
      auto existing = ReadKeyFile(path);
      if (!existing.ok()) return existing.take_error();
      if (!existing->has_value()) return KeyFileError(path, "vanished while being created");
      return **existing;
    }
    // File systems without hard links: rename still makes the file appear whole.
    const bool no_links = err == EPERM || err == EOPNOTSUPP || err == EMLINK || err == ENOSYS;
    if (!no_links || ::rename(tmp.c_str(), path.c_str()) != 0) {
      const int failed = no_links ? errno : err;
      ::unlink(tmp.c_str());
      return KeyFileError(path, std::string("cannot ") + (no_links ? "rename " : "link ") + tmp +
                                    ": " + ErrnoText(failed));
    }
  } else {
    ::unlink(tmp.c_str());
  }
  SyncParentDirectory(path);
  return key;
}

// Writes `text` to `path`, replacing any file there atomically (rename), durably.
Status ReplaceFile(const std::string& path, std::string_view text, Random& random) {
  auto written = WriteTemporaryFile(
      path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, random);
  if (!written.ok()) return written.take_error();
  if (::rename(written->c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(written->c_str());
    return KeyFileError(path, "cannot rename " + *written + ": " + ErrnoText(err));
  }
  SyncParentDirectory(path);
  return Ok();
}

// base64url(nonce || AES-256-GCM(key, nonce, aad, plaintext) || tag) for a fresh random nonce.
std::string SealBlob(std::span<const std::uint8_t, kKeySize> key, std::string_view aad,
                     std::string_view plaintext, Random& random) {
  std::vector<std::uint8_t> blob(kNonceSize + plaintext.size() + kTagSize);
  random.Fill(std::span<std::uint8_t>(blob.data(), kNonceSize));

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Fatal("EVP_CIPHER_CTX_new");
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), blob.data(), nullptr) != 1) {
    Fatal("EVP_EncryptInit_ex2");
  }
  int len = 0;
  const auto* aad_bytes = reinterpret_cast<const unsigned char*>(aad.data());
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad_bytes, static_cast<int>(aad.size())) != 1) {
    Fatal("EVP_EncryptUpdate");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(plaintext.data());
  std::uint8_t* out = blob.data() + kNonceSize;
  for (std::size_t done = 0; done < plaintext.size();) {
    const std::size_t n = std::min(kChunk, plaintext.size() - done);
    if (EVP_EncryptUpdate(ctx.get(), out + done, &len, in + done, static_cast<int>(n)) != 1) {
      Fatal("EVP_EncryptUpdate");
    }
    done += static_cast<std::size_t>(len);  // GCM is a stream mode: len == n
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out + plaintext.size(), &len) != 1) {
    Fatal("EVP_EncryptFinal_ex");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          blob.data() + kNonceSize + plaintext.size()) != 1) {
    Fatal("EVP_CTRL_GCM_GET_TAG");
  }
  return Base64UrlEncode(blob);
}

// The decoded nonce || ciphertext || tag of a sealed text, or the error.
Result<std::string> DecodeBlob(std::string_view text) {
  std::string blob;
  if (!Base64UrlDecode(text, blob)) return SealError("sealed secret is not valid base64url");
  if (blob.size() < kNonceSize + kTagSize) return SealError("sealed secret is truncated");
  return blob;
}

// The plaintext of a decoded blob sealed under `key` with `aad`.
Result<std::string> OpenBlob(std::span<const std::uint8_t, kKeySize> key, std::string_view aad,
                             std::string& blob) {
  const std::size_t text_size = blob.size() - kNonceSize - kTagSize;
  auto* bytes = reinterpret_cast<std::uint8_t*>(blob.data());

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return SealError("cannot allocate a cipher context");
  int len = 0;
  const auto* aad_bytes = reinterpret_cast<const unsigned char*>(aad.data());
  if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), bytes, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad_bytes, static_cast<int>(aad.size())) != 1) {
    return SealError("cannot start decryption");
  }
  std::string plaintext(text_size, '\0');
  const std::uint8_t* in = bytes + kNonceSize;
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  for (std::size_t done = 0; done < text_size;) {
    const std::size_t n = std::min(kChunk, text_size - done);
    if (EVP_DecryptUpdate(ctx.get(), out + done, &len, in + done, static_cast<int>(n)) != 1) {
      return SealError("cannot decrypt");
    }
    done += static_cast<std::size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize),
                          bytes + kNonceSize + text_size) != 1) {
    return SealError("cannot set the authentication tag");
  }
  // The tag check happens here; until it passes, the plaintext must not be used.
  if (EVP_DecryptFinal_ex(ctx.get(), out + text_size, &len) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return SealError(
        "sealed secret does not authenticate: it was sealed under another key, or altered");
  }
  return plaintext;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sealer

Sealer::Sealer(std::span<const std::uint8_t, kKeySize> key) {
  std::copy(key.begin(), key.end(), key_.begin());
}

Sealer::~Sealer() { OPENSSL_cleanse(key_.data(), key_.size()); }

Result<Sealer> Sealer::LoadOrCreate(const std::string& key_path, Random& random) {
  if (key_path.empty()) return KeyFileError("\"\"", "no path given");
  try {
    auto existing = ReadKeyFile(key_path);
    if (!existing.ok()) return existing.take_error();
    if (existing->has_value()) return Sealer((*existing)->bytes);
    auto created = CreateKeyFile(key_path, NewKey(random), random);
    if (!created.ok()) return created.take_error();
    return Sealer(created->bytes);
  } catch (const std::exception& e) {  // bad_alloc, filesystem_error: keep them in the module
    return KeyFileError(key_path, e.what());
  }
}

std::string Sealer::Seal(std::string_view plaintext, Random& random) const {
  return std::string(kPrefix) + SealBlob(key_, kPrefix, plaintext, random);
}

Result<std::string> Sealer::Open(std::string_view sealed) const {
  try {
    if (!sealed.starts_with(kPrefix)) {
      return SealError("sealed secret has an unknown format (it does not start with \"v1:\")");
    }
    auto blob = DecodeBlob(sealed.substr(kPrefix.size()));
    if (!blob.ok()) return blob.take_error();
    return OpenBlob(key_, kPrefix, *blob);
  } catch (const std::bad_alloc&) {
    return SealError("out of memory opening a sealed secret");
  }
}

// ---------------------------------------------------------------------------------------------
// Keyring

namespace {

constexpr std::string_view kV2Prefix = "v2:";
constexpr std::string_view kConfiguredKeyVar = "AGENTGATE_MASTER_KEY";
constexpr std::string_view kPreviousKeysVar = "AGENTGATE_PREVIOUS_MASTER_KEYS";
constexpr std::size_t kKidSize = 9;  // "k" + 8 hex

bool IsKid(std::string_view s) {
  if (s.size() != kKidSize || s[0] != 'k') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  return (std::filesystem::path(dir) / name).string();
}

Error ConfiguredKeyError(std::string what) {
  return MakeError(Code::kServerError, std::move(what),
                   "set it to the standard base64 of 32 random bytes, as made by: "
                   "openssl rand -base64 32");
}

// A key given in configuration; `name` says where it came from, for the error.
Result<SecretKey> ParseConfiguredKey(std::string_view b64, const std::string& name) {
  std::string raw;
  if (!Base64Decode(b64, raw)) {
    return ConfiguredKeyError(name + " is not standard base64 (A-Z a-z 0-9 + /, '=' padding)");
  }
  if (raw.size() != kKeySize) {
    const std::size_t got = raw.size();
    OPENSSL_cleanse(raw.data(), raw.size());
    return ConfiguredKeyError(name + " decodes to " + std::to_string(got) + " bytes, not 32");
  }
  SecretKey key(std::span<const std::uint8_t, kKeySize>(
      reinterpret_cast<const std::uint8_t*>(raw.data()), kKeySize));
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

// The kid in <keys>/current, or nullopt when there is no such file.
Result<std::optional<std::string>> ReadCurrentFile(const std::string& path) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw < 0) {
    const int err = errno;
    if (err == ENOENT) return std::optional<std::string>();
    return KeyFileError(path, "cannot open: " + ErrnoText(err),
                        "make it readable by the user the server runs as");
  }
  Fd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return KeyFileError(path, "cannot stat: " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) return KeyFileError(path, "is not a regular file");
  char buf[64];
  std::size_t got = 0;
  while (got < sizeof buf) {
    const ssize_t n = ::read(fd.get(), buf + got, sizeof buf - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return KeyFileError(path, "cannot read: " + ErrnoText(errno));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  std::string_view text(buf, got);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (!IsKid(text)) {
    return KeyFileError(path, "does not hold a key id (\"k\" and 8 lower-case hex digits)",
                        "write the id of the key to seal with into it, e.g. the name of a .key "
                        "file beside it without \".key\"");
  }
  return std::optional<std::string>(std::string(text));
}

// Makes the keys directory (mode 0700) unless it exists; durable once made.
Status MakeKeysDirectory(const std::string& keys_dir) {
  if (::mkdir(keys_dir.c_str(), 0700) == 0) {
    // As for key files: a strict umask (0477) would leave a directory the server cannot list.
    (void)::chmod(keys_dir.c_str(), 0700);
    SyncParentDirectory(keys_dir);
    return Ok();
  }
  const int err = errno;
  struct stat st {};
  if (err == EEXIST && ::stat(keys_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Ok();
  return KeyFileError(keys_dir,
                      err == EEXIST ? "is not a directory" : "cannot create: " + ErrnoText(err),
                      "check that the data directory exists and is writable by the server's "
                      "user");
}

}  // namespace

struct Keyring::State {
  std::string keys_dir;
  bool current_from_config = false;

  // Serializes Rotate calls; taken before `mutex`.
  std::mutex rotate_mutex;
  mutable std::shared_mutex mutex;
  // Guarded by `mutex`. Keys are never removed, so pointers into the map stay valid.
  std::map<std::string, SecretKey, std::less<>> keys;
  const std::string* current_kid = nullptr;
  const SecretKey* current_key = nullptr;
  const SecretKey* legacy_key = nullptr;  // master.key, if loaded

  // Adds `key` under its kid; the entry, or an error if another key has that kid.
  Result<std::map<std::string, SecretKey, std::less<>>::iterator> Add(const SecretKey& key,
                                                                      const std::string& source) {
    std::string kid = KeyId(key.bytes);
    auto [it, inserted] = keys.try_emplace(kid, key);
    if (!inserted && !(it->second == key)) {
      return MakeError(Code::kServerError,
                       source + " holds a key with id " + kid + ", as does another, different key",
                       "keep only one of the two keys: texts name their key by this id");
    }
    return it;
  }

  void MakeCurrent(std::map<std::string, SecretKey, std::less<>>::iterator it) {
    current_kid = &it->first;
    current_key = &it->second;
  }
};

Keyring::Keyring(std::unique_ptr<State> state) : state_(std::move(state)) {}
Keyring::Keyring(Keyring&&) noexcept = default;
Keyring& Keyring::operator=(Keyring&&) noexcept = default;
Keyring::~Keyring() = default;

std::string Keyring::KeyId(std::span<const std::uint8_t, kKeySize> key) {
  const Digest digest =
      Sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  return "k" + HexEncode(std::span<const std::uint8_t>(digest.data(), 4));
}

std::vector<std::string> Keyring::SplitKeyList(std::string_view comma_separated) {
  std::vector<std::string> keys;
  while (true) {
    const std::size_t comma = comma_separated.find(',');
    std::string_view entry = comma_separated.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t'))
      entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    if (!entry.empty()) keys.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    comma_separated.remove_prefix(comma + 1);
  }
  return keys;
}

Result<Keyring> Keyring::Load(const std::string& data_dir, std::string_view configured_key_b64,
                              Random& random) {
  return Load(data_dir, configured_key_b64, {}, random);
}

Result<Keyring> Keyring::Load(const std::string& data_dir, std::string_view configured_key_b64,
                              const std::vector<std::string>& configured_previous_keys_b64,
                              Random& random) {
  if (data_dir.empty()) return KeyFileError("\"\"", "no data directory given");
  try {
    auto state = std::make_unique<State>();
    state->keys_dir = JoinPath(data_dir, "keys");
    const std::string& keys_dir = state->keys_dir;

    // Configuration first: a bad variable is reported before any file is looked at.
    std::optional<SecretKey> configured;
    if (!configured_key_b64.empty()) {
      auto key = ParseConfiguredKey(configured_key_b64, std::string(kConfiguredKeyVar));
      if (!key.ok()) return key.take_error();
      configured = *key;
    }
    std::vector<SecretKey> previous;
    for (std::size_t i = 0; i < configured_previous_keys_b64.size(); ++i) {
      auto key = ParseConfiguredKey(
          configured_previous_keys_b64[i],
          std::string(kPreviousKeysVar) + " (entry " + std::to_string(i + 1) + ")");
      if (!key.ok()) return key.take_error();
      previous.push_back(*key);
    }

    // keys/<kid>.key, each checked against its name.
    std::vector<std::string> dir_kids;
    std::error_code ec;
    const auto status = std::filesystem::status(keys_dir, ec);
    if (!ec && std::filesystem::exists(status)) {
      if (!std::filesystem::is_directory(status)) {
        return KeyFileError(keys_dir, "is not a directory",
                            "move it away; the sealing keys live in this directory");
      }
      std::vector<std::string> names;
      for (const auto& entry : std::filesystem::directory_iterator(keys_dir)) {
        names.push_back(entry.path().filename().string());
      }
      std::sort(names.begin(), names.end());
      for (const std::string& name : names) {
        if (!name.ends_with(".key")) continue;
        const std::string kid = name.substr(0, name.size() - 4);
        if (!IsKid(kid)) continue;
        const std::string path = JoinPath(keys_dir, name);
        auto key = ReadKeyFile(path);
        if (!key.ok()) return key.take_error();
        if (!key->has_value()) continue;  // removed meanwhile
        const std::string actual = KeyId((*key)->bytes);
        if (actual != kid) {
          return KeyFileError(path, "holds the key with id " + actual + ", not " + kid,
                              "rename it to " + actual +
                                  ".key, or restore the right file: "
                                  "texts name their key by this id");
        }
        auto added = state->Add(**key, path);
        if (!added.ok()) return added.take_error();
        dir_kids.push_back(kid);
      }
    } else if (ec && ec != std::errc::no_such_file_or_directory) {
      return KeyFileError(keys_dir, "cannot stat: " + ec.message());
    }

    // Sealer's master.key: the key of "v1:" texts.
    const std::string legacy_path = JoinPath(data_dir, "master.key");
    auto legacy = ReadKeyFile(legacy_path);
    if (!legacy.ok()) return legacy.take_error();
    if (legacy->has_value()) {
      auto added = state->Add(**legacy, legacy_path);
      if (!added.ok()) return added.take_error();
      state->legacy_key = &(*added)->second;
    }
    for (std::size_t i = 0; i < previous.size(); ++i) {
      auto added = state->Add(
          previous[i], std::string(kPreviousKeysVar) + " (entry " + std::to_string(i + 1) + ")");
      if (!added.ok()) return added.take_error();
    }

    // The current key.
    if (configured.has_value()) {
      auto added = state->Add(*configured, std::string(kConfiguredKeyVar));
      if (!added.ok()) return added.take_error();
      state->MakeCurrent(*added);
      state->current_from_config = true;
      return Keyring(std::move(state));
    }
    const std::string current_path = JoinPath(keys_dir, "current");
    auto current = ReadCurrentFile(current_path);
    if (!current.ok()) return current.take_error();
    if (current->has_value()) {
      const std::string& kid = **current;
      auto it = state->keys.find(kid);
      if (it == state->keys.end()) {
        return KeyFileError(
            current_path, "names key " + kid + ", but there is no " + kid + ".key beside it",
            "restore " + JoinPath(keys_dir, kid + ".key") + " from a backup, or pass that key in " +
                std::string(kConfiguredKeyVar));
      }
      state->MakeCurrent(it);
      return Keyring(std::move(state));
    }

    // No keys/current yet: master.key, else the one key file, else a new key.
    std::map<std::string, SecretKey, std::less<>>::iterator chosen;
    if (state->legacy_key != nullptr) {
      chosen = state->keys.find(KeyId(state->legacy_key->bytes));
    } else if (dir_kids.size() == 1) {
      chosen = state->keys.find(dir_kids.front());
    } else if (dir_kids.empty()) {
      SecretKey key = NewKey(random);
      auto added = state->Add(key, "a new key");
      if (!added.ok()) return added.take_error();
      chosen = *added;
    } else {
      return KeyFileError(
          current_path,
          "is missing, and " + keys_dir + " holds " + std::to_string(dir_kids.size()) + " keys",
          "write the id of the key to seal with (a .key file's name without "
          "\".key\") into " +
              current_path);
    }
    if (Status made = MakeKeysDirectory(keys_dir); !made.ok()) return made.take_error();
    const std::string& kid = chosen->first;
    if (std::find(dir_kids.begin(), dir_kids.end(), kid) == dir_kids.end()) {
      auto created = CreateKeyFile(JoinPath(keys_dir, kid + ".key"), chosen->second, random);
      if (!created.ok()) return created.take_error();
      if (!(*created == chosen->second)) {
        return KeyFileError(JoinPath(keys_dir, kid + ".key"),
                            "appeared meanwhile with a different key");
      }
    }
    if (Status written = ReplaceFile(current_path, kid + "\n", random); !written.ok()) {
      return written.take_error();
    }
    state->MakeCurrent(chosen);
    return Keyring(std::move(state));
  } catch (const std::exception& e) {  // bad_alloc, filesystem_error: keep them in the module
    return KeyFileError(data_dir, e.what());
  }
}

std::string Keyring::Seal(std::string_view plaintext, Random& random) const {
  std::shared_lock lock(state_->mutex);
  std::string prefix = std::string(kV2Prefix) + *state_->current_kid + ":";
  return prefix + SealBlob(state_->current_key->bytes, prefix, plaintext, random);
}

Result<std::string> Keyring::Open(std::string_view sealed) const {
  try {
    if (sealed.starts_with(kV2Prefix)) {
      const std::size_t colon = sealed.find(':', kV2Prefix.size());
      const std::string_view kid = colon == std::string_view::npos
                                       ? std::string_view()
                                       : sealed.substr(kV2Prefix.size(), colon - kV2Prefix.size());
      if (!IsKid(kid)) {
        return SealError("sealed secret has an unknown format (no key id after \"v2:\")");
      }
      auto blob = DecodeBlob(sealed.substr(colon + 1));
      if (!blob.ok()) return blob.take_error();
      std::shared_lock lock(state_->mutex);
      auto it = state_->keys.find(kid);
      if (it == state_->keys.end()) {
        return MakeError(
            Code::kServerError,
            "sealed under key " + std::string(kid) + ", which this server does not have",
            "restore " + JoinPath(state_->keys_dir, std::string(kid) + ".key") +
                " from a backup, or pass that key in " + std::string(kPreviousKeysVar));
      }
      return OpenBlob(it->second.bytes, sealed.substr(0, colon + 1), *blob);
    }
    if (sealed.starts_with(kPrefix)) {
      auto blob = DecodeBlob(sealed.substr(kPrefix.size()));
      if (!blob.ok()) return blob.take_error();
      std::shared_lock lock(state_->mutex);
      if (state_->legacy_key != nullptr) return OpenBlob(state_->legacy_key->bytes, kPrefix, *blob);
      // No master.key: the key may have moved into configuration. GCM's tag tells which it is.
      for (const auto& [kid, key] : state_->keys) {
        auto opened = OpenBlob(key.bytes, kPrefix, *blob);
        if (opened.ok()) return opened;
      }
      return SealError(
          "sealed under the legacy master.key (a \"v1:\" text), which this server does not have, "
          "or altered");
    }
    return SealError(
        "sealed secret has an unknown format (it does not start with \"v1:\" or \"v2:\")");
  } catch (const std::bad_alloc&) {
    return SealError("out of memory opening a sealed secret");
  }
}

std::string_view Keyring::CurrentKid() const {
  std::shared_lock lock(state_->mutex);
  return *state_->current_kid;
}

bool Keyring::NeedsReseal(std::string_view sealed) const {
  std::shared_lock lock(state_->mutex);
  const std::string& kid = *state_->current_kid;
  return !(sealed.starts_with(kV2Prefix) && sealed.substr(kV2Prefix.size()).starts_with(kid) &&
           sealed.substr(kV2Prefix.size() + kid.size()).starts_with(':'));
}

Result<std::string> Keyring::Rotate(Random& random) {
  if (state_->current_from_config) {
    return MakeError(Code::kConflict,
                     "the current sealing key comes from " + std::string(kConfiguredKeyVar) +
                         ", so the server cannot rotate it",
                     "make a new key (openssl rand -base64 32), set it as " +
                         std::string(kConfiguredKeyVar) + ", add the old one to " +
                         std::string(kPreviousKeysVar) +
                         " (comma-separated) so that older secrets stay readable, and restart");
  }
  try {
    std::lock_guard rotating(state_->rotate_mutex);
    SecretKey key;
    std::string kid;
    {
      std::shared_lock lock(state_->mutex);
      do {  // a kid shared with a held key (one chance in 2^32 per key) would be ambiguous
        key = NewKey(random);
        kid = KeyId(key.bytes);
      } while (state_->keys.contains(kid));
    }
    if (Status made = MakeKeysDirectory(state_->keys_dir); !made.ok()) return made.take_error();
    const std::string key_path = JoinPath(state_->keys_dir, kid + ".key");
    auto created = CreateKeyFile(key_path, key, random);
    if (!created.ok()) return created.take_error();
    if (!(*created == key)) return KeyFileError(key_path, "appeared meanwhile with another key");
    if (Status written = ReplaceFile(JoinPath(state_->keys_dir, "current"), kid + "\n", random);
        !written.ok()) {
      return written.take_error();
    }
    std::unique_lock lock(state_->mutex);
    auto added = state_->Add(key, key_path);
    if (!added.ok()) return added.take_error();
    state_->MakeCurrent(*added);
    return kid;
  } catch (const std::exception& e) {
    return KeyFileError(state_->keys_dir, e.what());
  }
}

}  // namespace agentgate::crypto
