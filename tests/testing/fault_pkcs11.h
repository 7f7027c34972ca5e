/* fault_pkcs11.h: the C API of shaken_fault_pkcs11, a PKCS#11 module for tests and benchmarks
 * that forwards every function of CK_FUNCTION_LIST (v2.40) to a real module and simulates a
 * network HSM in front of it: latency, injected C_Sign failures, a token that goes away and comes
 * back, and counters of C_Sign calls and of their concurrency.
 *
 * Tests get the built module's path from the compile definition SHAKEN_FAULT_P11_MODULE (link the
 * CMake target shaken_fault_pkcs11_path). Loading it through hsm::Module::Load gives the target's
 * quirks: C_GetInfo is forwarded unchanged, and ModuleQuirks are chosen from its manufacturer.
 *
 * Environment (read once, at the first C_GetFunctionList):
 *   SHAKEN_FAULT_P11_TARGET   the real module to dlopen (default /usr/lib/softhsm/libsofthsm2.so).
 *   SHAKEN_FAULT_P11_CONTROL  a control file of key=value lines (keys below; '#' starts a comment).
 *                             Polled by a background thread every millisecond; when its inode,
 *                             size or mtime change it is read again and every key it holds is
 *                             applied (keys it omits keep their value). Write it atomically (temp
 *                             file + rename: FaultP11WriteControl does); a change takes effect
 *                             within a few milliseconds, even when no PKCS#11 call is made.
 *   SHAKEN_FAULT_P11_STATS    a stats file (key=value lines, the fields of ShakenFaultP11Stats)
 *                             rewritten atomically (temp + rename) by the same thread when the
 *                             counters changed, at most every 5 ms.
 *   SHAKEN_FAULT_P11_<KEY>    the initial value of a key below, KEY upper-cased
 *                             (SHAKEN_FAULT_P11_SIGN_DELAY_US=7000).
 *
 * Keys (integers are decimal, or hex with 0x; a CK_RV may also be named, e.g. CKR_DEVICE_ERROR):
 *   sign_delay_us          sleep in every C_Sign before forwarding it (default 0)
 *   sign_init_delay_us     sleep in every C_SignInit (default 0)
 *   open_session_delay_us  sleep in every C_OpenSession (default 0)
 *   login_delay_us         sleep in every C_Login (default 0)
 *   sign_fail_every        N > 0: every Nth signing C_Sign (one with a signature buffer; length
 *                          queries are not counted) returns sign_fail_rv. The real C_Sign is still
 *                          made, so the token ends the operation, and its result is discarded.
 *                          Applying the key (even to the same value) restarts the count. 0: off
 *                          (default).
 *   sign_fail_rv           the CK_RV of an injected failure (default CKR_DEVICE_ERROR)
 *   token_gone             1: the token is absent. Session functions (C_Login, C_FindObjects*,
 *                          C_SignInit, C_Sign, ... every function whose first argument is a
 *                          session, except C_CloseSession) fail CKR_DEVICE_REMOVED without reaching
 *                          the real module; C_OpenSession, C_GetTokenInfo, C_GetMechanism*,
 *                          C_InitToken fail CKR_TOKEN_NOT_PRESENT; C_GetSlotList(CK_TRUE) lists no
 *                          slot and C_GetSlotInfo clears CKF_TOKEN_PRESENT. C_Initialize,
 *                          C_Finalize, C_CloseSession and C_CloseAllSessions are forwarded.
 *                          0: the token is back (default). Sessions opened before the loss are
 *                          not closed in the real module: a caller must drop them itself (a real
 *                          removal would have closed them), as hsm::KeyPool does.
 *
 * Thread-safe: every counter is a relaxed atomic, the configuration is a set of atomics, and the
 * shims take no lock. The module is linked with -z nodelete: dlclose never unmaps it (its polling
 * thread runs until the process exits).
 */
#ifndef SHAKEN_TESTS_TESTING_FAULT_PKCS11_H_
#define SHAKEN_TESTS_TESTING_FAULT_PKCS11_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ShakenFaultP11Stats: counters since the module was loaded or last reset. */
typedef struct ShakenFaultP11Stats {
  uint64_t sign_calls;          /* C_Sign calls (length queries included) */
  uint64_t sign_init_calls;     /* C_SignInit calls */
  uint64_t open_session_calls;  /* C_OpenSession calls */
  uint64_t login_calls;         /* C_Login calls */
  uint64_t injected_failures;   /* C_Sign calls answered with sign_fail_rv */
  uint64_t gone_refusals;       /* calls refused because of token_gone */
  uint64_t sign_in_flight;      /* C_Sign calls running now (not reset) */
  uint64_t sign_max_in_flight;  /* most C_Sign calls running at once (reset to sign_in_flight) */
  uint64_t control_loads;       /* configurations applied (environment, control file, configure) */
} ShakenFaultP11Stats;

/* shaken_fault_p11_stats copies the counters into *out. */
void shaken_fault_p11_stats(ShakenFaultP11Stats* out);
/* shaken_fault_p11_reset zeroes the counters (sign_max_in_flight becomes sign_in_flight) and
 * restarts the sign_fail_every count. The configuration is kept. */
void shaken_fault_p11_reset(void);
/* shaken_fault_p11_configure applies key=value lines (newline-separated) at once, as the control
 * file would. Returns the number of keys applied, or -1 (nothing applied) when a line is not a
 * known key with a valid value. */
int shaken_fault_p11_configure(const char* lines);

/* For dlsym: the types of the functions above. */
typedef void (*ShakenFaultP11StatsFn)(ShakenFaultP11Stats*);
typedef void (*ShakenFaultP11ResetFn)(void);
typedef int (*ShakenFaultP11ConfigureFn)(const char*);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* SHAKEN_TESTS_TESTING_FAULT_PKCS11_H_ */
