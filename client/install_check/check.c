/* check.c: compiled against an installed shakenclient with pkg-config; exercises the C ABI
 * without a server. */
#include <stdio.h>
#include <string.h>

#include <shaken/shaken_client.h>

int main(void) {
  shaken_client_options opts;
  shaken_client *client = NULL;
  shaken_error err;
  shaken_client_options_init(&opts);
  if (shaken_client_new(&opts, &client, &err) != 3 || client != NULL) {
    fprintf(stderr, "check.c: an empty target must be INVALID_ARGUMENT\n");
    return 1;
  }
  opts.target = "127.0.0.1:1";
  opts.insecure_plaintext = 1;
  if (shaken_client_new(&opts, &client, &err) != 0) {
    fprintf(stderr, "check.c: shaken_client_new: %s\n", err.message);
    return 1;
  }
  shaken_client_free(client);
  if (shaken_list_profiles(NULL, 0, NULL, &err) != 3) return 1;
  if (shaken_sign_stream_open(NULL, 0, NULL, &err) != 3) return 1;
  if (strcmp(shaken_code_name(14), "UNAVAILABLE") != 0) return 1;
  printf("check.c: OK\n");
  return 0;
}
