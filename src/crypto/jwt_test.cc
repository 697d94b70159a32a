// Tests for HS256 JSON Web Tokens: known vectors (RFC 7515 appendix A.1, the jwt.io example that
// the npm jsonwebtoken package also produces), round trips, and every refusal.
#include "crypto/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto/base64.h"

namespace agentgate::crypto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::string_view kSecret = "a shared secret of reasonable length!";

std::string B64(std::string_view s) { return Base64UrlEncode(s); }

// HMAC with OpenSSL's one-shot API, apart from the code under test.
std::string Mac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  static const unsigned char kNoKey = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kNoKey) : key.data();
  EXPECT_NE(HMAC(md, k, static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size),
            nullptr);
  return std::string(reinterpret_cast<const char*>(out), size);
}

// A token with any header and payload text, signed with HMAC-`md` under `secret`.
std::string MakeToken(std::string_view header_json, std::string_view payload_json,
                      std::string_view secret = kSecret, const EVP_MD* md = EVP_sha256()) {
  std::string input = B64(header_json) + "." + B64(payload_json);
  return input + "." + B64(Mac(md, secret, input));
}

std::string Payload(std::string_view members) {
  return "{\"exp\":" + std::to_string(kNow + 600) + (members.empty() ? "" : ",") +
         std::string(members) + "}";
}

// Expects `token` to be refused with code invalid_token and `message` in the message.
void ExpectInvalid(std::string_view token, std::string_view message,
                   std::string_view secret = kSecret, std::int64_t now = kNow) {
  auto verified = VerifyJwtHs256(token, secret, now);
  ASSERT_FALSE(verified.ok()) << "accepted " << token;
  EXPECT_EQ(verified.error().code, Code::kInvalidToken) << verified.error().Message();
  EXPECT_EQ(verified.error().HttpStatus(), 401);
  EXPECT_NE(verified.error().Message().find(message), std::string_view::npos)
      << "wanted \"" << message << "\", got \"" << verified.error().Message() << "\"";
  EXPECT_FALSE(verified.error().remediation.empty());
  // The secret is never echoed.
  EXPECT_EQ(verified.error().Message().find(kSecret), std::string_view::npos);
}

// ---------------------------------------------------------------------------------------------
// Known vectors

// RFC 7515 appendix A.1: an HS256 JWS whose header has "typ" first and CRLFs in both parts.
constexpr std::string_view kRfcToken =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    "."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr std::int64_t kRfcExp = 1300819380;

std::string RfcKey() {
  // The JWK's "k", base64url-decoded: 64 bytes.
  std::string key;
  EXPECT_TRUE(Base64UrlDecode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
      key));
  EXPECT_EQ(key.size(), 64u);
  return key;
}

TEST(JwtTest, VerifiesTheRfc7515AppendixA1Example) {
  auto payload = VerifyJwtHs256(kRfcToken, RfcKey(), kRfcExp - 1);
  ASSERT_TRUE(payload.ok()) << payload.error().Message();
  EXPECT_EQ(payload->at("iss").as_string(), "joe");
  EXPECT_EQ(payload->at("exp").as_int64(), kRfcExp);
  EXPECT_EQ(payload->at("http://example.com/is_root").as_bool(), true);
  EXPECT_EQ(payload->size(), 3u);
  // Long before its expiry too.
  EXPECT_TRUE(VerifyJwtHs256(kRfcToken, RfcKey(), 0).ok());
}

TEST(JwtTest, TheRfcExampleExpiresAfterTheLeeway) {
  EXPECT_TRUE(VerifyJwtHs256(kRfcToken, RfcKey(), kRfcExp).ok());
  EXPECT_TRUE(VerifyJwtHs256(kRfcToken, RfcKey(), kRfcExp + 29).ok());
  auto late = VerifyJwtHs256(kRfcToken, RfcKey(), kRfcExp + 30);  // exp + leeway == now
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Code::kTokenExpired);
  EXPECT_EQ(late.error().Name(), "token_expired");
  EXPECT_EQ(late.error().HttpStatus(), 401);
  EXPECT_TRUE(late.error().Message().starts_with("The token has expired"))
      << late.error().Message();
}

TEST(JwtTest, SignsExactlyWhatJsonwebtokenSigns) {
  // jwt.io's example, which jsonwebtoken's jwt.sign(payload, 'your-256-bit-secret') also gives
  // (same header, same member order): the header bytes are {"alg":"HS256","typ":"JWT"}.
  const std::string token = SignJwtHs256(
      R"({"sub":"1234567890","name":"John Doe","iat":1516239022})", "your-256-bit-secret");
  EXPECT_EQ(token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
  // It has no exp, so it does not verify here.
  ExpectInvalid(token, "The token has no exp claim", "your-256-bit-secret");
}

TEST(JwtTest, VerifiesAJsonwebtokenStyleTokenWithExp) {
  // Python: header/payload base64url-encoded, HMAC-SHA256 under "s3cret".
  const std::string_view token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJ3b3Jrc3BhY2VLZXkiOiJ3c19kZW1vIiwiZXhwIjoyMDAwMDAwMDAwfQ."
      "2Q6ggNcHDZDJ-goGkE5ZEsNO7rKWLdVLrNDTUZYnG2E";
  auto payload = VerifyJwtHs256(token, "s3cret", kNow);
  ASSERT_TRUE(payload.ok()) << payload.error().Message();
  EXPECT_EQ(payload->at("workspaceKey").as_string(), "ws_demo");
  EXPECT_EQ(SignJwtHs256(R"({"workspaceKey":"ws_demo","exp":2000000000})", "s3cret"), token);
}

// ---------------------------------------------------------------------------------------------
// Round trip and Peek

TEST(JwtTest, RoundTrips) {
  const std::string payload_json =
      Payload(R"("workspaceKey":"ws_1","sub":"agent \"7\"","n":[1,2])");
  const std::string token = SignJwtHs256(payload_json, kSecret);
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  EXPECT_EQ(token.find_first_of("=+/ "), std::string::npos) << token;
  auto payload = VerifyJwtHs256(token, kSecret, kNow);
  ASSERT_TRUE(payload.ok()) << payload.error().Message();
  EXPECT_EQ(payload->at("workspaceKey").as_string(), "ws_1");
  EXPECT_EQ(payload->at("sub").as_string(), "agent \"7\"");
  EXPECT_EQ(payload->at("exp").as_int64(), kNow + 600);
  EXPECT_EQ(*payload, boost::json::parse(payload_json).as_object());
}

TEST(JwtTest, RoundTripsWithAnySecretBytes) {
  for (const std::string& secret :
       {std::string("x"), std::string("\0\xff\x80", 3), std::string(200, 'k')}) {
    const std::string token = SignJwtHs256(Payload(""), secret);
    EXPECT_TRUE(VerifyJwtHs256(token, secret, kNow).ok()) << token;
    ExpectInvalid(token, "The token's signature does not match", secret + "x");
  }
}

TEST(JwtTest, PeekReadsThePayloadWithoutVerifying) {
  // Wrong secret, expired, even alg none: Peek only decodes.
  const std::string token =
      MakeToken(R"({"alg":"none"})", R"({"workspaceKey":"ws_42","exp":1})", "whatever");
  auto payload = PeekJwtPayload(token);
  ASSERT_TRUE(payload.ok()) << payload.error().Message();
  EXPECT_EQ(payload->at("workspaceKey").as_string(), "ws_42");
  auto claims = PeekJwt(token);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->header.at("alg").as_string(), "none");
  EXPECT_EQ(claims->payload.at("exp").as_int64(), 1);
  // An unsigned "h.p." token also peeks.
  EXPECT_TRUE(PeekJwtPayload(B64(R"({"alg":"none"})") + "." + B64("{}") + ".").ok());
}

TEST(JwtTest, PeekRefusesMalformedTokens) {
  const std::string header = B64(R"({"alg":"HS256","typ":"JWT"})");
  const std::string payload = B64(R"({"workspaceKey":"ws_1"})");
  const std::vector<std::string> bad = {
      "",
      header,
      header + "." + payload,
      header + "." + payload + ".sig.extra",
      "." + payload + ".sig",
      header + "..sig",
      B64("not json") + "." + payload + ".sig",
      header + "." + B64("[\"ws_1\"]") + ".sig",
      header + "." + B64("\"ws_1\"") + ".sig",
      header + "." + payload + "=.sig",
      header + "." + payload + ".s+g",
      header + "." + payload + "." + std::string(kMaxJwtSize, 'A'),
  };
  for (const std::string& token : bad) {
    auto peeked = PeekJwtPayload(token);
    ASSERT_FALSE(peeked.ok()) << token;
    EXPECT_EQ(peeked.error().code, Code::kInvalidToken);
  }
}

// ---------------------------------------------------------------------------------------------
// Tampering and secrets

TEST(JwtTest, RefusesATamperedPayload) {
  const std::string token =
      SignJwtHs256(Payload(R"("workspaceKey":"ws_1","role":"reader")"), kSecret);
  const std::size_t first = token.find('.');
  const std::size_t second = token.find('.', first + 1);
  const std::string forged = token.substr(0, first + 1) +
                             B64(Payload(R"("workspaceKey":"ws_1","role":"admin")")) +
                             token.substr(second);
  ExpectInvalid(forged, "The token's signature does not match");
}

TEST(JwtTest, RefusesATamperedSignature) {
  const std::string token = SignJwtHs256(Payload(""), kSecret);
  const std::size_t sig = token.rfind('.') + 1;
  std::string altered = token;
  altered[sig + 5] = altered[sig + 5] == 'A' ? 'B' : 'A';
  ExpectInvalid(altered, "The token's signature does not match");
  // A signature of the right length, but all zero.
  ExpectInvalid(token.substr(0, sig) + B64(std::string(32, '\0')),
                "The token's signature does not match");
}

TEST(JwtTest, RefusesAnyAlteredCharacter) {
  const std::string token = SignJwtHs256(Payload(R"("workspaceKey":"ws_1")"), kSecret);
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    for (char c : {'A', 'Q', 'g', 'w', '_'}) {
      if (token[i] == c) continue;
      std::string altered = token;
      altered[i] = c;
      auto verified = VerifyJwtHs256(altered, kSecret, kNow);
      EXPECT_FALSE(verified.ok()) << "position " << i << " -> " << c;
    }
  }
}

TEST(JwtTest, RefusesSignaturesOfTheWrongLength) {
  const std::string token = SignJwtHs256(Payload(""), kSecret);
  const std::string input = token.substr(0, token.rfind('.'));
  const std::string mac = Mac(EVP_sha256(), kSecret, input);
  ExpectInvalid(input + "." + B64(mac.substr(0, 31)), "must be 32 bytes");
  ExpectInvalid(input + "." + B64(mac + "x"), "must be 32 bytes");
  ExpectInvalid(input + "." + B64(mac.substr(0, 16)), "must be 32 bytes");
  ExpectInvalid(input + ".", "must be 32 bytes");
  ExpectInvalid(input + "." + B64(mac) + "AA", "not valid base64url");    // 4k+1 characters
  ExpectInvalid(input + "." + Base64Encode(mac), "not valid base64url");  // '=' padding
}

TEST(JwtTest, RefusesTheWrongSecret) {
  const std::string token = SignJwtHs256(Payload(""), kSecret);
  ExpectInvalid(token, "The token's signature does not match", "another secret");
  ExpectInvalid(token, "The token's signature does not match",
                std::string(kSecret.substr(0, kSecret.size() - 1)));
}

TEST(JwtTest, AnEmptySecretNeverVerifies) {
  const std::string token = SignJwtHs256(Payload(""), "");
  ExpectInvalid(token, "no secret", "");
  EXPECT_FALSE(VerifyJwtHs256(SignJwtHs256(Payload(""), kSecret), "", kNow).ok());
}

// ---------------------------------------------------------------------------------------------
// Header rules

TEST(JwtTest, RefusesAlgNoneWithAnEmptySignature) {
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})";
    const std::string token = B64(header) + "." + B64(Payload("")) + ".";
    ExpectInvalid(token, "The token's algorithm must be HS256");
    // Nor with an HS256 signature attached.
    ExpectInvalid(MakeToken(header, Payload("")), "The token's algorithm must be HS256");
  }
}

TEST(JwtTest, RefusesOtherHmacAlgorithms) {
  // Correctly signed with the named algorithm and the right secret: still refused.
  ExpectInvalid(MakeToken(R"({"alg":"HS512","typ":"JWT"})", Payload(""), kSecret, EVP_sha512()),
                "The token's algorithm must be HS256");
  ExpectInvalid(MakeToken(R"({"alg":"HS384","typ":"JWT"})", Payload(""), kSecret, EVP_sha384()),
                "The token's algorithm must be HS256");
  // An HS256 MAC under a header that claims HS512.
  ExpectInvalid(MakeToken(R"({"alg":"HS512","typ":"JWT"})", Payload("")),
                "The token's algorithm must be HS256");
}

TEST(JwtTest, RefusesAsymmetricAlgorithmsEvenWhenTheHmacMatches) {
  // The alg-confusion attack: an HMAC keyed with what the server might take for a public key,
  // under a header naming RS256 or ES256. Here the MAC even uses the real secret.
  for (std::string_view alg : {"RS256", "ES256", "PS256", "EdDSA"}) {
    ExpectInvalid(MakeToken(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})", Payload("")),
                  "The token's algorithm must be HS256");
  }
}

TEST(JwtTest, RefusesAnAlgThatIsMissingNotAStringOrNotExactlyHs256) {
  ExpectInvalid(MakeToken(R"({"typ":"JWT"})", Payload("")), "header has no alg");
  ExpectInvalid(MakeToken(R"({})", Payload("")), "header has no alg");
  for (std::string_view alg : {"256", "null", "true", R"(["HS256"])", R"({"name":"HS256"})"}) {
    ExpectInvalid(MakeToken(R"({"alg":)" + std::string(alg) + "}", Payload("")),
                  "alg is not a string");
  }
  for (std::string_view alg : {"hs256", "Hs256", "HS256 ", " HS256", "HS2560", "HS25", ""}) {
    ExpectInvalid(MakeToken(R"({"alg":")" + std::string(alg) + R"("})", Payload("")),
                  "The token's algorithm must be HS256");
  }
  ExpectInvalid(MakeToken(R"({"alg":"HS256\u0000"})", Payload("")),
                "The token's algorithm must be HS256");
}

TEST(JwtTest, ADuplicateAlgCountsItsLastValue) {
  ExpectInvalid(MakeToken(R"({"alg":"HS256","alg":"none"})", Payload("")),
                "The token's algorithm must be HS256");
  EXPECT_TRUE(
      VerifyJwtHs256(MakeToken(R"({"alg":"none","alg":"HS256"})", Payload("")), kSecret, kNow)
          .ok());
}

TEST(JwtTest, RefusesAHeaderWithCrit) {
  ExpectInvalid(MakeToken(R"({"alg":"HS256","crit":["exp"],"exp":1})", Payload("")), "crit");
  ExpectInvalid(MakeToken(R"({"alg":"HS256","crit":[]})", Payload("")), "crit");
  ExpectInvalid(MakeToken(R"({"alg":"HS256","crit":null})", Payload("")), "crit");
}

TEST(JwtTest, TypIfPresentMustBeJwtInAnyCase) {
  for (std::string_view header :
       {R"({"alg":"HS256"})", R"({"alg":"HS256","typ":"JWT"})", R"({"alg":"HS256","typ":"jwt"})",
        R"({"typ":"Jwt","alg":"HS256"})", R"({"alg":"HS256","kid":"k1","cty":"x"})"}) {
    auto verified = VerifyJwtHs256(MakeToken(header, Payload("")), kSecret, kNow);
    EXPECT_TRUE(verified.ok()) << header << ": " << verified.error().Message();
  }
  for (std::string_view typ : {R"("JOSE")", R"("JWS")", R"("application/jwt")", R"("")",
                               R"("JWT ")", "1", "null", R"(["JWT"])"}) {
    ExpectInvalid(MakeToken(R"({"alg":"HS256","typ":)" + std::string(typ) + "}", Payload("")),
                  "The token's typ must be JWT");
  }
}

// ---------------------------------------------------------------------------------------------
// Structure

TEST(JwtTest, RefusesTokensWithoutExactlyThreeParts) {
  const std::string token = SignJwtHs256(Payload(""), kSecret);
  const std::size_t first = token.find('.');
  const std::size_t second = token.rfind('.');
  const std::vector<std::string> bad = {
      token.substr(0, first),                                   // one part
      token.substr(0, second),                                  // two parts
      token.substr(0, first) + token.substr(second),            // two parts, the second a MAC
      token + ".",                                              // four, the last empty
      token + "." + token.substr(second + 1),                   // four
      token.substr(0, second) + "." + token.substr(first + 1),  // five
      ".",
      "...",
  };
  for (const std::string& t : bad) {
    ExpectInvalid(t, "The token must have exactly three parts");
  }
  ExpectInvalid("", "The token is empty");
  ExpectInvalid("..", "The token's header is not valid JSON");  // three parts, all empty
}

TEST(JwtTest, RefusesAHeaderThatIsNotAJsonObject) {
  ExpectInvalid(MakeToken("not json", Payload("")), "The token's header is not valid JSON");
  ExpectInvalid(MakeToken(R"({"alg":"HS256")", Payload("")),
                "The token's header is not valid JSON");
  ExpectInvalid(MakeToken(R"({"alg":"HS256"} {})", Payload("")),
                "The token's header is not valid JSON");
  ExpectInvalid(MakeToken("", Payload("")), "The token's header is not valid JSON");
  ExpectInvalid(MakeToken(R"(["HS256"])", Payload("")), "The token's header is not a JSON object");
  ExpectInvalid(MakeToken(R"("HS256")", Payload("")), "The token's header is not a JSON object");
  // Not base64url: standard alphabet, padding, whitespace.
  const std::string rest = "." + B64(Payload("")) + ".AAAA";
  ExpectInvalid("eyJ+" + rest, "The token's header is not valid base64url");
  ExpectInvalid(B64("{}") + "=" + rest, "The token's header is not valid base64url");
  ExpectInvalid(" " + B64(R"({"alg":"HS256"})") + rest,
                "The token's header is not valid base64url");
}

TEST(JwtTest, RefusesAPayloadThatIsNotAJsonObject) {
  const std::string header = R"({"alg":"HS256","typ":"JWT"})";
  ExpectInvalid(MakeToken(header, "[1,2]"), "The token's payload is not a JSON object");
  ExpectInvalid(MakeToken(header, "42"), "The token's payload is not a JSON object");
  ExpectInvalid(MakeToken(header, R"("exp")"), "The token's payload is not a JSON object");
  ExpectInvalid(MakeToken(header, "null"), "The token's payload is not a JSON object");
  ExpectInvalid(MakeToken(header, "{exp: 1}"), "The token's payload is not valid JSON");
  ExpectInvalid(MakeToken(header, ""), "The token's payload is not valid JSON");
  ExpectInvalid(MakeToken(header, std::string(100, '[') + std::string(100, ']')),
                "The token's payload is not valid JSON");  // nested too deep
}

TEST(JwtTest, RefusesAnOversizedToken) {
  // Grow a claim until the token passes 8 KiB; every token up to the limit still verifies.
  std::size_t pad = 5000;
  std::string token;
  std::string last_good;
  for (;; ++pad) {
    token = SignJwtHs256(Payload(R"("pad":")" + std::string(pad, 'x') + "\""), kSecret);
    if (token.size() > kMaxJwtSize) break;
    last_good = token;
  }
  ASSERT_GE(last_good.size(), kMaxJwtSize - 1);
  EXPECT_TRUE(VerifyJwtHs256(last_good, kSecret, kNow).ok());
  ExpectInvalid(token, "The token is longer than 8192 bytes");
  ExpectInvalid(std::string(1 << 20, 'A'), "The token is longer than 8192 bytes");
  auto peeked = PeekJwtPayload(token);
  ASSERT_FALSE(peeked.ok());
  EXPECT_NE(peeked.error().Message().find("longer than"), std::string_view::npos);
}

// ---------------------------------------------------------------------------------------------
// Time claims

std::string WithClaims(std::string_view members) {
  return SignJwtHs256("{" + std::string(members) + "}", kSecret);
}

std::string Claim(std::string_view name, std::int64_t value) {
  return "\"" + std::string(name) + "\":" + std::to_string(value);
}

TEST(JwtTest, RefusesAMissingExp) {
  ExpectInvalid(WithClaims(R"("sub":"x")"), "The token has no exp claim");
  ExpectInvalid(WithClaims(""), "The token has no exp claim");
  ExpectInvalid(WithClaims(R"("EXP":2000000000,"expires":2000000000)"),
                "The token has no exp claim");
}

TEST(JwtTest, RefusesAnExpThatIsNotANumber) {
  for (std::string_view exp : {R"("2000000000")", "null", "true", "[2000000000]",
                               R"({"s":2000000000})", "1e400", "-1e400"}) {
    ExpectInvalid(WithClaims(R"("exp":)" + std::string(exp)),
                  "The token's exp claim must be a number");
  }
}

TEST(JwtTest, ExpiredBeyondTheLeewayIsTokenExpired) {
  const std::string token = WithClaims(Claim("exp", kNow - 31));
  auto verified = VerifyJwtHs256(token, kSecret, kNow);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, Code::kTokenExpired);
  EXPECT_EQ(verified.error().HttpStatus(), 401);
  EXPECT_TRUE(verified.error().Message().starts_with("The token has expired"));
  EXPECT_FALSE(verified.error().remediation.empty());
  // Long expired, and a negative exp.
  EXPECT_EQ(VerifyJwtHs256(WithClaims(Claim("exp", 0)), kSecret, kNow).error().code,
            Code::kTokenExpired);
  EXPECT_EQ(VerifyJwtHs256(WithClaims(Claim("exp", -5)), kSecret, kNow).error().code,
            Code::kTokenExpired);
}

TEST(JwtTest, ExpiredWithinTheLeewayIsAccepted) {
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(Claim("exp", kNow - 29)), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(Claim("exp", kNow)), kSecret, kNow).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(Claim("exp", kNow - 30)), kSecret, kNow).ok());
  // A custom leeway, and none.
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(Claim("exp", kNow - 100)), kSecret, kNow, 101).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(Claim("exp", kNow - 100)), kSecret, kNow, 100).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(Claim("exp", kNow + 1)), kSecret, kNow, 0).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(Claim("exp", kNow)), kSecret, kNow, 0).ok());
  // A negative leeway counts as none.
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(Claim("exp", kNow + 1)), kSecret, kNow, -50).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(Claim("exp", kNow)), kSecret, kNow, -50).ok());
}

TEST(JwtTest, AFractionalExpIsComparedExactly) {
  const std::string exp = std::to_string(kNow - 30) + ".5";  // exp + 30 = now + 0.5
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(R"("exp":)" + exp), kSecret, kNow).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(R"("exp":)" + exp), kSecret, kNow + 1).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(R"("exp":2e9)"), kSecret, kNow).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(R"("exp":1.5e9)"), kSecret, kNow).ok());
  // Beyond int64: a token that does not expire in practice.
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(R"("exp":18446744073709551615)"), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(R"("exp":1e300)"), kSecret, kNow).ok());
  EXPECT_FALSE(VerifyJwtHs256(WithClaims(R"("exp":-1e300)"), kSecret, kNow).ok());
}

TEST(JwtTest, RefusesAnNbfInTheFuture) {
  const std::string exp = Claim("exp", kNow + 3600);
  ExpectInvalid(WithClaims(exp + "," + Claim("nbf", kNow + 31)), "The token is not valid yet");
  ExpectInvalid(WithClaims(exp + "," + Claim("nbf", kNow + 3000)), "The token is not valid yet");
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + "," + Claim("nbf", kNow + 30)), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + "," + Claim("nbf", kNow)), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + "," + Claim("nbf", 0)), kSecret, kNow).ok());
  EXPECT_FALSE(
      VerifyJwtHs256(WithClaims(exp + "," + Claim("nbf", kNow + 1)), kSecret, kNow, 0).ok());
  for (std::string_view nbf : {R"("0")", "null", "false", "1e400"}) {
    ExpectInvalid(WithClaims(exp + R"(,"nbf":)" + std::string(nbf)),
                  "The token's nbf claim must be a number");
  }
}

TEST(JwtTest, AnIatMustBeANumberButMayBeAnyTime) {
  const std::string exp = Claim("exp", kNow + 3600);
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + "," + Claim("iat", kNow)), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + "," + Claim("iat", kNow + 999)), kSecret, kNow).ok());
  EXPECT_TRUE(VerifyJwtHs256(WithClaims(exp + R"(,"iat":1.25)"), kSecret, kNow).ok());
  for (std::string_view iat : {R"("now")", "null", "{}"}) {
    ExpectInvalid(WithClaims(exp + R"(,"iat":)" + std::string(iat)),
                  "The token's iat claim must be a number");
  }
}

TEST(JwtTest, ClaimsAreCheckedOnlyAfterTheSignature) {
  // A forged expired token learns only that its signature is wrong.
  ExpectInvalid(WithClaims(Claim("exp", 1)), "The token's signature does not match", "other");
  ExpectInvalid(WithClaims(R"("sub":"x")"), "The token's signature does not match", "other");
}

}  // namespace
}  // namespace agentgate::crypto
