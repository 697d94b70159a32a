#include "app/serve.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "api/service.h"
#include "app/config.h"
#include "crypto/random.h"
#include "http/server.h"
#include "mail/mailer.h"
#include "store/sqlite/sqlite_store.h"

namespace agentgate::app {
namespace {

// Background work yields the CPU to request handling when both want it: at a busy server's
// check rate, writing the second's check records is a burst of work that would otherwise take
// cores from the network threads and show up as tail latency.
void LowerThreadPriority() {
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
}

// Runs periodic work (bookkeeping flush, housekeeping) on its own thread until stopped.
class Ticker {
 public:
  Ticker(api::Service& service, std::int64_t flush_ms, std::int64_t retention_ms)
      : service_(service), flush_ms_(flush_ms), retention_ms_(retention_ms) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Ticker() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    LowerThreadPriority();
    auto next_housekeeping = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(flush_ms_), [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      (void)service_.Flush();
      service_.EmitExpiredGrants();
      service_.EmitExpiredRequests();
      if (std::chrono::steady_clock::now() >= next_housekeeping) {
        service_.Housekeeping(retention_ms_);
        next_housekeeping = std::chrono::steady_clock::now() + std::chrono::hours(1);
      }
      lock.lock();
    }
  }

  api::Service& service_;
  std::int64_t flush_ms_;
  std::int64_t retention_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string HostForUrl(const std::string& host) {
  if (host.find(':') != std::string::npos) return "[" + host + "]";
  if (host == "0.0.0.0") return "127.0.0.1";
  return host;
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  auto parsed = ParseServeArgs(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "agentgate serve: %s\n", std::string(parsed.error().Message()).c_str());
    return 2;
  }
  ServeConfig config = std::move(parsed.value());
  if (config.help) {
    std::fputs(ServeHelp().c_str(), stdout);
    return 0;
  }

  // Signals are taken by sigwait on this thread only; every thread started later inherits the
  // mask, so no handler runs at an arbitrary point.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  Logger logger(config.log_level);
  SystemClock clock;
  crypto::OsRandom random;

  std::error_code fs_error;
  std::filesystem::create_directories(config.data_dir, fs_error);
  if (fs_error) {
    logger.Error("cannot create data directory " + config.data_dir + ": " + fs_error.message());
    return 1;
  }
  // One server per data directory: the in-memory index assumes it is the only writer.
  std::string lock_path = (std::filesystem::path(config.data_dir) / "agentgate.lock").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    logger.Error("another agentgate is already serving " + config.data_dir +
                 " (cannot lock " + lock_path + "); stop it or choose another --data-dir");
    if (lock_fd >= 0) ::close(lock_fd);
    return 1;
  }
  std::string db_path = (std::filesystem::path(config.data_dir) / "agentgate.db").string();
  auto opened = store::SqliteStore::Open(db_path);
  if (!opened.ok()) {
    logger.Error("cannot open " + db_path + ": " + std::string(opened.error().Message()));
    return 1;
  }
  std::unique_ptr<store::SqliteStore> store = std::move(opened.value());

  std::unique_ptr<mail::SmtpMailer> mailer;
  if (!config.smtp_url.empty()) {
    mailer = std::make_unique<mail::SmtpMailer>(
        mail::SmtpOptions{config.smtp_url, config.mail_from, 15'000}, logger);
  }

  // Secrets the server must read back are sealed with keys kept next to the database (or given
  // in the environment), never in it: a copy of the database alone reveals none of them.
  const char* configured_key = std::getenv("AGENTGATE_MASTER_KEY");
  const char* previous_keys = std::getenv("AGENTGATE_PREVIOUS_MASTER_KEYS");
  auto sealer = crypto::Keyring::Load(
      config.data_dir, configured_key != nullptr ? configured_key : "",
      crypto::Keyring::SplitKeyList(previous_keys != nullptr ? previous_keys : ""), random);
  if (!sealer.ok()) {
    logger.Error(std::string(sealer.error().Message()));
    return 1;
  }

  api::Service service(config.service, *store, clock, random, logger, mailer.get());
  service.SetSealer(&*sealer);
  api::WebhookDispatcher dispatcher(config.webhooks, *store, *sealer, clock, random, logger);
  service.SetWebhookNotifier([&dispatcher] { dispatcher.Notify(); });
  auto load_start = std::chrono::steady_clock::now();
  if (Status s = service.Load(); !s.ok()) {
    logger.Error("cannot load state: " + std::string(s.error().Message()));
    return 1;
  }
  auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - load_start)
                     .count();
  logger.Info("loaded " + std::to_string(service.index().AgentCount()) + " agents and " +
              std::to_string(service.index().GrantCount()) + " active grants in " +
              std::to_string(load_ms) + " ms");

  http::Router router;
  service.RegisterRoutes(router);
  http::Server server(config.server, router, logger);
  if (Status s = server.Bind(); !s.ok()) {
    logger.Error(std::string(s.error().Message()));
    return 1;
  }
  std::string listen_url =
      "http://" + HostForUrl(config.server.host) + ":" + std::to_string(server.port());
  std::string base_url = config.base_url.empty() ? listen_url : config.base_url;
  service.SetBaseUrl(base_url);
  server.SetBaseUrl(service.base_url());
  server.Run();
  dispatcher.Start();
  if (config.webhooks.allow_private_egress) {
    logger.Warn("--allow-private-egress: webhooks may be sent to private and loopback addresses");
  }
  Ticker ticker(service, config.flush_interval_ms, config.check_retention_ms);

  logger.Info("agentgate " + std::string(api::kVersion) + " listening on " + listen_url +
              " (data: " + db_path + ", " + std::to_string(config.server.threads) +
              " threads)");
  if (mailer) {
    logger.Info("sign in: POST " + base_url +
                "/auth/magic-link {\"email\": \"you@example.com\"}; the link is mailed via " +
                "SMTP");
  } else {
    logger.Info("sign in: curl -X POST " + base_url +
                "/auth/magic-link -H 'Content-Type: application/json' -d "
                "'{\"email\":\"you@example.com\"}' and open the link printed here (no SMTP "
                "configured)");
  }

  int received = 0;
  sigwait(&signals, &received);
  logger.Info(std::string("received ") + (received == SIGINT ? "SIGINT" : "SIGTERM") +
              "; draining requests");
  server.Stop(std::chrono::milliseconds(config.drain_timeout_ms));
  ticker.Stop();
  dispatcher.Stop();
  if (Status s = service.Flush(); !s.ok()) {
    logger.Error("final flush failed");
    return 1;
  }
  store.reset();
  mailer.reset();
  ::close(lock_fd);
  logger.Info("stopped");
  return 0;
}

}  // namespace agentgate::app
