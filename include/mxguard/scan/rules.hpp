// Rule files: the text format of rules/*.rules (see rules/README.md) parsed
// into values. Pure: text in, rules or an error naming file, line and rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::scan {

enum class Target : uint8_t {
  kHeader,             // header:NAME
  kHeaders,
  kSubject,
  kFrom,
  kText,
  kHtml,
  kRaw,
  kUrl,
  kUrlHost,
  kAttachmentName,
  kAttachmentType,
  kAttachmentContent,
  kArchiveMember,      // each member name listed from a ZIP, gzip or tar attachment
};
inline constexpr size_t kTargetCount = 13;
std::string_view to_string(Target t);  // the rule-file spelling ("header" for header:NAME)
// Text, HTML, raw and attachment content are scanned as streams; the rest as strings.
bool is_stream_target(Target t);

enum class RuleKind : uint8_t { kPattern, kCombine, kBuiltin };

// Pattern flags as written after the closing slash.
enum PatternFlag : uint8_t { kCaseless = 1, kDotAll = 2, kMultiLine = 4, kUtf8 = 8 };

struct Rule {
  std::string id;
  std::string description;
  double score = 0;
  RuleKind kind = RuleKind::kPattern;
  Target target = Target::kText;
  std::string header;      // lower-case header name for Target::kHeader
  std::string pattern;     // Hyperscan expression, without slashes
  uint8_t flags = 0;       // PatternFlag bits
  std::string expression;  // combine: the expression as written
  std::vector<std::string> builtin;  // builtin: name and arguments
  std::string file;
  unsigned line = 0;       // where `rule ID` is
};

// A combination expression compiled to postfix over rule indexes.
struct ExprOp {
  enum Kind : uint8_t { kRule, kAnd, kOr, kNot } kind = kRule;
  uint32_t rule = 0;
};

struct RuleSet {
  std::vector<Rule> rules;
  // For each combine rule (same index as in rules), its postfix program;
  // empty for other kinds. Filled by link().
  std::vector<std::vector<ExprOp>> programs;
  // Combine rules in an order where each comes after the combinations it uses.
  std::vector<uint32_t> combine_order;
};

// A `score RULE_ID N` line: gives a rule defined anywhere in the set (a
// factory rule, from a local file) the score N in [-100, 100]; 0 silences it.
struct ScoreOverride {
  std::string rule;
  double score = 0;
  std::string file;
  unsigned line = 0;
};

// What one rule file holds: rules, and score overrides of other rules.
struct RuleFile {
  std::vector<Rule> rules;
  std::vector<ScoreOverride> overrides;
};

// Parses one file's text. `file` names it in errors ("file:line: rule ID: ...").
Result<RuleFile> parse_rule_file(std::string_view text, std::string_view file);
// The same for text that must hold rules only (a bundle's manifest): a score
// override there is an error.
Result<std::vector<Rule>> parse_rules(std::string_view text, std::string_view file);

// Checks ids are unique, resolves combination expressions and orders them
// (unknown ids and cycles are errors), and checks builtin names and arguments.
Result<RuleSet> link_rules(std::vector<Rule> rules);

// Sets the overridden scores; an unknown rule id, or a rule overridden twice,
// is an error naming the override's file and line.
Status apply_overrides(RuleSet& set, const std::vector<ScoreOverride>& overrides);

// Every *.rules file of a directory, in name order, parsed (as one RuleFile,
// files in name order) but not linked. `must_exist`: a missing directory, or
// one without *.rules files, is an error rather than nothing. Errors and
// rules name each file by its name, or by its whole path when `full_paths`.
Result<RuleFile> read_rules_dir(const std::string& dir, bool must_exist, bool full_paths);

// Every *.rules file of a directory, parsed and linked, overrides applied.
Result<RuleSet> load_rules_dir(const std::string& dir);

// Evaluates a combination program over the rules that fired.
bool evaluate(const std::vector<ExprOp>& program, const std::vector<bool>& fired);

}  // namespace mxguard::scan
