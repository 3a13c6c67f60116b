// Restricted pickle VM: see unpickler.hpp. Opcode values and semantics follow CPython's
// Lib/pickletools.py; only the subset torch.save uses for a state dict (protocols 2-4) is accepted.
#include "io/unpickler.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "atlas/core/error.hpp"

namespace atlas::io::pickle {
namespace {

constexpr int kMaxDepth = 256;  // state dicts nest 3-4 deep; this bounds recursive destruction

// Names from an untrusted stream go into messages printable.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  return out;
}

std::string join_allowed(const std::set<std::string>& allowed) {
  std::string out;
  for (const auto& a : allowed) out += (out.empty() ? "" : ", ") + a;
  return out;
}

class Machine {
 public:
  Machine(const std::string& data, const std::string& source, const Hooks& hooks)
      : data_(data), source_(source), hooks_(hooks) {}

  ValuePtr run() {
    while (true) {
      op_pos_ = pos_;
      ATLAS_CHECK(pos_ < data_.size(), CheckpointError,
                  "'{}': pickle ends at byte {} without a STOP opcode (truncated data.pkl?)", source_, pos_);
      op_ = static_cast<unsigned char>(data_[pos_++]);
      switch (op_) {
        case 0x80: {  // PROTO
          const int proto = u8();
          ATLAS_CHECK(proto >= 2 && proto <= 5, CheckpointError,
                      "'{}': pickle protocol {} at byte {} is not supported (expected 2..5)", source_, proto,
                      op_pos_);
          break;
        }
        case 0x95:
          skip(8);
          break;     // FRAME: framing is only a read-ahead hint
        case '.': {  // STOP
          ATLAS_CHECK(stack_.size() == 1 && marks_.empty(), CheckpointError,
                      "'{}': pickle STOP at byte {} with {} values on the stack and {} open marks (expected "
                      "1 and 0)",
                      source_, op_pos_, stack_.size(), marks_.size());
          return stack_.back();
        }
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '0':
          pop();
          break;  // POP
        case '1':
          pop_mark();
          break;  // POP_MARK
        case '2':
          push(top());
          break;  // DUP
        case 'N':
          push(make(Value::Kind::None));
          break;
        case 0x88:
          push(make_bool(true));
          break;  // NEWTRUE
        case 0x89:
          push(make_bool(false));
          break;  // NEWFALSE
        case 'J':
          push(make_int(static_cast<int32_t>(le(4))));
          break;  // BININT
        case 'K':
          push(make_int(u8()));
          break;  // BININT1
        case 'M':
          push(make_int(static_cast<int64_t>(le(2))));
          break;      // BININT2
        case 0x8a: {  // LONG1
          const size_t n = u8();
          ATLAS_CHECK(n <= 8, CheckpointError, "'{}': pickle LONG1 at byte {} has {} bytes (expected <= 8)",
                      source_, op_pos_, n);
          uint64_t v = le(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          push(make_int(static_cast<int64_t>(v)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian IEEE double
          uint64_t bits = 0;
          const std::string raw = bytes(8);
          for (unsigned char c : raw) bits = (bits << 8) | c;
          double d;
          std::memcpy(&d, &bits, 8);
          auto v = make(Value::Kind::Float);
          v->f = d;
          push(v);
          break;
        }
        case 'X':
          push(make_str(Value::Kind::Str, bytes(le(4))));
          break;  // BINUNICODE
        case 0x8c:
          push(make_str(Value::Kind::Str, bytes(u8())));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(make_str(Value::Kind::Str, bytes(le(8))));
          break;  // BINUNICODE8
        case 'T':
          push(make_str(Value::Kind::Str, bytes(le(4))));
          break;  // BINSTRING (py2 str)
        case 'U':
          push(make_str(Value::Kind::Str, bytes(u8())));
          break;  // SHORT_BINSTRING
        case 'B':
          push(make_str(Value::Kind::Bytes, bytes(le(4))));
          break;  // BINBYTES
        case 'C':
          push(make_str(Value::Kind::Bytes, bytes(u8())));
          break;  // SHORT_BINBYTES
        case '}':
          push(make(Value::Kind::Dict));
          break;  // EMPTY_DICT
        case ']':
          push(make(Value::Kind::List));
          break;  // EMPTY_LIST
        case ')':
          push(make(Value::Kind::Tuple));
          break;  // EMPTY_TUPLE
        case 't':
          push(make_seq(Value::Kind::Tuple, pop_mark()));
          break;  // TUPLE
        case 'l':
          push(make_seq(Value::Kind::List, pop_mark()));
          break;  // LIST
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t n = op_ - 0x84;
          need_stack(n);
          std::vector<ValuePtr> items(stack_.end() - static_cast<long>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(make_seq(Value::Kind::Tuple, std::move(items)));
          break;
        }
        case 'd': {  // DICT
          auto d = make(Value::Kind::Dict);
          set_items(d, pop_mark());
          push(d);
          break;
        }
        case 's': {  // SETITEM
          need_stack(3);
          std::vector<ValuePtr> kv{stack_[stack_.size() - 2], stack_.back()};
          stack_.resize(stack_.size() - 2);
          set_items(top_of(Value::Kind::Dict), std::move(kv));
          break;
        }
        case 'u': {  // SETITEMS
          auto kv = pop_mark();
          set_items(top_of(Value::Kind::Dict), std::move(kv));
          break;
        }
        case 'a': {  // APPEND
          need_stack(2);
          ValuePtr v = pop();
          append(top_of(Value::Kind::List), {v});
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_mark();
          append(top_of(Value::Kind::List), std::move(items));
          break;
        }
        case 'q':
          memo_[u8()] = top();
          break;  // BINPUT
        case 'r':
          memo_[le(4)] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(memo_get(u8()));
          break;  // BINGET
        case 'j':
          push(memo_get(le(4)));
          break;     // LONG_BINGET
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line();
          std::string name = line();
          push(make_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          need_stack(2);
          ValuePtr name = pop(), module = pop();
          ATLAS_CHECK(module->kind == Value::Kind::Str && name->kind == Value::Kind::Str, CheckpointError,
                      "'{}': pickle STACK_GLOBAL at byte {}: expected two strings, got {} and {}", source_,
                      op_pos_, kind_name(module->kind), kind_name(name->kind));
          push(make_global(module->s, name->s));
          break;
        }
        case 'R':
        case 0x81: {  // REDUCE (callable, args) / NEWOBJ (cls, args)
          need_stack(2);
          ValuePtr args = pop(), callable = pop();
          ATLAS_CHECK(callable->kind == Value::Kind::Global, CheckpointError,
                      "'{}': pickle {} at byte {}: expected a global to call, got {}", source_,
                      op_ == 'R' ? "REDUCE" : "NEWOBJ", op_pos_, kind_name(callable->kind));
          ATLAS_CHECK(args->kind == Value::Kind::Tuple, CheckpointError,
                      "'{}': pickle {} of '{}' at byte {}: expected an argument tuple, got {}", source_,
                      op_ == 'R' ? "REDUCE" : "NEWOBJ", callable->s, op_pos_, kind_name(args->kind));
          ValuePtr result = hooks_.reduce(callable->s, args);
          push(result);
          break;
        }
        case 'b': {  // BUILD: sets attributes (state dict _metadata); items are unaffected
          need_stack(2);
          ValuePtr state = pop();
          ValuePtr obj = top();
          ATLAS_CHECK(
              (obj->kind == Value::Kind::Dict || obj->kind == Value::Kind::Object) &&
                  (state->kind == Value::Kind::Dict || state->kind == Value::Kind::None),
              CheckpointError,
              "'{}': pickle BUILD at byte {}: expected a dict or tensor and a state dict, got {} and {}",
              source_, op_pos_, kind_name(obj->kind), kind_name(state->kind));
          break;
        }
        case 'Q': {  // BINPERSID
          need_stack(1);
          ValuePtr pid = pop();
          push(hooks_.persistent_load(pid));
          break;
        }
        default:
          ATLAS_FAIL(CheckpointError,
                     "'{}': pickle opcode 0x{:02x} ('{}') at byte {} is not supported by the restricted "
                     "unpickler (a state dict does not need it)",
                     source_, op_, (op_ >= 0x20 && op_ < 0x7f) ? std::string(1, static_cast<char>(op_)) : "?",
                     op_pos_);
      }
    }
  }

 private:
  [[noreturn]] void truncated(size_t n) const {
    ATLAS_FAIL(CheckpointError,
               "'{}': truncated pickle: opcode 0x{:02x} at byte {} needs {} more bytes, {} left", source_,
               op_, op_pos_, n, data_.size() - pos_);
  }
  void skip(size_t n) {
    if (n > data_.size() - pos_) truncated(n);
    pos_ += n;
  }
  unsigned u8() {
    if (pos_ >= data_.size()) truncated(1);
    return static_cast<unsigned char>(data_[pos_++]);
  }
  uint64_t le(size_t n) {
    if (n > data_.size() - pos_) truncated(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(data_[pos_ + k])) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_) truncated(n);
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    const size_t end = data_.find('\n', pos_);
    ATLAS_CHECK(end != std::string::npos && end - pos_ <= 256, CheckpointError,
                "'{}': pickle GLOBAL at byte {}: expected a newline-terminated name (truncated?)", source_,
                op_pos_);
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  ValuePtr make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
  }
  ValuePtr make_bool(bool b) {
    auto v = make(Value::Kind::Bool);
    v->b = b;
    return v;
  }
  ValuePtr make_int(int64_t i) {
    auto v = make(Value::Kind::Int);
    v->i = i;
    return v;
  }
  ValuePtr make_str(Value::Kind kind, std::string s) {
    auto v = make(kind);
    v->s = std::move(s);
    return v;
  }
  ValuePtr make_seq(Value::Kind kind, std::vector<ValuePtr> items) {
    auto v = make(kind);
    for (const auto& it : items) grow(v, it);
    v->items = std::move(items);
    return v;
  }
  ValuePtr make_global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    ATLAS_CHECK(hooks_.allowed_globals.count(full), CheckpointError,
                "'{}': pickle global '{}' is not allowed (allowed: {})", source_, printable(full),
                join_allowed(hooks_.allowed_globals));
    return make_str(Value::Kind::Global, full);
  }
  void grow(const ValuePtr& parent, const ValuePtr& child) {
    parent->depth = std::max(parent->depth, child->depth + 1);
    ATLAS_CHECK(parent->depth <= kMaxDepth, CheckpointError,
                "'{}': pickle nests deeper than {} levels at byte {}", source_, kMaxDepth, op_pos_);
  }
  void set_items(const ValuePtr& d, std::vector<ValuePtr> kv) {
    ATLAS_CHECK(kv.size() % 2 == 0, CheckpointError,
                "'{}': pickle SETITEMS at byte {}: odd number of values ({})", source_, op_pos_, kv.size());
    for (size_t k = 0; k < kv.size(); k += 2) {
      grow(d, kv[k]);
      grow(d, kv[k + 1]);
      d->dict.emplace_back(kv[k], kv[k + 1]);
    }
  }
  void append(const ValuePtr& list, std::vector<ValuePtr> items) {
    for (auto& it : items) {
      grow(list, it);
      list->items.push_back(std::move(it));
    }
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  void need_stack(size_t n) {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    ATLAS_CHECK(stack_.size() >= floor + n, CheckpointError,
                "'{}': pickle opcode 0x{:02x} at byte {} needs {} values on the stack, found {}", source_,
                op_, op_pos_, n, stack_.size() - floor);
  }
  ValuePtr pop() {
    need_stack(1);
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() {
    need_stack(1);
    return stack_.back();
  }
  ValuePtr top_of(Value::Kind kind) {
    const ValuePtr& v = top();
    ATLAS_CHECK(v->kind == kind, CheckpointError,
                "'{}': pickle opcode 0x{:02x} at byte {}: expected a {} on the stack, got {}", source_, op_,
                op_pos_, kind_name(kind), kind_name(v->kind));
    return v;
  }
  std::vector<ValuePtr> pop_mark() {
    ATLAS_CHECK(!marks_.empty(), CheckpointError, "'{}': pickle opcode 0x{:02x} at byte {} without a MARK",
                source_, op_, op_pos_);
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<long>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  ValuePtr memo_get(uint64_t key) {
    auto it = memo_.find(key);
    ATLAS_CHECK(it != memo_.end(), CheckpointError,
                "'{}': pickle GET at byte {} of memo {} that was never PUT", source_, op_pos_, key);
    return it->second;
  }

  const std::string& data_;
  const std::string& source_;
  const Hooks& hooks_;
  size_t pos_ = 0, op_pos_ = 0;
  unsigned op_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

}  // namespace

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::None:
      return "None";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::Str:
      return "str";
    case Value::Kind::Bytes:
      return "bytes";
    case Value::Kind::Tuple:
      return "tuple";
    case Value::Kind::List:
      return "list";
    case Value::Kind::Dict:
      return "dict";
    case Value::Kind::Global:
      return "global";
    case Value::Kind::Object:
      return "object";
  }
  return "?";
}

ValuePtr unpickle(const std::string& data, const std::string& source, const Hooks& hooks) {
  return Machine(data, source, hooks).run();
}

}  // namespace atlas::io::pickle
