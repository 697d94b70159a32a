// Static documentation served by agentgate: /docs, /docs/errors, /openapi.json, /llms.txt, /.
#pragma once

#include <functional>
#include <string>

#include "http/router.h"

namespace agentgate::api {

// base_url is read per request (it is known only once the server has bound its port).
void RegisterDocRoutes(http::Router& router, std::function<std::string()> base_url);

// The /docs/errors page; exposed for tests.
std::string ErrorCatalogueHtml();

}  // namespace agentgate::api
