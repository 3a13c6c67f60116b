#include <fmt/format.h>

#include "atlas/format/store.hpp"
#include "commands.hpp"

namespace atlas::cli {

Command add_process(CLI::App& app) {
  auto* sub = app.add_subcommand("process", "Work on attention files and stores: cat one document, merge stores");
  sub->require_subcommand(1);
  sub->footer(R"(
Examples:
  atlas process cat store/ 17 -o doc17.npz          # the same NPZ `atlas extract --text` writes
  atlas process merge part-0 part-1 part-2 -o store  # stores of one sharded run (--shard I/N)
  atlas process list store/                          # documents, status, tokens)");

  auto* cat = sub->add_subcommand("cat", "Write one document of a store as a standalone attention NPZ");
  auto cat_store = std::make_shared<std::string>();
  auto cat_doc = std::make_shared<std::string>();
  auto cat_out = std::make_shared<std::string>();
  cat->add_option("store", *cat_store, "Store folder")->required();
  cat->add_option("document", *cat_doc, "Document id (see manifest.jsonl or `atlas process list`)")->required();
  cat->add_option("--output,-o", *cat_out, "Output .npz")->required();

  auto* merge = sub->add_subcommand("merge", "Merge stores of one run (e.g. the parts of --shard I/N) into one store");
  auto merge_in = std::make_shared<std::vector<std::string>>();
  auto merge_out = std::make_shared<std::string>();
  merge->add_option("stores", *merge_in, "Input store folders")->required();
  merge->add_option("--output,-o", *merge_out, "Output store folder (must not exist, or be empty)")->required();

  auto* list = sub->add_subcommand("list", "List a store's documents: id, status, tokens, shard");
  auto list_store = std::make_shared<std::string>();
  list->add_option("store", *list_store, "Store folder")->required();

  return {sub, [=] {
            if (cat->parsed()) {
              format::StoreReader store(*cat_store);
              format::cat_document(store, *cat_doc, *cat_out);
              fmt::print("wrote      {} (document '{}' of {})\n", *cat_out, *cat_doc, *cat_store);
              return 0;
            }
            if (merge->parsed()) {
              std::vector<std::filesystem::path> in(merge_in->begin(), merge_in->end());
              format::MergeSummary m = format::merge_stores(in, *merge_out);
              fmt::print("merged     {} stores: {} documents ({} failed) in {} shard files\n", m.stores, m.documents,
                         m.failed, m.shards);
              fmt::print("wrote      {}\n", *merge_out);
              return 0;
            }
            format::StoreReader store(*list_store);
            fmt::print("{:<24} {:<7} {:>7}  {}\n", "id", "status", "tokens", "shard / error");
            for (const auto& e : store.entries())
              fmt::print("{:<24} {:<7} {:>7}  {}\n", e.id, e.status, e.tokens, e.ok() ? e.shard : e.error);
            fmt::print("{} documents: {} ok, {} failed\n", store.entries().size(), store.ok_count(), store.failed_count());
            return 0;
          }};
}

}  // namespace atlas::cli
