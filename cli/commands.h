// commands.h: the shakenctl command tree. Each Add*Commands function declares its subcommands on
// `root` with CLI11 and registers, for each leaf, the function that runs it once parsing is done
// (parsing never runs a command, so a usage error never leaves half-done work).
#ifndef SHAKEN_CLI_COMMANDS_H_
#define SHAKEN_CLI_COMMANDS_H_

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cli/common.h"

namespace shaken::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Registry = std::vector<Command>;

void AddKeyCommands(CLI::App& root, Registry& registry);
void AddTokenCommands(CLI::App& root, Registry& registry);
void AddCaCommands(CLI::App& root, Registry& registry);
void AddCsrCommands(CLI::App& root, Registry& registry);
void AddCertCommands(CLI::App& root, Registry& registry);
void AddCaDirCommands(CLI::App& root, Registry& registry);
void AddPassportCommands(CLI::App& root, Registry& registry);

// AddTokenFlags declares --module and --pin-source on `app`.
void AddTokenFlags(CLI::App* app, TokenOptions* options);

// Examples formats an "Examples:" help footer.
std::string Examples(std::initializer_list<const char*> lines);

// RunShakenctl parses `argv` and runs the chosen command; returns the process exit code.
int RunShakenctl(int argc, char** argv);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_COMMANDS_H_
