// Verification tokens: getrandom(2) bytes mapped to base62 by rejection sampling.
#include "mxguard/admin/token.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <string_view>

namespace mxguard::admin {

namespace {

constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kTokenChars = 32;
// 248 = 4 * 62: bytes below it map onto the alphabet evenly; the rest are
// dropped, because `byte % 62` over all 256 values would favour the first 8.
constexpr unsigned kAcceptBelow = 256 - 256 % kBase62.size();

// Fills `buf` from the kernel CSPRNG, retrying on signals and short reads.
Status fill_random(unsigned char* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = getrandom(buf + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{fmt::format("getrandom: {}", std::strerror(errno))};
    got += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<std::string> new_verify_token() {
  std::string token = "mxg-";
  unsigned char buf[64];
  while (token.size() < 4 + kTokenChars) {
    if (auto s = fill_random(buf, sizeof buf); !s) return Error{s.error()};
    for (unsigned char b : buf) {
      if (b >= kAcceptBelow) continue;
      token += kBase62[b % kBase62.size()];
      if (token.size() == 4 + kTokenChars) break;
    }
  }
  return token;
}

}  // namespace mxguard::admin
