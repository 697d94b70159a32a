// Tests for the outbound webhook primitives: sealed secrets, Standard Webhooks signatures, the
// egress guard, the sender (against a small HTTP server on 127.0.0.1) and the retry schedule.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/random.h"
#include "crypto/seal.h"
#include "webhooks/backoff.h"
#include "webhooks/egress.h"
#include "webhooks/sender.h"
#include "webhooks/signature.h"

namespace agentgate::webhooks {
namespace {

namespace fs = std::filesystem;

// Deterministic Random: repeats `pattern` forever.
class FakeRandom final : public crypto::Random {
 public:
  explicit FakeRandom(std::vector<std::uint8_t> pattern) : pattern_(std::move(pattern)) {}
  static FakeRandom Counting() {
    std::vector<std::uint8_t> p(256);
    for (int i = 0; i < 256; ++i) p[i] = static_cast<std::uint8_t>(i);
    return FakeRandom(std::move(p));
  }
  void Fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) b = pattern_[next_++ % pattern_.size()];
  }

 private:
  std::vector<std::uint8_t> pattern_;
  std::size_t next_ = 0;
};

// A fresh directory under the test temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(testing::TempDir()) / "webhooks_test_XXXXXX").string();
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

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// Sets the process umask for the life of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

crypto::Sealer TestSealer(std::uint8_t fill) {
  std::array<std::uint8_t, crypto::Sealer::kKeySize> key{};
  key.fill(fill);
  return crypto::Sealer(key);
}

// ---------------------------------------------------------------------------------------------
// Sealer

TEST(SealerTest, RoundTripsAnyBytes) {
  crypto::OsRandom random;
  const crypto::Sealer sealer = TestSealer(7);
  const std::vector<std::string> plaintexts = {"", "x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                               std::string("a\0b\xff", 4),
                                               std::string(100'000, 'z')};
  for (const std::string& plaintext : plaintexts) {
    const std::string sealed = sealer.Seal(plaintext, random);
    ASSERT_TRUE(sealed.starts_with("v1:")) << sealed;
    // Unpadded base64url of nonce (12) + ciphertext + tag (16).
    EXPECT_EQ(sealed.size(), 3 + ((12 + plaintext.size() + 16) * 4 + 2) / 3);
    EXPECT_EQ(sealed.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-_",
                                       3),
              std::string::npos);
    auto opened = sealer.Open(sealed);
    ASSERT_TRUE(opened.ok()) << opened.error().Message();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(SealerTest, SealsDifferentlyEachTime) {
  crypto::OsRandom random;
  const crypto::Sealer sealer = TestSealer(7);
  EXPECT_NE(sealer.Seal("same", random), sealer.Seal("same", random));
}

TEST(SealerTest, DetectsAnyAlteredCharacter) {
  auto random = FakeRandom::Counting();
  const crypto::Sealer sealer = TestSealer(7);
  const std::string sealed = sealer.Seal("secret value", random);
  for (std::size_t i = 3; i < sealed.size(); ++i) {
    std::string altered = sealed;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    auto opened = sealer.Open(altered);
    EXPECT_FALSE(opened.ok()) << "position " << i;
    if (!opened.ok()) {
      EXPECT_EQ(opened.error().code, Code::kServerError);
    }
  }
}

TEST(SealerTest, RejectsMalformedText) {
  auto random = FakeRandom::Counting();
  const crypto::Sealer sealer = TestSealer(7);
  const std::string sealed = sealer.Seal("secret value", random);
  const std::vector<std::string> bad = {
      "",
      "v1:",
      "v1",
      "v2:" + sealed.substr(3),
      "V1:" + sealed.substr(3),
      sealed.substr(0, sealed.size() - 1),
      sealed + "A",
      sealed + "=",
      sealed.substr(0, 20),
      "v1:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
      "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // right shape, all zero
      "v1:" + sealed.substr(3, 10) + "\n" + sealed.substr(13),
      std::string("v1:\0", 4),
  };
  for (const std::string& text : bad) {
    auto opened = sealer.Open(text);
    EXPECT_FALSE(opened.ok()) << text;
  }
}

TEST(SealerTest, OtherKeyCannotOpen) {
  crypto::OsRandom random;
  const std::string sealed = TestSealer(7).Seal("secret", random);
  auto opened = TestSealer(8).Open(sealed);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().Message().find("another key"), std::string_view::npos)
      << opened.error().Message();
}

TEST(SealerLoadOrCreateTest, CreatesAKeyFileWithMode0600AndReadsItBack) {
  TempDir dir;
  crypto::OsRandom random;
  const std::string path = dir.File("webhooks.key");
  std::string sealed;
  {
    ScopedUmask permissive(0);  // the file must still come out 0600
    auto created = crypto::Sealer::LoadOrCreate(path, random);
    ASSERT_TRUE(created.ok()) << created.error().Message();
    sealed = created->Seal("kept across restarts", random);
  }
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(fs::file_size(path), 32u);
  // Nothing left behind but the key.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);

  auto loaded = crypto::Sealer::LoadOrCreate(path, random);
  ASSERT_TRUE(loaded.ok()) << loaded.error().Message();
  auto opened = loaded->Open(sealed);
  ASSERT_TRUE(opened.ok()) << opened.error().Message();
  EXPECT_EQ(*opened, "kept across restarts");
}

TEST(SealerLoadOrCreateTest, CreatesAReadableKeyEvenUnderAStrictUmask) {
  TempDir dir;
  crypto::OsRandom random;
  const std::string path = dir.File("k");
  ScopedUmask strict(0477);
  auto created = crypto::Sealer::LoadOrCreate(path, random);
  ASSERT_TRUE(created.ok()) << created.error().Message();
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_TRUE(crypto::Sealer::LoadOrCreate(path, random).ok());
}

TEST(SealerLoadOrCreateTest, UsesAnExistingKeyFile) {
  TempDir dir;
  auto random = FakeRandom::Counting();
  const std::string path = dir.File("k");
  WriteFile(path, std::string(32, '\x07'), 0600);
  auto loaded = crypto::Sealer::LoadOrCreate(path, random);
  ASSERT_TRUE(loaded.ok()) << loaded.error().Message();
  auto opened = loaded->Open(TestSealer(7).Seal("from elsewhere", random));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "from elsewhere");
}

TEST(SealerLoadOrCreateTest, RefusesAKeyFileOthersCanRead) {
  TempDir dir;
  crypto::OsRandom random;
  const std::string path = dir.File("k");
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610}) {
    WriteFile(path, std::string(32, 'k'), mode);
    auto loaded = crypto::Sealer::LoadOrCreate(path, random);
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_EQ(loaded.error().code, Code::kServerError);
    EXPECT_NE(loaded.error().Remediation().find("chmod 600 " + path), std::string_view::npos)
        << loaded.error().Remediation();
    EXPECT_NE(loaded.error().Message().find(path), std::string_view::npos);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // owner read-only is fine
  EXPECT_TRUE(crypto::Sealer::LoadOrCreate(path, random).ok());
}

TEST(SealerLoadOrCreateTest, RefusesAKeyFileOfTheWrongSize) {
  TempDir dir;
  crypto::OsRandom random;
  const std::string path = dir.File("k");
  for (std::size_t size : {0, 1, 31, 33, 64, 4096}) {
    WriteFile(path, std::string(size, 'k'), 0600);
    auto loaded = crypto::Sealer::LoadOrCreate(path, random);
    ASSERT_FALSE(loaded.ok()) << size;
    EXPECT_NE(loaded.error().Message().find(path), std::string_view::npos);
    // The file must be left alone: it may be the only copy of a damaged key.
    EXPECT_EQ(fs::file_size(path), size);
  }
}

TEST(SealerLoadOrCreateTest, ReportsUnusablePaths) {
  TempDir dir;
  crypto::OsRandom random;
  EXPECT_FALSE(crypto::Sealer::LoadOrCreate(dir.path(), random).ok());  // a directory
  EXPECT_FALSE(crypto::Sealer::LoadOrCreate(dir.File("missing/k"), random).ok());
  EXPECT_FALSE(crypto::Sealer::LoadOrCreate("", random).ok());
  // A FIFO must be refused, not block the caller waiting for a writer.
  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto from_fifo = crypto::Sealer::LoadOrCreate(fifo, random);
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_NE(from_fifo.error().Message().find("not a regular file"), std::string_view::npos);
}

TEST(SealerLoadOrCreateTest, FollowsASymlinkToAKeyFile) {
  // Secrets mounted by orchestrators (Kubernetes) are symlinks to the real file.
  TempDir dir;
  crypto::OsRandom random;
  WriteFile(dir.File("real"), std::string(32, '\x07'), 0600);
  fs::create_symlink(dir.File("real"), dir.File("link"));
  auto loaded = crypto::Sealer::LoadOrCreate(dir.File("link"), random);
  ASSERT_TRUE(loaded.ok()) << loaded.error().Message();
  EXPECT_TRUE(loaded->Open(TestSealer(7).Seal("x", random)).ok());
}

TEST(SealerLoadOrCreateTest, ConcurrentCreatorsAgreeOnOneKey) {
  TempDir dir;
  const std::string path = dir.File("k");
  constexpr int kThreads = 8;
  std::vector<std::string> sealed(kThreads);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      crypto::OsRandom random;
      while (!go.load()) std::this_thread::yield();
      auto sealer = crypto::Sealer::LoadOrCreate(path, random);
      if (sealer.ok()) sealed[i] = sealer->Seal("t" + std::to_string(i), random);
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  crypto::OsRandom random;
  auto final_key = crypto::Sealer::LoadOrCreate(path, random);
  ASSERT_TRUE(final_key.ok());
  for (int i = 0; i < kThreads; ++i) {
    auto opened = final_key->Open(sealed[i]);
    ASSERT_TRUE(opened.ok()) << "thread " << i << " sealed under a key that was replaced";
    EXPECT_EQ(*opened, "t" + std::to_string(i));
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures

constexpr std::string_view kVectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kVectorId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kVectorTimestamp = 1614265330;
constexpr std::string_view kVectorBody = R"({"test": 2432232314})";
constexpr std::string_view kVectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(SignatureTest, MatchesTheReferenceLibrariesVector) {
  // The vector of the standardwebhooks / svix libraries' "sign" tests.
  auto key = DecodeSecret(kVectorSecret);
  ASSERT_TRUE(key.ok()) << key.error().Message();
  EXPECT_EQ(key->size(), 24u);
  EXPECT_EQ(Sign(*key, kVectorId, kVectorTimestamp, kVectorBody), kVectorSignature);
}

TEST(SignatureTest, SecretPrefixIsOptional) {
  auto with = DecodeSecret(kVectorSecret);
  auto without = DecodeSecret(kVectorSecret.substr(6));
  ASSERT_TRUE(with.ok());
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(*with, *without);
}

TEST(SignatureTest, EverySignedPartMatters) {
  auto key = DecodeSecret(kVectorSecret);
  ASSERT_TRUE(key.ok());
  const std::string base = Sign(*key, kVectorId, kVectorTimestamp, kVectorBody);
  EXPECT_NE(Sign(*key, "msg_other", kVectorTimestamp, kVectorBody), base);
  EXPECT_NE(Sign(*key, kVectorId, kVectorTimestamp + 1, kVectorBody), base);
  EXPECT_NE(Sign(*key, kVectorId, kVectorTimestamp, R"({"test":2432232314})"), base);
  std::vector<std::uint8_t> other = *key;
  other[0] ^= 1;
  EXPECT_NE(Sign(other, kVectorId, kVectorTimestamp, kVectorBody), base);
}

TEST(SignatureTest, HeaderListsOneSignaturePerKeyInOrder) {
  auto old_key = DecodeSecret(kVectorSecret);
  ASSERT_TRUE(old_key.ok());
  auto random = FakeRandom::Counting();
  auto new_key = DecodeSecret(NewWebhookSecret(random));
  ASSERT_TRUE(new_key.ok());
  const std::string header =
      SignatureHeader({*new_key, *old_key}, kVectorId, kVectorTimestamp, kVectorBody);
  EXPECT_EQ(header, Sign(*new_key, kVectorId, kVectorTimestamp, kVectorBody) + " " +
                        std::string(kVectorSignature));
  EXPECT_EQ(SignatureHeader({*old_key}, kVectorId, kVectorTimestamp, kVectorBody),
            kVectorSignature);
  EXPECT_EQ(SignatureHeader({}, kVectorId, kVectorTimestamp, kVectorBody), "");
}

TEST(SignatureTest, SignsWithAnEmptyKeyWithoutCrashing) {
  // Not a key anyone should use (DecodeSecret refuses it), but Sign must still be total.
  const std::string s = Sign({}, "msg_x", 0, "");
  EXPECT_TRUE(s.starts_with("v1,"));
  EXPECT_EQ(s.size(), 3u + 44u);
}

TEST(NewWebhookSecretTest, IsPrefixedStandardBase64OfThirtyTwoBytes) {
  auto random = FakeRandom::Counting();
  const std::string secret = NewWebhookSecret(random);
  EXPECT_EQ(secret, "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  auto key = DecodeSecret(secret);
  ASSERT_TRUE(key.ok());
  ASSERT_EQ(key->size(), 32u);
  for (std::size_t i = 0; i < key->size(); ++i) EXPECT_EQ((*key)[i], i);

  crypto::OsRandom os;
  EXPECT_NE(NewWebhookSecret(os), NewWebhookSecret(os));
}

TEST(DecodeSecretTest, RejectsBadInput) {
  const std::vector<std::string> bad = {
      "",
      "whsec_",
      "whsec_abc",                                 // not a multiple of 4
      "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",   // space
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",  // newline
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w",    // base64url alphabet
      "whsec_MfKQ9r8GKYqrTwjU=D8ILPZIo2LaLaSw",    // padding in the middle
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==",    // bits left over in the padding
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL===",    // three '='
      "whsec_AAAAAAAAAAAAAAAAAAAAAA==",            // 16 bytes: too short
      "whsec_" + std::string(88, 'A'),             // 66 bytes: too long
      "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",    // the prefix is case-sensitive
      std::string("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa\0w", 38),
  };
  for (const std::string& secret : bad) {
    auto key = DecodeSecret(secret);
    ASSERT_FALSE(key.ok()) << secret;
    EXPECT_EQ(key.error().code, Code::kInvalidField);
    EXPECT_FALSE(key.error().Message().empty());
  }
  EXPECT_TRUE(DecodeSecret("whsec_" + std::string(64, 'A')).ok());           // 48 bytes
  EXPECT_TRUE(DecodeSecret("whsec_" + std::string(84, 'A') + "AA==").ok());  // 64 bytes
}

TEST(NewMessageIdTest, IsMsgAndTwentySixBase32Characters) {
  FakeRandom zeros({0x00});
  EXPECT_EQ(NewMessageId(zeros), "msg_" + std::string(26, 'a'));
  FakeRandom ones({0xff});
  // 25 full groups of five 1-bits, then the last three bits padded with two zeros: 11100 = 28.
  EXPECT_EQ(NewMessageId(ones), "msg_" + std::string(25, '7') + "4");

  crypto::OsRandom random;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewMessageId(random);
    ASSERT_EQ(id.size(), 30u);
    ASSERT_TRUE(id.starts_with("msg_"));
    ASSERT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567", 4), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

// ---------------------------------------------------------------------------------------------
// URL parsing

TEST(ParseWebhookUrlTest, AcceptsHttpAndHttpsUrls) {
  struct Case {
    std::string url, scheme, host;
    int port;
    std::string path_and_query;
  };
  const std::vector<Case> cases = {
      {"https://Example.COM/hook?a=1&b=%20#frag", "https", "example.com", 443, "/hook?a=1&b=%20"},
      {"http://example.com", "http", "example.com", 80, "/"},
      {"HTTP://example.com:8080", "http", "example.com", 8080, "/"},
      {"https://example.com:/x", "https", "example.com", 443, "/x"},
      {"https://example.com?q", "https", "example.com", 443, "/?q"},
      {"https://[2001:db8::1]:8443/x", "https", "2001:db8::1", 8443, "/x"},
      {"http://192.0.2.1/", "http", "192.0.2.1", 80, "/"},
      {"https://hooks.example.co.uk./a/b/", "https", "hooks.example.co.uk.", 443, "/a/b/"},
      {"https://xn--mnchen-3ya.de/", "https", "xn--mnchen-3ya.de", 443, "/"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseWebhookUrl(c.url);
    ASSERT_TRUE(parsed.ok()) << c.url << ": " << parsed.error().Message();
    EXPECT_EQ(parsed->scheme, c.scheme) << c.url;
    EXPECT_EQ(parsed->host, c.host) << c.url;
    EXPECT_EQ(parsed->port, c.port) << c.url;
    EXPECT_EQ(parsed->path_and_query, c.path_and_query) << c.url;
  }
}

TEST(ParseWebhookUrlTest, RejectsWithAReason) {
  struct Case {
    std::string url;
    std::string reason;  // part of the message
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"ftp://example.com/", "only http and https"},
      {"file:///etc/passwd", "only http and https"},
      {"javascript:alert(1)", "only http and https"},
      {"gopher://127.0.0.1:6379/_", "only http and https"},
      {"https://user:pass@example.com/", "password"},
      {"https://user@example.com/", "password"},
      {"http:///path", "no host"},
      {"http://", "no host"},
      {"http:example.com", "no host"},
      {"example.com/hook", "must start with https:// or http://"},
      {"//example.com/hook", "not a valid absolute URL"},
      {"https://exa mple.com/", "space"},
      {"https://example.com/\r\nX: y", "control"},
      {"https://m\xc3\xbcnchen.de/", "non-ASCII"},
      {"https://ex%41mple.com/", "ASCII host name"},
      {"https://example.com:0/", "1 to 65535"},
      {"https://example.com:65536/", "1 to 65535"},
      {"https://example.com:99999999999999999999/", "1 to 65535"},
      {"https://[v1.fe]/", "unsupported"},
      {"https://[::1/", "not a valid absolute URL"},
      {"https://example.com/" + std::string(2030, 'a'), "at most 2048"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseWebhookUrl(c.url);
    ASSERT_FALSE(parsed.ok()) << c.url;
    EXPECT_EQ(parsed.error().code, Code::kInvalidField) << c.url;
    EXPECT_NE(parsed.error().Message().find(c.reason), std::string_view::npos)
        << c.url << " -> " << parsed.error().Message();
  }
  const std::string longest = "https://example.com/" + std::string(2048 - 20, 'a');
  ASSERT_EQ(longest.size(), 2048u);
  EXPECT_TRUE(ParseWebhookUrl(longest).ok());
}

// ---------------------------------------------------------------------------------------------
// Address classification

TEST(IsPrivateAddressTest, ClassifiesReservedRanges) {
  const std::vector<std::string> private_addresses = {
      // IPv4
      "0.0.0.0",
      "0.1.2.3",
      "10.0.0.1",
      "10.255.255.255",
      "100.64.0.1",
      "100.127.255.255",
      "127.0.0.1",
      "127.255.255.254",
      "169.254.169.254",
      "169.254.0.1",
      "172.16.0.1",
      "172.31.255.255",
      "192.0.0.170",
      "192.168.0.1",
      "192.168.255.255",
      "198.18.0.1",
      "198.19.255.255",
      "224.0.0.1",
      "239.255.255.250",
      "240.0.0.1",
      "255.255.255.255",
      // IPv6
      "::",
      "::1",
      "0:0:0:0:0:0:0:1",
      "fe80::1",
      "febf:ffff::1",
      "fec0::1",
      "fc00::1",
      "fd12:3456:789a::1",
      "ff02::1",
      "ff0e::1",
      "100::1",
      "2001:2::1",
      "64:ff9b:1::1",
      // IPv6 forms of private IPv4 addresses
      "::ffff:127.0.0.1",
      "::FFFF:7f00:1",
      "::ffff:10.1.2.3",
      "::ffff:169.254.169.254",
      "::ffff:0.0.0.0",
      "::127.0.0.1",
      "::10.0.0.1",
      "64:ff9b::a9fe:a9fe",
      "64:ff9b::127.0.0.1",
      "2002:7f00:1::",
      "2002:c0a8:101::1",
      "2001:0:4136:e378:8000:63bf:80ff:fffe",
      // Not numeric addresses: fail closed
      "",
      "localhost",
      "127.1",
      "0x7f000001",
      "2130706433",
      "0177.0.0.1",
      "fe80::1%eth0",
      " 8.8.8.8",
      "8.8.8.8 ",
      "8.8.8.8/32",
      "[::1]",
      "1.2.3.4.5",
      "::ffff:1.2.3",
  };
  for (const std::string& ip : private_addresses) EXPECT_TRUE(IsPrivateAddress(ip)) << ip;

  const std::vector<std::string> public_addresses = {
      "8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
      "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255",
      "172.32.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
      "223.255.255.255", "192.0.1.1",
      // documentation ranges are allowed
      "192.0.2.1", "198.51.100.7", "203.0.113.5", "2001:db8::1",
      // IPv6
      "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:81c::200e", "fbff::1",
      "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",  // Teredo client 192.0.2.45
  };
  for (const std::string& ip : public_addresses) EXPECT_FALSE(IsPrivateAddress(ip)) << ip;
}

// ---------------------------------------------------------------------------------------------
// Resolution and the guard

TEST(ResolveDestinationTest, RefusesLoopbackUnlessAllowed) {
  auto refused = ResolveDestination("http://127.0.0.1:8080/x", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Code::kInvalidField);
  EXPECT_NE(refused.error().Message().find("127.0.0.1"), std::string_view::npos);
  EXPECT_NE(refused.error().Message().find("--allow-private-egress"), std::string_view::npos)
      << refused.error().Message();

  auto allowed = ResolveDestination("http://127.0.0.1:8080/x?y=1", true);
  ASSERT_TRUE(allowed.ok()) << allowed.error().Message();
  EXPECT_EQ(allowed->scheme, "http");
  EXPECT_EQ(allowed->host, "127.0.0.1");
  EXPECT_EQ(allowed->port, 8080);
  EXPECT_EQ(allowed->path_and_query, "/x?y=1");
  EXPECT_EQ(allowed->addresses, std::vector<std::string>{"127.0.0.1"});
}

TEST(ResolveDestinationTest, RefusesLocalhostByNameAndNamesTheAddress) {
  auto refused = ResolveDestination("https://localhost/hook", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Code::kInvalidField);
  const std::string_view message = refused.error().Message();
  EXPECT_NE(message.find("localhost"), std::string_view::npos) << message;
  EXPECT_NE(message.find("resolves to"), std::string_view::npos) << message;
  EXPECT_NE(message.find("--allow-private-egress"), std::string_view::npos) << message;

  auto allowed = ResolveDestination("https://localhost/hook", true);
  ASSERT_TRUE(allowed.ok()) << allowed.error().Message();
  ASSERT_FALSE(allowed->addresses.empty());
  for (const std::string& a : allowed->addresses) EXPECT_TRUE(IsPrivateAddress(a)) << a;
  EXPECT_EQ(allowed->port, 443);
}

TEST(ResolveDestinationTest, RefusesOtherSpellingsOfPrivateAddresses) {
  const std::vector<std::string> urls = {
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:169.254.169.254]/",
      "http://169.254.169.254/latest/meta-data/",
      "http://0.0.0.0:9000/",
      "http://10.0.0.1/",
      "http://[fd00::1]/",
      // Numeric forms that getaddrinfo (inet_aton) reads as 127.0.0.1.
      "http://0x7f000001/",
      "http://2130706433/",
      "http://127.1/",
      "http://0177.0.0.1/",
  };
  for (const std::string& url : urls) {
    auto refused = ResolveDestination(url, false);
    EXPECT_FALSE(refused.ok()) << url;
  }
  // When getaddrinfo accepts the odd forms, it is the resolved address that is checked.
  auto odd = ResolveDestination("http://0x7f000001/", true);
  if (odd.ok()) {
    EXPECT_EQ(odd->addresses, std::vector<std::string>{"127.0.0.1"});
  }
}

TEST(ResolveDestinationTest, AcceptsPublicLiteralsWithoutDns) {
  auto v4 = ResolveDestination("https://8.8.8.8/hook", false);
  ASSERT_TRUE(v4.ok()) << v4.error().Message();
  EXPECT_EQ(v4->addresses, std::vector<std::string>{"8.8.8.8"});
  auto v6 = ResolveDestination("https://[2606:4700:4700::1111]:8443/", false);
  ASSERT_TRUE(v6.ok()) << v6.error().Message();
  EXPECT_EQ(v6->addresses, std::vector<std::string>{"2606:4700:4700::1111"});
  EXPECT_EQ(v6->port, 8443);
}

TEST(ResolveDestinationTest, ReportsUnresolvableHostsAndBadUrls) {
  // .invalid never resolves (RFC 6761); without a DNS server the answer is a temporary failure.
  auto missing = ResolveDestination("https://no-such-host.invalid/", true);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().code == Code::kInvalidField ||
              missing.error().code == Code::kUnavailable);
  EXPECT_NE(missing.error().Message().find("no-such-host.invalid"), std::string_view::npos);

  auto bad = ResolveDestination("ftp://example.com/", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Code::kInvalidField);
}

// ---------------------------------------------------------------------------------------------
// Sender

// A tiny HTTP/1.1 server on 127.0.0.1 for the sender tests. It answers connections one after
// another with the given responses, in order, and records each request (head and body). An empty
// response means "accept, read the request, and never answer" (until the client gives up).
// Every wait has a deadline, so a broken test fails instead of hanging.
class TestServer {
 public:
  explicit TestServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(listener_, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  static bool WaitReadable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
  }

  void Run() {
    for (const std::string& response : responses_) {
      int fd = -1;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (fd < 0 && !stop_ && std::chrono::steady_clock::now() < deadline) {
        if (WaitReadable(listener_, 50)) fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      }
      if (fd < 0) return;
      std::string request = ReadRequest(fd);
      {
        std::lock_guard lock(mu_);
        requests_.push_back(request);
      }
      if (response.empty()) {
        // Hold the connection open without answering until the client hangs up.
        char buf[256];
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!stop_ && std::chrono::steady_clock::now() < until) {
          if (WaitReadable(fd, 50) && ::read(fd, buf, sizeof buf) <= 0) break;
        }
      } else {
        std::size_t sent = 0;
        while (sent < response.size()) {
          const ssize_t n =
              ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<std::size_t>(n);
        }
        ::shutdown(fd, SHUT_WR);
        // Let the client read everything before the close (a close with unread input resets).
        char buf[256];
        while (WaitReadable(fd, 1000) && ::read(fd, buf, sizeof buf) > 0) {
        }
      }
      ::close(fd);
    }
  }

  // Reads the head and a Content-Length body.
  static std::string ReadRequest(int fd) {
    std::string data;
    char buf[4096];
    std::size_t want = std::string::npos;
    while (want == std::string::npos || data.size() < want) {
      if (!WaitReadable(fd, 5000)) break;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      const std::size_t end = data.find("\r\n\r\n");
      if (want == std::string::npos && end != std::string::npos) {
        std::size_t length = 0;
        const std::size_t at = data.find("Content-Length: ");
        if (at != std::string::npos && at < end) {
          length = std::strtoul(data.c_str() + at + 16, nullptr, 10);
        }
        want = end + 4 + length;
      }
    }
    return data;
  }

  std::vector<std::string> responses_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::string Response(const std::string& status_line, const std::string& extra_headers = "",
                     const std::string& body = "") {
  return "HTTP/1.1 " + status_line + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

Destination LocalDestination(int port, std::string host = "127.0.0.1",
                             std::string path = "/hook?x=1") {
  return Destination{"http", std::move(host), port, std::move(path), {"127.0.0.1"}};
}

// A port nothing listens on: bound once, then closed.
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(DeliverTest, PostsTheBodyAndHeadersAndReadsA200) {
  TestServer server({Response("200 OK", "", "thanks")});
  const std::string body = R"({"type":"agent.created","data":{"id":"ap_1"}})";
  const HeaderList headers = {{"webhook-id", "msg_abc"},
                              {"webhook-timestamp", "1614265330"},
                              {"webhook-signature", "v1,xyz="}};
  DeliveryResult r = Deliver(LocalDestination(server.port()), headers, body, 5000);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.response_excerpt, "thanks");
  EXPECT_FALSE(r.retry_after_s.has_value());
  EXPECT_GE(r.duration_ms, 0);

  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const std::string& req = requests[0];
  EXPECT_TRUE(req.starts_with("POST /hook?x=1 HTTP/1.1\r\n")) << req;
  EXPECT_NE(req.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos)
      << req;
  EXPECT_NE(req.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nUser-Agent: agentgate-webhooks/0.1\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nwebhook-id: msg_abc\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nwebhook-timestamp: 1614265330\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nwebhook-signature: v1,xyz=\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos)
      << req;
  EXPECT_EQ(req.find("Expect:"), std::string::npos) << req;
  EXPECT_TRUE(req.ends_with("\r\n\r\n" + body)) << req;
}

TEST(DeliverTest, ConnectsToThePinnedAddressNotToWhatTheNameResolvesTo) {
  // "receiver.invalid" resolves nowhere; the request can only arrive through the pinned address.
  TestServer server({Response("204 No Content")});
  DeliveryResult r =
      Deliver(LocalDestination(server.port(), "receiver.invalid"), {}, R"({"a":1})", 5000);
  EXPECT_EQ(r.status, 204) << r.error;
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].find("\r\nHost: receiver.invalid:" + std::to_string(server.port())),
            std::string::npos)
      << requests[0];
}

TEST(DeliverTest, RefusesToConnectToAnUncheckedAddress) {
  TestServer server({Response("200 OK")});
  Destination dest = LocalDestination(server.port());
  dest.addresses = {"127.0.0.2"};  // the URL's literal 127.0.0.1 was not checked
  DeliveryResult r = Deliver(dest, {}, "{}", 2000);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("refused to connect to 127.0.0.1"), std::string::npos) << r.error;
  EXPECT_TRUE(server.requests().empty());
}

TEST(DeliverTest, ReportsA410AsAnAnswer) {
  TestServer server({Response("410 Gone", "", "endpoint removed")});
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 5000);
  EXPECT_EQ(r.status, 410);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.response_excerpt, "endpoint removed");
}

TEST(DeliverTest, ReadsRetryAfterOnA503) {
  TestServer server({Response("503 Service Unavailable", "Retry-After: 120\r\n")});
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 5000);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after_s, 120);
}

TEST(DeliverTest, DoesNotFollowRedirects) {
  TestServer target({Response("200 OK")});
  const std::string location =
      "Location: http://127.0.0.1:" + std::to_string(target.port()) + "/elsewhere\r\n";
  TestServer server({Response("307 Temporary Redirect", location)});
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 5000);
  EXPECT_EQ(r.status, 307);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(target.requests().empty());
}

TEST(DeliverTest, IgnoresProxyEnvironmentVariables) {
  TestServer server({Response("200 OK")});
  const int dead = ClosedPort();
  const std::string proxy = "http://127.0.0.1:" + std::to_string(dead);
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::setenv("HTTPS_PROXY", proxy.c_str(), 1);
  ::setenv("ALL_PROXY", proxy.c_str(), 1);
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 5000);
  ::unsetenv("http_proxy");
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("ALL_PROXY");
  EXPECT_EQ(r.status, 200) << r.error;
}

TEST(DeliverTest, KeepsTheCallersContentTypeAndSendsAnEmptyBody) {
  TestServer server({Response("200 OK")});
  DeliveryResult r = Deliver(LocalDestination(server.port()),
                             {{"Content-Type", "application/cloudevents+json"}}, "", 5000);
  EXPECT_EQ(r.status, 200) << r.error;
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].find("\r\nContent-Type: application/cloudevents+json\r\n"),
            std::string::npos);
  EXPECT_EQ(requests[0].find("application/json"), std::string::npos);
  EXPECT_NE(requests[0].find("\r\nContent-Length: 0\r\n"), std::string::npos);
}

TEST(DeliverTest, KeepsOnlyAnExcerptOfALargeBodyAsValidUtf8) {
  std::string big(std::size_t{200} * 1024, 'x');
  big[0] = '\xff';  // invalid UTF-8
  TestServer server({Response("200 OK", "", big)});
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 5000);
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.response_excerpt, "\xef\xbf\xbd" + std::string(kResponseExcerptBytes - 1, 'x'));
}

TEST(DeliverTest, ConnectionRefusedIsStatusZeroWithAnError) {
  Destination dest = LocalDestination(ClosedPort());
  DeliveryResult r = Deliver(dest, {}, "{}", 2000);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("refused"), std::string::npos) << r.error;
}

TEST(DeliverTest, GivesUpAtTheTimeout) {
  TestServer server({""});  // accepts, never answers
  const auto start = std::chrono::steady_clock::now();
  DeliveryResult r = Deliver(LocalDestination(server.port()), {}, "{}", 300);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("no response within 300 ms"), std::string::npos) << r.error;
  EXPECT_GE(r.duration_ms, 250);
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(DeliverTest, RefusesBadInputWithoutSending) {
  TestServer server({Response("200 OK")});
  const Destination good = LocalDestination(server.port());

  DeliveryResult injected = Deliver(good, {{"X-A", "1\r\nX-Evil: 1"}}, "{}", 2000);
  EXPECT_EQ(injected.status, 0);
  EXPECT_NE(injected.error.find("malformed"), std::string::npos) << injected.error;
  EXPECT_EQ(Deliver(good, {{"X-A\nB", "1"}}, "{}", 2000).status, 0);
  EXPECT_EQ(Deliver(good, {{"", "1"}}, "{}", 2000).status, 0);
  EXPECT_EQ(Deliver(good, {{"X-A:", "1"}}, "{}", 2000).status, 0);

  Destination no_addresses = good;
  no_addresses.addresses.clear();
  EXPECT_NE(Deliver(no_addresses, {}, "{}", 2000).error, "");
  Destination bad_address = good;
  bad_address.addresses = {"localhost"};
  EXPECT_NE(Deliver(bad_address, {}, "{}", 2000).error, "");
  Destination bad_scheme = good;
  bad_scheme.scheme = "file";
  EXPECT_NE(Deliver(bad_scheme, {}, "{}", 2000).error, "");
  Destination bad_port = good;
  bad_port.port = 70000;
  EXPECT_NE(Deliver(bad_port, {}, "{}", 2000).error, "");

  EXPECT_TRUE(server.requests().empty());
}

TEST(DeliverTest, IsSafeFromManyThreadsAtOnce) {
  constexpr int kThreads = 8;
  std::vector<std::string> responses(kThreads, Response("200 OK"));
  TestServer server(responses);
  std::vector<int> statuses(kThreads, -1);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Deliver(LocalDestination(server.port()), {}, "{}", 10'000).status;
    });
  }
  for (auto& t : threads) t.join();
  for (int s : statuses) EXPECT_EQ(s, 200);
  EXPECT_EQ(server.requests().size(), static_cast<std::size_t>(kThreads));
}

TEST(ParseRetryAfterTest, ReadsSecondsAndHttpDates) {
  constexpr std::int64_t kAt = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", 0), 120);
  EXPECT_EQ(ParseRetryAfter(" 7 ", 0), 7);
  EXPECT_EQ(ParseRetryAfter("0", 0), 0);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999999", 0), 2147483647);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", kAt - 30), 30);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", kAt + 500), 0);  // in the past
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:28:00 GMT", kAt - 30), 30);
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 07:28:00 2015", kAt - 30), 30);
  EXPECT_EQ(ParseRetryAfter("Thu Oct  1 07:28:00 2015", kAt - std::int64_t{20} * 86400), 0);
  EXPECT_EQ(ParseRetryAfter("Thu Oct  1 07:28:00 2015", kAt - std::int64_t{21} * 86400), 86400);

  for (std::string_view bad :
       {"", " ", "-5", "1.5", "+3", "abc", "12abc", "Wed, 21 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT junk",
        "Wed, 21 Oct 2015 07:28:00 PST", "Wed, 00 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015"}) {
    EXPECT_FALSE(ParseRetryAfter(bad, kAt).has_value()) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Backoff

TEST(RetryDelayTest, DoublesWithJitterAndCaps) {
  crypto::OsRandom random;
  for (int i = 0; i < 200; ++i) {
    for (int attempt = 1; attempt <= 12; ++attempt) {
      const std::int64_t full = std::min<std::int64_t>(1000LL << (attempt - 1), 60'000);
      const std::int64_t d = RetryDelayMs(attempt, 1000, 60'000, std::nullopt, random);
      ASSERT_GE(d, full / 2) << attempt;
      ASSERT_LE(d, full) << attempt;
    }
  }
}

TEST(RetryDelayTest, JitterSpansTheRange) {
  FakeRandom low({0x00});
  EXPECT_EQ(RetryDelayMs(3, 1000, 60'000, std::nullopt, low), 2000);
  // A draw of 2000 over a span of 2001 (2000..4000) is the top of the range.
  FakeRandom high({0, 0, 0, 0, 0, 0, 0x07, 0xd0});
  EXPECT_EQ(RetryDelayMs(3, 1000, 60'000, std::nullopt, high), 4000);

  crypto::OsRandom random;
  std::int64_t lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t d = RetryDelayMs(1, 10'000, 60'000, std::nullopt, random);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 6'000);
  EXPECT_GT(hi, 9'000);
}

TEST(RetryDelayTest, WaitsAtLeastRetryAfterUpToTheMaximum) {
  FakeRandom zeros({0x00});
  EXPECT_EQ(RetryDelayMs(1, 1000, 3'600'000, 120, zeros), 120'000);
  EXPECT_EQ(RetryDelayMs(1, 1000, 3'600'000, 0, zeros), 500);
  EXPECT_EQ(RetryDelayMs(1, 1000, 3'600'000, -10, zeros), 500);
  EXPECT_EQ(RetryDelayMs(1, 1000, 3'600'000, 86'400, zeros), 3'600'000);
  EXPECT_EQ(RetryDelayMs(1, 1000, 3'600'000, INT64_MAX, zeros), 3'600'000);
  // A Retry-After shorter than the backoff does not shorten it.
  EXPECT_EQ(RetryDelayMs(10, 1000, 3'600'000, 1, zeros), 256'000);
}

TEST(RetryDelayTest, ClampsNonsenseInputs) {
  crypto::OsRandom random;
  for (int attempt : {INT32_MIN, -1, 0, 1}) {
    const std::int64_t d = RetryDelayMs(attempt, 1000, 60'000, std::nullopt, random);
    EXPECT_GE(d, 500);
    EXPECT_LE(d, 1000);
  }
  EXPECT_GE(RetryDelayMs(INT32_MAX, INT64_MAX, INT64_MAX, INT64_MAX, random), INT64_MAX / 2);
  EXPECT_EQ(RetryDelayMs(INT32_MAX, 0, 60'000, std::nullopt, random), 0);  // and returns at once
  EXPECT_EQ(RetryDelayMs(5, 0, 60'000, std::nullopt, random), 0);
  EXPECT_EQ(RetryDelayMs(5, -1000, 60'000, std::nullopt, random), 0);
  EXPECT_EQ(RetryDelayMs(5, 1000, -1, 30, random), 0);
  const std::int64_t capped = RetryDelayMs(1, 90'000, 60'000, std::nullopt, random);
  EXPECT_GE(capped, 30'000);
  EXPECT_LE(capped, 60'000);
}

TEST(RetryDelayTest, DefaultScheduleSpansOneToTwoHours) {
  crypto::OsRandom random;
  std::int64_t total = 0;
  for (int attempt = 1; attempt < kMaxAttempts; ++attempt) {
    total += RetryDelayMs(attempt, kDefaultBaseDelayMs, kDefaultMaxDelayMs, std::nullopt, random);
  }
  EXPECT_LE(total, 127LL * 60'000);
  EXPECT_GE(total, 64LL * 60'000);
}

}  // namespace
}  // namespace agentgate::webhooks
