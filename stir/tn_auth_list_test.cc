// tn_auth_list_test.cc: the TNAuthList codec: the DER reader on good, malformed and mutated
// input, the encoder's checks, and that what one writes the other reads.
#include "stir/tn_auth_list.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> b) {
  std::string out;
  for (int x : b) out.push_back(static_cast<char>(x));
  return out;
}

TEST(ParseTnAuthListTest, SingleSpc) {
  ASSERT_OK_AND_ASSIGN(
      auto entries,
      ParseTnAuthList(Bytes({0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A})));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, TnAuthEntry::Kind::kSpc);
  EXPECT_EQ(entries[0].value, "709J");
}

TEST(ParseTnAuthListTest, RangeAndOneExplicitAndImplicit) {
  // range [1] EXPLICIT SEQUENCE { "1215", 100 }, one [2] EXPLICIT "12155550121",
  // range [1] IMPLICIT { "9", 2 }, one [2] IMPLICIT "5".
  std::string der =
      Bytes({0xA1, 0x0B, 0x30, 0x09, 0x16, 0x04, '1', '2',  '1',  '5',  0x02, 0x01, 100,
             0xA2, 0x0D, 0x16, 0x0B, '1',  '2',  '1', '5',  '5',  '5',  '5',  '0',  '1',
             '2',  '1',  0xA1, 0x06, 0x16, 0x01, '9', 0x02, 0x01, 0x02, 0x82, 0x01, '5'});
  der = Bytes({0x30, static_cast<int>(der.size())}) + der;
  ASSERT_OK_AND_ASSIGN(auto entries, ParseTnAuthList(der));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].kind, TnAuthEntry::Kind::kRange);
  EXPECT_EQ(entries[0].value, "1215");
  EXPECT_EQ(entries[0].count, 100u);
  EXPECT_EQ(entries[1].kind, TnAuthEntry::Kind::kOne);
  EXPECT_EQ(entries[1].value, "12155550121");
  EXPECT_EQ(entries[2].kind, TnAuthEntry::Kind::kRange);
  EXPECT_EQ(entries[2].count, 2u);
  EXPECT_EQ(entries[3].value, "5");
}

TEST(ParseTnAuthListTest, MalformedInputsAreErrors) {
  const std::vector<std::string> bad = {
      "",
      Bytes({0x30}),
      Bytes({0x30, 0x00}),                                                        // empty list
      Bytes({0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30}),                    // truncated
      Bytes({0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A, 0x00}),  // trailing
      Bytes({0x31, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A}),  // SET, not SEQUENCE
      Bytes({0x30, 0x08, 0xA3, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A}),  // unknown tag [3]
      Bytes({0x30, 0x08, 0xA0, 0x06, 0x0C, 0x04, 0x37, 0x30, 0x39, 0x4A}),  // UTF8String
      Bytes({0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF, 0xA0}),                    // huge length
      Bytes({0x30, 0x88, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}),  // 8 length bytes
      Bytes({0x30, 0x80, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A, 0x00, 0x00}),  // BER
      Bytes({0x30, 0x81, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A}),  // non-minimal
      Bytes({0x30, 0x08, 0xA0, 0x86, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A}),
      Bytes({0x30, 0x08, 0xA0, 0x06, 0x16, 0x05, 0x37, 0x30, 0x39, 0x4A}),  // inner overruns
      Bytes({0x30, 0x04, 0xA0, 0x02, 0x16, 0x00}),                          // empty SPC
      Bytes({0x30, 0x05, 0xA0, 0x03, 0x16, 0x01, 0x80}),                    // non-ASCII SPC
      Bytes({0x30, 0x05, 0xA2, 0x03, 0x16, 0x01, 'x'}),                     // TN not digits
      Bytes({0x30, 0x08, 0xA1, 0x06, 0x16, 0x01, '1', 0x02, 0x01, 0x01}),   // count 1
      Bytes({0x30, 0x08, 0xA1, 0x06, 0x16, 0x01, '1', 0x02, 0x01, 0xFF}),   // negative count
      Bytes({0x30, 0x05, 0xA1, 0x03, 0x16, 0x01, '1'}),                     // count missing
      // count 2^64 - 1: over the documented 2^63 (a leading 0x00 made it a positive INTEGER)
      Bytes({0x30, 0x10, 0xA1, 0x0E, 0x16, 0x01, '1', 0x02, 0x09, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
             0xFF, 0xFF, 0xFF, 0xFF}),
      // count 2^63 + 1
      Bytes({0x30, 0x10, 0xA1, 0x0E, 0x16, 0x01, '1', 0x02, 0x09, 0x00, 0x80, 0x00, 0x00, 0x00,
             0x00, 0x00, 0x00, 0x01}),
      Bytes({0x30, 0x03, 0x1F, 0x81, 0x00}),                                // high tag number
  };
  for (const std::string& der : bad) {
    EXPECT_FALSE(ParseTnAuthList(der).ok()) << absl::BytesToHexString(der);
  }
}

TEST(ParseTnAuthListTest, RangeCountUpToTwoToThe63) {
  // count 2^63, the largest the header documents, is accepted; 2^63 + 1 is refused with a reason.
  const std::string max = Bytes({0x30, 0x10, 0xA1, 0x0E, 0x16, 0x01, '1', 0x02, 0x09, 0x00, 0x80,
                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  ASSERT_OK_AND_ASSIGN(auto entries, ParseTnAuthList(max));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].count, uint64_t{1} << 63);
  std::string over = max;
  over.back() = 0x01;
  EXPECT_THAT(ParseTnAuthList(over),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds 2^63")));
}

TEST(ParseTnAuthListTest, EveryTruncationAndBitFlipIsSafe) {
  const std::string good =
      Bytes({0x30, 0x16, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30, 0x39, 0x4A, 0xA1, 0x0C,
             0x30, 0x0A, 0x16, 0x05, '1',  '2',  '1',  '5',  '5',  0x02, 0x01, 0x10});
  ASSERT_OK(ParseTnAuthList(good).status());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ParseTnAuthList(good.substr(0, n)).ok()) << n;
  }
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string mutated = good;
      mutated[i] = static_cast<char>(mutated[i] ^ (1 << bit));
      (void)ParseTnAuthList(mutated);  // must not crash or read out of bounds (ASan)
    }
  }
}

TEST(TnAuthListTest, SingleSpcIsRfc8226Der) {
  ASSERT_OK_AND_ASSIGN(std::string der,
                       EncodeTnAuthList({{TnAuthEntry::Kind::kSpc, "709J", 0}}));
  EXPECT_EQ(absl::BytesToHexString(der), "3008a00616043730394a");
}

TEST(TnAuthListTest, DelegateEntriesRoundTripThroughStirParser) {
  ASSERT_OK_AND_ASSIGN(std::string der,
                       EncodeTnAuthList({{TnAuthEntry::Kind::kOne, "12155550121", 0},
                                           {TnAuthEntry::Kind::kRange, "12155550100", 100}}));
  ASSERT_OK_AND_ASSIGN(auto entries, ParseTnAuthList(der));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].kind, TnAuthEntry::Kind::kOne);
  EXPECT_EQ(entries[0].value, "12155550121");
  EXPECT_EQ(entries[1].kind, TnAuthEntry::Kind::kRange);
  EXPECT_EQ(entries[1].count, 100u);
}

TEST(TnAuthListTest, RejectsBadSpcTnAndRange) {
  EXPECT_THAT(EncodeTnAuthList({{TnAuthEntry::Kind::kSpc, "709j", 0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("upper-case")));
  EXPECT_THAT(EncodeTnAuthList({{TnAuthEntry::Kind::kOne, "1215555012x", 0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad TN")));
  EXPECT_THAT(EncodeTnAuthList({{TnAuthEntry::Kind::kRange, "1215", 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
  EXPECT_THAT(EncodeTnAuthList({}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TnAuthListTest, EncodeThenParseRoundTripsEveryKind) {
  const std::vector<TnAuthEntry> entries = {{TnAuthEntry::Kind::kSpc, "709J", 0},
                                            {TnAuthEntry::Kind::kOne, "1215555*#", 0},
                                            {TnAuthEntry::Kind::kRange, "12155550100", 100},
                                            {TnAuthEntry::Kind::kRange, "1", uint64_t{1} << 63}};
  ASSERT_OK_AND_ASSIGN(std::string der, EncodeTnAuthList(entries));
  ASSERT_OK_AND_ASSIGN(std::vector<TnAuthEntry> back, ParseTnAuthList(der));
  ASSERT_EQ(back.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(back[i].kind, entries[i].kind) << i;
    EXPECT_EQ(back[i].value, entries[i].value) << i;
    EXPECT_EQ(back[i].count, entries[i].count) << i;
  }
  EXPECT_EQ(EncodeTnAuthListUnchecked(entries), der);
  EXPECT_EQ(FirstSpc(back), "709J");
}

TEST(TnAuthListTest, LongListsUseLongFormLengths) {
  std::vector<TnAuthEntry> entries;
  for (int i = 0; i < 40; ++i) entries.push_back({TnAuthEntry::Kind::kOne, "12155550100", 0});
  ASSERT_OK_AND_ASSIGN(std::string der, EncodeTnAuthList(entries));
  EXPECT_EQ(static_cast<uint8_t>(der[1]), 0x82);  // 40 * 15 bytes: two length bytes
  ASSERT_OK_AND_ASSIGN(std::vector<TnAuthEntry> back, ParseTnAuthList(der));
  EXPECT_EQ(back.size(), 40u);
}

TEST(TnAuthListTest, UncheckedEncodesWhatTheParserRefuses) {
  // A count of 1 and an empty list: the test PKI's way to build what a verifier must refuse.
  EXPECT_FALSE(ParseTnAuthList(EncodeTnAuthListUnchecked({{TnAuthEntry::Kind::kRange, "1", 1}})).ok());
  EXPECT_EQ(absl::BytesToHexString(EncodeTnAuthListUnchecked({})), "3000");
  // A lower-case SPC is well-formed DER: the parser reads it, the profile judges it.
  ASSERT_OK_AND_ASSIGN(auto lower,
                       ParseTnAuthList(EncodeTnAuthListUnchecked({{TnAuthEntry::Kind::kSpc, "709j", 0}})));
  EXPECT_EQ(FirstSpc(lower), "709j");
  EXPECT_FALSE(ValidateSpc("709j").ok());
  EXPECT_FALSE(ValidateSpc("ABCDEFGHIJKLMNOPQ").ok());  // 17 characters
  EXPECT_TRUE(ValidateSpc("709J").ok());
}

TEST(TnAuthListTest, CoversOnesAndRangesNotSpcs) {
  const std::vector<TnAuthEntry> entries = {{TnAuthEntry::Kind::kSpc, "12155550199", 0},
                                            {TnAuthEntry::Kind::kOne, "12155550121", 0},
                                            {TnAuthEntry::Kind::kRange, "12155550100", 10}};
  EXPECT_TRUE(TnAuthListHasTns(entries));
  EXPECT_TRUE(TnAuthListCovers(entries, "12155550121"));
  EXPECT_TRUE(TnAuthListCovers(entries, "12155550109"));
  EXPECT_FALSE(TnAuthListCovers(entries, "12155550110"));
  EXPECT_FALSE(TnAuthListCovers(entries, "12155550199"));
  EXPECT_FALSE(TnAuthListHasTns({{TnAuthEntry::Kind::kSpc, "709J", 0}}));
}

}  // namespace
}  // namespace shaken::stir
