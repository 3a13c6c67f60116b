// Placeholder until extract lands.
#include "commands.hpp"
namespace atlas::cli {
Command add_extract(CLI::App& app) {
  auto* sub = app.add_subcommand("extract", "(not yet implemented)");
  sub->group("");
  return {sub, [] { return 1; }};
}
}  // namespace atlas::cli
