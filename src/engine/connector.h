// Connectors: how the integration engine authenticates to an external app and calls its API.
//
// A connector is data, not code: a JSON document (connectors/<key>.json for the ones agentgate
// ships, or a workspace's own sent to POST /connectors) naming the API's base URL, the auth
// scheme (OAuth 2.0 authorization code, OAuth 2.0 client credentials, API key, HTTP Basic), the
// fields a person fills in when connecting, and a cheap test call. docs/connectors.md describes
// the format field by field; ParseConnector() is its one validator and ConnectorToJson() its one
// writer, so the two cannot drift apart.
//
// Templates. Strings such as "Bearer {accessToken}" or "https://{subdomain}.zendesk.com/api/v2"
// hold `{name}` placeholders. There is no escaping: `{` and `}` only ever delimit a placeholder,
// so a template cannot contain a literal brace. Names are [A-Za-z_][A-Za-z0-9_]*.
//
// Injection. InjectCredentials() turns stored credentials into the headers and query parameters
// of one API call; ResolveUrl() fills connection fields into a URL template and refuses values
// that would change which host is called (host injection). Neither does I/O.
//
// Thread safety: everything here is a pure function or an immutable value; a Catalog is
// read-only after construction and may be shared between threads.
// Errors: every validation failure is invalid_field whose message names the offending field by
// its JSON path ("Field 'auth.tokenUrl' must be ..."); absent credentials or connection fields
// are missing_fields naming them. Nothing here throws.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace agentgate::engine {

// A value a person supplies when connecting: a connection field (fills URL placeholders) or a
// credential field of an api_key / basic connector.
struct ConnectorField {
  std::string key;          // [A-Za-z][A-Za-z0-9_]{0,39}, the placeholder name
  std::string label;        // shown in forms, 1..100 characters
  std::string description;  // optional help text
  std::string pattern;      // optional ECMAScript regex the whole value must match; "" = any
  bool secret = false;      // never echoed back once stored
  bool required = true;
};

enum class AuthType { kOAuth2, kOAuth2ClientCredentials, kApiKey, kBasic };

// How the OAuth client id and secret reach the token endpoint.
enum class ClientAuth {
  kBody,   // client_id / client_secret form fields (RFC 6749 2.3.1, second option)
  kBasic,  // Authorization: Basic base64(client_id:client_secret)
};

// Where an api_key credential goes.
enum class KeyLocation { kHeader, kQuery };

struct ConnectorAuth {
  AuthType type = AuthType::kApiKey;

  // oauth2 and oauth2_client_credentials. authorize_url, pkce, authorize_params and refresh are
  // oauth2 only.
  std::string authorize_url;
  std::string token_url;
  std::vector<std::string> scopes;
  std::string scope_separator = " ";
  bool pkce = false;
  ClientAuth client_auth = ClientAuth::kBody;
  std::map<std::string, std::string> authorize_params;  // extra query parameters, e.g. prompt
  bool refresh = true;  // whether the provider issues refresh tokens

  // The header the credential travels in (oauth types, and api_key in a header), and its value
  // template: "Bearer {accessToken}" for the oauth types, "Bearer {apiKey}" for api_key.
  std::string header = "Authorization";
  std::string value_template;  // JSON "template"

  // api_key only.
  KeyLocation in = KeyLocation::kHeader;
  std::string name;  // the query parameter when in == kQuery
  // Extra query parameters sent on every call, name -> template over `fields` (a format
  // extension for APIs that take two credentials in the query, e.g. Trello's key and token).
  std::map<std::string, std::string> query;

  // api_key and basic: the credentials a person enters.
  std::vector<ConnectorField> fields;

  // basic only.
  std::string username_template = "{username}";
  std::string password_template = "{password}";
};

// A cheap call that proves credentials work: method and a path (with optional query) relative to
// the base URL.
struct ConnectorTest {
  std::string method;  // GET, HEAD or POST
  std::string path;    // starts with '/'
};

struct Connector {
  std::string id;    // "cnr_" + key for shipped connectors; set by the store for custom ones
  bool custom = false;  // defined by a workspace rather than shipped
  std::string key;   // [a-z0-9][a-z0-9-]{0,62}
  std::string name;
  std::string description;
  std::vector<std::string> categories;
  std::string docs_url;  // "" when absent
  std::string logo_uri;  // "" when absent
  std::string base_url;  // a URL template, no trailing '/'
  std::map<std::string, std::string> headers;  // static headers sent on every call
  std::vector<ConnectorField> connection_fields;
  ConnectorAuth auth;
  std::optional<ConnectorTest> test;
};

// "oauth2", "oauth2_client_credentials", "api_key", "basic".
std::string_view AuthTypeName(AuthType type);

// Validates a connector document (the format of docs/connectors.md) and fills in defaults.
// Unknown fields are refused, at every level; so are `id` and `custom`, which the server sets.
// null counts as absent. The result has an empty id and custom == false.
Result<Connector> ParseConnector(const json::value& spec);

// The normalized public view: every field, defaults filled in, camelCase, plus `id` and
// `custom`. Without those two it parses back (ParseConnector) to an equal connector.
json::object ConnectorToJson(const Connector& connector);
// Connection or credential fields as ConnectorToJson shows them: {key, label, description,
// pattern, secret, required}.
json::array FieldsToJson(const std::vector<ConnectorField>& fields);

// The placeholder names of `tmpl`, in order of appearance (with repeats). invalid_field if a
// brace is unmatched or a name is malformed.
Result<std::vector<std::string>> TemplatePlaceholders(std::string_view tmpl);

// Replaces every `{name}` with vars[name]. A name not in `vars` is invalid_field.
Result<std::string> RenderTemplate(std::string_view tmpl,
                                   const std::map<std::string, std::string>& vars);

// Checks values a person entered against the fields they answer: each required field present and
// non-empty, at most 4096 bytes, without control characters, and matching its pattern. Keys not
// among `fields` are ignored. missing_fields / invalid_field naming the field.
Status CheckFieldValues(const std::vector<ConnectorField>& fields,
                        const std::map<std::string, std::string>& values);

// What one API call carries for its credentials, in addition to its own headers and query.
// Values are raw: the HTTP client percent-encodes query values.
struct Injection {
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> query;
};

// The connector's static headers followed by the credential: for the oauth types
// credentials["accessToken"] rendered into auth.header; for api_key the `fields` rendered into
// the header or query parameter (plus auth.query); for basic "Authorization: Basic
// base64(user:pass)". Other keys in `credentials` (say a refresh token) are ignored. An absent
// required credential is missing_fields; a value that would break the request (a line break in a
// header, ':' in a Basic user name) is invalid_field.
Result<Injection> InjectCredentials(const Connector& connector,
                                    const std::map<std::string, std::string>& credentials);

// Renders a URL template (base URL, authorize URL, token URL) with connection-field values and
// validates the result as ParseConnector validates URLs. To keep a value from choosing the host,
// a value placed in the authority may hold only [A-Za-z0-9.-], and one placed in the path or
// query only unreserved characters [A-Za-z0-9._~-] and must not be "." or "..". An absent value
// is missing_fields; a bad one invalid_field naming the connection field.
Result<std::string> ResolveUrl(const std::string& tmpl,
                               const std::map<std::string, std::string>& connection_fields);

// The connectors agentgate ships, parsed from the connectors/*.json files embedded at build time.
// Immutable once built; share it freely between threads.
class Catalog {
 public:
  // Parses the embedded files. Each file's key must equal its file name (github.json -> github)
  // and keys are unique; a shipped file that fails is server_error naming the file (the build
  // shipped a broken connector; the unit tests catch this first).
  static Result<Catalog> Builtin();

  // A catalog of the given connectors (sorted here). conflict if two share a key.
  static Result<Catalog> FromConnectors(std::vector<Connector> connectors);

  // The connector with this key, or nullptr.
  const Connector* Find(std::string_view key) const;
  // All connectors, sorted by key.
  const std::vector<Connector>& all() const { return connectors_; }
  // Connectors whose key, name, description or a category contains `text`, ignoring ASCII case;
  // all of them for empty text. In key order.
  std::vector<const Connector*> Search(std::string_view text) const;

 private:
  explicit Catalog(std::vector<Connector> connectors) : connectors_(std::move(connectors)) {}

  std::vector<Connector> connectors_;
};

}  // namespace agentgate::engine
