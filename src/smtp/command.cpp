// Tokenizes SMTP command lines (RFC 5321 section 4.1).
#include "mxguard/smtp/command.hpp"

#include "mxguard/core/strings.hpp"

namespace mxguard::smtp {

namespace {

struct VerbName {
  std::string_view name;
  Verb verb;
};

constexpr VerbName kVerbs[] = {
    {"EHLO", Verb::kEhlo}, {"HELO", Verb::kHelo},         {"MAIL", Verb::kMail},
    {"RCPT", Verb::kRcpt}, {"DATA", Verb::kData},         {"BDAT", Verb::kBdat},
    {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop},         {"QUIT", Verb::kQuit},
    {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn},         {"HELP", Verb::kHelp},
    {"STARTTLS", Verb::kStarttls}, {"AUTH", Verb::kAuth},
    {"GET", Verb::kHttp},  {"POST", Verb::kHttp},         {"CONNECT", Verb::kHttp},
    {"HEAD", Verb::kHttp}, {"PUT", Verb::kHttp},
};

}  // namespace

Command parse_command(std::string_view line) {
  Command cmd;
  size_t end = 0;
  while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
  cmd.verb_text = line.substr(0, end);
  std::string_view rest = line.substr(end);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  cmd.args = rest;
  for (const auto& v : kVerbs) {
    if (iequals(cmd.verb_text, v.name)) {
      cmd.verb = v.verb;
      break;
    }
  }
  return cmd;
}

std::string_view verb_name(Verb v) {
  for (const auto& e : kVerbs)
    if (e.verb == v) return v == Verb::kHttp ? std::string_view("HTTP") : e.name;
  return "UNKNOWN";
}

}  // namespace mxguard::smtp
