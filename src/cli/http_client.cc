#include "cli/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <memory>
#include <new>

namespace agentgate::cli {
namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// What the libcurl callbacks write into. Callbacks must not throw: a bad_alloc inside one is
// turned into an aborted transfer.
struct Sink {
  HttpResponse response;
  bool out_of_memory = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  try {
    sink->response.body.append(data, n);
  } catch (const std::bad_alloc&) {
    sink->out_of_memory = true;
    return 0;
  }
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  try {
    if (line.starts_with("HTTP/")) {
      // A new status line (after a 1xx, say): only the final response's headers count.
      sink->response.headers.clear();
      return n;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return n;  // the blank line that ends the headers
    sink->response.headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                                        std::string(Trim(line.substr(colon + 1))));
  } catch (const std::bad_alloc&) {
    sink->out_of_memory = true;
    return 0;
  }
  return n;
}

std::string DescribeFailure(CURLcode code, const char* detail, std::chrono::milliseconds timeout) {
  std::string text;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: {
      const auto ms = timeout.count();
      text = "no response within " +
             (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms");
      break;
    }
    case CURLE_COULDNT_CONNECT:
      text = "connection refused or unreachable";
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
      text = "could not resolve the host name";
      break;
    default:
      text = curl_easy_strerror(code);
      break;
  }
  if (code != CURLE_OPERATION_TIMEDOUT && detail != nullptr && *detail != '\0') {
    text += " (";
    text += Trim(detail);
    text += ")";
  }
  return text;
}

Result<HttpResponse> SendOrThrow(const HttpRequest& request, std::chrono::milliseconds timeout,
                                 const std::string& user_agent) {
  EasyHandle easy(curl_easy_init());
  if (!easy) return MakeError(Code::kUnavailable, "could not start an HTTP transfer");
  CURL* h = easy.get();

  Sink sink;
  char error_buffer[CURL_ERROR_SIZE] = {};
  Slist headers;
  auto add_header = [&headers](const std::string& line) -> bool {
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (grown == nullptr) return false;
    (void)headers.release();  // `grown` now owns the old list
    headers.reset(grown);
    return true;
  };
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    std::string line = name;
    line += ": ";
    line += value;
    if (!add_header(line)) return MakeError(Code::kUnavailable, "out of memory");
    has_content_type = has_content_type || EqualsIgnoreCase(name, "Content-Type");
  }
  // No "Expect: 100-continue" round trip for bodies, and no form Content-Type that libcurl
  // would otherwise add to a POST body on its own.
  if (!add_header("Expect:") || (!has_content_type && !add_header("Content-Type:"))) {
    return MakeError(Code::kUnavailable, "out of memory");
  }

  const long timeout_ms = static_cast<long>(std::max<long long>(1, timeout.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (!user_agent.empty()) curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
  if (request.body.has_value()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
  }
  if (request.method == "GET" && !request.body.has_value()) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method != "POST") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  const CURLcode code = curl_easy_perform(h);
  if (sink.out_of_memory) return MakeError(Code::kUnavailable, "out of memory");
  if (code != CURLE_OK) {
    return MakeError(Code::kUnavailable, DescribeFailure(code, error_buffer, timeout));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  sink.response.status = static_cast<int>(status);
  return std::move(sink.response);
}

}  // namespace

CurlGlobal::CurlGlobal() : ok_(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {}

CurlGlobal::~CurlGlobal() {
  if (ok_) curl_global_cleanup();
}

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::vector<std::string_view> HttpResponse::Headers(std::string_view name) const {
  std::vector<std::string_view> found;
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) found.emplace_back(value);
  }
  return found;
}

HttpClient::HttpClient(std::chrono::milliseconds timeout, std::string user_agent)
    : timeout_(timeout), user_agent_(std::move(user_agent)) {}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  try {
    return SendOrThrow(request, timeout_, user_agent_);
  } catch (const std::exception& e) {
    return MakeError(Code::kUnavailable, std::string("HTTP request failed: ") + e.what());
  } catch (...) {
    return MakeError(Code::kUnavailable, "HTTP request failed");
  }
}

}  // namespace agentgate::cli
