// Placeholder until the tokenize subcommand lands.
#include "commands.hpp"
namespace atlas::cli {
Command add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "(not yet implemented)");
  sub->group("");  // hidden
  return {sub, [] { return 1; }};
}
}  // namespace atlas::cli
