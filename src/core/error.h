// The one error type that crosses module boundaries, and the catalogue of error codes.
//
// Every failure a client can see has a stable lower_snake code from the catalogue below; the
// catalogue also gives the HTTP status, what the code means and what to do about it, and is the
// source of the /docs/errors page. Thread safety: everything here is immutable or a value type.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace agentgate {

enum class Code : std::uint8_t {
  // The AgentPass reference's table, in its order.
  kUnauthorized,
  kForbidden,
  kNotFound,
  kMissingFields,
  kMissingParams,
  kInvalidEmail,
  kInvalidName,
  kAgentNotFound,
  kPermissionNotFound,
  kRateLimited,
  kServerError,
  // agentgate's additions.
  kInvalidJson,
  kInvalidField,
  kInvalidExpiresIn,
  kInvalidToken,
  kMethodNotAllowed,
  kPayloadTooLarge,
  kHeadersTooLarge,
  kBadRequest,
  kConflict,
  kUnavailable,
  kIdempotencyKeyReused,
  kIdempotencyConflict,
  kTokenMissingAbility,
  kTokenExpired,
  // The integration engine.
  kIntegrationNotFound,
  kConnectorNotFound,
  kConnectionNotFound,
  kConnectionNotReady,
  kConnectionDisconnected,
  kUpstreamError,
  kEgressDenied,
  kActionNotFound,
  kActionRunNotFound,
  kInvalidInput,
  kPermissionDenied,
  kUpstreamTimeout,
  // Permission requests.
  kPermissionRequestNotFound,
  kPermissionRequestNotPending,
};

struct CodeInfo {
  Code code;
  std::string_view name;         // stable wire code, e.g. "agent_not_found"
  int http_status;
  std::string_view meaning;      // default human message
  std::string_view remediation;  // what the caller should do
};

// All codes, in declaration order.
std::span<const CodeInfo> ErrorCatalogue();
const CodeInfo& InfoFor(Code code);

struct Error {
  Code code = Code::kServerError;
  std::string message;      // specific human message; empty means the catalogue's meaning
  std::string remediation;  // specific remediation; empty means the catalogue's

  std::string_view Name() const { return InfoFor(code).name; }
  int HttpStatus() const { return InfoFor(code).http_status; }
  std::string_view Message() const {
    return message.empty() ? InfoFor(code).meaning : std::string_view(message);
  }
  std::string_view Remediation() const {
    return remediation.empty() ? InfoFor(code).remediation : std::string_view(remediation);
  }
};

inline Error MakeError(Code code, std::string message = {}, std::string remediation = {}) {
  return Error{code, std::move(message), std::move(remediation)};
}

}  // namespace agentgate
