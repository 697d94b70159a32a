// Tests for identifier and token generation, SHA-256 and digest helpers, base64, and the sealing
// Keyring.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/seal.h"

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

// ---------------------------------------------------------------------------------------------
// Keyring

namespace fs = std::filesystem;

// A fresh directory under the test temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(testing::TempDir()) / "keyring_test_XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& bytes, mode_t mode) {
  std::ofstream(path, std::ios::binary) << bytes;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// File names in `dir`, sorted; empty if there is no such directory.
std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Sets the process umask for the life of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

std::array<std::uint8_t, Keyring::kKeySize> FilledKey(std::uint8_t fill) {
  std::array<std::uint8_t, Keyring::kKeySize> key{};
  key.fill(fill);
  return key;
}

std::string RawKey(std::uint8_t fill) {
  return std::string(Keyring::kKeySize, static_cast<char>(fill));
}

std::string KeyB64(std::uint8_t fill) { return Base64Encode(RawKey(fill)); }

std::string KidOf(std::uint8_t fill) { return Keyring::KeyId(FilledKey(fill)); }

// The "v2:<kid>:" prefix's kid.
std::string KidIn(const std::string& sealed) { return sealed.substr(3, 9); }

Keyring MustLoad(const std::string& dir, std::string_view configured = {},
                 const std::vector<std::string>& previous = {}) {
  OsRandom random;
  auto ring = Keyring::Load(dir, configured, previous, random);
  EXPECT_TRUE(ring.ok()) << ring.error().Message();
  return std::move(ring).value();
}

TEST(KeyringTest, KeyIdIsKAndTheFirstEightHexOfTheKeysSha256) {
  EXPECT_EQ(Keyring::KeyId(FilledKey(0)), "k66687aad");
  EXPECT_EQ(Keyring::KeyId(FilledKey(7)), "k4bb06f8e");
  std::array<std::uint8_t, Keyring::kKeySize> counting{};
  for (std::size_t i = 0; i < counting.size(); ++i) counting[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(Keyring::KeyId(counting),
            "k" + Sha256Hex(std::string_view(reinterpret_cast<const char*>(counting.data()),
                                             counting.size()))
                      .substr(0, 8));
  EXPECT_EQ(Keyring::KeyId(counting), "k630dcd29");
}

TEST(KeyringTest, AFreshDirectoryGetsANewCurrentKey) {
  TempDir dir;
  std::string kid;
  {
    ScopedUmask permissive(0);  // the files must still come out 0600
    Keyring ring = MustLoad(dir.path());
    kid = std::string(ring.CurrentKid());
  }
  EXPECT_TRUE(kid.size() == 9 && kid[0] == 'k' && IsLowerHex(kid.substr(1))) << kid;
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"keys"});
  EXPECT_EQ(ModeOf(dir.File("keys")), 0700u);
  EXPECT_EQ(Listing(dir.File("keys")), (std::vector<std::string>{"current", kid + ".key"}));
  const std::string key_path = dir.File("keys/" + kid + ".key");
  EXPECT_EQ(ModeOf(key_path), 0600u);
  const std::string key = ReadFile(key_path);
  ASSERT_EQ(key.size(), 32u);
  EXPECT_EQ(kid, "k" + Sha256Hex(key).substr(0, 8));
  EXPECT_EQ(ReadFile(dir.File("keys/current")), kid + "\n");
  // A second load finds the same key.
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), kid);
}

TEST(KeyringTest, SealAndOpenRoundTripWithTheKidInTheOutput) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string kid(ring.CurrentKid());
  for (const std::string& plaintext :
       {std::string(), std::string("x"), std::string("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        std::string("a\0b\xff", 4), std::string(100'000, 'z')}) {
    const std::string sealed = ring.Seal(plaintext, random);
    ASSERT_TRUE(sealed.starts_with("v2:" + kid + ":")) << sealed.substr(0, 40);
    // Unpadded base64url of nonce (12) + ciphertext + tag (16) after the 13-character prefix.
    EXPECT_EQ(sealed.size(), 13 + ((12 + plaintext.size() + 16) * 4 + 2) / 3);
    EXPECT_TRUE(IsBase64Url(sealed.substr(13)));
    auto opened = ring.Open(sealed);
    ASSERT_TRUE(opened.ok()) << opened.error().Message();
    EXPECT_EQ(*opened, plaintext);
    EXPECT_FALSE(ring.NeedsReseal(sealed));
  }
  EXPECT_NE(ring.Seal("same", random), ring.Seal("same", random));
}

TEST(KeyringTest, OpensLegacyV1TextsUnderMasterKey) {
  TempDir dir;
  OsRandom random;
  WriteFile(dir.File("master.key"), RawKey(7), 0600);
  const std::string legacy = Sealer(FilledKey(7)).Seal("sealed by Sealer", random);
  ASSERT_TRUE(legacy.starts_with("v1:"));

  Keyring ring = MustLoad(dir.path());
  auto opened = ring.Open(legacy);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "sealed by Sealer");
  EXPECT_TRUE(ring.NeedsReseal(legacy));
  // With no keys/current yet, master.key became the current key, copied into keys/.
  EXPECT_EQ(ring.CurrentKid(), KidOf(7));
  EXPECT_EQ(ReadFile(dir.File("keys/" + KidOf(7) + ".key")), RawKey(7));
  EXPECT_EQ(ModeOf(dir.File("keys/" + KidOf(7) + ".key")), 0600u);
  EXPECT_EQ(ReadFile(dir.File("keys/current")), KidOf(7) + "\n");
  EXPECT_EQ(ReadFile(dir.File("master.key")), RawKey(7));  // left in place
  EXPECT_TRUE(ring.Seal("new", random).starts_with("v2:" + KidOf(7) + ":"));

  // Still, after a rotation and a reload.
  ASSERT_TRUE(ring.Rotate(random).ok());
  Keyring reloaded = MustLoad(dir.path());
  EXPECT_NE(reloaded.CurrentKid(), KidOf(7));
  opened = reloaded.Open(legacy);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "sealed by Sealer");
  // A Sealer text under another key is refused.
  EXPECT_FALSE(reloaded.Open(Sealer(FilledKey(8)).Seal("other", random)).ok());
}

TEST(KeyringTest, OpensV1TextsUnderAConfiguredKeyWhenThereIsNoMasterKey) {
  TempDir dir;
  OsRandom random;
  const std::string legacy = Sealer(FilledKey(7)).Seal("moved to configuration", random);
  Keyring ring = MustLoad(dir.path(), KeyB64(9), {KeyB64(7)});
  auto opened = ring.Open(legacy);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "moved to configuration");
  auto other = ring.Open(Sealer(FilledKey(8)).Seal("x", random));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().Message().find("legacy master.key"), std::string_view::npos);
}

TEST(KeyringTest, RotationKeepsOldTextsOpenableAndSealsUnderTheNewKid) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string first_kid(ring.CurrentKid());
  const std::string before = ring.Seal("before", random);

  auto rotated = ring.Rotate(random);
  ASSERT_TRUE(rotated.ok()) << rotated.error().Message();
  EXPECT_NE(*rotated, first_kid);
  EXPECT_EQ(ring.CurrentKid(), *rotated);
  const std::string after = ring.Seal("after", random);
  EXPECT_EQ(KidIn(before), first_kid);
  EXPECT_EQ(KidIn(after), *rotated);

  auto opened_before = ring.Open(before);
  ASSERT_TRUE(opened_before.ok()) << opened_before.error().Message();
  EXPECT_EQ(*opened_before, "before");
  auto opened_after = ring.Open(after);
  ASSERT_TRUE(opened_after.ok()) << opened_after.error().Message();
  EXPECT_EQ(*opened_after, "after");

  EXPECT_EQ(Listing(dir.File("keys")),
            (std::vector<std::string>{"current", std::min(first_kid, *rotated) + ".key",
                                      std::max(first_kid, *rotated) + ".key"}));
  EXPECT_EQ(ModeOf(dir.File("keys/" + *rotated + ".key")), 0600u);
  EXPECT_EQ(ReadFile(dir.File("keys/current")), *rotated + "\n");
}

TEST(KeyringTest, NeedsResealIsFalseOnlyForV2UnderTheCurrentKid) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string kid(ring.CurrentKid());
  const std::string old_text = ring.Seal("x", random);
  EXPECT_FALSE(ring.NeedsReseal(old_text));
  EXPECT_TRUE(ring.NeedsReseal(Sealer(FilledKey(1)).Seal("x", random)));
  EXPECT_TRUE(ring.NeedsReseal(""));
  EXPECT_TRUE(ring.NeedsReseal("v2:"));
  EXPECT_TRUE(ring.NeedsReseal("v2:" + kid));
  EXPECT_TRUE(ring.NeedsReseal("v2:" + kid + "0:AAAA"));
  EXPECT_TRUE(ring.NeedsReseal("v3:" + kid + ":AAAA"));
  EXPECT_FALSE(ring.NeedsReseal("v2:" + kid + ":AAAA"));  // the prefix only is looked at

  ASSERT_TRUE(ring.Rotate(random).ok());
  EXPECT_TRUE(ring.NeedsReseal(old_text));
  EXPECT_FALSE(ring.NeedsReseal(ring.Seal("x", random)));
}

TEST(KeyringTest, AReloadAfterRotationPicksTheRotatedKey) {
  TempDir dir;
  OsRandom random;
  std::vector<std::pair<std::string, std::string>> texts;  // sealed, plaintext
  std::string last_kid;
  {
    Keyring ring = MustLoad(dir.path());
    for (int i = 0; i < 3; ++i) {
      texts.emplace_back(ring.Seal("text " + std::to_string(i), random),
                         "text " + std::to_string(i));
      auto rotated = ring.Rotate(random);
      ASSERT_TRUE(rotated.ok()) << rotated.error().Message();
      last_kid = *rotated;
    }
  }
  Keyring reloaded = MustLoad(dir.path());
  EXPECT_EQ(reloaded.CurrentKid(), last_kid);
  for (const auto& [sealed, plaintext] : texts) {
    auto opened = reloaded.Open(sealed);
    ASSERT_TRUE(opened.ok()) << opened.error().Message();
    EXPECT_EQ(*opened, plaintext);
    EXPECT_TRUE(reloaded.NeedsReseal(sealed));
  }
  EXPECT_EQ(Listing(dir.File("keys")).size(), 5u);  // 4 keys and current, no temporary files
}

TEST(KeyringTest, AConfiguredKeyWinsAndIsNotWritten) {
  TempDir dir;
  OsRandom random;
  std::string on_disk_text;
  std::string on_disk_kid;
  {
    Keyring ring = MustLoad(dir.path());
    on_disk_kid = std::string(ring.CurrentKid());
    on_disk_text = ring.Seal("sealed under the file's key", random);
  }
  const auto listing = Listing(dir.File("keys"));

  Keyring ring = MustLoad(dir.path(), KeyB64(5));
  EXPECT_EQ(ring.CurrentKid(), KidOf(5));
  const std::string sealed = ring.Seal("under the configured key", random);
  EXPECT_EQ(KidIn(sealed), KidOf(5));
  EXPECT_TRUE(ring.NeedsReseal(on_disk_text));
  // Keys in the directory still open older texts.
  auto opened = ring.Open(on_disk_text);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "sealed under the file's key");
  // Nothing written: no key file for the configured key, keys/current unchanged.
  EXPECT_EQ(Listing(dir.File("keys")), listing);
  EXPECT_EQ(ReadFile(dir.File("keys/current")), on_disk_kid + "\n");

  // A configured key cannot be rotated by the server.
  auto rotated = ring.Rotate(random);
  ASSERT_FALSE(rotated.ok());
  EXPECT_EQ(rotated.error().code, Code::kConflict);
  EXPECT_NE(rotated.error().Message().find("AGENTGATE_MASTER_KEY"), std::string_view::npos);
  EXPECT_NE(rotated.error().Remediation().find("AGENTGATE_PREVIOUS_MASTER_KEYS"),
            std::string_view::npos);
  EXPECT_EQ(ring.CurrentKid(), KidOf(5));
  EXPECT_EQ(Listing(dir.File("keys")), listing);

  // Without the configuration, the file's key is current again.
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), on_disk_kid);
}

TEST(KeyringTest, AConfiguredKeyNeedsNoDirectoryAndPreviousKeysOpenOlderTexts) {
  TempDir dir;
  OsRandom random;
  const std::string missing = dir.File("not-made");
  std::string old_text;
  {
    Keyring ring = MustLoad(missing, KeyB64(1));
    old_text = ring.Seal("under key 1", random);
  }
  EXPECT_FALSE(fs::exists(missing));

  // Key 2 replaces key 1, which moves to the previous keys.
  Keyring ring = MustLoad(missing, KeyB64(2), Keyring::SplitKeyList(" " + KeyB64(1) + " ,"));
  EXPECT_EQ(ring.CurrentKid(), KidOf(2));
  auto opened = ring.Open(old_text);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "under key 1");
  EXPECT_TRUE(ring.NeedsReseal(old_text));
  EXPECT_FALSE(fs::exists(missing));

  // Without key 1, the old text names a key this server does not have.
  auto unknown = MustLoad(missing, KeyB64(2)).Open(old_text);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Code::kServerError);
  EXPECT_EQ(unknown.error().Message(),
            "sealed under key " + KidOf(1) + ", which this server does not have");
}

TEST(KeyringTest, SplitKeyListSplitsAtCommas) {
  EXPECT_EQ(Keyring::SplitKeyList(""), std::vector<std::string>{});
  EXPECT_EQ(Keyring::SplitKeyList(" , ,"), std::vector<std::string>{});
  EXPECT_EQ(Keyring::SplitKeyList("a"), std::vector<std::string>{"a"});
  EXPECT_EQ(Keyring::SplitKeyList(" a+/= ,b,, c\t"), (std::vector<std::string>{"a+/=", "b", "c"}));
}

TEST(KeyringTest, RefusesABadConfiguredKey) {
  TempDir dir;
  OsRandom random;
  const std::vector<std::string> bad = {
      "not base64!",
      Base64Encode(std::string(31, 'k')),
      Base64Encode(std::string(33, 'k')),
      Base64Encode(std::string(16, 'k')),
      Base64UrlEncode(std::string(32, '\xff')),  // base64url, not standard base64
      KeyB64(3) + "\n",
      " " + KeyB64(3),
      KeyB64(3).substr(0, 43),  // padding missing
  };
  for (const std::string& configured : bad) {
    auto ring = Keyring::Load(dir.path(), configured, random);
    ASSERT_FALSE(ring.ok()) << configured;
    EXPECT_EQ(ring.error().code, Code::kServerError);
    EXPECT_NE(ring.error().Message().find("AGENTGATE_MASTER_KEY"), std::string_view::npos)
        << ring.error().Message();
    EXPECT_NE(ring.error().Remediation().find("openssl rand -base64 32"), std::string_view::npos);
    EXPECT_EQ(ring.error().Message().find(configured), std::string_view::npos);  // not echoed
  }
  auto previous = Keyring::Load(dir.path(), KeyB64(1), {KeyB64(2), "AAAA"}, random);
  ASSERT_FALSE(previous.ok());
  EXPECT_NE(previous.error().Message().find("AGENTGATE_PREVIOUS_MASTER_KEYS (entry 2)"),
            std::string_view::npos)
      << previous.error().Message();
  EXPECT_TRUE(Listing(dir.path()).empty());  // refused before touching the directory
}

TEST(KeyringTest, RefusesKeyFilesOthersCanRead) {
  TempDir dir;
  OsRandom random;
  std::string kid(MustLoad(dir.path()).CurrentKid());
  const std::string path = dir.File("keys/" + kid + ".key");
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto ring = Keyring::Load(dir.path(), "", random);
    ASSERT_FALSE(ring.ok()) << std::oct << mode;
    EXPECT_EQ(ring.error().code, Code::kServerError);
    EXPECT_NE(ring.error().Message().find(path), std::string_view::npos);
    EXPECT_NE(ring.error().Remediation().find("chmod 600 " + path), std::string_view::npos);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // owner read-only is fine
  EXPECT_TRUE(Keyring::Load(dir.path(), "", random).ok());

  // The same for a legacy master.key.
  TempDir legacy;
  WriteFile(legacy.File("master.key"), RawKey(7), 0644);
  auto ring = Keyring::Load(legacy.path(), "", random);
  ASSERT_FALSE(ring.ok());
  EXPECT_NE(ring.error().Remediation().find("chmod 600"), std::string_view::npos);
}

TEST(KeyringTest, RefusesKeyFilesOfTheWrongSizeOrKind) {
  OsRandom random;
  for (std::size_t size : {0, 31, 33}) {
    TempDir dir;
    ASSERT_TRUE(fs::create_directory(dir.File("keys")));
    WriteFile(dir.File("keys/" + KidOf(7) + ".key"), std::string(size, '\x07'), 0600);
    auto ring = Keyring::Load(dir.path(), "", random);
    ASSERT_FALSE(ring.ok()) << size;
    EXPECT_NE(ring.error().Message().find(KidOf(7) + ".key"), std::string_view::npos);
    EXPECT_EQ(fs::file_size(dir.File("keys/" + KidOf(7) + ".key")), size);  // left alone
  }
  TempDir dir;
  ASSERT_TRUE(fs::create_directories(dir.File("keys/" + KidOf(7) + ".key")));
  EXPECT_FALSE(Keyring::Load(dir.path(), "", random).ok());
  TempDir file_for_dir;
  WriteFile(file_for_dir.File("keys"), "", 0600);
  EXPECT_FALSE(Keyring::Load(file_for_dir.path(), "", random).ok());
}

TEST(KeyringTest, RefusesAKeyFileNamedForAnotherKey) {
  TempDir dir;
  OsRandom random;
  ASSERT_TRUE(fs::create_directory(dir.File("keys")));
  WriteFile(dir.File("keys/" + KidOf(8) + ".key"), RawKey(7), 0600);
  auto ring = Keyring::Load(dir.path(), "", random);
  ASSERT_FALSE(ring.ok());
  EXPECT_NE(ring.error().Message().find("holds the key with id " + KidOf(7)),
            std::string_view::npos)
      << ring.error().Message();
}

TEST(KeyringTest, KeysCurrentMustNameAKeyItHas) {
  TempDir dir;
  OsRandom random;
  ASSERT_TRUE(fs::create_directory(dir.File("keys")));
  WriteFile(dir.File("keys/" + KidOf(7) + ".key"), RawKey(7), 0600);
  WriteFile(dir.File("keys/current"), KidOf(8) + "\n", 0600);
  auto ring = Keyring::Load(dir.path(), "", random);
  ASSERT_FALSE(ring.ok());
  EXPECT_NE(ring.error().Message().find("names key " + KidOf(8)), std::string_view::npos)
      << ring.error().Message();

  WriteFile(dir.File("keys/current"), "current key\n", 0600);
  EXPECT_FALSE(Keyring::Load(dir.path(), "", random).ok());

  WriteFile(dir.File("keys/current"), KidOf(7), 0644);  // no newline, readable by all: fine
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), KidOf(7));
}

TEST(KeyringTest, WithoutKeysCurrentOneKeyFileBecomesCurrentButSeveralAreAmbiguous) {
  TempDir dir;
  OsRandom random;
  ASSERT_TRUE(fs::create_directory(dir.File("keys")));
  WriteFile(dir.File("keys/" + KidOf(7) + ".key"), RawKey(7), 0600);
  WriteFile(dir.File("keys/notes.txt"), "ignored", 0644);
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), KidOf(7));
  EXPECT_EQ(ReadFile(dir.File("keys/current")), KidOf(7) + "\n");

  ASSERT_TRUE(fs::remove(dir.File("keys/current")));
  WriteFile(dir.File("keys/" + KidOf(8) + ".key"), RawKey(8), 0600);
  auto ring = Keyring::Load(dir.path(), "", random);
  ASSERT_FALSE(ring.ok());
  EXPECT_NE(ring.error().Message().find("is missing"), std::string_view::npos);
  EXPECT_FALSE(fs::exists(dir.File("keys/current")));
}

TEST(KeyringTest, RefusesATamperedKid) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string old_kid(ring.CurrentKid());
  ASSERT_TRUE(ring.Rotate(random).ok());
  const std::string sealed = ring.Seal("bound to its kid", random);
  ASSERT_TRUE(ring.Open(sealed).ok());
  // Relabelled with the other key's id: that key cannot open it, and the prefix is authenticated.
  const std::string relabelled = "v2:" + old_kid + sealed.substr(12);
  auto opened = ring.Open(relabelled);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, Code::kServerError);
  EXPECT_NE(opened.error().Message().find("does not authenticate"), std::string_view::npos);
  // Any other change fails too.
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    if (sealed[i] == ':') continue;
    std::string altered = sealed;
    altered[i] = altered[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(ring.Open(altered).ok()) << "position " << i;
  }
}

TEST(KeyringTest, ReportsAnUnknownKid) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string sealed = ring.Seal("x", random);
  auto opened = ring.Open("v2:k00000000:" + sealed.substr(13));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, Code::kServerError);
  EXPECT_EQ(opened.error().Message(),
            "sealed under key k00000000, which this server does not have");
  EXPECT_NE(opened.error().Remediation().find("k00000000.key"), std::string_view::npos);
}

TEST(KeyringTest, RefusesMalformedText) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string sealed = ring.Seal("secret value", random);
  const std::string kid(ring.CurrentKid());
  const std::vector<std::string> bad = {
      "",
      "v2",
      "v2:",
      "v2:" + kid,
      "v2:" + kid + ":",
      "v2::" + sealed.substr(13),
      "v2:" + kid.substr(0, 8) + ":" + sealed.substr(13),
      "v2:K" + kid.substr(1) + ":" + sealed.substr(13),
      "v2:" + kid + "=" + sealed.substr(13),
      "V2:" + sealed.substr(3),
      "v3:" + sealed.substr(3),
      sealed.substr(0, sealed.size() - 1),
      sealed + "A",
      sealed + "=",
      sealed.substr(0, 30),
      "v2:" + kid + ":" + std::string(40, 'A'),
      "v1:" + sealed.substr(13),
  };
  for (const std::string& text : bad) {
    auto opened = ring.Open(text);
    EXPECT_FALSE(opened.ok()) << text;
    if (!opened.ok()) {
      EXPECT_EQ(opened.error().code, Code::kServerError);
    }
  }
}

TEST(KeyringTest, CreatesReadableFilesUnderAStrictUmask) {
  TempDir dir;
  OsRandom random;
  ScopedUmask strict(0477);
  Keyring ring = MustLoad(dir.path());
  auto rotated = ring.Rotate(random);
  ASSERT_TRUE(rotated.ok()) << rotated.error().Message();
  EXPECT_EQ(ModeOf(dir.File("keys/" + *rotated + ".key")), 0600u);
  EXPECT_EQ(ModeOf(dir.File("keys/current")), 0600u);
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), *rotated);
}

TEST(KeyringTest, RotateReportsAFailedWriteAndKeepsTheCurrentKey) {
  TempDir dir;
  OsRandom random;
  Keyring ring = MustLoad(dir.path());
  const std::string kid(ring.CurrentKid());
  // A file where the keys directory was (a read-only directory would not stop root).
  fs::rename(dir.File("keys"), dir.File("keys.moved"));
  WriteFile(dir.File("keys"), "", 0600);
  auto rotated = ring.Rotate(random);
  ASSERT_FALSE(rotated.ok());
  EXPECT_EQ(rotated.error().code, Code::kServerError);
  EXPECT_NE(rotated.error().Message().find(dir.File("keys")), std::string_view::npos)
      << rotated.error().Message();
  EXPECT_EQ(ring.CurrentKid(), kid);  // unchanged
  OsRandom seal_random;
  EXPECT_EQ(KidIn(ring.Seal("x", seal_random)), kid);
}

TEST(KeyringTest, SealAndOpenRunConcurrentlyWithRotate) {
  TempDir dir;
  Keyring ring = MustLoad(dir.path());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> opened{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      OsRandom random;
      std::vector<std::string> mine;
      for (int i = 0; !stop.load() || i < 50; ++i) {
        const std::string plaintext = "t" + std::to_string(t) + "-" + std::to_string(i);
        mine.push_back(ring.Seal(plaintext, random));
        (void)ring.NeedsReseal(mine.back());
        (void)ring.CurrentKid();
        auto back = ring.Open(mine[static_cast<std::size_t>(i) / 2]);
        if (!back.ok() || *back != "t" + std::to_string(t) + "-" + std::to_string(i / 2)) {
          ++failures;
        }
        ++opened;
      }
    });
  }
  OsRandom random;
  std::set<std::string> kids{std::string(ring.CurrentKid())};
  for (int r = 0; r < 10; ++r) {
    auto rotated = ring.Rotate(random);
    ASSERT_TRUE(rotated.ok()) << rotated.error().Message();
    kids.insert(*rotated);
  }
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(opened.load(), 200);
  EXPECT_EQ(kids.size(), 11u);
  EXPECT_EQ(MustLoad(dir.path()).CurrentKid(), ring.CurrentKid());
}

}  // namespace
}  // namespace agentgate::crypto
