// The command-line client's user configuration file: the login that 'agentgate login' saves (a
// server base URL and a personal access token for it), which commands fall back on when no
// credential or server URL is given on the command line or in the environment.
//
// The file holds a credential, so it is kept private to its owner, the way ssh treats its keys:
// it is written with mode 0600 (directories it has to create get 0700), atomically (a temporary
// file in the same directory, flushed, then renamed over the old one, so a reader never sees half
// a file), and reading refuses a file that its group or others may access, or that another user
// owns, with a message that says how to fix it.
//
// Errors are values (Result); nothing here throws. Thread safety: a ConfigFile is an immutable
// path and may be used from any thread; concurrent writers race, but each leaves a whole file.
#pragma once

#include <optional>
#include <string>

#include "core/result.h"

namespace agentgate::cli {

// What 'agentgate login' saves.
struct SavedLogin {
  std::string url;    // the server base URL the token was verified against
  std::string token;  // the personal access token, agt_...
};

// Where the file lives. Each field is the value of an environment variable, empty when unset.
struct ConfigLocation {
  std::string agentgate_config;  // AGENTGATE_CONFIG: the file itself
  std::string xdg_config_home;   // XDG_CONFIG_HOME: used only when absolute, as the spec says
  std::string home;              // HOME
};

// AGENTGATE_CONFIG when set; else $XDG_CONFIG_HOME/agentgate/config.json; else
// $HOME/.config/agentgate/config.json. Error (invalid_field) when none of them is usable.
Result<std::string> ConfigPath(const ConfigLocation& location);

class ConfigFile {
 public:
  explicit ConfigFile(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // The saved login; nullopt when the file does not exist. Errors: forbidden when the file is
  // accessible to its group or others or owned by another user (the message names the fix,
  // "chmod 600 <path>"); invalid_json when it is not a JSON object whose "url" and "token" are
  // strings; unavailable when it cannot be read.
  Result<std::optional<SavedLogin>> Load() const;

  // Replaces the file with `login`, atomically, mode 0600; creates missing parent directories
  // with mode 0700. Errors: unavailable, with the path and the system's reason.
  Status Save(const SavedLogin& login) const;

  // Deletes the file. True when there was one. Errors: unavailable.
  Result<bool> Remove() const;

 private:
  std::string path_;
};

}  // namespace agentgate::cli
