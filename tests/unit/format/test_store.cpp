// The format module: attention documents and stores, written and read back (resume, torn
// manifests, orphan shards, merge, cat, top-k densification, member-name encoding).
#include <doctest/doctest.h>

#include <fstream>
#include <set>

#include "atlas/core/error.hpp"
#include "atlas/core/fs.hpp"
#include "atlas/format/store.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::format;

namespace {

TokenArrays tokens_of(int64_t q) {
  TokenArrays t;
  for (int64_t i = 0; i < q; ++i) {
    t.input_ids.push_back(10 + i);
    t.tokens.push_back("t" + std::to_string(i));
    t.token_labels.push_back("l" + std::to_string(i));
    t.offsets.push_back(i);
    t.offsets.push_back(i + 1);
    t.special.push_back(i == 0);
  }
  return t;
}

/// Attention [1 layer, 1 head, q, q]: row i is uniform over keys 0..i (causal).
std::vector<float> causal_uniform(int64_t q) {
  std::vector<float> a(static_cast<size_t>(q * q), 0.0f);
  for (int64_t i = 0; i < q; ++i)
    for (int64_t j = 0; j <= i; ++j) a[static_cast<size_t>(i * q + j)] = 1.0f / static_cast<float>(i + 1);
  return a;
}

void write_doc(DocumentWriter& w, int64_t q, const std::string& text) {
  AttentionShape s;
  s.layers = s.heads = 1;
  s.q = s.k = q;
  auto stream = w.begin_attention(kSelfAttention, s);
  auto a = causal_uniform(q);
  stream.write_layer(a.data(), a.size() * sizeof(float));
  stream.finish();
  w.write_selection({0}, {0});
  w.write_tokens(tokens_of(q));
  AttentionMeta m = AttentionMeta::now();
  m.model.causal = true;
  m.input.text = text;
  w.write_meta(m);
}

StoreInfo info_with(const std::string& layers) {
  StoreInfo info;
  info.run = {{"layers", layers}, {"shard", "0/1"}};
  return info;
}

ManifestEntry entry(const std::string& id, int64_t ordinal, int64_t q) {
  ManifestEntry e;
  e.id = id;
  e.ordinal = ordinal;
  e.tokens = q;
  e.sha256 = sha256_hex(id);
  return e;
}

void add_docs(StoreWriter& s, const std::vector<std::string>& ids, int64_t first_ordinal) {
  int64_t ord = first_ordinal;
  for (const auto& id : ids) {
    const int64_t q = 3 + ord % 4;
    DocumentWriter& w = s.begin_document(id);
    write_doc(w, q, "text " + id);
    s.end_document(entry(id, ord, q));
    ++ord;
  }
}

size_t count_lines(const fs::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

}  // namespace

TEST_CASE("member_safe_id keeps safe bytes, percent-encodes the rest, is never empty") {
  CHECK(member_safe_id("doc-1_a.b") == "doc-1_a.b");
  CHECK(member_safe_id("") == "%");
  CHECK(member_safe_id(".hidden") == "%2Ehidden");
  CHECK(member_safe_id("..") == "%2E.");
  CHECK(member_safe_id("a/b c") == "a%2Fb%20c");
  CHECK(member_safe_id("50%") == "50%25");
  CHECK(member_safe_id("caf\xC3\xA9") == "caf%C3%A9");
  CHECK(member_safe_id(std::string("a\0b", 3)) == "a%00b");
  // Distinct ids give distinct names.
  std::set<std::string> names;
  for (const char* id : {"", "%", "%25", ".", "%2E", "a.b", "a%2Eb", "a/b", "a%2Fb"})
    names.insert(member_safe_id(id));
  CHECK(names.size() == 9);
}

TEST_CASE("a single-document NPZ round-trips through DocumentWriter and load_attention") {
  const fs::path dir = test::scratch_dir("format_single");
  const fs::path file = dir / "doc.npz";
  {
    io::NpzWriter npz(file);
    DocumentWriter w(npz);
    write_doc(w, 4, "abcd");
    CHECK(w.members() == std::vector<std::string>{"attention", "layers", "heads", "input_ids", "tokens",
                                                  "token_labels", "offsets", "special", "meta"});
    npz.close();
  }
  AttentionData d = load_attention(file.string());
  CHECK(d.num_layers == 1);
  CHECK(d.q == 4);
  CHECK(d.matrix(0, 0)[3 * 4 + 1] == doctest::Approx(0.25));
  CHECK(d.tokens[2] == "t2");
  CHECK(d.special[0] == 1);
  REQUIRE(d.meta.has_value());
  CHECK(d.meta->input.text == std::optional<std::string>("abcd"));
  CHECK(d.causal_mask());
}

TEST_CASE("top-k attention is stored sparse and read back dense") {
  const fs::path dir = test::scratch_dir("format_topk");
  const fs::path file = dir / "doc.npz";
  {
    io::NpzWriter npz(file);
    DocumentWriter w(npz);
    AttentionShape s;
    s.layers = 1;
    s.heads = 1;
    s.q = s.k = 3;
    s.topk = 1;
    auto stream = w.begin_attention(kSelfAttention, s);
    std::vector<float> values{1.0f, 0.75f, 0.5f};
    std::vector<int32_t> idx{0, 1, 2};
    stream.write_layer(values.data(), values.size() * sizeof(float));
    stream.write_layer_indices(idx.data(), idx.size());
    stream.finish();
    w.write_tokens(tokens_of(3));
    npz.close();
  }
  io::NpzReader npz(file);
  CHECK_FALSE(npz.contains("attention"));
  CHECK(npz.contains("attention_topk_values"));
  AttentionData d = load_attention(file.string());
  CHECK(d.topk == 1);
  CHECK(d.matrix(0, 0)[0] == 1.0f);
  CHECK(d.matrix(0, 0)[1 * 3 + 1] == 0.75f);
  CHECK(d.matrix(0, 0)[1 * 3 + 0] == 0.0f);
  CHECK(d.matrix(0, 0)[2 * 3 + 2] == 0.5f);
}

TEST_CASE("a store is written in shards, read back, and every document listed once") {
  const fs::path dir = test::scratch_dir("format_store");
  {
    StoreWriterOptions o;
    o.shard_documents = 2;
    StoreWriter s(dir / "st", info_with("all"), o);
    add_docs(s, {"a", "b", "c", "doc/1", "e"}, 0);
    ManifestEntry bad = entry("f", 5, 0);
    bad.error = "empty document";
    s.record_failure(bad);
    CHECK_THROWS_AS(s.begin_document("a"), InputError);
    s.close();
    CHECK(s.shards_written() == 3);
  }
  StoreReader r(dir / "st");
  CHECK(r.entries().size() == 6);
  CHECK(r.ok_count() == 5);
  CHECK(r.failed_count() == 1);
  CHECK(r.at("doc/1").shard == "shard-00001.npz");
  AttentionData d = r.read("doc/1");
  CHECK(d.q == 3 + 3 % 4);
  CHECK(load_attention((dir / "st").string() + ":doc/1").q == d.q);
  CHECK_THROWS_WITH_AS(r.read("f"), doctest::Contains("empty document"), InputError);
  CHECK_THROWS_WITH_AS(r.at("zzz"), doctest::Contains("has no document 'zzz'"), InputError);
  io::NpzReader shard(dir / "st" / "shard-00001.npz");
  CHECK(shard.contains("doc%2F1/attention"));

  // cat writes the document exactly as a standalone file holds it.
  cat_document(r, "doc/1", dir / "one.npz");
  io::NpzReader one(dir / "one.npz");
  CHECK(one.names() == r.at("doc/1").members);
  CHECK(one.get("attention").to_float() == shard.get("doc%2F1/attention").to_float());
}

TEST_CASE("resume: finished documents are known, torn lines and orphan shards are cleaned up") {
  const fs::path dir = test::scratch_dir("format_resume");
  const fs::path st = dir / "st";
  {
    StoreWriterOptions o;
    o.shard_documents = 2;
    StoreWriter s(st, info_with("all"), o);
    add_docs(s, {"a", "b", "c"}, 0);   // a, b in shard 0; c in the still-open shard 1
    s.close();
  }
  // A crash: a torn manifest line, a shard nobody lists, a temporary file.
  { std::ofstream(st / "manifest.jsonl", std::ios::app) << "{\"id\": \"x\", \"sta"; }
  fs::copy_file(st / "shard-00000.npz", st / "shard-00007.npz");
  { std::ofstream(st / ".shard-00008.npz.tmp-1-1") << "partial"; }
  {
    StoreWriter s(st, info_with("all"));
    CHECK(s.resumed());
    CHECK(s.finished().size() == 3);
    CHECK_FALSE(fs::exists(st / "shard-00007.npz"));
    CHECK_FALSE(fs::exists(st / ".shard-00008.npz.tmp-1-1"));
    add_docs(s, {"d"}, 3);
    s.close();
  }
  CHECK(count_lines(st / "manifest.jsonl") == 4);
  StoreReader r(st);
  CHECK(r.entries().size() == 4);
  CHECK(r.read("d").q > 0);

  // Other settings: refused, naming the key.
  CHECK_THROWS_WITH_AS(StoreWriter(st, info_with("0")), doctest::Contains("differs in layers"), InputError);
  StoreWriterOptions no_resume;
  no_resume.resume = false;
  CHECK_THROWS_WITH_AS(StoreWriter(st, info_with("all"), no_resume), doctest::Contains("--no-resume"), InputError);
}

TEST_CASE("a store killed before close lists none of the open shard's documents") {
  const fs::path dir = test::scratch_dir("format_abort");
  const fs::path st = dir / "st";
  try {
    StoreWriter s(st, info_with("all"));
    add_docs(s, {"a", "b"}, 0);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  StoreReader r(st);
  CHECK(r.entries().empty());
  for (const auto& e : fs::directory_iterator(st)) CHECK(e.path().filename().string().find("shard") == std::string::npos);
}

TEST_CASE("merge joins disjoint stores by ordinal and refuses overlaps and other settings") {
  const fs::path dir = test::scratch_dir("format_merge");
  {
    StoreInfo i0 = info_with("all");
    i0.run["shard"] = "0/2";
    StoreWriter s(dir / "p0", i0);
    add_docs(s, {"a"}, 0);
    add_docs(s, {"c"}, 2);
    s.close();
    StoreInfo i1 = info_with("all");
    i1.run["shard"] = "1/2";
    StoreWriter s1(dir / "p1", i1);
    add_docs(s1, {"b"}, 1);
    s1.close();
    StoreWriter s2(dir / "other", info_with("0"));
    add_docs(s2, {"z"}, 9);
    s2.close();
  }
  MergeSummary m = merge_stores({dir / "p0", dir / "p1"}, dir / "all");
  CHECK(m.documents == 3);
  CHECK(m.shards == 2);
  StoreReader r(dir / "all");
  std::vector<std::string> ids;
  for (const auto& e : r.entries()) ids.push_back(e.id);
  CHECK(ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(r.read("b").q == r.read("b").k);
  CHECK(r.info().extra.contains("merged_from"));

  CHECK_THROWS_WITH_AS(merge_stores({dir / "p0", dir / "p0"}, dir / "dup"), doctest::Contains("is in both"), InputError);
  CHECK_FALSE(fs::exists(dir / "dup"));
  CHECK_THROWS_WITH_AS(merge_stores({dir / "p0", dir / "other"}, dir / "x"), doctest::Contains("other settings"),
                       InputError);
  CHECK_THROWS_WITH_AS(merge_stores({dir / "p0"}, dir / "all"), doctest::Contains("already exists"), InputError);
}

TEST_CASE("damaged manifests and metas are errors naming file and line") {
  const fs::path dir = test::scratch_dir("format_damaged");
  fs::create_directories(dir / "st");
  { std::ofstream(dir / "st" / "manifest.jsonl") << "{\"id\": \"a\", \"status\": \"ok\", \"shard\": \"shard-00000.npz\"}\nnot json\n"; }
  CHECK_THROWS_WITH_AS(StoreReader(dir / "st"), doctest::Contains("line 2: not valid JSON"), FormatError);
  { std::ofstream(dir / "st" / "manifest.jsonl") << "{\"id\": \"a\", \"status\": \"maybe\"}\n"; }
  CHECK_THROWS_WITH_AS(StoreReader(dir / "st"), doctest::Contains("'status'"), FormatError);
  CHECK_THROWS_WITH_AS(AttentionMeta::from_json(nlohmann::json{{"threads", "two"}}, "'f.npz'"),
                       doctest::Contains("'threads' must be an integer"), FormatError);
  AttentionMeta m = AttentionMeta::from_json(nlohmann::json{{"future_key", 1}}, "'f.npz'");
  CHECK(m.to_json()["future_key"] == 1);
}

TEST_CASE("meta: adapters round-trip and are absent without adapters") {
  AttentionMeta m;
  CHECK(!m.to_json().contains("adapters"));
  AdapterMeta a;
  a.path = "/x/lora";
  a.weight_file = "adapter_model.safetensors";
  a.sha256 = std::string(64, 'a');
  a.r = 8;
  a.lora_alpha = 16;
  a.scaling = 2;
  a.fan_in_fan_out = true;
  a.target_modules = {"q_proj", "v_proj"};
  a.merged_tensors = 4;
  m.adapters = {a, a};
  AttentionMeta back = AttentionMeta::from_json(m.to_json(), "'f.npz'");
  REQUIRE(back.adapters.size() == 2);
  CHECK(back.adapters[1].path == "/x/lora");
  CHECK(back.adapters[1].r == 8);
  CHECK(back.adapters[1].lora_alpha == 16);
  CHECK(back.adapters[1].scaling == 2);
  CHECK(back.adapters[1].fan_in_fan_out);
  CHECK(back.adapters[1].target_modules == std::vector<std::string>{"q_proj", "v_proj"});
  CHECK(back.adapters[1].merged_tensors == 4);
  CHECK(!back.extra.contains("adapters"));
  CHECK_THROWS_WITH_AS(AttentionMeta::from_json(nlohmann::json{{"adapters", {{{"r", "eight"}}}}}, "'f.npz'"),
                       doctest::Contains("'adapters[0].r' must be an integer"), FormatError);
}
