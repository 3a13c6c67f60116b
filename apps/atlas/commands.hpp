#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace atlas::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;   // returns the exit code
};
using CommandList = std::vector<Command>;

void register_commands(CLI::App& app, CommandList& out);

// One per implemented subcommand (cmd_<verb>.cpp).
Command add_extract(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_visualize(CLI::App& app);

}  // namespace atlas::cli
