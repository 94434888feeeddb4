// Collects the header section of a streamed message (bounded, line ends
// normalised to CRLF) and tells the caller where the body starts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::dkim::detail {

struct HeaderField {
  std::string_view raw;  // as received, folds kept, ending in CRLF
  std::string name;      // lower-cased, trailing WSP dropped; empty if no colon
  size_t colon = 0;      // offset of the ':' in raw
};

class HeaderBlock {
 public:
  explicit HeaderBlock(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Takes bytes until the blank line that ends the header section; returns
  // how many were header bytes (the rest is body).
  size_t consume(std::string_view bytes);
  // End of input: a message without a blank line is all header.
  void finish();

  bool done() const { return done_; }
  // The header section went past max_bytes: fields() then holds only the
  // complete fields that fit, and signatures_past_bound() counts the
  // DKIM-Signature fields that did not.
  bool overflowed() const { return overflowed_; }
  unsigned signatures_past_bound() const { return signatures_past_bound_; }

  std::vector<HeaderField> fields() const;

 private:
  bool line_end();  // true at the blank line
  void data(char c);
  void append(std::string_view s);
  void start_overflow();
  void note_first_line();

  size_t max_bytes_;
  std::string buf_;
  std::vector<size_t> field_starts_;
  bool at_line_start_ = true;
  bool pending_cr_ = false;
  bool done_ = false;
  bool overflowed_ = false;
  // Past the bound only the start of each field's first line is kept, to
  // recognise DKIM-Signature fields.
  bool on_first_line_ = false;
  std::string first_line_;
  unsigned signatures_past_bound_ = 0;
};

// True if a field's first line starts with the DKIM-Signature name.
bool is_dkim_signature_start(std::string_view first_line);

}  // namespace mxguard::dkim::detail
