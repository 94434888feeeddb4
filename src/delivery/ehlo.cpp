// Reads the service extensions a backend announces in its EHLO reply.
#include <string>

#include "mxguard/core/strings.hpp"
#include "mxguard/delivery/client.hpp"

namespace mxguard::delivery {

namespace {

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// Splits on spaces, dropping empty words.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t sp = s.find(' ', pos);
    const size_t end = sp == std::string_view::npos ? s.size() : sp;
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

bool Extensions::has_auth_mechanism(std::string_view name) const {
  for (const std::string& m : auth_mechanisms)
    if (iequals(m, name)) return true;
  return false;
}

Extensions parse_ehlo(const Reply& ehlo) {
  Extensions ext;
  for (size_t i = 1; i < ehlo.lines.size(); ++i) {
    std::vector<std::string_view> params = words(trim(ehlo.lines[i]));
    if (params.empty()) continue;
    std::string_view keyword = params.front();
    params.erase(params.begin());
    // Old servers (and Outlook-era clients) announce "AUTH=LOGIN PLAIN".
    if (const size_t eq = keyword.find('='); eq != std::string_view::npos) {
      if (eq + 1 < keyword.size()) params.insert(params.begin(), keyword.substr(eq + 1));
      keyword = keyword.substr(0, eq);
    }
    if (iequals(keyword, "STARTTLS")) {
      ext.starttls = true;
    } else if (iequals(keyword, "PIPELINING")) {
      ext.pipelining = true;
    } else if (iequals(keyword, "SIZE")) {
      ext.size = true;
      if (!params.empty())
        if (auto n = parse_u64(params.front())) ext.size_limit = *n;
    } else if (iequals(keyword, "8BITMIME")) {
      ext.eightbitmime = true;
    } else if (iequals(keyword, "SMTPUTF8")) {
      ext.smtputf8 = true;
    } else if (iequals(keyword, "ENHANCEDSTATUSCODES")) {
      ext.enhanced_status_codes = true;
    } else if (iequals(keyword, "AUTH")) {
      ext.auth = true;
      for (std::string_view m : params)
        if (!ext.has_auth_mechanism(m)) ext.auth_mechanisms.push_back(to_upper(m));
    }
  }
  return ext;
}

}  // namespace mxguard::delivery
