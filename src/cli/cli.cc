#include "cli/cli.h"

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/http_client.h"
#include "core/json.h"

namespace agentgate::cli {
namespace {

namespace urls = boost::urls;

constexpr std::string_view kVersion = "0.1.0";
constexpr std::string_view kDefaultUrl = "http://127.0.0.1:8080";
constexpr double kDefaultTimeoutSeconds = 10;
constexpr double kMaxTimeoutSeconds = 3600;
constexpr const char* kEnvUrl = "AGENTGATE_URL";
constexpr const char* kEnvSecret = "AGENTGATE_AGENT_SECRET";
constexpr const char* kEnvSession = "AGENTGATE_SESSION";
constexpr std::string_view kSessionCookie = "ap_session";

// ---------------------------------------------------------------------------------------------
// The command table.

// Which credential a command sends.
enum class Auth { kNone, kAgent, kSession };

struct FlagSpec {
  std::string_view name;        // without the leading dashes
  std::string_view value_name;  // empty for a boolean flag
  std::string_view help;
  bool required = false;

  bool boolean() const { return value_name.empty(); }
};

constexpr FlagSpec kUrlFlag{"url", "URL",
                            "server base URL (env AGENTGATE_URL; default http://127.0.0.1:8080)"};
constexpr FlagSpec kJsonFlag{"json", "",
                             "print the server's JSON response body on one line, for scripts"};
constexpr FlagSpec kTimeoutFlag{"timeout", "SECONDS",
                                "give up after this long, connecting included (default 10)"};
constexpr FlagSpec kSecretFlag{"secret", "SECRET",
                               "the agent's secret sk_ap_... (env AGENTGATE_AGENT_SECRET)"};
constexpr FlagSpec kSessionFlag{
    "session", "TOKEN", "your session token from 'agentgate auth verify' (env AGENTGATE_SESSION)"};
constexpr FlagSpec kHelpFlag{"help", "", "show this help (also -h)"};

struct Ctx;
using Handler = int (*)(Ctx&);

struct CommandSpec {
  std::string_view path;      // "permission grant"
  std::string_view synopsis;  // what follows the path in the usage line
  std::string_view summary;   // one line, for the command lists
  std::string_view details;   // a paragraph for --help
  std::vector<std::string_view> positionals = {};  // names, in order
  std::size_t min_positionals = 0;
  std::vector<FlagSpec> flags = {};  // the command's own flags
  Auth auth = Auth::kNone;
  std::string_view exit_codes;
  std::string_view example;
  Handler handler = nullptr;

  // The command's own flags, then the common ones that apply to it.
  std::vector<FlagSpec> AllFlags() const {
    std::vector<FlagSpec> all = flags;
    if (auth == Auth::kAgent) all.push_back(kSecretFlag);
    if (auth == Auth::kSession) all.push_back(kSessionFlag);
    all.push_back(kUrlFlag);
    all.push_back(kJsonFlag);
    all.push_back(kTimeoutFlag);
    all.push_back(kHelpFlag);
    return all;
  }
};

constexpr std::string_view kDefaultExitCodes =
    "0 success; 1 API error or server unreachable; 2 usage error";

int CmdAgentRegister(Ctx& c);
int CmdAgentShow(Ctx& c);
int CmdPermissionCheck(Ctx& c);
int CmdPermissionGrant(Ctx& c);
int CmdPermissionRevoke(Ctx& c);
int CmdPermissionList(Ctx& c);
int CmdAuthMagicLink(Ctx& c);
int CmdAuthVerify(Ctx& c);
int CmdAuthWhoami(Ctx& c);
int CmdAuthLogout(Ctx& c);
int CmdHealth(Ctx& c);
int CmdStats(Ctx& c);

std::vector<CommandSpec> BuildCommands() {
  std::vector<CommandSpec> commands;
  commands.push_back(CommandSpec{
      .path = "agent register",
      .synopsis = "--name NAME --email EMAIL [--description TEXT] [--metadata JSON]",
      .summary = "register an agent; prints its agent_id and secret (shown once)",
      .details = "Registers a new agent (POST /agent/register) and prints its agent_id and its\n"
                 "secret. The secret is shown this one time only: store it, and give it to agent\n"
                 "commands with --secret or AGENTGATE_AGENT_SECRET.",
      .flags = {{"name", "NAME", "agent name, 1-100 characters", true},
                {"email", "EMAIL", "developer email address (sent as developer_email)", true},
                {"description", "TEXT", "what the agent does (optional)"},
                {"metadata", "JSON", "a JSON object stored with the agent (optional)"}},
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate agent register --name my-booking-agent --email you@example.com \\\n"
                 "      --description 'Books flights'",
      .handler = &CmdAgentRegister,
  });
  commands.push_back(CommandSpec{
      .path = "agent show",
      .synopsis = "AGENT_ID",
      .summary = "show an agent's profile and active permissions (needs its secret)",
      .details = "Shows the agent's profile and active permissions (GET /agent/AGENT_ID),\n"
                 "authenticated with that agent's secret.",
      .positionals = {"AGENT_ID"},
      .min_positionals = 1,
      .auth = Auth::kAgent,
      .exit_codes = kDefaultExitCodes,
      .example = "AGENTGATE_AGENT_SECRET=sk_ap_... agentgate agent show ap_9f3a2b1c4d5e6f70",
      .handler = &CmdAgentShow,
  });
  commands.push_back(CommandSpec{
      .path = "permission check",
      .synopsis = "AGENT_ID ACTION [--context JSON]",
      .summary = "may the agent do ACTION now? exit 0 when allowed, 1 when denied",
      .details = "Asks whether the agent may perform ACTION now, authenticated with the agent's\n"
                 "secret. Without --context it calls GET /permission/check; with --context it\n"
                 "calls POST /permission/check and the grant's scope (max_<field>,\n"
                 "allowed_<field>) is enforced against the context.",
      .positionals = {"AGENT_ID", "ACTION"},
      .min_positionals = 2,
      .flags = {{"context", "JSON", "a JSON object the grant's scope is checked against"}},
      .auth = Auth::kAgent,
      .exit_codes = "0 allowed; 1 denied, API error or server unreachable; 2 usage error",
      .example = "agentgate permission check ap_9f3a2b1c4d5e6f70 book_flight \\\n"
                 "      --secret sk_ap_... --context '{\"spend\": 300}'",
      .handler = &CmdPermissionCheck,
  });
  commands.push_back(CommandSpec{
      .path = "permission grant",
      .synopsis = "AGENT_ID ACTION [--expires-in DURATION] [--scope JSON] [--metadata JSON]",
      .summary = "grant ACTION to an agent on your own authority (needs a session)",
      .details = "Grants ACTION to the agent on your authority (POST /permission/grant),\n"
                 "authenticated with your session. Without --expires-in the grant never expires.",
      .positionals = {"AGENT_ID", "ACTION"},
      .min_positionals = 2,
      .flags = {{"expires-in", "DURATION",
                 "lifetime: a positive number and s, m, h or d, e.g. 60s, 30m, 24h, 7d"},
                {"scope", "JSON", "a JSON object of constraints, e.g. '{\"max_spend\": 500}'"},
                {"metadata", "JSON", "a JSON object stored with the grant"}},
      .auth = Auth::kSession,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate permission grant ap_9f3a2b1c4d5e6f70 book_flight --expires-in 7d \\\n"
                 "      --scope '{\"max_spend\": 500}'",
      .handler = &CmdPermissionGrant,
  });
  commands.push_back(CommandSpec{
      .path = "permission revoke",
      .synopsis = "(AGENT_ID ACTION | --permission-id ID)",
      .summary = "revoke grants, by agent and action or by permission id (needs a session)",
      .details = "Revokes grants immediately (POST /permission/revoke), authenticated with your\n"
                 "session: either every active grant you made for AGENT_ID and ACTION (an admin:\n"
                 "everyone's), or the one grant --permission-id names.",
      .positionals = {"AGENT_ID", "ACTION"},
      .min_positionals = 0,
      .flags = {{"permission-id", "ID", "revoke this one grant instead"}},
      .auth = Auth::kSession,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate permission revoke ap_9f3a2b1c4d5e6f70 book_flight",
      .handler = &CmdPermissionRevoke,
  });
  commands.push_back(CommandSpec{
      .path = "permission list",
      .synopsis = "[--agent-id ID] [--all]",
      .summary = "list the grants you made, newest first (needs a session)",
      .details = "Lists the grants you made, newest first (GET /permissions), authenticated with\n"
                 "your session. By default only active grants; --all adds expired and revoked ones.",
      .flags = {{"agent-id", "ID", "only grants to this agent"},
                {"all", "", "include expired and revoked grants"}},
      .auth = Auth::kSession,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate permission list --agent-id ap_9f3a2b1c4d5e6f70 --all",
      .handler = &CmdPermissionList,
  });
  commands.push_back(CommandSpec{
      .path = "auth magic-link",
      .synopsis = "EMAIL",
      .summary = "request a sign-in link for EMAIL",
      .details = "Asks the server to send a sign-in link to EMAIL (POST /auth/magic-link). The\n"
                 "link arrives by email when the server has SMTP configured; otherwise it is\n"
                 "printed in the server's log. Finish with 'agentgate auth verify LINK'.",
      .positionals = {"EMAIL"},
      .min_positionals = 1,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate auth magic-link you@example.com",
      .handler = &CmdAuthMagicLink,
  });
  commands.push_back(CommandSpec{
      .path = "auth verify",
      .synopsis = "TOKEN_OR_LINK",
      .summary = "exchange a sign-in link for a session token",
      .details = "Uses the sign-in link (or just its ml_... token) once, through GET /auth/verify\n"
                 "on --url, and prints the session as a shell line:\n"
                 "  export AGENTGATE_SESSION=<token>\n"
                 "so 'eval \"$(agentgate auth verify LINK)\"' signs this shell in. With --json it\n"
                 "prints {\"session\": \"<token>\"}. Sessions last 30 days; keep the token secret.",
      .positionals = {"TOKEN_OR_LINK"},
      .min_positionals = 1,
      .exit_codes = kDefaultExitCodes,
      .example = "eval \"$(agentgate auth verify 'http://127.0.0.1:8080/auth/verify?token=ml_...')\"",
      .handler = &CmdAuthVerify,
  });
  commands.push_back(CommandSpec{
      .path = "auth whoami",
      .synopsis = "",
      .summary = "show whom the session belongs to",
      .details = "Shows the signed-in person of the session (GET /auth/session).",
      .auth = Auth::kSession,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate auth whoami",
      .handler = &CmdAuthWhoami,
  });
  commands.push_back(CommandSpec{
      .path = "auth logout",
      .synopsis = "",
      .summary = "end the session",
      .details = "Ends the session on the server (POST /auth/logout). Unset AGENTGATE_SESSION\n"
                 "afterwards.",
      .auth = Auth::kSession,
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate auth logout && unset AGENTGATE_SESSION",
      .handler = &CmdAuthLogout,
  });
  commands.push_back(CommandSpec{
      .path = "health",
      .synopsis = "",
      .summary = "is the server up? prints status, version and time",
      .details = "Asks the server whether it is up (GET /health).",
      .exit_codes = "0 the server answered ok; 1 API error or server unreachable; 2 usage error",
      .example = "agentgate health --url http://127.0.0.1:8080",
      .handler = &CmdHealth,
  });
  commands.push_back(CommandSpec{
      .path = "stats",
      .synopsis = "",
      .summary = "counters: agents registered, grants made, checks today and in total",
      .details = "Prints the server's counters (GET /stats).",
      .exit_codes = kDefaultExitCodes,
      .example = "agentgate stats --json",
      .handler = &CmdStats,
  });
  return commands;
}

constexpr std::string_view kGroups[] = {"agent", "permission", "auth"};

bool IsGroup(std::string_view word) {
  return std::find(std::begin(kGroups), std::end(kGroups), word) != std::end(kGroups);
}

// ---------------------------------------------------------------------------------------------
// Help.

std::string Pad(std::string_view s, std::size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

std::string FlagLabel(const FlagSpec& f) {
  std::string label = "--" + std::string(f.name);
  if (!f.boolean()) label += " " + std::string(f.value_name);
  return label;
}

void PrintFlagLines(std::ostream& out, const std::vector<FlagSpec>& flags) {
  std::size_t width = 0;
  for (const auto& f : flags) width = std::max(width, FlagLabel(f).size());
  for (const auto& f : flags) {
    out << "  " << Pad(FlagLabel(f), width + 2) << f.help << (f.required ? " (required)" : "")
        << "\n";
  }
}

void PrintTopHelp(std::ostream& out, const std::vector<CommandSpec>& commands) {
  out << "agentgate " << kVersion << " - identity and permissions for AI agents\n\n"
      << "Usage: agentgate <command> [arguments] [flags]\n\nCommands:\n";
  constexpr std::size_t kWidth = 20;
  out << "  " << Pad("serve", kWidth) << "run the server (agentgate serve --help for server options)\n";
  for (const auto& c : commands) out << "  " << Pad(c.path, kWidth) << c.summary << "\n";
  out << "\nCommon flags (flags may come before or after arguments; --flag=value works too):\n";
  PrintFlagLines(out, {kUrlFlag, kJsonFlag, kTimeoutFlag, kSecretFlag, kSessionFlag, kHelpFlag});
  out << "\nEnvironment:\n"
      << "  AGENTGATE_URL           server base URL (default " << kDefaultUrl << ")\n"
      << "  AGENTGATE_AGENT_SECRET  agent secret for agent show and permission check\n"
      << "  AGENTGATE_SESSION       session token for permission grant/revoke/list, auth\n"
      << "\nExit codes: 0 success; 1 failure (API error, server unreachable, check denied);\n"
      << "2 usage error.\n"
      << "\nSign in from the terminal:\n"
      << "  agentgate auth magic-link you@example.com\n"
      << "  eval \"$(agentgate auth verify '<link from the email or the server log>')\"\n"
      << "\nRun 'agentgate <command> --help' for a command's flags and an example.\n";
}

void PrintGroupHelp(std::ostream& out, std::string_view group,
                    const std::vector<CommandSpec>& commands) {
  out << "Usage: agentgate " << group << " <command> [arguments] [flags]\n\nCommands:\n";
  for (const auto& c : commands) {
    if (c.path.starts_with(std::string(group) + " ")) {
      out << "  " << Pad(c.path, 20) << c.summary << "\n";
    }
  }
  out << "\nRun 'agentgate " << group << " <command> --help' for a command's flags and an "
      << "example.\n";
}

void PrintUsageLine(std::ostream& out, const CommandSpec& spec) {
  out << "Usage: agentgate " << spec.path;
  if (!spec.synopsis.empty()) out << " " << spec.synopsis;
  out << " [flags]\n";
}

void PrintCommandHelp(std::ostream& out, const CommandSpec& spec) {
  PrintUsageLine(out, spec);
  out << "\n" << spec.details << "\n\nFlags:\n";
  PrintFlagLines(out, spec.AllFlags());
  out << "\nEnvironment:\n  AGENTGATE_URL           server base URL (default " << kDefaultUrl
      << ")\n";
  if (spec.auth == Auth::kAgent) {
    out << "  AGENTGATE_AGENT_SECRET  the agent's secret, when --secret is not given\n";
  }
  if (spec.auth == Auth::kSession) {
    out << "  AGENTGATE_SESSION       your session token, when --session is not given\n";
  }
  out << "\nExit codes: " << spec.exit_codes << "\n\nExample:\n  " << spec.example << "\n";
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

// Shows an argument in a message, unless it looks like an agent secret.
std::string Quoted(std::string_view arg) {
  if (arg.starts_with("sk_ap_")) return "'sk_ap_...' (redacted)";
  return "'" + std::string(arg) + "'";
}

std::optional<std::string> Env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) != 0 || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    }
  }
  return out;
}

// A credential goes into a header verbatim, so it must be a plain printable token.
bool IsHeaderSafe(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char ch) { return ch > 0x20 && ch < 0x7f; });
}

std::string FormatNumber(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

const json::value* Field(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->value();
}

// A JSON value as a person reads it.
std::string Text(const json::value* v, std::string_view if_null = "-") {
  if (v == nullptr || v->is_null()) return std::string(if_null);
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_double()) return FormatNumber(v->as_double());
  return json::serialize(*v);
}

std::string Text(const json::object& obj, std::string_view key, std::string_view if_null = "-") {
  return Text(Field(obj, key), if_null);
}

bool IsNullOrMissing(const json::object& obj, std::string_view key) {
  const json::value* v = Field(obj, key);
  return v == nullptr || v->is_null();
}

using Fields = std::vector<std::pair<std::string, std::string>>;

void PrintFields(std::ostream& out, const Fields& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size() + 1);
  for (const auto& [key, value] : fields) out << Pad(key + ":", width + 1) << value << "\n";
}

void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += i + 1 == row.size() ? row[i] : Pad(row[i], widths[i] + 2);
    }
    out << line << "\n";
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

// Builds a JSON object body, keeping JSON that the user typed exactly as typed.
class BodyBuilder {
 public:
  BodyBuilder& String(std::string_view key, std::string_view value) {
    Key(key);
    AppendJsonString(text_, value);
    return *this;
  }
  // `raw` must already be valid JSON.
  BodyBuilder& Raw(std::string_view key, std::string_view raw) {
    Key(key);
    text_ += raw;
    return *this;
  }
  std::string Finish() {
    text_ += "}";
    return std::move(text_);
  }

 private:
  void Key(std::string_view key) {
    if (text_.size() > 1) text_ += ",";
    AppendJsonString(text_, key);
    text_ += ":";
  }
  std::string text_ = "{";
};

// ---------------------------------------------------------------------------------------------
// Invocation context and the one way commands talk to the server.

struct Call {
  std::string method = "GET";
  std::vector<std::string> path = {};  // segments, unencoded
  std::vector<std::pair<std::string, std::string>> query = {};
  std::optional<std::string> json_body = {};
  Auth auth = Auth::kNone;
};

struct Reply {
  HttpResponse response;
  json::object body;
};

struct Ctx {
  const CommandSpec& spec;
  std::ostream& out;
  std::ostream& err;
  std::vector<std::string> positionals = {};
  std::map<std::string, std::string, std::less<>> flags = {};  // name -> value ("" for booleans)
  urls::url base = {};
  std::string base_text = {};  // as the user gave it, for messages
  bool json_output = false;
  std::string secret = {};
  std::string session = {};
  const HttpClient* http = nullptr;

  bool Has(std::string_view name) const { return flags.find(name) != flags.end(); }
  std::optional<std::string> Flag(std::string_view name) const {
    auto it = flags.find(name);
    if (it == flags.end()) return std::nullopt;
    return it->second;
  }

  int Usage(std::string_view message) const {
    err << "error: " << message << "\n";
    PrintUsageLine(err, spec);
    err << "Run 'agentgate " << spec.path << " --help' for details.\n";
    return kExitUsage;
  }

  std::string Describe(const Call& call) const {
    std::string path;
    for (const auto& seg : call.path) path += "/" + seg;
    return call.method + " " + path;
  }

  std::string UrlFor(const Call& call) const {
    urls::url u = base;
    auto segs = u.segments();
    if (!segs.empty() && segs.back().empty()) segs.pop_back();
    for (const auto& seg : call.path) segs.push_back(seg);
    std::string query;
    for (const auto& [key, value] : call.query) {
      if (!query.empty()) query += "&";
      query += PercentEncode(key) + "=" + PercentEncode(value);
    }
    if (!query.empty()) u.set_encoded_query(query);
    return std::string(u.buffer());
  }

  Result<HttpResponse> Send(const Call& call) const {
    HttpRequest request;
    request.method = call.method;
    request.url = UrlFor(call);
    request.headers.emplace_back("Accept", "application/json");
    if (call.json_body.has_value()) {
      request.headers.emplace_back("Content-Type", "application/json");
      request.body = call.json_body;
    } else if (call.method == "POST") {
      request.body = std::string();
    }
    if (call.auth == Auth::kAgent) {
      request.headers.emplace_back("Authorization", "Bearer " + secret);
    } else if (call.auth == Auth::kSession) {
      request.headers.emplace_back("Cookie", std::string(kSessionCookie) + "=" + session);
    }
    return http->Send(request);
  }

  int ReportTransport(const Error& error) const {
    err << "error: cannot reach agentgate at " << base_text << ": " << error.Message() << "\n"
        << "Is the server running? Start it with 'agentgate serve', or point --url or "
        << "AGENTGATE_URL at it.\n";
    return kExitFailure;
  }

  // Prints the body on one line (JSON has no significant line breaks outside strings, and a
  // string cannot hold a raw one).
  void PrintRaw(std::string_view body) const {
    std::string line;
    line.reserve(body.size());
    for (char ch : body) {
      if (ch != '\n' && ch != '\r') line.push_back(ch);
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    out << line << "\n";
  }

  int ReportApiError(const Call& call, const HttpResponse& response) const {
    boost::system::error_code ec;
    json::value v = json::parse(response.body, ec);
    const json::object* obj = (!ec && v.is_object()) ? &v.as_object() : nullptr;
    const json::value* code = obj != nullptr ? Field(*obj, "error") : nullptr;
    if (code == nullptr || !code->is_string()) {
      err << "error: unexpected HTTP " << response.status << " response to " << Describe(call)
          << " from " << base_text << "\n";
      return kExitFailure;
    }
    if (json_output) PrintRaw(response.body);
    err << "error: " << code->as_string() << ": " << Text(*obj, "message", "") << "\n";
    if (!IsNullOrMissing(*obj, "remediation")) {
      err << "  remediation: " << Text(*obj, "remediation") << "\n";
    }
    if (auto retry = response.Header("Retry-After"); retry && response.status == 429) {
      err << "  retry after: " << *retry << " s\n";
    }
    if (!IsNullOrMissing(*obj, "request_id")) {
      err << "  request_id: " << Text(*obj, "request_id") << "\n";
    }
    return kExitFailure;
  }

  // Sends the call and expects a 2xx JSON object. On anything else reports it and returns
  // nullopt. With --json, prints the body of a success.
  std::optional<Reply> Fetch(const Call& call) const {
    auto sent = Send(call);
    if (!sent.ok()) {
      ReportTransport(sent.error());
      return std::nullopt;
    }
    HttpResponse& response = sent.value();
    if (response.status < 200 || response.status > 299) {
      ReportApiError(call, response);
      return std::nullopt;
    }
    boost::system::error_code ec;
    json::value v = json::parse(response.body, ec);
    if (ec || !v.is_object()) {
      err << "error: the response to " << Describe(call) << " from " << base_text
          << " is not a JSON object; is --url pointing at agentgate?\n";
      return std::nullopt;
    }
    if (json_output) PrintRaw(response.body);
    return Reply{std::move(response), std::move(v.as_object())};
  }
};

// Parses a flag value that must be a JSON object; returns its text or an error message.
std::optional<std::string> JsonObjectFlag(const Ctx& c, std::string_view name, int& exit_code) {
  auto value = c.Flag(name);
  if (!value) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*value, ec);
  if (ec || !v.is_object()) {
    exit_code = c.Usage("--" + std::string(name) + " must be a JSON object, e.g. '{\"key\": 1}'" +
                        (ec ? " (" + ec.message() + ")" : std::string()));
    return std::nullopt;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Commands.

int CmdAgentRegister(Ctx& c) {
  int usage = kExitOk;
  auto metadata = JsonObjectFlag(c, "metadata", usage);
  if (usage != kExitOk) return usage;
  BodyBuilder body;
  body.String("name", *c.Flag("name")).String("developer_email", *c.Flag("email"));
  if (auto description = c.Flag("description")) body.String("description", *description);
  if (metadata) body.Raw("metadata", *metadata);
  auto reply = c.Fetch({.method = "POST", .path = {"agent", "register"},
                        .json_body = body.Finish()});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  PrintFields(c.out, {{"agent_id", Text(b, "agent_id")}, {"secret", Text(b, "secret")}});
  c.out << Text(b, "note", "Save your secret - shown once only") << ".\n"
        << "Agent commands read it from --secret or AGENTGATE_AGENT_SECRET.\n";
  Fields links;
  if (!IsNullOrMissing(b, "docs_url")) links.emplace_back("docs", Text(b, "docs_url"));
  if (!IsNullOrMissing(b, "dashboard_url")) links.emplace_back("dashboard", Text(b, "dashboard_url"));
  PrintFields(c.out, links);
  return kExitOk;
}

int CmdAgentShow(Ctx& c) {
  auto reply = c.Fetch({.path = {"agent", c.positionals[0]}, .auth = Auth::kAgent});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  Fields fields = {{"agent_id", Text(b, "agent_id")},
                   {"name", Text(b, "name")},
                   {"description", Text(b, "description")},
                   {"developer_email", Text(b, "developer_email")},
                   {"status", Text(b, "status")},
                   {"created_at", Text(b, "created_at")},
                   {"last_seen", Text(b, "last_seen", "never")}};
  if (!IsNullOrMissing(b, "metadata")) fields.emplace_back("metadata", Text(b, "metadata"));
  const json::value* perms = Field(b, "active_permissions");
  const bool have_perms = perms != nullptr && perms->is_array();
  fields.emplace_back("active_permissions",
                      std::to_string(have_perms ? perms->as_array().size() : 0));
  PrintFields(c.out, fields);
  if (have_perms) {
    for (const auto& p : perms->as_array()) {
      if (!p.is_object()) continue;
      const json::object& o = p.as_object();
      c.out << "  " << Text(o, "action") << "  granted_by: " << Text(o, "granted_by")
            << "  expires_at: " << Text(o, "expires_at", "never");
      if (!IsNullOrMissing(o, "scope")) c.out << "  scope: " << Text(o, "scope");
      c.out << "  permission_id: " << Text(o, "permission_id") << "\n";
    }
  }
  return kExitOk;
}

int CmdPermissionCheck(Ctx& c) {
  int usage = kExitOk;
  auto context = JsonObjectFlag(c, "context", usage);
  if (usage != kExitOk) return usage;
  Call call{.path = {"permission", "check"}, .auth = Auth::kAgent};
  if (context) {
    call.method = "POST";
    call.json_body = BodyBuilder()
                         .String("agent_id", c.positionals[0])
                         .String("action", c.positionals[1])
                         .Raw("context", *context)
                         .Finish();
  } else {
    call.query = {{"agent_id", c.positionals[0]}, {"action", c.positionals[1]}};
  }
  auto reply = c.Fetch(call);
  if (!reply) return kExitFailure;
  const json::object& b = reply->body;
  const json::value* allowed = Field(b, "allowed");
  const bool is_allowed = allowed != nullptr && allowed->is_bool() && allowed->as_bool();
  if (!c.json_output) {
    std::ostringstream line;
    if (is_allowed) {
      line << "allowed: yes  granted_by: " << Text(b, "granted_by")
           << "  expires_at: " << Text(b, "expires_at", "never");
      if (!IsNullOrMissing(b, "scope")) line << "  scope: " << Text(b, "scope");
      if (!IsNullOrMissing(b, "permission_id")) {
        line << "  permission_id: " << Text(b, "permission_id");
      }
    } else {
      line << "allowed: no  reason: " << Text(b, "reason");
      if (!IsNullOrMissing(b, "constraint")) line << "  constraint: " << Text(b, "constraint");
    }
    if (!IsNullOrMissing(b, "latency_ms")) line << "  latency_ms: " << Text(b, "latency_ms");
    c.out << line.str() << "\n";
  }
  return is_allowed ? kExitOk : kExitFailure;
}

int CmdPermissionGrant(Ctx& c) {
  int usage = kExitOk;
  auto scope = JsonObjectFlag(c, "scope", usage);
  if (usage != kExitOk) return usage;
  auto metadata = JsonObjectFlag(c, "metadata", usage);
  if (usage != kExitOk) return usage;
  BodyBuilder body;
  body.String("agent_id", c.positionals[0]).String("action", c.positionals[1]);
  if (auto expires_in = c.Flag("expires-in")) body.String("expires_in", *expires_in);
  if (scope) body.Raw("scope", *scope);
  if (metadata) body.Raw("metadata", *metadata);
  auto reply = c.Fetch({.method = "POST", .path = {"permission", "grant"},
                        .json_body = body.Finish(), .auth = Auth::kSession});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  Fields fields = {{"permission_id", Text(b, "permission_id")},
                   {"agent_id", Text(b, "agent_id")},
                   {"action", Text(b, "action")},
                   {"granted_by", Text(b, "granted_by")},
                   {"expires_at", Text(b, "expires_at", "never")}};
  if (!IsNullOrMissing(b, "scope")) fields.emplace_back("scope", Text(b, "scope"));
  if (!IsNullOrMissing(b, "metadata")) fields.emplace_back("metadata", Text(b, "metadata"));
  PrintFields(c.out, fields);
  return kExitOk;
}

int CmdPermissionRevoke(Ctx& c) {
  auto permission_id = c.Flag("permission-id");
  BodyBuilder body;
  if (permission_id) {
    if (!c.positionals.empty()) {
      return c.Usage("give either AGENT_ID ACTION or --permission-id, not both");
    }
    if (permission_id->empty()) return c.Usage("--permission-id must not be empty");
    body.String("permission_id", *permission_id);
  } else if (c.positionals.size() == 2) {
    body.String("agent_id", c.positionals[0]).String("action", c.positionals[1]);
  } else if (c.positionals.size() == 1) {
    return c.Usage("missing ACTION (or use --permission-id ID alone)");
  } else {
    return c.Usage("missing AGENT_ID ACTION, or --permission-id ID");
  }
  auto reply = c.Fetch({.method = "POST", .path = {"permission", "revoke"},
                        .json_body = body.Finish(), .auth = Auth::kSession});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  c.out << "revoked: " << Text(b, "count", "?") << " grant(s) at " << Text(b, "revoked_at")
        << "\n";
  if (const json::value* ids = Field(b, "permission_ids"); ids != nullptr && ids->is_array()) {
    for (const auto& id : ids->as_array()) c.out << "  " << Text(&id) << "\n";
  }
  return kExitOk;
}

int CmdPermissionList(Ctx& c) {
  Call call{.path = {"permissions"}, .auth = Auth::kSession};
  if (auto agent_id = c.Flag("agent-id")) call.query.emplace_back("agent_id", *agent_id);
  call.query.emplace_back("status", c.Has("all") ? "all" : "active");
  auto reply = c.Fetch(call);
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::value* list = Field(reply->body, "permissions");
  std::vector<std::vector<std::string>> rows;
  if (list != nullptr && list->is_array()) {
    for (const auto& p : list->as_array()) {
      if (!p.is_object()) continue;
      const json::object& o = p.as_object();
      rows.push_back({Text(o, "permission_id"), Text(o, "agent_id"), Text(o, "action"),
                      Text(o, "status"), Text(o, "expires_at", "never"),
                      IsNullOrMissing(o, "scope") ? "-" : Text(o, "scope")});
    }
  }
  if (rows.empty()) {
    c.out << (c.Has("all") ? "no permissions\n" : "no active permissions\n");
    return kExitOk;
  }
  PrintTable(c.out, {"PERMISSION_ID", "AGENT_ID", "ACTION", "STATUS", "EXPIRES_AT", "SCOPE"},
             rows);
  return kExitOk;
}

int CmdAuthMagicLink(Ctx& c) {
  auto reply = c.Fetch({.method = "POST", .path = {"auth", "magic-link"},
                        .json_body = BodyBuilder().String("email", c.positionals[0]).Finish()});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  c.out << Text(reply->body, "message") << "\n"
        << "(A server without SMTP prints the link in its log.) Then sign this shell in:\n"
        << "  eval \"$(agentgate auth verify '<link>')\"\n";
  return kExitOk;
}

// The token of a sign-in link, or the argument itself when it is already a bare token.
std::optional<std::string> TokenFrom(std::string_view arg) {
  if (arg.find('?') != std::string_view::npos || arg.find('/') != std::string_view::npos ||
      arg.find('=') != std::string_view::npos) {
    auto ref = urls::parse_uri_reference(arg);
    if (!ref) return std::nullopt;
    auto params = ref->params();
    auto it = params.find("token");
    if (it == params.end() || !(*it).has_value || (*it).value.empty()) return std::nullopt;
    return std::string((*it).value);
  }
  if (arg.empty()) return std::nullopt;
  return std::string(arg);
}

// The ap_session value from the Set-Cookie headers, if one sets it to a non-empty value.
std::optional<std::string> SessionFromCookies(const HttpResponse& response) {
  for (std::string_view header : response.Headers("Set-Cookie")) {
    std::string_view pair = header.substr(0, header.find(';'));
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = pair.substr(0, eq);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    std::string_view value = pair.substr(eq + 1);
    if (name == kSessionCookie && !value.empty()) return std::string(value);
  }
  return std::nullopt;
}

int CmdAuthVerify(Ctx& c) {
  auto token = TokenFrom(c.positionals[0]);
  if (!token) return c.Usage("no sign-in token in TOKEN_OR_LINK; pass the link or its ml_... token");
  Call call{.path = {"auth", "verify"}, .query = {{"token", *token}}};
  auto sent = c.Send(call);
  if (!sent.ok()) return c.ReportTransport(sent.error());
  const HttpResponse& response = sent.value();
  if (response.status >= 400) return c.ReportApiError(call, response);
  auto session = SessionFromCookies(response);
  if (!session) {
    c.err << "error: the server answered HTTP " << response.status << " to GET /auth/verify at "
          << c.base_text << " without setting an " << kSessionCookie << " cookie\n";
    return kExitFailure;
  }
  if (c.json_output) {
    std::string line = "{\"session\":";
    AppendJsonString(line, *session);
    c.out << line << "}\n";
    return kExitOk;
  }
  const bool shell_safe = std::all_of(session->begin(), session->end(), [](unsigned char ch) {
    return std::isalnum(ch) != 0 || ch == '_' || ch == '-' || ch == '.';
  });
  c.out << "export AGENTGATE_SESSION=" << (shell_safe ? *session : "'" + *session + "'") << "\n";
  c.err << "Signed in. Run the line above (or eval this command's output) to use the session; "
        << "keep it secret.\n";
  return kExitOk;
}

int CmdAuthWhoami(Ctx& c) {
  auto reply = c.Fetch({.path = {"auth", "session"}, .auth = Auth::kSession});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  PrintFields(c.out, {{"email", Text(b, "email")},
                      {"user_id", Text(b, "user_id")},
                      {"admin", Text(b, "is_admin")},
                      {"expires_at", Text(b, "expires_at")}});
  return kExitOk;
}

int CmdAuthLogout(Ctx& c) {
  auto reply = c.Fetch({.method = "POST", .path = {"auth", "logout"}, .auth = Auth::kSession});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  c.out << "signed out; now run: unset AGENTGATE_SESSION\n";
  return kExitOk;
}

int CmdHealth(Ctx& c) {
  auto reply = c.Fetch({.path = {"health"}});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  c.out << "status: " << Text(b, "status") << "  version: " << Text(b, "version")
        << "  timestamp: " << Text(b, "timestamp") << "  url: " << c.base_text << "\n";
  return kExitOk;
}

int CmdStats(Ctx& c) {
  auto reply = c.Fetch({.path = {"stats"}});
  if (!reply) return kExitFailure;
  if (c.json_output) return kExitOk;
  const json::object& b = reply->body;
  PrintFields(c.out, {{"agents_registered", Text(b, "agents_registered")},
                      {"permissions_granted", Text(b, "permissions_granted")},
                      {"checks_today", Text(b, "checks_today")},
                      {"checks_total", Text(b, "checks_total")}});
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// Argument parsing and dispatch.

bool IsHelpToken(std::string_view arg) { return arg == "--help" || arg == "-h"; }

// Every flag any command takes a value for, so the command words can be found before the
// command is known ("agentgate --url U health").
bool TakesValueAnywhere(std::string_view name, const std::vector<CommandSpec>& commands) {
  for (const auto& c : commands) {
    for (const auto& f : c.AllFlags()) {
      if (f.name == name) return !f.boolean();
    }
  }
  return false;
}

struct Words {
  std::vector<std::string> words;        // up to two command words
  std::vector<std::string> rest;         // every other argument, in order
};

Words SplitWords(const std::vector<std::string>& args, const std::vector<CommandSpec>& commands) {
  Words split;
  bool after_separator = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool want_word =
        split.words.empty() || (split.words.size() == 1 && (IsGroup(split.words[0]) ||
                                                            split.words[0] == "help"));
    if (after_separator || arg == "--") {
      after_separator = true;
      split.rest.push_back(arg);
      continue;
    }
    if (arg.size() > 2 && arg.starts_with("--")) {
      split.rest.push_back(arg);
      const std::string name = arg.substr(2, arg.find('=') - 2);
      if (arg.find('=') == std::string::npos && TakesValueAnywhere(name, commands) &&
          i + 1 < args.size()) {
        split.rest.push_back(args[++i]);
      }
      continue;
    }
    if (want_word && !arg.starts_with("-")) {
      split.words.push_back(arg);
      continue;
    }
    split.rest.push_back(arg);
  }
  return split;
}

const CommandSpec* FindCommand(std::string_view path, const std::vector<CommandSpec>& commands) {
  for (const auto& c : commands) {
    if (c.path == path) return &c;
  }
  return nullptr;
}

int TopUsage(std::ostream& err, std::string_view message) {
  err << "error: " << message << "\nUsage: agentgate <command> [arguments] [flags]\n"
      << "Run 'agentgate --help' for the list of commands.\n";
  return kExitUsage;
}

// Parses the arguments of one command into `c`; returns an exit code when done already (help
// printed or a usage error), nullopt to go on.
std::optional<int> ParseCommandArgs(const std::vector<std::string>& rest, Ctx& c) {
  const std::vector<FlagSpec> flags = c.spec.AllFlags();
  bool after_separator = false;
  for (const auto& arg : rest) {
    if (arg == "--") break;
    if (IsHelpToken(arg)) {
      PrintCommandHelp(c.out, c.spec);
      return kExitOk;
    }
  }
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const std::string& arg = rest[i];
    if (after_separator) {
      c.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      after_separator = true;
      continue;
    }
    if (arg.size() > 2 && arg.starts_with("--")) {
      const std::size_t eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      auto spec = std::find_if(flags.begin(), flags.end(),
                               [&](const FlagSpec& f) { return f.name == name; });
      if (spec == flags.end()) {
        return c.Usage("unknown flag --" + name + " for 'agentgate " + std::string(c.spec.path) +
                       "'");
      }
      if (spec->boolean()) {
        if (eq != std::string::npos) return c.Usage("--" + name + " takes no value");
        c.flags[name] = "";
        continue;
      }
      if (eq != std::string::npos) {
        c.flags[name] = arg.substr(eq + 1);
        continue;
      }
      if (i + 1 >= rest.size() || (rest[i + 1].starts_with("--") && rest[i + 1].size() > 2)) {
        return c.Usage("--" + name + " needs a value (" + std::string(spec->value_name) + ")");
      }
      c.flags[name] = rest[++i];
      continue;
    }
    if (arg.size() > 1 && arg.starts_with("-")) {
      return c.Usage("unknown flag " + Quoted(arg) + " for 'agentgate " +
                     std::string(c.spec.path) + "'");
    }
    c.positionals.push_back(arg);
  }
  for (const auto& f : flags) {
    if (f.required && !c.Has(f.name)) {
      return c.Usage("missing --" + std::string(f.name) + " " + std::string(f.value_name));
    }
  }
  if (c.positionals.size() > c.spec.positionals.size()) {
    return c.Usage("unexpected argument " + Quoted(c.positionals[c.spec.positionals.size()]));
  }
  if (c.positionals.size() < c.spec.min_positionals) {
    std::string missing;
    for (std::size_t i = c.positionals.size(); i < c.spec.min_positionals; ++i) {
      missing += (missing.empty() ? "" : " ") + std::string(c.spec.positionals[i]);
    }
    return c.Usage("missing " + missing);
  }
  for (std::size_t i = 0; i < c.positionals.size(); ++i) {
    if (c.positionals[i].empty()) {
      return c.Usage(std::string(c.spec.positionals[i]) + " must not be empty");
    }
  }
  return std::nullopt;
}

// Reads --url, --timeout, --json and the credentials into `c`.
std::optional<int> ResolveCommon(Ctx& c, std::chrono::milliseconds& timeout) {
  c.base_text = c.Flag("url").value_or(Env(kEnvUrl).value_or(std::string(kDefaultUrl)));
  auto parsed = urls::parse_uri(c.base_text);
  if (!parsed || (parsed->scheme_id() != urls::scheme::http &&
                  parsed->scheme_id() != urls::scheme::https) ||
      parsed->host().empty() || parsed->has_query() || parsed->has_fragment()) {
    return c.Usage("the server URL " + Quoted(c.base_text) +
                   " is not an http:// or https:// base URL like " + std::string(kDefaultUrl));
  }
  c.base = *parsed;

  double seconds = kDefaultTimeoutSeconds;
  if (auto text = c.Flag("timeout")) {
    const char* begin = text->data();
    const char* end = begin + text->size();
    auto [ptr, ec] = std::from_chars(begin, end, seconds);
    if (ec != std::errc() || ptr != end || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > kMaxTimeoutSeconds) {
      return c.Usage("--timeout must be a number of seconds above 0 and at most 3600");
    }
  }
  timeout = std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
  c.json_output = c.Has("json");

  if (c.spec.auth == Auth::kAgent) {
    c.secret = c.Flag("secret").value_or(Env(kEnvSecret).value_or(""));
    if (c.secret.empty()) {
      return c.Usage("'agentgate " + std::string(c.spec.path) +
                     "' needs the agent's secret: pass --secret SECRET or set " + kEnvSecret);
    }
    if (!IsHeaderSafe(c.secret)) return c.Usage("the agent secret contains invalid characters");
  }
  if (c.spec.auth == Auth::kSession) {
    c.session = c.Flag("session").value_or(Env(kEnvSession).value_or(""));
    if (c.session.empty()) {
      return c.Usage("'agentgate " + std::string(c.spec.path) +
                     "' needs a session: sign in with 'agentgate auth magic-link EMAIL' and "
                     "'agentgate auth verify LINK', then pass --session TOKEN or set " +
                     kEnvSession);
    }
    if (!IsHeaderSafe(c.session) || c.session.find(';') != std::string::npos) {
      return c.Usage("the session token contains invalid characters");
    }
  }
  return std::nullopt;
}

int Dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<CommandSpec> commands = BuildCommands();
  if (args.empty()) {
    PrintTopHelp(out, commands);
    return kExitOk;
  }
  if (args[0] == "--version" || args[0] == "version") {
    if (args.size() > 1) return TopUsage(err, "'" + args[0] + "' takes no arguments");
    out << "agentgate " << kVersion << "\n";
    return kExitOk;
  }
  Words split = SplitWords(args, commands);
  const bool wants_help = std::any_of(split.rest.begin(), split.rest.end(),
                                      [](const std::string& a) { return IsHelpToken(a); });

  std::vector<std::string> words = split.words;
  bool help_word = false;
  if (!words.empty() && words[0] == "help") {
    help_word = true;
    words.erase(words.begin());
    // "agentgate help permission grant": the subcommand follows the group.
    for (const auto& arg : split.rest) {
      if (words.size() == 1 && IsGroup(words[0]) && !arg.starts_with("-")) {
        words.push_back(arg);
        break;
      }
    }
  }
  if (words.empty()) {
    if (help_word || wants_help) {
      PrintTopHelp(out, commands);
      return kExitOk;
    }
    return TopUsage(err, "missing command");
  }
  if (words[0] == "serve") {
    if (help_word) {
      out << "agentgate serve [flags]: run the server. Run 'agentgate serve --help' for its "
          << "options.\n";
      return kExitOk;
    }
    return TopUsage(err, "'serve' must come first: agentgate serve [flags]");
  }
  std::string path = words[0];
  if (IsGroup(words[0])) {
    if (words.size() < 2 || words[1] == "help") {
      if (help_word || wants_help || (words.size() == 2 && words[1] == "help")) {
        PrintGroupHelp(out, words[0], commands);
        return kExitOk;
      }
      err << "error: missing command after '" << words[0] << "'\n";
      PrintGroupHelp(err, words[0], commands);
      return kExitUsage;
    }
    path += " " + words[1];
  } else if (words.size() > 1) {
    split.rest.insert(split.rest.begin(), words.begin() + 1, words.end());
  }
  const CommandSpec* spec = FindCommand(path, commands);
  if (spec == nullptr) {
    if (IsGroup(words[0])) {
      err << "error: unknown command 'agentgate " << path << "'\n";
      PrintGroupHelp(err, words[0], commands);
      return kExitUsage;
    }
    return TopUsage(err, "unknown command " + Quoted(words[0]));
  }
  if (help_word) {
    PrintCommandHelp(out, *spec);
    return kExitOk;
  }

  Ctx c{.spec = *spec, .out = out, .err = err};
  if (auto done = ParseCommandArgs(split.rest, c)) return *done;
  std::chrono::milliseconds timeout{};
  if (auto done = ResolveCommon(c, timeout)) return *done;
  const HttpClient http(timeout, "agentgate-cli/" + std::string(kVersion));
  c.http = &http;
  return spec->handler(c);
}

}  // namespace

int Run(int argc, char** argv) {
  try {
    CurlGlobal curl;
    if (!curl.ok()) {
      std::cerr << "error: could not initialise libcurl\n";
      return kExitFailure;
    }
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    const int code = Dispatch(args, std::cout, std::cerr);
    std::cout.flush();
    return code;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitFailure;
  } catch (...) {
    std::cerr << "error: unexpected failure\n";
    return kExitFailure;
  }
}

}  // namespace agentgate::cli
