// Fuzz target: the rule-file parser and linker (combination expressions,
// builtins, pattern delimiters, score overrides) and the bundle file splitter.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mxguard/scan/bundle.hpp"
#include "mxguard/scan/rules.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = mxguard::scan::parse_rule_file(text, "fuzz.rules");
  if (parsed) {
    auto linked = mxguard::scan::link_rules(std::move(parsed->rules));
    if (linked && mxguard::scan::apply_overrides(*linked, parsed->overrides)) {
      std::vector<bool> fired(linked->rules.size(), true);
      for (uint32_t i : linked->combine_order) (void)mxguard::scan::evaluate(linked->programs[i], fired);
    }
  }
  mxguard::scan::BundleInfo info;
  (void)mxguard::scan::bundle_body(text, &info);
  return 0;
}
