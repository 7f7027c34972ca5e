// source_path.h: where test data lives in the source tree.
#ifndef SHAKEN_TESTS_TESTING_SOURCE_PATH_H_
#define SHAKEN_TESTS_TESTING_SOURCE_PATH_H_

#include <string>
#include <string_view>

namespace shaken::testing {

// SourcePath returns the absolute path of `relative` (e.g. "conformance/vectors/k1_public.pem")
// in the source tree this test was built from.
inline std::string SourcePath(std::string_view relative) {
  return std::string(SHAKEN_SOURCE_DIR) + "/" + std::string(relative);
}

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_SOURCE_PATH_H_
