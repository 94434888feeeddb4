// DATA dot-unstuffing, end detection across every buffer split, and limits.
#include <doctest.h>

#include <string>

#include "mxguard/smtp/data_reader.hpp"

using mxguard::smtp::DataReader;

namespace {
struct Outcome {
  std::string content;
  size_t consumed = 0;
  bool done = false;
  DataReader reader{{1 << 20, 1000}};
};

// Feeds `wire` in pieces of `step` bytes; stops at the end of data.
Outcome feed_in_steps(const std::string& wire, size_t step, DataReader::Limits lim = {1 << 20, 1000}) {
  Outcome o;
  o.reader = DataReader(lim);
  for (size_t off = 0; off < wire.size() && !o.reader.done(); off += step) {
    std::string_view piece = std::string_view(wire).substr(off, step);
    size_t used = o.reader.feed_dot(piece, o.content);
    o.consumed += used;
    if (used < piece.size()) CHECK(o.reader.done());
  }
  o.done = o.reader.done();
  return o;
}
}  // namespace

TEST_CASE("data: unstuffing and end-of-data at every split point") {
  const std::string wire = "Subject: x\r\n\r\n..leading dot\r\n.x\r\nnot end\r\n...\r\n. \r\nlast\r\n.\r\nNEXT COMMAND\r\n";
  const std::string expect = "Subject: x\r\n\r\n.leading dot\r\nx\r\nnot end\r\n..\r\n \r\nlast\r\n";
  for (size_t step = 1; step <= wire.size(); ++step) {
    CAPTURE(step);
    Outcome o = feed_in_steps(wire, step);
    CHECK(o.done);
    CHECK(o.content == expect);
    CHECK(o.consumed == wire.size() - std::string("NEXT COMMAND\r\n").size());
  }
}

TEST_CASE("data: empty message and dot-only first line") {
  Outcome o = feed_in_steps(".\r\n", 1);
  CHECK(o.done);
  CHECK(o.content.empty());
  o = feed_in_steps("..\r\n.\r\n", 2);
  CHECK(o.done);
  CHECK(o.content == ".\r\n");
}

TEST_CASE("data: bare LF never ends data and is flagged") {
  Outcome o = feed_in_steps("a\n.\nb\r\n.\r\n", 3);
  CHECK(o.done);
  CHECK(o.reader.bare_lf());
  o = feed_in_steps("a\r\n.\nb\r\n.\r\n", 1);
  CHECK(o.done);
  CHECK(o.reader.bare_lf());
  o = feed_in_steps("clean\r\n.\r\n", 4);
  CHECK_FALSE(o.reader.bare_lf());
}

TEST_CASE("data: smuggling sequences do not terminate") {
  // <LF>.<CR><LF> and <CR>.<CR><LF> are not CRLF.CRLF.
  Outcome o = feed_in_steps("a\n.\r\nMAIL FROM:<x@y>\r\n", 1);
  CHECK_FALSE(o.done);
  o = feed_in_steps("a\r.\r\nMAIL FROM:<x@y>\r\n", 1);
  CHECK_FALSE(o.done);
}

TEST_CASE("data: size limit counts but does not store") {
  std::string body(5000, 'x');
  std::string wire = body + "\r\n.\r\n";
  Outcome o = feed_in_steps(wire, 700, {1000, 100000});
  CHECK(o.done);
  CHECK(o.reader.too_big());
  CHECK(o.content.size() <= 1000);
  CHECK(o.reader.size() == body.size() + 2);
}

TEST_CASE("data: line length limit includes CRLF") {
  std::string ok_line(998, 'a');
  Outcome o = feed_in_steps(ok_line + "\r\n.\r\n", 97);
  CHECK_FALSE(o.reader.line_too_long());
  std::string long_line(999, 'a');
  o = feed_in_steps(long_line + "\r\n.\r\n", 97);
  CHECK(o.reader.line_too_long());
  CHECK(o.done);
}

TEST_CASE("bdat: raw chunks keep dots and flag bare LF across chunks") {
  DataReader r({1 << 20, 1000});
  std::string out;
  r.feed_raw(".line\r", out);
  r.feed_raw("\n.\r\n", out);
  CHECK(out == ".line\r\n.\r\n");
  CHECK_FALSE(r.bare_lf());
  r.feed_raw("x\ny", out);
  CHECK(r.bare_lf());
}

TEST_CASE("data: a NUL anywhere is flagged, at every split point") {
  // RFC 5321 without BINARYMIME allows no NUL; a backend that drops NULs
  // before it looks for the end of data would see "<CRLF>.<CRLF>" here.
  using namespace std::string_literals;
  const std::string smuggle = "a\r\n\0.\r\nMAIL FROM:<x@y>\r\n.\r\n"s;
  for (size_t step = 1; step <= smuggle.size(); ++step) {
    CAPTURE(step);
    Outcome o = feed_in_steps(smuggle, step);
    CHECK(o.done);
    CHECK(o.reader.nul());
    CHECK_FALSE(o.reader.bare_lf());
  }
  // In the stuffed-dot position, after a CR, and past the size limit.
  CHECK(feed_in_steps(".\0x\r\n.\r\n"s, 1).reader.nul());
  CHECK(feed_in_steps("a\r\0\n\r\n.\r\n"s, 2).reader.nul());
  CHECK(feed_in_steps(std::string(3000, 'x') + "\0\r\n.\r\n"s, 700, {1000, 100000}).reader.nul());
  // 8-bit content without NUL is not flagged.
  Outcome clean = feed_in_steps("caf\xc3\xa9 \xff\x01\x7f\r\n.\r\n", 3);
  CHECK(clean.done);
  CHECK_FALSE(clean.reader.nul());
}

TEST_CASE("bdat: a NUL in a chunk is flagged") {
  using namespace std::string_literals;
  DataReader r({1 << 20, 1000});
  std::string out;
  r.feed_raw("caf\xc3\xa9\r\n", out);
  CHECK_FALSE(r.nul());
  r.feed_raw("a\r\n\0.\r\n"s, out);
  CHECK(r.nul());
}
