#include "api/docs.h"

#include "core/error.h"

namespace agentgate::embedded {
extern const std::string_view kOpenApiJson;
extern const std::string_view kLlmsTxt;
extern const std::string_view kApiMarkdown;
}  // namespace agentgate::embedded

namespace agentgate::api {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr std::string_view kStyle =
    "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 "
    "1rem;color:#1d1d1f}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid "
    "#ddd;padding:.4rem;text-align:left;vertical-align:top}code,pre{font:13px/1.4 "
    "ui-monospace,monospace}pre{white-space:pre-wrap;background:#f6f6f8;padding:1rem;"
    "border-radius:6px}:target{background:#fff6d5}</style>";

std::string Page(std::string_view title, std::string_view body) {
  std::string html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
  html += Escape(title);
  html += "</title><meta name=\"viewport\" content=\"width=device-width\">";
  html += kStyle;
  html += "</head><body>";
  html += body;
  html += "</body></html>";
  return html;
}

http::Response Html(std::string body) {
  http::Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace

std::string ErrorCatalogueHtml() {
  std::string body =
      "<h1>agentgate error codes</h1><p>Every error response has the shape <code>{\"error\", "
      "\"message\", \"docs\", \"remediation\", \"request_id\"}</code>. <code>request_id</code> "
      "equals the <code>X-Request-Id</code> response header; quote it when asking for help.</p>"
      "<table><thead><tr><th>code</th><th>HTTP</th><th>meaning</th><th>what to do</th></tr>"
      "</thead><tbody>";
  for (const CodeInfo& info : ErrorCatalogue()) {
    body += "<tr id=\"";
    body += info.name;
    body += "\"><td><code>";
    body += info.name;
    body += "</code></td><td>";
    body += std::to_string(info.http_status);
    body += "</td><td>";
    body += Escape(info.meaning);
    body += "</td><td>";
    body += Escape(info.remediation);
    body += "</td></tr>";
  }
  body += "</tbody></table><p><a href=\"/docs\">API reference</a></p>";
  return Page("agentgate error codes", body);
}

void RegisterDocRoutes(http::Router& router, std::function<std::string()> base_url) {
  using http::Dispatch;
  using http::Method;
  router.Add(Method::kGet, "/docs", Dispatch::kInline, [](http::Request&) {
    std::string body =
        "<p><a href=\"/docs/errors\">Error codes</a> · <a href=\"/openapi.json\">OpenAPI "
        "spec</a> · <a href=\"/llms.txt\">llms.txt</a></p><pre>";
    body += Escape(embedded::kApiMarkdown);
    body += "</pre>";
    return Html(Page("agentgate API reference", body));
  });
  router.Add(Method::kGet, "/docs/errors", Dispatch::kInline,
             [](http::Request&) { return Html(ErrorCatalogueHtml()); });
  router.Add(Method::kGet, "/openapi.json", Dispatch::kInline, [](http::Request&) {
    http::Response r;
    r.body = std::string(embedded::kOpenApiJson);
    return r;
  });
  router.Add(Method::kGet, "/llms.txt", Dispatch::kInline, [](http::Request&) {
    http::Response r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::string(embedded::kLlmsTxt);
    return r;
  });
  router.Add(Method::kGet, "/", Dispatch::kInline, [base_url](http::Request&) {
    return Html(Page("agentgate",
                     "<h1>agentgate</h1><p>Identity and permissions for AI agents.</p><ul>"
                     "<li><a href=\"/docs\">API reference</a></li>"
                     "<li><a href=\"/dashboard\">Dashboard</a></li>"
                     "<li><a href=\"/openapi.json\">OpenAPI spec</a></li>"
                     "<li><a href=\"/llms.txt\">llms.txt</a></li>"
                     "<li><a href=\"/health\">Health</a></li></ul>"));
  });
}

}  // namespace agentgate::api
