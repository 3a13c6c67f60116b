#include "commands.hpp"

namespace atlas::cli {

// Only implemented subcommands are registered, so `atlas --help` lists what works.
void register_commands(CLI::App& app, CommandList& out) {
  out.push_back(add_extract(app));
  out.push_back(add_tokenize(app));
  out.push_back(add_visualize(app));
}

}  // namespace atlas::cli
