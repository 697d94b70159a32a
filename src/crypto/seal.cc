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
#include <memory>
#include <optional>
#include <vector>

#include "crypto/base64.h"

namespace agentgate::crypto {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
// EVP takes int lengths; larger inputs go through in pieces of this size.
constexpr std::size_t kChunk = std::size_t{1} << 30;

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
Result<std::optional<Sealer>> ReadKeyFile(const std::string& path) {
  // O_NONBLOCK: a FIFO planted at the path must not block the server's start; only a regular
  // file is accepted below, for which the flag changes nothing.
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw < 0) {
    const int err = errno;
    if (err == ENOENT) return std::optional<Sealer>();
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
  Sealer sealer(std::span<const std::uint8_t, Sealer::kKeySize>(buf.data(), Sealer::kKeySize));
  OPENSSL_cleanse(buf.data(), buf.size());
  return std::optional<Sealer>(sealer);
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

Result<Sealer> CreateKeyFile(const std::string& path, Random& random) {
  std::array<std::uint8_t, Sealer::kKeySize> key{};
  random.Fill(key);
  std::array<std::uint8_t, 8> tag{};
  random.Fill(tag);
  const std::string tmp = path + ".tmp-" + HexEncode(tag);

  // O_EXCL with a random name: never follow or reuse a file someone placed there.
  const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) {
    const int err = errno;
    OPENSSL_cleanse(key.data(), key.size());
    return KeyFileError(path, "cannot create " + tmp + ": " + ErrnoText(err),
                        "check that the directory exists and is writable by the server's user");
  }
  Fd fd(raw);
  // Cleans up after a failed step; `err` is the errno of that step.
  auto fail = [&](const char* step, int err) -> Error {
    OPENSSL_cleanse(key.data(), key.size());
    ::unlink(tmp.c_str());
    return KeyFileError(path, std::string("cannot ") + step + " " + tmp + ": " + ErrnoText(err));
  };
  // The umask can only take bits away from 0600, but a umask such as 0400 would leave a file
  // the server itself cannot read back: set the mode explicitly.
  if (::fchmod(fd.get(), 0600) != 0) return fail("chmod", errno);
  if (int err = WriteAll(fd.get(), key); err != 0) return fail("write", err);
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (fd.Close() != 0) return fail("close", errno);

  // link() rather than rename(): it fails instead of replacing a key file that another process
  // created in the meantime, whose key may already have sealed secrets.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    if (err == EEXIST) {
      OPENSSL_cleanse(key.data(), key.size());
      ::unlink(tmp.c_str());
      auto existing = ReadKeyFile(path);
      if (!existing.ok()) return existing.take_error();
      if (!existing->has_value()) return KeyFileError(path, "vanished while being created");
      return **existing;
    }
    // File systems without hard links: rename still makes the file appear whole.
    const bool no_links = err == EPERM || err == EOPNOTSUPP || err == EMLINK || err == ENOSYS;
    if (!no_links) return fail("link", err);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename", errno);
  } else {
    ::unlink(tmp.c_str());
  }
  SyncParentDirectory(path);
  Sealer sealer(key);
  OPENSSL_cleanse(key.data(), key.size());
  return sealer;
}

}  // namespace

Sealer::Sealer(std::span<const std::uint8_t, kKeySize> key) {
  std::copy(key.begin(), key.end(), key_.begin());
}

Sealer::~Sealer() { OPENSSL_cleanse(key_.data(), key_.size()); }

Result<Sealer> Sealer::LoadOrCreate(const std::string& key_path, Random& random) {
  if (key_path.empty()) return KeyFileError("\"\"", "no path given");
  try {
    auto existing = ReadKeyFile(key_path);
    if (!existing.ok()) return existing.take_error();
    if (existing->has_value()) return **existing;
    return CreateKeyFile(key_path, random);
  } catch (const std::exception& e) {  // bad_alloc, filesystem_error: keep them in the module
    return KeyFileError(key_path, e.what());
  }
}

std::string Sealer::Seal(std::string_view plaintext, Random& random) const {
  std::vector<std::uint8_t> blob(kNonceSize + plaintext.size() + kTagSize);
  random.Fill(std::span<std::uint8_t>(blob.data(), kNonceSize));

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Fatal("EVP_CIPHER_CTX_new");
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key_.data(), blob.data(), nullptr) != 1) {
    Fatal("EVP_EncryptInit_ex2");
  }
  int len = 0;
  const auto* aad = reinterpret_cast<const unsigned char*>(kPrefix.data());
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(kPrefix.size())) != 1) {
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
  return std::string(kPrefix) + Base64UrlEncode(blob);
}

Result<std::string> Sealer::Open(std::string_view sealed) const {
  try {
    if (!sealed.starts_with(kPrefix)) {
      return SealError("sealed secret has an unknown format (it does not start with \"v1:\")");
    }
    std::string blob;
    if (!Base64UrlDecode(sealed.substr(kPrefix.size()), blob)) {
      return SealError("sealed secret is not valid base64url");
    }
    if (blob.size() < kNonceSize + kTagSize) return SealError("sealed secret is truncated");
    const std::size_t text_size = blob.size() - kNonceSize - kTagSize;
    auto* bytes = reinterpret_cast<std::uint8_t*>(blob.data());

    CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return SealError("cannot allocate a cipher context");
    int len = 0;
    const auto* aad = reinterpret_cast<const unsigned char*>(kPrefix.data());
    if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key_.data(), bytes, nullptr) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(kPrefix.size())) != 1) {
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
  } catch (const std::bad_alloc&) {
    return SealError("out of memory opening a sealed secret");
  }
}

}  // namespace agentgate::crypto
