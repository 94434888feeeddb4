// Bayes tokenizer: the few Unicode facts it needs (what is a letter, what is
// invisible, simple lower-casing), without a full Unicode table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mxguard::bayes::utf8 {

// What a decoded code point means to the word splitter.
enum class CharClass : uint8_t {
  kSeparator,   // space, punctuation, symbols, emoji: ends a word
  kLetter,      // part of a word
  kIgnorable,   // invisible (zero-width space, soft hyphen, BOM): dropped, the word goes on
  kApostrophe,  // typographic apostrophes: treated like ASCII '\''
  kIdeograph,   // CJK ideographs and kana: written without spaces, tokenized as character pairs
};

CharClass classify(char32_t cp);

// Simple one-to-one lower-casing for Latin-1, Latin Extended-A, Greek and
// Cyrillic; other code points are returned unchanged.
char32_t to_lower(char32_t cp);

// Fullwidth ASCII forms (U+FF01..U+FF5E, a filter-evasion trick) as the ASCII
// byte they stand for, or 0.
inline char fullwidth_to_ascii(char32_t cp) {
  return cp >= 0xFF01 && cp <= 0xFF5E ? static_cast<char>(cp - 0xFEE0) : 0;
}

// Bytes of the sequence a lead byte starts (2..4), or 0 for a byte that cannot lead.
inline unsigned sequence_length(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Decodes a complete sequence of sequence_length(s[0]) bytes; returns
// U+FFFD for overlong forms, surrogates and out-of-range values.
char32_t decode(const unsigned char* s, unsigned len);

// Writes cp as UTF-8 into out (room for 4 bytes); returns the byte count.
unsigned encode(char32_t cp, char* out);

}  // namespace mxguard::bayes::utf8
