/* sign_verify_c.c: lists the signing profiles of a running shakend, signs one call through it,
 * then verifies the Identity header it got back, with the C ABI (shaken/shaken_client.h) -- what
 * an SBC module written in C does.
 *
 *   shaken_client_example_c [TARGET]
 *
 * TARGET defaults to $SHAKEN_TARGET, then 127.0.0.1:7443. TLS comes from the environment:
 * SHAKEN_CA, SHAKEN_CERT + SHAKEN_KEY (mutual TLS; file paths only), SHAKEN_SERVER_NAME,
 * SHAKEN_INSECURE=1 for plaintext (labs). SHAKEN_PROFILE picks a profile. Exit status: 0 when the
 * call verified, 1 when it did not, 2 on an error.
 *
 * In a multi-process SBC (Kamailio, OpenSIPS) shaken_client_new belongs in each worker's
 * child_init, after the fork; see shaken/shaken_client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shaken/shaken_client.h"

static const char *env(const char *name) {
  const char *v = getenv(name);
  return (v != NULL && v[0] != '\0') ? v : NULL;
}

static const char *health_name(int health) {
  switch (health) {
    case SHAKEN_PROFILE_SERVING:
      return "SERVING";
    case SHAKEN_PROFILE_DEGRADED:
      return "DEGRADED";
    case SHAKEN_PROFILE_DOWN:
      return "DOWN";
    default:
      return "UNKNOWN";
  }
}

int main(int argc, char **argv) {
  shaken_client_options opts;
  shaken_client *client = NULL;
  shaken_error err;
  shaken_sign_request sreq;
  shaken_sign_result sres;
  shaken_verify_request vreq;
  shaken_verify_result vres;
  shaken_profile_list profiles;
  size_t i;
  const char *dests[1] = {"12155551213"};
  const char *identities[1];
  const char *insecure = env("SHAKEN_INSECURE");
  int rc;

  shaken_client_options_init(&opts);
  opts.target = argc > 1 ? argv[1] : env("SHAKEN_TARGET");
  if (opts.target == NULL) opts.target = "127.0.0.1:7443";
  opts.root_ca_file = env("SHAKEN_CA");
  opts.client_cert_file = env("SHAKEN_CERT");
  opts.client_key_file = env("SHAKEN_KEY");
  opts.server_name_override = env("SHAKEN_SERVER_NAME");
  opts.insecure_plaintext = insecure != NULL && strcmp(insecure, "1") == 0;
  opts.user_agent = "shaken-client-example-c";
  if (shaken_client_new(&opts, &client, &err) != 0) {
    fprintf(stderr, "shaken_client_new: %s: %s\n", shaken_code_name(err.code), err.message);
    return 2;
  }

  /* At start-up (a module's child_init): the profiles this client may sign with, their health and
   * their certificate's expiry. */
  if (shaken_list_profiles(client, 0, &profiles, &err) != 0) {
    fprintf(stderr, "shaken_list_profiles: %s: %s\n", shaken_code_name(err.code), err.message);
    shaken_client_free(client);
    return 2;
  }
  for (i = 0; i < profiles.num_profiles; ++i) {
    const shaken_profile *p = &profiles.profiles[i];
    printf("profile %s%s health=%s attest=%s spc=%s not_after=%lld\n", p->name,
           p->is_default ? " (default)" : "", health_name(p->health), p->allowed_attest,
           p->cert_spc, (long long)p->cert_not_after);
  }
  shaken_profile_list_free(&profiles);

  memset(&sreq, 0, sizeof sreq);
  sreq.profile = env("SHAKEN_PROFILE");
  sreq.attest = "A";
  sreq.orig_tn = "12155551212";
  sreq.dest_tns = dests;
  sreq.num_dest_tns = 1;
  sreq.request_id = "example-c-1";
  if (shaken_sign(client, &sreq, &sres, &err) != 0) {
    fprintf(stderr, "shaken_sign: %s: %s\n", shaken_code_name(err.code), err.message);
    shaken_client_free(client);
    return 2;
  }
  printf("Identity: %s\n", sres.identity);

  memset(&vreq, 0, sizeof vreq);
  identities[0] = sres.identity;
  vreq.identities = identities;
  vreq.num_identities = 1;
  vreq.from_tn = sreq.orig_tn;
  vreq.to_tns = dests;
  vreq.num_to_tns = 1;
  vreq.has_date = 1;
  vreq.date = sres.iat;
  vreq.request_id = "example-c-1";
  if (shaken_verify(client, &vreq, &vres, &err) != 0) {
    fprintf(stderr, "shaken_verify: %s: %s\n", shaken_code_name(err.code), err.message);
    shaken_sign_result_free(&sres);
    shaken_client_free(client);
    return 2;
  }
  printf("verstat=%s reason=%s attest=%s origid=%s spc=%s\n", vres.overall.verstat,
         vres.overall.reason, vres.overall.attest, vres.overall.origid, vres.overall.cert_spc);
  rc = 0;
  if (!vres.overall.passed) {
    printf("Reason: SIP ;cause=%d ;text=\"%s\" (%s)\n", vres.overall.sip_code,
           vres.overall.sip_reason, vres.overall.detail);
    rc = 1;
  }
  shaken_verify_result_free(&vres);
  shaken_sign_result_free(&sres);
  shaken_client_free(client);
  return rc;
}
