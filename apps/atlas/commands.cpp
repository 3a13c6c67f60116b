#include "commands.hpp"

namespace atlas::cli {
namespace {
std::string g_command_line;

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:@%+") == std::string::npos)
    return arg;
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

const std::string& command_line() { return g_command_line; }

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) g_command_line += ' ';
    g_command_line += shell_quote(argv[i]);
  }
}

// Only implemented subcommands are registered, so `atlas --help` lists what works.
void register_commands(CLI::App& app, CommandList& out) {
  out.push_back(add_extract(app));
  out.push_back(add_tokenize(app));
  out.push_back(add_visualize(app));
  out.push_back(add_process(app));
  out.push_back(add_models(app));
  out.push_back(add_analyze(app));
}

}  // namespace atlas::cli
