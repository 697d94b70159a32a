#include "engine/connector.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>
#include <span>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> automaton when it is
// inlined at -O2 (see core/json_schema.cc); nothing of ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>

// The shipped connectors/*.json, embedded by cmake/embed.cmake (ARRAY mode): file stems and
// contents, index for index.
namespace agentgate::embedded {
extern const std::span<const std::string_view> kConnectorFilesNames;
extern const std::span<const std::string_view> kConnectorFilesTexts;
}  // namespace agentgate::embedded

namespace agentgate::engine {

namespace {

constexpr std::size_t kMaxUrlLength = 2048;
constexpr std::size_t kMaxNameChars = 100;
constexpr std::size_t kMaxDescriptionChars = 1000;
constexpr std::size_t kMaxFieldDescriptionChars = 500;
constexpr std::size_t kMaxCategories = 10;
constexpr std::size_t kMaxScopes = 50;
constexpr std::size_t kMaxScopeChars = 200;
constexpr std::size_t kMaxHeaders = 20;
constexpr std::size_t kMaxHeaderValueBytes = 1000;
constexpr std::size_t kMaxParams = 20;
constexpr std::size_t kMaxParamValueBytes = 500;
constexpr std::size_t kMaxFields = 10;
constexpr std::size_t kMaxPatternBytes = 200;
constexpr std::size_t kMaxTemplateBytes = 500;
constexpr std::size_t kMaxTestPathBytes = 500;
constexpr std::size_t kMaxValueBytes = 4096;
constexpr std::size_t kMaxHostValueBytes = 253;

constexpr std::string_view kAccessToken = "accessToken";

// --- Small text helpers -------------------------------------------------------------------------

std::size_t Utf8Length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return IsControl(c); });
}

bool IsAsciiAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return LowerAscii(x) == LowerAscii(y);
         });
}

// A key or value from the input as it may appear inside an error message: short, printable.
std::string Shown(std::string_view s) {
  std::string out = ValidUtf8(s, 64);
  for (char& c : out) {
    if (IsControl(static_cast<unsigned char>(c))) c = '?';
  }
  if (out.size() < s.size()) out += "...";
  return out;
}

// [a-z0-9][a-z0-9-]{0,max-1}
bool IsSlug(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  auto ok = [](char c) { return (c >= 'a' && c <= 'z') || IsDigit(c); };
  if (!ok(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return ok(c) || c == '-'; });
}

// [A-Za-z][A-Za-z0-9_]{0,39}: connection and credential field keys.
bool IsFieldKey(std::string_view s) {
  if (s.empty() || s.size() > 40 || !IsAsciiAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAsciiAlpha(c) || IsDigit(c) || c == '_'; });
}

// [A-Za-z_][A-Za-z0-9_]*: placeholder names.
bool IsPlaceholderName(std::string_view s) {
  if (s.empty() || IsDigit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAsciiAlpha(c) || IsDigit(c) || c == '_'; });
}

// RFC 7230 token.
bool IsHeaderName(std::string_view s) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAsciiAlpha(c) || IsDigit(c) || kSpecials.find(c) != std::string_view::npos;
  });
}

// Headers the HTTP client owns; a connector setting them would corrupt the request framing or
// its routing.
bool IsReservedHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 10> kReserved = {
      "host",    "content-length", "transfer-encoding", "connection",          "upgrade",
      "te",      "trailer",        "keep-alive",        "proxy-authorization", "proxy-connection"};
  return std::any_of(kReserved.begin(), kReserved.end(),
                     [&](std::string_view r) { return EqualsIgnoreCase(r, name); });
}

// RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E.
bool IsScopeChar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

// Characters a connection-field value may have where it lands in a URL.
bool IsHostValueChar(char c) { return IsAsciiAlpha(c) || IsDigit(c) || c == '.' || c == '-'; }
bool IsUnreservedChar(char c) {
  return IsAsciiAlpha(c) || IsDigit(c) || c == '.' || c == '-' || c == '_' || c == '~';
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16 |
                 static_cast<unsigned char>(in[i + 1]) << 8 | static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// --- Errors -------------------------------------------------------------------------------------

// invalid_field naming a field by its JSON path: "Field 'auth.tokenUrl' must be ...".
Error Invalid(std::string_view path, std::string_view what) {
  return MakeError(Code::kInvalidField, "Field '" + std::string(path) + "' " + std::string(what));
}

Error Missing(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return MakeError(Code::kMissingFields, "Missing required fields: " + list);
}

std::string Child(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string Item(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

// --- Templates ----------------------------------------------------------------------------------

struct Placeholder {
  std::string name;
  std::size_t begin = 0;  // offset of '{'
  std::size_t end = 0;    // offset just past '}'
};

// The placeholders of tmpl, or nullopt with *problem saying what is wrong ("has an unmatched
// '{'"), phrased to follow a field name.
std::optional<std::vector<Placeholder>> ScanTemplate(std::string_view tmpl, std::string* problem) {
  std::vector<Placeholder> out;
  std::size_t i = 0;
  while (i < tmpl.size()) {
    char c = tmpl[i];
    if (c == '}') {
      *problem = "has a '}' that closes no placeholder; braces only delimit {name} placeholders";
      return std::nullopt;
    }
    if (c != '{') {
      ++i;
      continue;
    }
    std::size_t close = tmpl.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || tmpl[close] != '}') {
      *problem = "has an unmatched '{'; braces only delimit {name} placeholders";
      return std::nullopt;
    }
    std::string_view name = tmpl.substr(i + 1, close - i - 1);
    if (!IsPlaceholderName(name)) {
      *problem = "has a placeholder {" + Shown(name) +
                 "} that is not a name (letters, digits and '_', not starting with a digit)";
      return std::nullopt;
    }
    out.push_back(Placeholder{std::string(name), i, close + 1});
    i = close + 1;
  }
  return out;
}

std::string Substitute(std::string_view tmpl, const std::vector<Placeholder>& holders,
                       const std::map<std::string, std::string>& vars) {
  std::string out;
  std::size_t pos = 0;
  for (const auto& h : holders) {
    out.append(tmpl.substr(pos, h.begin - pos));
    out += vars.at(h.name);
    pos = h.end;
  }
  out.append(tmpl.substr(pos));
  return out;
}

// Checks a credential template (auth.template, usernameTemplate, ...): bounded, no control
// characters, placeholders only among `allowed`. Adds the names it uses to *used.
Status CheckCredentialTemplate(const std::string& path, std::string_view tmpl,
                               const std::set<std::string>& allowed, std::string_view allowed_hint,
                               std::set<std::string>* used) {
  if (tmpl.size() > kMaxTemplateBytes) {
    return Invalid(path, "is longer than " + std::to_string(kMaxTemplateBytes) + " bytes");
  }
  if (HasControlChars(tmpl)) return Invalid(path, "must not contain control characters");
  std::string problem;
  auto holders = ScanTemplate(tmpl, &problem);
  if (!holders) return Invalid(path, problem);
  for (const auto& h : *holders) {
    if (!allowed.count(h.name)) {
      return Invalid(path, "names {" + h.name + "}, which is not " + std::string(allowed_hint));
    }
    used->insert(h.name);
  }
  return Ok();
}

// --- URLs ---------------------------------------------------------------------------------------

// Why a concrete URL is not acceptable as a connector URL, or "" when it is: absolute https (http
// only to localhost, 127.0.0.1 or [::1]), a host, no userinfo, no fragment, a query only when
// allowed. Phrased to follow a field name.
std::string UrlProblem(std::string_view url, bool allow_query) {
  if (url.empty()) return "must not be empty";
  if (url.size() > kMaxUrlLength) {
    return "is longer than " + std::to_string(kMaxUrlLength) + " characters";
  }
  for (char ch : url) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) {
      return "contains a space, control or non-ASCII character; percent-encode it";
    }
  }
  if (url.find('#') != std::string_view::npos) return "must not have a fragment ('#')";
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return "must be an absolute URL such as https://api.example.com/v1";
  const boost::urls::url_view& u = *parsed;
  if (!u.has_authority() || u.encoded_host().empty()) return "must have a host";
  if (u.has_userinfo()) return "must not contain a user name or password (user:pass@)";

  bool loopback = false;
  switch (u.host_type()) {
    case boost::urls::host_type::name: {
      std::string_view host = u.encoded_host();
      if (!std::all_of(host.begin(), host.end(), IsHostValueChar)) {
        return "has a host that is not an ASCII host name (letters, digits, '-', '.')";
      }
      loopback = EqualsIgnoreCase(host, "localhost");
      break;
    }
    case boost::urls::host_type::ipv4:
      loopback = u.host_ipv4_address().to_string() == "127.0.0.1";
      break;
    case boost::urls::host_type::ipv6:
      loopback = u.host_ipv6_address().is_loopback();
      break;
    default:
      return "has an IP literal of an unsupported form";
  }

  std::string scheme = Lower(u.scheme());
  if (scheme != "https" && !(scheme == "http" && loopback)) {
    return "must be an https URL (http is allowed only for localhost, 127.0.0.1 and [::1])";
  }
  if (u.has_port()) {
    std::string_view text = u.port();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 ||
        value > 65535) {
      return "has a port that is not 1 to 65535";
    }
  }
  if (!allow_query && u.has_query()) return "must not have a query ('?')";
  return "";
}

// A URL field with no placeholders (docsUrl, logoUri).
Status CheckPlainUrl(const std::string& path, std::string_view url) {
  if (url.find_first_of("{}") != std::string_view::npos) {
    return Invalid(path, "must not contain placeholders");
  }
  std::string problem = UrlProblem(url, /*allow_query=*/true);
  if (!problem.empty()) return Invalid(path, problem);
  return Ok();
}

// A URL template (baseUrl, authorizeUrl, tokenUrl): placeholders name required connection fields
// and sit after the scheme; with each replaced by a harmless sample the URL must be acceptable.
Status CheckUrlTemplate(const std::string& path, std::string_view tmpl, bool allow_query,
                        const std::vector<ConnectorField>& connection_fields) {
  if (tmpl.size() > kMaxUrlLength) {
    return Invalid(path, "is longer than " + std::to_string(kMaxUrlLength) + " characters");
  }
  std::string problem;
  auto holders = ScanTemplate(tmpl, &problem);
  if (!holders) return Invalid(path, problem);
  std::size_t scheme_end = tmpl.find("://");
  std::map<std::string, std::string> sample;
  for (const auto& h : *holders) {
    auto field = std::find_if(connection_fields.begin(), connection_fields.end(),
                              [&](const ConnectorField& f) { return f.key == h.name; });
    if (field == connection_fields.end()) {
      return Invalid(path, "names {" + h.name + "}, which is not a key of connectionFields");
    }
    if (!field->required) {
      return Invalid(path, "names {" + h.name +
                               "}, an optional connection field; URL placeholders need required "
                               "fields");
    }
    if (scheme_end == std::string_view::npos || h.begin < scheme_end + 3) {
      return Invalid(path, "has a placeholder before the host; the scheme must be written out");
    }
    sample[h.name] = "x";
  }
  problem = UrlProblem(Substitute(tmpl, *holders, sample), allow_query);
  if (!problem.empty()) return Invalid(path, problem);
  return Ok();
}

// --- JSON readers -------------------------------------------------------------------------------

// The member `key`, or nullptr when absent or null.
const json::value* Get(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

Status RejectUnknown(const json::object& obj, std::string_view path,
                     std::initializer_list<std::string_view> known, std::string_view context = "") {
  for (const auto& kv : obj) {
    std::string_view key = kv.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    return Invalid(Child(path, Shown(key)),
                   "is not a known field" + std::string(context) + "; known fields: " + list);
  }
  return Ok();
}

Result<std::optional<std::string>> ReadString(const json::object& obj, std::string_view key,
                                              const std::string& path) {
  const json::value* v = Get(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return Invalid(path, "must be a string");
  std::string s(v->get_string());
  if (ValidUtf8(s) != s) return Invalid(path, "must be valid UTF-8");
  return std::optional<std::string>(std::move(s));
}

Result<std::string> RequireString(const json::object& obj, std::string_view key,
                                  const std::string& path) {
  auto s = ReadString(obj, key, path);
  if (!s.ok()) return s.take_error();
  if (!s->has_value()) return Invalid(path, "is required");
  return std::move(**s);
}

Result<std::optional<bool>> ReadBool(const json::object& obj, std::string_view key,
                                     const std::string& path) {
  const json::value* v = Get(obj, key);
  if (!v) return std::optional<bool>();
  if (!v->is_bool()) return Invalid(path, "must be true or false");
  return std::optional<bool>(v->get_bool());
}

// Plain text: no control characters, `min`..`max` characters.
Status CheckText(const std::string& path, std::string_view s, std::size_t min, std::size_t max) {
  if (HasControlChars(s)) return Invalid(path, "must not contain control characters");
  std::size_t n = Utf8Length(s);
  if (n < min) return Invalid(path, min == 1 ? "must not be empty" : "is too short");
  if (n > max) return Invalid(path, "is longer than " + std::to_string(max) + " characters");
  return Ok();
}

// An optional object of string values; `check` validates each entry (path, key, value).
template <class Check>
Result<std::map<std::string, std::string>> ReadStringMap(const json::object& obj,
                                                         std::string_view key,
                                                         const std::string& path,
                                                         std::size_t max_entries, Check check) {
  std::map<std::string, std::string> out;
  const json::value* v = Get(obj, key);
  if (!v) return out;
  if (!v->is_object()) return Invalid(path, "must be an object of strings");
  const json::object& m = v->get_object();
  if (m.size() > max_entries) {
    return Invalid(path, "has more than " + std::to_string(max_entries) + " entries");
  }
  for (const auto& kv : m) {
    std::string entry_path = Child(path, Shown(kv.key()));
    if (!kv.value().is_string()) return Invalid(entry_path, "must be a string");
    std::string k(kv.key());
    std::string value(kv.value().get_string());
    if (ValidUtf8(value) != value) return Invalid(entry_path, "must be valid UTF-8");
    Status s = check(entry_path, k, value);
    if (!s.ok()) return s.take_error();
    out.emplace(std::move(k), std::move(value));
  }
  return out;
}

Status CheckHeaderName(const std::string& path, std::string_view name) {
  if (!IsHeaderName(name)) {
    return Invalid(path, "must be a header name (an RFC 7230 token: letters, digits, !#$%&'*+-.^_`|~)");
  }
  if (IsReservedHeader(name)) {
    return Invalid(path, "names a header the HTTP client sets itself");
  }
  return Ok();
}

// --- Parsing pieces -----------------------------------------------------------------------------

Result<std::vector<ConnectorField>> ParseFields(const json::value& v, const std::string& path) {
  if (!v.is_array()) return Invalid(path, "must be an array of field objects");
  const json::array& arr = v.get_array();
  if (arr.size() > kMaxFields) {
    return Invalid(path, "has more than " + std::to_string(kMaxFields) + " entries");
  }
  std::vector<ConnectorField> out;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string item = Item(path, i);
    if (!arr[i].is_object()) return Invalid(item, "must be an object");
    const json::object& f = arr[i].get_object();
    Status known =
        RejectUnknown(f, item, {"key", "label", "description", "pattern", "secret", "required"});
    if (!known.ok()) return known.take_error();

    ConnectorField field;
    auto key = RequireString(f, "key", Child(item, "key"));
    if (!key.ok()) return key.take_error();
    if (!IsFieldKey(*key)) {
      return Invalid(Child(item, "key"),
                     "must start with a letter and hold only letters, digits and '_' (at most 40)");
    }
    for (const auto& earlier : out) {
      if (earlier.key == *key) return Invalid(Child(item, "key"), "repeats \"" + *key + "\"");
    }
    field.key = std::move(*key);

    auto label = RequireString(f, "label", Child(item, "label"));
    if (!label.ok()) return label.take_error();
    Status s = CheckText(Child(item, "label"), *label, 1, kMaxNameChars);
    if (!s.ok()) return s.take_error();
    field.label = std::move(*label);

    auto description = ReadString(f, "description", Child(item, "description"));
    if (!description.ok()) return description.take_error();
    field.description = description->value_or("");
    s = CheckText(Child(item, "description"), field.description, 0, kMaxFieldDescriptionChars);
    if (!s.ok()) return s.take_error();

    auto pattern = ReadString(f, "pattern", Child(item, "pattern"));
    if (!pattern.ok()) return pattern.take_error();
    field.pattern = pattern->value_or("");
    if (field.pattern.size() > kMaxPatternBytes) {
      return Invalid(Child(item, "pattern"),
                     "is longer than " + std::to_string(kMaxPatternBytes) + " bytes");
    }
    if (!field.pattern.empty()) {
      try {
        std::regex re(field.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return Invalid(Child(item, "pattern"), "is not a valid ECMAScript regular expression");
      }
    }

    auto secret = ReadBool(f, "secret", Child(item, "secret"));
    if (!secret.ok()) return secret.take_error();
    field.secret = secret->value_or(false);
    auto required = ReadBool(f, "required", Child(item, "required"));
    if (!required.ok()) return required.take_error();
    field.required = required->value_or(true);
    out.push_back(std::move(field));
  }
  return out;
}

Result<std::vector<std::string>> ParseScopes(const json::object& auth, std::string_view separator) {
  std::vector<std::string> out;
  const json::value* v = Get(auth, "scopes");
  if (!v) return out;
  if (!v->is_array()) return Invalid("auth.scopes", "must be an array of strings");
  const json::array& arr = v->get_array();
  if (arr.size() > kMaxScopes) {
    return Invalid("auth.scopes", "has more than " + std::to_string(kMaxScopes) + " scopes");
  }
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string item = Item("auth.scopes", i);
    if (!arr[i].is_string()) return Invalid(item, "must be a string");
    std::string_view scope = arr[i].get_string();
    if (scope.empty() || scope.size() > kMaxScopeChars) {
      return Invalid(item, "must be 1 to " + std::to_string(kMaxScopeChars) + " characters");
    }
    if (!std::all_of(scope.begin(), scope.end(), IsScopeChar)) {
      return Invalid(item,
                     "must hold only printable ASCII without spaces, '\"' or '\\' (RFC 6749)");
    }
    if (scope.find(separator) != std::string_view::npos) {
      return Invalid(item, "contains the scope separator \"" + std::string(separator) + "\"");
    }
    if (std::find(out.begin(), out.end(), scope) != out.end()) {
      return Invalid(item, "repeats \"" + std::string(scope) + "\"");
    }
    out.emplace_back(scope);
  }
  return out;
}

// auth.header and auth.template for a header-borne credential.
Status ParseHeaderAndTemplate(const json::object& auth, std::string_view default_template,
                              const std::set<std::string>& allowed, std::string_view allowed_hint,
                              ConnectorAuth* out, std::set<std::string>* used) {
  auto header = ReadString(auth, "header", "auth.header");
  if (!header.ok()) return header.take_error();
  out->header = header->value_or("Authorization");
  Status s = CheckHeaderName("auth.header", out->header);
  if (!s.ok()) return s;
  auto tmpl = ReadString(auth, "template", "auth.template");
  if (!tmpl.ok()) return tmpl.take_error();
  out->value_template = tmpl->value_or(std::string(default_template));
  return CheckCredentialTemplate("auth.template", out->value_template, allowed, allowed_hint, used);
}

Status ParseOAuth(const json::object& auth, bool client_credentials,
                  const std::vector<ConnectorField>& connection_fields, ConnectorAuth* out) {
  Status s = client_credentials
                 ? RejectUnknown(auth, "auth",
                                 {"type", "tokenUrl", "scopes", "scopeSeparator", "clientAuth",
                                  "header", "template"},
                                 " for type oauth2_client_credentials")
                 : RejectUnknown(auth, "auth",
                                 {"type", "authorizeUrl", "tokenUrl", "scopes", "scopeSeparator",
                                  "pkce", "clientAuth", "authorizeParams", "refresh", "header",
                                  "template"},
                                 " for type oauth2");
  if (!s.ok()) return s;

  if (!client_credentials) {
    auto authorize = RequireString(auth, "authorizeUrl", "auth.authorizeUrl");
    if (!authorize.ok()) return authorize.take_error();
    s = CheckUrlTemplate("auth.authorizeUrl", *authorize, /*allow_query=*/true, connection_fields);
    if (!s.ok()) return s;
    out->authorize_url = std::move(*authorize);
  }
  auto token = RequireString(auth, "tokenUrl", "auth.tokenUrl");
  if (!token.ok()) return token.take_error();
  s = CheckUrlTemplate("auth.tokenUrl", *token, /*allow_query=*/true, connection_fields);
  if (!s.ok()) return s;
  out->token_url = std::move(*token);

  auto separator = ReadString(auth, "scopeSeparator", "auth.scopeSeparator");
  if (!separator.ok()) return separator.take_error();
  out->scope_separator = separator->value_or(" ");
  if (out->scope_separator.empty() || out->scope_separator.size() > 3 ||
      !std::all_of(out->scope_separator.begin(), out->scope_separator.end(),
                   [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return Invalid("auth.scopeSeparator", "must be 1 to 3 printable ASCII characters, e.g. \" \"");
  }
  auto scopes = ParseScopes(auth, out->scope_separator);
  if (!scopes.ok()) return scopes.take_error();
  out->scopes = std::move(*scopes);

  auto client_auth = ReadString(auth, "clientAuth", "auth.clientAuth");
  if (!client_auth.ok()) return client_auth.take_error();
  std::string ca = client_auth->value_or("body");
  if (ca == "body") {
    out->client_auth = ClientAuth::kBody;
  } else if (ca == "basic") {
    out->client_auth = ClientAuth::kBasic;
  } else {
    return Invalid("auth.clientAuth", "must be \"body\" or \"basic\"");
  }

  if (!client_credentials) {
    auto pkce = ReadBool(auth, "pkce", "auth.pkce");
    if (!pkce.ok()) return pkce.take_error();
    out->pkce = pkce->value_or(false);
    auto refresh = ReadBool(auth, "refresh", "auth.refresh");
    if (!refresh.ok()) return refresh.take_error();
    out->refresh = refresh->value_or(true);

    static constexpr std::array<std::string_view, 7> kEngineParams = {
        "response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge",
        "code_challenge_method"};
    auto params = ReadStringMap(
        auth, "authorizeParams", "auth.authorizeParams", kMaxParams,
        [](const std::string& path, const std::string& k, const std::string& value) -> Status {
          if (k.empty() || k.size() > 64 || !std::all_of(k.begin(), k.end(), [](char c) {
                return IsAsciiAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.';
              })) {
            return Invalid(path, "must be a parameter name of letters, digits, '_', '-', '.'");
          }
          if (std::find(kEngineParams.begin(), kEngineParams.end(), k) != kEngineParams.end()) {
            return Invalid(path, "is a parameter the engine sets (scopes go in auth.scopes)");
          }
          if (value.size() > kMaxParamValueBytes || HasControlChars(value)) {
            return Invalid(path, "must be at most " + std::to_string(kMaxParamValueBytes) +
                                     " bytes without control characters");
          }
          return Ok();
        });
    if (!params.ok()) return params.take_error();
    out->authorize_params = std::move(*params);
  }

  std::set<std::string> used;
  s = ParseHeaderAndTemplate(auth, "Bearer {accessToken}", {std::string(kAccessToken)},
                             "{accessToken}, the only value of an OAuth credential", out, &used);
  if (!s.ok()) return s;
  if (!used.count(std::string(kAccessToken))) {
    return Invalid("auth.template", "must contain {accessToken}");
  }
  return Ok();
}

std::set<std::string> FieldKeys(const std::vector<ConnectorField>& fields) {
  std::set<std::string> keys;
  for (const auto& f : fields) keys.insert(f.key);
  return keys;
}

// Every credential field must reach the request through some template.
Status CheckFieldsUsed(const std::vector<ConnectorField>& fields, const std::set<std::string>& used) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (!used.count(fields[i].key)) {
      return Invalid(Child(Item("auth.fields", i), "key"),
                     "names \"" + fields[i].key + "\", which no template of auth uses");
    }
  }
  return Ok();
}

Status ParseApiKey(const json::object& auth, ConnectorAuth* out) {
  Status s = RejectUnknown(auth, "auth", {"type", "in", "header", "name", "template", "query", "fields"},
                           " for type api_key");
  if (!s.ok()) return s;

  if (const json::value* f = Get(auth, "fields")) {
    auto fields = ParseFields(*f, "auth.fields");
    if (!fields.ok()) return fields.take_error();
    out->fields = std::move(*fields);
    if (out->fields.empty()) return Invalid("auth.fields", "must not be empty");
  } else {
    out->fields = {ConnectorField{"apiKey", "API key", "", "", true, true}};
  }
  std::set<std::string> allowed = FieldKeys(out->fields);
  constexpr std::string_view kHint = "a key of auth.fields";
  std::set<std::string> used;

  auto in = ReadString(auth, "in", "auth.in");
  if (!in.ok()) return in.take_error();
  std::string where = in->value_or("header");
  if (where == "header") {
    out->in = KeyLocation::kHeader;
    if (Get(auth, "name")) {
      return Invalid("auth.name", "applies only when auth.in is \"query\"; use auth.header");
    }
    s = ParseHeaderAndTemplate(auth, "Bearer {apiKey}", allowed, kHint, out, &used);
    if (!s.ok()) return s;
  } else if (where == "query") {
    out->in = KeyLocation::kQuery;
    out->header.clear();
    if (Get(auth, "header")) {
      return Invalid("auth.header", "applies only when auth.in is \"header\"; use auth.name");
    }
    auto name = RequireString(auth, "name", "auth.name");
    if (!name.ok()) return name.take_error();
    if (name->empty() || name->size() > 64 || !std::all_of(name->begin(), name->end(), IsScopeChar) ||
        name->find_first_of("&=+%?#") != std::string::npos) {
      return Invalid("auth.name", "must be a query parameter name (printable ASCII, no &=+%?#)");
    }
    out->name = std::move(*name);
    auto tmpl = ReadString(auth, "template", "auth.template");
    if (!tmpl.ok()) return tmpl.take_error();
    out->value_template = tmpl->value_or("{apiKey}");
    s = CheckCredentialTemplate("auth.template", out->value_template, allowed, kHint, &used);
    if (!s.ok()) return s;
  } else {
    return Invalid("auth.in", "must be \"header\" or \"query\"");
  }

  auto query = ReadStringMap(
      auth, "query", "auth.query", kMaxParams,
      [&](const std::string& path, const std::string& k, const std::string& value) -> Status {
        if (k.empty() || k.size() > 64 || !std::all_of(k.begin(), k.end(), IsScopeChar) ||
            k.find_first_of("&=+%?#") != std::string::npos) {
          return Invalid(path, "must be a query parameter name (printable ASCII, no &=+%?#)");
        }
        if (out->in == KeyLocation::kQuery && k == out->name) {
          return Invalid(path, "repeats the parameter auth.name sends");
        }
        return CheckCredentialTemplate(path, value, allowed, kHint, &used);
      });
  if (!query.ok()) return query.take_error();
  out->query = std::move(*query);
  return CheckFieldsUsed(out->fields, used);
}

Status ParseBasic(const json::object& auth, ConnectorAuth* out) {
  Status s = RejectUnknown(auth, "auth", {"type", "fields", "usernameTemplate", "passwordTemplate"},
                           " for type basic");
  if (!s.ok()) return s;
  out->header = "Authorization";
  if (const json::value* f = Get(auth, "fields")) {
    auto fields = ParseFields(*f, "auth.fields");
    if (!fields.ok()) return fields.take_error();
    out->fields = std::move(*fields);
    if (out->fields.empty()) return Invalid("auth.fields", "must not be empty");
  } else {
    out->fields = {ConnectorField{"username", "Username", "", "", false, true},
                   ConnectorField{"password", "Password", "", "", true, true}};
  }
  std::set<std::string> allowed = FieldKeys(out->fields);
  std::set<std::string> used;
  auto user = ReadString(auth, "usernameTemplate", "auth.usernameTemplate");
  if (!user.ok()) return user.take_error();
  out->username_template = user->value_or("{username}");
  s = CheckCredentialTemplate("auth.usernameTemplate", out->username_template, allowed,
                              "a key of auth.fields", &used);
  if (!s.ok()) return s;
  if (out->username_template.find(':') != std::string::npos) {
    return Invalid("auth.usernameTemplate", "must not contain ':' (it ends the Basic user name)");
  }
  auto pass = ReadString(auth, "passwordTemplate", "auth.passwordTemplate");
  if (!pass.ok()) return pass.take_error();
  out->password_template = pass->value_or("{password}");
  s = CheckCredentialTemplate("auth.passwordTemplate", out->password_template, allowed,
                              "a key of auth.fields", &used);
  if (!s.ok()) return s;
  return CheckFieldsUsed(out->fields, used);
}

Result<ConnectorAuth> ParseAuth(const json::object& spec,
                                const std::vector<ConnectorField>& connection_fields) {
  const json::value* v = Get(spec, "auth");
  if (!v) return Invalid("auth", "is required");
  if (!v->is_object()) return Invalid("auth", "must be an object");
  const json::object& auth = v->get_object();
  auto type = RequireString(auth, "type", "auth.type");
  if (!type.ok()) return type.take_error();

  ConnectorAuth out;
  Status s;
  if (*type == "oauth2") {
    out.type = AuthType::kOAuth2;
    s = ParseOAuth(auth, false, connection_fields, &out);
  } else if (*type == "oauth2_client_credentials") {
    out.type = AuthType::kOAuth2ClientCredentials;
    s = ParseOAuth(auth, true, connection_fields, &out);
  } else if (*type == "api_key") {
    out.type = AuthType::kApiKey;
    s = ParseApiKey(auth, &out);
  } else if (*type == "basic") {
    out.type = AuthType::kBasic;
    s = ParseBasic(auth, &out);
  } else {
    return Invalid("auth.type",
                   "must be one of oauth2, oauth2_client_credentials, api_key, basic");
  }
  if (!s.ok()) return s.take_error();
  return out;
}

// The header the credential travels in, or "" when it goes in the query.
std::string_view CredentialHeader(const ConnectorAuth& auth) {
  if (auth.type == AuthType::kApiKey && auth.in == KeyLocation::kQuery) return "";
  return auth.header;
}

Result<std::optional<ConnectorTest>> ParseTest(const json::object& spec) {
  const json::value* v = Get(spec, "test");
  if (!v) return std::optional<ConnectorTest>();
  if (!v->is_object()) return Invalid("test", "must be an object {method, path}");
  const json::object& t = v->get_object();
  Status s = RejectUnknown(t, "test", {"method", "path"});
  if (!s.ok()) return s.take_error();
  ConnectorTest out;
  auto method = ReadString(t, "method", "test.method");
  if (!method.ok()) return method.take_error();
  out.method = method->value_or("GET");
  if (out.method != "GET" && out.method != "HEAD" && out.method != "POST") {
    return Invalid("test.method", "must be GET, HEAD or POST");
  }
  auto path = RequireString(t, "path", "test.path");
  if (!path.ok()) return path.take_error();
  out.path = std::move(*path);
  if (out.path.empty() || out.path[0] != '/' || out.path.rfind("//", 0) == 0) {
    return Invalid("test.path", "must start with a single '/' (a path relative to baseUrl)");
  }
  if (out.path.size() > kMaxTestPathBytes) {
    return Invalid("test.path", "is longer than " + std::to_string(kMaxTestPathBytes) + " bytes");
  }
  for (char ch : out.path) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || ch == '#' || ch == '{' || ch == '}') {
      return Invalid("test.path",
                     "must be printable ASCII without spaces, '#' or braces; percent-encode");
    }
  }
  return std::optional<ConnectorTest>(std::move(out));
}

json::array StringsToJson(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

json::object MapToJson(const std::map<std::string, std::string>& m) {
  json::object out;
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}


// Fills credential fields from `values`: absent optional ones become "", absent required ones are
// collected as missing; control characters are refused.
Result<std::map<std::string, std::string>> FieldVars(
    const std::vector<ConnectorField>& fields, const std::map<std::string, std::string>& values) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> missing;
  for (const auto& f : fields) {
    auto it = values.find(f.key);
    if (it == values.end() || it->second.empty()) {
      if (f.required) missing.push_back(f.key);
      vars[f.key] = "";
      continue;
    }
    if (HasControlChars(it->second)) {
      return Invalid(f.key, "must not contain line breaks or other control characters");
    }
    vars[f.key] = it->second;
  }
  if (!missing.empty()) return Missing(missing);
  return vars;
}

}  // namespace

json::array FieldsToJson(const std::vector<ConnectorField>& fields) {
  json::array out;
  for (const auto& f : fields) {
    json::object o;
    o["key"] = f.key;
    o["label"] = f.label;
    o["description"] = f.description;
    o["pattern"] = f.pattern;
    o["secret"] = f.secret;
    o["required"] = f.required;
    out.emplace_back(std::move(o));
  }
  return out;
}

std::string_view AuthTypeName(AuthType type) {
  switch (type) {
    case AuthType::kOAuth2:
      return "oauth2";
    case AuthType::kOAuth2ClientCredentials:
      return "oauth2_client_credentials";
    case AuthType::kApiKey:
      return "api_key";
    case AuthType::kBasic:
      return "basic";
  }
  return "unknown";
}

Result<Connector> ParseConnector(const json::value& spec) {
  if (!spec.is_object()) return Invalid("(the connector)", "must be a JSON object");
  const json::object& obj = spec.get_object();
  for (std::string_view server_set : {"id", "custom"}) {
    if (obj.contains(server_set)) {
      return Invalid(server_set, "is set by the server; leave it out");
    }
  }
  Status s = RejectUnknown(obj, "",
                           {"key", "name", "description", "categories", "docsUrl", "logoUri",
                            "baseUrl", "headers", "connectionFields", "auth", "test"});
  if (!s.ok()) return s.take_error();

  Connector c;
  auto key = RequireString(obj, "key", "key");
  if (!key.ok()) return key.take_error();
  if (!IsSlug(*key, 63)) {
    return Invalid("key",
                   "must be 1 to 63 lower-case letters, digits and '-', starting with a letter or "
                   "digit");
  }
  c.key = std::move(*key);

  auto name = RequireString(obj, "name", "name");
  if (!name.ok()) return name.take_error();
  s = CheckText("name", *name, 1, kMaxNameChars);
  if (!s.ok()) return s.take_error();
  c.name = std::move(*name);

  auto description = ReadString(obj, "description", "description");
  if (!description.ok()) return description.take_error();
  c.description = description->value_or("");
  s = CheckText("description", c.description, 0, kMaxDescriptionChars);
  if (!s.ok()) return s.take_error();

  if (const json::value* v = Get(obj, "categories")) {
    if (!v->is_array()) return Invalid("categories", "must be an array of strings");
    const json::array& arr = v->get_array();
    if (arr.size() > kMaxCategories) {
      return Invalid("categories", "has more than " + std::to_string(kMaxCategories) + " entries");
    }
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string item = Item("categories", i);
      if (!arr[i].is_string() || !IsSlug(arr[i].get_string(), 40)) {
        return Invalid(item, "must be 1 to 40 lower-case letters, digits and '-'");
      }
      std::string cat(arr[i].get_string());
      if (std::find(c.categories.begin(), c.categories.end(), cat) != c.categories.end()) {
        return Invalid(item, "repeats \"" + cat + "\"");
      }
      c.categories.push_back(std::move(cat));
    }
  }

  const std::array<std::pair<std::string_view, std::string*>, 2> plain_urls = {
      {{"docsUrl", &c.docs_url}, {"logoUri", &c.logo_uri}}};
  for (auto [json_key, member] : plain_urls) {
    std::string path(json_key);
    auto url = ReadString(obj, json_key, path);
    if (!url.ok()) return url.take_error();
    if (!url->has_value()) continue;
    s = CheckPlainUrl(path, **url);
    if (!s.ok()) return s.take_error();
    *member = std::move(**url);
  }

  if (const json::value* v = Get(obj, "connectionFields")) {
    auto fields = ParseFields(*v, "connectionFields");
    if (!fields.ok()) return fields.take_error();
    c.connection_fields = std::move(*fields);
  }

  auto base = RequireString(obj, "baseUrl", "baseUrl");
  if (!base.ok()) return base.take_error();
  // "https://api.example.com/" and "https://api.example.com" mean the same base: paths that
  // start with '/' are appended to it.
  while (!base->empty() && base->back() == '/') base->pop_back();
  s = CheckUrlTemplate("baseUrl", *base, /*allow_query=*/false, c.connection_fields);
  if (!s.ok()) return s.take_error();
  c.base_url = std::move(*base);

  auto auth = ParseAuth(obj, c.connection_fields);
  if (!auth.ok()) return auth.take_error();
  c.auth = std::move(*auth);

  std::string_view credential_header = CredentialHeader(c.auth);
  std::vector<std::string> seen;
  auto headers = ReadStringMap(
      obj, "headers", "headers", kMaxHeaders,
      [&](const std::string& path, const std::string& k, const std::string& value) -> Status {
        Status st = CheckHeaderName(path, k);
        if (!st.ok()) return st;
        for (const auto& other : seen) {
          if (EqualsIgnoreCase(other, k)) return Invalid(path, "repeats header " + other);
        }
        seen.push_back(k);
        if (!credential_header.empty() && EqualsIgnoreCase(k, credential_header)) {
          return Invalid(path, "is the header the credential goes in (auth.header)");
        }
        if (value.size() > kMaxHeaderValueBytes) {
          return Invalid(path, "is longer than " + std::to_string(kMaxHeaderValueBytes) + " bytes");
        }
        if (std::any_of(value.begin(), value.end(),
                        [](unsigned char ch) { return IsControl(ch) && ch != '\t'; })) {
          return Invalid(path, "must not contain line breaks or other control characters");
        }
        return Ok();
      });
  if (!headers.ok()) return headers.take_error();
  c.headers = std::move(*headers);

  auto test = ParseTest(obj);
  if (!test.ok()) return test.take_error();
  c.test = std::move(*test);
  return c;
}

json::object ConnectorToJson(const Connector& c) {
  json::object out;
  out["id"] = c.id;
  out["key"] = c.key;
  out["name"] = c.name;
  out["description"] = c.description;
  out["categories"] = StringsToJson(c.categories);
  out["docsUrl"] = c.docs_url.empty() ? json::value(nullptr) : json::value(c.docs_url);
  out["logoUri"] = c.logo_uri.empty() ? json::value(nullptr) : json::value(c.logo_uri);
  out["baseUrl"] = c.base_url;
  out["headers"] = MapToJson(c.headers);
  out["connectionFields"] = FieldsToJson(c.connection_fields);

  const ConnectorAuth& a = c.auth;
  json::object auth;
  auth["type"] = AuthTypeName(a.type);
  switch (a.type) {
    case AuthType::kOAuth2:
    case AuthType::kOAuth2ClientCredentials:
      if (a.type == AuthType::kOAuth2) auth["authorizeUrl"] = a.authorize_url;
      auth["tokenUrl"] = a.token_url;
      auth["scopes"] = StringsToJson(a.scopes);
      auth["scopeSeparator"] = a.scope_separator;
      if (a.type == AuthType::kOAuth2) auth["pkce"] = a.pkce;
      auth["clientAuth"] = a.client_auth == ClientAuth::kBasic ? "basic" : "body";
      if (a.type == AuthType::kOAuth2) {
        auth["authorizeParams"] = MapToJson(a.authorize_params);
        auth["refresh"] = a.refresh;
      }
      auth["header"] = a.header;
      auth["template"] = a.value_template;
      break;
    case AuthType::kApiKey:
      auth["in"] = a.in == KeyLocation::kQuery ? "query" : "header";
      if (a.in == KeyLocation::kQuery) {
        auth["name"] = a.name;
      } else {
        auth["header"] = a.header;
      }
      auth["template"] = a.value_template;
      auth["query"] = MapToJson(a.query);
      auth["fields"] = FieldsToJson(a.fields);
      break;
    case AuthType::kBasic:
      auth["fields"] = FieldsToJson(a.fields);
      auth["usernameTemplate"] = a.username_template;
      auth["passwordTemplate"] = a.password_template;
      break;
  }
  out["auth"] = std::move(auth);
  if (c.test) {
    out["test"] = json::object{{"method", c.test->method}, {"path", c.test->path}};
  } else {
    out["test"] = nullptr;
  }
  out["custom"] = c.custom;
  return out;
}

Result<std::vector<std::string>> TemplatePlaceholders(std::string_view tmpl) {
  std::string problem;
  auto holders = ScanTemplate(tmpl, &problem);
  if (!holders) {
    return MakeError(Code::kInvalidField, "Template \"" + Shown(tmpl) + "\" " + problem);
  }
  std::vector<std::string> names;
  for (auto& h : *holders) names.push_back(std::move(h.name));
  return names;
}

Result<std::string> RenderTemplate(std::string_view tmpl,
                                   const std::map<std::string, std::string>& vars) {
  std::string problem;
  auto holders = ScanTemplate(tmpl, &problem);
  if (!holders) {
    return MakeError(Code::kInvalidField, "Template \"" + Shown(tmpl) + "\" " + problem);
  }
  for (const auto& h : *holders) {
    if (!vars.count(h.name)) {
      return MakeError(Code::kInvalidField,
                       "Template \"" + Shown(tmpl) + "\" names {" + h.name + "}, which has no value");
    }
  }
  return Substitute(tmpl, *holders, vars);
}

Status CheckFieldValues(const std::vector<ConnectorField>& fields,
                        const std::map<std::string, std::string>& values) {
  std::vector<std::string> missing;
  for (const auto& f : fields) {
    auto it = values.find(f.key);
    if (it == values.end() || it->second.empty()) {
      if (f.required) missing.push_back(f.key);
      continue;
    }
    const std::string& value = it->second;
    if (value.size() > kMaxValueBytes) {
      return Invalid(f.key, "is longer than " + std::to_string(kMaxValueBytes) + " bytes");
    }
    if (HasControlChars(value)) {
      return Invalid(f.key, "must not contain line breaks or other control characters");
    }
    if (!f.pattern.empty()) {
      bool matched = false;
      try {
        matched = std::regex_match(value, std::regex(f.pattern, std::regex::ECMAScript));
      } catch (const std::regex_error&) {
        matched = false;  // a pattern too complex for the engine counts as no match
      }
      if (!matched) return Invalid(f.key, "does not match the pattern " + f.pattern);
    }
  }
  if (!missing.empty()) return Missing(missing);
  return Ok();
}

Result<Injection> InjectCredentials(const Connector& connector,
                                    const std::map<std::string, std::string>& credentials) {
  Injection out;
  for (const auto& [name, value] : connector.headers) out.headers.emplace_back(name, value);
  const ConnectorAuth& a = connector.auth;
  switch (a.type) {
    case AuthType::kOAuth2:
    case AuthType::kOAuth2ClientCredentials: {
      auto vars = FieldVars({ConnectorField{std::string(kAccessToken), "Access token", "", "",
                                            true, true}},
                            credentials);
      if (!vars.ok()) return vars.take_error();
      auto value = RenderTemplate(a.value_template, *vars);
      if (!value.ok()) return value.take_error();
      out.headers.emplace_back(a.header, std::move(*value));
      break;
    }
    case AuthType::kApiKey: {
      auto vars = FieldVars(a.fields, credentials);
      if (!vars.ok()) return vars.take_error();
      auto value = RenderTemplate(a.value_template, *vars);
      if (!value.ok()) return value.take_error();
      if (a.in == KeyLocation::kHeader) {
        out.headers.emplace_back(a.header, std::move(*value));
      } else {
        out.query.emplace_back(a.name, std::move(*value));
      }
      for (const auto& [param, tmpl] : a.query) {
        auto v = RenderTemplate(tmpl, *vars);
        if (!v.ok()) return v.take_error();
        out.query.emplace_back(param, std::move(*v));
      }
      break;
    }
    case AuthType::kBasic: {
      auto vars = FieldVars(a.fields, credentials);
      if (!vars.ok()) return vars.take_error();
      auto user = RenderTemplate(a.username_template, *vars);
      if (!user.ok()) return user.take_error();
      auto pass = RenderTemplate(a.password_template, *vars);
      if (!pass.ok()) return pass.take_error();
      if (user->find(':') != std::string::npos) {
        return MakeError(Code::kInvalidField,
                         "The Basic user name must not contain ':'; check the credential fields "
                         "used by auth.usernameTemplate");
      }
      out.headers.emplace_back("Authorization", "Basic " + Base64(*user + ":" + *pass));
      break;
    }
  }
  return out;
}

Result<std::string> ResolveUrl(const std::string& tmpl,
                               const std::map<std::string, std::string>& connection_fields) {
  std::string problem;
  auto holders = ScanTemplate(tmpl, &problem);
  if (!holders) return MakeError(Code::kInvalidField, "URL template " + problem);
  std::size_t scheme_end = tmpl.find("://");
  if (scheme_end == std::string::npos) {
    return MakeError(Code::kInvalidField, "URL template is not an absolute URL");
  }
  std::size_t authority_begin = scheme_end + 3;
  std::size_t authority_end = tmpl.find_first_of("/?#", authority_begin);
  if (authority_end == std::string::npos) authority_end = tmpl.size();

  std::vector<std::string> missing;
  for (const auto& h : *holders) {
    auto it = connection_fields.find(h.name);
    if (it == connection_fields.end() || it->second.empty()) {
      if (std::find(missing.begin(), missing.end(), h.name) == missing.end()) {
        missing.push_back(h.name);
      }
      continue;
    }
    const std::string& value = it->second;
    if (h.begin < authority_begin) {
      return MakeError(Code::kInvalidField, "URL template has a placeholder in its scheme");
    }
    if (h.begin < authority_end) {
      if (value.size() > kMaxHostValueBytes ||
          !std::all_of(value.begin(), value.end(), IsHostValueChar)) {
        return Invalid(h.name,
                       "is part of the host name, so it may hold only letters, digits, '.' and "
                       "'-'");
      }
    } else if (value.size() > kMaxHostValueBytes ||
               !std::all_of(value.begin(), value.end(), IsUnreservedChar) || value == "." ||
               value == "..") {
      return Invalid(h.name,
                     "is part of the URL path, so it may hold only letters, digits, '.', '-', '_' "
                     "and '~' (and not be \".\" or \"..\")");
    }
  }
  if (!missing.empty()) return Missing(missing);

  std::string url = Substitute(tmpl, *holders, connection_fields);
  problem = UrlProblem(url, /*allow_query=*/true);
  if (!problem.empty()) {
    return MakeError(Code::kInvalidField, "The URL \"" + Shown(url) + "\" " + problem);
  }
  return url;
}

Result<Catalog> Catalog::Builtin() {
  const auto& names = embedded::kConnectorFilesNames;
  const auto& texts = embedded::kConnectorFilesTexts;
  std::vector<Connector> connectors;
  connectors.reserve(names.size());
  for (std::size_t i = 0; i < names.size() && i < texts.size(); ++i) {
    std::string file = "connectors/" + std::string(names[i]) + ".json";
    boost::system::error_code ec;
    json::value spec = json::parse(texts[i], ec);
    if (ec) {
      return MakeError(Code::kServerError, file + " is not valid JSON: " + ec.message());
    }
    auto parsed = ParseConnector(spec);
    if (!parsed.ok()) {
      return MakeError(Code::kServerError, file + ": " + std::string(parsed.error().Message()));
    }
    if (parsed->key != names[i]) {
      return MakeError(Code::kServerError,
                       file + " has key \"" + parsed->key + "\"; it must equal the file name");
    }
    parsed->id = "cnr_" + parsed->key;
    connectors.push_back(std::move(*parsed));
  }
  auto catalog = FromConnectors(std::move(connectors));
  if (!catalog.ok()) {
    return MakeError(Code::kServerError, std::string(catalog.error().Message()));
  }
  return catalog;
}

Result<Catalog> Catalog::FromConnectors(std::vector<Connector> connectors) {
  std::sort(connectors.begin(), connectors.end(),
            [](const Connector& a, const Connector& b) { return a.key < b.key; });
  for (std::size_t i = 1; i < connectors.size(); ++i) {
    if (connectors[i].key == connectors[i - 1].key) {
      return MakeError(Code::kConflict,
                       "Two connectors have the key \"" + connectors[i].key + "\"");
    }
  }
  return Catalog(std::move(connectors));
}

const Connector* Catalog::Find(std::string_view key) const {
  auto it = std::lower_bound(connectors_.begin(), connectors_.end(), key,
                             [](const Connector& c, std::string_view k) { return c.key < k; });
  if (it == connectors_.end() || it->key != key) return nullptr;
  return &*it;
}

std::vector<const Connector*> Catalog::Search(std::string_view text) const {
  std::string needle = Lower(text);
  auto contains = [&](std::string_view hay) { return Lower(hay).find(needle) != std::string::npos; };
  std::vector<const Connector*> out;
  for (const auto& c : connectors_) {
    bool hit = needle.empty() || contains(c.key) || contains(c.name) || contains(c.description) ||
               std::any_of(c.categories.begin(), c.categories.end(), contains);
    if (hit) out.push_back(&c);
  }
  return out;
}

}  // namespace agentgate::engine
