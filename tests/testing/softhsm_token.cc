#include "tests/testing/softhsm_token.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace shaken::testing {
namespace {

absl::Status Run(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // Quiet: softhsm2-util prints the slot it re-assigned the token to.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return absl::NotFoundError(absl::StrCat("cannot run ", argv[0]));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " ", argv[1], " failed: status ", status));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SoftHsmToken>> SoftHsmToken::Create(std::vector<std::string> labels) {
  std::unique_ptr<SoftHsmToken> t(new SoftHsmToken());
  std::string tmpl = (std::filesystem::temp_directory_path() / "shaken-softhsm-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  t->dir_ = tmpl;
  t->token_dir_ = t->dir_ + "/tokens";
  t->labels_ = std::move(labels);
  std::filesystem::create_directory(t->token_dir_);
  std::string conf = t->dir_ + "/softhsm2.conf";
  {
    std::ofstream f(conf);
    f << "directories.tokendir = " << t->token_dir_ << "\n"
      << "objectstore.backend = file\n"
      << "log.level = ERROR\n"
      << "slots.removable = false\n";
  }
  t->pin_file_ = t->dir_ + "/user.pin";
  {
    std::ofstream f(t->pin_file_);
    f << t->pin_ << "\n";
  }
  ::chmod(t->pin_file_.c_str(), 0600);
  ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  for (const std::string& label : t->labels_) {
    absl::Status st = Run({"softhsm2-util", "--init-token", "--free", "--label", label, "--pin",
                           t->pin_, "--so-pin", t->so_pin_});
    if (!st.ok()) return st;
  }
  return t;
}

SoftHsmToken& SoftHsmToken::Shared() {
  static SoftHsmToken* shared = [] {
    auto t = Create({"shaken-test", "shaken-test-2"});
    if (!t.ok()) {
      std::fprintf(stderr, "cannot create the SoftHSM2 test token: %s\n",
                   std::string(t.status().message()).c_str());
      std::abort();
    }
    // Removed at exit; the module is never finalised (SoftHSM2 quirk), which is fine for files.
    static std::unique_ptr<SoftHsmToken> owner = std::move(*t);
    return owner.get();
  }();
  return *shared;
}

SoftHsmToken::~SoftHsmToken() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string SoftHsmToken::TokenUri(const std::string& label) const {
  return absl::StrCat("pkcs11:token=", label.empty() ? labels_.front() : label);
}

std::string SoftHsmToken::KeyUri(const std::string& key_label, const std::string& token_label) const {
  return absl::StrCat(TokenUri(token_label), ";object=", key_label, ";type=private");
}

std::vector<std::string> SoftHsmToken::TokenSubdirs() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(token_dir_, ec)) {
    if (e.is_directory()) out.push_back(e.path().string());
  }
  return out;
}

}  // namespace shaken::testing
