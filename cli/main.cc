// shakenctl: key ceremony, STI PKI and PASSporT tooling for shakend. See cli/README.md.
#include "cli/commands.h"

int main(int argc, char** argv) { return shaken::cli::RunShakenctl(argc, argv); }
