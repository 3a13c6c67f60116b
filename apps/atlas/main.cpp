// atlas: thin entry point. Each subcommand lives in cmd_<verb>.cpp: it parses flags into a library
// Options struct and calls the library. Errors are caught once here and mapped to exit codes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"
#include "atlas/core/version.hpp"
#include "commands.hpp"

namespace {

// The subcommand the parse reached (the deepest one parsed), or the top-level app.
const CLI::App* parsed_command(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return parsed_command(*sub);
  return &app;
}

// "extract", "visualize", or "" for the top level: prefixed to the message after "atlas: error: ".
std::string command_name(const CLI::App& cmd) {
  std::string name;
  for (const CLI::App* a = &cmd; a != nullptr && a->get_parent() != nullptr; a = a->get_parent())
    name = a->get_name() + (name.empty() ? "" : " " + name);
  return name;
}

std::string valid_options(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : cmd.get_options()) {
    if (!opt->nonpositional()) continue;
    names.push_back(!opt->get_lnames().empty() ? "--" + opt->get_lnames().front() : "-" + opt->get_snames().front());
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

// CLI11's messages ("The following arguments were not expected: serve") name neither the command
// nor the choices; say both. An unknown option wins over a missing required one (CLI11 checks
// requirements first), since it is usually the cause.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App& cmd = *parsed_command(app);
  const std::string name = command_name(cmd);
  const std::string prefix = name.empty() ? "" : name + ": ";
  const std::string help = fmt::format("run 'atlas {}--help' for usage", name.empty() ? "" : name + " ");
  const std::vector<std::string> extras = cmd.remaining();
  for (const std::string& x : extras) {
    if (x.size() > 1 && x[0] == '-' && !std::isdigit(static_cast<unsigned char>(x[1])))
      return fmt::format("{}unknown option '{}' (valid options: {}); {}", prefix, x.substr(0, x.find('=')),
                         valid_options(cmd), help);
  }
  // A command group (the top level, `process`, `analyze`): an unknown or missing subcommand.
  std::vector<std::string> subs;
  for (const CLI::App* sub : cmd.get_subcommands({})) subs.push_back(sub->get_name());
  if (!subs.empty() && !extras.empty())
    return fmt::format("unknown command '{}{}' (choose from: {}); {}", name.empty() ? "" : name + " ",
                       extras.front(), fmt::join(subs, ", "), help);
  if (!subs.empty() && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr)
    return fmt::format("{}expected a subcommand (choose from: {}); {}", prefix, fmt::join(subs, ", "), help);
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !extras.empty())
    return fmt::format("{}unexpected argument '{}'; {}", prefix, extras.front(), help);
  return fmt::format("{}{}; {}", prefix, e.what(), help);
}

}  // namespace

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
    // --help / --version print and exit 0; every other parse problem is a usage error: exit code 2,
    // worded like every other atlas error, with the valid choices.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    fmt::print(stderr, "atlas: error: {}\n", usage_message(app, e));
    return 2;
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
