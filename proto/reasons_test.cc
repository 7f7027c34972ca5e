// reasons_test.cc: the verdict reasons documented in proto/shaken/v1/shaken.proto (Verdict.reason,
// between BEGIN REASONS and END REASONS) are stir's reason table, row for row: name, SIP code and
// verstat. A reason added to stir/verdict.cc without the proto's list (or the reverse) fails here.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/absl_compat.h"
#include "stir/verdict.h"
#include "tests/testing/source_path.h"

namespace shaken {
namespace {

TEST(ProtoReasonsTest, TheProtoListsStirsReasonTable) {
  std::ifstream in(testing::SourcePath("proto/shaken/v1/shaken.proto"));
  ASSERT_TRUE(in) << "proto/shaken/v1/shaken.proto";
  std::vector<std::string> documented;
  bool in_list = false;
  for (std::string line; std::getline(in, line);) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l == "// BEGIN REASONS") {
      in_list = true;
    } else if (l == "// END REASONS") {
      break;
    } else if (in_list) {
      ASSERT_TRUE(absl::ConsumePrefix(&l, "//")) << line;
      std::vector<absl::string_view> words = absl::StrSplit(l, ' ', absl::SkipEmpty());
      ASSERT_EQ(words.size(), 3u) << line;
      documented.push_back(absl::StrCat(words[0], " ", words[1], " ", words[2]));
    }
  }
  std::vector<std::string> table;
  for (int r = 0; r < static_cast<int>(stir::Reason::kCount_); ++r) {
    const auto reason = static_cast<stir::Reason>(r);
    table.push_back(absl::StrCat(ToAbsl(stir::ReasonName(reason)), " ",
                                 stir::ReasonSipCode(reason), " ",
                                 ToAbsl(stir::VerstatName(stir::ReasonVerstat(reason)))));
  }
  EXPECT_EQ(documented, table)
      << "proto/shaken/v1/shaken.proto's Verdict.reason list must be stir/verdict.cc's table";
}

}  // namespace
}  // namespace shaken
