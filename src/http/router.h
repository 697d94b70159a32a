// Router: maps (method, path) to a handler. Patterns are literal segments and ":name" segments.
//
// Thread safety: build it fully before serving; afterwards Match() is read-only and safe from
// any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace agentgate::http {

using Handler = std::function<Response(Request&)>;

// Where a handler runs: kInline on the network thread (must not block: memory-only work), or
// kBlocking on the worker pool (may wait for the store).
enum class Dispatch { kInline, kBlocking };

struct Route {
  Method method;
  std::string pattern;
  Dispatch dispatch;
  Handler handler;
};

struct Match {
  const Route* route = nullptr;  // null: no route for this method
  bool path_known = false;       // some route has this path (so the answer is 405, not 404)
  std::string allow;             // methods allowed on the path, for the Allow header
};

class Router {
 public:
  void Add(Method method, std::string pattern, Dispatch dispatch, Handler handler);
  // Fills request.params on a match.
  Match Find(Request& request) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace agentgate::http
