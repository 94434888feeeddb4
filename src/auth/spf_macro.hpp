// Private to the auth module: the SPF macro-string tokenizer (RFC 7208 7.1),
// shared by the record parser (domain-end rule) and the macro expander.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::auth::spf {

struct MacroToken {
  enum class Type : uint8_t { kLiteral, kMacro, kEscape } type = Type::kLiteral;
  std::string text;        // kLiteral: the characters; kEscape: what %% %_ %- stand for
  char letter = 0;         // kMacro: lower case
  bool url_escape = false; // kMacro: the letter was upper case
  unsigned keep = 0;       // kMacro: right-hand parts to keep, 0 = all
  bool reverse = false;    // kMacro
  std::string delimiters;  // kMacro: empty = "."
};

// Splits a macro-string into tokens; refuses anything outside the grammar,
// and c, r, t outside explanation text.
Result<std::vector<MacroToken>> tokenize_macro_string(std::string_view text, bool exp_text);

}  // namespace mxguard::auth::spf
