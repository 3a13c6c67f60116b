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

/// The command line as typed (shell-quoted), recorded in every output's provenance.
const std::string& command_line();
void set_command_line(int argc, char** argv);

// One per implemented subcommand (cmd_<verb>.cpp).
Command add_extract(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_visualize(CLI::App& app);
Command add_process(CLI::App& app);
Command add_models(CLI::App& app);
Command add_analyze(CLI::App& app);
/// `analyze bias` (cmd_bias.cpp), added to the `analyze` command.
Command add_bias_command(CLI::App& analyze);
Command add_serve(CLI::App& app);
/// `analyze attribution` (cmd_attribution.cpp), added to the `analyze` command.
Command add_attribution_command(CLI::App& analyze);

}  // namespace atlas::cli

namespace atlas::extract { struct ExtractSummary; struct CorpusSummary; }
namespace atlas::cli {
void print_extract_summary(const extract::ExtractSummary& s);
void print_corpus_summary(const extract::CorpusSummary& s, bool json, bool quiet);

}  // namespace atlas::cli
