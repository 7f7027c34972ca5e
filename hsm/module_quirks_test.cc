#include <cstring>

#include "gtest/gtest.h"
#include "hsm/module.h"

namespace shaken::hsm {
namespace {

CK_INFO InfoFrom(const char* manufacturer) {
  CK_INFO info{};
  std::memset(info.manufacturerID, ' ', sizeof(info.manufacturerID));  // PKCS#11 pads with blanks
  std::memcpy(info.manufacturerID, manufacturer, std::strlen(manufacturer));
  return info;
}

TEST(ModuleQuirksTest, ForInfoKnowsSoftHsm2ByManufacturer) {
  std::optional<ModuleQuirks> q = ModuleQuirks::ForInfo(InfoFrom("SoftHSM"));
  ASSERT_TRUE(q.has_value());
  EXPECT_FALSE(q->finalize_on_unload);
  EXPECT_FALSE(q->close_pooled_sessions);
  EXPECT_TRUE(q->reinitialize_on_token_loss);
  EXPECT_FALSE(ModuleQuirks::ForInfo(InfoFrom("SoftHSMx")).has_value());
  EXPECT_FALSE(ModuleQuirks::ForInfo(InfoFrom("Thales")).has_value());
}

TEST(ModuleQuirksTest, ForPathIsTheFallback) {
  EXPECT_FALSE(ModuleQuirks::ForPath("/usr/lib/softhsm/libsofthsm2.so").finalize_on_unload);
  EXPECT_TRUE(ModuleQuirks::ForPath("/opt/hsm/libcloudhsm.so").finalize_on_unload);
}

}  // namespace
}  // namespace shaken::hsm
