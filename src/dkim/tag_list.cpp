// Tag=value list parser shared by the signature and key record parsers.
#include "tag_list.hpp"

namespace mxguard::dkim::detail {

namespace {

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool valid_tag_name(std::string_view name) {
  if (name.empty() || !is_alpha(name.front())) return false;
  for (char c : name) {
    if (!is_alpha(c) && !is_digit(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

const Tag* TagList::find(std::string_view name) const {
  for (const auto& t : tags) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string_view trim_fws(std::string_view s) {
  while (!s.empty() && is_fws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_fws(s.back())) s.remove_suffix(1);
  return s;
}

Result<TagList> parse_tag_list(std::string_view text) {
  TagList out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(';', pos);
    const bool last = end == std::string_view::npos;
    if (last) end = text.size();
    const std::string_view spec = text.substr(pos, end - pos);
    if (trim_fws(spec).empty()) {
      // Only the spec after a final ';' (or an empty list) may be empty.
      if (last) break;
      return Error{"empty tag"};
    }
    const size_t eq = spec.find('=');
    if (eq == std::string_view::npos) return Error{"tag without '='"};
    const std::string_view name = trim_fws(spec.substr(0, eq));
    if (!valid_tag_name(name)) return Error{"bad tag name"};
    if (out.find(name) != nullptr) return Error{"duplicate tag " + std::string(name) + "="};
    Tag t;
    t.name = name;
    t.value = trim_fws(spec.substr(eq + 1));
    t.value_begin = pos + eq + 1;
    t.value_end = end;
    out.tags.push_back(t);
    if (last) break;
    pos = end + 1;
  }
  return out;
}

std::vector<std::string_view> split_colon_list(std::string_view value) {
  std::vector<std::string_view> items;
  size_t pos = 0;
  while (true) {
    const size_t colon = value.find(':', pos);
    if (colon == std::string_view::npos) {
      items.push_back(trim_fws(value.substr(pos)));
      break;
    }
    items.push_back(trim_fws(value.substr(pos, colon - pos)));
    pos = colon + 1;
  }
  return items;
}

}  // namespace mxguard::dkim::detail
