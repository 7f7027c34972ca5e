// cmd_token.cc: shakenctl token init, a SoftHSM2 lab convenience. hsm/ offers no token
// initialisation (production tokens are initialised with the vendor's tools), so the few PKCS#11
// calls are made here, through hsm's CK_CALL choke point so that errors read the same.
#include <p11-kit/pkcs11.h>

#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "hsm/ck.h"
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

std::string Trim32(const CK_UTF8CHAR* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

struct InitResult {
  CK_SLOT_ID slot;
  std::string serial;
};

absl::StatusOr<InitResult> InitToken(const TokenInitFlags& f) {
  if (f.label.empty() || f.label.size() > 32) {
    return absl::InvalidArgumentError("the token label must be 1 to 32 bytes");
  }
  ASSIGN_OR_RETURN(hsm::PinSource so_source,
                   ResolvePin(f.so_pin_source, nullptr, "security officer (SO) PIN"));
  ASSIGN_OR_RETURN(hsm::PinSource user_source,
                   ResolvePin(f.token.pin_source, nullptr, "new user PIN"));
  ASSIGN_OR_RETURN(hsm::SecretString so_pin, so_source.Read());
  ASSIGN_OR_RETURN(hsm::SecretString user_pin, user_source.Read());
  ASSIGN_OR_RETURN(std::shared_ptr<hsm::Module> module,
                   hsm::Module::Load(ModulePath(f.token.module, nullptr)));
  const CK_FUNCTION_LIST* fl = module->functions();
  const std::string where = module->name();

  CK_ULONG count = 0;
  RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, nullptr, &count));
  std::vector<CK_SLOT_ID> slots(count);
  RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, slots.data(), &count));
  slots.resize(count);
  std::optional<CK_SLOT_ID> chosen;
  for (CK_SLOT_ID s : slots) {
    CK_TOKEN_INFO info;
    RETURN_IF_ERROR(CK_CALL(fl, C_GetTokenInfo, where, s, &info));
    const bool initialized = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
    if (initialized && Trim32(info.label, sizeof(info.label)) == f.label) {
      return absl::AlreadyExistsError(absl::StrCat(
          "a token labelled '", f.label, "' already exists (slot ", s,
          "); shakenctl never re-initialises a token"));
    }
    if (f.slot >= 0) {
      if (s == static_cast<CK_SLOT_ID>(f.slot)) {
        if (initialized) {
          return absl::FailedPreconditionError(absl::StrCat(
              "slot ", s, " holds an initialised token; shakenctl never re-initialises one"));
        }
        chosen = s;
      }
    } else if (!initialized && !chosen.has_value()) {
      chosen = s;
    }
  }
  if (!chosen.has_value()) {
    return absl::NotFoundError(f.slot >= 0 ? absl::StrCat("no token present in slot ", f.slot)
                                           : std::string("no free (uninitialised) token slot"));
  }
  CK_UTF8CHAR label[32];
  std::memset(label, ' ', sizeof(label));
  std::memcpy(label, f.label.data(), f.label.size());
  auto pin_ptr = [](const hsm::SecretString& s) {
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(s.view().data()));
  };
  RETURN_IF_ERROR(CK_CALL(fl, C_InitToken, where, *chosen, pin_ptr(so_pin),
                          static_cast<CK_ULONG>(so_pin.view().size()), label));
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(CK_CALL(fl, C_OpenSession, where, *chosen, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                          nullptr, nullptr, &session));
  absl::Status st = CK_CALL(fl, C_Login, where, session, CKU_SO, pin_ptr(so_pin),
                            static_cast<CK_ULONG>(so_pin.view().size()));
  if (st.ok()) {
    st = CK_CALL(fl, C_InitPIN, where, session, pin_ptr(user_pin),
                 static_cast<CK_ULONG>(user_pin.view().size()));
    (void)CK_RAW(fl, C_Logout, session);
  }
  (void)CK_RAW(fl, C_CloseSession, session);
  RETURN_IF_ERROR(st);
  CK_TOKEN_INFO info;
  InitResult out{*chosen, ""};
  if (CK_RAW(fl, C_GetTokenInfo, *chosen, &info) == CKR_OK) {
    out.serial = Trim32(info.serialNumber, sizeof(info.serialNumber));
  }
  return out;
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
                        absl::StatusOr<InitResult> r = InitToken(*f);
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
