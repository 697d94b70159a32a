// The dashboard: one static page with its script and style sheet, embedded in the binary
// (web/dashboard/, see AGENTGATE_EMBED_* in CMakeLists.txt). The page holds no data: its script
// reads everything from the API with the session cookie, so the same bytes serve every person.
// Its writes are cookie-authenticated POSTs, DELETEs and PATCHes that the server's Origin /
// Sec-Fetch-Site check (CSRF) guards like any other.

#include <string>
#include <string_view>

#include "api/service.h"

namespace agentgate::embedded {
extern const std::string_view kDashboardHtml;
extern const std::string_view kDashboardJs;
extern const std::string_view kDashboardCss;
}  // namespace agentgate::embedded

namespace agentgate::api {
namespace {

// Scripts, styles, data and images only from agentgate itself: no inline script or style (the
// page builds its DOM with textContent, so even an injected string could not run), no framing
// (clickjacking), no plugins, no <base> rewriting, forms post only to agentgate.
constexpr std::string_view kDashboardCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

http::Response Static(std::string_view body, std::string content_type,
                      std::string_view cache_control) {
  http::Response r;
  r.body = std::string(body);
  r.content_type = std::move(content_type);
  r.Header("Content-Security-Policy", std::string(kDashboardCsp));
  r.Header("X-Content-Type-Options", "nosniff");
  r.Header("X-Frame-Options", "DENY");
  r.Header("Referrer-Policy", "no-referrer");
  r.Header("Cache-Control", std::string(cache_control));
  return r;
}

}  // namespace

http::Response Service::Dashboard(http::Request& req, Call& call) {
  return Static(embedded::kDashboardHtml, "text/html; charset=utf-8", "no-store");
}

// no-cache, not no-store: the browser may keep them but revalidates, so an upgraded server's
// script is picked up on the next load.
http::Response Service::DashboardScript(http::Request& req, Call& call) {
  return Static(embedded::kDashboardJs, "text/javascript; charset=utf-8", "no-cache");
}

http::Response Service::DashboardStyle(http::Request& req, Call& call) {
  return Static(embedded::kDashboardCss, "text/css; charset=utf-8", "no-cache");
}

}  // namespace agentgate::api
