#include "stir/tn.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOkAndHolds;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CanonicalizeTnTest, StripsSeparatorsAndLeadingPlus) {
  EXPECT_THAT(CanonicalizeTn("+1 (215) 555-0121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("1.215.555.0121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("12155550121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("*67#"), IsOkAndHolds(std::string("*67#")));
}

TEST(CanonicalizeTnTest, RejectsOtherCharacters) {
  EXPECT_THAT(CanonicalizeTn("1215555012a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'a' at position 10")));
  EXPECT_THAT(CanonicalizeTn("1+2155550121"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("++12155550121"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("sip:12155550121@x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn(std::string("1\0002", 3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0x0")));
}

TEST(CanonicalizeTnTest, RejectsEmptyAndOverlong) {
  EXPECT_THAT(CanonicalizeTn(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("+ -()"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn(std::string(kMaxTnLength, '1')).status(), ::shaken::testing::IsOk());
  EXPECT_THAT(CanonicalizeTn(std::string(kMaxTnLength + 1, '1')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer")));
}

TEST(CanonicalTnTest, Recognizes) {
  EXPECT_TRUE(IsCanonicalTn("12155550121"));
  EXPECT_FALSE(IsCanonicalTn("+12155550121"));
  EXPECT_FALSE(IsCanonicalTn(""));
}

TEST(UuidTest, Format) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-12d3-a456-426655440000"));
  EXPECT_TRUE(IsUuid("123E4567-E89B-12D3-A456-426655440000"));
  EXPECT_FALSE(IsUuid("123e4567e89b12d3a456426655440000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42665544000g"));
  EXPECT_FALSE(IsUuid("{123e4567-e89b-12d3-a456-426655440000}"));
}

TEST(UuidTest, NewV4IsWellFormedAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string u = NewUuidV4();
    EXPECT_TRUE(IsUuid(u)) << u;
    EXPECT_EQ(u[14], '4');
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 100u);
}

// Ids come from a per-thread buffer of random bytes: crossing its refills and forking must not
// repeat one.
TEST(UuidTest, NewV4StaysUniqueAcrossRefillsThreadsAndFork) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuidV4());
  std::string other_thread;
  std::thread([&] { other_thread = NewUuidV4(); }).join();
  seen.insert(other_thread);
  EXPECT_EQ(seen.size(), 1001u);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string id = NewUuidV4();
    ssize_t n = write(fds[1], id.data(), id.size());
    _exit(n == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  close(fds[1]);
  const std::string parent_id = NewUuidV4();
  char buf[36];
  ASSERT_EQ(read(fds[0], buf, sizeof(buf)), 36);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(std::string(buf, 36), parent_id) << "the child reused the parent's random bytes";
  EXPECT_EQ(seen.count(std::string(buf, 36)), 0u);
}

}  // namespace
}  // namespace shaken::stir
