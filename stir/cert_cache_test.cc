#include "stir/cert_cache.h"

#include <atomic>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::LeafOptions;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

// FakeFetcher answers from a table and counts calls; Block() holds every fetch until Release().
class FakeFetcher : public CertificateFetcher {
 public:
  void Set(const std::string& url, FetchResult r) {
    absl::MutexLock lock(&mu_);
    results_[url] = std::move(r);
  }
  FetchResult Fetch(std::string_view url) const override {
    absl::MutexLock lock(&mu_);
    ++calls_[std::string(url)];
    mu_.Await(absl::Condition(
        +[](bool* b) { return !*b; }, &blocked_));
    auto it = results_.find(std::string(url));
    if (it == results_.end()) return FetchResult::Failure(Reason::kFetchHttpStatus, "404");
    return it->second;
  }
  int Calls(const std::string& url) const {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(url);
    return it == calls_.end() ? 0 : it->second;
  }
  void Block() {
    absl::MutexLock lock(&mu_);
    blocked_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    blocked_ = false;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, FetchResult> results_;
  mutable std::map<std::string, int> calls_;
  mutable bool blocked_ = false;
};

// MemoryStore is a CertificateStore in a map.
class MemoryStore : public CertificateStore {
 public:
  absl::StatusOr<std::optional<Entry>> Get(std::string_view url) override {
    absl::MutexLock lock(&mu_);
    ++gets;
    auto it = entries.find(std::string(url));
    if (it == entries.end()) return std::nullopt;
    return it->second;
  }
  absl::Status Put(std::string_view url, std::string_view pem, absl::Time expires) override {
    absl::MutexLock lock(&mu_);
    ++puts;
    entries[std::string(url)] = Entry{std::string(pem), expires};
    return absl::OkStatus();
  }
  absl::Mutex mu_;
  std::map<std::string, Entry> entries;
  int gets = 0;
  int puts = 0;
};

FetchResult Body(std::string pem, std::optional<absl::Duration> max_age = std::nullopt) {
  FetchResult r;
  r.http_status = 200;
  r.body = std::move(pem);
  r.max_age = max_age;
  return r;
}

class CertCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(kNow));
    CertValidatorOptions vo;
    vo.ca_file = dir_.Write("ca.pem", pki_->root().cert_pem);
    ASSERT_OK_AND_ASSIGN(validator_, CertValidator::New(vo));
    ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
    chain_ = pki_->ChainPem(leaf);
    fetcher_ = std::make_shared<FakeFetcher>();
  }

  std::unique_ptr<X5uCertificateSource> Source(CertCacheOptions o = {},
                                               std::shared_ptr<CertificateStore> store = nullptr) {
    auto s = X5uCertificateSource::New(fetcher_, validator_, o, std::move(store));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::shared_ptr<CertValidator> validator_;
  std::shared_ptr<FakeFetcher> fetcher_;
  std::string chain_;
  const std::string url_ = "https://cert.example.com/709J.pem";
};

TEST_F(CertCacheTest, MissThenHit) {
  fetcher_->Set(url_, Body(chain_));
  auto source = Source();
  CertificateResult first = source->Lookup(url_, kNow);
  ASSERT_TRUE(first.ok()) << first.detail;
  CertificateResult second = source->Lookup(url_, kNow + absl::Hours(1));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first.cert, second.cert);  // the same validated object: no OpenSSL work on a hit
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  CertCacheStats s = source->Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.fetches, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_GT(s.bytes, chain_.size());
}

TEST_F(CertCacheTest, DefaultTtlIs24Hours) {
  fetcher_->Set(url_, Body(chain_));
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Hours(24) - absl::Seconds(1)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Hours(24)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 2);
}

TEST_F(CertCacheTest, MaxAgeHonouredAndCapped) {
  fetcher_->Set(url_, Body(chain_, absl::Seconds(60)));
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Seconds(59)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Seconds(60)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 2);

  // A year of max-age is capped by max_ttl...
  fetcher_->Set(url_, Body(chain_, absl::Hours(24 * 365)));
  CertCacheOptions o;
  o.max_ttl = absl::Hours(48);
  source = Source(o);
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Hours(47)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 3);
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Hours(48)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 4);
}

TEST_F(CertCacheTest, LifetimeCappedByNotAfter) {
  LeafOptions lo;
  lo.not_after_offset = absl::Hours(2);
  ASSERT_OK_AND_ASSIGN(TestCert short_leaf, pki_->IssueLeaf(lo));
  fetcher_->Set(url_, Body(pki_->ChainPem(short_leaf), absl::Hours(24)));
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Minutes(119)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  // Past notAfter the entry is gone: refetched, and the chain is now expired.
  CertificateResult r = source->Lookup(url_, kNow + absl::Hours(3));
  EXPECT_EQ(r.reason, Reason::kCertExpired);
  EXPECT_EQ(fetcher_->Calls(url_), 2);
}

TEST_F(CertCacheTest, NoStoreIsNotCachedUnlessMinTtl) {
  FetchResult r = Body(chain_);
  r.no_store = true;
  fetcher_->Set(url_, r);
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 2);
  CertCacheOptions o;
  o.min_ttl = absl::Minutes(5);
  source = Source(o);
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  ASSERT_TRUE(source->Lookup(url_, kNow + absl::Minutes(4)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 3);
}

TEST_F(CertCacheTest, NegativeCachingOfFetchErrors) {
  auto source = Source();  // the fake answers 404
  EXPECT_EQ(source->Lookup(url_, kNow).reason, Reason::kFetchHttpStatus);
  fetcher_->Set(url_, Body(chain_));
  EXPECT_EQ(source->Lookup(url_, kNow + absl::Seconds(29)).reason, Reason::kFetchHttpStatus);
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  EXPECT_TRUE(source->Lookup(url_, kNow + absl::Seconds(30)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 2);
  CertCacheStats s = source->Stats();
  EXPECT_EQ(s.negative_hits, 1u);
  EXPECT_EQ(s.fetch_errors, 1u);
}

TEST_F(CertCacheTest, NegativeCachingOfValidationFailures) {
  LeafOptions lo;
  lo.tn_auth_list = false;
  ASSERT_OK_AND_ASSIGN(TestCert bad, pki_->IssueLeaf(lo));
  fetcher_->Set(url_, Body(pki_->ChainPem(bad)));
  CertCacheOptions o;
  o.negative_ttl = absl::Seconds(10);
  auto source = Source(o);
  EXPECT_EQ(source->Lookup(url_, kNow).reason, Reason::kCertNoTnAuthList);
  EXPECT_EQ(source->Lookup(url_, kNow + absl::Seconds(9)).reason, Reason::kCertNoTnAuthList);
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  EXPECT_EQ(source->Lookup(url_, kNow + absl::Seconds(10)).reason, Reason::kCertNoTnAuthList);
  EXPECT_EQ(fetcher_->Calls(url_), 2);
  EXPECT_EQ(source->Stats().validation_failures, 2u);
}

TEST_F(CertCacheTest, SingleFlight) {
  fetcher_->Set(url_, Body(chain_));
  fetcher_->Block();
  auto source = Source();
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      if (source->Lookup(url_, kNow).ok()) ok++;
    });
  }
  // Release the fetch only once every other thread waits on the leader (or has been served).
  while (source->Stats().coalesced < kThreads - 1) std::this_thread::yield();
  fetcher_->Release();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  EXPECT_EQ(source->Stats().fetches, 1u);
}

TEST_F(CertCacheTest, EntryBoundEvicts) {
  CertCacheOptions o;
  o.max_entries = 2;
  auto source = Source(o);
  for (int i = 0; i < 3; ++i) {
    fetcher_->Set(url_ + std::to_string(i), Body(chain_));
    ASSERT_TRUE(source->Lookup(url_ + std::to_string(i), kNow).ok());
  }
  CertCacheStats s = source->Stats();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.evictions, 1u);
  // The oldest went first.
  ASSERT_TRUE(source->Lookup(url_ + "0", kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_ + "0"), 2);
  ASSERT_TRUE(source->Lookup(url_ + "2", kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_ + "2"), 1);
}

TEST_F(CertCacheTest, RecentlyUsedEntrySurvives) {
  CertCacheOptions o;
  o.max_entries = 2;
  auto source = Source(o);
  for (int i = 0; i < 2; ++i) {
    fetcher_->Set(url_ + std::to_string(i), Body(chain_));
    ASSERT_TRUE(source->Lookup(url_ + std::to_string(i), kNow).ok());
  }
  ASSERT_TRUE(source->Lookup(url_ + "0", kNow).ok());  // a hit: 0 gets a second chance
  fetcher_->Set(url_ + "2", Body(chain_));
  ASSERT_TRUE(source->Lookup(url_ + "2", kNow).ok());
  ASSERT_TRUE(source->Lookup(url_ + "0", kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_ + "0"), 1);
  ASSERT_TRUE(source->Lookup(url_ + "1", kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_ + "1"), 2);  // 1 was evicted
}

TEST_F(CertCacheTest, ByteBoundEvicts) {
  const size_t per_entry =
      chain_.size() + url_.size() + 1 + X5uCertificateSource::kEntryOverheadBytes;
  CertCacheOptions o;
  o.max_bytes = per_entry * 3 + per_entry / 2;  // room for three
  auto source = Source(o);
  for (int i = 0; i < 5; ++i) {
    fetcher_->Set(url_ + std::to_string(i), Body(chain_));
    ASSERT_TRUE(source->Lookup(url_ + std::to_string(i), kNow).ok());
  }
  CertCacheStats s = source->Stats();
  EXPECT_EQ(s.entries, 3u);
  EXPECT_LE(s.bytes, o.max_bytes);
  EXPECT_EQ(s.evictions, 2u);
}

TEST_F(CertCacheTest, TrustReloadRevalidatesWithoutRefetch) {
  ASSERT_OK_AND_ASSIGN(auto other, TestPki::Create(kNow));
  ASSERT_OK_AND_ASSIGN(TestCert leaf, other->IssueLeaf());
  fetcher_->Set(url_, Body(other->ChainPem(leaf)));
  auto source = Source();
  EXPECT_EQ(source->Lookup(url_, kNow).reason, Reason::kCertUntrusted);
  // SIGHUP after the operator adds the other root: the cached chain is validated again.
  CertValidatorOptions vo;
  vo.ca_file = dir_.Write("ca2.pem", pki_->root().cert_pem + other->root().cert_pem);
  ASSERT_OK(validator_->Reload(vo));
  CertificateResult r = source->Lookup(url_, kNow + absl::Seconds(1));
  EXPECT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  EXPECT_EQ(source->Stats().revalidations, 1u);
  // And removed again: the good entry is revalidated and now fails.
  vo.ca_file = dir_.Write("ca3.pem", pki_->root().cert_pem);
  ASSERT_OK(validator_->Reload(vo));
  EXPECT_EQ(source->Lookup(url_, kNow + absl::Seconds(2)).reason, Reason::kCertUntrusted);
  EXPECT_EQ(fetcher_->Calls(url_), 1);
}

TEST_F(CertCacheTest, LookupBeforeValidityDoesNotPoisonTheEntry) {
  fetcher_->Set(url_, Body(chain_));
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  EXPECT_EQ(source->Lookup(url_, kNow - absl::Hours(2)).reason, Reason::kCertNotYetValid);
  EXPECT_TRUE(source->Lookup(url_, kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 1);
}

TEST_F(CertCacheTest, BackingStore) {
  auto store = std::make_shared<MemoryStore>();
  fetcher_->Set(url_, Body(chain_, absl::Hours(1)));
  auto source = Source({}, store);
  ASSERT_TRUE(source->Lookup(url_, kNow).ok());
  EXPECT_EQ(store->puts, 1);
  EXPECT_EQ(store->entries[url_].expires, kNow + absl::Hours(1));
  // Another verifier (a new source) finds it in the store: no fetch.
  auto second = Source({}, store);
  CertificateResult r = second->Lookup(url_, kNow + absl::Minutes(1));
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  EXPECT_EQ(second->Stats().store_hits, 1u);
  // The entry keeps the store's expiry.
  ASSERT_TRUE(second->Lookup(url_, kNow + absl::Minutes(59)).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 1);
  // A store entry that does not validate is ignored and refetched.
  store->entries[url_] = {"garbage", kNow + absl::Hours(5)};
  auto third = Source({}, store);
  ASSERT_TRUE(third->Lookup(url_, kNow).ok());
  EXPECT_EQ(fetcher_->Calls(url_), 2);
}

TEST_F(CertCacheTest, Limits) {
  auto source = Source();
  EXPECT_EQ(source->Lookup("", kNow).reason, Reason::kX5uNotAllowed);
  EXPECT_EQ(source->Lookup(std::string(5000, 'a'), kNow).reason, Reason::kX5uNotAllowed);
  EXPECT_FALSE(X5uCertificateSource::New(nullptr, validator_).ok());
  CertCacheOptions o;
  o.max_entries = 0;
  EXPECT_FALSE(X5uCertificateSource::New(fetcher_, validator_, o).ok());
  o = {};
  o.min_ttl = absl::Hours(100);
  o.max_ttl = absl::Hours(1);
  EXPECT_FALSE(X5uCertificateSource::New(fetcher_, validator_, o).ok());
}

}  // namespace
}  // namespace shaken::stir
