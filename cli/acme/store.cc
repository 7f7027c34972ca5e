#include "cli/acme/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/status_macros.h"

namespace shaken::acme {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
                                    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS used_jti (issuer TEXT NOT NULL, jti TEXT NOT NULL,
                                     exp INTEGER NOT NULL, PRIMARY KEY (issuer, jti));
CREATE TABLE IF NOT EXISTS serials (serial TEXT PRIMARY KEY, cert_id TEXT NOT NULL);
)sql";

// Stmt owns a prepared statement.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

void Bind(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const mode_t old = umask(077);  // the database holds account keys and order history: 0600
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  umask(old);
  if (rc != SQLITE_OK) {
    std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat("cannot open the ACME state database ", path, ": ", why));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Store> store(new Store(db));
  absl::MutexLock lock(&store->mu_);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  absl::Status st = store->Exec(kSchema);
  if (!st.ok()) return stir::WithPrefix(st, absl::StrCat(path, ": "));
  return store;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status Store::Error(std::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("ACME state database: ", ToAbsl(what), ": ", sqlite3_errmsg(db_)));
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return absl::UnavailableError(absl::StrCat("ACME state database: ", why));
  }
  return absl::OkStatus();
}

absl::Status Store::AddNonce(std::string_view nonce, absl::Time expires) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT INTO nonces (nonce, expires) VALUES (?, ?)", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return Error("prepare nonce insert");
  }
  Bind(st.s, 1, nonce);
  sqlite3_bind_int64(st.s, 2, absl::ToUnixSeconds(expires));
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error("insert nonce");
  return absl::OkStatus();
}

absl::StatusOr<bool> Store::ConsumeNonce(std::string_view nonce, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "DELETE FROM nonces WHERE nonce = ? AND expires > ?", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return Error("prepare nonce delete");
  }
  Bind(st.s, 1, nonce);
  sqlite3_bind_int64(st.s, 2, absl::ToUnixSeconds(now));
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error("delete nonce");
  return sqlite3_changes(db_) == 1;
}

absl::Status Store::Put(std::string_view kind, std::string_view id, const stir::Json& value) {
  absl::MutexLock lock(&mu_);
  return PutLocked(kind, id, value);
}

absl::Status Store::PutAll(const std::vector<Object>& objects) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const Object& o : objects) {
    absl::Status st = PutLocked(o.kind, o.id, o.value);
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
  }
  return Exec("COMMIT");
}

absl::Status Store::PutLocked(std::string_view kind, std::string_view id, const stir::Json& value) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO objects (kind, id, json) VALUES (?, ?, ?)",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare object write");
  }
  Bind(st.s, 1, kind);
  Bind(st.s, 2, id);
  Bind(st.s, 3, value.dump());
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error(absl::StrCat("write ", ToAbsl(kind)));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<stir::Json>> Store::Get(std::string_view kind, std::string_view id) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT json FROM objects WHERE kind = ? AND id = ?", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return Error("prepare object read");
  }
  Bind(st.s, 1, kind);
  Bind(st.s, 2, id);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::optional<stir::Json>();
  if (rc != SQLITE_ROW) return Error(absl::StrCat("read ", ToAbsl(kind)));
  const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
  stir::Json j =
      stir::Json::parse(text != nullptr ? text : "", nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::DataLossError(
        absl::StrCat("ACME state: ", ToAbsl(kind), " ", ToAbsl(id), " is not JSON"));
  return std::optional<stir::Json>(std::move(j));
}

absl::StatusOr<bool> Store::RecordJti(std::string_view issuer, std::string_view jti,
                                      absl::Time exp) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR IGNORE INTO used_jti (issuer, jti, exp) VALUES (?, ?, ?)",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare jti insert");
  }
  Bind(st.s, 1, issuer);
  Bind(st.s, 2, jti);
  sqlite3_bind_int64(st.s, 3, absl::ToUnixSeconds(exp));
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error("insert jti");
  return sqlite3_changes(db_) == 1;
}

absl::StatusOr<bool> Store::RecordSerial(std::string_view serial_hex, std::string_view cert_id) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR IGNORE INTO serials (serial, cert_id) VALUES (?, ?)", -1,
                         &st.s, nullptr) != SQLITE_OK) {
    return Error("prepare serial insert");
  }
  Bind(st.s, 1, serial_hex);
  Bind(st.s, 2, cert_id);
  if (sqlite3_step(st.s) != SQLITE_DONE) return Error("insert serial");
  return sqlite3_changes(db_) == 1;
}

absl::Status Store::Prune(absl::Time now) {
  absl::MutexLock lock(&mu_);
  const std::string t = absl::StrCat(absl::ToUnixSeconds(now));
  RETURN_IF_ERROR(Exec(absl::StrCat("DELETE FROM nonces WHERE expires <= ", t).c_str()));
  return Exec(absl::StrCat("DELETE FROM used_jti WHERE exp <= ", t).c_str());
}

}  // namespace shaken::acme
