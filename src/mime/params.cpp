// Content-Type / Content-Disposition values: the token, parameters (quoted or
// not, RFC 2231 extended and continued), and the PartInfo built from them.
#include <algorithm>
#include <string>
#include <string_view>

#include "fields.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::mime {
namespace {

constexpr size_t kMaxParams = 64;
constexpr unsigned kMaxSection = 999;
constexpr size_t kMaxBoundary = 200;

inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

struct RawParam {
  std::string base;  // lower-case name without the RFC 2231 suffix
  int section;            // -1: not sectioned
  bool extended;          // value is charset'lang'pct-encoded (first piece) or pct-encoded
  std::string value;
};

// Splits "name", "name*", "name*3", "name*3*" into its parts.
void split_name(std::string_view name, RawParam& p) {
  p.section = -1;
  p.extended = false;
  if (!name.empty() && name.back() == '*') {
    p.extended = true;
    name.remove_suffix(1);
  }
  size_t star = name.rfind('*');
  if (star != std::string_view::npos) {
    std::string_view num = name.substr(star + 1);
    auto n = parse_u64(num);
    if (n && *n <= kMaxSection && !num.empty()) {
      p.section = static_cast<int>(*n);
      name = name.substr(0, star);
    }
  }
  p.base = std::string(name);
}

void percent_decode(std::string_view in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 &&
        hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
}

// Assembles the RFC 2231 pieces of one parameter into UTF-8.
std::string assemble(std::vector<const RawParam*>& pieces, CharsetCache& cache) {
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const RawParam* a, const RawParam* b) { return a->section < b->section; });
  std::string bytes;
  std::string charset;
  bool first = true;
  for (const RawParam* p : pieces) {
    std::string_view v = p->value;
    if (first && p->extended) {
      // charset'language'value; without both quotes the value is taken whole.
      size_t q1 = v.find('\'');
      size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
      if (q2 != std::string_view::npos) {
        charset = std::string(v.substr(0, q1));
        v = v.substr(q2 + 1);
      }
    }
    first = false;
    if (p->extended)
      percent_decode(v, bytes);
    else
      bytes += v;
  }
  std::string out;
  CharsetDecoder dec;
  dec.start(charset, cache);
  dec.convert(bytes, out);
  dec.finish(out);
  return out;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '!' || c == '#' || c == '$' ||
         c == '&' || c == '^' || c == '_' || c == '.' || c == '+' || c == '-' || c == '%' ||
         c == '\'' || c == '*' || c == '`' || c == '{' || c == '|' || c == '}' || c == '~';
}

// "type/subtype" made of token characters (already lower case).
bool valid_media_type(std::string_view t) {
  size_t slash = t.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == t.size()) return false;
  for (size_t i = 0; i < t.size(); ++i)
    if (i != slash && !is_token_char(t[i])) return false;
  return true;
}

}  // namespace

const std::string* ParsedField::find(std::string_view name) const {
  for (const Param& p : params)
    if (p.name == name) return &p.value;
  return nullptr;
}

ParsedField parse_field(std::string_view v, CharsetCache& cache) {
  ParsedField f;
  size_t i = 0;
  const size_t n = v.size();
  while (i < n && is_ws(v[i])) ++i;
  size_t start = i;
  while (i < n && v[i] != ';' && !is_ws(v[i])) ++i;
  f.token = to_lower(v.substr(start, i - start));

  std::vector<RawParam> raw;
  while (i < n && raw.size() < kMaxParams) {
    while (i < n && (is_ws(v[i]) || v[i] == ';')) ++i;
    if (i == n) break;
    start = i;
    while (i < n && v[i] != '=' && v[i] != ';') ++i;
    std::string_view name = trim(v.substr(start, i - start));
    if (i == n) break;
    if (v[i] == ';') continue;  // a name without a value
    if (name.empty()) {         // "=value" without a name: skip it
      while (i < n && v[i] != ';') ++i;
      continue;
    }
    ++i;  // '='
    while (i < n && is_ws(v[i])) ++i;
    std::string value;
    if (i < n && v[i] == '"') {
      ++i;
      while (i < n && v[i] != '"') {
        if (v[i] == '\\' && i + 1 < n) ++i;
        value.push_back(v[i++]);
      }
      // Whatever follows the closing quote up to ';' is junk.
      while (i < n && v[i] != ';') ++i;
    } else {
      start = i;
      while (i < n && v[i] != ';') ++i;
      std::string_view t = v.substr(start, i - start);
      while (!t.empty() && is_ws(t.back())) t.remove_suffix(1);
      value = std::string(t);
    }
    RawParam p;
    split_name(to_lower(name), p);
    p.value = std::move(value);
    raw.push_back(std::move(p));
  }

  // Group by base name, in order of first appearance. RFC 2231 forms win
  // over a plain parameter of the same name; the first plain one wins otherwise.
  std::vector<bool> used(raw.size(), false);
  for (size_t a = 0; a < raw.size(); ++a) {
    if (used[a]) continue;
    std::vector<const RawParam*> pieces;
    const RawParam* plain = nullptr;
    for (size_t b = a; b < raw.size(); ++b) {
      if (used[b] || raw[b].base != raw[a].base) continue;
      used[b] = true;
      if (raw[b].section >= 0 || raw[b].extended)
        pieces.push_back(&raw[b]);
      else if (!plain)
        plain = &raw[b];
    }
    Param out;
    out.name = raw[a].base;
    if (!pieces.empty())
      out.value = assemble(pieces, cache);
    else
      out.value = plain->value;
    f.params.push_back(std::move(out));
  }
  return f;
}

void fill_part_info(PartInfo& info, const ContentFields& fields, bool digest_child,
                    CharsetCache& cache, std::string& boundary) {
  boundary.clear();
  ParsedField ct;
  if (fields.has_type) ct = parse_field(fields.type, cache);
  std::string type = ct.token;
  if (!valid_media_type(type)) type = digest_child ? "message/rfc822" : "text/plain";

  if (const std::string* cs = ct.find("charset")) info.charset = to_lower(trim(*cs));

  if (type.starts_with("multipart/")) {
    const std::string* b = ct.find("boundary");
    if (b && !b->empty() && b->size() <= kMaxBoundary) {
      boundary = *b;
      info.is_multipart = true;
    } else {
      type = "text/plain";  // no usable boundary: RFC 2046 readers show it as text
    }
  }

  std::string_view cte = trim(fields.transfer_encoding);
  size_t stop = cte.find_first_of(" \t;(\"");
  cte = cte.substr(0, stop);
  info.transfer_encoding = cte.empty() ? "7bit" : to_lower(cte);

  ParsedField cd;
  if (fields.has_disposition) cd = parse_field(fields.disposition, cache);
  info.disposition = cd.token;

  const std::string* name = cd.find("filename");
  if (!name || name->empty()) name = ct.find("name");
  info.filename.clear();
  if (name) {
    decode_words(*name, cache, info.filename);  // RFC 2047 inside quotes: wrong but everywhere
    std::string_view t = trim(info.filename);
    info.filename = std::string(t);
  }

  const bool identity = info.transfer_encoding == "7bit" || info.transfer_encoding == "8bit" ||
                        info.transfer_encoding == "binary";
  info.is_message = (type == "message/rfc822" || type == "message/global") && identity;
  info.content_type = std::move(type);
  info.is_attachment =
      info.disposition == "attachment" || !info.filename.empty() ||
      (!info.is_multipart && !info.is_message && !info.content_type.starts_with("text/"));
}

}  // namespace mxguard::mime
