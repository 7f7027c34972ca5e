#include "cli/commands.h"
namespace shaken::cli {
void AddPkiCommands(CLI::App& root, Registry& registry) {}
}
