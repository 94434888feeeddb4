// Bayes tokenizer: code point classes and simple case folding. Ranges are
// chosen for mail text: separators that spammers and mailers actually use,
// invisible characters used to split words past filters, the scripts most
// mail is written in.
#include "utf8.hpp"

namespace mxguard::bayes::utf8 {

CharClass classify(char32_t cp) {
  if (cp < 0x80) return CharClass::kSeparator;  // ASCII is handled by the caller's table
  if (cp < 0xC0) {
    // Latin-1 punctuation and symbols, except the three letters in the block.
    if (cp == 0xAD) return CharClass::kIgnorable;  // soft hyphen
    if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return CharClass::kLetter;
    return CharClass::kSeparator;
  }
  if (cp == 0xD7 || cp == 0xF7) return CharClass::kSeparator;  // multiplication, division signs
  if (cp < 0x2000) {
    if (cp == 0x2BC) return CharClass::kApostrophe;
    if (cp == 0x37E || cp == 0x387) return CharClass::kSeparator;  // Greek question mark, ano teleia
    return CharClass::kLetter;
  }
  if (cp <= 0x206F) {
    // General punctuation: spaces, dashes, quotes, plus the invisible joiners.
    if ((cp >= 0x200B && cp <= 0x200D) || cp == 0x2060) return CharClass::kIgnorable;
    if (cp == 0x2018 || cp == 0x2019) return CharClass::kApostrophe;
    return CharClass::kSeparator;
  }
  if (cp < 0x2C00) return CharClass::kSeparator;  // currency, letterlike, arrows, math, box drawing, dingbats
  if (cp >= 0x2E00 && cp <= 0x2E7F) return CharClass::kSeparator;  // supplemental punctuation
  if (cp >= 0x3000 && cp <= 0x303F) return CharClass::kSeparator;  // CJK punctuation, ideographic space
  if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
      (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3134F))
    return CharClass::kIdeograph;
  if (cp >= 0xD800 && cp <= 0xF8FF) return CharClass::kSeparator;  // surrogates, private use
  if (cp == 0xFEFF) return CharClass::kIgnorable;                  // BOM / zero-width no-break space
  if (cp >= 0xFE00 && cp <= 0xFE0F) return CharClass::kIgnorable;  // variation selectors
  if (cp >= 0xFF00 && cp <= 0xFF65) return CharClass::kSeparator;  // fullwidth punctuation (letters are mapped before)
  if (cp >= 0xFFF0 && cp <= 0xFFFF) return CharClass::kSeparator;  // specials, U+FFFD
  if (cp >= 0x1F000 && cp <= 0x1FAFF) return CharClass::kSeparator;  // emoji and pictographs
  if (cp >= 0xE0000) return CharClass::kIgnorable;                 // tags, variation selectors supplement
  return CharClass::kLetter;
}

char32_t to_lower(char32_t cp) {
  if (cp < 0xC0) return cp;
  if (cp <= 0xDE) return cp == 0xD7 ? cp : cp + 0x20;
  if (cp < 0x100) return cp;
  if (cp <= 0x137) return (cp & 1) ? cp : cp + 1;
  if (cp >= 0x139 && cp <= 0x148) return (cp & 1) ? cp + 1 : cp;
  if (cp >= 0x14A && cp <= 0x177) return (cp & 1) ? cp : cp + 1;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x179 && cp <= 0x17E) return (cp & 1) ? cp + 1 : cp;
  if (cp < 0x386) return cp;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
  if (cp >= 0x391 && cp <= 0x3A9) return cp == 0x3A2 ? cp : cp + 0x20;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  return cp;
}

char32_t decode(const unsigned char* s, unsigned len) {
  char32_t cp;
  char32_t min;
  switch (len) {
    case 2: cp = s[0] & 0x1Fu; min = 0x80; break;
    case 3: cp = s[0] & 0x0Fu; min = 0x800; break;
    case 4: cp = s[0] & 0x07u; min = 0x10000; break;
    default: return 0xFFFD;
  }
  for (unsigned i = 1; i < len; ++i) cp = (cp << 6) | (s[i] & 0x3Fu);
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
  return cp;
}

unsigned encode(char32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

}  // namespace mxguard::bayes::utf8
