#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <system_error>

#include "core/json.h"

namespace agentgate::cli {
namespace {

// A saved login is two short strings; anything much larger is not a file this client wrote.
constexpr std::size_t kMaxConfigBytes = 64 * 1024;
constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

std::string SystemReason(int err) { return std::generic_category().message(err); }

Error IoError(std::string_view what, const std::string& path, int err) {
  return MakeError(Code::kUnavailable, std::string(what) + " " + path + ": " + SystemReason(err));
}

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  // Closes now, reporting the result (a failed close can mean lost data).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p, with mode 0700 for every directory it creates (existing ones are left alone).
Status MakeDirectories(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Ok();
    return MakeError(Code::kUnavailable,
                     "cannot create the directory " + dir + ": a file of that name is in the way");
  }
  const std::string parent = ParentOf(dir);
  if (parent != dir) {
    if (Status s = MakeDirectories(parent); !s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), kDirMode) != 0 && errno != EEXIST) {
    return IoError("cannot create the directory", dir, errno);
  }
  return Ok();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Ok();
}

}  // namespace

Result<std::string> ConfigPath(const ConfigLocation& location) {
  if (!location.agentgate_config.empty()) return location.agentgate_config;
  if (!location.xdg_config_home.empty() && location.xdg_config_home.front() == '/') {
    return location.xdg_config_home + "/agentgate/config.json";
  }
  if (!location.home.empty()) return location.home + "/.config/agentgate/config.json";
  return MakeError(Code::kInvalidField,
                   "cannot tell where the agentgate config file is: HOME is not set",
                   "Set AGENTGATE_CONFIG to the file's path, or XDG_CONFIG_HOME or HOME.");
}

Result<std::optional<SavedLogin>> ConfigFile::Load() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<SavedLogin>();
    return IoError("cannot read the config file", path_, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return IoError("cannot read the config file", path_, errno);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(Code::kUnavailable, "the config file " + path_ + " is not a regular file");
  }
  // Checked on the open file, so a swap between the check and the read changes nothing.
  if (st.st_uid != ::geteuid()) {
    return MakeError(Code::kForbidden, "refusing to read the config file " + path_ +
                                           ": it belongs to another user (uid " +
                                           std::to_string(st.st_uid) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    return MakeError(Code::kForbidden, "refusing to read the config file " + path_ +
                                           ": it holds an access token "
                                           "but its mode " +
                                           OctalMode(st.st_mode) +
                                           " lets others read or change it; run: chmod 600 " +
                                           path_);
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
    return MakeError(Code::kInvalidJson, "the config file " + path_ + " is too large to be one");
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read the config file", path_, errno);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      return MakeError(Code::kInvalidJson, "the config file " + path_ + " is too large to be one");
    }
  }
  const std::string fix =
      "; fix it or delete it ('agentgate logout'), then 'agentgate login' again";
  auto object = ParseJsonObject(text);
  if (!object.ok()) {
    return MakeError(Code::kInvalidJson,
                     "the config file " + path_ + " is not a JSON object" + fix);
  }
  SavedLogin login;
  for (auto [key, field] : {std::pair{"url", &login.url}, std::pair{"token", &login.token}}) {
    auto value = OptionalString(*object, key);
    if (!value.ok()) {
      return MakeError(Code::kInvalidJson, "in the config file " + path_ + ", \"" +
                                               std::string(key) + "\" is not a string" + fix);
    }
    *field = value->value_or("");
  }
  return std::optional<SavedLogin>(std::move(login));
}

Status ConfigFile::Save(const SavedLogin& login) const {
  const std::string dir = ParentOf(path_);
  if (Status s = MakeDirectories(dir); !s.ok()) return s;

  std::string text = "{\n  \"url\": ";
  AppendJsonString(text, login.url);
  text += ",\n  \"token\": ";
  AppendJsonString(text, login.token);
  text += "\n}\n";

  // A fresh file next to the target (same file system, so the rename is atomic). O_EXCL: never
  // write through a file or link someone else put there.
  std::string temp;
  int raw_fd = -1;
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  for (int attempt = 0; attempt < 16 && raw_fd < 0; ++attempt) {
    temp = path_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" +
           std::to_string(attempt);
    raw_fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, kFileMode);
    if (raw_fd < 0 && errno != EEXIST) return IoError("cannot create", temp, errno);
  }
  if (raw_fd < 0) return MakeError(Code::kUnavailable, "cannot create a temporary file in " + dir);
  Fd fd(raw_fd);
  auto fail = [&](Error e) {
    ::unlink(temp.c_str());
    return e;
  };
  // The umask may only have taken bits away; set exactly 0600 so the owner can rewrite it.
  if (::fchmod(fd.get(), kFileMode) != 0) return fail(IoError("cannot chmod", temp, errno));
  if (Status s = WriteAll(fd.get(), text, temp); !s.ok()) return fail(s.take_error());
  if (::fsync(fd.get()) != 0) return fail(IoError("cannot flush", temp, errno));
  if (fd.Close() != 0) return fail(IoError("cannot write", temp, errno));
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    return fail(IoError("cannot replace the config file", path_, errno));
  }
  // Make the rename itself durable (best effort: not every file system supports this).
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) (void)::fsync(dir_fd.get());
  return Ok();
}

Result<bool> ConfigFile::Remove() const {
  if (::unlink(path_.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  return IoError("cannot delete the config file", path_, errno);
}

}  // namespace agentgate::cli
