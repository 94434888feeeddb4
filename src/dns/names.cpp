// Reverse, DNSBL and TLSA query names, and query-name sanity.
#include "mxguard/dns/names.hpp"

#include <algorithm>

namespace mxguard::dns {

namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

IpAddress unmap_v4(const IpAddress& ip) {
  if (!ip.v6 || !std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix), ip.bytes.begin())) return ip;
  IpAddress v4;
  std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
  return v4;
}

std::string reversed_labels(const IpAddress& address) {
  IpAddress ip = unmap_v4(address);
  std::string out;
  if (!ip.v6) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(ip.bytes[static_cast<size_t>(i)]);
      if (i > 0) out += '.';
    }
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    uint8_t b = ip.bytes[static_cast<size_t>(i)];
    out += kHex[b & 0x0f];
    out += '.';
    out += kHex[b >> 4];
    if (i > 0) out += '.';
  }
  return out;
}

std::string reverse_name(const IpAddress& ip) {
  return reversed_labels(ip) + (unmap_v4(ip).v6 ? ".ip6.arpa" : ".in-addr.arpa");
}

std::string tlsa_name(std::string_view host, uint16_t port) {
  return "_" + std::to_string(port) + "._tcp." + std::string(host);
}

bool is_query_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label > 0;
}

std::string presentation_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    auto b = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (b <= 0x20 || b >= 0x7f) {
      out += '\\';
      out += static_cast<char>('0' + b / 100);
      out += static_cast<char>('0' + b / 10 % 10);
      out += static_cast<char>('0' + b % 10);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace mxguard::dns
