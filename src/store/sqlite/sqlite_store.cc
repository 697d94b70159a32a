#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace agentgate::store {
namespace {

// The schema, one entry per version (version = index + 1). Entries are append-only: a released
// entry never changes, because databases in the field have already applied it.
constexpr std::string_view kMigrations[] = {
    // 1: people, agents and their grants.
    R"sql(
CREATE TABLE users(
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  is_admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) STRICT;
-- Makes "is there an admin yet?" one index probe however many users there are.
CREATE INDEX users_admins ON users(is_admin) WHERE is_admin = 1;

CREATE TABLE agents(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  developer_email TEXT NOT NULL,
  metadata_json TEXT NOT NULL DEFAULT '',
  secret_hash BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  status TEXT NOT NULL DEFAULT 'active',
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE grants(
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL REFERENCES agents(id),
  action TEXT NOT NULL,
  granted_by TEXT NOT NULL,
  granted_by_email TEXT NOT NULL,
  expires_at INTEGER,
  scope_json TEXT NOT NULL DEFAULT '',
  metadata_json TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX grants_agent_action ON grants(agent_id, action);
-- Lists of one person's grants come newest first.
CREATE INDEX grants_granted_by ON grants(granted_by, created_at);
-- The unfiltered list stops after its limit instead of sorting every grant.
CREATE INDEX grants_created ON grants(created_at);
-- The unrevoked grants in rowid order: the start-up load walks it and so skips revoked history
-- while still reading the table sequentially (keying it by expires_at would not: it would visit
-- expiring grants in expiry order, all over the table).
CREATE INDEX grants_unrevoked ON grants(revoked_at) WHERE revoked_at IS NULL;
)sql",
    // 2: sign-in.
    R"sql(
CREATE TABLE magic_links(
  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
  email TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX magic_links_expires ON magic_links(expires_at);

CREATE TABLE sessions(
  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
  user_id TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);
)sql",
    // 3: check records and statistics.
    R"sql(
CREATE TABLE check_records(
  id INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL,
  action TEXT NOT NULL,
  allowed INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  latency_us INTEGER NOT NULL
) STRICT;
CREATE INDEX check_records_at ON check_records(at);

CREATE TABLE counters(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO counters(name, value) VALUES ('checks_total', 0);

CREATE TABLE daily_checks(
  day INTEGER PRIMARY KEY,
  count INTEGER NOT NULL
) STRICT;
)sql",
    // 4: Idempotency-Key records.
    R"sql(
CREATE TABLE idempotency(
  id INTEGER PRIMARY KEY,
  key BLOB NOT NULL UNIQUE CHECK(length(key) = 32),
  fingerprint BLOB NOT NULL CHECK(length(fingerprint) = 32),
  done INTEGER NOT NULL,
  status INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  headers TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_expires ON idempotency(expires_at);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Enough for the bursts of a busy server; beyond it, connections close after use instead of
// holding page caches nobody needs.
constexpr std::size_t kMaxIdleReaders = 16;

// --- statements -------------------------------------------------------------------------------

constexpr std::string_view kInsertAgent =
    "INSERT INTO agents(id, name, description, developer_email, metadata_json, secret_hash, "
    "status, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr std::string_view kLoadAgents =
    "SELECT id, name, description, developer_email, metadata_json, secret_hash, status, "
    "created_at, last_seen FROM agents";

constexpr std::string_view kInsertGrant =
    "INSERT INTO grants(id, agent_id, action, granted_by, granted_by_email, expires_at, "
    "scope_json, metadata_json, created_at, revoked_at, revoked_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr std::string_view kLoadActiveGrants =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants "
    "WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)";
constexpr std::string_view kFindGrant =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE id = ?1";
constexpr std::string_view kRevokeGrant =
    "UPDATE grants SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL "
    "RETURNING id";

// One text per filter combination rather than "(?1 = '' OR granted_by = ?1)", which would
// hide the indexes from the planner. All use the same parameter numbers.
constexpr std::string_view kListGrantsAll =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByGranter =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "granted_by = ?1 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByAgent =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "agent_id = ?2 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";
constexpr std::string_view kListGrantsByBoth =
    "SELECT id, agent_id, action, granted_by, granted_by_email, expires_at, scope_json, "
    "metadata_json, created_at, revoked_at, revoked_by FROM grants WHERE "
    "granted_by = ?1 AND agent_id = ?2 AND "
    "(?3 = 0 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4))) "
    "ORDER BY created_at DESC, id LIMIT ?5";

constexpr std::string_view kFindUserByEmail =
    "SELECT id, email, is_admin, created_at FROM users WHERE email = ?1";
constexpr std::string_view kInsertUser =
    "INSERT INTO users(id, email, is_admin, created_at) VALUES (?1, ?2, 0, ?3)";
constexpr std::string_view kPromoteIfNoAdmin =
    "UPDATE users SET is_admin = 1 WHERE id = ?1 "
    "AND NOT EXISTS (SELECT 1 FROM users WHERE is_admin = 1) RETURNING 1";

constexpr std::string_view kInsertMagicLink =
    "INSERT INTO magic_links(token_hash, email, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kConsumeMagicLink =
    "UPDATE magic_links SET used_at = ?2 "
    "WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING email";

constexpr std::string_view kInsertSession =
    "INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kFindSession =
    "SELECT u.id, u.email, u.is_admin, u.created_at, s.expires_at "
    "FROM sessions AS s JOIN users AS u ON u.id = s.user_id "
    "WHERE s.token_hash = ?1 AND s.expires_at > ?2";
constexpr std::string_view kDeleteSession = "DELETE FROM sessions WHERE token_hash = ?1";

constexpr std::string_view kInsertCheck =
    "INSERT INTO check_records(agent_id, action, allowed, reason, at, latency_us) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr std::string_view kTouchAgent =
    "UPDATE agents SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2";
constexpr std::string_view kAddDailyChecks =
    "INSERT INTO daily_checks(day, count) VALUES (?1, ?2) "
    "ON CONFLICT(day) DO UPDATE SET count = count + excluded.count";
constexpr std::string_view kAddChecksTotal =
    "UPDATE counters SET value = value + ?1 WHERE name = 'checks_total'";
constexpr std::string_view kLoadCounters =
    "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM grants), "
    "coalesce((SELECT value FROM counters WHERE name = 'checks_total'), 0), "
    "coalesce((SELECT count FROM daily_checks WHERE day = ?1), 0)";

constexpr std::string_view kPruneMagicLinks = "DELETE FROM magic_links WHERE expires_at <= ?1";
constexpr std::string_view kPruneSessions = "DELETE FROM sessions WHERE expires_at <= ?1";
constexpr std::string_view kPruneChecks = "DELETE FROM check_records WHERE at < ?1";

constexpr std::string_view kFindIdempotent =
    "SELECT fingerprint, done, status, content_type, headers, body, created_at, expires_at "
    "FROM idempotency WHERE key = ?1";
constexpr std::string_view kClaimIdempotent =
    "INSERT INTO idempotency(key, fingerprint, done, status, content_type, headers, body, "
    "created_at, expires_at) VALUES (?1, ?2, 0, 0, '', '{}', '', ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, done = 0, status = 0, "
    "content_type = '', headers = '{}', body = '', created_at = excluded.created_at, "
    "expires_at = excluded.expires_at";
constexpr std::string_view kFinishIdempotent =
    "UPDATE idempotency SET done = 1, status = ?2, content_type = ?3, headers = ?4, body = ?5 "
    "WHERE key = ?1";
constexpr std::string_view kAbandonIdempotent = "DELETE FROM idempotency WHERE key = ?1";
constexpr std::string_view kPruneIdempotency = "DELETE FROM idempotency WHERE expires_at <= ?1";

constexpr std::string_view kSchemaVersionQuery =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";
constexpr std::string_view kRecordMigration =
    "INSERT INTO schema_migrations(version, applied_at) VALUES (?1, ?2)";

// --- helpers ----------------------------------------------------------------------------------

Code CodeFor(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Code::kConflict;
    default:
      return Code::kServerError;
  }
}

Error SqlError(sqlite3* db, int rc) {
  // sqlite3_errmsg carries the detail ("UNIQUE constraint failed: agents.id") when db saw rc.
  const char* detail =
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return MakeError(CodeFor(rc), "sqlite: " + std::string(detail) + " (" + std::to_string(rc) + ")");
}

Error Annotate(std::string_view what, Error error) {
  error.message = std::string(what) + ": " + error.message;
  return error;
}

std::int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A prepared statement borrowed from a connection's cache for one use. Resets on destruction so
// that no statement keeps a read transaction (and with it an old snapshot) open, and clears the
// bindings, which point into the caller's strings.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Bind errors are kept and reported by the next Step, so call sites stay linear.
  void BindText(int index, std::string_view text) {
    // A null pointer would bind SQL NULL; an empty string_view may carry one.
    Note(sqlite3_bind_text64(stmt_, index, text.data() != nullptr ? text.data() : "", text.size(),
                             SQLITE_STATIC, SQLITE_UTF8));
  }
  void BindInt(int index, std::int64_t value) { Note(sqlite3_bind_int64(stmt_, index, value)); }
  void BindOptionalInt(int index, const std::optional<std::int64_t>& value) {
    Note(value ? sqlite3_bind_int64(stmt_, index, *value) : sqlite3_bind_null(stmt_, index));
  }
  void BindDigest(int index, const crypto::Digest& digest) {
    Note(sqlite3_bind_blob(stmt_, index, digest.data(), static_cast<int>(digest.size()),
                           SQLITE_STATIC));
  }

  // true: a row is ready; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqlError(nullptr, bind_rc_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc);
  }
  // Steps to the end, ignoring any rows.
  Status Run() {
    for (;;) {
      Result<bool> row = Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
    }
  }
  // Makes the statement ready to be bound and run again.
  void Reset() { sqlite3_reset(stmt_); }

  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool Bool(int column) const { return sqlite3_column_int64(stmt_, column) != 0; }
  std::optional<std::int64_t> OptionalInt(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, column);
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);  // after column_text, per the SQLite docs
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }
  Status ReadDigest(int column, crypto::Digest& out) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (blob == nullptr || static_cast<std::size_t>(size) != out.size()) {
      return MakeError(Code::kServerError, "sqlite: stored digest is not 32 bytes");
    }
    __builtin_memcpy(out.data(), blob, out.size());
    return Ok();
  }

 private:
  void Note(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// Columns in kGrantColumns order.
GrantRecord ReadGrant(const Statement& row) {
  GrantRecord grant;
  grant.id = row.Text(0);
  grant.agent_id = row.Text(1);
  grant.action = row.Text(2);
  grant.granted_by = row.Text(3);
  grant.granted_by_email = row.Text(4);
  grant.expires_at_ms = row.OptionalInt(5);
  grant.scope_json = row.Text(6);
  grant.metadata_json = row.Text(7);
  grant.created_at_ms = row.Int(8);
  grant.revoked_at_ms = row.OptionalInt(9);
  grant.revoked_by = row.Text(10);
  return grant;
}

UserRecord ReadUser(const Statement& row) {
  UserRecord user;
  user.id = row.Text(0);
  user.email = row.Text(1);
  user.is_admin = row.Bool(2);
  user.created_at_ms = row.Int(3);
  return user;
}

}  // namespace

// --- Connection -------------------------------------------------------------------------------

// One SQLite handle and its prepared statements. Used by one thread at a time (the handle is
// opened without its own mutex); the reader pool and the writer thread guarantee that.
class SqliteStore::Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool create) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (create) flags |= SQLITE_OPEN_CREATE;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      Error error = SqlError(db, rc);
      sqlite3_close(db);  // a handle comes back even on failure, and must be closed
      return Annotate("open " + path, std::move(error));
    }
    auto connection = std::unique_ptr<Connection>(new Connection(db));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return connection;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // sql must be a single statement. Statements are cached by their text, so only constant text
  // belongs here: values always go through Bind*. A cached statement has one borrower at a
  // time: do not prepare the same text again while its Statement is alive.
  Result<Statement> Prepare(std::string_view sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return Statement(db_, it->second);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return Annotate("prepare", SqlError(db_, rc));
    if (stmt == nullptr) return MakeError(Code::kServerError, "sqlite: empty statement");
    cache_.emplace(std::string(sql), stmt);
    return Statement(db_, stmt);
  }

  // Prepares (cached) and runs a statement without parameters.
  Status Exec(std::string_view sql) {
    Result<Statement> stmt = Prepare(sql);
    if (!stmt) return stmt.take_error();
    return stmt->Run();
  }

  // Runs a script of several statements once (migrations, pragmas): not worth caching.
  Status ExecScript(const std::string& sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return Ok();
    Error error = SqlError(db_, rc);
    if (message != nullptr) {
      error.message = "sqlite: " + std::string(message) + " (" + std::to_string(rc) + ")";
      sqlite3_free(message);
    }
    return error;
  }

  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  // Straight to the C API: used on failure paths, including out of memory, so it must not throw.
  void RollbackIfOpen() noexcept {
    if (InTransaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  // Sets the writer's journal, durability and integrity pragmas.
  Status ConfigureWriter();
  // Brings the schema up to kSchemaVersion in one transaction.
  Status Migrate();

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

Status SqliteStore::Connection::ConfigureWriter() {
  Result<Statement> mode = Prepare("PRAGMA journal_mode = WAL");
  if (!mode) return mode.take_error();
  Result<bool> row = mode->Step();
  if (!row) return row.take_error();
  if (!*row || mode->Text(0) != "wal") {
    return MakeError(Code::kServerError, "sqlite: the database cannot use WAL journaling");
  }
  // FULL: the WAL is synced at every commit, so a returned write survives power loss.
  return ExecScript(
      "PRAGMA synchronous = FULL;"
      "PRAGMA foreign_keys = ON;"
      "PRAGMA journal_size_limit = 67108864;"
      // The writer touches index pages all over a large database; SQLite's default 2 MB page
      // cache made every grant re-read pages (measured: ~8 preads per grant at 1M grants).
      // 32 MiB: most of that gain, at a memory cost the 1M-grant budget can carry.
      "PRAGMA cache_size = -32768;");
}

Status SqliteStore::Connection::Migrate() {
  if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s;
  auto migrate = [this]() -> Status {
    Status s = ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
    if (!s) return s;
    std::int64_t current = 0;
    {
      Result<Statement> stmt = Prepare(kSchemaVersionQuery);
      if (!stmt) return stmt.take_error();
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      current = *row ? stmt->Int(0) : 0;
    }
    if (current > kSchemaVersion) {
      return MakeError(Code::kServerError,
                       "the database has schema version " + std::to_string(current) +
                           " but this agentgate knows only up to " +
                           std::to_string(kSchemaVersion) + "; upgrade agentgate");
    }
    for (int version = static_cast<int>(current) + 1; version <= kSchemaVersion; ++version) {
      if (s = ExecScript(std::string(kMigrations[version - 1])); !s) {
        return Annotate("migration " + std::to_string(version), s.take_error());
      }
      Result<Statement> record = Prepare(kRecordMigration);
      if (!record) return record.take_error();
      record->BindInt(1, version);
      record->BindInt(2, WallClockMs());
      if (s = record->Run(); !s) return s;
    }
    return Exec("COMMIT");
  };
  Status s = migrate();
  if (!s) RollbackIfOpen();
  return s;
}

// --- ReaderPool -------------------------------------------------------------------------------

// Read connections, handed out one per concurrent read. Never blocks: when every connection is
// busy a new one is opened, and at most kMaxIdleReaders are kept for reuse.
class SqliteStore::ReaderPool {
 public:
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_ != nullptr) pool_->Release(std::move(connection_));
    }
    Connection& connection() { return *connection_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  static Result<std::unique_ptr<Connection>> OpenReader(const std::string& path) {
    Result<std::unique_ptr<Connection>> connection = Connection::Open(path, /*create=*/false);
    if (!connection) return connection;
    // Guards against a read method ever writing outside the group commit.
    if (Status s = (*connection)->ExecScript("PRAGMA query_only = ON"); !s) return s.take_error();
    return connection;
  }

  ReaderPool(std::string path, std::unique_ptr<Connection> first) : path_(std::move(path)) {
    idle_.reserve(kMaxIdleReaders);  // so that Release never allocates
    idle_.push_back(std::move(first));
  }

  Result<Lease> Acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    Result<std::unique_ptr<Connection>> connection = OpenReader(path_);
    if (!connection) return connection.take_error();
    return Lease(this, std::move(*connection));
  }

 private:
  void Release(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleReaders) idle_.push_back(std::move(connection));
  }

  const std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

// --- Writer -----------------------------------------------------------------------------------

// The group commit. Owns the only write connection and the thread that uses it. Callers queue
// an op and sleep; the thread takes the whole queue, runs it as one transaction with one
// savepoint per op, commits (one fsync for the lot) and wakes each caller with its own result.
class SqliteStore::Writer {
 public:
  explicit Writer(std::unique_ptr<Connection> connection)
      : connection_(std::move(connection)), thread_([this] { Loop(); }) {}

  ~Writer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Blocks until the transaction holding op has committed or failed.
  Status Submit(const Op& op) {
    Pending pending(&op);
    std::unique_lock lock(mu_);
    if (stopping_) return MakeError(Code::kUnavailable, "the store is closing");
    queue_.push_back(&pending);
    wake_.notify_one();
    pending.cv.wait(lock, [&] { return pending.done; });
    return std::move(pending.result);
  }

 private:
  // Lives on the submitting thread's stack until done is set under mu_.
  struct Pending {
    explicit Pending(const Op* submitted) : op(submitted) {}

    const Op* op;
    Status result;
    bool done = false;
    std::condition_variable cv;
  };

  void Loop() {
    std::vector<Pending*> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued has been answered
        batch.swap(queue_);
      }
      RunBatchOrFailIt(batch);
      {
        std::lock_guard lock(mu_);
        // Notify under the lock: once it is released the caller may return and destroy cv.
        for (Pending* pending : batch) {
          pending->done = true;
          pending->cv.notify_one();
        }
      }
      batch.clear();
    }
  }

  // An exception here (only std::bad_alloc is possible) must not kill the thread that every
  // writer waits on: the batch fails as a whole instead.
  void RunBatchOrFailIt(std::span<Pending* const> batch) {
    try {
      RunBatch(batch);
    } catch (...) {
      connection_->RollbackIfOpen();
      for (Pending* pending : batch) pending->result = Error{Code::kServerError, {}, {}};
    }
  }

  void RunBatch(std::span<Pending* const> batch) {
    Connection& c = *connection_;
    if (Status begin = c.Exec("BEGIN IMMEDIATE"); !begin) {
      for (Pending* pending : batch) pending->result = Annotate("begin", begin.error());
      return;
    }
    // Set when the transaction as a whole is lost: every op of the batch then fails.
    std::optional<Error> fatal;
    for (Pending* pending : batch) {
      if (fatal) {
        pending->result = *fatal;
      } else {
        pending->result = RunInSavepoint(*pending->op, fatal);
      }
    }
    if (!fatal) {
      if (Status commit = c.Exec("COMMIT"); !commit) fatal = Annotate("commit", commit.error());
    }
    if (fatal) {
      c.RollbackIfOpen();
      for (Pending* pending : batch) {
        if (pending->result.ok()) pending->result = *fatal;
      }
    }
  }

  // Runs op so that its failure undoes only its own changes.
  Status RunInSavepoint(const Op& op, std::optional<Error>& fatal) {
    Connection& c = *connection_;
    if (Status s = c.Exec("SAVEPOINT op"); !s) {
      fatal = Annotate("savepoint", s.error());
      return *fatal;
    }
    Status result = RunGuarded(op, c);
    if (result.ok()) {
      if (Status s = c.Exec("RELEASE op"); !s) {
        fatal = Annotate("release", s.error());
        return *fatal;
      }
      return result;
    }
    if (!c.InTransaction()) {
      // Errors such as SQLITE_FULL roll the whole transaction back, neighbours included.
      fatal = Annotate("transaction rolled back", result.error());
      return result;
    }
    Status undo = c.Exec("ROLLBACK TO op");
    Status release = undo.ok() ? c.Exec("RELEASE op") : undo;
    if (!release) fatal = Annotate("rollback to savepoint", release.error());
    return result;
  }

  static Status RunGuarded(const Op& op, Connection& c) {
    try {
      return op(c);
    } catch (const std::exception& e) {
      return MakeError(Code::kServerError, std::string("exception: ") + e.what());
    } catch (...) {
      return MakeError(Code::kServerError, "unknown exception");
    }
  }

  std::unique_ptr<Connection> connection_;  // used only by thread_
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Pending*> queue_;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  std::thread thread_;           // last: starts once everything above exists
};

// --- Open and migrations ----------------------------------------------------------------------

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  try {
    if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
      return MakeError(Code::kServerError,
                       "sqlite: a file path is needed (the store shares the file between "
                       "connections), got \"" +
                           path + "\"");
    }
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return MakeError(Code::kServerError, "sqlite: cannot create directory " + parent.string() +
                                                 ": " + ec.message());
      }
    }
    Result<std::unique_ptr<Connection>> writer = Connection::Open(path, /*create=*/true);
    if (!writer) return writer.take_error();
    if (Status s = (*writer)->ConfigureWriter(); !s)
      return Annotate("open " + path, s.take_error());
    if (Status s = (*writer)->Migrate(); !s) return Annotate("open " + path, s.take_error());
    Result<std::unique_ptr<Connection>> reader = ReaderPool::OpenReader(path);
    if (!reader) return reader.take_error();
    auto readers = std::make_unique<ReaderPool>(path, std::move(*reader));
    auto writer_thread = std::make_unique<Writer>(std::move(*writer));
    return std::unique_ptr<SqliteStore>(
        new SqliteStore(std::move(readers), std::move(writer_thread)));
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, "sqlite: open " + path + ": " + e.what());
  }
}

SqliteStore::SqliteStore(std::unique_ptr<ReaderPool> readers, std::unique_ptr<Writer> writer)
    : writer_(std::move(writer)), readers_(std::move(readers)) {}

SqliteStore::~SqliteStore() = default;

Status SqliteStore::Read(std::string_view what, const Op& op) {
  try {
    Result<ReaderPool::Lease> lease = readers_->Acquire();
    if (!lease) return Annotate(what, lease.take_error());
    Status s = op(lease->connection());
    if (!s) return Annotate(what, s.take_error());
    return s;
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return MakeError(Code::kServerError, std::string(what) + ": unknown exception");
  }
}

Status SqliteStore::Write(std::string_view what, const Op& op) {
  try {
    Status s = writer_->Submit(op);
    if (!s) return Annotate(what, s.take_error());
    return s;
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, std::string(what) + ": exception: " + e.what());
  } catch (...) {
    return MakeError(Code::kServerError, std::string(what) + ": unknown exception");
  }
}

// --- start-up ---------------------------------------------------------------------------------

Status SqliteStore::LoadAgents(const std::function<void(AgentRecord&&)>& sink) {
  return Read("LoadAgents", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLoadAgents);
    if (!stmt) return stmt.take_error();
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      AgentRecord agent;
      agent.id = stmt->Text(0);
      agent.name = stmt->Text(1);
      agent.description = stmt->Text(2);
      agent.developer_email = stmt->Text(3);
      agent.metadata_json = stmt->Text(4);
      if (Status s = stmt->ReadDigest(5, agent.secret_hash); !s) return s;
      agent.status = stmt->Text(6);
      agent.created_at_ms = stmt->Int(7);
      agent.last_seen_ms = stmt->Int(8);
      sink(std::move(agent));
    }
  });
}

Status SqliteStore::LoadActiveGrants(std::int64_t now_ms,
                                     const std::function<void(GrantRecord&&)>& sink) {
  return Read("LoadActiveGrants", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kLoadActiveGrants);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, now_ms);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      sink(ReadGrant(*stmt));
    }
  });
}

// --- agents and grants ------------------------------------------------------------------------

Status SqliteStore::InsertAgent(const AgentRecord& agent) {
  return Write("InsertAgent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertAgent);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, agent.id);
    stmt->BindText(2, agent.name);
    stmt->BindText(3, agent.description);
    stmt->BindText(4, agent.developer_email);
    stmt->BindText(5, agent.metadata_json);
    stmt->BindDigest(6, agent.secret_hash);
    stmt->BindText(7, agent.status);
    stmt->BindInt(8, agent.created_at_ms);
    stmt->BindInt(9, agent.last_seen_ms);
    return stmt->Run();
  });
}

Status SqliteStore::InsertGrant(const GrantRecord& grant) {
  return Write("InsertGrant", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertGrant);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, grant.id);
    stmt->BindText(2, grant.agent_id);
    stmt->BindText(3, grant.action);
    stmt->BindText(4, grant.granted_by);
    stmt->BindText(5, grant.granted_by_email);
    stmt->BindOptionalInt(6, grant.expires_at_ms);
    stmt->BindText(7, grant.scope_json);
    stmt->BindText(8, grant.metadata_json);
    stmt->BindInt(9, grant.created_at_ms);
    stmt->BindOptionalInt(10, grant.revoked_at_ms);
    stmt->BindText(11, grant.revoked_by);
    return stmt->Run();
  });
}

Result<std::vector<std::string>> SqliteStore::RevokeGrants(const std::vector<std::string>& ids,
                                                           std::int64_t at_ms,
                                                           const std::string& revoked_by) {
  std::vector<std::string> revoked;
  Status s = Write("RevokeGrants", [&](Connection& c) -> Status {
    revoked.clear();
    Result<Statement> stmt = c.Prepare(kRevokeGrant);
    if (!stmt) return stmt.take_error();
    for (const std::string& id : ids) {
      stmt->BindText(1, id);
      stmt->BindInt(2, at_ms);
      stmt->BindText(3, revoked_by);
      for (;;) {
        Result<bool> row = stmt->Step();
        if (!row) return row.take_error();
        if (!*row) break;
        revoked.push_back(stmt->Text(0));
      }
      stmt->Reset();
    }
    return Ok();
  });
  if (!s) return s.take_error();
  return revoked;
}

Result<std::optional<GrantRecord>> SqliteStore::FindGrant(const std::string& id) {
  std::optional<GrantRecord> found;
  Status s = Read("FindGrant", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindGrant);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, id);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) found = ReadGrant(*stmt);
    return Ok();
  });
  if (!s) return s.take_error();
  return found;
}

Result<std::vector<GrantRecord>> SqliteStore::ListGrants(const GrantFilter& filter) {
  std::vector<GrantRecord> grants;
  if (filter.limit <= 0) return grants;
  std::string_view sql = filter.granted_by.empty()
                             ? (filter.agent_id.empty() ? kListGrantsAll : kListGrantsByAgent)
                             : (filter.agent_id.empty() ? kListGrantsByGranter : kListGrantsByBoth);
  Status s = Read("ListGrants", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(sql);
    if (!stmt) return stmt.take_error();
    stmt->BindText(1, filter.granted_by);
    stmt->BindText(2, filter.agent_id);
    stmt->BindInt(3, filter.active_only ? 1 : 0);
    stmt->BindInt(4, filter.now_ms);
    stmt->BindInt(5, filter.limit);
    for (;;) {
      Result<bool> row = stmt->Step();
      if (!row) return row.take_error();
      if (!*row) return Ok();
      grants.push_back(ReadGrant(*stmt));
    }
  });
  if (!s) return s.take_error();
  return grants;
}

// --- people -----------------------------------------------------------------------------------

Result<UserRecord> SqliteStore::SignInUser(const std::string& email, const std::string& new_user_id,
                                           std::int64_t now_ms, bool promote_if_no_admin) {
  UserRecord user;
  // One op of the single writer inside BEGIN IMMEDIATE: no other writer, in this process or
  // another, can interleave between the admin test and the promotion.
  Status s = Write("SignInUser", [&](Connection& c) -> Status {
    bool found = false;
    {
      Result<Statement> find = c.Prepare(kFindUserByEmail);
      if (!find) return find.take_error();
      find->BindText(1, email);
      Result<bool> row = find->Step();
      if (!row) return row.take_error();
      if (*row) {
        user = ReadUser(*find);
        found = true;
      }
    }
    if (!found) {
      Result<Statement> insert = c.Prepare(kInsertUser);
      if (!insert) return insert.take_error();
      insert->BindText(1, new_user_id);
      insert->BindText(2, email);
      insert->BindInt(3, now_ms);
      if (Status st = insert->Run(); !st) return st;
      user = UserRecord{new_user_id, email, false, now_ms};
    }
    if (promote_if_no_admin && !user.is_admin) {
      Result<Statement> promote = c.Prepare(kPromoteIfNoAdmin);
      if (!promote) return promote.take_error();
      promote->BindText(1, user.id);
      Result<bool> row = promote->Step();
      if (!row) return row.take_error();
      user.is_admin = *row;
    }
    return Ok();
  });
  if (!s) return s.take_error();
  return user;
}

Status SqliteStore::InsertMagicLink(const crypto::Digest& token_hash, const std::string& email,
                                    std::int64_t created_at_ms, std::int64_t expires_at_ms) {
  return Write("InsertMagicLink", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertMagicLink);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindText(2, email);
    stmt->BindInt(3, created_at_ms);
    stmt->BindInt(4, expires_at_ms);
    return stmt->Run();
  });
}

Result<std::optional<std::string>> SqliteStore::ConsumeMagicLink(const crypto::Digest& token_hash,
                                                                 std::int64_t now_ms) {
  std::optional<std::string> email;
  Status s = Write("ConsumeMagicLink", [&](Connection& c) -> Status {
    email.reset();
    Result<Statement> stmt = c.Prepare(kConsumeMagicLink);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) email = stmt->Text(0);
    return Ok();
  });
  if (!s) return s.take_error();
  return email;
}

Status SqliteStore::InsertSession(const crypto::Digest& token_hash, const std::string& user_id,
                                  std::int64_t created_at_ms, std::int64_t expires_at_ms) {
  return Write("InsertSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kInsertSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindText(2, user_id);
    stmt->BindInt(3, created_at_ms);
    stmt->BindInt(4, expires_at_ms);
    return stmt->Run();
  });
}

Result<std::optional<SessionInfo>> SqliteStore::FindSession(const crypto::Digest& token_hash,
                                                            std::int64_t now_ms) {
  std::optional<SessionInfo> session;
  Status s = Read("FindSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFindSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    stmt->BindInt(2, now_ms);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (*row) session = SessionInfo{ReadUser(*stmt), stmt->Int(4)};
    return Ok();
  });
  if (!s) return s.take_error();
  return session;
}

Status SqliteStore::DeleteSession(const crypto::Digest& token_hash) {
  return Write("DeleteSession", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kDeleteSession);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, token_hash);
    return stmt->Run();
  });
}

// --- bookkeeping and statistics ---------------------------------------------------------------

Status SqliteStore::FlushBookkeeping(const Bookkeeping& batch) {
  if (batch.empty()) return Ok();  // not worth a commit
  return Write("FlushBookkeeping", [&](Connection& c) -> Status {
    if (!batch.checks.empty()) {
      Result<Statement> insert = c.Prepare(kInsertCheck);
      if (!insert) return insert.take_error();
      for (const CheckRecord& check : batch.checks) {
        insert->BindText(1, check.agent_id);
        insert->BindText(2, check.action);
        insert->BindInt(3, check.allowed ? 1 : 0);
        insert->BindText(4, check.reason);
        insert->BindInt(5, check.at_ms);
        insert->BindInt(6, check.latency_us);
        if (Status s = insert->Run(); !s) return s;
        insert->Reset();
      }
    }
    if (!batch.last_seen.empty()) {
      Result<Statement> touch = c.Prepare(kTouchAgent);
      if (!touch) return touch.take_error();
      for (const auto& [agent_id, seen_ms] : batch.last_seen) {
        touch->BindText(1, agent_id);
        touch->BindInt(2, seen_ms);
        if (Status s = touch->Run(); !s) return s;
        touch->Reset();
      }
    }
    std::int64_t total = 0;
    if (!batch.checks_per_day.empty()) {
      Result<Statement> add = c.Prepare(kAddDailyChecks);
      if (!add) return add.take_error();
      for (const auto& [day, delta] : batch.checks_per_day) {
        add->BindInt(1, day);
        add->BindInt(2, delta);
        if (Status s = add->Run(); !s) return s;
        add->Reset();
        total += delta;
      }
    }
    if (total != 0) {
      Result<Statement> add = c.Prepare(kAddChecksTotal);
      if (!add) return add.take_error();
      add->BindInt(1, total);
      return add->Run();
    }
    return Ok();
  });
}

Result<Counters> SqliteStore::LoadCounters(std::int64_t utc_day) {
  Counters counters;
  Status s = Read("LoadCounters", [&](Connection& c) -> Status {
    // One statement, so all four numbers come from the same snapshot.
    Result<Statement> stmt = c.Prepare(kLoadCounters);
    if (!stmt) return stmt.take_error();
    stmt->BindInt(1, utc_day);
    Result<bool> row = stmt->Step();
    if (!row) return row.take_error();
    if (!*row) return MakeError(Code::kServerError, "sqlite: counters query gave no row");
    counters.agents_registered = stmt->Int(0);
    counters.permissions_granted = stmt->Int(1);
    counters.checks_total = stmt->Int(2);
    counters.checks_today = stmt->Int(3);
    return Ok();
  });
  if (!s) return s.take_error();
  return counters;
}

Result<IdempotencyOutcome> SqliteStore::BeginIdempotent(const crypto::Digest& key,
                                                        const crypto::Digest& fingerprint,
                                                        std::int64_t now_ms,
                                                        std::int64_t expires_at_ms,
                                                        std::int64_t stale_before_ms) {
  IdempotencyOutcome out;
  Status s = Write("BeginIdempotent", [&](Connection& c) -> Status {
    out = IdempotencyOutcome{};
    {
      Result<Statement> find = c.Prepare(kFindIdempotent);
      if (!find) return find.take_error();
      find->BindDigest(1, key);
      Result<bool> row = find->Step();
      if (!row) return row.take_error();
      if (*row && find->Int(7) > now_ms) {
        crypto::Digest stored{};
        bool same = find->ReadDigest(0, stored).ok() && stored == fingerprint;
        bool done = find->Int(1) != 0;
        if (!same) {
          out.state = IdempotencyState::kMismatch;
          return Ok();
        }
        if (done) {
          out.state = IdempotencyState::kReplay;
          out.status = static_cast<int>(find->Int(2));
          out.content_type = find->Text(3);
          out.headers_json = find->Text(4);
          out.body = find->Text(5);
          return Ok();
        }
        if (find->Int(6) >= stale_before_ms) {
          out.state = IdempotencyState::kInProgress;
          return Ok();
        }
      }
    }
    Result<Statement> claim = c.Prepare(kClaimIdempotent);
    if (!claim) return claim.take_error();
    claim->BindDigest(1, key);
    claim->BindDigest(2, fingerprint);
    claim->BindInt(3, now_ms);
    claim->BindInt(4, expires_at_ms);
    out.state = IdempotencyState::kStarted;
    return claim->Run();
  });
  if (!s) return s.take_error();
  return out;
}

Status SqliteStore::FinishIdempotent(const crypto::Digest& key, int status,
                                     const std::string& content_type,
                                     const std::string& headers_json, const std::string& body) {
  return Write("FinishIdempotent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kFinishIdempotent);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, key);
    stmt->BindInt(2, status);
    stmt->BindText(3, content_type);
    stmt->BindText(4, headers_json);
    stmt->BindText(5, body);
    return stmt->Run();
  });
}

Status SqliteStore::AbandonIdempotent(const crypto::Digest& key) {
  return Write("AbandonIdempotent", [&](Connection& c) -> Status {
    Result<Statement> stmt = c.Prepare(kAbandonIdempotent);
    if (!stmt) return stmt.take_error();
    stmt->BindDigest(1, key);
    return stmt->Run();
  });
}

Status SqliteStore::Prune(std::int64_t now_ms, std::int64_t check_records_before_ms) {
  return Write("Prune", [&](Connection& c) -> Status {
    for (auto [sql, cutoff] :
         {std::pair{kPruneMagicLinks, now_ms}, std::pair{kPruneSessions, now_ms},
          std::pair{kPruneIdempotency, now_ms},
          std::pair{kPruneChecks, check_records_before_ms}}) {
      Result<Statement> stmt = c.Prepare(sql);
      if (!stmt) return stmt.take_error();
      stmt->BindInt(1, cutoff);
      if (Status s = stmt->Run(); !s) return s;
    }
    return Ok();
  });
}

}  // namespace agentgate::store
