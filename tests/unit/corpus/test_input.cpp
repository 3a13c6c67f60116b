// Document input: text, JSONL, CSV, TSV and standard input; --shard; ids in NPZ member names.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "atlas/core/error.hpp"
#include "atlas/corpus/input.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::corpus;

namespace {

fs::path write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::path p = dir / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::vector<Document> read_all(const InputOptions& options) {
  DocumentReader reader(options);
  std::vector<Document> docs;
  while (auto d = reader.next()) docs.push_back(std::move(*d));
  return docs;
}

std::vector<Document> read_all(const fs::path& path, InputFormat format = InputFormat::Auto) {
  InputOptions o;
  o.path = path;
  o.format = format;
  return read_all(o);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Points file descriptor 0 somewhere else for one scope.
class StdinRedirect {
 public:
  explicit StdinRedirect(int fd) : saved_(::dup(STDIN_FILENO)) {
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    ::close(fd);
  }
  explicit StdinRedirect(const fs::path& file) : StdinRedirect(::open(file.c_str(), O_RDONLY)) {}
  ~StdinRedirect() {
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
  }

 private:
  int saved_;
};

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

TEST_CASE("parse_input_format accepts the documented names in any case") {
  CHECK(parse_input_format("auto") == InputFormat::Auto);
  CHECK(parse_input_format("text") == InputFormat::Text);
  CHECK(parse_input_format("txt") == InputFormat::Text);
  CHECK(parse_input_format("jsonl") == InputFormat::Jsonl);
  CHECK(parse_input_format("NDJSON") == InputFormat::Jsonl);
  CHECK(parse_input_format("CSV") == InputFormat::Csv);
  CHECK(parse_input_format("tsv") == InputFormat::Tsv);
  std::string msg = message_of([] { parse_input_format("xml"); });
  CHECK(contains(msg, "'xml'"));
  CHECK(contains(msg, "auto, text, jsonl, csv or tsv"));
  CHECK_THROWS_AS(parse_input_format(""), InputError);
  CHECK(input_format_name(InputFormat::Jsonl) == "jsonl");
}

TEST_CASE("auto format follows the extension; anything else is text") {
  auto dir = test::scratch_dir("corpus_auto");
  auto format_of = [&](const std::string& name) {
    InputOptions o;
    o.path = write(dir, name, "text\n");  // CSV and TSV need a header row
    return DocumentReader(o).format();
  };
  CHECK(format_of("a.txt") == InputFormat::Text);
  CHECK(format_of("a.text") == InputFormat::Text);
  CHECK(format_of("a.jsonl") == InputFormat::Jsonl);
  CHECK(format_of("a.ndjson") == InputFormat::Jsonl);
  CHECK(format_of("a.tsv") == InputFormat::Tsv);
  CHECK(format_of("a.tab") == InputFormat::Tsv);
  CHECK(format_of("A.JSONL") == InputFormat::Jsonl);
  CHECK(format_of("notes.md") == InputFormat::Text);
  CHECK(format_of("noext") == InputFormat::Text);
  CHECK(format_of("a.CSV") == InputFormat::Csv);
  InputOptions o;
  // An explicit format wins over the extension.
  o.path = write(dir, "b.csv", "x\n");
  o.format = InputFormat::Text;
  CHECK(DocumentReader(o).format() == InputFormat::Text);
}

TEST_CASE("text: one document per line, ids are line numbers") {
  auto dir = test::scratch_dir("corpus_text");
  SUBCASE("final newline does not add a document") {
    auto docs = read_all(write(dir, "a.txt", "first\nsecond\nthird\n"));
    REQUIRE(docs.size() == 3);
    for (size_t i = 0; i < docs.size(); ++i) {
      CHECK(docs[i].id == std::to_string(i + 1));
      CHECK(docs[i].ordinal == int64_t(i));
      CHECK(docs[i].line == int64_t(i + 1));
      CHECK(docs[i].error.empty());
      CHECK_FALSE(docs[i].ids.has_value());
    }
    CHECK(*docs[0].text == "first");
    CHECK(*docs[2].text == "third");
  }
  SUBCASE("no final newline") {
    auto docs = read_all(write(dir, "a.txt", "first\nsecond"));
    REQUIRE(docs.size() == 2);
    CHECK(*docs[1].text == "second");
  }
  SUBCASE("CRLF line ends are removed, a lone CR inside a line is kept") {
    auto docs = read_all(write(dir, "a.txt", "one\r\ntwo\rx\r\n"));
    REQUIRE(docs.size() == 2);
    CHECK(*docs[0].text == "one");
    CHECK(*docs[1].text == "two\rx");
  }
  SUBCASE("an empty line in the middle is an empty document, so ids stay line numbers") {
    auto docs = read_all(write(dir, "a.txt", "a\n\nc\n"));
    REQUIRE(docs.size() == 3);
    CHECK(*docs[1].text == "");
    CHECK(docs[1].id == "2");
    CHECK(docs[1].error.empty());  // the engine reports "empty document"
    CHECK(*docs[2].text == "c");
    CHECK(docs[2].id == "3");
  }
  SUBCASE("a UTF-8 byte-order mark is skipped") {
    auto docs = read_all(write(dir, "a.txt", "\xEF\xBB\xBFh\xC3\xA9llo\nb\n"));
    REQUIRE(docs.size() == 2);
    CHECK(*docs[0].text == "h\xC3\xA9llo");
  }
  SUBCASE("an empty file has no documents") { CHECK(read_all(write(dir, "a.txt", "")).empty()); }
  SUBCASE("whitespace is kept as written") {
    auto docs = read_all(write(dir, "a.txt", "  padded \t\n"));
    REQUIRE(docs.size() == 1);
    CHECK(*docs[0].text == "  padded \t");
  }
}

TEST_CASE("text: invalid UTF-8 makes that record bad, with its id, and reading goes on") {
  auto dir = test::scratch_dir("corpus_text_utf8");
  auto docs = read_all(write(dir, "a.txt",
                             "good\nab\xFF"
                             "cd\nalso good\n"));
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].error.empty());
  CHECK(docs[1].id == "2");
  CHECK(docs[1].error == "line 2: invalid UTF-8 at byte offset 2");
  CHECK_FALSE(docs[1].text.has_value());
  CHECK(docs[2].error.empty());
  CHECK(*docs[2].text == "also good");
}

TEST_CASE("files that cannot be read are InputError naming the file") {
  auto dir = test::scratch_dir("corpus_open");
  std::string msg = message_of([&] { read_all(dir / "missing.txt"); });
  CHECK(contains(msg, "missing.txt"));
  CHECK(contains(msg, "No such file"));
  msg = message_of([&] { read_all(dir); });
  CHECK(contains(msg, "is a directory"));
  msg = message_of([&] { read_all(write(dir, "a.txt.gz", std::string("\x1F\x8B\x08\x00", 4))); });
  CHECK(contains(msg, "gzip"));
  msg = message_of([&] { read_all(write(dir, "u16.txt", std::string("\xFF\xFEh\0", 4))); });
  CHECK(contains(msg, "UTF-16"));
  msg = message_of([&] { read_all(InputOptions{}); });
  CHECK(contains(msg, "no input file"));
  // An id field would be silently meaningless for plain text, where ids are line numbers.
  InputOptions o;
  o.path = write(dir, "a.txt", "x\n");
  o.id_field = "id";
  CHECK(contains(message_of([&] { read_all(o); }), "plain-text"));
}

TEST_CASE("jsonl: text, ids given as string or integer, blank lines skipped but counted") {
  auto dir = test::scratch_dir("corpus_jsonl");
  auto path = write(dir, "a.jsonl",
                    "{\"id\": \"doc-a\", \"text\": \"Hello\"}\n"
                    "\n"
                    "   \r\n"
                    "{\"id\": 42, \"text\": \"caf\\u00e9 \\\"quoted\\\"\"}\r\n"
                    "{\"id\": \"p\", \"ids\": [15496, 0, 11]}\n"
                    "{\"id\": \"both\", \"text\": \"t\", \"ids\": [1]}");
  InputOptions o;
  o.path = path;
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 4);
  CHECK(docs[0].id == "doc-a");
  CHECK(*docs[0].text == "Hello");
  CHECK(docs[0].line == 1);
  CHECK(docs[1].id == "42");
  CHECK(*docs[1].text == "caf\xC3\xA9 \"quoted\"");
  CHECK(docs[1].line == 4);
  CHECK(docs[1].ordinal == 1);
  CHECK_FALSE(docs[2].text.has_value());
  REQUIRE(docs[2].ids.has_value());
  CHECK(*docs[2].ids == std::vector<int64_t>{15496, 0, 11});
  CHECK(docs[2].line == 5);
  CHECK(*docs[3].text == "t");  // the text field wins over "ids"
  CHECK_FALSE(docs[3].ids.has_value());
  for (const auto& d : docs) CHECK(d.error.empty());

  SUBCASE("without id_field the ids are record numbers, not line numbers") {
    o.id_field.clear();
    auto plain = read_all(o);
    REQUIRE(plain.size() == 4);
    CHECK(plain[1].id == "2");
    CHECK(plain[3].id == "4");
  }
  SUBCASE("another text field") {
    auto docs2 = read_all([&] {
      InputOptions o2;
      o2.path = write(dir, "b.jsonl", "{\"body\": \"B\", \"text\": \"T\"}\n");
      o2.text_field = "body";
      return o2;
    }());
    REQUIRE(docs2.size() == 1);
    CHECK(*docs2[0].text == "B");
  }
}

TEST_CASE("jsonl: a bad record names its line and key, and reading goes on") {
  auto dir = test::scratch_dir("corpus_jsonl_bad");
  auto path = write(dir, "bad.jsonl",
                    "{\"id\": \"a\", \"text\": \"fine\"}\n"        // 1
                    "{\"id\": \"b\", \"text\": \"unterminated}\n"  // 2
                    "[1, 2]\n"                                     // 3
                    "{\"id\": \"c\", \"text\": 5}\n"               // 4
                    "{\"id\": 1.5, \"text\": \"x\"}\n"             // 5
                    "{\"text\": \"no id\"}\n"                      // 6
                    "{\"id\": \"d\", \"body\": \"x\"}\n"           // 7
                    "{\"id\": \"e\", \"ids\": [1, -2]}\n"          // 8
                    "{\"id\": \"f\", \"ids\": [1, 2.5]}\n"         // 9
                    "{\"id\": \"g\", \"ids\": \"1 2\"}\n"          // 10
                    "{\"id\": \"a\", \"text\": \"again\"}\n"       // 11
                    "{\"id\": \"h\", \"text\": \"b\xC3\"}\n"       // 12
                    "{\"id\": \"\", \"text\": \"x\"}\n"            // 13
                    "{}\n"                                         // 14
                    "{\"id\": \"z\", \"text\": \"last\"}\n");      // 15
  InputOptions o;
  o.path = path;
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 15);
  CHECK(docs[0].error.empty());
  CHECK(contains(docs[1].error, "line 2: invalid JSON at column"));
  CHECK(docs[2].error == "line 3: expected a JSON object, got array");
  CHECK(docs[3].error == "line 4: field 'text' must be a string, got number");
  CHECK(docs[3].id == "c");  // the id is known even though the text is bad
  CHECK(docs[4].error == "line 5: field 'id' must be a string or an integer, got number 1.5");
  CHECK(docs[5].error == "line 6: no field 'id' (has: text)");
  CHECK(docs[6].error == "line 7: no field 'text' (has: id, body)");
  CHECK(docs[7].error == "line 8: field 'ids' element 1 must be a non-negative integer, got -2");
  CHECK(docs[8].error == "line 9: field 'ids' element 1 must be a non-negative integer, got 2.5");
  CHECK(docs[9].error == "line 10: field 'ids' must be an array of token ids, got string");
  CHECK(docs[10].error == "line 11: duplicate document id 'a' (first at line 1)");
  CHECK(docs[10].id == "a");
  CHECK(docs[11].error == "line 12: invalid UTF-8 at byte offset 22");
  CHECK(docs[12].error == "line 13: field 'id' is empty");
  CHECK(docs[13].error == "line 14: no field 'id' (has: no fields)");
  CHECK(docs[14].error.empty());
  CHECK(*docs[14].text == "last");
  for (size_t i = 0; i < docs.size(); ++i) {
    CHECK(docs[i].line == int64_t(i + 1));
    CHECK(docs[i].ordinal == int64_t(i));
    if (!docs[i].error.empty()) {
      CHECK_FALSE(docs[i].text.has_value());  // a bad record carries no content
      CHECK_FALSE(docs[i].ids.has_value());
    }
  }
  // A failed record without a usable id falls back to its record number.
  CHECK(docs[2].id == "3");
}

TEST_CASE("csv: RFC 4180 quoting, header by name, id column, line where each record starts") {
  auto dir = test::scratch_dir("corpus_csv");
  auto path = write(dir, "a.csv",
                    "\xEF\xBB\xBF"
                    "id,text,label\r\n"
                    "a,plain,1\r\n"
                    "b,\"with, comma\",2\r\n"
                    "c,\"two\r\nlines and \"\"quotes\"\"\",3\r\n"
                    "d,\"\",4\r\n"
                    "\r\n"
                    "e,last,5");
  InputOptions o;
  o.path = path;
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 5);
  CHECK(docs[0].id == "a");
  CHECK(*docs[0].text == "plain");
  CHECK(docs[0].line == 2);
  CHECK(*docs[1].text == "with, comma");
  CHECK(*docs[2].text == "two\r\nlines and \"quotes\"");
  CHECK(docs[2].line == 4);
  CHECK(*docs[3].text == "");  // a quoted empty field is a (empty) document
  CHECK(docs[3].line == 6);
  CHECK(docs[4].id == "e");  // the blank line 7 is not a record
  CHECK(docs[4].line == 8);
  CHECK(docs[4].ordinal == 4);
  for (const auto& d : docs) CHECK(d.error.empty());

  SUBCASE("column by 0-based index, ids are record numbers") {
    o.id_field.clear();
    o.column = "2";
    auto by_index = read_all(o);
    REQUIRE(by_index.size() == 5);
    CHECK(*by_index[0].text == "1");
    CHECK(by_index[4].id == "5");
  }
  SUBCASE("no header row: every row is a record, columns are indices") {
    InputOptions n;
    n.path = write(dir, "nohead.csv", "x,first\ny,second\n");
    n.header = false;
    n.column = "1";
    n.id_field = "0";
    auto rows = read_all(n);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].id == "x");
    CHECK(*rows[0].text == "first");
    CHECK(rows[0].line == 1);
  }
  SUBCASE("a header name made of digits wins over the index reading") {
    InputOptions d;
    d.path = write(dir, "digits.csv", "a,0\nA,B\n");
    d.column = "0";
    auto rows = read_all(d);
    REQUIRE(rows.size() == 1);
    CHECK(*rows[0].text == "B");
  }
}

TEST_CASE("csv: header problems are InputError in the constructor") {
  auto dir = test::scratch_dir("corpus_csv_header");
  InputOptions o;
  o.path = write(dir, "a.csv", "id,body,label\nx,y,z\n");
  std::string msg = message_of([&] { DocumentReader r(o); });
  CHECK(contains(msg, "a.csv"));
  CHECK(contains(msg, "no text column 'text'"));
  CHECK(contains(msg, "(columns: id, body, label)"));
  o.column = "body";
  o.id_field = "ident";
  CHECK(contains(message_of([&] { DocumentReader r(o); }), "no id column 'ident'"));
  o.id_field.clear();
  o.column = "7";
  CHECK(contains(message_of([&] { DocumentReader r(o); }),
                 "index 7 is out of range: the header has 3 columns"));
  o.header = false;
  o.column = "body";
  CHECK(contains(message_of([&] { DocumentReader r(o); }), "must be a 0-based index"));
  InputOptions e;
  e.path = write(dir, "empty.csv", "");
  CHECK(contains(message_of([&] { DocumentReader r(e); }), "expected a header row"));
  e.path = write(dir, "dup.csv", "text,text\na,b\n");
  CHECK(contains(message_of([&] { DocumentReader r(e); }), "appears 2 times"));
  e.path = write(dir, "open.csv", "\"text\n");
  CHECK(contains(message_of([&] { DocumentReader r(e); }), "unterminated quoted field"));
}

TEST_CASE("csv: short rows, text after a closing quote, unterminated quote at the end, duplicate ids") {
  auto dir = test::scratch_dir("corpus_csv_bad");
  InputOptions o;
  o.path = write(dir, "bad.csv",
                 "id,text\n"
                 "a,fine\n"          // 2
                 "b\n"               // 3: no text field
                 "c,\"x\"y\n"        // 4
                 "a,again\n"         // 5
                 "d,bad\xC0\x80\n"   // 6: overlong encoding
                 ",no id\n"          // 7
                 "e,\"open\nmore");  // 8: never closed
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 7);
  CHECK(docs[0].error.empty());
  CHECK(docs[1].error == "line 3: row has 1 field, but column 'text' is field 2");
  CHECK(docs[1].id == "b");
  CHECK(docs[2].error == "line 4: unexpected text after the closing quote of field 2");
  CHECK(docs[3].error == "line 5: duplicate document id 'a' (first at line 2)");
  CHECK(docs[4].error == "line 6: invalid UTF-8 at byte offset 3 in column 'text'");
  CHECK(docs[5].error == "line 7: empty id in column 'id'");
  CHECK(docs[5].id == "6");
  CHECK(docs[6].error == "line 8: unterminated quoted field (the quote opened at line 8)");
  CHECK(docs[6].line == 8);
}

TEST_CASE("csv: many records across buffer boundaries round-trip") {
  auto dir = test::scratch_dir("corpus_csv_big");
  std::string csv = "id,text\n";
  std::vector<std::string> texts;
  for (int i = 0; i < 3000; ++i) {
    std::string t = "doc " + std::to_string(i) + std::string(size_t(i % 97), 'x');
    if (i % 3 == 0) t += ", comma";
    if (i % 5 == 0) t += " \"q\"";
    if (i % 7 == 0) t += "\nsecond line";
    texts.push_back(t);
    csv += "id" + std::to_string(i) + "," + csv_quote(t) + (i % 2 ? "\r\n" : "\n");
  }
  csv += "big," + std::string(200000, 'y') + "\n";  // longer than the read buffer
  InputOptions o;
  o.path = write(dir, "big.csv", csv);
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 3001);
  int64_t line = 2;
  for (int i = 0; i < 3000; ++i) {
    CHECK(docs[size_t(i)].id == "id" + std::to_string(i));
    CHECK(*docs[size_t(i)].text == texts[size_t(i)]);
    CHECK(docs[size_t(i)].line == line);
    line += (i % 7 == 0) ? 2 : 1;
  }
  CHECK(docs.back().text->size() == 200000);
}

TEST_CASE("tsv: tab-separated, literal by default, optional PostgreSQL escapes") {
  auto dir = test::scratch_dir("corpus_tsv");
  auto path = write(dir, "a.tsv",
                    "id\ttext\r\n"
                    "a\tC:\\new\\table \"as is\"\r\n"
                    "\n"
                    "b\tone\\ttwo\\nthree\\\\\\x\n"
                    "c\n");
  InputOptions o;
  o.path = path;
  o.id_field = "id";
  auto docs = read_all(o);
  REQUIRE(docs.size() == 3);
  CHECK(*docs[0].text == "C:\\new\\table \"as is\"");
  CHECK(*docs[1].text == "one\\ttwo\\nthree\\\\\\x");
  CHECK(docs[1].line == 4);
  CHECK(docs[2].error == "line 5: row has 1 field, but column 'text' is field 2");
  o.tsv_escapes = true;
  docs = read_all(o);
  REQUIRE(docs.size() == 3);
  CHECK(*docs[1].text == "one\ttwo\nthree\\\\x");
}

TEST_CASE("standard input works for every format") {
  auto dir = test::scratch_dir("corpus_stdin");
  InputOptions o;
  o.path = "-";
  SUBCASE("text (also what auto means for stdin)") {
    StdinRedirect in(write(dir, "in.txt", "a\nb\n"));
    DocumentReader r(o);
    CHECK(r.source_name() == "<stdin>");
    CHECK(r.format() == InputFormat::Text);
    auto d = r.next();
    REQUIRE(d);
    CHECK(*d->text == "a");
    REQUIRE(r.next());
    CHECK_FALSE(r.next());
  }
  SUBCASE("jsonl") {
    StdinRedirect in(write(dir, "in.jsonl", "{\"text\": \"j\"}\n"));
    o.format = InputFormat::Jsonl;
    auto docs = read_all(o);
    REQUIRE(docs.size() == 1);
    CHECK(*docs[0].text == "j");
  }
  SUBCASE("csv") {
    StdinRedirect in(write(dir, "in.csv", "text\n\"c,1\"\n"));
    o.format = InputFormat::Csv;
    auto docs = read_all(o);
    REQUIRE(docs.size() == 1);
    CHECK(*docs[0].text == "c,1");
  }
  SUBCASE("tsv") {
    StdinRedirect in(write(dir, "in.tsv", "n\ttext\n1\tt\n"));
    o.format = InputFormat::Tsv;
    auto docs = read_all(o);
    REQUIRE(docs.size() == 1);
    CHECK(*docs[0].text == "t");
  }
  SUBCASE("errors name <stdin>") {
    StdinRedirect in(write(dir, "in.csv", "a,b\n"));
    o.format = InputFormat::Csv;
    CHECK(contains(message_of([&] { DocumentReader r(o); }), "<stdin>: no text column"));
  }
}

TEST_CASE("streaming: a document is handed on before the input ends") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::atomic<bool> got_first{false};
  std::atomic<bool> closed_early{false};
  std::thread writer([&] {
    const char first[] = "first line\n";
    CHECK(::write(fds[1], first, sizeof first - 1) == ssize_t(sizeof first - 1));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!got_first && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    closed_early = !got_first;
    const char rest[] = "second\n";
    CHECK(::write(fds[1], rest, sizeof rest - 1) == ssize_t(sizeof rest - 1));
    ::close(fds[1]);
  });
  {
    StdinRedirect in(fds[0]);
    InputOptions o;
    o.path = "-";
    DocumentReader r(o);
    auto d = r.next();
    got_first = true;
    REQUIRE(d);
    CHECK(*d->text == "first line");
    auto e = r.next();
    REQUIRE(e);
    CHECK(*e->text == "second");
    CHECK_FALSE(r.next());
  }
  writer.join();
  CHECK_FALSE(closed_early);  // the reader did not wait for the end of the input
}

TEST_CASE("parse_shard and ShardSpec::contains partition the ordinals") {
  ShardSpec s = parse_shard("1/4");
  CHECK(s.index == 1);
  CHECK(s.count == 4);
  CHECK(parse_shard("0/1").contains(12345));
  std::vector<int> owner(100, -1);
  for (int i = 0; i < 3; ++i) {
    ShardSpec k = parse_shard(std::to_string(i) + "/3");
    for (int64_t ord = 0; ord < 100; ++ord)
      if (k.contains(ord)) {
        CHECK(owner[size_t(ord)] == -1);
        owner[size_t(ord)] = i;
      }
  }
  for (int64_t ord = 0; ord < 100; ++ord) CHECK(owner[size_t(ord)] == int(ord % 3));

  for (const char* bad :
       {"4/4", "5/4", "1", "", "/4", "1/", "a/b", "-1/4", "1/-4", "0/0", " 1/4", "1/4/2", "1/99999999999"}) {
    CAPTURE(bad);
    std::string msg = message_of([&] { parse_shard(bad); });
    CHECK(contains(msg, std::string("'") + bad + "'"));
    CHECK(contains(msg, "I/N"));
  }
  CHECK(contains(message_of([] { parse_shard("4/4"); }), "0 <= I < N"));
  CHECK(contains(message_of([] { parse_shard("0/0"); }), "at least 1"));
}

