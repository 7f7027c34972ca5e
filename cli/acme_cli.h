// acme_cli.h: what the ACME commands share (cmd_pa.cc, cmd_acme.cc, cmd_ca_serve.cc): the lab
// STI-PA's token signing, reading a secret (EAB MAC key) from a source, and the command
// registration hooks.
#ifndef SHAKEN_CLI_ACME_CLI_H_
#define SHAKEN_CLI_ACME_CLI_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace shaken::cli {

// PaTokenRequest is what the lab STI-PA needs to issue an Authority Token.
struct PaTokenRequest {
  std::string pa_key;       // the PA's signing key: pkcs11: URI or PEM file
  std::string x5u;          // URL of the PA certificate (chain)
  std::string spc;          // the SPC the token authorizes (TNAuthList of one SPC)
  std::string account_key;  // the ACME account key (public half is enough) ...
  std::string fingerprint;  // ... or its fingerprint "SHA256 AA:..." given directly
  std::string iss = "shakenctl lab STI-PA";
  int64_t lifetime_seconds = 3600;
  std::optional<int64_t> iat;  // default now
  bool ca = false;
  TokenOptions token;
};

// MakePaToken signs the token (RFC 9448) with the PA key; errors say what to fix.
absl::StatusOr<std::string> MakePaToken(const PaTokenRequest& r);

// ReadSecretFrom reads a secret (not a PIN: an EAB MAC key) from "file:/path" or "env:VAR".
absl::StatusOr<std::string> ReadSecretFrom(const std::string& source, std::string_view what);

void AddPaCommands(CLI::App& root, Registry& registry);
void AddAcmeCommands(CLI::App& root, Registry& registry);
// AddCaServeCommand adds `ca serve` under the `ca` command.
void AddCaServeCommand(CLI::App* ca, Registry& registry);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_ACME_CLI_H_
