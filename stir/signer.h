// signer.h: the one interface through which stir/ signs. stir never sees PKCS#11; hsm/ implements
// this interface over a PKCS#11 token, and memory_signer.h implements it over an OpenSSL key.
#ifndef SHAKEN_STIR_SIGNER_H_
#define SHAKEN_STIR_SIGNER_H_

#include <array>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shaken::stir {

// A SHA-256 digest: the message representative that ES256 signs (RFC 7518 §3.4).
using Sha256Digest = std::array<uint8_t, 32>;

// An ES256 signature as JWS carries it: R || S, each 32 bytes big-endian, left-padded with zeros.
// This is not DER. PKCS#11 CKM_ECDSA produces exactly this form.
using Es256Signature = std::array<uint8_t, 64>;

// Signer signs SHA-256 digests with an ECDSA P-256 private key.
//
// Security property: the private key is never exposed through this interface; an implementation
// may keep it in a hardware token. Implementations are thread-safe: SignDigest may be called from
// any number of threads at once.
class Signer {
 public:
  virtual ~Signer() = default;

  // SignDigest returns the ECDSA P-256 signature of `digest` as raw r||s.
  //
  // `deadline` bounds how long the call may wait for a free signing resource (for a token: a
  // pooled session). When it passes first, the result is DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED.
  // A token that is down gives UNAVAILABLE; no signature is ever returned from a resource in an
  // unknown state.
  virtual absl::StatusOr<Es256Signature> SignDigest(
      const Sha256Digest& digest, absl::Time deadline = absl::InfiniteFuture()) const = 0;

  // SignDone receives the result of SignDigestAsync, exactly once.
  using SignDone = absl::AnyInvocable<void(absl::StatusOr<Es256Signature>) &&>;

  // SignDigestAsync is SignDigest for callers that must not wait (an event-loop or RPC thread).
  // `done` runs exactly once: on the calling thread before SignDigestAsync returns when the
  // signature is cheap and local (the default: an in-memory key signs inline), otherwise on a
  // thread the Signer owns (a token's pool workers). Back-pressure is an error result, never a
  // block: a full queue gives RESOURCE_EXHAUSTED at once, a deadline that passes while queued
  // gives DEADLINE_EXCEEDED when it passes.
  virtual void SignDigestAsync(const Sha256Digest& digest, absl::Time deadline,
                               SignDone done) const {
    std::move(done)(SignDigest(digest, deadline));
  }
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_SIGNER_H_
