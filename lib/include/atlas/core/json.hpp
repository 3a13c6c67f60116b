#pragma once
/// JSON from files a user may have downloaded (config.json, tokenizer.json, safetensors headers, corpus
/// manifest lines): nlohmann's parser with a nesting limit, so `[[[[...` a million deep is a clear
/// FormatError instead of a stack overflow later (dump() and friends recurse; the parser itself does not).
#include <nlohmann/json.hpp>

#include <string>
#include <utility>

#include "atlas/core/error.hpp"

namespace atlas {

/// Deepest nesting of arrays/objects accepted (docs/limits.md). Real configs and tokenizers nest < 10.
constexpr int kMaxJsonDepth = 256;

/// Json::parse(input) with the depth limit (checked through the parser callback, so nothing deeper
/// is built). Syntax errors are nlohmann's parse_error as before (or a discarded value when
/// `allow_exceptions` is false); too deep, or a number outside double's range (`1e400`, which
/// nlohmann reports as out_of_range, not parse_error, so callers' parse_error handlers miss it), is
/// FormatError naming `what`.
template <class Json = nlohmann::json, class Input>
Json parse_json(Input&& input, const std::string& what, bool allow_exceptions = true) {
  typename Json::parser_callback_t limit = [&what](int depth, typename Json::parse_event_t event, Json&) {
    if (depth >= kMaxJsonDepth &&
        (event == Json::parse_event_t::array_start || event == Json::parse_event_t::object_start))
      ATLAS_FAIL(FormatError, "{}: JSON nests deeper than {} levels (limit, docs/limits.md)", what,
                 kMaxJsonDepth);
    return true;
  };
  try {
    return Json::parse(std::forward<Input>(input), limit, allow_exceptions);
  } catch (const typename Json::out_of_range& e) {
    ATLAS_FAIL(FormatError, "{}: invalid JSON: {}", what, e.what());
  }
}

}  // namespace atlas
