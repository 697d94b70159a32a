#include "webhooks/sender.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <memory>
#include <new>

namespace agentgate::webhooks {
namespace {

// Enough of the body for the excerpt; past this the transfer is cut short (the status is already
// known), so that a receiver streaming a huge body cannot hold a delivery worker until timeout.
constexpr std::size_t kMaxResponseBytes = std::size_t{64} * 1024;
// Retry-After values above this (68 years) are clamped, so callers can multiply by 1000 freely.
constexpr std::int64_t kMaxRetryAfterS = std::numeric_limits<std::int32_t>::max();

// libcurl's global state, initialised once per process. curl_global_init is reference counted,
// so a call made elsewhere too (serve.cc makes one at start-up) is harmless; a function-local
// static makes the first call thread-safe. It is deliberately never cleaned up: other threads
// may still be using libcurl while the process exits.
bool CurlReady() {
  static const bool ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ready;
}

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// Appends to a curl_slist, keeping ownership in `list`; false when out of memory.
bool Append(Slist& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) return false;
  (void)list.release();  // `grown` owns the old nodes now
  list.reset(grown);
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// One numeric address the egress guard approved, in binary so that text forms need not match.
struct Allowed {
  int family = 0;
  std::array<std::uint8_t, 16> bytes{};
};

std::optional<Allowed> ParseAllowed(const std::string& text) {
  Allowed a;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    a.family = AF_INET;
    std::memcpy(a.bytes.data(), &v4, sizeof v4);
    return a;
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    a.family = AF_INET6;
    std::memcpy(a.bytes.data(), &v6, sizeof v6);
    return a;
  }
  return std::nullopt;
}

// What the libcurl callbacks share with Deliver. Callbacks must not throw.
struct Transfer {
  std::vector<Allowed> allowed;
  std::string refused_address;  // set when a connection to an unchecked address was refused
  std::string body;             // at most keep_bytes
  std::size_t keep_bytes = kResponseExcerptBytes;
  std::size_t max_bytes = kMaxResponseBytes;
  std::size_t body_bytes = 0;
  bool cut_short = false;  // we stopped reading after max_bytes
  std::optional<std::string> retry_after;
  bool keep_headers = false;
  HeaderList headers;  // of the final response, when keep_headers
  bool out_of_memory = false;
};

curl_socket_t OpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  Allowed target;
  target.family = address->family;
  if (address->family == AF_INET &&
      address->addrlen >= static_cast<unsigned>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address->addr);
    std::memcpy(target.bytes.data(), &in->sin_addr, sizeof in->sin_addr);
  } else if (address->family == AF_INET6 &&
             address->addrlen >= static_cast<unsigned>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address->addr);
    std::memcpy(target.bytes.data(), &in6->sin6_addr, sizeof in6->sin6_addr);
  } else {
    return CURL_SOCKET_BAD;
  }
  const bool ok = purpose == CURLSOCKTYPE_IPCXN &&
                  std::any_of(t->allowed.begin(), t->allowed.end(), [&](const Allowed& a) {
                    return a.family == target.family && a.bytes == target.bytes;
                  });
  if (!ok) {
    char text[INET6_ADDRSTRLEN] = "?";
    ::inet_ntop(target.family, target.bytes.data(), text, sizeof text);
    try {
      t->refused_address = text;
    } catch (const std::bad_alloc&) {
      t->out_of_memory = true;
    }
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (t->body.size() < t->keep_bytes) {
    try {
      t->body.append(data, std::min(n, t->keep_bytes - t->body.size()));
    } catch (const std::bad_alloc&) {
      t->out_of_memory = true;
      return 0;
    }
  }
  t->body_bytes += n;
  if (t->body_bytes > t->max_bytes) {
    t->cut_short = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR); the status is already known
  }
  return n;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->retry_after.reset();  // a new response (after a 1xx): only the final one counts
    t->headers.clear();
    return n;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  if (t->keep_headers && t->headers.size() < 100) {
    try {
      t->headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                              std::string(Trim(line.substr(colon + 1))));
    } catch (const std::bad_alloc&) {
      t->out_of_memory = true;
      return 0;
    }
  }
  if (EqualsIgnoreCase(Trim(line.substr(0, colon)), "Retry-After") && !t->retry_after) {
    try {
      t->retry_after = std::string(Trim(line.substr(colon + 1)));
    } catch (const std::bad_alloc&) {
      t->out_of_memory = true;
      return 0;
    }
  }
  return n;
}

std::string DescribeFailure(CURLcode code, const char* detail, std::int64_t timeout_ms,
                            const Transfer& t) {
  std::string text;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      text =
          "no response within " + (timeout_ms % 1000 == 0 ? std::to_string(timeout_ms / 1000) + " s"
                                                          : std::to_string(timeout_ms) + " ms");
      detail = nullptr;
      break;
    case CURLE_COULDNT_CONNECT:
      if (!t.refused_address.empty()) {
        return "refused to connect to " + t.refused_address +
               ": not an address the egress guard checked";
      }
      text = "connection refused or unreachable";
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
      text = "the receiver's TLS certificate is not valid for this host";
      break;
    default:
      text = curl_easy_strerror(code);
      break;
  }
  if (detail != nullptr && *detail != '\0') {
    text += " (";
    text += Trim(detail);
    text += ")";
  }
  return text;
}

// Keeps valid UTF-8 as is and replaces each byte that does not start a valid sequence with
// U+FFFD, so the excerpt can go into JSON and logs as text.
std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // no overlong forms
      if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
    }
    bool valid = len > 0 && i + len <= in.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto b = static_cast<unsigned char>(in[i + k]);
      valid = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xbf);
    }
    if (valid) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
  return out;
}

int MonthIndex(const char* name) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (std::strcmp(name, kMonths[i]) == 0) return i;
  }
  return -1;
}

// Unix seconds of an HTTP-date (RFC 9110 section 5.6.7), or nullopt.
std::optional<std::int64_t> ParseHttpDate(const std::string& s) {
  char weekday[10] = {};
  char month[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, used = 0;
  // True when all seven fields matched and %n was reached at the very end of the text.
  auto whole = [&](int matched) {
    const bool ok = matched == 7 && static_cast<std::size_t>(used) == s.size();
    used = 0;
    return ok;
  };
  const char* text = s.c_str();
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  bool parsed = whole(std::sscanf(text, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", weekday,
                                  &day, month, &year, &hour, &minute, &second, &used));
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years are taken as 1970-2069.
  if (!parsed && whole(std::sscanf(text, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n",
                                   weekday, &day, month, &year, &hour, &minute, &second, &used))) {
    year += year < 70 ? 2000 : 1900;
    parsed = true;
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (!parsed) {
    parsed = whole(std::sscanf(text, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", weekday, month,
                               &day, &hour, &minute, &second, &year, &used));
  }
  if (!parsed) return std::nullopt;
  const int mon = MonthIndex(month);
  if (mon < 0 || day < 1 || day > 31 || year < 1970 || year > 9999 || hour > 23 || minute > 59 ||
      second > 60 || hour < 0 || minute < 0 || second < 0) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<std::int64_t>(t);
}

std::string UrlFor(const Destination& dest) {
  const bool ipv6 = dest.host.find(':') != std::string::npos;
  std::string url = dest.scheme + "://";
  url += ipv6 ? "[" + dest.host + "]" : dest.host;
  url += ":" + std::to_string(dest.port);
  url += dest.path_and_query.empty() ? "/" : dest.path_and_query;
  return url;
}

DeliveryResult Refuse(std::string error) {
  DeliveryResult r;
  r.error = std::move(error);
  return r;
}

DeliveryResult SendOrThrow(const Destination& dest, const OutboundRequest& req) {
  const HeaderList& headers = req.headers;
  const std::string_view body = req.body;
  const std::int64_t timeout_ms = req.timeout_ms;
  if (!CurlReady()) return Refuse("libcurl could not be initialised");
  if (dest.scheme != "http" && dest.scheme != "https") {
    return Refuse("scheme \"" + dest.scheme + "\" is not http or https");
  }
  if (dest.port < 1 || dest.port > 65535) return Refuse("port out of range");
  if (dest.host.empty() || HasLineBreakOrNul(dest.host) || HasLineBreakOrNul(dest.path_and_query)) {
    return Refuse("destination host or path is malformed");
  }
  if (dest.addresses.empty()) return Refuse("destination has no checked addresses");

  Transfer t;
  t.keep_bytes = req.max_response_bytes;
  t.max_bytes = std::max(req.max_response_bytes, kMaxResponseBytes);
  t.keep_headers = req.keep_headers;
  std::string resolve_entry = dest.host + ":" + std::to_string(dest.port) + ":";
  for (std::size_t i = 0; i < dest.addresses.size(); ++i) {
    auto allowed = ParseAllowed(dest.addresses[i]);
    if (!allowed) return Refuse("destination address \"" + dest.addresses[i] + "\" is not numeric");
    t.allowed.push_back(*allowed);
    if (i > 0) resolve_entry += ",";
    resolve_entry +=
        allowed->family == AF_INET6 ? "[" + dest.addresses[i] + "]" : dest.addresses[i];
  }

  Slist header_list;
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    if (name.empty() || HasLineBreakOrNul(name) || HasLineBreakOrNul(value) ||
        name.find_first_of(": \t") != std::string::npos) {
      return Refuse("header \"" + SanitizeUtf8(name.substr(0, 64)) + "\" is malformed");
    }
    std::string line = name;
    line += ": ";
    line += value;
    if (!Append(header_list, line)) return Refuse("out of memory");
    has_content_type = has_content_type || EqualsIgnoreCase(name, "Content-Type");
  }
  // No "Expect: 100-continue" round trip for larger bodies.
  if ((!has_content_type && !body.empty() &&
       !Append(header_list, "Content-Type: application/json")) ||
      !Append(header_list, "Expect:")) {
    return Refuse("out of memory");
  }
  Slist resolve;
  // An IP literal is never looked up, so it needs (and, for IPv6, accepts) no pin; the socket
  // check below covers it.
  const bool host_is_literal = ParseAllowed(dest.host).has_value();
  // The handle is reused (below), so its DNS cache may hold this name's earlier addresses: drop
  // them first, then pin the ones just checked.
  if (!host_is_literal &&
      (!Append(resolve, "-" + dest.host + ":" + std::to_string(dest.port)) ||
       !Append(resolve, resolve_entry))) {
    return Refuse("out of memory");
  }

  // One handle per thread, reset before every transfer: its connection cache keeps connections
  // alive between calls to the same scheme, host and port (no TCP or TLS handshake per call, and
  // no socket left in TIME_WAIT). A kept connection was opened to an address the guard checked
  // for that host; every new socket is checked, as always, by OpenSocket.
  thread_local std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return Refuse("could not start an HTTP transfer");
  CURL* h = easy.get();
  curl_easy_reset(h);
  const std::string url = UrlFor(dest);
  const long timeout = static_cast<long>(std::clamp<std::int64_t>(timeout_ms, 1, LONG_MAX));
  // libcurl reads the body from here; a null pointer would make it read stdin instead.
  static const char kEmpty[] = "";
  const char* body_data = body.empty() ? kEmpty : body.data();
  char error_buffer[CURL_ERROR_SIZE] = {};
  const std::string user_agent(kUserAgent);

  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // ignore http_proxy and friends
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
  if (resolve) curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &t);
  if (req.method == "GET" && body.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    if (req.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);

  const auto start = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(h);
  DeliveryResult result;
  result.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  if (t.out_of_memory) {
    result.error = "out of memory";
    return result;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  const bool answered = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.cut_short);
  curl_off_t connect_us = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
  result.connected = connect_us > 0 || status != 0;
  if (!answered) {
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.error = DescribeFailure(rc, error_buffer, timeout, t);
    // A status without the rest of the response (the body stalled, say) is not an answer: the
    // spec counts it as a failure, and the delivery is retried under the same webhook-id.
    if (status != 0) result.error += " (after status " + std::to_string(status) + ")";
    return result;
  }
  result.status = static_cast<int>(status);
  result.truncated = t.cut_short || t.body_bytes > t.body.size();
  if (req.max_response_bytes == kResponseExcerptBytes) {
    result.response_excerpt = SanitizeUtf8(t.body);
  } else {
    result.response_excerpt = SanitizeUtf8(std::string_view(t.body).substr(
        0, std::min(t.body.size(), kResponseExcerptBytes)));
    result.body = std::move(t.body);
  }
  result.headers = std::move(t.headers);
  if (t.retry_after) {
    const std::int64_t now_s = static_cast<std::int64_t>(std::time(nullptr));
    result.retry_after_s = ParseRetryAfter(*t.retry_after, now_s);
  }
  return result;
}

}  // namespace

std::optional<std::int64_t> ParseRetryAfter(std::string_view value, std::int64_t now_s) {
  try {
    value = Trim(value);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      std::int64_t seconds = 0;
      for (char c : value) {
        seconds = seconds * 10 + (c - '0');
        if (seconds >= kMaxRetryAfterS) return kMaxRetryAfterS;
      }
      return seconds;
    }
    auto at = ParseHttpDate(std::string(value));
    if (!at) return std::nullopt;
    return std::clamp<std::int64_t>(*at - now_s, 0, kMaxRetryAfterS);
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
}

DeliveryResult Deliver(const Destination& dest, const HeaderList& headers, std::string_view body,
                       std::int64_t timeout_ms) {
  OutboundRequest req;
  req.headers = headers;
  req.body = body;
  req.timeout_ms = timeout_ms;
  return Send(dest, req);
}

DeliveryResult Send(const Destination& dest, const OutboundRequest& req) {
  try {
    if (req.method.empty() || req.method.size() > 16 ||
        !std::all_of(req.method.begin(), req.method.end(),
                     [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return Refuse("method \"" + SanitizeUtf8(req.method.substr(0, 16)) + "\" is malformed");
    }
    return SendOrThrow(dest, req);
  } catch (const std::exception& e) {
    return Refuse(std::string("request failed: ") + e.what());
  }
}

}  // namespace agentgate::webhooks
