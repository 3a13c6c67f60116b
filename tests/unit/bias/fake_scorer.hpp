#pragma once
// A Scorer without a model, for the metric tests: words are tokens (ids from a fixed dictionary,
// [CLS] = 2 and [SEP] = 3 around masked-LM encodings, BOS = 1 for causal ones), and the
// log-probability of a pick is a fixed function of the query, so expected scores can be computed by hand.
#include <map>
#include <sstream>

#include "atlas/extract/scorer.hpp"

namespace atlas::test {

class FakeScorer final : public extract::Scorer {
 public:
  explicit FakeScorer(bool causal) {
    info_.causal = causal;
    info_.masked = !causal;
    info_.bos_id = causal ? 1 : -1;
    info_.mask_id = causal ? -1 : 4;
    info_.model_class = causal ? "FakeForCausalLM" : "FakeForMaskedLM";
    info_.vocab_size = 1000;
    info_.num_layers = 2;
    info_.num_heads = 2;
  }
  const extract::ScorerInfo& info() const override { return info_; }
  extract::ScorerInfo& mutable_info() { return info_; }

  int64_t id_of(const std::string& w) {
    auto it = vocab_.find(w);
    if (it != vocab_.end()) return it->second;
    const auto id = static_cast<int64_t>(10 + vocab_.size());
    vocab_[w] = id;
    return id;
  }

  tokenize::Encoding encode(const std::string& text, bool add_special) const override {
    tokenize::Encoding e;
    auto push = [&](int64_t id, bool sp, int64_t b, int64_t en) {
      e.ids.push_back(id);
      e.tokens.push_back(std::to_string(id));
      e.special_mask.push_back(sp ? 1 : 0);
      e.offsets.emplace_back(b, en);
      e.type_ids.push_back(0);
    };
    if (add_special) push(info_.causal ? 1 : 2, true, 0, 0);
    std::istringstream in(text);
    std::string w;
    int64_t pos = 0;
    while (in >> w) {
      const auto at = static_cast<int64_t>(text.find(w, static_cast<size_t>(pos)));
      push(const_cast<FakeScorer*>(this)->id_of(w), false, at, at + static_cast<int64_t>(w.size()));
      pos = at + static_cast<int64_t>(w.size());
    }
    if (add_special && !info_.causal) push(3, true, 0, 0);
    return e;
  }
  std::string token_text(int64_t id) const override {
    for (const auto& [w, i] : vocab_)
      if (i == id) return w;
    return "?";
  }

  /// log p = -0.01 * token - 0.001 * (sum of the query's ids); position-independent but
  /// context-dependent.
  static double lp(const extract::ScoreQuery& q, int64_t token) {
    int64_t s = 0;
    for (int64_t id : q.ids) s += id;
    return -0.01 * static_cast<double>(token) - 0.001 * static_cast<double>(s);
  }

  std::vector<std::vector<double>> log_probs(const std::vector<extract::ScoreQuery>& queries, int64_t,
                                             const extract::ScoreProgress& progress) override {
    std::vector<std::vector<double>> out;
    for (const auto& q : queries) {
      seen.push_back(q);
      std::vector<double> r;
      for (const auto& [pos, tok] : q.picks) r.push_back(lp(q, tok));
      out.push_back(r);
    }
    if (progress) progress(static_cast<int64_t>(queries.size()), static_cast<int64_t>(queries.size()));
    return out;
  }

  /// Attention: uniform over the keys a query may see, plus `boost` on key `boost_key` of every head
  /// of layer 1 (renormalised).
  std::vector<extract::SequenceAttention> attention(const std::vector<std::vector<int64_t>>& seqs, int64_t) override {
    std::vector<extract::SequenceAttention> out;
    for (const auto& s : seqs) {
      extract::SequenceAttention a;
      a.layers = info_.num_layers;
      a.heads = info_.num_heads;
      a.tokens = static_cast<int64_t>(s.size());
      a.values.assign(static_cast<size_t>(a.layers * a.heads * a.tokens * a.tokens), 0.f);
      for (int64_t l = 0; l < a.layers; ++l)
        for (int64_t h = 0; h < a.heads; ++h)
          for (int64_t q = 0; q < a.tokens; ++q) {
            const int64_t kmax = info_.causal ? q + 1 : a.tokens;
            for (int64_t k = 0; k < kmax; ++k)
              a.values[static_cast<size_t>(((l * a.heads + h) * a.tokens + q) * a.tokens + k)] =
                  1.f / static_cast<float>(kmax);
          }
      out.push_back(std::move(a));
    }
    return out;
  }

  std::vector<extract::ScoreQuery> seen;

 private:
  extract::ScorerInfo info_;
  std::map<std::string, int64_t> vocab_;
};

}  // namespace atlas::test
