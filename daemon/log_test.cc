#include "daemon/log.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <atomic>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/support/log.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::daemon {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

class AuditTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_OK(InitLogging(LogFormat::kText, LogLevel::kInfo, "")); }
  void AuditOne(const std::string& padding = "") {
    Audit("sign", {{"client", "sbc.demo"}, {"result", "OK"}, {"pad", padding}});
  }
  testing::TempDir dir_;
};

TEST_F(AuditTest, AFailedWriteIsCountedAndRefusesSigningByDefault) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, "/dev/full"));
  EXPECT_TRUE(AuditAvailable());
  EXPECT_OK(CheckAuditForSigning());
  const uint64_t before = AuditWriteFailures();
  AuditOne();
  EXPECT_EQ(AuditWriteFailures(), before + 1);
  EXPECT_FALSE(AuditAvailable());
  EXPECT_THAT(CheckAuditForSigning(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/dev/full")));
  AuditOne();
  EXPECT_EQ(AuditWriteFailures(), before + 2);  // every failed write, not only the first
}

TEST_F(AuditTest, ContinuePolicyKeepsSigning) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, "/dev/full", AuditFailurePolicy::kContinue));
  AuditOne();
  EXPECT_FALSE(AuditAvailable());
  EXPECT_OK(CheckAuditForSigning());
}

TEST_F(AuditTest, AvailableAgainOnceARecordLands) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, "/dev/full"));
  AuditOne();
  EXPECT_FALSE(AuditAvailable());
  const std::string path = dir_.path() + "/audit.log";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, path));
  AuditOne();
  EXPECT_TRUE(AuditAvailable());
  EXPECT_OK(CheckAuditForSigning());
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(AuditTest, RotatedFileIsReopenedWithoutLosingOrTearingARecord) {
  const std::string path = dir_.path() + "/audit.log";
  const std::string rotated = path + ".1";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, path));
  constexpr int kThreads = 4, kRecords = 500;
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kRecords; ++i) {
        AuditOne(std::string(100, 'x'));
        ++written;
      }
    });
  }
  while (written.load() < kThreads * kRecords / 4) std::this_thread::yield();
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);  // logrotate's move
  EXPECT_OK(ReopenAuditFile());                               // then SIGHUP
  for (auto& w : writers) w.join();
  AuditOne();  // after the rotation: in the new file

  const std::vector<std::string> old_lines = Lines(rotated), new_lines = Lines(path);
  EXPECT_FALSE(old_lines.empty());
  ASSERT_FALSE(new_lines.empty()) << "records after the reopen went to the rotated file";
  EXPECT_EQ(old_lines.size() + new_lines.size(), kThreads * kRecords + 1u);
  for (const auto* lines : {&old_lines, &new_lines}) {
    for (const std::string& line : *lines) {
      EXPECT_TRUE(nlohmann::json::accept(line)) << "torn record: " << line;
    }
  }
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(AuditTest, AFailedReopenKeepsWritingToTheOldFile) {
  const std::string path = dir_.path() + "/audit.log";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, path));
  AuditOne();
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);  // the name cannot be opened for writing, even by root
  EXPECT_THAT(ReopenAuditFile(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
  AuditOne();
  EXPECT_EQ(Lines(path + ".1").size(), 2u);
  EXPECT_TRUE(AuditAvailable());
}

TEST_F(AuditTest, NumbersAreJsonNumbersAndNothingElseIs) {
  const std::string path = dir_.path() + "/audit.log";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, path));
  Audit("sign", {{"result", "UNAVAILABLE"},
                 {"latency_us", "231", true},
                 {"not_a_number", "12; rm", true},
                 {"leading_zero", "007", true},
                 {"request_id", "42"}});
  const std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json r = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(r["latency_us"], 231);
  EXPECT_EQ(r["not_a_number"], "12; rm");
  EXPECT_EQ(r["leading_zero"], "007");
  EXPECT_EQ(r["request_id"], "42");  // a string field stays a string whatever it holds
  EXPECT_EQ(r["result"], "UNAVAILABLE");
}

TEST(GrpcLogTest, GrpcLinesJoinTheJsonStream) {
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, ""));
  RouteGrpcLogs();
  gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);  // what grpc_init sets from GRPC_VERBOSITY
  ::testing::internal::CaptureStderr();
  gpr_log("src/core/tsi/ssl_transport_security.cc", 1234, GPR_LOG_SEVERITY_ERROR, "%s",
          "Handshake failed with fatal error SSL_ERROR_SSL: error:0A000412:SSL routines");
  gpr_log("src/core/ext/transport/chttp2/transport.cc", 99, GPR_LOG_SEVERITY_ERROR, "%s",
          "a \"quoted\" transport error");
  FlushLogs();
  const std::string err = ::testing::internal::GetCapturedStderr();
  std::istringstream lines(err);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(lines, line);) {
    ASSERT_TRUE(nlohmann::json::accept(line)) << "not JSON: " << line;
    records.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(records.size(), 2u) << err;
  EXPECT_EQ(records[0]["event"], "tls_handshake_failed");
  EXPECT_EQ(records[0]["level"], "error");
  EXPECT_EQ(records[0]["source"], "ssl_transport_security.cc:1234");
  EXPECT_EQ(records[1]["event"], "grpc");
  EXPECT_EQ(records[1]["message"], "a \"quoted\" transport error");
  ASSERT_OK(InitLogging(LogFormat::kText, LogLevel::kInfo, ""));
}

TEST_F(AuditTest, CreatedFileIsMode0640WhateverTheUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    const std::string path = dir_.path() + "/audit-" + std::to_string(mask) + ".log";
    const mode_t old = umask(mask);
    absl::Status s = InitLogging(LogFormat::kJson, LogLevel::kInfo, path);
    umask(old);
    ASSERT_OK(s);
    AuditOne();
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u) << "umask " << mask;
  }
}

// A full file system must not leave half a record behind. Needs a small tmpfs (root); skipped
// where mounting is not allowed.
TEST_F(AuditTest, AFullDiskLeavesNoTornRecord) {
  const std::string mnt = dir_.path() + "/small";
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=8k,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << strerror(errno) << "); needs root";
  }
  const std::string path = mnt + "/audit.log";
  ASSERT_OK(InitLogging(LogFormat::kJson, LogLevel::kInfo, path));
  const uint64_t before = AuditWriteFailures();
  const std::string pad(700, 'x');  // 8 KiB is not a multiple of the record size
  int written = 0;
  while (AuditWriteFailures() == before && written < 100) {
    AuditOne(pad);
    ++written;
  }
  EXPECT_GT(AuditWriteFailures(), before);
  EXPECT_FALSE(AuditAvailable());
  std::string text;
  {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    text = content.str();
  }
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  int whole = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << "torn record: " << line.substr(0, 80);
    ++whole;
  }
  EXPECT_EQ(whole, written - 1);
  ASSERT_OK(InitLogging(LogFormat::kText, LogLevel::kInfo, ""));  // close the file before unmounting
  EXPECT_EQ(umount2(mnt.c_str(), MNT_DETACH), 0) << strerror(errno);
}

}  // namespace
}  // namespace shaken::daemon
