// A small blocking HTTP client over libcurl for the command-line client.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace agentgate::cli {

// Initialises libcurl for the life of the object (curl_global_init / curl_global_cleanup).
//
// Contract: create exactly one, on the main thread, before any HttpClient is used, and keep it
// alive until every HttpClient is gone; cli::Run does this. Not copyable or movable.
class CurlGlobal {
 public:
  CurlGlobal();
  ~CurlGlobal();
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;

  // False when curl_global_init failed; HttpClient::Send then fails too.
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;                  // absolute http:// or https:// URL, already percent-encoded
  HeaderList headers;               // extra request headers, sent as given
  std::optional<std::string> body;  // sent (with Content-Length) when present
};

struct HttpResponse {
  int status = 0;
  HeaderList headers;  // of the final response, in order, names as the server sent them
  std::string body;

  // The first header with this name (case-insensitive), if any.
  std::optional<std::string_view> Header(std::string_view name) const;
  // Every header with this name (case-insensitive), in order (e.g. Set-Cookie).
  std::vector<std::string_view> Headers(std::string_view name) const;
};

// Sends one request at a time over a fresh libcurl easy handle.
//
// Contract: every request has a connect deadline and a total deadline (the timeout given to
// the constructor bounds both); redirects are never followed (a 3xx is returned as is); only
// http and https are allowed; no exceptions escape Send. An HTTP error status is a successful
// Send: the caller reads HttpResponse::status. Failing to get any response at all (refused
// connection, DNS failure, deadline passed, broken stream) is an Error with code `unavailable`
// whose message says what happened, in words fit to show a person.
// Thread safety: an HttpClient is not shared between threads; separate instances may be used
// concurrently once CurlGlobal exists. Owns nothing between calls.
class HttpClient {
 public:
  explicit HttpClient(std::chrono::milliseconds timeout, std::string user_agent = {});

  Result<HttpResponse> Send(const HttpRequest& request) const;

 private:
  std::chrono::milliseconds timeout_;
  std::string user_agent_;
};

}  // namespace agentgate::cli
