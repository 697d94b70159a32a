#include "core/json.h"

#include <gtest/gtest.h>

namespace agentgate {
namespace {

TEST(ValidUtf8, KeepsValidTextAndReplacesInvalidBytes) {
  EXPECT_EQ(ValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(ValidUtf8("a\xffz"), "a\xef\xbf\xbdz");
  EXPECT_EQ(ValidUtf8("\xc3"), "\xef\xbf\xbd");                      // truncated sequence
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");      // overlong '/'
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80").substr(0, 3), "\xef\xbf\xbd");  // beyond U+10FFFF
}

TEST(ValidUtf8, CutsOnlyBetweenCharacters) {
  EXPECT_EQ(ValidUtf8("abc\xe2\x82\xac", 4), "abc");
  EXPECT_EQ(ValidUtf8("abc\xe2\x82\xac", 6), "abc\xe2\x82\xac");
  EXPECT_EQ(ValidUtf8("abcdef", 3), "abc");
  EXPECT_EQ(ValidUtf8("", 3), "");
}

}  // namespace
}  // namespace agentgate

namespace agentgate {
namespace {

TEST(MakeValidUtf8, ChangesOnlyWhatMustChange) {
  std::string ascii = "permission.check";
  MakeValidUtf8(ascii, 256);
  EXPECT_EQ(ascii, "permission.check");
  std::string bad = "a\xff";
  MakeValidUtf8(bad, 256);
  EXPECT_EQ(bad, "a\xef\xbf\xbd");
  std::string long_text(300, 'x');
  MakeValidUtf8(long_text, 256);
  EXPECT_EQ(long_text.size(), 256u);
}

}  // namespace
}  // namespace agentgate
