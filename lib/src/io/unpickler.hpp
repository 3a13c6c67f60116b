#pragma once
// A restricted pickle reader (private to io/). It understands the opcodes that torch.save writes for
// a state dict and nothing else, resolves GLOBAL only against an allow-list (checked when the opcode
// is read, before the global can be used), and never calls anything: REDUCE / NEWOBJ / BINPERSID hand
// the already-vetted callable and its arguments to the caller, which builds its own objects.
#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace atlas::io::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                    // Str / Bytes; Global: "module.name"
  std::vector<ValuePtr> items;                      // Tuple / List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // Dict, in insertion order
  std::any object;                                  // Object: built by the caller's reduce()
  int depth = 1;                                    // nesting depth, bounded to keep destruction shallow
};

const char* kind_name(Value::Kind kind);

struct Hooks {
  /// Globals that GLOBAL / STACK_GLOBAL may name, as "module.name".
  std::set<std::string> allowed_globals;
  /// BINPERSID / PERSID: turns a persistent id into a value.
  std::function<ValuePtr(const ValuePtr& pid)> persistent_load;
  /// REDUCE / NEWOBJ: `callable` is an allowed Global; `args` a Tuple.
  std::function<ValuePtr(const std::string& callable, const ValuePtr& args)> reduce;
};

/// Runs the pickle program in `data` and returns what STOP finds on the stack. Throws CheckpointError
/// naming `source` (the file, for messages), the opcode and its byte offset on anything outside the
/// supported subset, a global outside the allow-list, or a malformed stream.
ValuePtr unpickle(const std::string& data, const std::string& source, const Hooks& hooks);

}  // namespace atlas::io::pickle
