// atlas: thin entry point. Each subcommand lives in cmd_<verb>.cpp: it parses flags into a library
// Options struct and calls the library. Errors are caught once here and mapped to exit codes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "atlas/core/error.hpp"
#include "atlas/core/version.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "Attention Atlas: make the attention of transformer language models visible and measurable.\n"
      "Subcommands exchange NumPy .npz files (docs/formats/attention-npz.md).\n\n"
      "  atlas extract --model examples/models/stories260K --text \"Lily went to the park.\" -o lily.npz\n"
      "  atlas visualize heatmap lily.npz --layer 2 --head mean -o lily.png\n\n"
      "Exit codes: 0 ok, 1 error, 2 usage, 3 a threshold you gate on was crossed."};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print version and git revision");

  atlas::cli::set_command_line(argc, argv);
  atlas::cli::CommandList commands;
  atlas::cli::register_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; every other parse problem is a usage error: exit code 2.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (show_version) {
    fmt::print("atlas {} (git {})\n", atlas::version(), atlas::git_revision());
    return 0;
  }
  try {
    for (auto& cmd : commands) {
      if (cmd.app->parsed()) return cmd.run();
    }
    fmt::print("{}", app.help());
    return 0;
  } catch (const atlas::Error& e) {
    fmt::print(stderr, "atlas: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "atlas: error: {}\n", e.what());
    return 1;
  }
}
