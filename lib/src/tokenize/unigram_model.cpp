// Unigram as Hugging Face tokenizers' `Unigram` (its optimized Viterbi, the one Unigram::from sets
// up): at every character the vocabulary entries that start there (a byte trie, shortest first)
// extend the best path ending before it; a character no entry covers alone gets the unknown score
// (min score - 10). Runs of unknown pieces fuse into one; byte_fallback turns an unknown piece into
// <0xNN> tokens when all of its bytes have one.
#include <limits>
#include <unordered_map>

#include "atlas/core/error.hpp"
#include "tokenize/model.hpp"
#include "tokenize/unicode.hpp"

namespace atlas::tokenize::detail {
namespace {

constexpr double kUnkPenalty = 10.0;

class Unigram final : public Model {
 public:
  Unigram(std::vector<std::pair<std::string, double>> vocab, std::optional<int64_t> unk_id, bool byte_fallback)
      : vocab_(std::move(vocab)), unk_id_(unk_id), byte_fallback_(byte_fallback) {
    if (unk_id_) {
      ATLAS_CHECK(!vocab_.empty(), ConfigError, "Unigram: the vocabulary is empty but unk_id is set");
      ATLAS_CHECK(*unk_id_ >= 0 && *unk_id_ < static_cast<int64_t>(vocab_.size()), ConfigError,
                  "Unigram: unk_id {} is outside the vocabulary (size {})", *unk_id_, vocab_.size());
    }
    nodes_.emplace_back();
    for (size_t id = 0; id < vocab_.size(); ++id) {
      const auto& [token, score] = vocab_[id];
      token_to_id_[token] = static_cast<int64_t>(id);  // a repeated token: the last id wins, as tokenizers
      min_score_ = std::min(min_score_, score);
      uint32_t node = 0;
      for (unsigned char b : token) {
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
          it = edges_.emplace(key, static_cast<uint32_t>(nodes_.size())).first;
          nodes_.emplace_back();
        }
        node = it->second;
      }
      if (!token.empty()) nodes_[node].terminal = true;
    }
  }

  void tokenize(std::string_view word, std::vector<ModelToken>& out) const override {
    if (word.empty()) return;
    for (const auto& [begin, end] : viterbi(word)) {
      const std::string piece(word.substr(begin, end - begin));
      const auto it = token_to_id_.find(piece);
      if (it != token_to_id_.end()) {
        out.push_back(ModelToken{it->second, piece, begin, end});
        continue;
      }
      if (byte_fallback_) {
        std::vector<ModelToken> bytes;
        for (unsigned char b : piece) {
          const std::string name = fmt::format("<0x{:02X}>", b);
          const auto byte_it = token_to_id_.find(name);
          if (byte_it == token_to_id_.end()) break;
          bytes.push_back(ModelToken{byte_it->second, name, begin, end});  // every byte spans the piece
        }
        if (bytes.size() == piece.size()) {
          out.insert(out.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      ATLAS_CHECK(unk_id_, InputError, "Unigram: '{}' is not in the vocabulary and the model has no unk_id", piece);
      out.push_back(ModelToken{*unk_id_, piece, begin, end});  // tokenizers keeps the text as the token
    }
  }

  std::optional<int64_t> token_to_id(std::string_view token) const override {
    const auto it = token_to_id_.find(std::string(token));
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> id_to_token(int64_t id) const override {
    if (id < 0 || id >= static_cast<int64_t>(vocab_.size())) return std::nullopt;
    return vocab_[static_cast<size_t>(id)].first;
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }

 private:
  struct Node {
    bool terminal = false;
  };
  struct Best {
    int64_t id = -1;
    double score = 0;
    std::optional<size_t> starts_at;
  };

  /// Byte ranges of the best segmentation (unknown runs fused).
  std::vector<std::pair<size_t, size_t>> viterbi(std::string_view s) const {
    const size_t n = s.size();
    const double unk_score = min_score_ - kUnkPenalty;
    std::vector<Best> best(n + 1);
    size_t start = 0;
    while (start < n) {
      const double here = best[start].score;
      const size_t mblen = utf8_len(static_cast<unsigned char>(s[start]));
      bool has_single_node = false;
      uint32_t node = 0;
      for (size_t pos = start; pos < n; ++pos) {
        const auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(s[pos]));
        if (it == edges_.end()) break;
        node = it->second;
        if (!nodes_[node].terminal) continue;
        const size_t end = pos + 1;
        const int64_t id = token_to_id_.at(std::string(s.substr(start, end - start)));
        const double candidate = vocab_[static_cast<size_t>(id)].second + here;
        Best& target = best[end];
        if (!target.starts_at || candidate > target.score) {
          target = Best{id, candidate, start};
        }
        if (end - start == mblen) has_single_node = true;
      }
      if (!has_single_node) {
        Best& target = best[start + mblen];
        const double candidate = unk_score + here;
        if (!target.starts_at || candidate > target.score) {
          ATLAS_CHECK(unk_id_, InputError,
                      "Unigram: '{}' is not in the vocabulary and the model has no unk_id", s.substr(start, mblen));
          target = Best{*unk_id_, candidate, start};
        }
      }
      start += mblen;
    }
    std::vector<std::pair<size_t, size_t>> pieces;
    std::optional<std::pair<size_t, size_t>> unk_run;  // fuse_unk is always on in tokenizers' Unigram
    size_t end = n;
    while (end > 0) {
      const Best& node = best[end];
      const size_t begin = *node.starts_at;
      if (unk_id_ && node.id == *unk_id_) {
        unk_run = unk_run ? std::make_pair(begin, unk_run->second) : std::make_pair(begin, end);
      } else {
        if (unk_run) pieces.push_back(*unk_run);
        unk_run.reset();
        pieces.emplace_back(begin, end);
      }
      end = begin;
    }
    if (unk_run) pieces.push_back(*unk_run);
    return {pieces.rbegin(), pieces.rend()};
  }

  std::vector<std::pair<std::string, double>> vocab_;
  std::unordered_map<std::string, int64_t> token_to_id_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, uint32_t> edges_;  // (node << 8 | byte) -> child
  double min_score_ = std::numeric_limits<double>::infinity();
  std::optional<int64_t> unk_id_;
  bool byte_fallback_;
};

}  // namespace

std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab, std::optional<int64_t> unk_id,
                                    bool byte_fallback) {
  return std::make_unique<Unigram>(std::move(vocab), unk_id, byte_fallback);
}

}  // namespace atlas::tokenize::detail
