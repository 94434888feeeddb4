// RDATA parsers: bounds-checked reads over one record's bytes, nothing else.
#include "mxguard/dns/rdata.hpp"

#include <fmt/format.h>

#include <cstring>

#include "mxguard/core/strings.hpp"

namespace mxguard::dns {

namespace {

uint8_t byte_at(std::string_view s, size_t i) { return static_cast<uint8_t>(s[i]); }

// One label in presentation form: an operator compares these with host
// names, so letters are folded and anything that is not plain text is escaped.
void append_label(std::string& out, std::string_view label) {
  for (char c : label) {
    auto b = static_cast<uint8_t>(c);
    if (c == '.' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b <= 0x20 || b >= 0x7f) {
      out += fmt::format("\\{:03}", b);
    } else {
      out += ascii_lower(c);
    }
  }
}

// Copied as published: an IPv4-mapped AAAA stays an IPv6 address here.
Result<IpAddress> parse_address(std::string_view rdata, bool v6) {
  size_t size = v6 ? 16 : 4;
  if (rdata.size() != size)
    return Error{fmt::format("{} record data is {} bytes, expected {}", v6 ? "AAAA" : "A", rdata.size(), size)};
  IpAddress a;
  a.v6 = v6;
  std::memcpy(a.bytes.data(), rdata.data(), size);
  return a;
}

}  // namespace

Result<std::string> parse_name(std::string_view wire) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    if (pos >= wire.size()) return Error{"name runs past the end of the record data"};
    uint8_t len = byte_at(wire, pos);
    if (len == 0) break;
    // 0xC0 marks a compression pointer, 0x40/0x80 are obsolete label types (RFC 6891 6.1.1).
    if ((len & 0xC0) == 0xC0) return Error{"compressed name in record data"};
    if (len > kMaxLabel) return Error{fmt::format("unsupported label type 0x{:02x} in name", len)};
    if (pos + 1 + len > wire.size()) return Error{"label runs past the end of the record data"};
    if (pos + 1 + len + 1 > kMaxNameWire) return Error{"name longer than 255 octets"};
    if (!out.empty()) out += '.';
    append_label(out, wire.substr(pos + 1, len));
    pos += 1 + len;
  }
  if (pos + 1 != wire.size()) return Error{"trailing bytes after the name"};
  return out;
}

Result<TxtRecord> parse_txt(std::string_view rdata) {
  if (rdata.empty()) return Error{"TXT record data is empty (needs at least one string)"};
  TxtRecord r;
  size_t pos = 0;
  while (pos < rdata.size()) {
    size_t len = byte_at(rdata, pos);
    if (pos + 1 + len > rdata.size())
      return Error{fmt::format("TXT string of {} bytes runs past the end of the record data", len)};
    r.strings.emplace_back(rdata.substr(pos + 1, len));
    r.text += r.strings.back();
    pos += 1 + len;
  }
  return r;
}

Result<MxRecord> parse_mx(std::string_view rdata) {
  if (rdata.size() < 3) return Error{fmt::format("MX record data is {} bytes, too short", rdata.size())};
  MxRecord r;
  r.preference = static_cast<uint16_t>(byte_at(rdata, 0) << 8 | byte_at(rdata, 1));
  auto host = parse_name(rdata.substr(2));
  if (!host) return Error{fmt::format("MX exchange: {}", host.error())};
  r.host = std::move(*host);
  return r;
}

Result<std::string> parse_ptr(std::string_view rdata) {
  auto name = parse_name(rdata);
  if (!name) return Error{fmt::format("PTR target: {}", name.error())};
  // The root name is no host: a PTR to "." says nothing about the address.
  if (name->empty()) return Error{"PTR target is the root name"};
  return name;
}

Result<TlsaRecord> parse_tlsa(std::string_view rdata) {
  // Empty association data is accepted: such a record matches no certificate,
  // so the matcher skips it as unusable (RFC 7672 2.2) instead of the whole
  // record set failing as malformed.
  if (rdata.size() < 3) return Error{fmt::format("TLSA record data is {} bytes, too short", rdata.size())};
  TlsaRecord r;
  r.usage = byte_at(rdata, 0);
  r.selector = byte_at(rdata, 1);
  r.matching_type = byte_at(rdata, 2);
  r.data = std::string(rdata.substr(3));
  return r;
}

Result<IpAddress> parse_a(std::string_view rdata) { return parse_address(rdata, false); }

Result<IpAddress> parse_aaaa(std::string_view rdata) { return parse_address(rdata, true); }

}  // namespace mxguard::dns
