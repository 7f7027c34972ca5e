// Anchors the shaken_testing library; the support code lives in the files beside it.
namespace shaken::testing {
int testing_anchor = 0;
}  // namespace shaken::testing
