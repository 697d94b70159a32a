// `agentgate serve`: the composition root. Wires configuration, clock, random source, store,
// mailer, service and server together, and runs until SIGTERM or SIGINT.
#pragma once

#include <string>
#include <vector>

namespace agentgate::app {

int RunServe(const std::vector<std::string>& args);

}  // namespace agentgate::app
