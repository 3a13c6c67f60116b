#include "atlas/format/meta.hpp"

#include <ctime>

#include "atlas/core/error.hpp"
#include "atlas/core/version.hpp"

namespace atlas::format {

using nlohmann::json;

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

AttentionMeta AttentionMeta::now() {
  AttentionMeta m;
  m.version = atlas::version();
  m.git_revision = atlas::git_revision();
  m.created = utc_now_iso();
  return m;
}

json AttentionMeta::to_json() const {
  json j = extra.is_object() ? extra : json::object();
  j["format"] = format;
  j["format_version"] = format_version;
  j["tool"] = tool;
  j["version"] = version;
  j["git_revision"] = git_revision;
  j["command_line"] = command_line;
  j["created"] = created;
  j["model"] = {{"path", model.path},
                {"model_type", model.model_type},
                {"model_class", model.model_class},
                {"num_layers", model.num_layers},
                {"num_heads", model.num_heads},
                {"num_kv_heads", model.num_kv_heads},
                {"vocab_size", model.vocab_size},
                {"causal", model.causal},
                {"checkpoint_format", model.checkpoint_format},
                {"checkpoint_sha256", model.checkpoint_sha256}};
  if (!adapters.empty()) {
    json list = json::array();
    for (const auto& a : adapters)
      list.push_back({{"path", a.path},
                      {"weight_file", a.weight_file},
                      {"sha256", a.sha256},
                      {"peft_type", a.peft_type},
                      {"r", a.r},
                      {"lora_alpha", a.lora_alpha},
                      {"scaling", a.scaling},
                      {"use_rslora", a.use_rslora},
                      {"fan_in_fan_out", a.fan_in_fan_out},
                      {"target_modules", a.target_modules},
                      {"merged_tensors", a.merged_tensors}});
    j["adapters"] = list;
  }
  j["tokenizer"] = tokenizer;
  json in = {{"source", input.source}, {"add_special_tokens", input.add_special_tokens}};
  if (input.text) in["text"] = *input.text;
  if (input.text_pair) in["text_pair"] = *input.text_pair;
  if (input.document_id) in["document_id"] = *input.document_id;
  if (input.window_offset) in["window_offset"] = *input.window_offset;
  if (input.window_index) in["window_index"] = *input.window_index;
  j["input"] = in;
  j["dtype"] = dtype;
  j["compute_dtype"] = compute_dtype;
  if (gemm) j["gemm"] = *gemm;
  j["device"] = device;
  j["threads"] = threads;
  if (topk) j["topk"] = *topk;
  if (!process.empty()) j["process"] = process;
  return j;
}

namespace {

/// Typed reads that name the file and key when a value has the wrong type; absent keys keep the
/// default.
struct Reader {
  const json& j;
  const std::string& where;
  std::string prefix;

  const json* find(const char* key) const {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  void str(const char* key, std::string& out) const {
    if (const json* v = find(key)) {
      ATLAS_CHECK(v->is_string(), FormatError, "{}: meta key '{}{}' must be a string, got {}", where, prefix, key,
                  v->type_name());
      out = v->get<std::string>();
    }
  }
  void opt_str(const char* key, std::optional<std::string>& out) const {
    if (find(key)) {
      std::string s;
      str(key, s);
      out = s;
    }
  }
  template <class I>
  void integer(const char* key, I& out) const {
    if (const json* v = find(key)) {
      ATLAS_CHECK(v->is_number_integer(), FormatError, "{}: meta key '{}{}' must be an integer, got {}", where,
                  prefix, key, v->type_name());
      out = v->get<I>();
    }
  }
  void opt_int(const char* key, std::optional<int64_t>& out) const {
    if (find(key)) {
      int64_t v = 0;
      integer(key, v);
      out = v;
    }
  }
  void number(const char* key, double& out) const {
    if (const json* v = find(key)) {
      ATLAS_CHECK(v->is_number(), FormatError, "{}: meta key '{}{}' must be a number, got {}", where, prefix, key,
                  v->type_name());
      out = v->get<double>();
    }
  }
  void strings(const char* key, std::vector<std::string>& out) const {
    if (const json* v = find(key)) {
      bool ok = v->is_array();
      for (const auto& e : ok ? *v : json::array()) ok = ok && e.is_string();
      ATLAS_CHECK(ok, FormatError, "{}: meta key '{}{}' must be a list of strings, got {}", where, prefix, key,
                  v->dump());
      out = v->get<std::vector<std::string>>();
    }
  }
  void boolean(const char* key, bool& out) const {
    if (const json* v = find(key)) {
      ATLAS_CHECK(v->is_boolean(), FormatError, "{}: meta key '{}{}' must be true or false, got {}", where, prefix,
                  key, v->type_name());
      out = v->get<bool>();
    }
  }
};

}  // namespace

AttentionMeta AttentionMeta::from_json(const json& j, const std::string& where) {
  ATLAS_CHECK(j.is_object(), FormatError, "{}: 'meta' must be a JSON object, got {}", where, j.type_name());
  AttentionMeta m;
  Reader r{j, where, ""};
  r.str("format", m.format);
  r.integer("format_version", m.format_version);
  r.str("tool", m.tool);
  r.str("version", m.version);
  r.str("git_revision", m.git_revision);
  r.str("command_line", m.command_line);
  r.str("created", m.created);
  if (const json* model = r.find("model")) {
    ATLAS_CHECK(model->is_object(), FormatError, "{}: meta key 'model' must be an object", where);
    Reader mr{*model, where, "model."};
    mr.str("path", m.model.path);
    mr.str("model_type", m.model.model_type);
    mr.str("model_class", m.model.model_class);
    mr.integer("num_layers", m.model.num_layers);
    mr.integer("num_heads", m.model.num_heads);
    mr.integer("num_kv_heads", m.model.num_kv_heads);
    mr.integer("vocab_size", m.model.vocab_size);
    mr.boolean("causal", m.model.causal);
    mr.str("checkpoint_format", m.model.checkpoint_format);
    mr.str("checkpoint_sha256", m.model.checkpoint_sha256);
  }
  if (const json* adapters = r.find("adapters")) {
    ATLAS_CHECK(adapters->is_array(), FormatError, "{}: meta key 'adapters' must be a list", where);
    for (size_t k = 0; k < adapters->size(); ++k) {
      const json& e = (*adapters)[k];
      ATLAS_CHECK(e.is_object(), FormatError, "{}: meta key 'adapters[{}]' must be an object", where, k);
      Reader ar{e, where, fmt::format("adapters[{}].", k)};
      AdapterMeta a;
      ar.str("path", a.path);
      ar.str("weight_file", a.weight_file);
      ar.str("sha256", a.sha256);
      ar.str("peft_type", a.peft_type);
      ar.integer("r", a.r);
      ar.number("lora_alpha", a.lora_alpha);
      ar.number("scaling", a.scaling);
      ar.boolean("use_rslora", a.use_rslora);
      ar.boolean("fan_in_fan_out", a.fan_in_fan_out);
      ar.strings("target_modules", a.target_modules);
      ar.integer("merged_tensors", a.merged_tensors);
      m.adapters.push_back(std::move(a));
    }
  }
  r.str("tokenizer", m.tokenizer);
  if (const json* in = r.find("input")) {
    ATLAS_CHECK(in->is_object(), FormatError, "{}: meta key 'input' must be an object", where);
    Reader ir{*in, where, "input."};
    ir.str("source", m.input.source);
    ir.opt_str("text", m.input.text);
    ir.opt_str("text_pair", m.input.text_pair);
    ir.boolean("add_special_tokens", m.input.add_special_tokens);
    ir.opt_str("document_id", m.input.document_id);
    ir.opt_int("window_offset", m.input.window_offset);
    ir.opt_int("window_index", m.input.window_index);
  }
  r.str("dtype", m.dtype);
  m.compute_dtype = "float32";
  r.str("compute_dtype", m.compute_dtype);
  r.opt_str("gemm", m.gemm);
  r.str("device", m.device);
  r.integer("threads", m.threads);
  r.opt_int("topk", m.topk);
  if (const json* steps = r.find("process")) {
    ATLAS_CHECK(steps->is_array(), FormatError, "{}: meta key 'process' must be a list, got {}", where,
                steps->type_name());
    m.process = *steps;
  }
  static const char* known[] = {"format", "format_version", "tool", "version", "git_revision", "command_line",
                                "created", "model", "adapters", "tokenizer", "input", "dtype", "compute_dtype", "gemm",
                                "device", "threads", "topk", "process"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool is_known = false;
    for (const char* k : known) is_known = is_known || it.key() == k;
    if (!is_known) m.extra[it.key()] = it.value();
  }
  return m;
}

}  // namespace atlas::format
