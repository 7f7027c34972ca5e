// cmd_pa.cc: `shakenctl pa token`: a lab STI-PA issuing the Authority Token (RFC 9447 "atc",
// RFC 9448 TNAuthList profile) that an SP presents in the ACME tkauth-01 challenge. The PA key
// may be in a token or a file; the account key is only read for its public half.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/jws.h"
#include "cli/acme_cli.h"
#include "cli/pki_common.h"
#include "stir/absl_compat.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli {

absl::StatusOr<std::string> ReadSecretFrom(const std::string& source, std::string_view what) {
  absl::StatusOr<hsm::PinSource> src = hsm::PinSource::Parse(source);
  if (!src.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " source ", src.status().message(),
                                                   " (never the secret itself)"));
  }
  absl::StatusOr<hsm::SecretString> secret = src->Read();
  if (!secret.ok()) return stir::WithPrefix(secret.status(), absl::StrCat(ToAbsl(what), ": "));
  return std::string(secret->view());
}

absl::StatusOr<std::string> MakePaToken(const PaTokenRequest& r) {
  RETURN_IF_ERROR(stir::ValidateSpc(r.spc));
  ASSIGN_OR_RETURN(std::string der,
                   stir::EncodeTnAuthList({{stir::TnAuthEntry::Kind::kSpc, r.spc}}));
  std::string fingerprint = r.fingerprint;
  if (fingerprint.empty() == r.account_key.empty()) {
    return absl::InvalidArgumentError(
        "give the ACME account key (--account-key) or its --fingerprint");
  }
  if (fingerprint.empty()) {
    ASSIGN_OR_RETURN(stir::EvpPkeyPtr account, LoadPublicKey(r.account_key, r.token));
    ASSIGN_OR_RETURN(fingerprint, acme::AccountKeyFingerprint(account.get()));
  }
  if (r.lifetime_seconds < 1 || r.lifetime_seconds > 30 * 86400) {
    return absl::InvalidArgumentError("--lifetime must be 1 s .. 30 days");
  }
  ASSIGN_OR_RETURN(LoadedKey pa, LoadSigningKey(r.pa_key, r.token));
  acme::AuthorityTokenClaims c;
  c.tnauthlist_der = der;
  c.fingerprint = fingerprint;
  c.ca = r.ca;
  c.iss = r.iss;
  c.iat = r.iat.has_value() ? absl::FromUnixSeconds(*r.iat)
                            : absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  c.exp = c.iat + absl::Seconds(r.lifetime_seconds);
  return acme::SignAuthorityToken(*pa.signer, r.x5u, c);
}

void AddPaCommands(CLI::App& root, Registry& registry) {
  CLI::App* pa = root.add_subcommand("pa", "Lab STI Policy Administrator (STI-PA) operations");
  pa->require_subcommand(1);
  auto f = std::make_shared<PaTokenRequest>();
  auto out = std::make_shared<pki::OutFlags>();
  CLI::App* t = pa->add_subcommand(
      "token",
      "Issue an Authority Token (RFC 9448 TNAuthList \"atc\") binding an SPC to an ACME account "
      "key, signed ES256 by the PA key with x5u = the PA certificate");
  t->add_option("--key", f->pa_key, "the PA's key: pkcs11: URI or PEM file")->required();
  t->add_option("--x5u", f->x5u, "https URL where the PA certificate (chain) is published")
      ->required();
  t->add_option("--spc", f->spc, "the Service Provider Code the token authorizes")->required();
  t->add_option("--account-key", f->account_key,
                "the SP's ACME account key: pkcs11: URI, PEM private or public key");
  t->add_option("--fingerprint", f->fingerprint,
                "instead of --account-key: its fingerprint, \"SHA256 AA:BB:...\"");
  t->add_option("--iss", f->iss, "issuer name (iss)")->capture_default_str();
  t->add_option("--lifetime", f->lifetime_seconds, "seconds from iat to exp")
      ->capture_default_str();
  t->add_option("--iat", f->iat, "issued-at as a Unix time (default now)");
  t->add_flag("--ca", f->ca, "atc ca: true (the holder may get a CA certificate)");
  t->add_option("--out,-o", out->out, "token file (default: stdout)");
  t->add_flag("--force", out->force, "replace an existing output file");
  AddTokenFlags(t, &f->token);
  t->footer(Examples(
      {"shakenctl pa token --key pa.key.pem --x5u https://pa.lab/pa.pem --spc 709J \\",
       "    --account-key acct.key.pem -o 709J.atc",
       "shakenctl pa token --key 'pkcs11:token=pa;object=pa' --pin-source file:/etc/pa.pin \\",
       "    --x5u https://pa.lab/pa.pem --spc 709J --fingerprint 'SHA256 56:3E:...'"}));
  registry.push_back({t, [f, out]() -> int {
                        if (absl::Status st = pki::CheckOut(*out); !st.ok()) return Fail(st);
                        absl::StatusOr<std::string> token = MakePaToken(*f);
                        if (!token.ok()) return Fail(token.status());
                        if (out->out.empty()) {
                          std::cout << *token << "\n";
                          return kExitOk;
                        }
                        absl::Status st =
                            WriteFileAtomic(out->out, *token + "\n", {.force = out->force});
                        return st.ok() ? kExitOk : Fail(st);
                      }});
}

}  // namespace shaken::cli
