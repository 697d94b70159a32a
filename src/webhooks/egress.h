// The egress guard: which webhook URLs the server may call, and at which addresses.
//
// Webhook URLs are supplied by users, so without a guard they turn the server into a proxy into
// its own network (server-side request forgery): http://127.0.0.1:5432/, cloud metadata at
// http://169.254.169.254/, routers at 192.168.0.1, and names that resolve to any of those. The
// guard therefore checks every address a host name resolves to, not the URL's text, and the
// sender then connects only to those checked addresses (see sender.h), so a DNS answer that
// changes between the check and the connection (DNS rebinding) cannot redirect the request.
//
// Typical use: ResolveDestination() when a webhook URL is registered (to reject bad ones early)
// and again before every delivery attempt (DNS changes), then Deliver() to the Destination.
//
// Thread safety: all functions are safe from any thread; they keep no state. ResolveDestination
// blocks in the system resolver (getaddrinfo), whose time is bounded by the resolver's own
// configuration (resolv.conf "timeout" and "attempts", by default 5 s per try): call it from a
// delivery worker, or accept that latency in a registration request.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace agentgate::webhooks {

inline constexpr std::size_t kMaxUrlLength = 2048;

// A syntactically acceptable webhook URL, split into what the sender needs.
struct ParsedUrl {
  std::string scheme;          // "http" or "https", lower case
  std::string host;            // lower-case DNS name, or an IP literal (IPv6 without brackets)
  int port = 0;                // the URL's port, or 80 / 443 by scheme
  std::string path_and_query;  // as written (percent-encoded), "/" if empty; the fragment dropped
};

// A URL whose host has been resolved and checked by the egress guard.
struct Destination {
  std::string scheme;
  std::string host;
  int port = 0;
  std::string path_and_query;
  // Numeric addresses ("203.0.113.7", "2001:db8::1") in resolver order, without duplicates. The
  // sender connects to these and nothing else.
  std::vector<std::string> addresses;
};

// Accepts absolute http:// and https:// URLs with a host, no userinfo ("user:pass@"), at most
// kMaxUrlLength characters. Host names must be ASCII (use punycode for international names).
// Errors: code invalid_field, with a message saying what is wrong with the URL.
// `subject` names the URL in error messages (the guard also serves OAuth token endpoints and
// /act, which pass their own).
Result<ParsedUrl> ParseWebhookUrl(std::string_view url, std::string_view subject = "webhook url");

// True when a webhook must not be sent to `ip` (numeric IPv4 or IPv6 text) unless private egress
// is allowed: unspecified, loopback, RFC 1918 private, carrier-grade NAT (100.64/10), link-local
// (169.254/16, fe80::/10), 0.0.0.0/8, 192.0.0.0/24, benchmarking (198.18/15, 2001:2::/48),
// multicast, reserved and broadcast (240/4), unique-local (fc00::/7), site-local (fec0::/10),
// discard-only (100::/64), and IPv6 forms that carry such an IPv4 address (IPv4-mapped
// ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo client).
// Documentation ranges (192.0.2/24, 2001:db8::/32, ...) count as public.
// Text that is not a numeric address counts as private, so that the guard fails closed.
bool IsPrivateAddress(const std::string& ip);

// ParseWebhookUrl, then resolves the host (IP literals included) with getaddrinfo.
// Errors:
//   invalid_field: the URL is not acceptable (as above); the host name does not exist or has no
//     address; or, when !allow_private, any resolved address is private (the message names the
//     address and its range, and mentions the --allow-private-egress server flag).
//   unavailable: the resolver failed temporarily (no answer from the DNS server); worth retrying.
Result<Destination> ResolveDestination(std::string_view url, bool allow_private,
                                       std::string_view subject = "webhook url");

}  // namespace agentgate::webhooks
