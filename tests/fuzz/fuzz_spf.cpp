// libFuzzer target for the auth module's parsers: SPF record selection and
// parsing, macro expansion (every mechanism's domain-spec, and the input as
// a bare macro-string), DMARC records, DNSBL host reduction and HELO forms.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/auth/dmarc_record.hpp"
#include "mxguard/auth/dnsbl.hpp"
#include "mxguard/auth/spf_record.hpp"

using namespace mxguard;
using namespace mxguard::auth;

namespace {

spf::MacroContext context(std::string_view input, bool v6) {
  spf::MacroContext c;
  // Part of the input as the sender's local part: macros then see hostile text too.
  c.local_part = std::string(input.substr(0, 64));
  c.sender_domain = "email.example.com";
  c.sender = c.local_part + "@" + c.sender_domain;
  c.domain = "email.example.com";
  c.ip = *IpAddress::parse(v6 ? "2001:db8::cb01" : "192.0.2.3");
  c.helo = "mx.example.org";
  c.validated = "mail.example.com";
  return c;
}

void check_expansion(std::string_view spec, const spf::MacroContext& c, bool exp_text) {
  auto out = spf::expand(spec, c, exp_text, !exp_text);
  // A domain expansion must fit a name (RFC 7208 7.3), whatever went in.
  if (out && !exp_text && out->size() > 253) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  bool v6 = size > 0 && (data[0] & 1);

  // SPF: the record as published, then each domain-spec expanded.
  std::vector<std::string> txts;
  size_t start = 0;
  while (start <= input.size() && txts.size() < 4) {
    size_t nl = input.find('\n', start);
    txts.emplace_back(input.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  (void)spf::select_record(txts);
  auto ctx = context(input, v6);
  if (auto rec = spf::parse_record(input)) {
    for (const auto& m : rec->mechanisms) {
      if (!m.domain_spec.empty()) check_expansion(m.domain_spec, ctx, false);
      (void)spf::cidr_match(m.network, m.kind == spf::Kind::kIp6 ? m.cidr6 : m.cidr4, ctx.ip);
    }
    if (rec->redirect) check_expansion(*rec->redirect, ctx, false);
    if (rec->exp) check_expansion(*rec->exp, ctx, false);
  }
  check_expansion(input, ctx, false);
  check_expansion(input, ctx, true);
  (void)spf::uses_macro(input, 'p');
  (void)spf::is_valid_domain(input);

  // DMARC: record parsing and, when it parses, a verdict.
  if (auto d = dmarc::parse_record(input)) {
    DmarcRequest req;
    req.from_domain = "news.example.com";
    req.spf = {SpfResult::kPass, "bounce.example.com", ""};
    req.sample_key = std::string(input.substr(0, 16));
    auto out = dmarc::evaluate(*d, req, "news.example.com", "example.com", true);
    if (out.result != DmarcResult::kPass && out.result != DmarcResult::kFail) __builtin_trap();
    if (d->pct > 100) __builtin_trap();
  }

  // Host names from URLs and HELO arguments are just as untrusted.
  (void)dnsbl::host_keys(txts);
  (void)helo::classify(input);
  return 0;
}
