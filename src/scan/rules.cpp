// The rule-file parser and linker: rules/*.rules text to a checked RuleSet.
// Every error names the file, the line and (when known) the rule.
#include "mxguard/scan/rules.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard::scan {

namespace {

constexpr size_t kMaxIdLength = 64;
constexpr size_t kMaxPatternLength = 8192;

struct TargetName {
  std::string_view name;
  Target target;
};
constexpr TargetName kTargets[] = {
    {"header", Target::kHeader},
    {"headers", Target::kHeaders},
    {"subject", Target::kSubject},
    {"from", Target::kFrom},
    {"text", Target::kText},
    {"html", Target::kHtml},
    {"raw", Target::kRaw},
    {"url", Target::kUrl},
    {"url-host", Target::kUrlHost},
    {"attachment-name", Target::kAttachmentName},
    {"attachment-type", Target::kAttachmentType},
    {"attachment-content", Target::kAttachmentContent},
    {"archive-member", Target::kArchiveMember},
};

std::string_view trim_line(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  if (!(id[0] >= 'A' && id[0] <= 'Z')) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool valid_header_name(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return c > 32 && c < 127 && c != ':'; });
}

std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// "/pattern/flags": the body with "\/" turned back into "/", and the flags.
Result<std::pair<std::string, uint8_t>> parse_pattern(std::string_view s) {
  if (s.size() < 2 || s.front() != '/') return Error{"a pattern is written /regex/flags"};
  size_t close = std::string_view::npos;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '/') {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) return Error{"the pattern has no closing slash"};
  std::string body;
  std::string_view raw = s.substr(1, close - 1);
  // Escapes are read in pairs, as the closing-slash search reads them: "\\/"
  // is a slash, any other pair (such as an escaped backslash) stays as written.
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) {
      if (raw[i + 1] != '/') body += '\\';
      body += raw[i + 1];
      ++i;
    } else {
      body += raw[i];
    }
  }
  if (body.empty()) return Error{"the pattern is empty"};
  if (body.size() > kMaxPatternLength) return Error{"the pattern is longer than 8192 characters"};
  uint8_t flags = 0;
  for (char c : s.substr(close + 1)) {
    uint8_t bit = 0;
    switch (c) {
      case 'i': bit = kCaseless; break;
      case 's': bit = kDotAll; break;
      case 'm': bit = kMultiLine; break;
      case 'u': bit = kUtf8; break;
      default: return Error{fmt::format("unknown pattern flag '{}' (flags are i, s, m, u)", c)};
    }
    if (flags & bit) return Error{fmt::format("pattern flag '{}' given twice", c)};
    flags |= bit;
  }
  return std::pair{std::move(body), flags};
}

// Splits "key rest-of-line" at the first run of blanks.
std::pair<std::string_view, std::string_view> split_key(std::string_view line) {
  size_t sp = line.find_first_of(" \t");
  if (sp == std::string_view::npos) return {line, {}};
  return {line.substr(0, sp), trim_line(line.substr(sp))};
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// Checks a builtin's name and arguments against the table in rules/README.md.
Status check_builtin(const std::vector<std::string>& b) {
  auto one_of = [&](std::initializer_list<std::string_view> values) -> Status {
    if (b.size() != 2) return Error{fmt::format("builtin {} takes one argument", b[0])};
    for (auto v : values)
      if (b[1] == v) return {};
    return Error{fmt::format("builtin {}: unknown result '{}'", b[0], b[1])};
  };
  auto range = [&](double lo_min, double hi_max) -> Status {
    if (b.size() != 3) return Error{fmt::format("builtin {} takes LOW HIGH", b[0])};
    auto lo = parse_number(b[1]);
    auto hi = parse_number(b[2]);
    if (!lo || !hi || *lo < lo_min || *hi > hi_max || *lo >= *hi)
      return Error{fmt::format("builtin {}: LOW and HIGH must be numbers with {} <= LOW < HIGH <= {}", b[0],
                               lo_min, hi_max)};
    return {};
  };
  const std::string& name = b[0];
  if (name == "spf") return one_of({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"});
  if (name == "dkim") return one_of({"pass", "fail", "none"});
  if (name == "dkim-aligned") {
    if (b.size() != 1) return Error{"builtin dkim-aligned takes no argument"};
    return {};
  }
  if (name == "dmarc") {
    if (b.size() == 3 && b[1] == "fail") {
      if (b[2] == "reject" || b[2] == "quarantine" || b[2] == "none") return {};
      return Error{fmt::format("builtin dmarc fail: unknown policy '{}'", b[2])};
    }
    return one_of({"pass", "none"});
  }
  if (name == "dnsbl" || name == "uribl") {
    if (b.size() != 2 || b[1].find('.') == std::string::npos)
      return Error{fmt::format("builtin {} takes a DNS zone", name)};
    return {};
  }
  if (name == "helo") return one_of({"ip-literal", "bad-syntax", "no-resolve", "mismatch"});
  if (name == "rdns") return one_of({"none", "unconfirmed"});
  if (name == "bayes") return range(0.0, 1.0);
  if (name == "mime-limit") return one_of({"depth", "parts", "decoded-size", "header-size"});
  if (name == "size") return range(0.0, 1e12);
  if (name == "archive") return one_of({"encrypted"});
  if (name == "from") return one_of({"multiple"});
  return Error{fmt::format("unknown builtin '{}'", name)};
}

// Recursive-descent parser for combination expressions:
//   or := and ('|' and)* ; and := unary ('&' unary)* ; unary := '!' unary | '(' or ')' | ID
class ExprParser {
 public:
  ExprParser(std::string_view text, const std::map<std::string, uint32_t, std::less<>>& ids)
      : s_(text), ids_(ids) {}

  Result<std::vector<ExprOp>> parse() {
    std::vector<ExprOp> out;
    if (auto st = parse_or(out, 0); !st) return Error{st.error()};
    skip();
    if (pos_ != s_.size()) return Error{fmt::format("unexpected '{}' in combination", s_.substr(pos_, 1))};
    return out;
  }

 private:
  static constexpr unsigned kMaxDepth = 64;

  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Status parse_or(std::vector<ExprOp>& out, unsigned depth) {
    if (auto st = parse_and(out, depth); !st) return st;
    while (eat('|')) {
      if (auto st = parse_and(out, depth); !st) return st;
      out.push_back({ExprOp::kOr, 0});
    }
    return {};
  }
  Status parse_and(std::vector<ExprOp>& out, unsigned depth) {
    if (auto st = parse_unary(out, depth); !st) return st;
    while (eat('&')) {
      if (auto st = parse_unary(out, depth); !st) return st;
      out.push_back({ExprOp::kAnd, 0});
    }
    return {};
  }
  Status parse_unary(std::vector<ExprOp>& out, unsigned depth) {
    if (depth > kMaxDepth) return Error{"combination nested too deeply"};
    if (eat('!')) {
      if (auto st = parse_unary(out, depth + 1); !st) return st;
      out.push_back({ExprOp::kNot, 0});
      return {};
    }
    if (eat('(')) {
      if (auto st = parse_or(out, depth + 1); !st) return st;
      if (!eat(')')) return Error{"missing ')' in combination"};
      return {};
    }
    skip();
    size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    std::string_view id = s_.substr(start, pos_ - start);
    if (id.empty()) {
      if (pos_ >= s_.size()) return Error{"combination ends where a rule id was expected"};
      return Error{fmt::format("unexpected '{}' in combination", s_.substr(pos_, 1))};
    }
    auto it = ids_.find(id);
    if (it == ids_.end()) return Error{fmt::format("combination uses unknown rule {}", id)};
    out.push_back({ExprOp::kRule, it->second});
    return {};
  }

  std::string_view s_;
  size_t pos_ = 0;
  const std::map<std::string, uint32_t, std::less<>>& ids_;
};

}  // namespace

std::string_view to_string(Target t) {
  for (const auto& tn : kTargets)
    if (tn.target == t) return tn.name;
  return "?";
}

bool is_stream_target(Target t) {
  return t == Target::kText || t == Target::kHtml || t == Target::kRaw || t == Target::kAttachmentContent;
}

Result<RuleFile> parse_rule_file(std::string_view text, std::string_view file) {
  RuleFile out;
  std::vector<Rule>& rules = out.rules;
  // Which directives the open rule has seen, to report missing or repeated ones.
  struct Seen {
    bool description = false, score = false, target = false, pattern = false, combine = false, builtin = false;
  } seen;

  auto fail = [&](unsigned line, std::string_view msg) -> Error {
    if (!rules.empty() && rules.back().line != 0 && line >= rules.back().line)
      return Error{fmt::format("{}:{}: rule {}: {}", file, line, rules.back().id, msg)};
    return Error{fmt::format("{}:{}: {}", file, line, msg)};
  };
  // Checks the open rule is complete; `line` is where the next one starts.
  auto close_rule = [&](unsigned line) -> Status {
    if (rules.empty()) return {};
    Rule& r = rules.back();
    auto err = [&](std::string_view msg) {
      return Error{fmt::format("{}:{}: rule {}: {}", file, r.line, r.id, msg)};
    };
    (void)line;
    if (!seen.description) return err("no description");
    if (!seen.score) return err("no score");
    int kinds = int(seen.pattern) + int(seen.combine) + int(seen.builtin);
    if (kinds == 0) return err("needs one of pattern, combine or builtin");
    if (kinds > 1) return err("has more than one of pattern, combine and builtin");
    if (seen.pattern && !seen.target) return err("a pattern rule needs a target");
    if (!seen.pattern && seen.target) return err("only pattern rules have a target");
    // Hyperscan's UTF-8 mode is undefined on invalid UTF-8, and only decoded
    // targets are guaranteed to be valid.
    if (seen.pattern && (r.flags & kUtf8) && (r.target == Target::kRaw || r.target == Target::kAttachmentContent))
      return err("flag u is not allowed on raw or attachment-content (they are not UTF-8)");
    return {};
  };

  unsigned lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
    std::string_view line = trim_line(raw);
    if (line.empty() || line.front() == '#') continue;
    if (std::any_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 32 && c != '\t'; }))
      return fail(lineno, "control character in line");
    auto [key, value] = split_key(line);

    // `score RULE_ID N` (two words) overrides another rule's score wherever
    // it stands; `score N` inside a rule is that rule's own.
    if (key == "score" && value.find_first_of(" \t") != std::string_view::npos) {
      auto [id, number] = split_key(value);
      if (!valid_id(id))
        return Error{fmt::format("{}:{}: score override: '{}' is not a rule id (score RULE_ID N)", file, lineno, id)};
      auto v = parse_number(number);
      if (!v || *v < -100 || *v > 100)
        return Error{fmt::format("{}:{}: score override of {}: '{}' is not a number in [-100, 100]", file, lineno, id,
                                 number)};
      out.overrides.push_back({std::string(id), *v, std::string(file), lineno});
      continue;
    }
    if (key == "rule") {
      if (auto st = close_rule(lineno); !st) return Error{st.error()};
      if (!valid_id(value))
        return Error{fmt::format("{}:{}: '{}' is not a rule id (A-Z, 0-9, _; starting with a letter; at most 64)",
                                 file, lineno, value)};
      Rule r;
      r.id = std::string(value);
      r.file = std::string(file);
      r.line = lineno;
      rules.push_back(std::move(r));
      seen = {};
      continue;
    }
    if (rules.empty()) return fail(lineno, fmt::format("'{}' outside a rule (a rule starts with 'rule ID')", key));
    Rule& r = rules.back();
    if (key == "description") {
      if (seen.description) return fail(lineno, "description given twice");
      if (value.empty()) return fail(lineno, "empty description");
      r.description = std::string(value);
      seen.description = true;
    } else if (key == "score") {
      if (seen.score) return fail(lineno, "score given twice");
      auto v = parse_number(value);
      if (!v || *v < -100 || *v > 100) return fail(lineno, fmt::format("score '{}' is not a number in [-100, 100]", value));
      r.score = *v;
      seen.score = true;
    } else if (key == "target") {
      if (seen.target) return fail(lineno, "target given twice");
      std::string_view t = value;
      if (t.starts_with("header:")) {
        std::string_view name = t.substr(7);
        if (!valid_header_name(name)) return fail(lineno, fmt::format("'{}' is not a header name", name));
        r.target = Target::kHeader;
        r.header = to_lower(name);
      } else {
        auto it = std::find_if(std::begin(kTargets), std::end(kTargets),
                               [&](const TargetName& tn) { return tn.name == t && tn.target != Target::kHeader; });
        if (it == std::end(kTargets)) return fail(lineno, fmt::format("unknown target '{}'", t));
        r.target = it->target;
      }
      seen.target = true;
    } else if (key == "pattern") {
      if (seen.pattern) return fail(lineno, "pattern given twice");
      auto p = parse_pattern(value);
      if (!p) return fail(lineno, p.error());
      r.kind = RuleKind::kPattern;
      r.pattern = std::move(p->first);
      r.flags = p->second;
      seen.pattern = true;
    } else if (key == "combine") {
      if (seen.combine) return fail(lineno, "combine given twice");
      if (value.empty()) return fail(lineno, "empty combination");
      r.kind = RuleKind::kCombine;
      r.expression = std::string(value);
      seen.combine = true;
    } else if (key == "builtin") {
      if (seen.builtin) return fail(lineno, "builtin given twice");
      r.kind = RuleKind::kBuiltin;
      r.builtin = split_words(value);
      if (r.builtin.empty()) return fail(lineno, "builtin needs a name");
      for (auto& w : r.builtin) w = to_lower(w);
      if (auto st = check_builtin(r.builtin); !st) return fail(lineno, st.error());
      seen.builtin = true;
    } else {
      return fail(lineno, fmt::format("unknown directive '{}'", key));
    }
  }
  if (auto st = close_rule(lineno); !st) return Error{st.error()};
  return out;
}

Result<std::vector<Rule>> parse_rules(std::string_view text, std::string_view file) {
  auto parsed = parse_rule_file(text, file);
  if (!parsed) return Error{parsed.error()};
  if (!parsed->overrides.empty()) {
    const ScoreOverride& o = parsed->overrides.front();
    return Error{fmt::format("{}:{}: a score override of {} is not allowed here", o.file, o.line, o.rule)};
  }
  return std::move(parsed->rules);
}

Status apply_overrides(RuleSet& set, const std::vector<ScoreOverride>& overrides) {
  std::map<std::string_view, uint32_t> ids;
  for (uint32_t i = 0; i < set.rules.size(); ++i) ids.emplace(set.rules[i].id, i);
  std::map<std::string_view, const ScoreOverride*> seen;
  for (const auto& o : overrides) {
    auto it = ids.find(o.rule);
    if (it == ids.end())
      return Error{fmt::format("{}:{}: score override of unknown rule {}", o.file, o.line, o.rule)};
    auto [prev, fresh] = seen.emplace(o.rule, &o);
    if (!fresh)
      return Error{fmt::format("{}:{}: rule {} is overridden already at {}:{}", o.file, o.line, o.rule,
                               prev->second->file, prev->second->line)};
    set.rules[it->second].score = o.score;
  }
  return {};
}

Result<RuleSet> link_rules(std::vector<Rule> rules) {
  RuleSet set;
  std::map<std::string, uint32_t, std::less<>> ids;
  for (uint32_t i = 0; i < rules.size(); ++i) {
    auto [it, fresh] = ids.emplace(rules[i].id, i);
    if (!fresh) {
      const Rule& first = rules[it->second];
      return Error{fmt::format("{}:{}: rule {}: id already used at {}:{}", rules[i].file, rules[i].line, rules[i].id,
                               first.file, first.line)};
    }
  }
  set.programs.resize(rules.size());
  for (uint32_t i = 0; i < rules.size(); ++i) {
    if (rules[i].kind != RuleKind::kCombine) continue;
    auto prog = ExprParser(rules[i].expression, ids).parse();
    if (!prog) return Error{fmt::format("{}:{}: rule {}: {}", rules[i].file, rules[i].line, rules[i].id, prog.error())};
    set.programs[i] = std::move(*prog);
  }
  // Depth-first topological order over combine -> combine edges; a grey node
  // met again is a cycle.
  std::vector<uint8_t> mark(rules.size(), 0);  // 0 white, 1 grey, 2 black
  for (uint32_t root = 0; root < rules.size(); ++root) {
    if (rules[root].kind != RuleKind::kCombine || mark[root] == 2) continue;
    std::vector<std::pair<uint32_t, size_t>> stack{{root, 0}};
    mark[root] = 1;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& prog = set.programs[node];
      bool descended = false;
      while (next < prog.size()) {
        const ExprOp& op = prog[next++];
        if (op.kind != ExprOp::kRule || rules[op.rule].kind != RuleKind::kCombine) continue;
        if (mark[op.rule] == 1)
          return Error{fmt::format("{}:{}: rule {}: combination cycle through {}", rules[node].file,
                                   rules[node].line, rules[node].id, rules[op.rule].id)};
        if (mark[op.rule] == 0) {
          mark[op.rule] = 1;
          stack.push_back({op.rule, 0});
          descended = true;
          break;
        }
      }
      if (descended) continue;
      mark[node] = 2;
      set.combine_order.push_back(node);
      stack.pop_back();
    }
  }
  set.rules = std::move(rules);
  return set;
}

Result<RuleFile> read_rules_dir(const std::string& dir, bool must_exist, bool full_paths) {
  namespace fs = std::filesystem;
  std::error_code ec;
  RuleFile all;
  if (!must_exist && !fs::exists(dir, ec)) return all;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".rules" && it->is_regular_file()) files.push_back(it->path());
  }
  if (ec) return Error{fmt::format("{}: {}", dir, ec.message())};
  if (files.empty() && must_exist) return Error{fmt::format("{}: no *.rules files", dir)};
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error{fmt::format("{}: cannot read", f.string())};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = parse_rule_file(text, full_paths ? f.string() : f.filename().string());
    if (!parsed) return Error{parsed.error()};
    for (auto& r : parsed->rules) all.rules.push_back(std::move(r));
    for (auto& o : parsed->overrides) all.overrides.push_back(std::move(o));
  }
  return all;
}

Result<RuleSet> load_rules_dir(const std::string& dir) {
  auto files = read_rules_dir(dir, true, false);
  if (!files) return Error{files.error()};
  auto set = link_rules(std::move(files->rules));
  if (!set) return Error{set.error()};
  if (auto st = apply_overrides(*set, files->overrides); !st) return Error{st.error()};
  return set;
}

bool evaluate(const std::vector<ExprOp>& program, const std::vector<bool>& fired) {
  // Programs are at most a few dozen ops; a small fixed stack keeps this allocation-free.
  bool stack[256];
  size_t top = 0;
  for (const ExprOp& op : program) {
    switch (op.kind) {
      case ExprOp::kRule:
        if (top == std::size(stack)) return false;
        stack[top++] = fired[op.rule];
        break;
      case ExprOp::kNot:
        stack[top - 1] = !stack[top - 1];
        break;
      case ExprOp::kAnd:
        --top;
        stack[top - 1] = stack[top - 1] && stack[top];
        break;
      case ExprOp::kOr:
        --top;
        stack[top - 1] = stack[top - 1] || stack[top];
        break;
    }
  }
  return top == 1 && stack[0];
}

}  // namespace mxguard::scan
