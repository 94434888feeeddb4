// The organisational domain (RFC 7489 3.2) from libpsl's built-in Public
// Suffix List: DMARC record fallback, alignment and URL-host reduction.
#include <libpsl.h>

#include "mxguard/auth/checks.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::auth {

std::string organisational_domain(std::string_view domain) {
  std::string name = to_lower(domain);
  if (!name.empty() && name.back() == '.') name.pop_back();
  const psl_ctx_t* psl = psl_builtin();
  if (!psl || name.empty()) return name;
  // NULL when the name is itself a public suffix (or empty): it stands for itself.
  const char* registrable = psl_registrable_domain(psl, name.c_str());
  return registrable ? std::string(registrable) : name;
}

}  // namespace mxguard::auth
