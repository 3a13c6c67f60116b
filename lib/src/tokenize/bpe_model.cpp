// Byte-pair encoding as Hugging Face tokenizers' BPE model: characters (or byte-fallback pieces)
// merged by a priority queue ordered by (merge rank, position), so a word costs O(n log n).
#include <nlohmann/json.hpp>

#include <mutex>
#include <queue>
#include <unordered_map>

#include "atlas/core/error.hpp"
#include "tokenize/model.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

struct Symbol {
  int64_t id;
  size_t begin, len;
  int64_t prev, next;
};

struct MergeCandidate {
  uint32_t rank;
  size_t pos;
  int64_t new_id;
  bool operator<(const MergeCandidate& o) const {  // std::priority_queue pops the largest
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

class Bpe final : public VocabModel {
 public:
  Bpe(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
      : VocabModel(std::move(vocab)), options_(std::move(options)) {
    const size_t prefix_len = options_.continuing_subword_prefix.size();
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      const auto ia = vocab_.find(a), ib = vocab_.find(b);
      // The merged token drops the right side's continuation prefix (tokenizers does the same).
      const std::string merged = a + (prefix_len && b.compare(0, prefix_len, options_.continuing_subword_prefix) == 0
                                          ? b.substr(prefix_len) : b);
      const auto im = vocab_.find(merged);
      ATLAS_CHECK(ia != vocab_.end() && ib != vocab_.end() && im != vocab_.end(), ConfigError,
                  "BPE merge #{} '{} {}' uses a token missing from the vocabulary", rank, a, b);
      merges_.emplace(pair_key(ia->second, ib->second), std::make_pair(static_cast<uint32_t>(rank), im->second));
    }
    if (options_.unk_token) {
      const auto it = vocab_.find(*options_.unk_token);
      if (it != vocab_.end()) unk_id_ = it->second;
    }
  }

  void tokenize(std::string_view word, std::vector<ModelToken>& out) const override {
    if (word.empty()) return;
    constexpr size_t kCacheableLen = 256;
    if (word.size() <= kCacheableLen) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto it = cache_.find(std::string(word));
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<ModelToken> tokens = encode_word(word);
    if (word.size() <= kCacheableLen) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() >= kCacheCapacity) cache_.clear();
      cache_.emplace(std::string(word), tokens);
    }
    out.insert(out.end(), tokens.begin(), tokens.end());
  }


 private:
  static constexpr size_t kCacheCapacity = 10000;

  std::vector<ModelToken> encode_word(std::string_view word) const {
    if (options_.ignore_merges) {
      const auto it = vocab_.find(std::string(word));
      if (it != vocab_.end()) return {ModelToken{it->second, it->first, 0, word.size()}};
    }
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    auto add = [&](int64_t id, size_t begin, size_t len) {
      const int64_t idx = static_cast<int64_t>(symbols.size());
      symbols.push_back(Symbol{id, begin, len, idx - 1, -1});
      if (idx > 0) symbols[idx - 1].next = idx;
    };
    std::optional<std::pair<size_t, size_t>> pending_unk;  // (begin, len) of a run of unknown characters
    auto flush_unk = [&] {
      if (pending_unk) add(*unk_id_, pending_unk->first, pending_unk->second);
      pending_unk.reset();
    };
    size_t pos = 0;
    std::string piece;
    while (pos < word.size()) {
      const size_t begin = pos;
      pos += utf8_len(static_cast<unsigned char>(word[pos]));
      const size_t len = pos - begin;
      piece.assign(word.substr(begin, len));
      if (begin > 0) piece = options_.continuing_subword_prefix + piece;
      if (pos >= word.size()) piece += options_.end_of_word_suffix;
      const auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        flush_unk();
        add(it->second, begin, len);
        continue;
      }
      if (options_.byte_fallback) {
        std::vector<int64_t> ids;
        for (size_t i = 0; i < len; ++i) {
          const auto b = vocab_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(word[begin + i])));
          if (b == vocab_.end()) break;
          ids.push_back(b->second);
        }
        if (ids.size() == len) {
          flush_unk();
          for (size_t i = 0; i < len; ++i) add(ids[i], begin + i, 1);
          continue;
        }
      }
      if (unk_id_) {
        if (pending_unk && options_.fuse_unk) {
          pending_unk->second += len;
        } else {
          flush_unk();
          pending_unk = std::make_pair(begin, len);
        }
      }
    }
    flush_unk();

    std::priority_queue<MergeCandidate> queue;
    auto push_pair = [&](size_t left) {
      const int64_t right = symbols[left].next;
      if (right < 0) return;
      const auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
      if (it != merges_.end()) queue.push(MergeCandidate{it->second.first, left, it->second.second});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(i);
    while (!queue.empty()) {
      const MergeCandidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (left.len == 0 || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      const auto it = merges_.find(pair_key(left.id, right.id));
      if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale entry
      left.id = top.new_id;
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (left.next >= 0) symbols[left.next].prev = static_cast<int64_t>(top.pos);
      if (left.prev >= 0) push_pair(static_cast<size_t>(left.prev));
      push_pair(top.pos);
    }
    std::vector<ModelToken> tokens;
    for (const auto& s : symbols) {
      if (s.len == 0) continue;
      tokens.push_back(ModelToken{s.id, vocab_r_[s.id], s.begin, s.begin + s.len});
    }
    return tokens;
  }

  std::unordered_map<uint64_t, std::pair<uint32_t, int64_t>> merges_;  // (left, right) -> (rank, merged id)
  BpeOptions options_;
  std::optional<int64_t> unk_id_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<ModelToken>> cache_;
};

}  // namespace

std::unique_ptr<Model> make_bpe(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                BpeOptions options) {
  return std::make_unique<Bpe>(std::move(vocab), merges, std::move(options));
}

}  // namespace atlas::tokenize::detail
