// store.h: the ACME server's state in an embedded SQLite database (Debian libsqlite3), so that a
// restart of `shakenctl ca serve` loses nothing: nonces, accounts, orders, authorizations,
// certificates, the serials issued and the Authority Token ids (jti) already used.
//
// Objects (accounts, orders, authorizations, certificates) are JSON documents keyed by kind and
// id; nonces, jti and serials have their own tables so that "use once" is one atomic statement.
// Every call is a blocking disk write or read: call it from a worker thread, never from an HTTP
// event thread. Thread-safe (one connection behind a mutex; SQLite in WAL mode, synchronous=FULL).
#ifndef SHAKEN_CLI_ACME_STORE_H_
#define SHAKEN_CLI_ACME_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stir/json.h"

struct sqlite3;

namespace shaken::acme {

class Store {
 public:
  // Open opens (creating when absent, mode 0600) the database at `path` and its schema.
  // UNAVAILABLE names the path and SQLite's reason.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  // AddNonce records a nonce valid until `expires`.
  absl::Status AddNonce(std::string_view nonce, absl::Time expires);
  // ConsumeNonce deletes the nonce: true when it was known and unexpired at `now` (so each
  // nonce is accepted once), false otherwise.
  absl::StatusOr<bool> ConsumeNonce(std::string_view nonce, absl::Time now);

  // Put writes an object; Get reads one (nullopt when absent).
  absl::Status Put(std::string_view kind, std::string_view id, const stir::Json& value);
  // PutAll writes several objects in one transaction: all of them or none (an account and its
  // key index, an order and its authorization, a certificate and its order).
  struct Object {
    std::string kind, id;
    stir::Json value;
  };
  absl::Status PutAll(const std::vector<Object>& objects);
  absl::StatusOr<std::optional<stir::Json>> Get(std::string_view kind, std::string_view id);

  // RecordJti records an Authority Token id used by `issuer` until `exp`: false when it was
  // already recorded (a replay).
  absl::StatusOr<bool> RecordJti(std::string_view issuer, std::string_view jti, absl::Time exp);
  // RecordSerial records an issued serial (hex): false when already issued.
  absl::StatusOr<bool> RecordSerial(std::string_view serial_hex, std::string_view cert_id);

  // Prune removes expired nonces and jti records whose token can no longer be presented.
  absl::Status Prune(absl::Time now);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PutLocked(std::string_view kind, std::string_view id, const stir::Json& value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_STORE_H_
