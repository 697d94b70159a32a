// Tests for identifier and token generation, SHA-256 and digest helpers, and base64.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace agentgate::crypto {
namespace {

// Deterministic Random: hands out bytes from a fixed pattern, continuing where it left off.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(std::vector<std::uint8_t> pattern) : pattern_(std::move(pattern)) {}
  // Counts up from `start`, wrapping at 256.
  static FakeRandom Counting(std::uint8_t start = 0) {
    std::vector<std::uint8_t> p(256);
    for (int i = 0; i < 256; ++i) p[i] = static_cast<std::uint8_t>(start + i);
    return FakeRandom(std::move(p));
  }
  void Fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = pattern_[next_++ % pattern_.size()];
    calls_.push_back(out.size());
  }
  const std::vector<std::size_t>& calls() const { return calls_; }

 private:
  std::vector<std::uint8_t> pattern_;
  std::size_t next_ = 0;
  std::vector<std::size_t> calls_;
};

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsBase64Url(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

TEST(HexEncodeTest, EncodesLowerCase) {
  const std::uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(HexEncode(bytes), "00017f80abff");
  EXPECT_EQ(HexEncode(std::span<const std::uint8_t>()), "");
}

TEST(NewAgentIdTest, IsApPrefixAndSixteenHexCharsOfEightBytes) {
  auto random = FakeRandom::Counting(0xf8);
  EXPECT_EQ(NewAgentId(random), "ap_f8f9fafbfcfdfeff");
  EXPECT_EQ(random.calls(), std::vector<std::size_t>{8});
}

TEST(NewAgentIdTest, FormatFromTheSystemGenerator) {
  OsRandom random;
  std::string id = NewAgentId(random);
  ASSERT_EQ(id.size(), 3u + 16u) << id;
  EXPECT_EQ(id.substr(0, 3), "ap_");
  EXPECT_TRUE(IsLowerHex(id.substr(3))) << id;
}

TEST(NewAgentSecretTest, IsSkApPrefixAnd256BitsAsHex) {
  auto random = FakeRandom::Counting(0);
  EXPECT_EQ(NewAgentSecret(random),
            "sk_ap_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(random.calls(), std::vector<std::size_t>{32});
}

TEST(NewAgentSecretTest, FormatFromTheSystemGenerator) {
  OsRandom random;
  std::string secret = NewAgentSecret(random);
  ASSERT_EQ(secret.size(), 6u + 64u) << secret;
  EXPECT_EQ(secret.substr(0, 6), "sk_ap_");
  EXPECT_TRUE(IsLowerHex(secret.substr(6))) << secret;
}

TEST(NewUuidTest, SetsVersionFourAndTheRfc4122Variant) {
  FakeRandom zeros({0x00});
  EXPECT_EQ(NewUuid(zeros), "00000000-0000-4000-8000-000000000000");
  FakeRandom ones({0xff});
  EXPECT_EQ(NewUuid(ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  auto counting = FakeRandom::Counting(0);
  EXPECT_EQ(NewUuid(counting), "00010203-0405-4607-8809-0a0b0c0d0e0f");
  EXPECT_EQ(counting.calls(), std::vector<std::size_t>{16});
}

TEST(NewUuidTest, FormatFromTheSystemGenerator) {
  OsRandom random;
  for (int i = 0; i < 200; ++i) {
    std::string u = NewUuid(random);
    ASSERT_EQ(u.size(), 36u) << u;
    EXPECT_EQ(u[8], '-');
    EXPECT_EQ(u[13], '-');
    EXPECT_EQ(u[18], '-');
    EXPECT_EQ(u[23], '-');
    EXPECT_EQ(u[14], '4') << u;
    EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b') << u;
    std::string hex = u.substr(0, 8) + u.substr(9, 4) + u.substr(14, 4) + u.substr(19, 4) +
                      u.substr(24);
    EXPECT_EQ(hex.size(), 32u);
    EXPECT_TRUE(IsLowerHex(hex)) << u;
  }
}

TEST(NewTokenTest, EncodesBase64UrlWithoutPadding) {
  // Python: base64.urlsafe_b64encode(bytes(range(33)))[:43]
  auto counting = FakeRandom::Counting(0);
  EXPECT_EQ(NewToken(counting, "sess_"), "sess_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
  EXPECT_EQ(counting.calls(), std::vector<std::size_t>{33});

  // Bytes fb ef be give 111110 111110 111110 111110: the two URL-safe characters.
  FakeRandom url_chars({0xfb, 0xef, 0xbe});
  EXPECT_EQ(NewToken(url_chars, ""), std::string(43, '-'));
  FakeRandom ones({0xff});
  EXPECT_EQ(NewToken(ones, "lt_"), "lt_" + std::string(43, '_'));
  FakeRandom zeros({0x00});
  EXPECT_EQ(NewToken(zeros, "x"), "x" + std::string(43, 'A'));
}

TEST(NewTokenTest, FormatFromTheSystemGenerator) {
  OsRandom random;
  std::string token = NewToken(random, "ml_");
  ASSERT_EQ(token.size(), 3u + 43u) << token;
  EXPECT_EQ(token.substr(0, 3), "ml_");
  EXPECT_TRUE(IsBase64Url(token.substr(3))) << token;
}

TEST(GenerationTest, DrawsAreUnique) {
  OsRandom random;
  constexpr int kDraws = 20'000;
  std::set<std::string> ids, secrets, uuids, tokens;
  for (int i = 0; i < kDraws; ++i) {
    ids.insert(NewAgentId(random));
    secrets.insert(NewAgentSecret(random));
    uuids.insert(NewUuid(random));
    tokens.insert(NewToken(random, ""));
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kDraws));
  EXPECT_EQ(secrets.size(), static_cast<std::size_t>(kDraws));
  EXPECT_EQ(uuids.size(), static_cast<std::size_t>(kDraws));
  EXPECT_EQ(tokens.size(), static_cast<std::size_t>(kDraws));
}

TEST(GenerationTest, EveryHexDigitAppearsInEveryPositionOfSecrets) {
  // A stuck nibble (e.g. an encoding slip) would leave some position constant.
  OsRandom random;
  std::vector<std::set<char>> seen(64);
  for (int i = 0; i < 2'000; ++i) {
    std::string s = NewAgentSecret(random).substr(6);
    for (std::size_t p = 0; p < 64; ++p) seen[p].insert(s[p]);
  }
  for (std::size_t p = 0; p < 64; ++p) EXPECT_EQ(seen[p].size(), 16u) << "position " << p;
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Digest d = Sha256("abc");
  EXPECT_EQ(d[0], 0xba);
  EXPECT_EQ(d[31], 0xad);
  EXPECT_EQ(DigestHex(d), Sha256Hex("abc"));
}

TEST(Sha256Test, HashesEmbeddedNulBytes) {
  EXPECT_NE(Sha256Hex(std::string("a\0b", 3)), Sha256Hex("a"));
  EXPECT_NE(Sha256Hex(std::string("a\0b", 3)), Sha256Hex("ab"));
}

TEST(DigestHexTest, RoundTrips) {
  Digest d = Sha256("sk_ap_secret");
  std::string hex = DigestHex(d);
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_TRUE(IsLowerHex(hex));
  Digest back{};
  ASSERT_TRUE(DigestFromHex(hex, back));
  EXPECT_EQ(back, d);
}

TEST(DigestHexTest, AcceptsUpperCase) {
  std::string upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
  Digest d{};
  ASSERT_TRUE(DigestFromHex(upper, d));
  EXPECT_EQ(d, Sha256("abc"));
}

TEST(DigestHexTest, RejectsBadHex) {
  const std::string good = Sha256Hex("abc");
  std::vector<std::string> bad = {
      "",
      good.substr(0, 63),
      good + "0",
      good.substr(0, 62) + "g0",
      good.substr(0, 62) + "0g",
      "x" + good.substr(1),
      good.substr(0, 32) + " " + good.substr(33),
      good.substr(0, 63) + std::string(1, '\0'),
      "0x" + good.substr(2),
      std::string(64, '-'),
  };
  for (const std::string& hex : bad) {
    Digest d{};
    EXPECT_FALSE(DigestFromHex(hex, d)) << "accepted \"" << hex << "\"";
  }
}

TEST(ConstantTimeEqualTest, ComparesEveryByte) {
  Digest a = Sha256("a");
  Digest same = Sha256("a");
  EXPECT_TRUE(ConstantTimeEqual(a, same));
  EXPECT_FALSE(ConstantTimeEqual(a, Sha256("b")));
  for (std::size_t i : {std::size_t{0}, std::size_t{15}, std::size_t{31}}) {
    Digest flipped = a;
    flipped[i] ^= 0x01;
    EXPECT_FALSE(ConstantTimeEqual(a, flipped)) << "byte " << i;
  }
  Digest zero{};
  EXPECT_TRUE(ConstantTimeEqual(zero, Digest{}));
}

TEST(DigestHashTest, IsStableAndDiffersAcrossDigests) {
  DigestHash h;
  EXPECT_EQ(h(Sha256("a")), h(Sha256("a")));
  EXPECT_NE(h(Sha256("a")), h(Sha256("b")));
}

// ---------------------------------------------------------------------------------------------
// Base64

std::span<const std::uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(Base64Test, Rfc4648Vectors) {
  // RFC 4648 section 10.
  const std::pair<std::string, std::string> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Encode(Bytes(plain)), encoded);
    std::string unpadded = encoded.substr(0, encoded.find('='));
    EXPECT_EQ(Base64UrlEncode(plain), unpadded);
    EXPECT_EQ(Base64UrlEncode(Bytes(plain)), unpadded);
    std::string out = "left over";
    ASSERT_TRUE(Base64Decode(encoded, out)) << encoded;
    EXPECT_EQ(out, plain);
    out = "left over";
    ASSERT_TRUE(Base64UrlDecode(unpadded, out)) << unpadded;
    EXPECT_EQ(out, plain);
  }
}

TEST(Base64Test, TheTwoAlphabetsDifferInTheirLastTwoCharacters) {
  const std::string bytes = "\xfb\xff\xbf";  // 111110 111111 111110 111111
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  std::string out;
  EXPECT_FALSE(Base64Decode("-_-_", out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(Base64UrlDecode("+/+/", out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(Base64Decode("+/+/", out));
  EXPECT_EQ(out, bytes);
  ASSERT_TRUE(Base64UrlDecode("-_-_", out));
  EXPECT_EQ(out, bytes);
}

TEST(Base64Test, RoundTripsEveryByteAtEveryLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(Base64Encode(all).substr(0, 40), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd");
  for (std::size_t n = 0; n <= all.size(); ++n) {
    // Rotate so that every byte value also lands at the end, where padding happens.
    const std::string plain = (all.substr(n) + all.substr(0, n)).substr(0, n);
    const std::string std_text = Base64Encode(plain);
    const std::string url_text = Base64UrlEncode(plain);
    EXPECT_EQ(std_text.size(), (n + 2) / 3 * 4);
    EXPECT_EQ(url_text.size(), (n * 4 + 2) / 3);
    std::string out;
    ASSERT_TRUE(Base64Decode(std_text, out)) << std_text;
    EXPECT_EQ(out, plain);
    ASSERT_TRUE(Base64UrlDecode(url_text, out)) << url_text;
    EXPECT_EQ(out, plain);
  }
}

TEST(Base64Test, DecodeRefusesMalformedStandardText) {
  const std::vector<std::string> bad = {
      "Zg",        // padding missing
      "Zg=",       // padding short
      "Zg===",     // padding long
      "Z===",      // three '='
      "====",      //
      "Zm9v=",     // length not a multiple of 4
      "Zm8=Zm8=",  // padding in the middle
      "Zm=v",      //
      "Zh==",      // unused bits set: "Zg==" is the one text for "f"
      "Zm9=",      // unused bits set: "Zm8=" is the one text for "fo"
      "Zm9v\n",    // whitespace
      " Zm9v",     //
      "Zm 9v",     //
      "Zm9-",      // base64url alphabet
      "Zm9_",      //
      "Zm9v\r\n",  //
      std::string("Zm9\0", 4),
      "Zm9\xc3",  // not ASCII
  };
  for (const std::string& text : bad) {
    std::string out = "left over";
    EXPECT_FALSE(Base64Decode(text, out)) << "accepted \"" << text << "\"";
    EXPECT_TRUE(out.empty()) << text;
  }
}

TEST(Base64Test, UrlDecodeRefusesMalformedText) {
  const std::vector<std::string> bad = {
      "Zg==",    // padding is not part of the url form
      "Zm8=",    //
      "Zg=",     //
      "=",       //
      "Z",       // 4k+1 characters: no byte string encodes to that
      "Zm9vY",   //
      "Zh",      // unused bits set
      "Zm9",     //
      "Zm9v+",   // standard alphabet
      "Zm/v",    //
      "Zm9v ",   // whitespace
      "Zm\n9v",  //
      std::string("Zm\0v", 4),
  };
  for (const std::string& text : bad) {
    std::string out = "left over";
    EXPECT_FALSE(Base64UrlDecode(text, out)) << "accepted \"" << text << "\"";
    EXPECT_TRUE(out.empty()) << text;
  }
}

TEST(Base64Test, EmptyTextIsEmptyBytes) {
  std::string out = "x";
  EXPECT_TRUE(Base64Decode("", out));
  EXPECT_EQ(out, "");
  out = "x";
  EXPECT_TRUE(Base64UrlDecode("", out));
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace agentgate::crypto
