// core_internal.h: what core.cc and core_ppt.cc (the ServiceCore's signing paths for div, rph and
// rcd) share. Not for front ends.
#ifndef SHAKEN_DAEMON_CORE_INTERNAL_H_
#define SHAKEN_DAEMON_CORE_INTERNAL_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/core.h"
#include "stir/absl_compat.h"

namespace shaken::daemon::internal {

inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxProfileNameBytes = 128;
inline constexpr size_t kMaxTnInputBytes = 64;

inline absl::Status Invalid(std::string_view message) {
  return absl::InvalidArgumentError(ToAbsl(message));
}

// OrigDestError: why a signing request's orig.tn and dest.tn cannot be signed (required, length,
// count), or OK. What a number may hold is stir's to say (CanonicalizeTn).
absl::Status OrigDestError(const shaken::v1::SignRequest& req);

}  // namespace shaken::daemon::internal

namespace shaken::daemon {

// ServiceCore::SignCall is one Sign in progress.
struct ServiceCore::SignCall {
  const Caller* caller = nullptr;
  Front front = Front::kGrpc;
  Method method = Method::kSign;
  absl::Time start;
  const shaken::v1::SignRequest* req = nullptr;
  shaken::v1::SignResponse* resp = nullptr;
  std::shared_ptr<const ProfileSet> set;  // the profiles in force when the call started
  const SigningProfile* profile = nullptr;
  size_t index = 0;
  Done done;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_CORE_INTERNAL_H_
