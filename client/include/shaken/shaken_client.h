/* shaken/shaken_client.h: the C ABI of the shakend client, for SBC modules written in C
 * (Kamailio, OpenSIPS, FreeSWITCH). C99; no C++, gRPC, protobuf or OpenSSL type appears here.
 * Link with `pkg-config --cflags --libs shakenclient`.
 *
 * Conventions (as in BoringSSL):
 * - Every function that can fail returns 0 on success, or a google.rpc code (3 INVALID_ARGUMENT,
 *   4 DEADLINE_EXCEEDED, 7 PERMISSION_DENIED, 14 UNAVAILABLE, ...; see shaken_code_name) and, when
 *   `err` is not NULL, fills `*err` with the same code and a NUL-terminated message. `err` may
 *   always be NULL.
 * - Pointers passed in are borrowed for the duration of the call only; nothing is retained.
 * - Results are structs the caller owns (e.g. on the stack) whose strings and arrays the library
 *   allocates; release them with the matching *_free function. On failure a result is zeroed, so
 *   freeing it is always safe. Free functions accept NULL and zeroed structs.
 * - A failed verification is not an error: shaken_verify returns 0 and a verdict with passed == 0.
 *
 * Thread-safety and processes: one shaken_client may be used by any number of threads of ONE
 * process at once. It must not cross fork(): gRPC's threads and connections do not survive it.
 * Multi-process SBCs (Kamailio, OpenSIPS) create one client per worker process, after the fork
 * (child_init), never in the parent (mod_init); a child must not use or free a client it
 * inherited. FreeSWITCH (one process, many threads) shares one client.
 *
 * No global state besides what gRPC keeps for its own use. */
#ifndef SHAKEN_CLIENT_SHAKEN_CLIENT_H_
#define SHAKEN_CLIENT_SHAKEN_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#include "shaken/abi_version.h" /* SHAKEN_CLIENT_ABI_VERSION, SHAKEN_CLIENT_ABI_MINOR */
#include "shaken/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* shaken_client is an opaque handle to one connection (gRPC channel) to a shakend target. */
typedef struct shaken_client shaken_client;

/* shaken_error is an error code and a message. code 0 means OK (message ""). */
typedef struct shaken_error {
  int code;          /* google.rpc code */
  char message[512]; /* NUL-terminated; truncated if longer */
} shaken_error;

/* shaken_client_options configures shaken_client_new. Zero-initialize it (or call
 * shaken_client_options_init): every zero field takes its default. Strings are borrowed for the
 * duration of shaken_client_new only; the files are read there. */
typedef struct shaken_client_options {
  const char *target;               /* required: "host:port" or a gRPC target URI */
  const char *root_ca_file;         /* PEM CA(s) of the server; NULL: gRPC's default roots */
  const char *client_cert_file;     /* PEM, for mutual TLS; requires client_key_file */
  const char *client_key_file;      /* PEM private key; requires client_cert_file */
  const char *server_name_override; /* tests/labs: name checked in the server certificate */
  int insecure_plaintext;           /* nonzero: no TLS (labs only; no TLS file may be set) */
  uint32_t default_timeout_ms;      /* per-call deadline when a request gives none; 0: 500 */
  uint32_t max_attempts;            /* attempts on UNAVAILABLE, 1..5; 0: 3 */
  uint32_t initial_backoff_ms;      /* 0: 20 */
  uint32_t max_backoff_ms;          /* 0: 200 */
  uint32_t keepalive_time_ms;       /* 0: 30000 */
  uint32_t keepalive_timeout_ms;    /* 0: 10000 */
  int disable_keepalive;            /* nonzero: no keepalive pings */
  const char *user_agent;           /* NULL: none; e.g. "kamailio-stirshaken/5.7" */
} shaken_client_options;

/* shaken_client_options_init zeroes `opts` (all defaults). NULL is ignored. */
SHAKEN_CLIENT_EXPORT void shaken_client_options_init(shaken_client_options *opts);

/* shaken_client_new validates `opts`, reads the TLS files and creates a client; it does not
 * connect yet. On success stores a new client in `*out` (owned by the caller, released with
 * shaken_client_free) and returns 0. On failure stores NULL in `*out` (when `out` is not NULL)
 * and returns 3 INVALID_ARGUMENT naming the option to fix (NULL `opts` or `out`, no target,
 * unreadable or non-PEM file, cert without key, ...). */
SHAKEN_CLIENT_EXPORT int shaken_client_new(const shaken_client_options *opts, shaken_client **out,
                                           shaken_error *err);

/* shaken_client_free closes the client and frees it. NULL is ignored. No call may be in progress
 * on `client` (from any thread). */
SHAKEN_CLIENT_EXPORT void shaken_client_free(shaken_client *client);

/* shaken_sign_request is one signing request. Strings are borrowed for the call. */
typedef struct shaken_sign_request {
  const char *profile;          /* NULL or "": the server's default profile */
  const char *attest;           /* "A", "B" or "C"; required */
  const char *orig_tn;          /* calling number; required */
  const char *const *dest_tns;  /* called number(s): num_dest_tns non-NULL strings */
  size_t num_dest_tns;          /* at least 1 */
  int has_iat;                  /* nonzero: use iat; zero: the server's clock */
  int64_t iat;                  /* seconds since the Unix epoch (SIP Date) */
  const char *origid;           /* NULL or "": the server makes a fresh UUID */
  const char *request_id;       /* NULL or "": none; echoed, at most 128 bytes */
  uint32_t timeout_ms;          /* 0: the client's default_timeout_ms */
} shaken_sign_request;

/* shaken_sign_result is what was signed. Every string is non-NULL after a successful
 * shaken_sign, allocated by the library, and released by shaken_sign_result_free. */
typedef struct shaken_sign_result {
  char *identity; /* the SIP Identity header field value */
  char *passport; /* the PASSporT (JWS compact serialization) */
  char *origid;
  int64_t iat;
  char *profile;
  char *request_id;
} shaken_sign_result;

/* shaken_sign signs one call through `client`. Thread-safe. On success fills `*result` (which
 * the caller then releases with shaken_sign_result_free) and returns 0; on failure zeroes
 * `*result` (when not NULL) and returns the code: 3 for NULL/missing arguments or a request the
 * server finds malformed, 14 UNAVAILABLE after the retries, 4 on the deadline, ... */
SHAKEN_CLIENT_EXPORT int shaken_sign(shaken_client *client, const shaken_sign_request *request,
                                     shaken_sign_result *result, shaken_error *err);

/* shaken_sign_result_free frees the strings of `result` and zeroes it; not `result` itself.
 * NULL and zeroed results are ignored. */
SHAKEN_CLIENT_EXPORT void shaken_sign_result_free(shaken_sign_result *result);

/* shaken_verify_request is one verification request. Strings are borrowed for the call. */
typedef struct shaken_verify_request {
  const char *const *identities; /* Identity header values, as received */
  size_t num_identities;         /* at least 1 */
  const char *from_tn;           /* asserted calling number; required */
  const char *const *to_tns;     /* called number(s) */
  size_t num_to_tns;
  int has_date;                  /* nonzero: `date` is the SIP Date header */
  int64_t date;                  /* seconds since the Unix epoch */
  const char *request_id;        /* NULL or "": none */
  uint32_t timeout_ms;           /* 0: the client's default_timeout_ms */
} shaken_verify_request;

/* shaken_verdict is the outcome of verifying one Identity header, or a whole call. Every string
 * is non-NULL (possibly "") in a verdict filled by shaken_verify. */
typedef struct shaken_verdict {
  int passed;         /* nonzero: verified */
  char *verstat;      /* "TN-Validation-Passed" / "TN-Validation-Failed" / "No-TN-Validation" */
  int sip_code;       /* when not passed: 403, 428, 436, 437 or 438 (RFC 8224 §6.2.2); else 0 */
  char *sip_reason;   /* its reason phrase */
  char *reason;       /* stable machine-readable reason: "passed", "signature_invalid", ... */
  char *detail;       /* a human sentence on what was wrong */
  char *attest;
  char *origid;
  char *orig_tn;
  int64_t iat;
  char *x5u;
  char *cert_subject; /* the signing certificate */
  char *cert_spc;
  char *cert_serial;
  int64_t cert_not_after;
  /* ABI 1.1: */
  char *ppt;            /* the PASSporT type ("shaken") */
  size_t num_dest_tns;  /* dest.tn of the PASSporT, canonical */
  char **dest_tns;      /* array of num_dest_tns (NULL when 0) */
} shaken_verdict;

/* shaken_verify_result is the call's verdict and one verdict per request identity, in order.
 * Released by shaken_verify_result_free. */
typedef struct shaken_verify_result {
  shaken_verdict overall;
  size_t num_identities;
  shaken_verdict *identities; /* array of num_identities (NULL when 0) */
} shaken_verify_result;

/* shaken_verify verifies the Identity header(s) of one call. Thread-safe. Returns 0 and fills
 * `*result` (released with shaken_verify_result_free) whenever the server answered, whether or
 * not verification passed: look at result->overall.passed. On failure zeroes `*result` and
 * returns the code, as shaken_sign.
 *
 * ABI 1.1 appended ppt and dest_tns to shaken_verdict. The two functions below are therefore
 * reached through the names of ABI 1.1 (the macros); the library still exports shaken_verify and
 * shaken_verify_result_free with the ABI 1.0 verdict, for programs built before. */
#define shaken_verify shaken_verify_abi1_1
#define shaken_verify_result_free shaken_verify_result_free_abi1_1
SHAKEN_CLIENT_EXPORT int shaken_verify(shaken_client *client, const shaken_verify_request *request,
                                       shaken_verify_result *result, shaken_error *err);

/* shaken_verify_result_free frees everything `result` points to and zeroes it; not `result`
 * itself. NULL and zeroed results are ignored. */
SHAKEN_CLIENT_EXPORT void shaken_verify_result_free(shaken_verify_result *result);

/* ABI 1.2: PASSporT types beyond shaken and div (rph, RFC 8443; rcd, RFC 9795), through two new
 * functions and structs; the structs above are unchanged. */

/* shaken_ppt_request is what shaken_sign_ppt adds to a shaken_sign_request. Strings are borrowed
 * for the call; NULL and "" mean absent. */
typedef struct shaken_ppt_request {
  const char *ppt;               /* NULL or "": rph when num_rph_auth > 0, else shaken; "rcd" */
  const char *const *rph_auth;   /* Resource-Priority r-values ("ets.0"): an rph PASSporT */
  size_t num_rph_auth;
  const char *rph_sph;           /* the sph claim ("psap-callback") */
  const char *rcd_nam;           /* rich call data: display name */
  const char *rcd_apn;           /* alternate presentation number */
  const char *rcd_icn;           /* icon URL (fetched by the server for its rcdi digest) */
  const char *rcd_jcl;           /* jCard URL (likewise) */
  const char *rcd_jcd;           /* inline jCard, JSON text */
  const char *rcd_crn;           /* call reason */
} shaken_ppt_request;

/* shaken_sign_ppt is shaken_sign for a request that `ppt` extends: rich call data in a shaken
 * PASSporT, an rcd PASSporT (ppt "rcd"), or an rph PASSporT (rph_auth). For rph and rcd,
 * request->attest may be NULL (it must be empty). Returns as shaken_sign. */
SHAKEN_CLIENT_EXPORT int shaken_sign_ppt(shaken_client *client, const shaken_sign_request *request,
                                         const shaken_ppt_request *ppt, shaken_sign_result *result,
                                         shaken_error *err);

/* shaken_rcd_result is the rich call data of one header (proto RcdResult): the texts are set
 * only when passed (the header verified and every rcdi digest matched the fetched content);
 * otherwise reason and detail say why it was dropped. Every string is non-NULL. */
typedef struct shaken_rcd_result {
  size_t identity;  /* index of the header in the request's identities */
  int passed;
  char *reason;
  char *detail;
  char *nam;
  char *apn;
  char *icn;
  char *jcl;
  char *jcd;
  char *crn;
} shaken_rcd_result;

/* shaken_verify_ppt_result is a shaken_verify_result (ABI 1.1 verdicts) with the results of rph
 * and rcd headers. Released by shaken_verify_ppt_result_free. */
typedef struct shaken_verify_ppt_result {
  shaken_verify_result call;
  char *verstat_priority;   /* "RPH-Validation-Passed" / "RPH-Validation-Failed" / "" */
  char *display_name;       /* the nam of the first verified rich call data, or "" */
  size_t num_rcds;
  shaken_rcd_result *rcds;  /* array of num_rcds (NULL when 0) */
} shaken_verify_ppt_result;

/* shaken_verify_ppt is shaken_verify with the call's Resource-Priority header value(s)
 * (num_resource_priority strings, RFC 4412 r-values; 0 when the request has none), checked
 * against ppt=rph headers. Returns as shaken_verify. */
SHAKEN_CLIENT_EXPORT int shaken_verify_ppt(shaken_client *client,
                                           const shaken_verify_request *request,
                                           const char *const *resource_priority,
                                           size_t num_resource_priority,
                                           shaken_verify_ppt_result *result, shaken_error *err);

/* shaken_verify_ppt_result_free frees everything `result` points to and zeroes it. */
SHAKEN_CLIENT_EXPORT void shaken_verify_ppt_result_free(shaken_verify_ppt_result *result);

/* shaken_sign_stream is one SignStream call, for modules that sign at a high rate: requests go
 * out without waiting for answers, answers come back in request order. Thread-safety: send may
 * be called from several threads at once, and next from several threads at once (each answer is
 * delivered once); typically one thread sends and one reads. No thread may be inside a stream
 * function when shaken_sign_stream_free is called. */
typedef struct shaken_sign_stream shaken_sign_stream;

/* shaken_stream_sign is one answer of a stream: the request's id and either its signature
 * (code 0, `result` filled) or its own error (`code` and `message`; the stream goes on). Strings
 * are non-NULL after shaken_sign_stream_next returned 0; released by shaken_stream_sign_free. */
typedef struct shaken_stream_sign {
  char *request_id;          /* the request's request_id ("" when it had none) */
  int code;                  /* 0: signed; else a google.rpc code for this request alone */
  char *message;             /* "" when code is 0 */
  shaken_sign_result result; /* when code is 0 (zeroed otherwise) */
} shaken_stream_sign;

/* shaken_sign_stream_open starts a SignStream call on `client`'s channel. `timeout_ms` bounds the
 * whole stream; 0: no deadline. The stream keeps the channel alive: it may outlive the client.
 * Stores the stream in `*out` (released with shaken_sign_stream_free) and returns 0, or stores
 * NULL and returns the code. */
SHAKEN_CLIENT_EXPORT int shaken_sign_stream_open(shaken_client *client, uint32_t timeout_ms,
                                                 shaken_sign_stream **out, shaken_error *err);

/* shaken_sign_stream_send sends one request (its timeout_ms is not used: the stream's deadline
 * applies). Only NULL or missing fields are checked here; the server answers a malformed request
 * through shaken_sign_stream_next. Returns 0, 9 FAILED_PRECONDITION after close_send, or the
 * stream's failure (14 UNAVAILABLE "stream broken", ...). */
SHAKEN_CLIENT_EXPORT int shaken_sign_stream_send(shaken_sign_stream *stream,
                                                 const shaken_sign_request *request,
                                                 shaken_error *err);

/* shaken_sign_stream_next blocks until the next answer, in the order of the sends, and returns 0
 * with `*out` filled (look at out->code). At the end it returns 11 OUT_OF_RANGE "end of stream"
 * (after close_send, once every answer was read) or the call's failure, with `*out` zeroed. It
 * blocks until the deadline when nothing is outstanding and close_send was not called. */
SHAKEN_CLIENT_EXPORT int shaken_sign_stream_next(shaken_sign_stream *stream,
                                                 shaken_stream_sign *out, shaken_error *err);

/* shaken_sign_stream_close_send tells the server no more requests come; outstanding answers can
 * still be read. Idempotent. */
SHAKEN_CLIENT_EXPORT int shaken_sign_stream_close_send(shaken_sign_stream *stream,
                                                       shaken_error *err);

/* shaken_sign_stream_free cancels the call if it still runs and frees the stream. NULL is
 * ignored. */
SHAKEN_CLIENT_EXPORT void shaken_sign_stream_free(shaken_sign_stream *stream);

/* shaken_stream_sign_free frees the strings of `out` and zeroes it; not `out` itself. NULL and
 * zeroed answers are ignored. */
SHAKEN_CLIENT_EXPORT void shaken_stream_sign_free(shaken_stream_sign *out);

/* Health of a signing profile, as the server sees its key. */
#define SHAKEN_PROFILE_HEALTH_UNKNOWN 0
#define SHAKEN_PROFILE_SERVING 1  /* signing */
#define SHAKEN_PROFILE_DEGRADED 2 /* signing, but some token sessions are being re-opened */
#define SHAKEN_PROFILE_DOWN 3     /* not signing: the token is unreachable */

/* shaken_profile describes one signing profile the server offers this client. Every string is
 * non-NULL (possibly "") in a profile filled by shaken_list_profiles. */
typedef struct shaken_profile {
  char *name;
  char *key;            /* PKCS#11 URI (never with a PIN) or "file:<path>" */
  char *x5u;            /* where verifiers fetch its certificate */
  char *cert_subject;   /* the profile certificate */
  char *cert_spc;
  char *cert_serial;
  int64_t cert_not_after; /* seconds since the Unix epoch */
  char *allowed_attest; /* the attestation levels it signs, comma-separated: "A,B,C" */
  int health;           /* SHAKEN_PROFILE_SERVING, _DEGRADED, _DOWN (or _HEALTH_UNKNOWN) */
  int is_default;       /* nonzero: the profile a request without one uses */
} shaken_profile;

/* shaken_profile_list is the answer of shaken_list_profiles; released by
 * shaken_profile_list_free. */
typedef struct shaken_profile_list {
  size_t num_profiles;
  shaken_profile *profiles; /* array of num_profiles (NULL when 0) */
} shaken_profile_list;

/* shaken_list_profiles lists the signing profiles this client may use, with their certificate
 * and health: an SBC module can check at start-up that the profile it will name exists and
 * signs, and watch the certificate's expiry. `timeout_ms` 0: the client's default_timeout_ms.
 * Thread-safe. Returns 0 and fills `*result`, or zeroes it and returns the code, as
 * shaken_sign. */
SHAKEN_CLIENT_EXPORT int shaken_list_profiles(shaken_client *client, uint32_t timeout_ms,
                                              shaken_profile_list *result, shaken_error *err);

/* shaken_profile_list_free frees everything `result` points to and zeroes it; not `result`
 * itself. NULL and zeroed results are ignored. */
SHAKEN_CLIENT_EXPORT void shaken_profile_list_free(shaken_profile_list *result);

/* shaken_code_name returns the name of a google.rpc code ("OK", "INVALID_ARGUMENT", ...;
 * "UNKNOWN_CODE" outside 0..16): a static string, never NULL, not to be freed. */
SHAKEN_CLIENT_EXPORT const char *shaken_code_name(int code);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHAKEN_CLIENT_SHAKEN_CLIENT_H_ */
