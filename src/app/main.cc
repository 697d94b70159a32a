// agentgate: one binary for the server (`agentgate serve`) and its command-line client.
#include <string>
#include <vector>

#include "app/serve.h"
#include "cli/cli.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "serve") {
    return agentgate::app::RunServe(std::vector<std::string>(argv + 2, argv + argc));
  }
  return agentgate::cli::Run(argc, argv);
}
