// libFuzzer target: the pure parsers (command line, MAIL/RCPT paths, DATA reader).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mxguard/smtp/address.hpp"
#include "mxguard/smtp/command.hpp"
#include "mxguard/smtp/data_reader.hpp"

using namespace mxguard::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Command c = parse_command(in);
  if (c.args.size() > in.size()) abort();
  (void)parse_mail_from(in);
  (void)parse_rcpt_to(in, size % 2 == 0);
  (void)valid_domain(in, true);

  DataReader r({4096, 1000});
  std::string out;
  size_t used = 0;
  for (size_t step = 1 + size % 13; used < size && !r.done();) {
    size_t n = r.feed_dot(in.substr(used, step), out);
    used += n;
  }
  if (out.size() > 4096 + 1) abort();  // stored content never exceeds the limit
  if (r.done() && used < 3) abort();   // the shortest terminator is ".\r\n"
  return 0;
}
