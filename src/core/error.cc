#include "core/error.h"

#include <array>

namespace agentgate {
namespace {

constexpr std::array kCatalogue{
    CodeInfo{Code::kUnauthorized, "unauthorized", 401, "Missing or invalid credentials",
             "Send the agent secret as 'Authorization: Bearer sk_ap_...', or sign in through "
             "POST /auth/magic-link to get a session."},
    CodeInfo{Code::kForbidden, "forbidden", 403, "Authenticated but not allowed for this resource",
             "Use the credentials of the agent or person that owns this resource."},
    CodeInfo{Code::kNotFound, "not_found", 404, "Resource does not exist",
             "Check the path against /openapi.json."},
    CodeInfo{Code::kMissingFields, "missing_fields", 400,
             "Required fields missing from request body",
             "Add the fields named in the message to the JSON body."},
    CodeInfo{Code::kMissingParams, "missing_params", 400,
             "Required query parameters missing",
             "Add the query parameters named in the message."},
    CodeInfo{Code::kInvalidEmail, "invalid_email", 400, "Email address is not valid format",
             "Send an address of the form name@example.com."},
    CodeInfo{Code::kInvalidName, "invalid_name", 400, "Agent name exceeds 100 characters",
             "Send a non-empty name of at most 100 characters."},
    CodeInfo{Code::kAgentNotFound, "agent_not_found", 404, "No active agent found with given ID",
             "Register the agent first with POST /agent/register, and check the agent_id."},
    CodeInfo{Code::kPermissionNotFound, "permission_not_found", 404,
             "No active permission matching criteria",
             "List active grants with GET /permissions and check agent_id, action or "
             "permission_id."},
    CodeInfo{Code::kRateLimited, "rate_limited", 429, "Too many requests",
             "Wait for the number of seconds in the Retry-After header, then retry."},
    CodeInfo{Code::kServerError, "server_error", 500, "Internal server error",
             "Retry with back-off; if it persists, report the request_id to the operator."},
    CodeInfo{Code::kInvalidJson, "invalid_json", 400, "Request body is not valid JSON",
             "Send a JSON object as the body with 'Content-Type: application/json'."},
    CodeInfo{Code::kInvalidField, "invalid_field", 400,
             "A field has the wrong type or an invalid value",
             "Fix the field named in the message; see /openapi.json for its type."},
    CodeInfo{Code::kInvalidExpiresIn, "invalid_expires_in", 400,
             "expires_in must be a positive whole number followed by s, m, h or d",
             "Send expires_in like \"60s\", \"30m\", \"24h\" or \"7d\" (at most 3650d), or "
             "omit it for a grant that does not expire."},
    CodeInfo{Code::kInvalidToken, "invalid_token", 401,
             "The sign-in link is invalid, expired or already used",
             "Request a new link with POST /auth/magic-link; links last 15 minutes and work "
             "once."},
    CodeInfo{Code::kMethodNotAllowed, "method_not_allowed", 405,
             "Method not allowed for this path",
             "Use one of the methods listed in the Allow header."},
    CodeInfo{Code::kPayloadTooLarge, "payload_too_large", 413, "Request body is too large",
             "Send a smaller body; the server's limit is set with --max-body."},
    CodeInfo{Code::kHeadersTooLarge, "headers_too_large", 431,
             "Request headers are too large", "Send fewer or shorter headers."},
    CodeInfo{Code::kBadRequest, "bad_request", 400, "Malformed HTTP request",
             "Send a well-formed HTTP/1.1 request."},
    CodeInfo{Code::kConflict, "conflict", 409, "The request conflicts with the current state",
             "Fetch the resource again and retry with its current state."},
    CodeInfo{Code::kUnavailable, "unavailable", 503, "The server is shutting down",
             "Retry shortly, against another node if there is one."},
    CodeInfo{Code::kIdempotencyKeyReused, "idempotency_key_reused", 422,
             "This Idempotency-Key was already used with a different request",
             "Use a new Idempotency-Key for a different request; reuse a key only to retry the "
             "very same request."},
    CodeInfo{Code::kIdempotencyConflict, "idempotency_conflict", 409,
             "A request with this Idempotency-Key is still being processed",
             "Wait for the first request to finish (see Retry-After), then retry with the same "
             "key to get its response."},
    CodeInfo{Code::kTokenMissingAbility, "token_missing_ability", 403,
             "The access token lacks the ability this endpoint needs",
             "Mint a new token that includes the required ability (POST /v1/tokens or "
             "'agentgate token create --ability ...')."},
    CodeInfo{Code::kTokenExpired, "token_expired", 401, "The signed token (JWT) has expired",
             "Sign a new token whose exp claim is in the future (a token is still accepted up to "
             "30 seconds after its exp, for clock skew)."},
    CodeInfo{Code::kIntegrationNotFound, "integration_not_found", 404,
             "No integration with this id or key in the workspace",
             "List the integrations (GET /integrations, 'agentgate integration list'), or "
             "connect by connectorKey, which makes the integration on demand."},
    CodeInfo{Code::kConnectorNotFound, "connector_not_found", 404,
             "No connector with this key or id in the catalogue or the workspace",
             "List the connectors (GET /connectors) or add your own with POST /connectors."},
    CodeInfo{Code::kConnectionNotFound, "connection_not_found", 404,
             "No connection with this id or key for this tenant",
             "List the tenant's connections (GET /connections, 'agentgate connection list'); "
             "archived ones need ?includeArchived=1."},
    CodeInfo{Code::kConnectionNotReady, "connection_not_ready", 409,
             "The connection is not ready: its owner has not finished connecting it",
             "Open clientAction.uiUrl from POST /connections (or connect again with "
             "{connectionId}) and finish the flow; then retry."},
    CodeInfo{Code::kConnectionDisconnected, "connection_disconnected", 409,
             "The connection lost its authorization (its refresh failed or it was revoked)",
             "Reconnect it with the same connectionId: ui.connect({connectionId}) in the "
             "browser, or 'agentgate connect --connectionId ID'; it comes back READY."},
    CodeInfo{Code::kUpstreamError, "upstream_error", 502,
             "The external app failed or could not be reached",
             "See the upstream status and body in this error; retry later if it is a 5xx or a "
             "network failure."},
    CodeInfo{Code::kEgressDenied, "egress_denied", 403,
             "The request would leave the connector's API: another host, or a private address",
             "Call a path under the connector's base URL; private and loopback addresses need "
             "the server flag --allow-private-egress."},
    CodeInfo{Code::kActionNotFound, "action_not_found", 404,
             "No action with this id or key in the workspace (for this connection)",
             "List the actions (GET /actions, 'agentgate action list'); archived ones need "
             "?includeArchived=1 and POST /actions/:id/restore."},
    CodeInfo{Code::kActionRunNotFound, "action_run_not_found", 404,
             "No action run with this id for this caller (or it is past its retention)",
             "Use the actionRunId from the /act answer; runs are kept 30 days by default "
             "(--action-run-retention)."},
    CodeInfo{Code::kInvalidInput, "invalid_input", 400,
             "The input does not match the action's inputSchema (the message names the field)",
             "Fix the field the message names; 'agentgate action get ID' shows the inputSchema."},
    CodeInfo{Code::kPermissionDenied, "permission_denied", 403,
             "The agent holds no active grant for this action, or the input breaks the grant's "
             "scope (constraint names the rule)",
             "Ask the person for a grant (or a wider scope), or change the input to fit the "
             "scope the constraint names."},
    CodeInfo{Code::kUpstreamTimeout, "upstream_timeout", 504,
             "The external app did not answer within the deadline",
             "Retry later; a write without an Idempotency-Key may or may not have been carried "
             "out, so check the app before repeating it."},
    CodeInfo{Code::kPermissionRequestNotFound, "permission_request_not_found", 404,
             "No permission request with this id that the caller may see",
             "List the requests you may see with GET /v1/permission-requests ('agentgate "
             "request list'); only the agent that asked, the person asked and admins see one."},
    CodeInfo{Code::kPermissionRequestNotPending, "permission_request_not_pending", 409,
             "The permission request was already decided or has expired",
             "Read its status with GET /v1/permission-requests/:request_id; an agent whose "
             "request expired or was declined may ask again with POST /v1/permission-requests."},
};

static_assert(kCatalogue.size() == static_cast<std::size_t>(Code::kPermissionRequestNotPending) + 1,
              "every Code needs a catalogue entry");

}  // namespace

std::span<const CodeInfo> ErrorCatalogue() { return kCatalogue; }

const CodeInfo& InfoFor(Code code) { return kCatalogue[static_cast<std::size_t>(code)]; }

}  // namespace agentgate
