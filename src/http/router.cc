#include "http/router.h"

namespace agentgate::http {
namespace {

// Matches path against pattern segment by segment; collects ":name" captures.
bool MatchPattern(std::string_view pattern, std::string_view path,
                  std::vector<std::pair<std::string_view, std::string>>* params) {
  while (true) {
    if (pattern.empty() || path.empty()) return pattern.empty() && path.empty();
    if (pattern.front() != '/' || path.front() != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    auto pe = pattern.find('/');
    auto se = path.find('/');
    std::string_view pseg = pattern.substr(0, pe);
    std::string_view sseg = path.substr(0, se);
    if (!pseg.empty() && pseg.front() == ':') {
      if (sseg.empty()) return false;
      if (params) params->emplace_back(pseg.substr(1), std::string(sseg));
    } else if (pseg != sseg) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view{} : pattern.substr(pe);
    path = se == std::string_view::npos ? std::string_view{} : path.substr(se);
  }
}

}  // namespace

void Router::Add(Method method, std::string pattern, Dispatch dispatch, Handler handler) {
  routes_.push_back(Route{method, std::move(pattern), dispatch, std::move(handler)});
}

Match Router::Find(Request& request) const {
  Match m;
  Method wanted = request.method == Method::kHead ? Method::kGet : request.method;
  for (const Route& route : routes_) {
    if (route.method != wanted) continue;
    request.params.clear();
    if (MatchPattern(route.pattern, request.path, &request.params)) {
      m.route = &route;
      m.path_known = true;
      return m;
    }
  }
  request.params.clear();
  // No route for this method: say which methods the path has, if any (405 rather than 404).
  for (const Route& route : routes_) {
    if (!MatchPattern(route.pattern, request.path, nullptr)) continue;
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += MethodName(route.method);
    if (route.method == Method::kGet) m.allow += ", HEAD";
    m.path_known = true;
  }
  if (m.path_known) m.allow += ", OPTIONS";
  return m;
}

}  // namespace agentgate::http
