// libFuzzer target: the DNS RDATA parsers (TXT, MX, names, A/AAAA).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mxguard/dns/rdata.hpp"

using namespace mxguard::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto t = parse_txt(in)) {
    size_t total = 0;
    for (const auto& s : t->strings) total += s.size();
    // Every string costs its bytes plus one length byte, and all are kept.
    if (total != t->text.size() || total + t->strings.size() != size) abort();
  }
  if (auto m = parse_mx(in)) {
    for (unsigned char c : m->host)
      if (c <= 0x20 || c >= 0x7f || (c >= 'A' && c <= 'Z')) abort();  // escaped and folded
  }
  (void)parse_name(in);
  if (parse_a(in).ok() != (size == 4)) abort();
  if (parse_aaaa(in).ok() != (size == 16)) abort();
  return 0;
}
