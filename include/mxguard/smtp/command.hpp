// SMTP command-line tokenizer: a pure function from one line to a verb and its arguments.
#pragma once

#include <cstdint>
#include <string_view>

namespace mxguard::smtp {

enum class Verb : uint8_t {
  kEhlo, kHelo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit,
  kVrfy, kExpn, kHelp, kStarttls, kAuth,
  kHttp,     // GET, POST, CONNECT, HEAD, PUT: a proxy probe, answered with a close
  kUnknown,
};

struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view verb_text;  // as sent
  std::string_view args;       // after the verb and separating space(s); trailing spaces removed
};

// Splits one command line (CRLF already removed). Never fails: an
// unrecognised verb is kUnknown; validation of args is the handler's job.
Command parse_command(std::string_view line);

std::string_view verb_name(Verb v);

}  // namespace mxguard::smtp
