// The streaming MIME walker: a line machine (header lines, boundary candidates,
// content runs) over a stack of open entities, feeding one leaf decoder.
#include "mxguard/mime/walker.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "bytes.hpp"
#include "fields.hpp"
#include "leaf.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::mime {

std::string_view to_string(LimitHit l) {
  switch (l) {
    case LimitHit::kDepth: return "depth";
    case LimitHit::kParts: return "parts";
    case LimitHit::kDecodedSize: return "decoded-size";
    case LimitHit::kHeaderSize: return "header-size";
  }
  return "unknown";
}

namespace {

constexpr size_t kRunFlush = 64u << 10;  // content handed to the leaf decoder at once
constexpr size_t kRawFlush = 8u << 10;   // raw body pieces (unless a feed is bigger)
constexpr size_t kHoldSlack = 256;       // transport padding allowed after a boundary

enum class Kind : uint8_t { kLeaf, kMultipart, kMessage };
// kBody of a multipart is its preamble or the gap between parts (ignored);
// kDone is what follows the end of a nested message (ignored until a boundary).
enum class State : uint8_t { kHeaders, kBody, kDone };

struct Frame {
  PartInfo info;
  Kind kind = Kind::kLeaf;
  State state = State::kHeaders;
  bool digest = false;        // multipart/digest: parts default to message/rfc822
  bool digest_child = false;
  std::string boundary;
  ContentFields fields;
};

// What to do with the bytes of the current line.
enum class Line : uint8_t {
  kStart,      // at the first byte of a line: decide
  kHeader,     // a header line, gathered whole
  kHold,       // may be a boundary: gathered (bounded) until decided
  kContent,    // leaf content, passed on without gathering
  kIgnore,     // preamble, epilogue, after a nested message
  kSkipHeader  // after a limit inside the top header section: find its end
};

bool valid_field_name(std::string_view l) {
  size_t colon = l.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = l.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  if (name.empty()) return false;
  for (char c : name)
    if (static_cast<uint8_t>(c) < 33 || static_cast<uint8_t>(c) > 126) return false;
  return true;
}

}  // namespace

struct Walker::Impl {
  Impl(Handler& handler, const Limits& limits) : h(handler), lim(limits), leaf(handler, cache) {
    Frame top;
    top.info.index = 0;
    top.info.depth = 0;
    stack.push_back(std::move(top));
  }

  Handler& h;
  Limits lim;
  CharsetCache cache;
  LeafDecoder leaf;
  std::vector<Frame> stack;  // open entities, outermost first

  unsigned parts = 1;  // the message itself
  uint64_t decoded = 0;
  bool stopped = false;
  bool finished = false;
  bool fired[4] = {};
  bool top_body = false;  // past the top-level header section: bytes are raw body
  bool first_line = true;  // an mbox "From " line may come first

  Line mode = Line::kStart;
  std::string line;         // header line or boundary candidate being gathered
  std::string_view line_eol;  // how the gathered line ended (to replay it as raw body)
  bool cr_pending = false;  // content: the previous chunk ended with '\r'
  bool eol_pending = false; // content: a line ended; its "\n" waits for the next line
  std::string run;          // normalised leaf content not yet decoded
  std::string field;        // the current header field, unfolded
  std::string scratch;      // decoded header value
  size_t header_bytes = 0;  // size of the current header section
  unsigned open_boundaries = 0;
  size_t max_boundary = 0;
  size_t skip_len = 0;      // kSkipHeader: bytes of the current line so far
  char skip_first = 0;
  std::string raw;          // raw body bytes not yet handed over

  const char* raw_from = nullptr;  // where raw body starts in the current chunk

  // ---- feeding -------------------------------------------------------------

  void feed(std::string_view bytes) {
    if (finished || bytes.empty()) return;
    const char* p = bytes.data();
    const char* end = p + bytes.size();
    raw_from = top_body ? p : nullptr;
    while (p < end) {
      if (stopped) {
        if (top_body) break;
        p = skip_header(p, end);
        if (top_body) raw_from = p;
        continue;
      }
      switch (mode) {
        case Line::kStart: begin_line(*p); break;
        case Line::kHeader: p = gather_header(p, end); break;
        case Line::kHold: p = gather_hold(p, end); break;
        case Line::kContent: p = content(p, end); break;
        case Line::kIgnore: p = ignore(p, end); break;
        case Line::kSkipHeader: p = skip_header(p, end); break;
      }
      if (top_body && !raw_from) raw_from = p;
    }
    if (!stopped) deliver_run();
    if (raw_from) raw_emit(std::string_view(raw_from, static_cast<size_t>(end - raw_from)));
    raw_from = nullptr;
  }

  void finish() {
    if (finished) return;
    if (!stopped) {
      switch (mode) {
        case Line::kHeader:
        case Line::kHold:
          // A last line without a line end ("--boundary--" at EOF is common).
          line_eol = "";
          if (!line.empty() && line.back() == '\r') {
            line.pop_back();
            line_eol = "\r";
          }
          mode = Line::kStart;
          process_line();
          eol_pending = false;  // that line had no line end of its own
          break;
        case Line::kContent:
          if (cr_pending) run.push_back('\r');
          break;
        default:
          break;
      }
      cr_pending = false;
      if (!stopped && eol_pending && top_leaf_body()) run.push_back('\n');
      eol_pending = false;
      if (!stopped) deliver_run();
      while (!stopped && !stack.empty()) close_top();
    }
    finished = true;
    if (!raw.empty()) h.on_raw_body(raw);
    raw.clear();
  }

  // ---- the line machine ----------------------------------------------------

  bool top_leaf_body() const {
    return !stack.empty() && stack.back().kind == Kind::kLeaf && stack.back().state == State::kBody;
  }

  void begin_line(char c) {
    if (!stack.empty() && stack.back().state == State::kHeaders) {
      mode = Line::kHeader;
      line.clear();
      return;
    }
    if (open_boundaries && c == '-') {
      mode = Line::kHold;
      line.clear();
      return;
    }
    if (top_leaf_body()) {
      mode = Line::kContent;
      if (eol_pending) run.push_back('\n');
      eol_pending = false;
      return;
    }
    mode = Line::kIgnore;
    eol_pending = false;
  }

  const char* gather_header(const char* p, const char* end) {
    const char* nl = find_newline(p, end);
    const size_t len = static_cast<size_t>((nl ? nl : end) - p);
    header_bytes += len + (nl ? 1 : 0);
    if (header_bytes > lim.max_header_bytes) {
      const bool top = stack.size() == 1;
      skip_len = line.size();
      skip_first = line.empty() ? 0 : line[0];
      limit(LimitHit::kHeaderSize);
      if (top && !top_body) mode = Line::kSkipHeader;
      return p;  // the rest of this line is looked at by skip_header()
    }
    // Kept whole (the header-size bound above bounds it): a line that turns
    // out to be body must be replayed exactly as raw body. max_line applies
    // when the line is used as a header.
    line.append(p, len);
    if (!nl) return end;
    line_eol = "\n";
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
      line_eol = "\r\n";
    }
    mode = Line::kStart;
    process_line();
    return nl + 1;
  }

  const char* gather_hold(const char* p, const char* end) {
    const char* nl = find_newline(p, end);
    const size_t len = static_cast<size_t>((nl ? nl : end) - p);
    const size_t cap = 4 + max_boundary + kHoldSlack;
    if (line.size() + len > cap) {
      // Too long for a boundary line: it is content after all.
      if (top_leaf_body()) {
        if (eol_pending) run.push_back('\n');
        eol_pending = false;
        if (!line.empty() && line.back() == '\r') {
          line.pop_back();
          cr_pending = true;
        }
        run += line;
        mode = Line::kContent;
      } else {
        mode = Line::kIgnore;
      }
      line.clear();
      return p;
    }
    line.append(p, len);
    if (!nl) return end;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    mode = Line::kStart;
    process_line();
    return nl + 1;
  }

  const char* content(const char* p, const char* end) {
    if (cr_pending) {
      cr_pending = false;
      if (*p != '\n') run.push_back('\r');
    }
    for (;;) {
      const char* nl = find_newline(p, end);
      if (!nl) {
        size_t len = static_cast<size_t>(end - p);
        if (len && end[-1] == '\r') {
          cr_pending = true;
          --len;
        }
        run.append(p, len);
        if (run.size() >= kRunFlush) deliver_run();
        return end;
      }
      size_t len = static_cast<size_t>(nl - p);
      if (len && nl[-1] == '\r') --len;
      run.append(p, len);
      p = nl + 1;
      // Most lines cannot be boundaries: stay here rather than go round the
      // main loop for each of them.
      if (p < end && (open_boundaries == 0 || *p != '-')) {
        run.push_back('\n');
        if (run.size() >= kRunFlush) {
          deliver_run();
          if (stopped) return p;
        }
        continue;
      }
      eol_pending = true;
      mode = Line::kStart;
      return p;
    }
  }

  const char* ignore(const char* p, const char* end) {
    if (open_boundaries == 0) return end;  // nothing can end this: the rest is epilogue
    for (;;) {
      const char* nl = find_newline(p, end);
      if (!nl) return end;
      p = nl + 1;
      if (p < end && *p != '-') continue;
      mode = Line::kStart;
      return p;
    }
  }

  // After the header-size limit in the top header section: no more
  // gathering, only find the empty line where the raw body starts.
  const char* skip_header(const char* p, const char* end) {
    for (;;) {
      const char* nl = find_newline(p, end);
      const size_t len = static_cast<size_t>((nl ? nl : end) - p);
      if (len && skip_len == 0) skip_first = *p;
      skip_len += len;
      if (!nl) return end;
      const bool empty = skip_len == 0 || (skip_len == 1 && skip_first == '\r');
      skip_len = 0;
      p = nl + 1;
      if (empty) {
        top_body = true;
        return p;
      }
      if (p == end) return end;
    }
  }

  void process_line() {
    if (!stack.empty() && stack.back().state == State::kHeaders)
      process_header_line();
    else
      process_body_line();
  }

  void process_header_line() {
    Frame& f = stack.back();
    std::string_view l = line;
    if (open_boundaries && l.starts_with("--") && try_boundary(l)) return;
    if (l.size() > lim.max_line) l = l.substr(0, lim.max_line);  // longer lines are cut
    if (l.empty()) {
      end_headers();
      return;
    }
    if (l[0] == ' ' || l[0] == '\t') {
      if (!field.empty()) field += l;  // unfolding: the line break goes, the blank stays
      first_line = false;
      return;
    }
    complete_field(f);
    if (first_line && stack.size() == 1 && l.starts_with("From ")) {
      first_line = false;  // mbox separator, not a header
      return;
    }
    first_line = false;
    if (valid_field_name(l)) {
      field.assign(l);
      return;
    }
    // Not a header: the section ended without its empty line and this line
    // is already body (what RFC 5322 readers do with it).
    const bool top = stack.size() == 1;
    end_headers();
    if (stopped) return;
    if (top) {
      raw_emit(line);
      raw_emit(line_eol);
    }
    process_line();
  }

  void process_body_line() {
    std::string_view l = line;
    if (open_boundaries && l.starts_with("--") && try_boundary(l)) return;
    if (top_leaf_body()) {
      if (eol_pending) run.push_back('\n');
      run += l;
      eol_pending = true;
      if (run.size() >= kRunFlush) deliver_run();
    } else {
      eol_pending = false;
    }
  }

  // ---- boundaries and the entity stack -------------------------------------

  // Checks `l` (starting with "--") against the open boundaries, innermost
  // first; a boundary only matches with nothing but "--" and blanks after it,
  // so boundaries that are prefixes of each other stay apart.
  bool try_boundary(std::string_view l) {
    for (size_t k = stack.size(); k-- > 0;) {
      const Frame& f = stack[k];
      if (f.kind != Kind::kMultipart || f.state != State::kBody) continue;
      const std::string& b = f.boundary;
      if (l.size() < 2 + b.size() || l.compare(2, b.size(), b) != 0) continue;
      std::string_view rest = l.substr(2 + b.size());
      const bool close = rest.starts_with("--");
      if (close) rest.remove_prefix(2);
      if (rest.find_first_not_of(" \t") != std::string_view::npos) continue;
      on_boundary(k, close);
      return true;
    }
    return false;
  }

  void on_boundary(size_t k, bool close) {
    deliver_run();  // the line break before a boundary belongs to the boundary
    eol_pending = false;
    cr_pending = false;
    while (!stopped && stack.size() > k + 1) close_top();
    if (stopped) return;
    if (close) {
      close_top();
      if (!stack.empty() && stack.back().kind == Kind::kMessage) stack.back().state = State::kDone;
    } else {
      push_part(stack[k].info.depth + 1, stack[k].digest);
    }
  }

  bool push_part(unsigned depth, bool digest_child) {
    if (depth > lim.max_depth) {
      limit(LimitHit::kDepth);
      return false;
    }
    if (parts >= lim.max_parts) {
      limit(LimitHit::kParts);
      return false;
    }
    Frame f;
    f.info.index = parts++;
    f.info.depth = depth;
    f.digest_child = digest_child;
    stack.push_back(std::move(f));
    header_bytes = 0;
    field.clear();
    return true;
  }

  void complete_field(Frame& f) {
    if (field.empty()) return;
    std::string_view l = field;
    size_t colon = l.find(':');
    std::string_view name = l.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    std::string_view value = trim(l.substr(colon + 1));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.remove_suffix(1);
    value = trim(value);
    // Content-* fields feed the part description; the first of each counts.
    if (istarts_with(name, "content-")) {
      ContentFields& c = f.fields;
      if (!c.has_type && iequals(name, "content-type")) {
        c.type = std::string(value);
        c.has_type = true;
      } else if (!c.has_transfer_encoding && iequals(name, "content-transfer-encoding")) {
        c.transfer_encoding = std::string(value);
        c.has_transfer_encoding = true;
      } else if (!c.has_disposition && iequals(name, "content-disposition")) {
        c.disposition = std::string(value);
        c.has_disposition = true;
      }
    }
    scratch.clear();
    decode_words(value, cache, scratch);
    h.on_header(f.info, name, scratch);
    field.clear();
  }

  // The header section of the top entity is over; its body follows.
  void end_headers() {
    Frame& f = stack.back();
    complete_field(f);
    fill_part_info(f.info, f.fields, f.digest_child, cache, f.boundary);
    f.fields = {};
    f.kind = f.info.is_multipart ? Kind::kMultipart : f.info.is_message ? Kind::kMessage : Kind::kLeaf;
    f.state = State::kBody;
    if (stack.size() == 1) top_body = true;
    h.on_part_begin(f.info);
    switch (f.kind) {
      case Kind::kMultipart:
        f.digest = f.info.content_type == "multipart/digest";
        ++open_boundaries;
        max_boundary = std::max(max_boundary, f.boundary.size());
        break;
      case Kind::kLeaf:
        run.clear();
        eol_pending = false;
        cr_pending = false;
        leaf.start(f.info, &decoded, lim);
        break;
      case Kind::kMessage:
        push_part(f.info.depth + 1, false);  // the nested message's header section
        break;
    }
  }

  // Closes the innermost open entity: flushes a leaf, reports the end.
  void close_top() {
    Frame& f = stack.back();
    if (f.state == State::kHeaders) {
      // Cut short before its body (a boundary or the end of input).
      complete_field(f);
      fill_part_info(f.info, f.fields, f.digest_child, cache, f.boundary);
      if (stack.size() == 1) top_body = true;
      h.on_part_begin(f.info);
      h.on_part_end(f.info, "");
    } else if (f.kind == Kind::kLeaf) {
      deliver_run();
      leaf.finish(f.info);
    } else {
      h.on_part_end(f.info, "");
    }
    pop();
  }

  void pop() {
    if (stack.back().kind == Kind::kMultipart && stack.back().state != State::kHeaders) {
      --open_boundaries;
      max_boundary = 0;
      for (size_t k = 0; k + 1 < stack.size(); ++k)
        if (stack[k].kind == Kind::kMultipart) max_boundary = std::max(max_boundary, stack[k].boundary.size());
    }
    stack.pop_back();
  }

  void deliver_run() {
    if (run.empty()) return;
    if (top_leaf_body() && !stopped) {
      leaf.input(stack.back().info, run);
      if (leaf.over_budget()) {
        run.clear();
        limit(LimitHit::kDecodedSize);
        return;
      }
    }
    run.clear();
  }

  // ---- limits and raw body -------------------------------------------------

  // A bound was hit: report it (once per kind), close what is open, and
  // decode nothing more. Raw body events go on.
  void limit(LimitHit what) {
    auto k = static_cast<size_t>(what);
    if (!fired[k]) {
      fired[k] = true;
      h.on_limit(what);
    }
    if (stopped) return;
    stopped = true;
    run.clear();
    field.clear();
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.state == State::kBody) {
        if (f.kind == Kind::kLeaf)
          leaf.finish(f.info);
        else
          h.on_part_end(f.info, "");
      }
      // A frame still in its header section was never announced: drop it.
      stack.pop_back();
    }
    open_boundaries = 0;
  }

  void raw_emit(std::string_view s) {
    if (s.empty()) return;
    if (raw.empty() && s.size() >= kRawFlush) {
      h.on_raw_body(s);
      return;
    }
    raw.append(s);
    if (raw.size() >= kRawFlush) {
      h.on_raw_body(raw);
      raw.clear();
    }
  }
};

Walker::Walker(Handler& handler, const Limits& limits) : impl_(std::make_unique<Impl>(handler, limits)) {}
Walker::~Walker() = default;
void Walker::feed(std::string_view bytes) { impl_->feed(bytes); }
void Walker::finish() { impl_->finish(); }
unsigned Walker::parts_seen() const { return impl_->parts; }
uint64_t Walker::decoded_bytes() const { return impl_->decoded; }

}  // namespace mxguard::mime
