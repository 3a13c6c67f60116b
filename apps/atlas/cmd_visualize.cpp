// Placeholder until the visualize subcommand lands.
#include "commands.hpp"
namespace atlas::cli {
Command add_visualize(CLI::App& app) {
  auto* sub = app.add_subcommand("visualize", "(not yet implemented)");
  sub->group("");  // hidden
  return {sub, [] { return 1; }};
}
}  // namespace atlas::cli
