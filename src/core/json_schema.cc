#include "core/json_schema.h"

#include <cmath>
#include <mutex>

// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> automaton when it is
// inlined here at -O2 (a std::function moved in _State's move constructor); nothing of ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#include <unordered_map>

namespace agentgate {

namespace {

constexpr int kMaxDepth = 64;  // schemas and values nested deeper are refused, not recursed

std::string TypeOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64: return "integer";
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

double AsDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

bool MatchesType(const json::value& v, std::string_view type) {
  if (type == "integer") {
    if (v.is_int64() || v.is_uint64()) return true;
    return v.is_double() && std::isfinite(v.get_double()) &&
           std::floor(v.get_double()) == v.get_double();
  }
  if (type == "number") return IsNumber(v);
  std::string actual = TypeOf(v);
  return actual == type;
}

std::string Article(std::string_view type) {
  return (type == "integer" || type == "object" || type == "array") ? "an " : "a ";
}

// Characters (code points) in valid UTF-8.
std::size_t CharLength(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Describe(const json::value& v) {
  std::string text = Serialize(v);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Compiled patterns, shared: schemas are few and long-lived, so the cache stays small; it is
// cleared if it ever grows past a bound (say, from many distinct client-made schemas).
const std::regex* CompiledPattern(const std::string& pattern, std::string* error) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::unique_ptr<std::regex>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second.get();
  if (cache.size() > 1024) cache.clear();
  try {
    auto re = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
    return cache.emplace(pattern, std::move(re)).first->second.get();
  } catch (const std::regex_error& e) {
    *error = e.what();
    return nullptr;
  }
}

class Validator {
 public:
  std::optional<SchemaViolation> Check(const json::value& schema, const json::value& value,
                                       std::string& pointer, int depth) {
    if (depth > kMaxDepth) return Fail(pointer, "is nested too deeply");
    if (schema.is_bool()) {
      if (schema.get_bool()) return std::nullopt;
      return Fail(pointer, "is not allowed");
    }
    if (!schema.is_object()) return std::nullopt;
    const json::object& s = schema.get_object();

    if (const json::value* type = s.if_contains("type")) {
      if (auto v = CheckType(*type, value, pointer)) return v;
    }
    if (const json::value* c = s.if_contains("const"); c && *c != value) {
      return Fail(pointer, "must be " + Describe(*c));
    }
    if (const json::value* e = s.if_contains("enum"); e && e->is_array()) {
      bool found = false;
      for (const auto& option : e->get_array()) found = found || option == value;
      if (!found) {
        std::string options;
        for (const auto& option : e->get_array()) {
          if (!options.empty()) options += ", ";
          options += Describe(option);
        }
        return Fail(pointer, "must be one of: " + options);
      }
    }
    if (IsNumber(value)) {
      if (auto v = CheckNumber(s, AsDouble(value), pointer)) return v;
    }
    if (value.is_string()) {
      if (auto v = CheckString(s, value.get_string(), pointer)) return v;
    }
    if (value.is_array()) {
      if (auto v = CheckArray(s, value.get_array(), pointer, depth)) return v;
    }
    if (value.is_object()) {
      if (auto v = CheckObject(s, value.get_object(), pointer, depth)) return v;
    }
    if (auto v = CheckCombinators(s, value, pointer, depth)) return v;
    return std::nullopt;
  }

 private:
  static std::optional<SchemaViolation> Fail(const std::string& pointer, std::string message) {
    return SchemaViolation{pointer, std::move(message)};
  }

  static std::optional<SchemaViolation> CheckType(const json::value& type, const json::value& v,
                                                  const std::string& pointer) {
    if (type.is_string()) {
      std::string_view t = type.get_string();
      if (MatchesType(v, t)) return std::nullopt;
      return Fail(pointer, "must be " + Article(t) + std::string(t) + ", not " + TypeOf(v));
    }
    if (type.is_array()) {
      std::string names;
      for (const auto& t : type.get_array()) {
        if (!t.is_string()) continue;
        if (MatchesType(v, t.get_string())) return std::nullopt;
        if (!names.empty()) names += " or ";
        names += std::string(t.get_string());
      }
      if (names.empty()) return std::nullopt;
      return Fail(pointer, "must be " + names + ", not " + TypeOf(v));
    }
    return std::nullopt;
  }

  static std::optional<SchemaViolation> CheckNumber(const json::object& s, double x,
                                                    const std::string& pointer) {
    auto bound = [&](std::string_view key) -> std::optional<double> {
      const json::value* b = s.if_contains(key);
      if (b && IsNumber(*b)) return AsDouble(*b);
      return std::nullopt;
    };
    auto text = [&](std::string_view key) { return Describe(s.at(key)); };
    if (auto m = bound("minimum"); m && x < *m) return Fail(pointer, "must be at least " + text("minimum"));
    if (auto m = bound("maximum"); m && x > *m) return Fail(pointer, "must be at most " + text("maximum"));
    if (auto m = bound("exclusiveMinimum"); m && x <= *m) {
      return Fail(pointer, "must be greater than " + text("exclusiveMinimum"));
    }
    if (auto m = bound("exclusiveMaximum"); m && x >= *m) {
      return Fail(pointer, "must be less than " + text("exclusiveMaximum"));
    }
    if (auto m = bound("multipleOf"); m && *m > 0) {
      double q = x / *m;
      if (std::fabs(q - std::round(q)) > 1e-9) {
        return Fail(pointer, "must be a multiple of " + text("multipleOf"));
      }
    }
    return std::nullopt;
  }

  static std::optional<SchemaViolation> CheckString(const json::object& s, std::string_view str,
                                                    const std::string& pointer) {
    std::size_t length = CharLength(str);
    if (const json::value* m = s.if_contains("minLength"); m && IsNumber(*m) && length < AsDouble(*m)) {
      return Fail(pointer, "must be at least " + Describe(*m) + " characters long");
    }
    if (const json::value* m = s.if_contains("maxLength"); m && IsNumber(*m) && length > AsDouble(*m)) {
      return Fail(pointer, "must be at most " + Describe(*m) + " characters long");
    }
    if (const json::value* p = s.if_contains("pattern"); p && p->is_string()) {
      std::string error;
      const std::regex* re = CompiledPattern(std::string(p->get_string()), &error);
      if (re == nullptr) return Fail(pointer, "cannot be checked: the schema's pattern is invalid (" + error + ")");
      bool matched = false;
      try {
        matched = std::regex_search(str.begin(), str.end(), *re);
      } catch (const std::regex_error&) {
        return Fail(pointer, "is too complex to check against the schema's pattern");
      }
      if (!matched) return Fail(pointer, "must match the pattern " + Describe(*p));
    }
    return std::nullopt;
  }

  std::optional<SchemaViolation> CheckArray(const json::object& s, const json::array& a,
                                            std::string& pointer, int depth) {
    if (const json::value* m = s.if_contains("minItems"); m && IsNumber(*m) && a.size() < AsDouble(*m)) {
      return Fail(pointer, "must have at least " + Describe(*m) + " items");
    }
    if (const json::value* m = s.if_contains("maxItems"); m && IsNumber(*m) && a.size() > AsDouble(*m)) {
      return Fail(pointer, "must have at most " + Describe(*m) + " items");
    }
    if (const json::value* u = s.if_contains("uniqueItems"); u && u->is_bool() && u->get_bool()) {
      for (std::size_t i = 0; i < a.size(); ++i) {
        for (std::size_t j = i + 1; j < a.size(); ++j) {
          if (a[i] == a[j]) return Fail(pointer, "must not repeat items (" + Describe(a[i]) + ")");
        }
      }
    }
    if (const json::value* items = s.if_contains("items")) {
      for (std::size_t i = 0; i < a.size(); ++i) {
        std::size_t mark = pointer.size();
        pointer += '/';
        pointer += std::to_string(i);
        auto v = Check(*items, a[i], pointer, depth + 1);
        pointer.resize(mark);
        if (v) return v;
      }
    }
    return std::nullopt;
  }

  std::optional<SchemaViolation> CheckObject(const json::object& s, const json::object& o,
                                             std::string& pointer, int depth) {
    if (const json::value* req = s.if_contains("required"); req && req->is_array()) {
      for (const auto& name : req->get_array()) {
        if (name.is_string() && !o.contains(name.get_string())) {
          return Fail(pointer + "/" + std::string(name.get_string()), "is required");
        }
      }
    }
    if (const json::value* m = s.if_contains("minProperties"); m && IsNumber(*m) && o.size() < AsDouble(*m)) {
      return Fail(pointer, "must have at least " + Describe(*m) + " properties");
    }
    if (const json::value* m = s.if_contains("maxProperties"); m && IsNumber(*m) && o.size() > AsDouble(*m)) {
      return Fail(pointer, "must have at most " + Describe(*m) + " properties");
    }
    const json::object* props = nullptr;
    if (const json::value* p = s.if_contains("properties"); p && p->is_object()) props = &p->get_object();
    const json::value* additional = s.if_contains("additionalProperties");
    for (const auto& [key, v] : o) {
      const json::value* sub = props ? props->if_contains(key) : nullptr;
      std::size_t mark = pointer.size();
      pointer += '/';
      pointer += EscapePointer(key);
      std::optional<SchemaViolation> result;
      if (sub) {
        result = Check(*sub, v, pointer, depth + 1);
      } else if (additional && additional->is_bool() && !additional->get_bool()) {
        result = Fail(pointer, "is not a known field");
      } else if (additional && additional->is_object()) {
        result = Check(*additional, v, pointer, depth + 1);
      }
      pointer.resize(mark);
      if (result) return result;
    }
    return std::nullopt;
  }

  std::optional<SchemaViolation> CheckCombinators(const json::object& s, const json::value& value,
                                                  std::string& pointer, int depth) {
    if (const json::value* all = s.if_contains("allOf"); all && all->is_array()) {
      for (const auto& sub : all->get_array()) {
        if (auto v = Check(sub, value, pointer, depth + 1)) return v;
      }
    }
    if (const json::value* any = s.if_contains("anyOf"); any && any->is_array()) {
      std::optional<SchemaViolation> first;
      bool matched = false;
      for (const auto& sub : any->get_array()) {
        auto v = Check(sub, value, pointer, depth + 1);
        if (!v) {
          matched = true;
          break;
        }
        if (!first) first = v;
      }
      if (!matched && first) return first;
    }
    if (const json::value* one = s.if_contains("oneOf"); one && one->is_array()) {
      int matches = 0;
      std::optional<SchemaViolation> first;
      for (const auto& sub : one->get_array()) {
        auto v = Check(sub, value, pointer, depth + 1);
        if (!v) {
          ++matches;
        } else if (!first) {
          first = v;
        }
      }
      if (matches == 0 && first) return first;
      if (matches > 1) return Fail(pointer, "matches more than one of the allowed shapes");
    }
    if (const json::value* n = s.if_contains("not")) {
      if (!Check(*n, value, pointer, depth + 1)) return Fail(pointer, "is not allowed here");
    }
    return std::nullopt;
  }

  static std::string EscapePointer(std::string_view key) {
    std::string out;
    for (char c : key) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    return out;
  }
};

}  // namespace

std::optional<SchemaViolation> ValidateAgainstSchema(const json::value& schema,
                                                     const json::value& value) {
  Validator validator;
  std::string pointer;
  return validator.Check(schema, value, pointer, 0);
}

std::string PointerToFieldName(const std::string& pointer) {
  if (pointer.empty()) return "(the input)";
  std::string out;
  std::size_t i = 1;
  while (i <= pointer.size()) {
    std::size_t next = pointer.find('/', i);
    if (next == std::string::npos) next = pointer.size();
    std::string part = pointer.substr(i, next - i);
    // Unescape ~1 and ~0 (in that order, as RFC 6901 says).
    for (std::size_t p = 0; (p = part.find("~1", p)) != std::string::npos;) part.replace(p, 2, "/");
    for (std::size_t p = 0; (p = part.find("~0", p)) != std::string::npos;) part.replace(p, 2, "~");
    bool index = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    if (index) {
      out += "[" + part + "]";
    } else {
      if (!out.empty()) out += '.';
      out += part;
    }
    i = next + 1;
  }
  return out;
}

}  // namespace agentgate
