// cmd_token.cc: shakenctl token init, a SoftHSM2 lab convenience (production tokens are
// initialised with the vendor's tools). The PKCS#11 work is hsm::InitToken.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "hsm/token_admin.h"
#include "stir/status_macros.h"

namespace shaken::cli {
namespace {

struct TokenInitFlags {
  std::string label;
  std::string so_pin_source;
  long slot = -1;
  bool json = false;
  TokenOptions token;
};

absl::StatusOr<hsm::InitTokenResult> InitToken(const TokenInitFlags& f) {
  ASSIGN_OR_RETURN(hsm::PinSource so_source,
                   ResolvePin(f.so_pin_source, nullptr, "security officer (SO) PIN"));
  ASSIGN_OR_RETURN(hsm::PinSource user_source,
                   ResolvePin(f.token.pin_source, nullptr, "new user PIN"));
  ASSIGN_OR_RETURN(std::shared_ptr<hsm::Module> module,
                   hsm::Module::Load(ModulePath(f.token.module, nullptr)));
  hsm::InitTokenOptions options{.label = f.label};
  if (f.slot >= 0) options.slot = static_cast<CK_SLOT_ID>(f.slot);
  return hsm::InitToken(*module, options, so_source, user_source);
}

}  // namespace

void AddTokenCommands(CLI::App& root, Registry& registry) {
  CLI::App* token = root.add_subcommand("token", "Token set-up for labs (SoftHSM2)");
  token->require_subcommand(1);
  auto f = std::make_shared<TokenInitFlags>();
  CLI::App* init = token->add_subcommand(
      "init",
      "Initialise a free token slot with a label, an SO PIN and a user PIN. A SoftHSM2 lab "
      "convenience: production tokens are initialised with the vendor's tools.");
  init->add_option("--label", f->label, "token label (CKA_LABEL, at most 32 bytes)")->required();
  init->add_option("--slot", f->slot, "slot id (default: the first uninitialised token)");
  init->add_option("--so-pin-source", f->so_pin_source,
                   "security officer PIN: file:/path or env:VAR (default: prompt)");
  init->add_flag("--json", f->json, "print JSON");
  AddTokenFlags(init, &f->token);
  init->footer(Examples(
      {"SOFTHSM2_CONF=/var/lib/shaken/softhsm2.conf shakenctl token init --label shaken \\",
       "    --so-pin-source file:/root/so.pin --pin-source file:/etc/shaken/pin"}));
  registry.push_back({init, [f]() -> int {
                        absl::StatusOr<hsm::InitTokenResult> r = InitToken(*f);
                        if (!r.ok()) return Fail(r.status());
                        if (f->json) {
                          PrintJson({{"label", f->label},
                                     {"slot", r->slot},
                                     {"serial", r->serial},
                                     {"uri", absl::StrCat("pkcs11:token=", f->label)}});
                        } else {
                          std::cout << "initialised token '" << f->label << "' (serial "
                                    << r->serial << ") in slot " << r->slot
                                    << "\nuri: pkcs11:token=" << f->label << "\n";
                          Note("note: production tokens are initialised with the vendor's tools; "
                               "this command is for SoftHSM2 labs.");
                        }
                        return kExitOk;
                      }});
}

}  // namespace shaken::cli
