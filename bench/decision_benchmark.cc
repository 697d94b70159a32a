// In-process decision benchmark: PermissionIndex with 1,000,000 active grants.
//
// Builds an index of 100,000 agents with 10 grants each (a fifth of them scoped, a third expiring
// in the future), then measures one decision per iteration for a random (agent, action) taken
// from a pre-generated array, so the hash map, the agents' grant vectors and the digests are
// touched the way a busy server touches them (mostly cache misses), not the same hot line.
//
//   Decide/allowed        Decide() for a granted action
//   Decide/miss           Decide() for an action the agent does not have
//   Check/digest          Check() with the secret's SHA-256 precomputed (digest compare only)
//   Check/sha256          Check() including SHA-256 of the presented secret, as GET /permission/check
//   Check/context_allowed Check() + SHA-256 with a context evaluated against the grant's scope,
//                         as POST /permission/check (context satisfies the scope)
//   Check/context_denied  the same with a context that breaks max_amount (denial with reason)
//   Check/digest threads:2  Check/digest on two threads at once (scaling; informational)
//   Index/DrainLastSeen   the once-a-second last_seen drain of the bookkeeping flush (informational)
//
// Target (DESIGN.md): under 1 µs median. Run with
//   agentgate_bench_decision --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// bench/run.sh does, and reads the medians.
//
// Options before the benchmark flags: --agents N (default 100000), --grants-per-agent N
// (default 10).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "authz/permission_index.h"
#include "core/json.h"
#include "crypto/hash.h"

namespace agentgate::bench {
namespace {

using authz::PermissionIndex;

// Actions an agent may hold; each agent gets a window of them, so every action is common and a
// miss is an action that exists for other agents.
const std::vector<std::string>& ActionVocabulary() {
  static const std::vector<std::string> actions = [] {
    const char* verbs[] = {"read", "write", "send", "delete", "create", "approve", "list", "pay"};
    const char* objects[] = {"email", "calendar", "files", "invoices",
                             "contacts", "tickets", "repo", "payments"};
    std::vector<std::string> out;
    for (const char* v : verbs) {
      for (const char* o : objects) out.push_back(std::string(v) + ":" + o);
    }
    return out;
  }();
  return actions;
}

std::string Hex(std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kHex[v & 15];
  return s;
}

std::string FakeUuid(std::mt19937_64& rng) {
  std::string a = Hex(rng(), 16), b = Hex(rng(), 16);
  return a.substr(0, 8) + "-" + a.substr(8, 4) + "-4" + a.substr(13, 3) + "-a" + b.substr(0, 3) +
         "-" + b.substr(3, 12);
}

struct AgentData {
  std::string id;
  std::string secret;
  crypto::Digest digest{};
  std::vector<int> granted;   // indexes into ActionVocabulary()
  std::vector<int> scoped;    // the granted ones with a scope
  int missing = 0;            // an action it does not hold
};

// One pre-drawn query. Pointers into the fixture, so the loop does no allocation of its own.
// One check as the server sees it: the agent id and secret are bytes of the request, already in
// cache, so they are held inline here (read sequentially) rather than behind pointers into the
// agents' data, which would add two cache misses per query that the HTTP path does not have.
struct Query {
  Query(const std::string& id, const std::string& sk, const crypto::Digest& d,
        const std::string* act)
      : digest(d), action(act) {
    agent_len = static_cast<std::uint8_t>(std::min(id.size(), sizeof agent_buf));
    std::memcpy(agent_buf, id.data(), agent_len);
    secret_len = static_cast<std::uint8_t>(std::min(sk.size(), sizeof secret_buf));
    std::memcpy(secret_buf, sk.data(), secret_len);
  }
  std::string_view agent_id() const { return {agent_buf, agent_len}; }
  std::string_view secret() const { return {secret_buf, secret_len}; }

  char agent_buf[24];
  std::uint8_t agent_len;
  char secret_buf[72];
  std::uint8_t secret_len;
  crypto::Digest digest;
  const std::string* action;
};

class Fixture {
 public:
  Fixture(int agent_count, int grants_per_agent) {
    const auto& vocab = ActionVocabulary();
    if (grants_per_agent > static_cast<int>(vocab.size()) - 1) {
      grants_per_agent = static_cast<int>(vocab.size()) - 1;
    }
    std::mt19937_64 rng(20240501);
    now_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    const std::string granters[][2] = {{"usr_0000000000000001", "alice@example.com"},
                                       {"usr_0000000000000002", "bob@example.com"},
                                       {"usr_0000000000000003", "carol@example.com"}};
    auto start = std::chrono::steady_clock::now();
    agents_.resize(static_cast<std::size_t>(agent_count));
    for (int i = 0; i < agent_count; ++i) {
      AgentData& a = agents_[static_cast<std::size_t>(i)];
      a.id = "ap_" + Hex(rng(), 16);
      a.secret = "sk_ap_" + Hex(rng(), 16) + Hex(rng(), 16) + Hex(rng(), 16) + Hex(rng(), 16);
      a.digest = crypto::Sha256(a.secret);
      authz::AgentInfo info;
      info.id = a.id;
      info.name = "bench agent " + std::to_string(i);
      info.developer_email = "dev" + std::to_string(i % 1000) + "@example.com";
      info.secret_hash = a.digest;
      info.created_at_ms = now_ms_ - 86'400'000;
      index_.PutAgent(info);

      // A window of the vocabulary: grants_per_agent consecutive actions from a random start;
      // the action just past the window is the miss.
      int first = static_cast<int>(rng() % vocab.size());
      for (int j = 0; j < grants_per_agent; ++j) {
        int action = (first + j) % static_cast<int>(vocab.size());
        authz::GrantInfo g;
        g.id = FakeUuid(rng);
        g.agent_id = a.id;
        g.action = vocab[static_cast<std::size_t>(action)];
        const auto& granter = granters[rng() % 3];
        g.granted_by = granter[0];
        g.granted_by_email = granter[1];
        g.created_at_ms = now_ms_ - 3'600'000;
        std::uint64_t r = rng() % 100;
        if (r < 30) g.expires_at_ms = now_ms_ + 86'400'000 * static_cast<std::int64_t>(1 + r % 30);
        if (rng() % 5 == 0) {
          g.scope_json = "{\"max_amount\":" + std::to_string(200 + rng() % 800) +
                         ",\"allowed_currency\":[\"USD\",\"EUR\",\"GBP\"],\"note\":\"bench\"}";
          a.scoped.push_back(action);
        }
        if (!index_.AddGrant(g)) {
          std::fprintf(stderr, "AddGrant failed\n");
          std::exit(1);
        }
        a.granted.push_back(action);
      }
      a.missing = (first + grants_per_agent) % static_cast<int>(vocab.size());
    }
    build_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();

    // Query streams, drawn once.
    auto draw = [&](auto pick_action) {
      std::vector<Query> qs;
      qs.reserve(kQueries);
      while (qs.size() < kQueries) {
        const AgentData& a = agents_[rng() % agents_.size()];
        int action = pick_action(a);
        if (action < 0) continue;
        qs.emplace_back(a.id, a.secret, a.digest, &vocab[static_cast<std::size_t>(action)]);
      }
      return qs;
    };
    allowed_ = draw([&](const AgentData& a) {
      return a.granted[rng() % a.granted.size()];
    });
    miss_ = draw([](const AgentData& a) { return a.missing; });
    scoped_ = draw([&](const AgentData& a) {
      return a.scoped.empty() ? -1 : a.scoped[rng() % a.scoped.size()];
    });
    context_ok_ = json::parse(R"({"amount":150,"currency":"EUR"})").as_object();
    context_bad_ = json::parse(R"({"amount":5000,"currency":"EUR"})").as_object();
  }

  static constexpr std::size_t kQueries = 1 << 18;  // power of two: index with a mask

  PermissionIndex& index() { return index_; }
  std::int64_t now_ms() const { return now_ms_; }
  std::int64_t build_ms() const { return build_ms_; }
  const std::vector<Query>& allowed() const { return allowed_; }
  const std::vector<Query>& miss() const { return miss_; }
  const std::vector<Query>& scoped() const { return scoped_; }
  const json::object& context_ok() const { return context_ok_; }
  const json::object& context_bad() const { return context_bad_; }

 private:
  PermissionIndex index_;
  std::vector<AgentData> agents_;
  std::int64_t now_ms_ = 0;
  std::int64_t build_ms_ = 0;
  std::vector<Query> allowed_, miss_, scoped_;
  json::object context_ok_, context_bad_;
};

// Fails the benchmark (instead of measuring the wrong path) when a decision is not as expected.
bool Expect(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError(what);
  return ok;
}

void RegisterAll(Fixture& f) {
  // Each thread walks its own stretch of the query array.
  auto start_of = [](const benchmark::State& state) {
    return static_cast<std::size_t>(state.thread_index()) * 7919u * 64u;
  };
  constexpr std::size_t kMask = Fixture::kQueries - 1;

  benchmark::RegisterBenchmark("Decide/allowed", [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.allowed()[i++ & kMask];
      authz::Decision d = f.index().Decide(q.agent_id(), *q.action, f.now_ms(), nullptr);
      if (!Expect(state, d.allowed, "expected allowed")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  });
  benchmark::RegisterBenchmark("Decide/miss", [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.miss()[i++ & kMask];
      authz::Decision d = f.index().Decide(q.agent_id(), *q.action, f.now_ms(), nullptr);
      if (!Expect(state, !d.allowed && d.auth == authz::AuthResult::kOk, "expected a miss")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  });
  auto check_digest = [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.allowed()[i++ & kMask];
      authz::Decision d = f.index().Check(q.agent_id(), q.digest, *q.action, f.now_ms(), nullptr);
      if (!Expect(state, d.allowed, "expected allowed")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  };
  benchmark::RegisterBenchmark("Check/digest", check_digest);
  benchmark::RegisterBenchmark("Check/sha256", [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.allowed()[i++ & kMask];
      authz::Decision d = f.index().Check(q.agent_id(), crypto::Sha256(q.secret()), *q.action,
                                          f.now_ms(), nullptr);
      if (!Expect(state, d.allowed, "expected allowed")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  });
  benchmark::RegisterBenchmark("Check/context_allowed", [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.scoped()[i++ & kMask];
      authz::Decision d = f.index().Check(q.agent_id(), crypto::Sha256(q.secret()), *q.action,
                                          f.now_ms(), &f.context_ok());
      if (!Expect(state, d.allowed, "expected allowed by scope")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  });
  benchmark::RegisterBenchmark("Check/context_denied", [&f, start_of](benchmark::State& state) {
    std::size_t i = start_of(state);
    for (auto _ : state) {
      const Query& q = f.scoped()[i++ & kMask];
      authz::Decision d = f.index().Check(q.agent_id(), crypto::Sha256(q.secret()), *q.action,
                                          f.now_ms(), &f.context_bad());
      if (!Expect(state, !d.allowed && !d.constraint.empty(), "expected a scope denial")) break;
      benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
  });
  // Two threads on two cores: shows how decisions scale when network threads decide
  // concurrently (shared shard locks). Informational; the target is the single-thread median.
  benchmark::RegisterBenchmark("Check/digest", check_digest)->Threads(2)->UseRealTime();
  // Not a decision: the server's bookkeeping flush calls DrainLastSeen() once per flush interval
  // (1 s) on the same cores as the checks. Measured with one agent seen since the last drain,
  // the common case under a single-agent load. Informational, one call per iteration.
  benchmark::RegisterBenchmark("Index/DrainLastSeen", [&f](benchmark::State& state) {
    const Query& q = f.allowed()[0];
    for (auto _ : state) {
      state.PauseTiming();
      (void)f.index().Check(q.agent_id(), q.digest, *q.action, f.now_ms() + 1000 * state.iterations(),
                            nullptr);
      state.ResumeTiming();
      auto drained = f.index().DrainLastSeen();
      benchmark::DoNotOptimize(drained);
    }
  })->Unit(benchmark::kMicrosecond);
}

// Reads and removes our own --agents/--grants-per-agent flags from argv.
int TakeIntFlag(int& argc, char** argv, const char* name, int fallback) {
  int value = fallback;
  std::size_t len = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    std::string_view v;
    int consumed = 0;
    if (arg == name && i + 1 < argc) {
      v = argv[i + 1];
      consumed = 2;
    } else if (arg.size() > len + 1 && arg.substr(0, len) == name && arg[len] == '=') {
      v = arg.substr(len + 1);
      consumed = 1;
    }
    if (consumed == 0) continue;
    value = std::atoi(std::string(v).c_str());
    for (int j = i; j + consumed < argc; ++j) argv[j] = argv[j + consumed];
    argc -= consumed;
    break;
  }
  return value;
}

}  // namespace
}  // namespace agentgate::bench

int main(int argc, char** argv) {
  using agentgate::bench::Fixture;
  int agents = agentgate::bench::TakeIntFlag(argc, argv, "--agents", 100'000);
  int grants = agentgate::bench::TakeIntFlag(argc, argv, "--grants-per-agent", 10);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Fixture fixture(agents, grants);
  std::fprintf(stderr, "index: %zu agents, %zu grants, built in %lld ms\n",
               fixture.index().AgentCount(), fixture.index().GrantCount(),
               static_cast<long long>(fixture.build_ms()));
  benchmark::AddCustomContext("agents", std::to_string(fixture.index().AgentCount()));
  benchmark::AddCustomContext("grants", std::to_string(fixture.index().GrantCount()));
  agentgate::bench::RegisterAll(fixture);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
