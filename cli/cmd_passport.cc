#include "cli/commands.h"
namespace shaken::cli {
void AddPassportCommands(CLI::App& root, Registry& registry) {}
}
