#include "daemon/sip/transports.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/log.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

namespace shaken::daemon::sip {
namespace {

constexpr char kAgentFile[] = "agent.pem";   // sofia-sip: the certificate and its key
constexpr char kCaFile[] = "cafile.pem";     // sofia-sip: the CAs of client certificates

// NoPassphrase refuses to decrypt: an encrypted key is a configuration error, not a prompt.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return 0; }

// Secret wipes a file's contents when it goes (the TLS key passes through it).
struct Secret {
  std::string data;
  ~Secret() { OPENSSL_cleanse(data.data(), data.size()); }
};

absl::Status WritePrivateFile(const std::string& path, std::string_view data) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status Invalid(absl::string_view key, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("listen.sip.tls.", key, ": ", path, ": ", why));
}

}  // namespace

std::string SofiaUrl(const std::string& hostport, const char* transport) {
  const size_t colon = hostport.rfind(':');
  std::string port = hostport.substr(colon + 1);
  if (port == "0") port = "*";  // sofia: any free port
  const bool tls = std::string_view(transport) == "tls";
  return absl::StrCat(tls ? "sips:" : "sip:", hostport.substr(0, colon), ":", port,
                      ";transport=", transport);
}

void WarnIfReceiveBufferCapped(size_t wanted) {
  size_t max = 0;
  std::ifstream("/proc/sys/net/core/rmem_max") >> max;
  if (wanted == 0 || max == 0 || wanted <= max) return;
  std::ifstream status("/proc/self/status");
  constexpr uint64_t kCapNetAdmin = uint64_t{1} << 12;
  for (std::string line; std::getline(status, line);) {
    uint64_t caps = 0;
    if (line.rfind("CapEff:", 0) == 0 && absl::SimpleHexAtoi(line.substr(7), &caps) &&
        (caps & kCapNetAdmin) != 0) {
      return;  // sofia-sip sets it with SO_RCVBUFFORCE
    }
  }
  LogWarn("sip_receive_buffer_capped",
          {{"listen.sip.udp_receive_buffer", absl::StrCat(wanted)},
           {"net.core.rmem_max", absl::StrCat(max)},
           {"fix", "raise net.core.rmem_max (sysctl) to at least udp_receive_buffer"}});
}

namespace {

// TlsPem is listen.sip.tls's files, read and checked.
struct TlsPem {
  std::string cert;
  Secret key;
  std::string ca;  // empty: no client_ca_file
  bool chain = false;  // cert holds more than one certificate
};

absl::StatusOr<TlsPem> ReadTlsPem(const TlsConfig& tls) {
  // What the PEM readers leave in this thread's OpenSSL error queue (an end of file, a refused
  // key) must not reach the TLS stack that runs on the same thread later.
  struct ClearErrors {
    ~ClearErrors() { ERR_clear_error(); }
  } clear_errors;
  TlsPem pem;
  ASSIGN_OR_RETURN(pem.cert, stir::ReadFile(tls.cert_file));
  ASSIGN_OR_RETURN(pem.key.data, stir::ReadFile(tls.key_file));
  stir::BioPtr cert_bio(BIO_new_mem_buf(pem.cert.data(), static_cast<int>(pem.cert.size())));
  stir::X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return Invalid("cert_file", tls.cert_file, "holds no PEM certificate");
  stir::X509Ptr next(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  pem.chain = next != nullptr;
  stir::BioPtr key_bio(BIO_new_mem_buf(pem.key.data.data(), static_cast<int>(pem.key.data.size())));
  stir::EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return Invalid("key_file", tls.key_file,
                   "holds no unencrypted PEM private key (an encrypted key cannot be read at "
                   "start-up)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Invalid("key_file", tls.key_file,
                   absl::StrCat("is not the key of the certificate in ", tls.cert_file));
  }
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(pem.ca, stir::ReadFile(tls.client_ca_file));
    stir::BioPtr ca_bio(BIO_new_mem_buf(pem.ca.data(), static_cast<int>(pem.ca.size())));
    if (stir::X509Ptr(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr)) == nullptr) {
      return Invalid("client_ca_file", tls.client_ca_file, "holds no PEM certificate");
    }
  }
  return pem;
}

}  // namespace

absl::Status CheckTlsFiles(const TlsConfig& tls) { return ReadTlsPem(tls).status(); }

absl::StatusOr<std::unique_ptr<TlsFileDirectory>> TlsFileDirectory::Create(const TlsConfig& tls) {
  ASSIGN_OR_RETURN(TlsPem pem, ReadTlsPem(tls));
  if (pem.chain) {
    // sofia-sip 1.12 loads the first certificate of the file only.
    LogWarn("sip_tls_chain_not_sent",
            {{"listen.sip.tls.cert_file", tls.cert_file},
             {"why", "SIP over TLS sends only the first certificate of the file, not the "
                     "intermediate CAs after it"},
             {"fix", "issue the SIP certificate from a CA the SBCs trust directly, or give the "
                     "SBCs the intermediate CAs"}});
  }
  std::string base = "/tmp";
  for (const char* env : {"RUNTIME_DIRECTORY", "TMPDIR"}) {
    const char* v = std::getenv(env);
    // RUNTIME_DIRECTORY may list several directories, separated by ':'.
    if (v != nullptr && *v == '/') {
      base = std::string(v).substr(0, std::string_view(v).find(':'));
      break;
    }
  }
  std::string tmpl = absl::StrCat(base, "/shakend-sip-tls.XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a private directory in ", base,
                                            " for listen.sip.tls (set TMPDIR to a writable "
                                            "directory)"));
  }
  std::unique_ptr<TlsFileDirectory> dir(new TlsFileDirectory(tmpl));
  Secret agent;
  agent.data = absl::StrCat(pem.cert, "\n", pem.key.data);
  RETURN_IF_ERROR(WritePrivateFile(absl::StrCat(dir->path_, "/", kAgentFile), agent.data));
  if (!pem.ca.empty()) {
    RETURN_IF_ERROR(WritePrivateFile(absl::StrCat(dir->path_, "/", kCaFile), pem.ca));
  }
  return dir;
}

TlsFileDirectory::~TlsFileDirectory() {
  for (const char* name : {kAgentFile, kCaFile}) unlink(absl::StrCat(path_, "/", name).c_str());
  rmdir(path_.c_str());
}

}  // namespace shaken::daemon::sip
