// SingleFlight: at most one run of a function per key at a time; callers that arrive while a run
// is in progress wait for it and share its result (Go's golang.org/x/sync/singleflight).
//
// Used for token refresh: however many requests find a connection's token expired at once, the
// token endpoint is called once. Thread safety: Do may be called from any thread. A run's
// result is shared by copy; fn must not call Do with the same key (it would wait for itself).
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace agentgate::engine {

template <class T>
class SingleFlight {
 public:
  // Runs fn, or joins the run already in progress for key. shared (optional) tells whether this
  // caller joined another's run.
  T Do(const std::string& key, const std::function<T()>& fn, bool* shared = nullptr) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      std::lock_guard lock(mu_);
      auto& slot = flights_[key];
      if (!slot) {
        slot = std::make_shared<Flight>();
        leader = true;
      }
      flight = slot;
    }
    if (shared != nullptr) *shared = !leader;
    if (!leader) {
      std::unique_lock lock(flight->mu);
      flight->done_cv.wait(lock, [&] { return flight->done; });
      if (flight->error) std::rethrow_exception(flight->error);
      return *flight->result;
    }
    std::optional<T> result;
    try {
      result.emplace(fn());
    } catch (...) {
      Finish(key, flight, std::nullopt, std::current_exception());
      throw;
    }
    Finish(key, flight, result, nullptr);
    return *std::move(result);
  }

  std::size_t InFlight() const {
    std::lock_guard lock(mu_);
    return flights_.size();
  }

 private:
  struct Flight {
    std::mutex mu;
    std::condition_variable done_cv;
    std::optional<T> result;
    std::exception_ptr error;  // what the leader threw, rethrown to its followers
    bool done = false;
  };

  void Finish(const std::string& key, const std::shared_ptr<Flight>& flight,
              const std::optional<T>& result, std::exception_ptr error) {
    {
      std::lock_guard lock(mu_);
      flights_.erase(key);
    }
    std::lock_guard lock(flight->mu);
    flight->result = result;
    flight->error = error;
    flight->done = true;
    flight->done_cv.notify_all();
  }

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace agentgate::engine
