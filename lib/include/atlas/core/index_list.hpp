#pragma once
/// The one parser of layer / head selections (`--layer`, `--layers`, `--head`, `--heads`, ...):
/// "all", "3", "0,2-4", "-1" (negative indices count from the end). Every subcommand uses it, so a
/// selection means the same thing everywhere.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atlas {

/// Names a selection in errors: the flag ("--layers"), the axis ("layer") and what holds the axis
/// ("the model", "'story.npz'").
struct IndexAxis {
  std::string flag;
  std::string what;
  std::string owner = "the model";
};

/// Parses `spec` into sorted unique indices in [0, count): "all" (or empty) = every index; items
/// separated by commas are an index ("3", "-1" = count-1) or a range "a-b" (both ends included,
/// either end may be negative: "0--1" = all; "-3--1" = the last three). InputError naming the flag,
/// the spec and the valid range: "--layers '7': unknown layer 7 (the model has 5 layers: 0-4, or
/// -5 to -1 from the end)".
std::vector<int64_t> parse_index_list(std::string_view spec, int64_t count, const IndexAxis& axis);

/// Like parse_index_list over an axis that holds only some indices, e.g. a file storing model
/// layers {2, 3, 4}: numbers name the stored indices ("3"), negative ones count from the end of
/// `available` ("-1" = 4), a range selects the stored indices within it. Returns positions into
/// `available` (sorted, unique). InputError naming the flag, the spec and the stored indices.
std::vector<int64_t> select_indices(std::string_view spec, const std::vector<int64_t>& available,
                                    const IndexAxis& axis);

}  // namespace atlas
