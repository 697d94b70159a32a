// Base64 (RFC 4648 section 4: "+/" alphabet, '=' padding) and base64url (section 5: "-_"
// alphabet, no padding), the one implementation for the whole server.
//
// The decoders are strict, so that each byte string has exactly one accepted text and a typo is
// refused rather than silently decoded to different bytes: only the form's own alphabet, no
// whitespace or line breaks, a length that a real encoding can have, zero in the unused low bits
// of the last character, and padding exactly as the form requires ('=' to a multiple of 4 in
// base64, none at all in base64url).
//
// Thread safety: pure functions. Errors: the decoders return false on malformed input and never
// throw (apart from std::bad_alloc, like any allocation).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace agentgate::crypto {

// Standard base64 with '=' padding: 4 * ceil(n / 3) characters.
std::string Base64Encode(std::span<const std::uint8_t> bytes);
std::string Base64Encode(std::string_view bytes);

// base64url without padding: ceil(4 * n / 3) characters.
std::string Base64UrlEncode(std::span<const std::uint8_t> bytes);
std::string Base64UrlEncode(std::string_view bytes);

// Decodes `text` into `out` (replacing what was there). On false, `out` is empty, and any bytes
// already decoded were wiped first, since the text may have been a key.
bool Base64Decode(std::string_view text, std::string& out);
bool Base64UrlDecode(std::string_view text, std::string& out);

}  // namespace agentgate::crypto
