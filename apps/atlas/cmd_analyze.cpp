// `atlas analyze`: measures over a model or its attention. Minimal parent for `analyze bias` until
// the analyze module's own cmd_analyze.cpp lands (it adds its commands and calls add_bias_command).
#include "commands.hpp"

namespace atlas::cli {

Command add_analyze(CLI::App& app) {
  auto* sub = app.add_subcommand("analyze", "Measure a model: bias audits (analyze bias)");
  sub->require_subcommand(1);
  auto children = std::make_shared<std::vector<Command>>();
  children->push_back(add_bias_command(*sub));
  return {sub, [=] {
            for (auto& c : *children)
              if (c.app->parsed()) return c.run();
            return 2;
          }};
}

}  // namespace atlas::cli
