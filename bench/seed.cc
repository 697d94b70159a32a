// agentgate_seed: fills a fresh agentgate data directory for the benchmarks.
//
//   agentgate_seed --data-dir DIR [--agents 100000] [--grants-per-agent 10] [--threads 512]
//                  [--bulk] [--email bench@example.com] [--secrets-out FILE]
//                  [--secrets-count 10000] [--force]
//
// Creates DIR/agentgate.db (the file `agentgate serve --data-dir DIR` opens): one user (the
// granter, signed in as the first admin), N agents with random ids and secrets (stored as
// SHA-256 only), and grants-per-agent grants each. Grant 0 of every agent is unscoped and never
// expires (the HTTP benchmark checks it); of the others a fifth carry a scope and about a third
// expire in 1-30 days (still active).
//
// Two ways to write the rows:
// - default: through the Store interface (InsertAgent/InsertGrant). Every call is durable and
//   the store groups concurrent calls into one commit, so the work is spread over --threads
//   callers. Measured on the 2-core benchmark machine: ~5,000 rows/s, i.e. about 4 minutes for
//   1.1M rows (see docs/benchmarks.md) -- too slow for bench/run.sh.
// - --bulk: SqliteStore::Open still creates the file and applies the server's migrations, and
//   the user is signed in through the Store; then the agents and grants go in with one raw
//   SQLite transaction (journal off: a failed seed deletes the file). KEEP kBulkInsertAgent/kBulkInsertGrant IN SYNC with kInsertAgent and
//   kInsertGrant in src/store/sqlite/sqlite_store.cc (same columns, same encodings: ms integers,
//   32-byte BLOB digests, '' for absent text). Afterwards the file is reopened through the
//   Store and its counters are checked, so a schema drift fails loudly here.
//
// --secrets-out writes "agent_id secret action" lines for the first --secrets-count agents: the
// only place the plaintext secrets exist, for wrk scripts. Keep it out of real deployments.
//
// Prints the timing on stdout. Exits non-zero on any store error.
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "store/sqlite/sqlite_store.h"

namespace agentgate::bench {
namespace {

struct Options {
  std::string data_dir;
  long agents = 100'000;
  int grants_per_agent = 10;
  int threads = 512;
  bool bulk = false;
  std::string email = "bench@example.com";
  std::string secrets_out;
  long secrets_count = 10'000;
  bool force = false;
};

constexpr const char* kUsage =
    "usage: agentgate_seed --data-dir DIR [--agents N] [--grants-per-agent N] [--threads N]\n"
    "                      [--bulk] [--email ADDRESS] [--secrets-out FILE] [--secrets-count N]\n"
    "                      [--force]\n";

// Same columns and order as kInsertAgent / kInsertGrant in src/store/sqlite/sqlite_store.cc.
constexpr const char* kBulkInsertAgent =
    "INSERT INTO agents(id, name, description, developer_email, metadata_json, secret_hash, "
    "status, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kBulkInsertGrant =
    "INSERT INTO grants(id, agent_id, action, granted_by, granted_by_email, expires_at, "
    "scope_json, metadata_json, created_at, revoked_at, revoked_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

std::optional<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    try {
      if (a == "--force") {
        o.force = true;
        continue;
      }
      if (a == "--bulk") {
        o.bulk = true;
        continue;
      }
      if (a == "-h" || a == "--help" || i + 1 >= argc) return std::nullopt;
      std::string v = argv[++i];
      if (a == "--data-dir") o.data_dir = v;
      else if (a == "--agents") o.agents = std::stol(v);
      else if (a == "--grants-per-agent") o.grants_per_agent = std::stoi(v);
      else if (a == "--threads") o.threads = std::stoi(v);
      else if (a == "--email") o.email = v;
      else if (a == "--secrets-out") o.secrets_out = v;
      else if (a == "--secrets-count") o.secrets_count = std::stol(v);
      else return std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (o.data_dir.empty() || o.agents < 1 || o.grants_per_agent < 1 || o.grants_per_agent > 63 ||
      o.threads < 1) {
    return std::nullopt;
  }
  return o;
}

// The same vocabulary as the decision benchmark: each agent holds a window of it.
std::string ActionName(int k) {
  static const char* verbs[] = {"read", "write", "send", "delete", "create", "approve", "list",
                                "pay"};
  static const char* objects[] = {"email", "calendar", "files", "invoices",
                                  "contacts", "tickets", "repo", "payments"};
  return std::string(verbs[(k / 8) % 8]) + ":" + objects[k % 8];
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// One agent and its grants, as the server would have written them.
struct Generated {
  store::AgentRecord agent;
  std::vector<store::GrantRecord> grants;
  std::string secret;
  std::string checked_action;  // grant 0: unscoped, never expires
};

class Generator {
 public:
  Generator(const store::UserRecord& granter, int grants_per_agent, std::int64_t now)
      : granter_(granter), grants_per_agent_(grants_per_agent), now_(now) {}

  Generated Make(long i, std::mt19937_64& rng, crypto::Random& random) const {
    Generated out;
    store::AgentRecord& agent = out.agent;
    agent.id = crypto::NewAgentId(random);
    out.secret = crypto::NewAgentSecret(random);
    agent.secret_hash = crypto::Sha256(out.secret);
    agent.name = "bench agent " + std::to_string(i);
    agent.description = "seeded by agentgate_seed";
    agent.developer_email = "dev" + std::to_string(i % 1000) + "@example.com";
    agent.created_at_ms = now_ - 86'400'000;
    int first = static_cast<int>(rng() % 64);
    out.checked_action = ActionName(first);
    out.grants.reserve(static_cast<std::size_t>(grants_per_agent_));
    for (int j = 0; j < grants_per_agent_; ++j) {
      store::GrantRecord g;
      g.id = crypto::NewUuid(random);
      g.agent_id = agent.id;
      g.action = ActionName(first + j);
      g.granted_by = granter_.id;
      g.granted_by_email = granter_.email;
      g.created_at_ms = now_ - 3'600'000;
      if (j > 0) {
        std::uint64_t r = rng() % 100;
        if (r < 30) g.expires_at_ms = now_ + 86'400'000 * static_cast<std::int64_t>(1 + r % 30);
        if (rng() % 5 == 0) {
          g.scope_json = "{\"max_amount\":" + std::to_string(200 + rng() % 800) +
                         ",\"allowed_currency\":[\"USD\",\"EUR\",\"GBP\"]}";
        }
      }
      out.grants.push_back(std::move(g));
    }
    return out;
  }

 private:
  store::UserRecord granter_;
  int grants_per_agent_;
  std::int64_t now_;
};

// Through the Store: many callers so the store's group commit batches their writes.
bool SeedViaStore(const Options& o, store::Store& st, const Generator& gen,
                  std::vector<std::string>& secret_lines, long& grants_written) {
  crypto::OsRandom random;
  std::atomic<long> next{0};
  std::atomic<long> grants_done{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  auto fail = [&](const char* what, const Error& e) {
    std::lock_guard lock(err_mu);
    if (!failed.exchange(true)) {
      std::fprintf(stderr, "agentgate_seed: %s: %s\n", what, std::string(e.Message()).c_str());
    }
  };
  auto worker = [&](int t) {
    std::mt19937_64 rng(0x5eed0000ULL + static_cast<std::uint64_t>(t));
    for (;;) {
      long i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= o.agents || failed.load(std::memory_order_relaxed)) return;
      Generated g = gen.Make(i, rng, random);
      if (Status s = st.InsertAgent(g.agent); !s.ok()) return fail("InsertAgent", s.error());
      for (const auto& grant : g.grants) {
        if (Status s = st.InsertGrant(grant); !s.ok()) return fail("InsertGrant", s.error());
        grants_done.fetch_add(1, std::memory_order_relaxed);
      }
      if (i < static_cast<long>(secret_lines.size())) {
        secret_lines[static_cast<std::size_t>(i)] =
            g.agent.id + " " + g.secret + " " + g.checked_action;
      }
    }
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(o.threads));
  for (int t = 0; t < o.threads; ++t) threads.emplace_back(worker, t);
  // Progress on stderr every 10 s, so a slow disk is visible.
  std::atomic<bool> done{false};
  std::thread progress([&] {
    auto last = std::chrono::steady_clock::now();
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(10)) {
        last = std::chrono::steady_clock::now();
        std::fprintf(stderr, "  ... %ld agents, %ld grants after %.0f s\n",
                     std::min(next.load(), o.agents), grants_done.load(),
                     Seconds(last - start));
      }
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  progress.join();
  grants_written = grants_done.load();
  return !failed.load();
}

bool SqlOk(sqlite3* db, int rc, const char* what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return true;
  std::fprintf(stderr, "agentgate_seed: %s: %s\n", what, sqlite3_errmsg(db));
  return false;
}

// One raw transaction into the schema the Store just created.
bool SeedBulk(const Options& o, const std::string& path, const Generator& gen,
              std::vector<std::string>& secret_lines, long& grants_written) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "agentgate_seed: cannot open %s\n", path.c_str());
    sqlite3_close(db);
    return false;
  }
  // No journal while seeding a brand-new file: the rows are written once, into the database
  // itself, instead of into the WAL and again by the checkpoint. On failure the file is junk
  // anyway (and the caller deletes it); WAL mode is restored before returning.
  bool ok = SqlOk(db, sqlite3_exec(db, "PRAGMA journal_mode = OFF; PRAGMA foreign_keys = ON; "
                                       "PRAGMA cache_size = -1048576; BEGIN IMMEDIATE",
                                   nullptr, nullptr, nullptr),
                  "begin");
  sqlite3_stmt* ins_agent = nullptr;
  sqlite3_stmt* ins_grant = nullptr;
  ok = ok && SqlOk(db, sqlite3_prepare_v2(db, kBulkInsertAgent, -1, &ins_agent, nullptr),
                   "prepare agent insert");
  ok = ok && SqlOk(db, sqlite3_prepare_v2(db, kBulkInsertGrant, -1, &ins_grant, nullptr),
                   "prepare grant insert");
  auto text = [](sqlite3_stmt* s, int i, const std::string& v) {
    return sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
  crypto::OsRandom random;
  std::mt19937_64 rng(0x5eedULL);
  long grants = 0;
  for (long i = 0; ok && i < o.agents; ++i) {
    Generated g = gen.Make(i, rng, random);
    const store::AgentRecord& a = g.agent;
    text(ins_agent, 1, a.id);
    text(ins_agent, 2, a.name);
    text(ins_agent, 3, a.description);
    text(ins_agent, 4, a.developer_email);
    text(ins_agent, 5, a.metadata_json);
    sqlite3_bind_blob(ins_agent, 6, a.secret_hash.data(), static_cast<int>(a.secret_hash.size()),
                      SQLITE_STATIC);
    text(ins_agent, 7, a.status);
    sqlite3_bind_int64(ins_agent, 8, a.created_at_ms);
    sqlite3_bind_int64(ins_agent, 9, a.last_seen_ms);
    ok = SqlOk(db, sqlite3_step(ins_agent), "insert agent");
    sqlite3_reset(ins_agent);
    for (const store::GrantRecord& r : g.grants) {
      if (!ok) break;
      text(ins_grant, 1, r.id);
      text(ins_grant, 2, r.agent_id);
      text(ins_grant, 3, r.action);
      text(ins_grant, 4, r.granted_by);
      text(ins_grant, 5, r.granted_by_email);
      if (r.expires_at_ms) {
        sqlite3_bind_int64(ins_grant, 6, *r.expires_at_ms);
      } else {
        sqlite3_bind_null(ins_grant, 6);
      }
      text(ins_grant, 7, r.scope_json);
      text(ins_grant, 8, r.metadata_json);
      sqlite3_bind_int64(ins_grant, 9, r.created_at_ms);
      sqlite3_bind_null(ins_grant, 10);  // not revoked
      text(ins_grant, 11, r.revoked_by);
      ok = SqlOk(db, sqlite3_step(ins_grant), "insert grant");
      sqlite3_reset(ins_grant);
      ++grants;
    }
    if (ok && i < static_cast<long>(secret_lines.size())) {
      secret_lines[static_cast<std::size_t>(i)] =
          g.agent.id + " " + g.secret + " " + g.checked_action;
    }
  }
  sqlite3_finalize(ins_agent);
  sqlite3_finalize(ins_grant);
  ok = ok && SqlOk(db, sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), "commit");
  if (!ok) (void)sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  ok = ok && SqlOk(db, sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr),
                   "journal_mode = WAL");
  sqlite3_close(db);
  grants_written = grants;
  return ok;
}

Result<std::unique_ptr<store::SqliteStore>> OpenStore(const std::string& path) {
  auto opened = store::SqliteStore::Open(path);
  if (!opened.ok()) {
    std::fprintf(stderr, "agentgate_seed: cannot open %s: %s\n", path.c_str(),
                 std::string(opened.error().Message()).c_str());
  }
  return opened;
}

int Run(const Options& o) {
  namespace fs = std::filesystem;
  fs::path db = fs::path(o.data_dir) / "agentgate.db";
  std::error_code ec;
  if (fs::exists(db, ec)) {
    if (!o.force) {
      std::fprintf(stderr, "agentgate_seed: %s exists; pass --force to replace it\n",
                   db.c_str());
      return 1;
    }
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix, ec);
  }
  fs::create_directories(o.data_dir, ec);

  auto start = std::chrono::steady_clock::now();
  auto opened = OpenStore(db.string());
  if (!opened.ok()) return 1;
  std::unique_ptr<store::SqliteStore> st = std::move(opened.value());
  crypto::OsRandom random;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  std::array<std::uint8_t, 8> id_bytes;
  random.Fill(id_bytes);
  auto user = st->SignInUser(o.email, "usr_" + crypto::HexEncode(id_bytes), now, true);
  if (!user.ok()) {
    std::fprintf(stderr, "agentgate_seed: SignInUser: %s\n",
                 std::string(user.error().Message()).c_str());
    return 1;
  }
  Generator gen(*user, o.grants_per_agent, now);
  const long kept = o.secrets_out.empty() ? 0 : std::min(o.secrets_count, o.agents);
  std::vector<std::string> secret_lines(static_cast<std::size_t>(kept));
  long grants = 0;
  bool ok = false;
  if (o.bulk) {
    st.reset();  // the raw connection is then the only writer
    ok = SeedBulk(o, db.string(), gen, secret_lines, grants);
    if (!ok) {
      for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix, ec);
    }
  } else {
    ok = SeedViaStore(o, *st, gen, secret_lines, grants);
    st.reset();  // checkpoints the WAL into the database file
  }
  if (!ok) return 1;
  double elapsed = Seconds(std::chrono::steady_clock::now() - start);

  // Read back through the Store: proves the file is one the server accepts.
  auto reopened = OpenStore(db.string());
  if (!reopened.ok()) return 1;
  auto counters = (*reopened)->LoadCounters(0);
  if (!counters.ok() || counters->agents_registered != o.agents ||
      counters->permissions_granted != grants) {
    std::fprintf(stderr, "agentgate_seed: the store reads back %lld agents and %lld grants, "
                         "expected %ld and %ld\n",
                 counters.ok() ? static_cast<long long>(counters->agents_registered) : -1LL,
                 counters.ok() ? static_cast<long long>(counters->permissions_granted) : -1LL,
                 o.agents, grants);
    return 1;
  }
  reopened.value().reset();

  if (!o.secrets_out.empty()) {
    std::ofstream out(o.secrets_out, std::ios::trunc);
    for (const auto& line : secret_lines) out << line << '\n';
    if (!out) {
      std::fprintf(stderr, "agentgate_seed: cannot write %s\n", o.secrets_out.c_str());
      return 1;
    }
  }
  long rows = o.agents + grants;
  std::printf("seeded %s: 1 user, %ld agents, %ld grants in %.1f s (%.0f rows/s, %s)\n",
              db.c_str(), o.agents, grants, elapsed, static_cast<double>(rows) / elapsed,
              o.bulk ? "bulk: one SQLite transaction"
                     : ("Store interface, " + std::to_string(o.threads) + " threads").c_str());
  return 0;
}

}  // namespace
}  // namespace agentgate::bench

int main(int argc, char** argv) {
  auto options = agentgate::bench::ParseArgs(argc, argv);
  if (!options) {
    std::fputs(agentgate::bench::kUsage, stderr);
    return 2;
  }
  return agentgate::bench::Run(*options);
}
