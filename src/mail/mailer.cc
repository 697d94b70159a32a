#include "mail/mailer.h"

#include <curl/curl.h>

#include <cstring>
#include <random>

#include "core/time.h"

namespace agentgate::mail {
namespace {

struct UploadState {
  const std::string* data;
  std::size_t offset = 0;
};

std::size_t ReadCallback(char* buffer, std::size_t size, std::size_t nitems, void* userdata) {
  auto* state = static_cast<UploadState*>(userdata);
  std::size_t room = size * nitems;
  std::size_t left = state->data->size() - state->offset;
  std::size_t n = left < room ? left : room;
  std::memcpy(buffer, state->data->data() + state->offset, n);
  state->offset += n;
  return n;
}

// Strips CR and LF so a header value cannot inject headers.
std::string HeaderSafe(std::string s) {
  std::erase_if(s, [](char c) { return c == '\r' || c == '\n'; });
  return s;
}

std::string RfcDate(std::int64_t now_ms) {
  std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

std::string FormatMessage(const Message& message, const std::string& from, std::int64_t now_ms,
                          const std::string& message_id) {
  std::string out;
  out += "Date: " + RfcDate(now_ms) + "\r\n";
  out += "From: " + HeaderSafe(from) + "\r\n";
  out += "To: " + HeaderSafe(message.to) + "\r\n";
  out += "Subject: " + HeaderSafe(message.subject) + "\r\n";
  out += "Message-ID: <" + HeaderSafe(message_id) + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n\r\n";
  // Normalise line ends to CRLF; dot-stuffing is done by libcurl.
  for (std::size_t i = 0; i < message.text.size(); ++i) {
    char c = message.text[i];
    if (c == '\n' && (i == 0 || message.text[i - 1] != '\r')) out += '\r';
    out += c;
  }
  out += "\r\n";
  return out;
}

SmtpMailer::SmtpMailer(SmtpOptions options, Logger& logger)
    : options_(std::move(options)), logger_(logger) {
  thread_ = std::thread([this] { Loop(); });
}

SmtpMailer::~SmtpMailer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SmtpMailer::Enqueue(Message message) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= 10'000) {
      logger_.Warn("mail queue full; dropping a message to " + message.to);
      return;
    }
    queue_.push_back(std::move(message));
  }
  cv_.notify_one();
}

void SmtpMailer::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    Message m = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Status s = SendNow(m);
    if (!s.ok()) {
      logger_.Warn("mail to " + m.to + " failed: " + std::string(s.error().Message()));
    } else {
      logger_.Info("mail sent to " + m.to);
    }
    lock.lock();
  }
}

Status SmtpMailer::SendNow(const Message& message) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  SystemClock clock;
  std::int64_t now = clock.NowMs();
  std::string domain = "agentgate.local";
  if (auto at = options_.from.find('@'); at != std::string::npos) {
    domain = options_.from.substr(at + 1);
    while (!domain.empty() && domain.back() == '>') domain.pop_back();
  }
  std::string id = std::to_string(now) + "." + std::to_string(rng()) + "@" + domain;
  std::string payload = FormatMessage(message, options_.from, now, id);
  UploadState state{&payload};

  CURL* curl = curl_easy_init();
  if (!curl) return MakeError(Code::kServerError, "curl_easy_init failed");
  auto envelope = [](std::string s) {
    auto lt = s.find('<');
    auto gt = s.find('>');
    if (lt != std::string::npos && gt != std::string::npos && gt > lt) {
      s = s.substr(lt + 1, gt - lt - 1);
    }
    return "<" + s + ">";
  };
  std::string mail_from = envelope(options_.from);
  curl_slist* rcpt = curl_slist_append(nullptr, envelope(message.to).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadCallback);
  curl_easy_setopt(curl, CURLOPT_READDATA, &state);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return MakeError(Code::kServerError, std::string("SMTP: ") + curl_easy_strerror(rc));
  }
  return Ok();
}

}  // namespace agentgate::mail
