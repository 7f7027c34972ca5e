// shakenctl.cc: the command tree and the parse boundary. CLI11 reports usage errors with
// exceptions; they are caught here and become exit code 2. Commands themselves run after parsing
// and never throw.
#include <iostream>

#include "cli/acme_cli.h"
#include "cli/commands.h"

namespace shaken::cli {

namespace {

constexpr char kExitCodes[] = R"(
Exit codes:
  0  success (passport verify: the PASSporT passed)
  1  error (unreadable file, token or PIN problem, bad input data, refused overwrite, ...)
  2  usage error (unknown command or option, missing or invalid argument)
  3  passport verify: 403 Stale Date (iat or Date outside the window)
  4  passport verify: 428 Use Identity Header (nothing to verify)
  5  passport verify: 436 Bad Identity Info (x5u/info cannot be used or fetched)
  6  passport verify: 437 Unsupported Credential (certificate untrusted, expired, revoked, ...)
  7  passport verify: 438 Invalid Identity Header (malformed, claims mismatch, bad signature)
  8  cert check: at least one SHAKEN profile item failed
)";

}  // namespace

int RunShakenctl(int argc, char** argv) {
  CLI::App app{
      "shakenctl: key ceremony, STI PKI and PASSporT tooling for shakend (STIR/SHAKEN).\n"
      "SHAKEN keys stay in the PKCS#11 token; PINs come from a file, an environment variable or "
      "a prompt, never from the command line.",
      "shakenctl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shakenctl " SHAKEN_VERSION);
  app.footer(std::string(kExitCodes) +
             Examples({"shakenctl key generate --key 'pkcs11:token=shaken;object=sp-2024' "
                       "--pin-source file:/etc/shaken/pin",
                       "shakenctl ca init --key root.key.pem --cn 'Example STI ROOT' -o root.pem",
                       "shakenctl passport verify --cert chain.pem --ca-file root.pem "
                       "'eyJ...;info=<https://...>;alg=ES256;ppt=shaken'",
                       "shakenctl <command> --help"}));
  Registry registry;
  AddKeyCommands(app, registry);
  AddTokenCommands(app, registry);
  AddCaCommands(app, registry);
  AddCsrCommands(app, registry);
  AddCertCommands(app, registry);
  AddCaDirCommands(app, registry);
  AddPassportCommands(app, registry);
  AddPaCommands(app, registry);
  AddAcmeCommands(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return kExitUsage;
  }
  for (const Command& c : registry) {
    if (c.app->parsed()) return c.run();
  }
  return UsageError("no command given");
}

}  // namespace shaken::cli
