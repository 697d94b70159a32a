#include "webhooks/egress.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>

namespace agentgate::webhooks {
namespace {

// `subject` names the URL in messages: "webhook url", "the app's URL", "token endpoint"...
Error UrlError(std::string_view subject, std::string what) {
  return MakeError(Code::kInvalidField, std::string(subject) + " " + std::move(what),
                   "give an absolute http:// or https:// URL of a publicly reachable host");
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The reserved IPv4 range `a` (host byte order) falls in, or nullopt for a public address.
std::optional<std::string_view> Ipv4Range(std::uint32_t a) {
  struct Range {
    std::uint32_t net;
    std::uint32_t mask;
    std::string_view name;
  };
  static constexpr Range kRanges[] = {
      {0x00000000, 0xff000000, "0.0.0.0/8, \"this network\""},
      {0x0a000000, 0xff000000, "10.0.0.0/8, private"},
      {0x64400000, 0xffc00000, "100.64.0.0/10, carrier-grade NAT"},
      {0x7f000000, 0xff000000, "127.0.0.0/8, loopback"},
      {0xa9fe0000, 0xffff0000, "169.254.0.0/16, link-local"},
      {0xac100000, 0xfff00000, "172.16.0.0/12, private"},
      {0xc0000000, 0xffffff00, "192.0.0.0/24, IETF protocol assignments"},
      {0xc0a80000, 0xffff0000, "192.168.0.0/16, private"},
      {0xc6120000, 0xfffe0000, "198.18.0.0/15, benchmarking"},
      {0xe0000000, 0xf0000000, "224.0.0.0/4, multicast"},
      {0xf0000000, 0xf0000000, "240.0.0.0/4, reserved and broadcast"},
  };
  for (const Range& r : kRanges) {
    if ((a & r.mask) == r.net) return r.name;
  }
  return std::nullopt;
}

std::uint32_t Load32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

bool StartsWith(const std::array<std::uint8_t, 16>& b, std::initializer_list<std::uint8_t> p,
                int prefix_bits) {
  int i = 0;
  for (std::uint8_t byte : p) {
    const int bits = std::min(8, prefix_bits - 8 * i);
    if (bits <= 0) break;
    const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((b[i] & mask) != (byte & mask)) return false;
    ++i;
  }
  return true;
}

// An IPv6 address that carries an IPv4 address is judged by that IPv4 address.
std::optional<std::string> Embedded(std::string_view form, std::uint32_t v4) {
  if (auto range = Ipv4Range(v4)) return std::string(form) + " of " + std::string(*range);
  return std::nullopt;
}

std::optional<std::string> Ipv6Range(const std::array<std::uint8_t, 16>& b) {
  if (StartsWith(b, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) {
    const std::uint32_t tail = Load32(&b[12]);
    if (tail == 0) return "::, unspecified";
    if (tail == 1) return "::1, loopback";
    // IPv4-compatible addresses are deprecated; nothing public lives there.
    return "::/96, IPv4-compatible";
  }
  if (StartsWith(b, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96)) {
    return Embedded("IPv4-mapped ::ffff:0:0/96", Load32(&b[12]));
  }
  if (StartsWith(b, {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) {
    return Embedded("NAT64 64:ff9b::/96", Load32(&b[12]));
  }
  if (StartsWith(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48)) return "64:ff9b:1::/48, local NAT64";
  if (StartsWith(b, {0x01, 0x00, 0, 0, 0, 0, 0, 0}, 64)) return "100::/64, discard-only";
  if (StartsWith(b, {0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48)) return "2001:2::/48, benchmarking";
  if (StartsWith(b, {0x20, 0x01, 0x00, 0x00}, 32)) {
    // Teredo: the client's IPv4 address is stored inverted in the last 32 bits.
    return Embedded("Teredo 2001::/32", ~Load32(&b[12]));
  }
  if (StartsWith(b, {0x20, 0x02}, 16)) return Embedded("6to4 2002::/16", Load32(&b[2]));
  if (StartsWith(b, {0xfc}, 7)) return "fc00::/7, unique local";
  if (StartsWith(b, {0xfe, 0x80}, 10)) return "fe80::/10, link-local";
  if (StartsWith(b, {0xfe, 0xc0}, 10)) return "fec0::/10, site-local";
  if (StartsWith(b, {0xff}, 8)) return "ff00::/8, multicast";
  return std::nullopt;
}

// The reserved range `ip` falls in, or nullopt if it is a public address.
std::optional<std::string> PrivateRange(const std::string& ip) {
  in_addr v4{};
  if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    if (auto r = Ipv4Range(ntohl(v4.s_addr))) return std::string(*r);
    return std::nullopt;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    std::array<std::uint8_t, 16> bytes{};
    std::copy(std::begin(v6.s6_addr), std::end(v6.s6_addr), bytes.begin());
    return Ipv6Range(bytes);
  }
  return "not a numeric IP address";
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

Result<ParsedUrl> Parse(std::string_view url, std::string_view subject) {
  if (url.empty()) return UrlError(subject, "is empty");
  if (url.size() > kMaxUrlLength) {
    return UrlError(subject, "is " + std::to_string(url.size()) + " characters long; at most " +
                                 std::to_string(kMaxUrlLength) + " are allowed");
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return UrlError(
          subject,
          "contains a space, control or non-ASCII character; percent-encode it (e.g. %20)");
    }
  }
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    // Boost.URL's own messages ("mismatch") do not help a person; say what the form must be.
    if (url.find("://") == std::string_view::npos) {
      return UrlError(subject,
                      "is not a valid absolute URL: it must start with https:// or http://");
    }
    return UrlError(
        subject,
        "is not a valid absolute URL: expected scheme://host[:port]/path?query, with IPv6 "
        "addresses in brackets and other characters percent-encoded");
  }
  const boost::urls::url_view& u = *parsed;

  ParsedUrl out;
  out.scheme = Lower(u.scheme());
  if (out.scheme != "http" && out.scheme != "https") {
    return UrlError(subject, "has scheme \"" + out.scheme + "\"; only http and https are allowed");
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return UrlError(subject, "has no host; write it as https://host/path");
  }
  if (u.has_userinfo()) {
    return UrlError(
        subject,
        "contains a user name or password (user:pass@host); credentials in URLs are not "
        "allowed, the receiver should check the webhook signature instead");
  }

  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
      out.host = u.host_ipv4_address().to_string();
      break;
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::name: {
      const std::string_view host = u.encoded_host();
      if (!std::all_of(host.begin(), host.end(), IsHostNameChar)) {
        return UrlError(subject,
                        "host \"" + std::string(host) +
                            "\" must be an ASCII host name (letters, digits, '-', '.') or an IP "
                            "address; write international names in punycode (xn--...)");
      }
      out.host = Lower(host);
      break;
    }
    default:
      return UrlError(subject, "has an IP literal of an unsupported form");
  }

  if (u.has_port() && !u.port().empty()) {
    const std::string_view text = u.port();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
      return UrlError(subject, "has port " + std::string(text) + "; a port is 1 to 65535");
    }
    out.port = static_cast<int>(value);
  } else {
    out.port = out.scheme == "https" ? 443 : 80;
  }

  out.path_and_query = std::string(u.encoded_path());
  if (out.path_and_query.empty()) out.path_and_query = "/";
  if (u.has_query()) {
    out.path_and_query += '?';
    out.path_and_query += std::string_view(u.encoded_query());
  }
  return out;
}

struct AddrinfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};

std::optional<std::string> NumericAddress(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) return text;
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text) != nullptr) return text;
  }
  return std::nullopt;
}

Result<Destination> Resolve(std::string_view url, bool allow_private, std::string_view subject) {
  auto parsed = Parse(url, subject);
  if (!parsed.ok()) return parsed.take_error();
  Destination dest;
  dest.scheme = std::move(parsed->scheme);
  dest.host = std::move(parsed->host);
  dest.port = parsed->port;
  dest.path_and_query = std::move(parsed->path_and_query);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  addrinfo* raw = nullptr;
  const int rc = ::getaddrinfo(dest.host.c_str(), nullptr, &hints, &raw);
  std::unique_ptr<addrinfo, AddrinfoDeleter> list(raw);
  if (rc != 0) {
    const std::string reason = ::gai_strerror(rc);
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAMILY || rc == EAI_SERVICE) {
      return MakeError(
          Code::kInvalidField,
          std::string(subject) + " host \"" + dest.host + "\" does not resolve: " + reason,
          "check the host name in the URL");
    }
    return MakeError(
        Code::kUnavailable,
        "cannot resolve " + std::string(subject) + " host \"" + dest.host + "\" now: " + reason,
        "try again later; the server's DNS resolver did not answer");
  }
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addr == nullptr) continue;
    auto text = NumericAddress(ai->ai_addr);
    if (!text.has_value()) continue;
    if (std::find(dest.addresses.begin(), dest.addresses.end(), *text) == dest.addresses.end()) {
      dest.addresses.push_back(std::move(*text));
    }
  }
  if (dest.addresses.empty()) {
    return MakeError(
        Code::kInvalidField,
        std::string(subject) + " host \"" + dest.host + "\" has no IPv4 or IPv6 address",
        "check the host name in the URL");
  }
  if (!allow_private) {
    for (const std::string& address : dest.addresses) {
      if (auto range = PrivateRange(address)) {
        const std::string via = address == dest.host ? "" : " resolves to " + address + ", which";
        return MakeError(
            Code::kInvalidField,
            std::string(subject) + " host \"" + dest.host + "\"" + via + " is a private address (" +
                *range +
                "); calls to loopback, private and link-local networks are refused unless "
                "the server runs with --allow-private-egress",
            "use a publicly reachable host, or, if this one is on your own network on "
            "purpose, start the server with --allow-private-egress");
      }
    }
  }
  return dest;
}

}  // namespace

Result<ParsedUrl> ParseWebhookUrl(std::string_view url, std::string_view subject) {
  try {
    return Parse(url, subject);
  } catch (const std::exception& e) {  // bad_alloc: keep exceptions inside the module
    return MakeError(Code::kServerError, "parsing " + std::string(subject) + ": " + e.what());
  }
}

bool IsPrivateAddress(const std::string& ip) {
  try {
    return PrivateRange(ip).has_value();
  } catch (const std::exception&) {
    return true;  // fail closed
  }
}

Result<Destination> ResolveDestination(std::string_view url, bool allow_private,
                                       std::string_view subject) {
  try {
    return Resolve(url, allow_private, subject);
  } catch (const std::exception& e) {
    return MakeError(Code::kServerError, "resolving " + std::string(subject) + ": " + e.what());
  }
}

}  // namespace agentgate::webhooks
