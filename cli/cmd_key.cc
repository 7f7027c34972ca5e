// cmd_key.cc: shakenctl key generate | list | show | export-public | delete.
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/x509.h"
#include "hsm/key_manager.h"
#include "hsm/secret.h"
#include "stir/absl_compat.h"
#include "stir/status_macros.h"

namespace shaken::cli {
namespace {

struct KeyFlags {
  std::string key;
  std::string label;
  std::string out;
  bool force = false;
  bool json = false;
  bool yes = false;
  bool allow_duplicate = false;
  TokenOptions token;
};

nlohmann::json KeyInfoJson(const hsm::KeyInfo& k) {
  return {{"label", k.label},
          {"id", k.id_hex},
          {"key_type", k.key_type},
          {"curve", k.curve},
          {"uri", k.uri},
          {"token", k.token},
          {"private", k.private_},
          {"sensitive", k.sensitive},
          {"extractable", k.extractable},
          {"always_sensitive", k.always_sensitive},
          {"never_extractable", k.never_extractable},
          {"sign", k.sign},
          {"copyable", k.copyable},
          {"has_public_key", k.has_public_key}};
}

std::string Flag(bool b) { return b ? "true" : "false"; }

void PrintKeyInfo(const hsm::KeyInfo& k) {
  std::cout << "label:      " << k.label << "\n"
            << "id:         " << k.id_hex << "\n"
            << "type:       " << k.key_type << (k.curve.empty() ? "" : " " + k.curve) << "\n"
            << "uri:        " << k.uri << "\n"
            << "attributes: CKA_TOKEN=" << Flag(k.token) << " CKA_PRIVATE=" << Flag(k.private_)
            << " CKA_SENSITIVE=" << Flag(k.sensitive) << " CKA_EXTRACTABLE=" << Flag(k.extractable)
            << " CKA_SIGN=" << Flag(k.sign) << "\n"
            << "            CKA_ALWAYS_SENSITIVE=" << Flag(k.always_sensitive)
            << " CKA_NEVER_EXTRACTABLE=" << Flag(k.never_extractable)
            << " CKA_COPYABLE=" << Flag(k.copyable) << "\n";
}

// The key from a URI: the label comes from object= unless --label is given.
absl::StatusOr<hsm::Pkcs11Uri> ParseKeyUri(const std::string& uri) {
  absl::StatusOr<hsm::Pkcs11Uri> parsed = hsm::Pkcs11Uri::Parse(uri);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad PKCS#11 URI: ", parsed.status().message()));
  }
  return parsed;
}

int Generate(const KeyFlags& f) {
  if (IsPkcs11Uri(f.key)) {
    absl::StatusOr<hsm::Pkcs11Uri> uri = ParseKeyUri(f.key);
    if (!uri.ok()) return Fail(uri.status());
    std::string label = !f.label.empty() ? f.label : uri->object_label().value_or("");
    if (label.empty()) {
      return UsageError("key generate: name the key with object=<label> in the URI or --label");
    }
    absl::StatusOr<std::shared_ptr<hsm::Token>> token = OpenTokenFor(*uri, f.token);
    if (!token.ok()) return Fail(token.status());
    absl::StatusOr<hsm::KeyInfo> info = hsm::GenerateP256Key(
        **token, {.label = label, .allow_duplicate_label = f.allow_duplicate});
    if (!info.ok()) return Fail(info.status());
    absl::StatusOr<hsm::Pkcs11Uri> key_uri = hsm::Pkcs11Uri::Parse(info->uri);
    absl::StatusOr<hsm::PublicKey> pub =
        key_uri.ok() ? hsm::ExportPublicKey(**token, *key_uri)
                     : absl::StatusOr<hsm::PublicKey>(key_uri.status());
    if (!pub.ok()) return Fail(pub.status());
    if (!f.out.empty()) {
      if (absl::Status st = WriteFileAtomic(f.out, pub->pem, {.force = f.force}); !st.ok()) {
        return Fail(st);
      }
    }
    if (f.json) {
      nlohmann::json j = KeyInfoJson(*info);
      j["public_key_pem"] = pub->pem;
      j["spki_sha256"] = Sha256Fingerprint(pub->der);
      PrintJson(j);
    } else {
      std::cout << "Generated an EC P-256 key pair in the token (the private key never leaves it).\n"
                << "template:   CKM_EC_KEY_PAIR_GEN, prime256v1; private key CKA_TOKEN=true "
                   "CKA_PRIVATE=true CKA_SENSITIVE=true CKA_SIGN=true CKA_EXTRACTABLE=false "
                   "CKA_DERIVE=false\n";
      PrintKeyInfo(*info);
      std::cout << "spki-sha256: " << Sha256Fingerprint(pub->der) << "\n" << pub->pem;
    }
    return kExitOk;
  }
  // A lab key in a PEM file (PKCS#8, mode 0600), encrypted when --passphrase-source is given.
  if (absl::Status st = CheckWritable(f.key, f.force); !st.ok()) return Fail(st);
  std::optional<hsm::SecretString> passphrase;
  if (!f.token.passphrase_source.empty()) {
    absl::StatusOr<hsm::PinSource> from = ParsePinSource(f.token.passphrase_source);
    if (!from.ok()) {
      return UsageError(
          "bad --passphrase-source: use file:/path or env:VARIABLE (a passphrase is never given "
          "on the command line)");
    }
    absl::StatusOr<hsm::SecretString> read = from->Read();
    if (!read.ok()) return Fail(read.status());
    passphrase = *std::move(read);
  }
  stir::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Fail(stir::OpenSslError(absl::StatusCode::kInternal, "EC key generation"));
  std::optional<std::string_view> pass;
  if (passphrase.has_value()) pass = ToStd(passphrase->view());
  absl::StatusOr<std::string> pem = stir::PrivateKeyToPem(key.get(), pass);
  if (!pem.ok()) return Fail(pem.status());
  absl::Status st = WriteFileAtomic(f.key, *pem, {.force = f.force, .private_file = true});
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!st.ok()) return Fail(st);
  absl::StatusOr<std::string> pub_pem = stir::PublicKeyToPem(key.get());
  absl::StatusOr<std::string> pub_der = stir::PublicKeyToDer(key.get());
  if (!pub_pem.ok()) return Fail(pub_pem.status());
  if (!pub_der.ok()) return Fail(pub_der.status());
  if (!f.out.empty()) {
    if (absl::Status w = WriteFileAtomic(f.out, *pub_pem, {.force = f.force}); !w.ok()) {
      return Fail(w);
    }
  }
  if (f.json) {
    PrintJson({{"file", f.key},
               {"curve", "P-256"},
               {"public_key_pem", *pub_pem},
               {"spki_sha256", Sha256Fingerprint(*pub_der)}});
  } else {
    std::cout << "Generated an EC P-256 private key in " << f.key
              << (passphrase.has_value() ? " (encrypted, " : " (")
              << "mode 0600; a lab key: production keys belong in a token).\n"
              << "spki-sha256: " << Sha256Fingerprint(*pub_der) << "\n"
              << *pub_pem;
  }
  return kExitOk;
}

int List(const KeyFlags& f) {
  if (!IsPkcs11Uri(f.key)) return UsageError("key list: --token must be a pkcs11: URI");
  absl::StatusOr<hsm::Pkcs11Uri> uri = ParseKeyUri(f.key);
  if (!uri.ok()) return Fail(uri.status());
  absl::StatusOr<std::shared_ptr<hsm::Token>> token = OpenTokenFor(*uri, f.token);
  if (!token.ok()) return Fail(token.status());
  absl::StatusOr<std::vector<hsm::KeyInfo>> keys = hsm::ListKeys(**token);
  if (!keys.ok()) return Fail(keys.status());
  if (f.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const hsm::KeyInfo& k : *keys) arr.push_back(KeyInfoJson(k));
    PrintJson({{"token", (*token)->where()}, {"keys", arr}});
    return kExitOk;
  }
  if (keys->empty()) {
    std::cout << "no private keys on " << (*token)->where() << "\n";
    return kExitOk;
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    if (i) std::cout << "\n";
    PrintKeyInfo((*keys)[i]);
  }
  return kExitOk;
}

// FindKey finds the KeyInfo the URI names (object and/or id).
absl::StatusOr<hsm::KeyInfo> FindKey(hsm::Token& token, const hsm::Pkcs11Uri& uri) {
  ASSIGN_OR_RETURN(std::vector<hsm::KeyInfo> keys, hsm::ListKeys(token));
  std::vector<hsm::KeyInfo> found;
  std::string id_hex =
      uri.object_id().has_value() ? absl::BytesToHexString(*uri.object_id()) : std::string();
  for (hsm::KeyInfo& k : keys) {
    if (uri.object_label().has_value() && k.label != *uri.object_label()) continue;
    if (!id_hex.empty() && k.id_hex != id_hex) continue;
    found.push_back(std::move(k));
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("no private key matches ", uri.redacted()));
  }
  if (found.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        found.size(), " keys match ", uri.redacted(), ": add id=<hex> to choose one"));
  }
  return found.front();
}

int Show(const KeyFlags& f) {
  if (IsPkcs11Uri(f.key)) {
    absl::StatusOr<hsm::Pkcs11Uri> uri = ParseKeyUri(f.key);
    if (!uri.ok()) return Fail(uri.status());
    if (!uri->object_label().has_value() && !uri->object_id().has_value()) {
      return UsageError("key show: the URI must name a key (object=<label> or id=<hex>)");
    }
    absl::StatusOr<std::shared_ptr<hsm::Token>> token = OpenTokenFor(*uri, f.token);
    if (!token.ok()) return Fail(token.status());
    absl::StatusOr<hsm::KeyInfo> info = FindKey(**token, *uri);
    if (!info.ok()) return Fail(info.status());
    absl::StatusOr<hsm::PublicKey> pub = hsm::ExportPublicKey(**token, *uri);
    if (f.json) {
      nlohmann::json j = KeyInfoJson(*info);
      if (pub.ok()) {
        j["public_key_pem"] = pub->pem;
        j["spki_sha256"] = Sha256Fingerprint(pub->der);
      }
      PrintJson(j);
    } else {
      PrintKeyInfo(*info);
      if (pub.ok()) std::cout << "spki-sha256: " << Sha256Fingerprint(pub->der) << "\n" << pub->pem;
    }
    return kExitOk;
  }
  absl::StatusOr<stir::EvpPkeyPtr> pub = LoadPublicKey(f.key, f.token);
  if (!pub.ok()) return Fail(pub.status());
  absl::StatusOr<std::string> der = stir::PublicKeyToDer(pub->get());
  absl::StatusOr<std::string> pem = stir::PublicKeyToPem(pub->get());
  if (!der.ok()) return Fail(der.status());
  if (!pem.ok()) return Fail(pem.status());
  const bool p256 = stir::IsP256Key(pub->get());
  std::string type = EVP_PKEY_get0_type_name(pub->get()) ? EVP_PKEY_get0_type_name(pub->get()) : "?";
  if (f.json) {
    PrintJson({{"file", f.key},
               {"key_type", type},
               {"p256", p256},
               {"bits", EVP_PKEY_get_bits(pub->get())},
               {"public_key_pem", *pem},
               {"spki_sha256", Sha256Fingerprint(*der)}});
  } else {
    std::cout << "file:        " << f.key << "\n"
              << "type:        " << type << " " << EVP_PKEY_get_bits(pub->get()) << " bits"
              << (p256 ? " (P-256: usable for ES256)" : " (not P-256: not usable for SHAKEN)")
              << "\n"
              << "spki-sha256: " << Sha256Fingerprint(*der) << "\n"
              << *pem;
  }
  return kExitOk;
}

int ExportPublic(const KeyFlags& f) {
  if (!f.out.empty()) {
    if (absl::Status st = CheckWritable(f.out, f.force); !st.ok()) return Fail(st);
  }
  absl::StatusOr<stir::EvpPkeyPtr> pub = LoadPublicKey(f.key, f.token);
  if (!pub.ok()) return Fail(pub.status());
  absl::StatusOr<std::string> pem = stir::PublicKeyToPem(pub->get());
  absl::StatusOr<std::string> der = stir::PublicKeyToDer(pub->get());
  if (!pem.ok()) return Fail(pem.status());
  if (!der.ok()) return Fail(der.status());
  if (!f.out.empty()) {
    if (absl::Status st = WriteFileAtomic(f.out, *pem, {.force = f.force}); !st.ok()) {
      return Fail(st);
    }
  }
  if (f.json) {
    PrintJson({{"public_key_pem", *pem}, {"spki_sha256", Sha256Fingerprint(*der)}});
  } else if (f.out.empty()) {
    std::cout << *pem;
  } else {
    Note(absl::StrCat("wrote the public key to ", f.out));
  }
  return kExitOk;
}

int Delete(const KeyFlags& f) {
  if (!f.yes) {
    if (!::isatty(STDIN_FILENO)) {
      return UsageError("key delete destroys the key for good: confirm with --yes");
    }
    std::cerr << "Destroy " << f.key << " for good? Type 'yes': " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "yes") {
      Note("not deleted");
      return kExitError;
    }
  }
  if (IsPkcs11Uri(f.key)) {
    absl::StatusOr<hsm::Pkcs11Uri> uri = ParseKeyUri(f.key);
    if (!uri.ok()) return Fail(uri.status());
    absl::StatusOr<std::shared_ptr<hsm::Token>> token = OpenTokenFor(*uri, f.token);
    if (!token.ok()) return Fail(token.status());
    absl::StatusOr<int> n = hsm::DeleteKey(**token, *uri);
    if (!n.ok()) return Fail(n.status());
    if (f.json) {
      PrintJson({{"deleted_objects", *n}, {"uri", uri->redacted()}});
    } else {
      std::cout << "destroyed " << *n << " object(s) matching " << uri->redacted() << "\n";
    }
    return kExitOk;
  }
  // A file key: check that it is a private key before removing it.
  absl::StatusOr<std::string> pem = ReadInput(f.key, 64 * 1024);
  if (!pem.ok()) return Fail(pem.status());
  const bool is_key = pem->find("PRIVATE KEY-----") != std::string::npos;
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!is_key) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(f.key, " is not a PEM private key; not deleted")));
  }
  if (::unlink(f.key.c_str()) != 0) {
    return Fail(absl::InternalError(absl::StrCat("cannot remove ", f.key)));
  }
  if (f.json) {
    PrintJson({{"deleted_file", f.key}});
  } else {
    std::cout << "removed " << f.key
              << " (the file system may keep copies of its blocks: lab keys only)\n";
  }
  return kExitOk;
}

}  // namespace

void AddTokenFlags(CLI::App* app, TokenOptions* options) {
  app->add_option("--module", options->module,
                  "PKCS#11 module (default: the URI's module-path, $SHAKEN_PKCS11_MODULE, or "
                  "/usr/lib/softhsm/libsofthsm2.so)");
  app->add_option("--pin-source", options->pin_source,
                  "where the user PIN is: file:/path or env:VARIABLE (default: the URI's "
                  "pin-source, else a prompt on a terminal). Never the PIN itself.");
  app->add_option("--passphrase-source", options->passphrase_source,
                  "for an encrypted PEM key file: where its passphrase is, file:/path or "
                  "env:VARIABLE (default: a prompt on a terminal). Never the passphrase itself.");
}

std::string Examples(std::initializer_list<const char*> lines) {
  std::string out = "\nExamples:\n";
  for (const char* l : lines) absl::StrAppend(&out, "  ", l, "\n");
  return out;
}

void AddKeyCommands(CLI::App& root, Registry& registry) {
  CLI::App* key = root.add_subcommand("key", "Key pairs in a PKCS#11 token or (labs) a PEM file");
  key->require_subcommand(1);
  key->footer(Examples({"shakenctl key generate --key 'pkcs11:token=shaken;object=sp-2024' "
                        "--pin-source file:/etc/shaken/pin"}));

  auto f = std::make_shared<KeyFlags>();
  CLI::App* gen = key->add_subcommand(
      "generate", "Generate an EC P-256 key pair in the token (non-extractable) or a PEM file");
  gen->add_option("--key", f->key,
                  "pkcs11:token=<t>;object=<label> (token) or a file path (lab PEM key, 0600)")
      ->required();
  gen->add_option("--label", f->label, "CKA_LABEL (default: the URI's object=)");
  gen->add_option("--public-out", f->out, "also write the public key (PEM) to this file");
  gen->add_flag("--allow-duplicate-label", f->allow_duplicate,
                "create even if a key with this label exists");
  gen->add_flag("--force", f->force, "replace existing output files");
  gen->add_flag("--json", f->json, "print JSON");
  AddTokenFlags(gen, &f->token);
  gen->footer(Examples(
      {"shakenctl key generate --key 'pkcs11:token=shaken;object=sp-2024' --pin-source "
       "file:/etc/shaken/pin",
       "shakenctl key generate --key root-ca.key.pem          # lab key file, mode 0600",
       "shakenctl key generate --key lab.key.pem --passphrase-source file:/etc/shaken/lab.pass"}));
  registry.push_back({gen, [f] { return Generate(*f); }});

  auto lf = std::make_shared<KeyFlags>();
  CLI::App* list = key->add_subcommand("list", "List the private keys of a token");
  list->add_option("--token,--key", lf->key, "pkcs11:token=<label>")->required();
  list->add_flag("--json", lf->json, "print JSON");
  AddTokenFlags(list, &lf->token);
  list->footer(Examples(
      {"shakenctl key list --token pkcs11:token=shaken --pin-source env:SHAKEN_PIN --json"}));
  registry.push_back({list, [lf] { return List(*lf); }});

  auto sf = std::make_shared<KeyFlags>();
  CLI::App* show = key->add_subcommand("show", "Describe one key (token URI or PEM file)");
  show->add_option("--key", sf->key, "pkcs11: URI naming the key, or a PEM file")->required();
  show->add_flag("--json", sf->json, "print JSON");
  AddTokenFlags(show, &sf->token);
  show->footer(Examples({"shakenctl key show --key 'pkcs11:token=shaken;object=sp-2024' "
                         "--pin-source file:/etc/shaken/pin",
                         "shakenctl key show --key root-ca.key.pem"}));
  registry.push_back({show, [sf] { return Show(*sf); }});

  auto ef = std::make_shared<KeyFlags>();
  CLI::App* exp = key->add_subcommand("export-public", "Write a key's public key (SPKI PEM)");
  exp->add_option("--key", ef->key, "pkcs11: URI, PEM private key, public key or certificate")
      ->required();
  exp->add_option("--out,-o", ef->out, "output file (default: stdout)");
  exp->add_flag("--force", ef->force, "replace an existing output file");
  exp->add_flag("--json", ef->json, "print JSON");
  AddTokenFlags(exp, &ef->token);
  exp->footer(Examples({"shakenctl key export-public --key 'pkcs11:token=shaken;object=sp-2024' "
                        "--pin-source env:SHAKEN_PIN -o sp-2024.pub.pem"}));
  registry.push_back({exp, [ef] { return ExportPublic(*ef); }});

  auto df = std::make_shared<KeyFlags>();
  CLI::App* del = key->add_subcommand("delete", "Destroy a key in the token (or a lab key file)");
  del->add_option("--key", df->key, "pkcs11: URI with object= or id= (type= selects one half)")
      ->required();
  del->add_flag("--yes", df->yes, "do not ask for confirmation");
  del->add_flag("--json", df->json, "print JSON");
  AddTokenFlags(del, &df->token);
  del->footer(Examples({"shakenctl key delete --key 'pkcs11:token=shaken;object=old-key' "
                        "--pin-source file:/etc/shaken/pin --yes"}));
  registry.push_back({del, [df] { return Delete(*df); }});
}

}  // namespace shaken::cli
