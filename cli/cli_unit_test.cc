// cli_unit_test.cc: shakenctl without a token: the library functions (atomic files, X.509 signing through stir::Signer, the CE-* lint) and the binary's handling of bad
// input (usage errors, unreadable files, malformed CSRs, existing outputs), with file keys.
#include <sys/stat.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "cli/common.h"
#include "cli/lint.h"
#include "cli/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/cert_validator.h"
#include "stir/memory_signer.h"
#include "tests/cli_test_support.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::cli {
namespace {

using ::shaken::testing::FileExists;
using ::shaken::testing::RunCommand;
using ::shaken::testing::RunOptions;
using ::shaken::testing::RunProgram;
using ::shaken::testing::Shakenctl;
using ::shaken::testing::ReadFileOrEmpty;
using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::testing::HasSubstr;

TEST(AtomicFileTest, NeverOverwritesWithoutForceAndKeysArePrivate) {
  TempDir dir;
  const std::string path = dir.path() + "/out.pem";
  ASSERT_OK(WriteFileAtomic(path, "one", {.private_file = true}));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(WriteFileAtomic(path, "two", {}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("--force")));
  EXPECT_EQ(ReadFileOrEmpty(path), "one");
  ASSERT_OK(WriteFileAtomic(path, "three", {.force = true}));
  EXPECT_EQ(ReadFileOrEmpty(path), "three");
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_THAT(WriteFileAtomic(dir.path() + "/no/such/dir/x", "x", {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(PinSourceTest, NeverFromTheCommandLine) {
  EXPECT_THAT(ParsePinSource("1234"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("never given")));
  // A PIN typed where its source belongs is not repeated in the message.
  EXPECT_THAT(ParsePinSource("1234").status().message(), ::testing::Not(HasSubstr("1234")));
  EXPECT_OK(ParsePinSource("file:/etc/pin"));
  EXPECT_OK(ParsePinSource("env:SHAKEN_PIN"));
}

TEST(X509SigningTest, CertificateSignedThroughSignerVerifiesAndLints) {
  ASSERT_OK_AND_ASSIGN(auto ca_signer, stir::MemorySigner::Generate());
  ASSERT_OK_AND_ASSIGN(auto subject, ShakenSubject("US", "Test", "Test STI ROOT"));
  stir::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  X509_set_subject_name(cert.get(), subject.get());
  X509_set_issuer_name(cert.get(), subject.get());
  X509_set_pubkey(cert.get(), const_cast<EVP_PKEY*>(ca_signer->key()));
  ASSERT_OK(SetRandomSerial(cert.get()));
  ASSERT_OK(SetValidity(cert.get(), absl::Now() - absl::Hours(1), absl::Now() + absl::Hours(24)));
  ASSERT_OK(AddConfExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  ASSERT_OK(AddConfExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign"));
  ASSERT_OK(AddConfExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  ASSERT_OK_AND_ASSIGN(stir::X509Ptr signed_cert,
                       SignCertificate(cert.get(), *ca_signer, ca_signer->key()));
  EXPECT_EQ(X509_verify(signed_cert.get(), const_cast<EVP_PKEY*>(ca_signer->key())), 1);
  EXPECT_EQ(X509_get_signature_nid(signed_cert.get()), NID_ecdsa_with_SHA256);
  std::vector<LintRow> rows = LintCertificate(signed_cert.get(), CertRole::kRoot, absl::Now());
  EXPECT_FALSE(::shaken::cli::HasFailure(rows)) << rows.size();
  EXPECT_EQ(RoleOf(signed_cert.get()), CertRole::kRoot);

  // A signer that is not the issuer's key is caught before anything is written.
  ASSERT_OK_AND_ASSIGN(auto other, stir::MemorySigner::Generate());
  EXPECT_THAT(SignCertificate(cert.get(), *other, ca_signer->key()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not the issuer")));
}

TEST(LintTest, FlagsProfileDefectsOfTestPkiLeaves) {
  ASSERT_OK_AND_ASSIGN(auto pki, shaken::testing::TestPki::Create(absl::Now()));
  shaken::testing::LeafOptions bad;
  bad.policy_oids = {"2.16.840.1.114569.1.1.1"};
  bad.key_usage = shaken::testing::LeafOptions::KeyUsage::kKeyCertSign;
  bad.tn_auth_list = false;
  ASSERT_OK_AND_ASSIGN(auto leaf, pki->IssueLeaf(bad));
  std::vector<LintRow> rows = LintCertificate(leaf.cert.get(), CertRole::kEndEntity, absl::Now());
  auto status_of = [&](const std::string& id) {
    for (const LintRow& r : rows) {
      if (r.id == id) return r.status;
    }
    return LintStatus::kInfo;
  };
  EXPECT_EQ(status_of("CE-1"), LintStatus::kPass);
  EXPECT_EQ(status_of("CE-6"), LintStatus::kFail);
  EXPECT_EQ(status_of("CE-8"), LintStatus::kFail);
  EXPECT_EQ(status_of("CE-10"), LintStatus::kFail);
  EXPECT_TRUE(::shaken::cli::HasFailure(rows));
}

// --- the binary, with file keys ---

TEST(ShakenctlTest, HelpAndUsageErrors) {
  auto help = Shakenctl({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
  auto verify_help = Shakenctl({"passport", "verify", "--help"});
  EXPECT_EQ(verify_help.exit_code, 0);
  EXPECT_THAT(verify_help.out, HasSubstr("436 Bad Identity Info"));
  EXPECT_THAT(verify_help.out, HasSubstr("Examples"));
  EXPECT_EQ(Shakenctl({}).exit_code, 2);
  EXPECT_EQ(Shakenctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Shakenctl({"key", "generate"}).exit_code, 2);  // --key is required
  EXPECT_EQ(Shakenctl({"passport", "create", "--key", "k", "--x5u", "https://a/b", "--attest",
                       "D", "--orig", "1", "--dest", "2"})
                .exit_code,
            2);
  // A PIN is never taken from the command line.
  EXPECT_EQ(Shakenctl({"key", "list", "--token", "pkcs11:token=x", "--pin", "1234"}).exit_code, 2);
}

// A lab key file encrypted at rest: generated with a passphrase source, usable by every command
// that takes a key file when given the same source, refused with what to give otherwise.
TEST(ShakenctlTest, EncryptedKeyFiles) {
  TempDir dir;
  const std::string d = dir.path();
  const std::string pass = dir.Write("ca.pass", "correct horse battery\n");
  auto gen = Shakenctl({"key", "generate", "--key", d + "/ca.key", "--passphrase-source",
                        "file:" + pass});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.out, HasSubstr("encrypted"));
  const std::string pem = ReadFileOrEmpty(d + "/ca.key");
  EXPECT_THAT(pem, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  // openssl opens it with the same passphrase; the scheme is PBES2 / PBKDF2 / AES-256-CBC.
  auto ossl = RunProgram({"openssl", "pkey", "-in", d + "/ca.key", "-passin", "file:" + pass,
                          "-noout"});
  EXPECT_EQ(ossl.exit_code, 0) << ossl.err;
  auto asn1 = RunProgram({"openssl", "asn1parse", "-in", d + "/ca.key"});
  EXPECT_THAT(asn1.out, HasSubstr("PBES2"));
  EXPECT_THAT(asn1.out, HasSubstr("PBKDF2"));
  EXPECT_THAT(asn1.out, HasSubstr("aes-256-cbc"));
  EXPECT_THAT(asn1.out, HasSubstr("hmacWithSHA256"));

  // Used as a CA key and as a PASSporT signing key, with the passphrase from the environment.
  auto root = Shakenctl({"ca", "init", "--key", d + "/ca.key", "--passphrase-source",
                         "file:" + pass, "--cn", "Sealed STI ROOT", "-o", d + "/root.pem"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  RunOptions with_env;
  with_env.env["SEALED_PASS"] = "correct horse battery";
  auto created = RunCommand({SHAKENCTL_PATH, "passport", "create", "--key", d + "/ca.key",
                             "--passphrase-source", "env:SEALED_PASS", "--x5u",
                             "https://cert.example.org/sp.pem", "--attest", "A", "--orig",
                             "12155550121", "--dest", "12155550131"},
                            with_env);
  EXPECT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr(";ppt=shaken"));

  // Without a passphrase source (no terminal here): exit 1 and what to give.
  auto no_pass = Shakenctl({"ca", "init", "--key", d + "/ca.key", "--cn", "X", "-o",
                            d + "/x.pem"});
  EXPECT_EQ(no_pass.exit_code, 1);
  EXPECT_THAT(no_pass.err, HasSubstr("is an encrypted key: give --passphrase-source"));
  EXPECT_FALSE(FileExists(d + "/x.pem"));
  const std::string wrong = dir.Write("wrong.pass", "not it\n");
  auto bad_pass = Shakenctl({"ca", "init", "--key", d + "/ca.key", "--passphrase-source",
                             "file:" + wrong, "--cn", "X", "-o", d + "/x.pem"});
  EXPECT_EQ(bad_pass.exit_code, 1);
  EXPECT_THAT(bad_pass.err, HasSubstr("wrong passphrase"));
  auto literal = Shakenctl({"ca", "init", "--key", d + "/ca.key", "--passphrase-source",
                            "correct horse battery", "--cn", "X", "-o", d + "/x.pem"});
  EXPECT_NE(literal.exit_code, 0);
  EXPECT_THAT(literal.err, HasSubstr("never given on the command line"));
  EXPECT_THAT(literal.err, ::testing::Not(HasSubstr("correct horse battery")));
}

TEST(ShakenctlTest, FileKeyCeremonyAndBadInput) {
  TempDir dir;
  const std::string d = dir.path();
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", d + "/root.key"}).exit_code, 0);
  struct stat st;
  ASSERT_EQ(::stat((d + "/root.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Existing output without --force: refused, file unchanged.
  const std::string before = ReadFileOrEmpty(d + "/root.key");
  auto again = Shakenctl({"key", "generate", "--key", d + "/root.key"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_EQ(ReadFileOrEmpty(d + "/root.key"), before);

  ASSERT_EQ(Shakenctl({"ca", "init", "--key", d + "/root.key", "--cn", "Unit STI ROOT", "-o",
                       d + "/root.pem"})
                .exit_code,
            0);
  ASSERT_EQ(Shakenctl({"key", "generate", "--key", d + "/sp.key"}).exit_code, 0);

  // Missing SPC: clear message, no file.
  auto no_spc = Shakenctl({"csr", "create", "--key", d + "/sp.key", "--org", "Unit", "-o",
                           d + "/sp.csr"});
  EXPECT_EQ(no_spc.exit_code, 1);
  EXPECT_THAT(no_spc.err, HasSubstr("missing SPC"));
  EXPECT_FALSE(FileExists(d + "/sp.csr"));
  // Bad SPC, bad TN.
  auto bad_spc = Shakenctl({"csr", "create", "--key", d + "/sp.key", "--org", "Unit", "--spc",
                            "70 9j", "-o", d + "/sp.csr"});
  EXPECT_EQ(bad_spc.exit_code, 1);
  EXPECT_THAT(bad_spc.err, HasSubstr("bad SPC"));
  auto bad_tn = Shakenctl({"csr", "create", "--key", d + "/sp.key", "--cn", "Delegate", "--org",
                           "Unit", "--tn", "215-CALL-NOW", "-o", d + "/sp.csr"});
  EXPECT_EQ(bad_tn.exit_code, 1);
  EXPECT_THAT(bad_tn.err, HasSubstr("bad --tn"));
  EXPECT_FALSE(FileExists(d + "/sp.csr"));

  // Malformed CSR: clear message, no certificate written.
  std::string junk = dir.Write("junk.csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                            "-----END CERTIFICATE REQUEST-----\n");
  auto bad_csr = Shakenctl({"ca", "issue", "--ca-cert", d + "/root.pem", "--ca-key",
                            d + "/root.key", "--csr", junk, "-o", d + "/sp.pem"});
  EXPECT_EQ(bad_csr.exit_code, 1);
  EXPECT_THAT(bad_csr.err, HasSubstr("malformed CSR"));
  EXPECT_FALSE(FileExists(d + "/sp.pem"));

  // Unreadable file.
  auto unreadable = Shakenctl({"cert", "show", d + "/does-not-exist.pem"});
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_THAT(unreadable.err, HasSubstr("cannot read"));

  // A delegate CSR (TN entries) is refused by `ca issue` unless --allow-delegate.
  ASSERT_EQ(Shakenctl({"csr", "create", "--key", d + "/sp.key", "--cn", "Delegate 1", "--org",
                       "Unit", "--tn", "+1 215 555 0121", "-o", d + "/delegate.csr"})
                .exit_code,
            0);
  auto delegate = Shakenctl({"ca", "issue", "--ca-cert", d + "/root.pem", "--ca-key",
                             d + "/root.key", "--csr", d + "/delegate.csr", "-o", d + "/d.pem"});
  EXPECT_EQ(delegate.exit_code, 1);
  EXPECT_THAT(delegate.err, HasSubstr("exactly one SPC"));

  // The wrong CA key for the CA certificate.
  ASSERT_EQ(Shakenctl({"csr", "create", "--key", d + "/sp.key", "--org", "Unit", "--spc", "709J",
                       "-o", d + "/sp.csr"})
                .exit_code,
            0);
  auto wrong_key = Shakenctl({"ca", "issue", "--ca-cert", d + "/root.pem", "--ca-key",
                              d + "/sp.key", "--csr", d + "/sp.csr", "-o", d + "/sp.pem"});
  EXPECT_EQ(wrong_key.exit_code, 1);
  EXPECT_THAT(wrong_key.err, HasSubstr("does not match"));
  EXPECT_FALSE(FileExists(d + "/sp.pem"));

  // The --spc check against the CSR.
  auto other_spc = Shakenctl({"ca", "issue", "--ca-cert", d + "/root.pem", "--ca-key",
                              d + "/root.key", "--csr", d + "/sp.csr", "--spc", "1234", "-o",
                              d + "/sp.pem"});
  EXPECT_EQ(other_spc.exit_code, 1);
  EXPECT_THAT(other_spc.err, HasSubstr("not SPC 1234"));

  // Without --crl-url the EE lacks CE-9: cert check exits 8.
  ASSERT_EQ(Shakenctl({"ca", "issue", "--ca-cert", d + "/root.pem", "--ca-key", d + "/root.key",
                       "--csr", d + "/sp.csr", "-o", d + "/sp.pem"})
                .exit_code,
            0);
  auto lint = Shakenctl({"cert", "check", d + "/sp.pem"});
  EXPECT_EQ(lint.exit_code, 8);
  EXPECT_THAT(lint.out, HasSubstr("CE-9   FAIL"));
}

}  // namespace
}  // namespace shaken::cli
