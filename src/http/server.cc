#include "http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

namespace agentgate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kExposeHeaders =
    "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, Location, Idempotent-Replayed, "
    "Mcp-Session-Id, WWW-Authenticate";
constexpr std::string_view kAllowHeaders =
    "Authorization, Content-Type, Idempotency-Key, X-Request-Id, Accept, Mcp-Session-Id, "
    "MCP-Protocol-Version, Last-Event-ID";
constexpr std::string_view kAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

Method ToMethod(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get: return Method::kGet;
    case bhttp::verb::head: return Method::kHead;
    case bhttp::verb::post: return Method::kPost;
    case bhttp::verb::put: return Method::kPut;
    case bhttp::verb::patch: return Method::kPatch;
    case bhttp::verb::delete_: return Method::kDelete;
    case bhttp::verb::options: return Method::kOptions;
    default: return Method::kOther;
  }
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// "req_" and 11 letters or digits (65 random bits): short enough for std::string's inline
// buffer, so naming a request allocates nothing. Not a secret, so a fast generator will do.
std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::uint64_t a = rng(), b = rng();
  char id[15] = {'r', 'e', 'q', '_'};
  for (int i = 0; i < 10; ++i, a /= 62) id[4 + i] = kChars[a % 62];
  id[14] = kChars[b % 62];
  return std::string(id, sizeof id);
}

std::int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class Session;

struct Worker {
  // Touched only on this worker's thread. Declared first so that it outlives the io_context,
  // whose destruction may destroy sessions still queued in it.
  std::unordered_set<Session*> sessions;
  bool draining = false;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  // Closes connections whose read or write deadline has passed. One timer per worker rather than
  // one per operation keeps timers off the per-request path.
  asio::steady_timer sweeper{ioc};
  std::thread thread;
};

struct Server::Impl {
  Impl(ServerOptions o, const Router& r, Logger& l)
      : options(std::move(o)), router(r), logger(l), pool(options.blocking_threads) {}

  ServerOptions options;
  const Router& router;
  Logger& logger;
  std::string base_url;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;
  asio::thread_pool pool;
  std::atomic<int> active_sessions{0};
  std::atomic<bool> stopped{false};
  std::size_t next_worker = 0;  // used on workers[0]'s thread only
  std::uint16_t port = 0;

  void Accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Server::Impl& impl, Worker& worker)
      : socket_(std::move(socket)), impl_(impl), worker_(worker) {
    impl_.active_sessions.fetch_add(1, std::memory_order_relaxed);
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) remote_ip_ = ep.address().to_string();
    socket_.set_option(tcp::no_delay(true), ec);
  }

  ~Session() {
    worker_.sessions.erase(this);
    impl_.active_sessions.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() {
    worker_.sessions.insert(this);
    DoRead();
  }

  // Closes the connection unless a request is being handled or has begun to arrive; called
  // when draining. A request mid-upload is let finish (bounded by its read deadline).
  void CloseIfIdle() {
    if (!busy_ && !(parser_ && parser_->got_some())) Close();
  }

  void Close() {
    deadline_ns_ = 0;
    if (!socket_.is_open()) return;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // Called by the worker's sweeper: closes the connection if its deadline has passed.
  void CloseIfOverdue(std::int64_t now_ns) {
    if (deadline_ns_ != 0 && now_ns > deadline_ns_) Close();
  }

 private:
  void DoRead() {
    busy_ = false;
    if (worker_.draining) {
      Close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(impl_.options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(impl_.options.max_header_bytes));
    deadline_ns_ = SteadyNs() + impl_.options.read_timeout_ms * 1'000'000;
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               self->OnHeader(ec);
                             });
  }

  // Header read: a body-less request is complete; otherwise answer "Expect: 100-continue" (curl
  // sends it for bodies over 1 KiB and would wait a second for it) and read the body.
  void OnHeader(beast::error_code ec) {
    // Draining may have closed the connection after its bytes were read but before this ran:
    // the request is dropped unhandled, since no response could reach the client.
    if (!ec && !socket_.is_open()) ec = asio::error::operation_aborted;
    if (ec || parser_->is_done()) {
      deadline_ns_ = 0;
      OnRead(ec);
      return;
    }
    auto& msg = parser_->get();
    auto expect = msg.find(bhttp::field::expect);
    if (expect != msg.end() && beast::iequals(expect->value(), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) {
                            self->deadline_ns_ = 0;
                            self->Close();
                            return;
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->deadline_ns_ = 0;
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    std::int64_t received_at = SteadyNs();
    if (!ec && !socket_.is_open()) ec = asio::error::operation_aborted;  // see OnHeader
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        FailAndClose(MakeError(Code::kPayloadTooLarge,
                               "Request body exceeds the limit of " +
                                   std::to_string(impl_.options.max_body_bytes) + " bytes"));
      } else if (ec == bhttp::error::header_limit) {
        FailAndClose(MakeError(Code::kHeadersTooLarge));
      } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        FailAndClose(MakeError(Code::kBadRequest, "Malformed HTTP request: " + ec.message()));
      } else {
        Close();  // end of stream, timeout, reset, or cancelled by shutdown
      }
      return;
    }
    busy_ = true;
    auto& msg = parser_->get();
    Request req;
    req.received_at_ns = received_at;
    req.method = ToMethod(msg.method());
    req.target = std::string_view(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string_view::npos) req.query = req.target.substr(q + 1);
    req.body = std::move(msg.body());
    auto header = [&](bhttp::field f) -> std::string_view {
      auto it = msg.find(f);
      return it == msg.end() ? std::string_view() : std::string_view(it->value());
    };
    req.authorization = header(bhttp::field::authorization);
    req.cookie = header(bhttp::field::cookie);
    req.origin = header(bhttp::field::origin);
    req.host = header(bhttp::field::host);
    req.content_type = header(bhttp::field::content_type);
    req.user_agent = header(bhttp::field::user_agent);
    {
      auto it = msg.find("Sec-Fetch-Site");
      if (it != msg.end()) req.sec_fetch_site = std::string_view(it->value());
    }
    if (req.method != Method::kGet && req.method != Method::kHead) {
      auto it = msg.find("Idempotency-Key");
      if (it != msg.end()) req.idempotency_key = std::string_view(it->value());
    }
    // Only these endpoints read Accept (/auth/verify: a browser gets a page, not JSON); other
    // requests skip the search.
    if (req.path == "/mcp" || req.path == "/auth/verify") req.accept = header(bhttp::field::accept);
    if (req.path == "/mcp") {  // only the MCP endpoint reads these; other requests skip the search
      auto it = msg.find("Mcp-Session-Id");
      if (it != msg.end()) req.mcp_session_id = std::string_view(it->value());
      it = msg.find("MCP-Protocol-Version");
      if (it != msg.end()) req.mcp_protocol_version = std::string_view(it->value());
    }
    {
      auto it = msg.find("X-Request-Id");
      if (it != msg.end() && ValidRequestId(it->value())) {
        req.request_id = std::string(it->value());
      } else {
        req.request_id = NewRequestId();
      }
    }
    req.remote_ip = remote_ip_;
    keep_alive_ = msg.keep_alive();
    head_ = req.method == Method::kHead;

    if (req.method == Method::kOptions) {
      Response r;
      r.status = 204;
      r.content_type.clear();
      r.Header("Access-Control-Allow-Methods", std::string(kAllowMethods));
      auto it = msg.find(bhttp::field::access_control_request_headers);
      r.Header("Access-Control-Allow-Headers",
               it != msg.end() ? std::string(it->value()) : std::string(kAllowHeaders));
      r.Header("Access-Control-Max-Age", "86400");
      Send(std::move(r), req);
      return;
    }

    Match match = impl_.router.Find(req);
    if (!match.route) {
      if (match.path_known) {
        Response r = ErrorResponse(
            MakeError(Code::kMethodNotAllowed, std::string(MethodName(req.method)) +
                                                   " is not allowed on " + std::string(req.path) +
                                                   "; allowed: " + match.allow),
            req.request_id, impl_.base_url);
        r.Header("Allow", match.allow);
        Send(std::move(r), req);
      } else {
        Send(ErrorResponse(MakeError(Code::kNotFound,
                                     "No such path: " + std::string(req.path.substr(0, 200))),
                           req.request_id, impl_.base_url),
             req);
      }
      return;
    }
    const Route* route = match.route;
    if (route->dispatch == Dispatch::kInline) {
      Response r = Invoke(*route, req);
      Send(std::move(r), req);
      return;
    }
    // The views in the request stay valid: the parser is not reset until the response is sent.
    auto shared_req = std::make_shared<Request>(std::move(req));
    asio::post(impl_.pool, [self = shared_from_this(), route, shared_req]() mutable {
      Response r = self->Invoke(*route, *shared_req);
      auto executor = self->socket_.get_executor();
      asio::post(executor, [self = std::move(self), shared_req = std::move(shared_req),
                            r = std::move(r)]() mutable { self->Send(std::move(r), *shared_req); });
    });
  }

  Response Invoke(const Route& route, Request& req) {
    try {
      return route.handler(req);
    } catch (const std::exception& e) {
      impl_.logger.Error("handler failed on " + std::string(req.path) + " (" + req.request_id +
                         "): " + e.what());
    } catch (...) {
      impl_.logger.Error("handler failed on " + std::string(req.path) + " (" + req.request_id +
                         "): unknown exception");
    }
    return ErrorResponse(MakeError(Code::kServerError), req.request_id, impl_.base_url);
  }

  void FailAndClose(const Error& error) {
    keep_alive_ = false;
    linger_ = true;
    busy_ = true;
    Request req;
    req.request_id = NewRequestId();
    Send(ErrorResponse(error, req.request_id, impl_.base_url), req);
  }

  void Send(const Response& r, const Request& req) {
    bool keep_alive = keep_alive_ && !worker_.draining;
    // One contiguous buffer: status line, headers, body. Its capacity is reused across the
    // requests of this connection.
    std::string& out = out_;
    out.clear();
    out += "HTTP/1.1 ";
    AppendInt(out, r.status);
    out += ' ';
    out += bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    out += "\r\nServer: agentgate\r\n";
    if (!r.content_type.empty()) {
      out += "Content-Type: ";
      out += r.content_type;
      out += "\r\n";
    }
    out += "X-Request-Id: ";
    out += req.request_id;
    out += "\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ";
    out += kExposeHeaders;
    out += "\r\n";
    for (const auto& [name, value] : r.headers) {
      out += name;
      out += ": ";
      // Header values never carry line breaks.
      for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
      out += "\r\n";
    }
    if (!keep_alive) out += "Connection: close\r\n";
    bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (!no_body) {
      out += "Content-Length: ";
      AppendInt(out, static_cast<std::int64_t>(r.body.size()));
      out += "\r\n";
    }
    out += "\r\n";
    if (!head_ && !no_body) out += r.body;

    if (impl_.options.access_log && impl_.logger.Enabled(LogLevel::kInfo)) {
      double ms = static_cast<double>(SteadyNs() - req.received_at_ns) / 1e6;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3fms", ms);
      impl_.logger.Info(std::string(MethodName(req.method)) + " " + std::string(req.path) + " " +
                        std::to_string(r.status) + " " + buf + " " + req.request_id);
    }
    deadline_ns_ = SteadyNs() + impl_.options.read_timeout_ms * 1'000'000;
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->deadline_ns_ = 0;
                        if (!ec && self->linger_) {
                          self->Linger();
                          return;
                        }
                        if (ec || !keep_alive) {
                          self->Close();
                          return;
                        }
                        self->DoRead();
                      });
  }

  // After an error response to a request whose body was not read (too large, malformed), the
  // client may still be sending. Closing now would make the kernel answer with a reset that can
  // destroy our response before the client reads it; so stop sending, and read and discard what
  // still arrives, for a bounded time and size, before closing.
  void Linger() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    deadline_ns_ = SteadyNs() + 2'000'000'000LL;
    DrainSome();
  }

  void DrainSome() {
    socket_.async_read_some(
        asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ > kMaxLingerBytes) {
            self->Close();
            return;
          }
          self->DrainSome();
        });
  }

  static void AppendInt(std::string& out, std::int64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  }

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string out_;
  std::int64_t deadline_ns_ = 0;  // steady ns; 0 while no read or write is pending
  bool linger_ = false;
  std::size_t drained_ = 0;
  std::array<char, 16384> scratch_{};
  static constexpr std::size_t kMaxLingerBytes = 64 << 20;
  Server::Impl& impl_;
  Worker& worker_;
  std::string remote_ip_;
  bool keep_alive_ = true;
  bool head_ = false;
  bool busy_ = false;
};

void Server::Impl::Accept() {
  Worker& target = *workers[next_worker];
  next_worker = (next_worker + 1) % workers.size();
  acceptor->async_accept(target.ioc, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      logger.Warn("accept failed: " + ec.message());
    } else {
      asio::post(target.ioc, [this, &target, s = std::move(socket)]() mutable {
        if (target.draining) return;
        std::make_shared<Session>(std::move(s), *this, target)->Start();
      });
    }
    if (acceptor->is_open()) Accept();
  });
}

Server::Server(ServerOptions options, const Router& router, Logger& logger)
    : impl_(std::make_unique<Impl>(std::move(options), router, logger)) {
  int n = impl_->options.threads > 0 ? impl_->options.threads : 1;
  for (int i = 0; i < n; ++i) impl_->workers.push_back(std::make_unique<Worker>());
}

Server::~Server() {
  try {
    Stop(std::chrono::milliseconds(0));
  } catch (...) {  // a destructor must not throw; Stop only fails if the system is failing
  }
}

Status Server::Bind() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) {
    return MakeError(Code::kInvalidField,
                     "Invalid listen address '" + impl_->options.host + "': " + ec.message());
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.emplace(impl_->workers[0]->ioc);
  auto& acc = *impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(Code::kServerError, "Cannot listen on " + impl_->options.host + ":" +
                                             std::to_string(impl_->options.port) + ": " +
                                             ec.message());
  }
  impl_->port = acc.local_endpoint().port();
  return Ok();
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::SetBaseUrl(std::string base_url) { impl_->base_url = std::move(base_url); }

namespace {

void ScheduleSweep(Worker& worker) {
  worker.sweeper.expires_after(std::chrono::milliseconds(250));
  worker.sweeper.async_wait([&worker](beast::error_code ec) {
    if (ec) return;
    std::int64_t now = SteadyNs();
    std::vector<Session*> all(worker.sessions.begin(), worker.sessions.end());
    for (Session* s : all) s->CloseIfOverdue(now);
    ScheduleSweep(worker);
  });
}

}  // namespace

void Server::Run() {
  impl_->Accept();
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    asio::post(worker->ioc, [worker] { ScheduleSweep(*worker); });
  }
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    worker->thread = std::thread([worker, this] {
      for (;;) {
        try {
          worker->ioc.run();
          return;
        } catch (const std::exception& e) {
          impl_->logger.Error(std::string("network thread error: ") + e.what());
        }
      }
    });
  }
}

void Server::Stop(std::chrono::milliseconds drain_timeout) {
  if (impl_->stopped.exchange(true)) return;
  bool running = !impl_->workers.empty() && impl_->workers[0]->thread.joinable();
  auto deadline = std::chrono::steady_clock::now() + drain_timeout;
  // Every worker marks itself draining and closes its idle connections; worker 0 first closes
  // the acceptor. Stop waits until each has done so, because a worker stopped below with these
  // steps still queued (Stop right after Run, before the threads ran) would leave them undone.
  auto drained = std::make_shared<std::atomic<std::size_t>>(0);
  for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
    Worker* worker = impl_->workers[i].get();
    asio::post(worker->ioc, [this, worker, drained, first = i == 0] {
      if (first && impl_->acceptor) {
        beast::error_code ec;
        impl_->acceptor->close(ec);
      }
      worker->draining = true;
      std::vector<Session*> idle(worker->sessions.begin(), worker->sessions.end());
      for (Session* s : idle) s->CloseIfIdle();
      drained->fetch_add(1);
    });
  }
  while (running &&
         (drained->load() < impl_->workers.size() || impl_->active_sessions.load() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (impl_->active_sessions.load() > 0) {
    for (auto& w : impl_->workers) {
      Worker* worker = w.get();
      asio::post(worker->ioc, [worker] {
        std::vector<Session*> all(worker->sessions.begin(), worker->sessions.end());
        for (Session* s : all) s->Close();
      });
    }
  }
  impl_->pool.join();
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    asio::post(worker->ioc, [worker] { worker->sweeper.cancel(); });
    w->guard.reset();
  }
  // Let the workers finish closing; then stop whatever is left.
  auto hard_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (running && impl_->active_sessions.load() > 0 &&
         std::chrono::steady_clock::now() < hard_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& w : impl_->workers) {
    w->ioc.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  // The threads are gone: close here whatever they left open, so that no client waits on a
  // stopped server until it is destroyed.
  beast::error_code ec;
  if (impl_->acceptor) impl_->acceptor->close(ec);
  for (auto& w : impl_->workers) {
    std::vector<Session*> all(w->sessions.begin(), w->sessions.end());
    for (Session* s : all) s->Close();
  }
}

}  // namespace agentgate::http
