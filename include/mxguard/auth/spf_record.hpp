// The pure half of SPF (RFC 7208): choosing the record among a name's TXT
// strings, parsing it into terms, expanding macros and matching CIDR blocks.
// No I/O: the asynchronous evaluator in src/auth/spf.cpp drives these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::auth::spf {

enum class Qualifier : uint8_t { kPass, kFail, kSoftFail, kNeutral };
enum class Kind : uint8_t { kAll, kInclude, kA, kMx, kPtr, kIp4, kIp6, kExists };

struct Mechanism {
  Qualifier qualifier = Qualifier::kPass;
  Kind kind = Kind::kAll;
  std::string domain_spec;  // unexpanded macro-string; empty: the current domain
  unsigned cidr4 = 32;      // a, mx, ip4
  unsigned cidr6 = 128;     // a, mx, ip6
  IpAddress network;        // ip4, ip6
  std::string text;         // the term as written, for explanations
};

struct Record {
  std::vector<Mechanism> mechanisms;  // in evaluation order
  std::optional<std::string> redirect;  // domain-spec
  std::optional<std::string> exp;       // domain-spec (parsed, never fetched)
};

// True when a TXT string is an SPF record: "v=spf1" (any case) followed by
// a space or nothing (RFC 7208 4.5).
bool is_spf_record(std::string_view txt);

// Record selection (RFC 7208 4.5) over a name's TXT records (each with its
// strings concatenated): nullopt when none is an SPF record, an error when
// more than one is (permerror).
Result<std::optional<std::string>> select_record(const std::vector<std::string>& txts);

// Parses a whole record (RFC 7208 4.6, 5, 6, 7.1). Any syntax error anywhere
// is an error (permerror), as are unknown mechanisms and a repeated
// redirect= or exp=; unknown modifiers are checked for syntax and ignored.
Result<Record> parse_record(std::string_view text);

// What macros expand to (RFC 7208 7.2). `ip` is the client, IPv4-mapped
// addresses already unmapped.
struct MacroContext {
  std::string sender;         // s: local-part@domain
  std::string local_part;     // l
  std::string sender_domain;  // o
  std::string domain;         // d: the current <domain>
  IpAddress ip;               // i, v (and c)
  std::string validated = "unknown";  // p
  std::string helo;           // h
  std::string receiver = "unknown";   // r (exp only)
  int64_t timestamp = 0;      // t (exp only)
};

// Checks a macro-string's syntax; `exp_text` allows c, r and t.
Status check_macro_string(std::string_view text, bool exp_text);

// Expands a macro-string. Domain-specs longer than 253 octets afterwards lose
// labels from the left until they fit (RFC 7208 7.3): pass `is_domain`.
Result<std::string> expand(std::string_view text, const MacroContext& ctx, bool exp_text = false,
                           bool is_domain = true);

// True when the macro-string uses macro letter `letter` (either case).
bool uses_macro(std::string_view text, char letter);

// True when `ip` is within `network`/`prefix`; never across address families.
bool cidr_match(const IpAddress& network, unsigned prefix, const IpAddress& ip);

// The initial <domain> check (RFC 7208 4.3): a multi-label name whose labels
// are 1..63 octets and total at most 253 (a trailing dot allowed).
bool is_valid_domain(std::string_view domain);

}  // namespace mxguard::auth::spf
