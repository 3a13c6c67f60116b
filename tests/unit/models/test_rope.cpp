// RoPE inverse frequencies and tables for every rope_scaling type, against values computed by hand
// for dim 8, base 10000 (plain inv_freq = 10000^(-i/8) = 1, 0.1, 0.01, 0.001), and the rejection of
// what is not implemented.
#include "models/rope.hpp"

#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "atlas/core/error.hpp"

using namespace atlas;
using models::RotaryEmbedding;

namespace {

RotaryEmbedding rope_of(const nlohmann::json& rope_scaling, int64_t max_position_embeddings = 64) {
  nlohmann::json config = {{"model_type", "llama"}};
  if (!rope_scaling.is_null()) config["rope_scaling"] = rope_scaling;
  models::ConfigReader reader(config, "config.json");
  return RotaryEmbedding::from_hf_json(reader, 8, 10000.0, max_position_embeddings);
}

void check_inv_freq(const at::Tensor& got, const std::vector<double>& want) {
  REQUIRE((got.scalar_type() == at::kFloat));
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[static_cast<int64_t>(i)].item<double>() == doctest::Approx(want[i]).epsilon(2e-7));
  }
}

std::string config_error(const nlohmann::json& rope_scaling) {
  try {
    rope_of(rope_scaling);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError for ", rope_scaling.dump());
  return {};
}

}  // namespace

TEST_CASE("rope: plain inverse frequencies and tables") {
  RotaryEmbedding rope = rope_of(nullptr);
  check_inv_freq(rope.inv_freq(10), {1.0, 0.1, 0.01, 0.001});
  auto [cos, sin] = rope.cos_sin(3, c10::Device(c10::kCPU));
  REQUIRE((cos.sizes().vec() == std::vector<int64_t>{1, 1, 3, 8}));
  // position 2, frequency 0.1 sits at index 1 and (second half) index 5
  CHECK(cos[0][0][2][1].item<double>() == doctest::Approx(std::cos(0.2)).epsilon(1e-6));
  CHECK(sin[0][0][2][5].item<double>() == doctest::Approx(std::sin(0.2)).epsilon(1e-6));
  CHECK(rope.max_positions() == 64);
  CHECK((rope_of({{"type", "default"}}).scaling.type == models::RopeScaling::Type::Default));
}

TEST_CASE("rope: linear scaling divides the positions by factor") {
  RotaryEmbedding rope = rope_of({{"type", "linear"}, {"factor", 4.0}});
  check_inv_freq(rope.inv_freq(10), {1.0, 0.1, 0.01, 0.001});
  auto [cos, sin] = rope.cos_sin(3, c10::Device(c10::kCPU));
  CHECK(cos[0][0][2][0].item<double>() == doctest::Approx(std::cos(0.5)).epsilon(1e-6));
  CHECK(sin[0][0][2][4].item<double>() == doctest::Approx(std::sin(0.5)).epsilon(1e-6));
  // rope_type is the newer spelling of type
  CHECK((rope_of({{"rope_type", "linear"}, {"factor", 4.0}}).scaling.type == models::RopeScaling::Type::Linear));
}

TEST_CASE("rope: dynamic NTK enlarges the base past max_position_embeddings") {
  // base' = 10000 * ((2 * 32 / 16) - 1)^(8/6) = 10000 * 3^(4/3): inv_freq_i = 10000^(-i/8) * 3^(-i/6)
  RotaryEmbedding rope = rope_of({{"type", "dynamic"}, {"factor", 2.0}}, 16);
  check_inv_freq(rope.inv_freq(16), {1.0, 0.1, 0.01, 0.001});  // not longer than max: unchanged
  const std::vector<double> want = {1.0, 0.1 * std::pow(3.0, -1.0 / 3), 0.01 * std::pow(3.0, -2.0 / 3), 0.001 / 3};
  check_inv_freq(rope.inv_freq(32), want);
  rope.dynamic_base_in_float32 = false;  // GPT-NeoX / Phi: the base in double
  check_inv_freq(rope.inv_freq(32), want);
  CHECK(rope.max_positions() == 0);  // it exists to run past the trained context
}

TEST_CASE("rope: llama3 keeps high frequencies, divides low ones by factor, smooths between") {
  // wavelengths 2 pi / inv_freq = 6.28, 62.8, 628, 6283 against low_freq_wavelen 2048 / 1 and
  // high_freq_wavelen 2048 / 4 = 512: the first two are kept, the last divided by 8, the third
  // smoothed with s = (2048 / 628.3 - 1) / (4 - 1) = 0.75316: (1 - s) * 0.01 / 8 + s * 0.01.
  RotaryEmbedding rope = rope_of({{"rope_type", "llama3"},
                                  {"factor", 8.0},
                                  {"low_freq_factor", 1.0},
                                  {"high_freq_factor", 4.0},
                                  {"original_max_position_embeddings", 2048}});
  const double s = (2048 / (2 * M_PI / 0.01) - 1) / 3;
  check_inv_freq(rope.inv_freq(10), {1.0, 0.1, (1 - s) * 0.01 / 8 + s * 0.01, 0.001 / 8});
  CHECK(s == doctest::Approx(0.7531644));
  CHECK(rope.scaling.attention_factor == 1.0);
}

TEST_CASE("rope: yarn blends interpolated and extrapolated frequencies and scales cos/sin") {
  // find_correction_dim(32) = 8 ln(64 / (64 pi)) / (2 ln 10000) = -0.497 -> floor -1 -> 0;
  // find_correction_dim(1) = 8 ln(64 / (2 pi)) / (2 ln 10000) = 1.008 -> ceil 2. ramp over 0..3 =
  // [0, 0.5, 1, 1], extrapolation factor [1, 0.5, 0, 0]: inv_freq = [1, 0.5 * 0.1 / 4 + 0.5 * 0.1,
  // 0.01 / 4, 0.001 / 4]; attention factor 0.1 ln 4 + 1.
  RotaryEmbedding rope = rope_of({{"type", "yarn"}, {"factor", 4.0}});
  check_inv_freq(rope.inv_freq(10), {1.0, 0.0625, 0.0025, 0.00025});
  CHECK(rope.scaling.attention_factor == doctest::Approx(0.1 * std::log(4.0) + 1));
  auto [cos, sin] = rope.cos_sin(2, c10::Device(c10::kCPU));
  CHECK(cos[0][0][0][0].item<double>() == doctest::Approx(0.1 * std::log(4.0) + 1).epsilon(1e-6));
  CHECK(sin[0][0][1][1].item<double>() == doctest::Approx(std::sin(0.0625) * (0.1 * std::log(4.0) + 1)).epsilon(1e-6));
  // attention_factor given; mscale / mscale_all_dim (DeepSeek)
  CHECK(rope_of({{"type", "yarn"}, {"factor", 4.0}, {"attention_factor", 1.5}}).scaling.attention_factor == 1.5);
  CHECK(rope_of({{"type", "yarn"}, {"factor", 4.0}, {"mscale", 1.0}, {"mscale_all_dim", 2.0}})
            .scaling.attention_factor ==
        doctest::Approx((0.1 * std::log(4.0) + 1) / (0.2 * std::log(4.0) + 1)));
  // beta_fast 8: find_correction_dim(8) = 8 ln(64 / (16 pi)) / (2 ln 10000) = 0.105 -> 0; same ramp
  check_inv_freq(rope_of({{"type", "yarn"}, {"factor", 4.0}, {"beta_fast", 8}}).inv_freq(1),
                 {1.0, 0.0625, 0.0025, 0.00025});
  // truncate false: low = 0 (clamped), high = 1.008: ramp [0, 0.992, 1, 1]
  const double high = 8 * std::log(64 / (2 * M_PI)) / (2 * std::log(10000.0));
  const double r1 = 1 / high;
  check_inv_freq(rope_of({{"type", "yarn"}, {"factor", 4.0}, {"truncate", false}}).inv_freq(1),
                 {1.0, 0.025 * r1 + 0.1 * (1 - r1), 0.0025, 0.00025});
  // original_max_position_embeddings that agrees with max_position_embeddings / factor
  check_inv_freq(rope_of({{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}}, 256)
                     .inv_freq(1),
                 {1.0, 0.0625, 0.0025, 0.00025});
}

TEST_CASE("rope: what is not implemented is a ConfigError naming the key and the value") {
  auto mentions = [](const std::string& message, const std::vector<std::string>& parts) {
    MESSAGE(message);
    for (const auto& p : parts) CHECK_MESSAGE(message.find(p) != std::string::npos, "missing '", p, "'");
  };
  mentions(config_error({{"type", "longrope"}, {"factor", 4.0}}), {"rope_scaling.type", "'longrope'", "'yarn'"});
  mentions(config_error({{"type", "linear"}}), {"rope_scaling.factor", "no such key"});
  mentions(config_error({{"type", "linear"}, {"factor", -1.0}}), {"rope_scaling.factor", "positive"});
  mentions(config_error({{"type", "linear"}, {"factor", 2.0}, {"low_freq_factor", 1.0}}),
           {"rope_scaling.low_freq_factor", "'linear'", "1.0"});
  mentions(config_error({{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}}),
           {"rope_scaling.original_max_position_embeddings", "no such key"});
  mentions(config_error({{"type", "linear"}, {"rope_type", "dynamic"}, {"factor", 2.0}}),
           {"rope_scaling.rope_type", "'linear'", "'dynamic'"});
  mentions(config_error({{"type", "yarn"}, {"factor", 16.0}, {"original_max_position_embeddings", 8}}),
           {"rope_scaling.original_max_position_embeddings", "8", "disagree"});
  mentions(config_error(nlohmann::json::array({1, 2})), {"rope_scaling", "an object"});
}
