// Base64 and quoted-printable streaming decoders: table driven, bulk fast
// paths for whole quanta and plain runs, byte states only where a chunk ends.
#include "mxguard/mime/transfer.hpp"

#include <array>
#include <cstring>

namespace mxguard::mime {
namespace {

constexpr uint8_t kSkip = 0xFF;
constexpr uint8_t kPad = 0x40;

constexpr std::array<uint8_t, 256> make_b64_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = kSkip;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (uint8_t i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = i;
  t['='] = kPad;
  return t;
}
constexpr auto kB64 = make_b64_table();

// Hex digit value, or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Bytes the QP fast path copies without looking further.
constexpr std::array<bool, 256> make_qp_plain() {
  std::array<bool, 256> t{};
  for (auto& v : t) v = true;
  t['='] = t[' '] = t['\t'] = t['\n'] = false;
  return t;
}
constexpr auto kQpPlain = make_qp_plain();

// A run of whitespace this long is not transport padding; holding it longer
// would only cost memory.
constexpr size_t kMaxHeldSpace = 1024;

}  // namespace

void Base64Decoder::decode(std::string_view in, std::string& out) {
  const size_t base = out.size();
  out.resize(base + (in.size() / 4 + 1) * 3);
  char* o = out.data() + base;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const auto* end = p + in.size();
  uint32_t acc = acc_;
  unsigned count = count_;
  while (p < end) {
    // Whole quanta straight from the input: the bulk of any base64 body.
    if (count == 0) {
      while (end - p >= 4) {
        uint8_t a = kB64[p[0]], b = kB64[p[1]], c = kB64[p[2]], d = kB64[p[3]];
        if ((a | b | c | d) & 0xC0) break;
        uint32_t v = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6) | d;
        o[0] = static_cast<char>(v >> 16);
        o[1] = static_cast<char>(v >> 8);
        o[2] = static_cast<char>(v);
        o += 3;
        p += 4;
      }
      if (p == end) break;
    }
    uint8_t v = kB64[*p++];
    if (v < 64) {
      acc = (acc << 6) | v;
      if (++count == 4) {
        o[0] = static_cast<char>(acc >> 16);
        o[1] = static_cast<char>(acc >> 8);
        o[2] = static_cast<char>(acc);
        o += 3;
        acc = 0;
        count = 0;
      }
    } else if (v == kPad) {
      // Padding ends the quantum; a lone symbol carries no whole byte.
      if (count == 2) {
        *o++ = static_cast<char>(acc >> 4);
      } else if (count == 3) {
        o[0] = static_cast<char>(acc >> 10);
        o[1] = static_cast<char>(acc >> 2);
        o += 2;
      }
      acc = 0;
      count = 0;
    }
  }
  acc_ = acc;
  count_ = count;
  out.resize(static_cast<size_t>(o - out.data()));
}

void Base64Decoder::finish(std::string& out) {
  if (count_ == 2) {
    out.push_back(static_cast<char>(acc_ >> 4));
  } else if (count_ == 3) {
    out.push_back(static_cast<char>(acc_ >> 10));
    out.push_back(static_cast<char>(acc_ >> 2));
  }
  reset();
}

void QpDecoder::reset() {
  state_ = State::kData;
  hex1_ = 0;
  space_.clear();
  eq_space_.clear();
}

void QpDecoder::flush_space(std::string& out) {
  if (!space_.empty()) {
    out += space_;
    space_.clear();
  }
}

void QpDecoder::decode(std::string_view in, std::string& out) {
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    char c = in[i];
    switch (state_) {
      case State::kData: {
        if (kQpPlain[static_cast<uint8_t>(c)]) {
          flush_space(out);
          size_t j = i + 1;
          while (j < n) {
            if (kQpPlain[static_cast<uint8_t>(in[j])]) {
              ++j;
            } else if ((in[j] == ' ' || in[j] == '\t') && j + 1 < n &&
                       kQpPlain[static_cast<uint8_t>(in[j + 1])]) {
              j += 2;  // a blank followed by text is not trailing: no need to hold it
            } else {
              break;
            }
          }
          out.append(in.data() + i, j - i);
          i = j;
          continue;
        }
        if (c == ' ' || c == '\t') {
          if (space_.size() >= kMaxHeldSpace) flush_space(out);
          space_.push_back(c);
        } else if (c == '\n') {
          space_.clear();  // trailing whitespace was added in transport
          out.push_back('\n');
        } else {  // '='
          flush_space(out);
          state_ = State::kEq;
        }
        ++i;
        break;
      }
      case State::kEq:
        if (hex_value(c) >= 0) {
          hex1_ = c;
          state_ = State::kEqHex;
          ++i;
        } else if (c == '\n') {
          state_ = State::kData;  // soft line break
          ++i;
        } else if (c == ' ' || c == '\t') {
          eq_space_.push_back(c);
          state_ = State::kEqSpace;
          ++i;
        } else {
          out.push_back('=');  // not an escape: keep it, look at c again
          state_ = State::kData;
        }
        break;
      case State::kEqHex: {
        int lo = hex_value(c);
        if (lo >= 0) {
          out.push_back(static_cast<char>((hex_value(hex1_) << 4) | lo));
          ++i;
        } else {
          out.push_back('=');
          out.push_back(hex1_);
        }
        state_ = State::kData;
        break;
      }
      case State::kEqSpace:
        if (c == ' ' || c == '\t') {
          if (eq_space_.size() >= kMaxHeldSpace) {
            // Too long for padding: '=' and the run are plain content.
            out.push_back('=');
            out += eq_space_;
            eq_space_.clear();
            state_ = State::kData;
            continue;
          }
          eq_space_.push_back(c);
          ++i;
        } else if (c == '\n') {
          eq_space_.clear();  // "=  \n" is a soft break with padding
          state_ = State::kData;
          ++i;
        } else {
          out.push_back('=');
          space_ = std::move(eq_space_);
          eq_space_.clear();
          state_ = State::kData;
        }
        break;
    }
  }
}

void QpDecoder::finish(std::string& out) {
  // End of content is a line end: held whitespace is trailing, a final "="
  // (with or without padding) is a soft break.
  if (state_ == State::kEqHex) {
    out.push_back('=');
    out.push_back(hex1_);
  }
  reset();
}

}  // namespace mxguard::mime
