#include "crypto/base64.h"

#include <openssl/crypto.h>

#include <array>

namespace agentgate::crypto {
namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Character -> 6-bit value, or kNotInAlphabet.
using DecodeTable = std::array<std::uint8_t, 256>;
constexpr std::uint8_t kNotInAlphabet = 0xff;

constexpr DecodeTable MakeDecodeTable(const char* alphabet) {
  DecodeTable table{};
  for (auto& v : table) v = kNotInAlphabet;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  return table;
}

constexpr DecodeTable kStdValues = MakeDecodeTable(kStd);
constexpr DecodeTable kUrlValues = MakeDecodeTable(kUrl);

std::string Encode(std::span<const std::uint8_t> in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve(pad ? (in.size() + 2) / 3 * 4 : (in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const std::size_t rest = in.size() - i;
  if (rest == 0) return out;
  std::uint32_t v = std::uint32_t{in[i]} << 16;
  if (rest == 2) v |= std::uint32_t{in[i + 1]} << 8;
  out.push_back(alphabet[(v >> 18) & 63]);
  out.push_back(alphabet[(v >> 12) & 63]);
  if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
  if (pad) out.append(rest == 1 ? "==" : "=");
  return out;
}

// Decodes unpadded text; the caller has removed any padding and checked the length.
bool DecodeBody(std::string_view body, const DecodeTable& values, std::string& out) {
  out.clear();
  out.reserve(body.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : body) {
    const std::uint8_t v = values[static_cast<unsigned char>(c)];
    if (v == kNotInAlphabet) return false;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  // Non-zero leftover bits would make a second text for the same bytes.
  return acc == 0;
}

bool Fail(std::string& out) {
  OPENSSL_cleanse(out.data(), out.size());
  out.clear();
  return false;
}

std::span<const std::uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

std::string Base64Encode(std::span<const std::uint8_t> bytes) { return Encode(bytes, kStd, true); }

std::string Base64Encode(std::string_view bytes) { return Encode(AsBytes(bytes), kStd, true); }

std::string Base64UrlEncode(std::span<const std::uint8_t> bytes) {
  return Encode(bytes, kUrl, false);
}

std::string Base64UrlEncode(std::string_view bytes) { return Encode(AsBytes(bytes), kUrl, false); }

bool Base64Decode(std::string_view text, std::string& out) {
  if (text.size() % 4 != 0) return Fail(out);
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  // Any other '=' (a third one, or one before the end) is outside the alphabet below.
  if (!DecodeBody(text.substr(0, text.size() - pad), kStdValues, out)) return Fail(out);
  return true;
}

bool Base64UrlDecode(std::string_view text, std::string& out) {
  // One character carries only 6 bits: no byte string encodes to 4k+1 characters.
  if (text.size() % 4 == 1) return Fail(out);
  if (!DecodeBody(text, kUrlValues, out)) return Fail(out);
  return true;
}

}  // namespace agentgate::crypto
