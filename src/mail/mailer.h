// Outgoing mail for sign-in links.
//
// SmtpMailer sends over SMTP with libcurl on its own thread, so a request never waits for (or
// reveals by its timing) the mail server. Every SMTP exchange has a deadline.
// Thread safety: Enqueue() is safe from any thread. The destructor sends what is queued (each
// message still bounded by its deadline) and joins the thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "core/log.h"
#include "core/result.h"

namespace agentgate::mail {

struct Message {
  std::string to;
  std::string subject;
  std::string text;
};

class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual void Enqueue(Message message) = 0;
};

struct SmtpOptions {
  std::string url;    // smtp://host:port or smtps://host:port (user:pass@ allowed)
  std::string from;   // envelope and header sender
  std::int64_t timeout_ms = 15'000;
};

class SmtpMailer final : public Mailer {
 public:
  SmtpMailer(SmtpOptions options, Logger& logger);
  ~SmtpMailer() override;
  void Enqueue(Message message) override;

  // Sends one message now, on the calling thread.
  Status SendNow(const Message& message);

 private:
  void Loop();

  SmtpOptions options_;
  Logger& logger_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// RFC 5322 message text with CRLF line ends; exposed for tests.
std::string FormatMessage(const Message& message, const std::string& from,
                          std::int64_t now_ms, const std::string& message_id);

}  // namespace agentgate::mail
