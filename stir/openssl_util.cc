#include "stir/openssl_util.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/sha.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

const EVP_MD* Sha256Md() {
  // Fetched once: an implicit fetch per call costs more than hashing a PASSporT.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// VerifyContext returns this thread's verify context for `key`, initialised once. Setting up an
// EVP_PKEY_CTX (provider lookup, key import checks) costs about a fifth of a P-256 verification, and
// the same few certificate keys verify most calls. Each context holds a reference to its key, so a
// cached key cannot be freed and its address reused while it is cached. A few entries per thread,
// least recently used replaced.
EVP_PKEY_CTX* VerifyContext(const EVP_PKEY* key) {
  struct Entry {
    const EVP_PKEY* key = nullptr;
    EvpPkeyCtxPtr ctx;
  };
  constexpr size_t kEntries = 8;
  thread_local std::array<Entry, kEntries> cache;
  thread_local size_t next = 0;
  for (size_t i = 0; i < kEntries; ++i) {
    if (cache[i].key == key) {
      if (i != 0) std::swap(cache[i], cache[0]);  // most recent first
      return cache[0].ctx.get();
    }
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(key), nullptr));
  if (ctx == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1) return nullptr;
  Entry& slot = cache[kEntries - 1 - (next++ % (kEntries / 2))];
  slot.key = key;
  slot.ctx = std::move(ctx);
  return slot.ctx.get();
}

BioPtr MemBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::StatusOr<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n < 0) return absl::InternalError("BIO_get_mem_data failed");
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

absl::Status OpenSslError(absl::StatusCode code, std::string_view what) {
  std::string msg(what);
  unsigned long err;
  const char* sep = ": ";
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    absl::StrAppend(&msg, sep, buf);
    sep = "; ";
  }
  return absl::Status(code, msg);
}

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest out;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, Sha256Md(), nullptr) != 1 ||
      len != out.size()) {
    // Hashing memory cannot fail short of memory exhaustion; a zero digest would be a silent
    // forgery hazard, so stop instead.
    abort();
  }
  return out;
}

absl::StatusOr<std::string> EcdsaRawToDer(const Es256Signature& raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return OpenSslError(absl::StatusCode::kInternal, "building ECDSA-Sig-Value");
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return OpenSslError(absl::StatusCode::kInternal, "encoding ECDSA-Sig-Value");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<Es256Signature> EcdsaDerToRaw(std::string_view der) {
  // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2), strict DER: short-form
  // lengths (a P-256 signature is at most 72 bytes), minimal positive integers, nothing after.
  // Parsed by hand: this runs on every software-key signature.
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  const size_t n = der.size();
  auto bad = [] { return absl::InvalidArgumentError("malformed DER ECDSA signature"); };
  if (n < 8 || n > 72 || p[0] != 0x30 || p[1] != n - 2) return bad();
  Es256Signature out{};
  size_t i = 2;
  for (int half = 0; half < 2; ++half) {
    if (i + 2 > n || p[i] != 0x02) return bad();
    size_t len = p[i + 1];
    i += 2;
    if (len == 0 || len > 33 || i + len > n) return bad();
    const uint8_t* v = p + i;
    if (v[0] & 0x80) return bad();                                  // negative
    if (len > 1 && v[0] == 0 && !(v[1] & 0x80)) return bad();       // not minimal
    if (len == 33) {
      // Only a sign byte may make a 33rd byte.
      if (v[0] != 0) {
        return absl::InvalidArgumentError("ECDSA signature r or s is longer than 32 bytes");
      }
      ++v;
      --len;
    }
    std::memcpy(out.data() + half * 32 + (32 - len), v, len);
    i += p[i - 1];
  }
  if (i != n) return bad();
  return out;
}

namespace {

// PBKDF2 iterations for an encrypted key file (OWASP's 2023 figure for PBKDF2-HMAC-SHA256):
// about a third of a second to open the key, once, at start-up.
constexpr int kPbkdf2Iterations = 600000;

// PassphraseCallback hands OpenSSL the passphrase given, or refuses (no terminal prompt, ever).
struct PassphraseRequest {
  std::optional<std::string_view> passphrase;
  bool asked = false;
};

int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* u) {
  auto* req = static_cast<PassphraseRequest*>(u);
  req->asked = true;
  if (!req->passphrase.has_value() || req->passphrase->size() > static_cast<size_t>(size)) {
    return -1;
  }
  std::memcpy(buf, req->passphrase->data(), req->passphrase->size());
  return static_cast<int>(req->passphrase->size());
}

}  // namespace

bool IsEncryptedPrivateKeyPem(std::string_view pem) {
  return pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
         pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
}

absl::StatusOr<EvpPkeyPtr> ReadPrivateKeyPem(std::string_view pem,
                                             std::optional<std::string_view> passphrase) {
  BioPtr bio = MemBio(pem);
  PassphraseRequest req{passphrase};
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, &req));
  if (key != nullptr) return key;
  if (req.asked || IsEncryptedPrivateKeyPem(pem)) {
    ERR_clear_error();
    if (!passphrase.has_value()) {
      return absl::InvalidArgumentError("the private key is encrypted: give its passphrase");
    }
    return absl::InvalidArgumentError(
        "cannot decrypt the private key: wrong passphrase, or a damaged key");
  }
  return OpenSslError(absl::StatusCode::kInvalidArgument,
                      "not a PEM private key (SEC1 or PKCS#8 expected)");
}

absl::StatusOr<std::string> PrivateKeyToPem(const EVP_PKEY* key,
                                            std::optional<std::string_view> passphrase) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr) return OpenSslError(absl::StatusCode::kInternal, "BIO_new");
  EVP_PKEY* k = const_cast<EVP_PKEY*>(key);
  int ok = 0;
  if (passphrase.has_value()) {
    if (passphrase->empty()) return absl::InvalidArgumentError("the passphrase is empty");
    // PBES2: PBKDF2-HMAC-SHA256 with kPbkdf2Iterations and a random salt, then AES-256-CBC
    // (OpenSSL's PEM writer would use 2,048 iterations).
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> info(
        EVP_PKEY2PKCS8(k), PKCS8_PRIV_KEY_INFO_free);
    if (info == nullptr) return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY2PKCS8");
    std::unique_ptr<X509_SIG, decltype(&X509_SIG_free)> sealed(
        PKCS8_encrypt_ex(-1, EVP_aes_256_cbc(), passphrase->data(),
                         static_cast<int>(passphrase->size()), nullptr, 0, kPbkdf2Iterations,
                         info.get(), nullptr, nullptr),
        X509_SIG_free);
    if (sealed == nullptr) return OpenSslError(absl::StatusCode::kInternal, "PKCS8_encrypt");
    ok = PEM_write_bio_PKCS8(bio.get(), sealed.get());
  } else {
    ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  }
  if (ok != 1) return OpenSslError(absl::StatusCode::kInternal, "PEM encoding of the private key");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<EvpPkeyPtr> ReadPublicKeyPem(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "not a PEM public key");
  }
  return key;
}

absl::StatusOr<std::string> PublicKeyToPem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), const_cast<EVP_PKEY*>(key)) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "encoding public key as PEM");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> PublicKeyToDer(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(const_cast<EVP_PKEY*>(key), &der);
  if (len <= 0) return OpenSslError(absl::StatusCode::kInternal, "encoding public key as DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<EvpPkeyPtr> PublicKeyFromP256Point(std::string_view point) {
  if (point.size() != 65 || static_cast<unsigned char>(point[0]) != 0x04) {
    return absl::InvalidArgumentError(
        "EC point is not an uncompressed P-256 point (65 bytes starting 0x04)");
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_fromdata_init");
  }
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<char*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "EC point is not on P-256");
  }
  return EvpPkeyPtr(raw);
}

bool IsP256Key(const EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                     &len) != 1) {
    ERR_clear_error();
    return false;
  }
  return std::strcmp(name, "prime256v1") == 0 || std::strcmp(name, "P-256") == 0;
}

absl::Status VerifyEs256(const EVP_PKEY* key, const Sha256Digest& digest,
                         const Es256Signature& sig) {
  // DER of two 32-byte integers is at most 72 bytes; build it on the stack, no BIGNUM needed.
  unsigned char der[80];
  size_t n = 0;
  auto put_int = [&](const uint8_t* v) {
    size_t i = 0;
    while (i < 31 && v[i] == 0) ++i;  // minimal encoding
    size_t len = 32 - i;
    bool pad = (v[i] & 0x80) != 0;
    der[n++] = 0x02;
    der[n++] = static_cast<unsigned char>(len + (pad ? 1 : 0));
    if (pad) der[n++] = 0x00;
    std::memcpy(der + n, v + i, len);
    n += len;
  };
  der[n++] = 0x30;
  der[n++] = 0;  // length filled below
  put_int(sig.data());
  put_int(sig.data() + 32);
  der[1] = static_cast<unsigned char>(n - 2);

  EVP_PKEY_CTX* ctx = VerifyContext(key);
  if (ctx == nullptr) return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_verify_init");
  int rc = EVP_PKEY_verify(ctx, der, n, digest.data(), digest.size());
  if (rc == 1) return absl::OkStatus();
  ERR_clear_error();
  return absl::InvalidArgumentError("ES256 signature does not verify");
}

void OpenSslFree::operator()(void* p) const { OPENSSL_free(p); }

std::string SerialHex(const ASN1_INTEGER* serial) {
  BignumPtr bn(serial != nullptr ? ASN1_INTEGER_to_BN(serial, nullptr) : nullptr);
  if (!bn) return "";
  OpenSslMallocPtr<char> hex(BN_bn2hex(bn.get()));
  return hex ? std::string(hex.get()) : "";
}

absl::Time Asn1TimeToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

std::string OidText(const ASN1_OBJECT* obj, bool numeric) {
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof(buf), obj, numeric ? 1 : 0);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string NameText(const X509_NAME* name, bool escape_non_ascii) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  const unsigned long flags =
      escape_non_ascii ? XN_FLAG_RFC2253 : (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string NameEntry(const X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  OpenSslMallocPtr<unsigned char> owned(utf8);
  if (n < 0) return "";
  return std::string(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
}

std::string CertificateDer(const X509* cert) {
  unsigned char* p = nullptr;
  int n = i2d_X509(cert, &p);
  OpenSslMallocPtr<unsigned char> owned(p);
  if (n <= 0) return "";
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::vector<std::string> DistributionPointUris(const DIST_POINT* dp) {
  std::vector<std::string> out;
  if (dp == nullptr || dp->distpoint == nullptr || dp->distpoint->type != 0) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, i);
    if (g->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = g->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, err != 0 ? absl::StrCat(": ", std::strerror(err)) : ""));
  }
  std::string data;
  data.resize(max_bytes + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
  }
  return data;
}

absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(std::string_view data) {
  std::vector<X509CrlPtr> crls;
  if (data.empty() || data.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("no CRL: the data is empty or too large");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return OpenSslError(absl::StatusCode::kInternal, "BIO_new_mem_buf");
  while (true) {
    X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) break;
    crls.push_back(std::move(crl));
  }
  ERR_clear_error();
  if (crls.empty()) {  // DER
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size())));
    ERR_clear_error();
    if (crl) crls.push_back(std::move(crl));
  }
  if (crls.empty()) return absl::InvalidArgumentError("holds no PEM or DER CRL");
  return crls;
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode,
                             bool replace) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string tmp = absl::StrCat(dir, "/.", path.substr(slash == std::string::npos ? 0 : slash + 1),
                                 ".tmp-XXXXXX");
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create a temporary file beside ", path, ": ", strerror(errno)));
  }
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(err)));
  };
  // mkstemp creates 0600; anything else is set explicitly (the umask does not apply to fchmod).
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail("cannot chmod");
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot close ", path, ": ", strerror(err)));
  }
  if (replace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot rename onto ", path, ": ", strerror(err)));
    }
    return absl::OkStatus();
  }
  // link(2) fails with EEXIST when the name is taken: never clobber.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " already exists; use --force to replace it"));
    }
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", strerror(err)));
  }
  ::unlink(tmp.c_str());
  return absl::OkStatus();
}

}  // namespace shaken::stir
