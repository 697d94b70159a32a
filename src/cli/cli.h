// The agentgate command-line client: every command except `serve`.
//
// Contract: Run parses argv (argv[0] is the program name), talks HTTP to the server named by
// --url / AGENTGATE_URL, writes results to stdout and diagnostics to stderr, and returns the
// process exit code: 0 success; 1 failure (an API error, an unreachable server, or a permission
// check that was denied); 2 a usage error (unknown command or flag, missing or malformed
// argument). No exception escapes. It initialises libcurl itself and must be called from the
// main thread, once at a time. It never prints a credential it was given; the only secrets it
// prints are those the server shows once: the agent secret of `agent register`, the session of
// `auth verify`, the token of `token create`, and the signing secret of `webhook create` and
// `webhook rotate-secret`; and those the integration engine's commands exist to give out: the
// workspace secret of `credentials` (and `credentials rotate`) and the tenant and manager tokens
// `token` mints. OAuth client secrets and connection credentials are never printed.
#pragma once

namespace agentgate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int Run(int argc, char** argv);

}  // namespace agentgate::cli
