#include "engine/action.h"

#include <arpa/inet.h>
#include <libpsl.h>

#include <algorithm>
#include <array>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "crypto/base64.h"

namespace agentgate::engine {
namespace {

constexpr std::size_t kMaxPath = 2048;
constexpr std::array<std::string_view, 6> kMethods = {"GET",   "POST",   "PUT",
                                                      "PATCH", "DELETE", "HEAD"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// invalid_field naming a field by its JSON path, as the rest of the API does.
Error InvalidField(std::string_view field, std::string_view what) {
  return MakeError(Code::kInvalidField, "Field '" + std::string(field) + "' " + std::string(what));
}

Error InvalidInput(std::string message) {
  return MakeError(Code::kInvalidInput, std::move(message));
}

std::string Child(std::string_view where, std::string_view name) {
  return std::string(where) + "." + std::string(name.substr(0, 64));
}

bool IsToken(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

bool HasLineBreakOrNul(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// --- placeholders ----------------------------------------------------------------------------

// "{{input.a.b}}" (spaces allowed inside the braces) at [begin, end) of a string; names holds
// "a", "b". Names are [A-Za-z0-9_-]+; anything else between braces is literal text.
struct Placeholder {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::vector<std::string> names;

  std::string Dotted() const {
    std::string out = "input";
    for (const auto& n : names) out += "." + n;
    return out;
  }
};

std::optional<Placeholder> NextPlaceholder(std::string_view s, std::size_t from) {
  constexpr std::string_view kInput = "input";
  for (std::size_t open = s.find("{{", from); open != std::string_view::npos;
       open = s.find("{{", open + 1)) {
    std::size_t close = s.find("}}", open + 2);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inner = s.substr(open + 2, close - open - 2);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    if (inner.substr(0, kInput.size()) != kInput || inner.size() <= kInput.size() + 1 ||
        inner[kInput.size()] != '.') {
      continue;
    }
    Placeholder p{open, close + 2, {}};
    bool ok = true;
    std::string_view rest = inner.substr(kInput.size() + 1);
    while (ok) {
      std::size_t dot = rest.find('.');
      std::string_view name = rest.substr(0, dot);
      ok = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-';
      });
      if (ok) p.names.emplace_back(name);
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    if (ok) return p;
  }
  return std::nullopt;
}

// The input value a placeholder names, or nullptr when absent.
const json::value* Lookup(const json::object& input, const Placeholder& p) {
  const json::object* at = &input;
  const json::value* found = nullptr;
  for (const auto& name : p.names) {
    if (at == nullptr) return nullptr;
    found = at->if_contains(name);
    if (found == nullptr) return nullptr;
    at = found->if_object();
  }
  return found;
}

Error Required(const Placeholder& p) {
  return InvalidInput(p.Dotted() + " is required by the action's request");
}

// A scalar as text: strings as they are, numbers and booleans as JSON.
std::optional<std::string> ScalarText(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_number() || v.is_bool()) return Serialize(v);
  return std::nullopt;
}

enum class Slot { kPath, kQuery, kHeader, kBody };

// Fills the placeholders of one string of the template, recording the top-level input fields
// they use.
Result<std::string> Substitute(std::string_view text, const json::object& input, Slot slot,
                               std::set<std::string>& used) {
  std::string out;
  std::size_t copied = 0;
  for (auto p = NextPlaceholder(text, 0); p; p = NextPlaceholder(text, p->end)) {
    used.insert(p->names.front());
    const json::value* v = Lookup(input, *p);
    if (v == nullptr) return Required(*p);
    std::optional<std::string> value = ScalarText(*v);
    if (slot == Slot::kBody && !value) value = Serialize(*v);
    if (!value) {
      std::string_view where = slot == Slot::kPath    ? "the path"
                               : slot == Slot::kQuery ? "the query string"
                                                      : "a header";
      return InvalidInput(p->Dotted() + " must be a string, number or boolean to go into " +
                          std::string(where));
    }
    if (slot == Slot::kPath) {
      // An empty segment would turn "/users/{{input.id}}/orders" into another resource.
      if (value->empty()) {
        return InvalidInput(p->Dotted() + " must not be empty: it is part of the path");
      }
      // As one segment: '/', '?', '#' and also sub-delimiters such as ';' are encoded, so no
      // server reads syntax into the value. "." and ".." stay as they are, and CheckApiPath
      // refuses them.
      *value = boost::urls::encode(*value, boost::urls::unreserved_chars);
    } else if (slot == Slot::kHeader && HasLineBreakOrNul(*value)) {
      return InvalidInput(p->Dotted() + " cannot go into a header: it has a line break or NUL");
    }
    out.append(text.substr(copied, p->begin - copied));
    out += *value;
    copied = p->end;
  }
  out.append(text.substr(copied));
  return out;
}

// A body value: a string that is exactly one placeholder takes the input value with its type.
Result<json::value> RenderBody(const json::value& v, const json::object& input,
                               std::set<std::string>& used) {
  if (v.is_string()) {
    std::string_view s = v.get_string();
    if (auto p = NextPlaceholder(s, 0); p && p->begin == 0 && p->end == s.size()) {
      used.insert(p->names.front());
      const json::value* found = Lookup(input, *p);
      if (found == nullptr) return Required(*p);
      return *found;
    }
    auto text = Substitute(s, input, Slot::kBody, used);
    if (!text.ok()) return text.take_error();
    return json::value(*text);
  }
  if (v.is_array()) {
    json::array out;
    out.reserve(v.get_array().size());
    for (const auto& element : v.get_array()) {
      auto r = RenderBody(element, input, used);
      if (!r.ok()) return r.take_error();
      out.push_back(std::move(*r));
    }
    return json::value(std::move(out));
  }
  if (v.is_object()) {
    json::object out;
    for (const auto& kv : v.get_object()) {
      auto r = RenderBody(kv.value(), input, used);
      if (!r.ok()) return r.take_error();
      out[kv.key()] = std::move(*r);
    }
    return json::value(std::move(out));
  }
  return v;
}

// The path with each placeholder as a plain segment, for checking a template before rendering.
std::string PlaceholdersAsSegments(std::string_view path) {
  std::string out;
  std::size_t copied = 0;
  for (auto p = NextPlaceholder(path, 0); p; p = NextPlaceholder(path, p->end)) {
    out.append(path.substr(copied, p->begin - copied));
    out += "x";
    copied = p->end;
  }
  out.append(path.substr(copied));
  return out;
}

std::string PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// --- intent ranking --------------------------------------------------------------------------

constexpr std::array<std::string_view, 40> kStopWords = {
    "a",    "an",    "and",  "are",   "as",  "at",     "be",   "by",   "can", "do",
    "for",  "from",  "how",  "i",     "in",  "into",   "is",   "it",   "its", "me",
    "my",   "of",    "on",   "or",    "our", "please", "some", "that", "the", "their",
    "them", "these", "this", "those", "to",  "want",   "we",   "with", "you", "your"};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Folds plural and tense endings so "contacts", "created" and "creates" meet "contact" and
// "create": strip one ending, undouble a final consonant left by -ing/-ed, drop a final 'e'.
std::string Stem(std::string w) {
  bool verb_ending = false;
  if ((EndsWith(w, "ies") || EndsWith(w, "ied")) && w.size() > 4) {
    w.replace(w.size() - 3, 3, "y");
  } else if (EndsWith(w, "ing") && w.size() >= 5) {
    w.resize(w.size() - 3);
    verb_ending = true;
  } else if (EndsWith(w, "ed") && w.size() >= 4) {
    w.resize(w.size() - 2);
    verb_ending = true;
  } else if (EndsWith(w, "es") && w.size() >= 4 &&
             (EndsWith(w, "sses") || EndsWith(w, "xes") || EndsWith(w, "zes") ||
              EndsWith(w, "ches") || EndsWith(w, "shes"))) {
    w.resize(w.size() - 2);
  } else if (EndsWith(w, "s") && !EndsWith(w, "ss") && w.size() >= 3) {
    w.resize(w.size() - 1);
  }
  if (verb_ending && w.size() >= 4 && w[w.size() - 1] == w[w.size() - 2] &&
      std::string_view("lsz").find(w.back()) == std::string_view::npos &&
      std::string_view("aeiou").find(w.back()) == std::string_view::npos) {
    w.pop_back();
  }
  if (w.size() >= 4 && w.back() == 'e') w.pop_back();
  return w;
}

std::vector<std::string> Terms(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty() &&
        std::find(kStopWords.begin(), kStopWords.end(), word) == kStopWords.end()) {
      out.push_back(Stem(std::move(word)));
    }
    word.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      word += static_cast<char>(std::tolower(c));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

// --- redaction -------------------------------------------------------------------------------

constexpr std::array<std::string_view, 5> kDefaultCredentialNames = {
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"};

void ReplaceAll(std::string& text, std::string_view what, std::string_view with) {
  for (std::size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
}

// True for hosts that are IP addresses (or would be read as one: a last label that is a
// number, as in "127.1" or "0x7f.1"); no public suffix applies to them.
bool IsIpLiteral(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return true;  // IPv6; no host name has ':'
  std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return true;
  std::size_t dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (last.size() > 2 && (last.substr(0, 2) == "0x")) return true;
  return std::all_of(last.begin(), last.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

// --- requests --------------------------------------------------------------------------------

Result<ApiRequest> ParseApiRequest(const json::value& value, std::string_view where) {
  if (!value.is_object()) return InvalidField(where, "must be an object");
  const json::object& o = value.get_object();
  for (const auto& kv : o) {
    std::string_view k = kv.key();
    if (k != "method" && k != "path" && k != "query" && k != "headers" && k != "body") {
      return MakeError(Code::kInvalidField, "Unknown field '" + Child(where, k) +
                                                "'; allowed: method, path, query, headers, body");
    }
  }
  ApiRequest r;
  if (const json::value* m = o.if_contains("method"); m != nullptr && !m->is_null()) {
    std::string method = m->is_string() ? std::string(m->get_string()) : std::string();
    for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (std::find(kMethods.begin(), kMethods.end(), method) == kMethods.end()) {
      return InvalidField(Child(where, "method"), "must be GET, POST, PUT, PATCH, DELETE or HEAD");
    }
    r.method = std::move(method);
  }
  const json::value* path = o.if_contains("path");
  if (path == nullptr || path->is_null()) {
    return MakeError(Code::kMissingFields, "Missing required fields: " + Child(where, "path"));
  }
  if (!path->is_string()) return InvalidField(Child(where, "path"), "must be a string");
  r.path = std::string(path->get_string());
  if (r.path.size() > kMaxPath) {
    return InvalidField(Child(where, "path"), "must start with '/' and be at most 2048 characters");
  }
  // Placeholders pass as plain segments; the rendered path is checked again.
  if (Status s = CheckApiPath(PlaceholdersAsSegments(r.path), Child(where, "path")); !s.ok()) {
    return s.take_error();
  }
  if (const json::value* q = o.if_contains("query"); q != nullptr && !q->is_null()) {
    if (!q->is_object()) return InvalidField(Child(where, "query"), "must be an object");
    for (const auto& kv : q->get_object()) {
      std::optional<std::string> text = ScalarText(kv.value());
      if (!text) {
        return InvalidField(Child(Child(where, "query"), kv.key()),
                            "must be a string, number or boolean");
      }
      r.query.emplace_back(std::string(kv.key()), std::move(*text));
    }
  }
  if (const json::value* h = o.if_contains("headers"); h != nullptr && !h->is_null()) {
    if (!h->is_object()) return InvalidField(Child(where, "headers"), "must be an object");
    for (const auto& kv : h->get_object()) {
      std::string field = Child(Child(where, "headers"), kv.key());
      if (!kv.value().is_string()) return InvalidField(field, "must be a string");
      std::string_view v = kv.value().get_string();
      if (!IsToken(kv.key()) || HasLineBreakOrNul(v)) {
        return InvalidField(field, "must be a header name with a value without line breaks");
      }
      if (ForbiddenHeader(kv.key())) {
        return InvalidField(field,
                            "cannot be set: agentgate sets it (credentials are injected from the "
                            "connection)");
      }
      r.headers.emplace_back(std::string(kv.key()), std::string(v));
    }
  }
  if (const json::value* b = o.if_contains("body"); b != nullptr && !b->is_null()) {
    if (r.method == "GET" || r.method == "HEAD") {
      return InvalidField(Child(where, "body"), "cannot be sent with " + r.method);
    }
    r.body = *b;
  }
  return r;
}

json::object ApiRequestToJson(const ApiRequest& request) {
  json::object out;
  out["method"] = request.method;
  out["path"] = request.path;
  if (!request.query.empty()) {
    json::object q;
    for (const auto& [name, value] : request.query) {
      json::value* seen = q.if_contains(name);
      if (seen == nullptr) {
        q[name] = value;
      } else if (seen->is_array()) {
        seen->get_array().emplace_back(value);
      } else {
        json::array repeated;
        repeated.emplace_back(std::move(*seen));
        repeated.emplace_back(value);
        *seen = std::move(repeated);
      }
    }
    out["query"] = std::move(q);
  }
  if (!request.headers.empty()) {
    json::object h;
    for (const auto& [name, value] : request.headers) {
      json::value* seen = h.if_contains(name);
      if (seen == nullptr) {
        h[name] = value;
      } else {
        // One field line per name, as HTTP combines repeated fields (RFC 9110 §5.3).
        seen->get_string().append(", ");
        seen->get_string().append(value);
      }
    }
    out["headers"] = std::move(h);
  }
  if (request.body) out["body"] = *request.body;
  return out;
}

Status CheckApiPath(std::string_view path, std::string_view field) {
  if (path.empty() || path[0] != '/' || path.size() > kMaxPath) {
    return InvalidField(field, "must start with '/' and be at most 2048 characters");
  }
  if (path.substr(0, 2) == "//" || path.find("://") != std::string_view::npos ||
      path.find('\\') != std::string_view::npos) {
    return MakeError(Code::kEgressDenied, std::string(field) +
                                              " must be a path under the connector's base URL, "
                                              "not another URL");
  }
  for (unsigned char c : path) {
    if (c <= 0x20 || c == 0x7f || c == '#') {
      return InvalidField(field, "must not contain spaces, control characters or '#'");
    }
  }
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t next = path.find_first_of("/?", pos + 1);
    std::string_view seg = path.substr(
        pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1);
    std::string lower = Lower(seg);
    if (seg == ".." || seg == "." || lower == "%2e%2e" || lower == ".%2e" || lower == "%2e." ||
        lower == "%2e" || lower.find("%2f") != std::string::npos ||
        lower.find("%5c") != std::string::npos) {
      return MakeError(Code::kEgressDenied,
                       std::string(field) + " must not climb out of the base URL");
    }
    if (next == std::string_view::npos || path[next] == '?') break;
    pos = next;
  }
  return Ok();
}

bool ForbiddenHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 10> kForbidden = {
      "host",           "authorization",
      "cookie",         "proxy-authorization",
      "content-length", "transfer-encoding",
      "connection",     "te",
      "upgrade",        "expect"};
  return std::any_of(kForbidden.begin(), kForbidden.end(),
                     [&](std::string_view f) { return IEquals(f, name); });
}

Result<ApiRequest> RenderActionRequest(const ApiRequest& request_template,
                                       const json::object& input) {
  ApiRequest out;
  out.method = request_template.method;
  std::set<std::string> used;

  auto path = Substitute(request_template.path, input, Slot::kPath, used);
  if (!path.ok()) return path.take_error();
  out.path = std::move(*path);
  for (const auto& [name, value] : request_template.query) {
    auto text = Substitute(value, input, Slot::kQuery, used);
    if (!text.ok()) return text.take_error();
    out.query.emplace_back(name, std::move(*text));
  }
  for (const auto& [name, value] : request_template.headers) {
    auto text = Substitute(value, input, Slot::kHeader, used);
    if (!text.ok()) return text.take_error();
    out.headers.emplace_back(name, std::move(*text));
  }
  if (request_template.body) {
    auto body = RenderBody(*request_template.body, input, used);
    if (!body.ok()) return body.take_error();
    out.body = std::move(*body);
  }

  const std::string& m = out.method;
  if (!request_template.body && (m == "POST" || m == "PUT" || m == "PATCH")) {
    json::object rest;
    for (const auto& kv : input) {
      if (!used.contains(std::string(kv.key()))) rest[kv.key()] = kv.value();
    }
    if (!rest.empty()) out.body = json::value(std::move(rest));
  } else if (request_template.query.empty() && (m == "GET" || m == "DELETE" || m == "HEAD")) {
    for (const auto& kv : input) {
      std::string name(kv.key());
      if (used.contains(name)) continue;
      auto refuse = [&] {
        return InvalidInput("input." + name.substr(0, 64) +
                            " cannot go into the query string of a " + m +
                            " request: give a string, number, boolean or an array of them");
      };
      if (auto text = ScalarText(kv.value())) {
        out.query.emplace_back(name, std::move(*text));
      } else if (kv.value().is_array()) {
        for (const auto& element : kv.value().get_array()) {
          auto each = ScalarText(element);
          if (!each) return refuse();
          out.query.emplace_back(name, std::move(*each));
        }
      } else {
        return refuse();
      }
    }
  }

  // The template's path passed CheckApiPath with placeholders as plain segments; the values
  // put in may still make ".." segments or a path that is too long.
  if (Status s = CheckApiPath(out.path, "path"); !s.ok()) {
    Error e = s.take_error();
    if (e.code == Code::kEgressDenied) {
      return MakeError(Code::kEgressDenied,
                       "The input takes the action's path out of the connector's base URL");
    }
    return InvalidInput("The input makes the action's path invalid: " + std::string(e.Message()));
  }
  return out;
}

// --- redaction -------------------------------------------------------------------------------

void Redactor::AddSecret(std::string_view value) {
  if (value.size() < 4) return;
  auto add = [this](std::string form) {
    if (form.size() >= 4 && std::find(secrets_.begin(), secrets_.end(), form) == secrets_.end()) {
      secrets_.push_back(std::move(form));
    }
  };
  add(std::string(value));
  // Percent-encoded as strictly as possible, as a path or query encoder that keeps sub-delimiters
  // would, as a form ('+' for space), and with lower-case hex digits.
  std::string strict = boost::urls::encode(value, boost::urls::unreserved_chars);
  std::string form = strict;
  ReplaceAll(form, "%20", "+");
  std::string lower_hex = strict;
  for (std::size_t i = 0; i + 2 < lower_hex.size(); ++i) {
    if (lower_hex[i] == '%') {
      lower_hex[i + 1] =
          static_cast<char>(std::tolower(static_cast<unsigned char>(lower_hex[i + 1])));
      lower_hex[i + 2] =
          static_cast<char>(std::tolower(static_cast<unsigned char>(lower_hex[i + 2])));
    }
  }
  add(strict);
  add(std::move(form));
  add(std::move(lower_hex));
  add(boost::urls::encode(value, boost::urls::pchars));
  // JSON-escaped, as Boost.JSON writes it, and with "\/" as some serializers write '/'.
  std::string escaped = json::serialize(json::string(value));
  escaped = escaped.substr(1, escaped.size() - 2);
  std::string slashed = escaped;
  ReplaceAll(slashed, "/", "\\/");
  add(std::move(escaped));
  add(std::move(slashed));
  // Longest first, so a secret that contains another is replaced whole.
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Redactor::AddBasicCredentials(std::string_view user, std::string_view password) {
  AddSecret(password);
  std::string pair = std::string(user) + ":" + std::string(password);
  AddSecret(crypto::Base64Encode(pair));
}

void Redactor::AddCredentialName(std::string_view name) {
  std::string lower = Lower(name);
  if (!lower.empty() && std::find(names_.begin(), names_.end(), lower) == names_.end()) {
    names_.push_back(std::move(lower));
  }
}

std::string Redactor::Redact(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) ReplaceAll(out, secret, kMark);
  return out;
}

std::vector<std::pair<std::string, std::string>> Redactor::RedactHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) const {
  auto credential = [this](std::string_view name) {
    std::string lower = Lower(name);
    return std::find(kDefaultCredentialNames.begin(), kDefaultCredentialNames.end(), lower) !=
               kDefaultCredentialNames.end() ||
           std::find(names_.begin(), names_.end(), lower) != names_.end();
  };
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    out.emplace_back(name, credential(name) ? std::string(kMark) : Redact(value));
  }
  return out;
}

std::string Redactor::RedactUrl(std::string_view url) const {
  std::size_t question = url.find('?');
  if (question == std::string_view::npos) return Redact(url);
  std::size_t hash = url.find('#', question);
  std::string_view query = url.substr(
      question + 1, hash == std::string_view::npos ? std::string_view::npos : hash - question - 1);
  std::string out(url.substr(0, question + 1));
  bool first = true;
  while (true) {
    std::size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    std::size_t eq = param.find('=');
    std::string name = Lower(PercentDecode(param.substr(0, eq)));
    bool credential = eq != std::string_view::npos &&
                      (std::find(kDefaultCredentialNames.begin(), kDefaultCredentialNames.end(),
                                 name) != kDefaultCredentialNames.end() ||
                       std::find(names_.begin(), names_.end(), name) != names_.end());
    if (credential) {
      out.append(param.substr(0, eq + 1));
      out += kMark;
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (hash != std::string_view::npos) out.append(url.substr(hash));
  return Redact(out);
}

// --- registrable domains ---------------------------------------------------------------------

std::string RegistrableDomain(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string h = Lower(host);
  if (h.empty() || IsIpLiteral(h)) return h;
  // The built-in list is compiled into libpsl: no file is read, and the context is immutable.
  const psl_ctx_t* psl = psl_builtin();
  if (psl == nullptr) return h;  // no list: only the host itself counts as the same site
  const char* domain = psl_registrable_domain(psl, h.c_str());
  return domain == nullptr ? h : std::string(domain);
}

bool SameRegistrableDomain(std::string_view from_host, std::string_view to_host) {
  std::string from = RegistrableDomain(from_host);
  return !from.empty() && from == RegistrableDomain(to_host);
}

// --- retries ---------------------------------------------------------------------------------

bool IsIdempotentMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

std::optional<std::int64_t> RetryDelayMs(int status, std::optional<std::int64_t> retry_after_s,
                                         int attempt, std::int64_t elapsed_ms, bool repeatable,
                                         const RetryPolicy& policy) {
  bool transient = status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
  if (!transient || !repeatable || attempt < 1 || attempt >= policy.max_attempts) {
    return std::nullopt;
  }
  std::int64_t remaining = policy.deadline_ms - elapsed_ms;
  if (remaining < 0) return std::nullopt;
  std::int64_t delay = 0;
  if (retry_after_s) {
    if (*retry_after_s > remaining / 1000 + 1) return std::nullopt;  // also keeps *1000 in range
    delay = std::max<std::int64_t>(*retry_after_s, 0) * 1000;
  } else {
    delay = policy.max_delay_ms;
    if (attempt - 1 < 62 &&
        policy.base_delay_ms <= (std::numeric_limits<std::int64_t>::max() >> (attempt - 1))) {
      delay = std::min(policy.max_delay_ms, policy.base_delay_ms << (attempt - 1));
    }
    delay = std::max<std::int64_t>(delay, 0);
  }
  if (delay > remaining) return std::nullopt;
  return delay;
}

// --- intent ranking --------------------------------------------------------------------------

std::vector<std::size_t> RankByIntent(std::string_view intent,
                                      const std::vector<std::string>& texts) {
  std::vector<std::string> query = Terms(intent);
  std::sort(query.begin(), query.end());
  query.erase(std::unique(query.begin(), query.end()), query.end());
  if (query.empty() || texts.empty()) return {};

  std::vector<std::map<std::string, int>> counts(texts.size());
  std::vector<std::size_t> lengths(texts.size());
  std::map<std::string, int> document_frequency;
  double total_length = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<std::string> terms = Terms(texts[i]);
    lengths[i] = terms.size();
    total_length += static_cast<double>(terms.size());
    for (auto& t : terms) {
      if (counts[i][t]++ == 0) ++document_frequency[t];
    }
  }
  // BM25 with the usual k1 and b: a term's weight grows with its count in a text, saturating,
  // and with how few texts have it; long texts are damped.
  constexpr double kK1 = 1.2;
  constexpr double kB = 0.75;
  const double n = static_cast<double>(texts.size());
  const double average = std::max(total_length / n, 1.0);
  std::vector<std::pair<double, std::size_t>> scored;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    double score = 0;
    for (const auto& term : query) {
      auto it = counts[i].find(term);
      if (it == counts[i].end()) continue;
      double df = document_frequency[term];
      double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
      double tf = it->second;
      double norm = kK1 * (1 - kB + kB * static_cast<double>(lengths[i]) / average);
      score += idf * tf * (kK1 + 1) / (tf + norm);
    }
    if (score > 0) scored.emplace_back(score, i);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::size_t> out;
  out.reserve(scored.size());
  for (const auto& s : scored) out.push_back(s.second);
  return out;
}

}  // namespace agentgate::engine
