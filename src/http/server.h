// Server: HTTP/1.1 over TCP with Boost.Beast, keep-alive, deadlines and graceful shutdown.
//
// One io_context and one thread per worker; accepted connections are dealt round-robin to the
// workers, and a connection lives on its worker's thread for its whole life (no strands, no
// locks on the I/O path). Routes marked kBlocking run on a separate thread pool so a handler
// waiting for the store never stalls the network threads.
//
// Every response gets X-Request-Id and the CORS headers; OPTIONS preflights are answered here.
// Malformed HTTP, oversized headers or bodies, unknown paths and wrong methods get the structured
// error. Exceptions from handlers are caught and answered with server_error.
//
// Thread safety: Bind, Run and Stop are called from one controlling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/log.h"
#include "core/result.h"
#include "http/router.h"

namespace agentgate::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;           // 0: any free port
  int threads = 2;                     // network threads
  int blocking_threads = 32;           // pool for kBlocking handlers
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * std::size_t{1024};
  std::int64_t read_timeout_ms = 30'000;  // deadline for reading one request (and idle keep-alive)
  bool access_log = false;
};

class Server {
 public:
  Server(ServerOptions options, const Router& router, Logger& logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. On success port() is the bound port.
  Status Bind();
  std::uint16_t port() const;
  // Used to build the docs links of errors; set before Run.
  void SetBaseUrl(std::string base_url);
  // Starts the worker threads and returns.
  void Run();
  // Stops accepting, lets requests in flight finish (up to drain_timeout), closes idle
  // connections, and joins every thread. Idempotent.
  void Stop(std::chrono::milliseconds drain_timeout);

  struct Impl;  // public so the connection code in server.cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentgate::http
