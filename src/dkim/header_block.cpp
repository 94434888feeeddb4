// Bounded header-section collection for the streaming DKIM verifier.
#include "header_block.hpp"

#include "mxguard/core/strings.hpp"

namespace mxguard::dkim::detail {

namespace {

constexpr bool is_wsp(char c) { return c == ' ' || c == '\t'; }
// Enough for "DKIM-Signature" plus generous obsolete WSP before the colon.
constexpr size_t kFirstLineKeep = 32;

std::string_view field_name(std::string_view raw, size_t colon) {
  std::string_view name = raw.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  return name;
}

}  // namespace

bool is_dkim_signature_start(std::string_view first_line) {
  const size_t colon = first_line.find(':');
  if (colon == std::string_view::npos) return false;
  return iequals(field_name(first_line, colon), "dkim-signature");
}

size_t HeaderBlock::consume(std::string_view bytes) {
  if (done_) return 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        if (line_end()) return i + 1;
        continue;
      }
      data('\r');  // a CR on its own is data, as RFC 6376 leaves it
    }
    if (c == '\n') {
      if (line_end()) return i + 1;
    } else if (c == '\r') {
      pending_cr_ = true;
    } else {
      data(c);
    }
  }
  return bytes.size();
}

void HeaderBlock::finish() {
  if (done_) return;
  if (pending_cr_) {
    pending_cr_ = false;
    data('\r');
  }
  if (!at_line_start_) line_end();
  done_ = true;
}

bool HeaderBlock::line_end() {
  if (at_line_start_) {
    done_ = true;
    return true;
  }
  append("\r\n");
  if (overflowed_) note_first_line();
  at_line_start_ = true;
  return false;
}

void HeaderBlock::data(char c) {
  if (at_line_start_) {
    at_line_start_ = false;
    // A leading continuation line with nothing to continue starts a field
    // of its own, so every buffered byte belongs to some field.
    const bool new_field = !is_wsp(c) || (field_starts_.empty() && !overflowed_);
    if (overflowed_) {
      on_first_line_ = new_field;
      first_line_.clear();
    } else if (new_field) {
      field_starts_.push_back(buf_.size());
      on_first_line_ = true;
    } else {
      on_first_line_ = false;
    }
  }
  if (!overflowed_) {
    append(std::string_view(&c, 1));
    if (!overflowed_) return;
    // This byte tipped the buffer over; it still counts for the name.
  }
  if (on_first_line_ && first_line_.size() < kFirstLineKeep) first_line_.push_back(c);
}

void HeaderBlock::append(std::string_view s) {
  if (overflowed_) return;
  if (buf_.size() + s.size() > max_bytes_) {
    start_overflow();
    return;
  }
  buf_.append(s);
}

// The field being read does not fit: it is dropped from the buffer, and if
// its first line is still being read it is judged once that line ends.
void HeaderBlock::start_overflow() {
  overflowed_ = true;
  const size_t start = field_starts_.back();
  const std::string_view partial = std::string_view(buf_).substr(start);
  if (on_first_line_) {
    first_line_.assign(partial.substr(0, kFirstLineKeep));
  } else {
    if (is_dkim_signature_start(partial.substr(0, partial.find('\r')))) ++signatures_past_bound_;
    first_line_.clear();
  }
  buf_.resize(start);
  field_starts_.pop_back();
}

void HeaderBlock::note_first_line() {
  if (on_first_line_ && is_dkim_signature_start(first_line_)) ++signatures_past_bound_;
  on_first_line_ = false;
  first_line_.clear();
}

std::vector<HeaderField> HeaderBlock::fields() const {
  std::vector<HeaderField> out;
  out.reserve(field_starts_.size());
  const std::string_view all = buf_;
  for (size_t i = 0; i < field_starts_.size(); ++i) {
    const size_t end = i + 1 < field_starts_.size() ? field_starts_[i + 1] : all.size();
    HeaderField f;
    f.raw = all.substr(field_starts_[i], end - field_starts_[i]);
    const size_t colon = f.raw.find(':');
    // A name must sit on the field's first line; otherwise it has none.
    if (colon != std::string_view::npos && f.raw.substr(0, colon).find('\n') == std::string_view::npos) {
      f.colon = colon;
      f.name = to_lower(field_name(f.raw, colon));
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace mxguard::dkim::detail
