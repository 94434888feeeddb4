// RDATA parsers (TXT, MX, TLSA, A, AAAA, names): well-formed, odd and malformed
// bytes; TLSA owner names.
#include <doctest.h>

#include <string>
#include <string_view>

#include "mxguard/dns/names.hpp"
#include "mxguard/dns/rdata.hpp"

using namespace mxguard::dns;
using namespace std::string_literals;

namespace {

// Wire form of a dotted name, built by hand so the tests do not trust the parser.
std::string wire(std::initializer_list<std::string_view> labels) {
  std::string out;
  for (auto l : labels) {
    out += static_cast<char>(l.size());
    out += l;
  }
  out += '\0';
  return out;
}

std::string mx_rdata(uint16_t pref, const std::string& name) {
  std::string out;
  out += static_cast<char>(pref >> 8);
  out += static_cast<char>(pref & 0xff);
  return out + name;
}

}  // namespace

TEST_CASE("txt: one string") {
  auto r = parse_txt("\x07mxg-abc"s);
  REQUIRE(r.ok());
  CHECK(r->text == "mxg-abc");
  REQUIRE(r->strings.size() == 1);
  CHECK(r->strings[0] == "mxg-abc");
}

TEST_CASE("txt: several strings are joined without separators (RFC 7208 3.3)") {
  auto r = parse_txt("\x04mxg-\x03" "abc\x03" "def"s);
  REQUIRE(r.ok());
  CHECK(r->text == "mxg-abcdef");
  CHECK(r->strings == std::vector<std::string>{"mxg-", "abc", "def"});
}

TEST_CASE("txt: empty strings and binary bytes are kept as published") {
  auto r = parse_txt("\x00\x02\x00\xff"s);
  REQUIRE(r.ok());
  CHECK(r->strings.size() == 2);
  CHECK(r->strings[0].empty());
  CHECK(r->text == "\x00\xff"s);
}

TEST_CASE("txt: a 255-byte string is the longest possible") {
  std::string s(255, 'x');
  auto r = parse_txt("\xff"s + s);
  REQUIRE(r.ok());
  CHECK(r->text == s);
}

TEST_CASE("txt: malformed") {
  CHECK_FALSE(parse_txt("").ok());                  // no string at all
  CHECK_FALSE(parse_txt("\x05" "abc").ok());        // length past the end
  CHECK_FALSE(parse_txt("\x03" "abc\x02" "x").ok());  // second string cut short
  CHECK_FALSE(parse_txt("\x01").ok());
  CHECK(parse_txt("\x05" "abc").error().find("past the end") != std::string::npos);
}

TEST_CASE("mx: preference and lower-cased host without the trailing dot") {
  auto r = parse_mx(mx_rdata(10, wire({"MX1", "MxGuard", "Test"})));
  REQUIRE(r.ok());
  CHECK(r->preference == 10);
  CHECK(r->host == "mx1.mxguard.test");
  CHECK_FALSE(r->is_null());
}

TEST_CASE("mx: preference is big-endian 16 bit") {
  auto r = parse_mx(mx_rdata(0xfffe, wire({"a", "b"})));
  REQUIRE(r.ok());
  CHECK(r->preference == 0xfffe);
}

TEST_CASE("mx: the null MX (RFC 7505) is the root name") {
  auto r = parse_mx("\x00\x00\x00"s);
  REQUIRE(r.ok());
  CHECK(r->preference == 0);
  CHECK(r->host.empty());
  CHECK(r->is_null());
}

TEST_CASE("mx: an IP-looking target is just a name here") {
  auto r = parse_mx(mx_rdata(5, wire({"192", "0", "2", "1"})));
  REQUIRE(r.ok());
  CHECK(r->host == "192.0.2.1");
}

TEST_CASE("mx: malformed") {
  CHECK_FALSE(parse_mx("").ok());
  CHECK_FALSE(parse_mx("\x00\x0a"s).ok());                                  // no name
  CHECK_FALSE(parse_mx(mx_rdata(10, "\x03mx1\x07mxguard")).ok());          // no root label
  CHECK_FALSE(parse_mx(mx_rdata(10, "\x09mx1")).ok());                     // label past the end
  CHECK_FALSE(parse_mx(mx_rdata(10, wire({"a"}) + "x")).ok());             // bytes after the name
  CHECK_FALSE(parse_mx(mx_rdata(10, "\xc0\x0c"s)).ok());                   // compression pointer
  CHECK_FALSE(parse_mx(mx_rdata(10, "\x41" + std::string(0x41, 'a') + "\0"s)).ok());  // label type 0x40
  CHECK(parse_mx(mx_rdata(10, "\xc0\x0c"s)).error().find("compressed") != std::string::npos);
}

TEST_CASE("name: labels of 63 octets, names of 255") {
  std::string l63(63, 'a');
  CHECK(parse_name(wire({l63, "b"})).ok());
  CHECK_FALSE(parse_name("\x40" + std::string(64, 'a') + "\0"s).ok());
  // 4 labels of 63 plus lengths and the root: 4 * 64 + 1 = 257 octets, too long.
  CHECK_FALSE(parse_name(wire({l63, l63, l63, l63})).ok());
  // 3 * 64 + 62 + 1 = 255 octets exactly: allowed.
  std::string l61(61, 'c');
  auto r = parse_name(wire({l63, l63, l63, l61}));
  REQUIRE(r.ok());
  CHECK(r->size() == 63 * 3 + 61 + 3);
}

TEST_CASE("name: odd bytes are escaped, never passed through") {
  auto r = parse_name(wire({"a.b", "c\\d", "e f", "\x01\xff"}));
  REQUIRE(r.ok());
  CHECK(*r == "a\\.b.c\\\\d.e\\032f.\\001\\255");
  auto root = parse_name("\0"s);
  REQUIRE(root.ok());
  CHECK(root->empty());
  CHECK_FALSE(parse_name("").ok());
}

TEST_CASE("a and aaaa: exact sizes only") {
  auto a = parse_a("\xc0\x00\x02\x01"s);
  REQUIRE(a.ok());
  CHECK_FALSE(a->v6);
  CHECK(a->to_string() == "192.0.2.1");
  auto aaaa = parse_aaaa("\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01");
  REQUIRE(aaaa.ok());
  CHECK(aaaa->v6);
  CHECK(aaaa->to_string() == "2001:db8::1");
  CHECK_FALSE(parse_a("\x01\x02\x03"s).ok());
  CHECK_FALSE(parse_a("\x01\x02\x03\x04\x05"s).ok());
  CHECK_FALSE(parse_a("").ok());
  CHECK_FALSE(parse_aaaa(std::string(15, '\0')).ok());
  CHECK_FALSE(parse_aaaa(std::string(17, '\0')).ok());
}

TEST_CASE("tlsa: the three fields, then the association data as raw bytes") {
  // 3 1 1 and a SHA2-256 digest holding the bytes a careless parser trips on.
  std::string digest = "\x00\xff\x0a\x00"s + std::string(28, '\x5c');
  auto r = parse_tlsa("\x03\x01\x01"s + digest);
  REQUIRE(r.ok());
  CHECK(r->usage == 3);
  CHECK(r->selector == 1);
  CHECK(r->matching_type == 1);
  CHECK(r->data == digest);
  CHECK(r->data.size() == 32);
}

TEST_CASE("tlsa: values DANE cannot use are still parsed, for the matcher to skip") {
  auto r = parse_tlsa("\xff\x07\x80\x01\x02"s);
  REQUIRE(r.ok());
  CHECK(r->usage == 255);
  CHECK(r->selector == 7);
  CHECK(r->matching_type == 128);
  CHECK(r->data == "\x01\x02"s);
  auto empty = parse_tlsa("\x02\x00\x01"s);
  REQUIRE(empty.ok());
  CHECK(empty->data.empty());
}

TEST_CASE("tlsa: fewer than three octets is malformed") {
  CHECK_FALSE(parse_tlsa("").ok());
  CHECK_FALSE(parse_tlsa("\x03"s).ok());
  CHECK_FALSE(parse_tlsa("\x03\x01"s).ok());
  CHECK(parse_tlsa("\x03\x01"s).error().find("too short") != std::string::npos);
}

TEST_CASE("tlsa_name: port and protocol labels before the host") {
  CHECK(tlsa_name("mx1.example.test", 25) == "_25._tcp.mx1.example.test");
  CHECK(tlsa_name("backend.example", 2525) == "_2525._tcp.backend.example");
  CHECK(is_query_name(tlsa_name("mx1.example.test", 25)));
}
