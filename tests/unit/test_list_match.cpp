// Allow/block list values: the wildcard forms operators type, how they are
// stored, and which senders they match (pure functions of store/policy.cpp).
#include <doctest.h>

#include <algorithm>
#include <string>

#include "mxguard/store/policy.hpp"

using namespace mxguard::store;
using mxguard::IpAddress;

namespace {

// The entry as the console would store it, "kind value", or "error: ..." when refused.
std::string stored(ListKind kind, std::string_view typed) {
  auto t = canonical_list_entry(kind, typed);
  if (!t) return "error: " + t.error();
  return std::string(to_string(t->kind)) + " " + t->value;
}

bool matches(std::string_view typed_kind, std::string_view typed, std::string_view sender) {
  auto t = canonical_list_entry(*list_kind_from_string(typed_kind), typed);
  REQUIRE(t.ok());
  std::string_view domain = sender.substr(sender.rfind('@') + 1);
  return list_value_matches(t->kind, t->value, sender, domain, std::nullopt);
}

}  // namespace

TEST_CASE("list entries: the wildcard forms are normalised to one stored form") {
  CHECK(stored(ListKind::kSender, "*@Evil.Test") == "sender *@evil.test");
  CHECK(stored(ListKind::kSender, " *@evil.test ") == "sender *@evil.test");
  CHECK(stored(ListKind::kSenderDomain, "*@evil.test") == "sender *@evil.test");
  CHECK(stored(ListKind::kSenderDomain, "*.Evil.Test.") == "sender-domain *.evil.test");
  CHECK(stored(ListKind::kSender, "*.evil.test") == "sender-domain *.evil.test");
  CHECK(stored(ListKind::kSender, "*@*.evil.test") == "sender-domain *.evil.test");
  CHECK(stored(ListKind::kSenderDomain, "*@*.evil.test") == "sender-domain *.evil.test");
  // Plain values are unchanged by the wildcard support.
  CHECK(stored(ListKind::kSender, "Spammer@Bad.example") == "sender spammer@bad.example");
  CHECK(stored(ListKind::kSenderDomain, "bad.example") == "sender-domain bad.example");
  CHECK(stored(ListKind::kClientIp, "192.0.2.7/24") == "ip 192.0.2.0/24");
}

TEST_CASE("list entries: any other '*' is refused with the right forms in the message") {
  for (std::string_view bad : {"*", "*@*", "a*@evil.test", "x@*.evil.test", "*evil.test", "evil.*.test",
                               "*@evil.*", "**@evil.test", "*.*.evil.test"}) {
    CAPTURE(bad);
    for (ListKind k : {ListKind::kSender, ListKind::kSenderDomain}) {
      std::string s = stored(k, bad);
      CHECK(s.starts_with("error: "));
      CHECK(s.find("*@domain") != std::string::npos);
    }
  }
  // A TLD-wide wildcard names no domain of two labels.
  CHECK(stored(ListKind::kSenderDomain, "*.com").starts_with("error: "));
  CHECK(stored(ListKind::kSender, "*@com").starts_with("error: "));
  std::string ip = stored(ListKind::kClientIp, "192.0.2.*");
  CHECK(ip.starts_with("error: "));
  CHECK(ip.find("CIDR") != std::string::npos);
}

TEST_CASE("list matching: *@domain is any sender at exactly that domain") {
  CHECK(matches("sender", "*@evil.test", "anyone@evil.test"));
  CHECK(matches("sender", "*@evil.test", "Other.Person@evil.test"));
  CHECK_FALSE(matches("sender", "*@evil.test", "anyone@mail.evil.test"));
  CHECK_FALSE(matches("sender", "*@evil.test", "anyone@notevil.test"));
  CHECK_FALSE(matches("sender", "*@evil.test", "anyone@evil.test.example"));
}

TEST_CASE("list matching: *.domain is any subdomain, not the domain itself") {
  CHECK(matches("sender-domain", "*.evil.test", "a@mail.evil.test"));
  CHECK(matches("sender-domain", "*.evil.test", "a@x.y.evil.test"));
  CHECK_FALSE(matches("sender-domain", "*.evil.test", "a@evil.test"));
  CHECK_FALSE(matches("sender-domain", "*.evil.test", "a@notevil.test"));
  CHECK_FALSE(matches("sender-domain", "*.evil.test", "a@mailevil.test"));
  // A plain domain covers itself and its subdomains, as before.
  CHECK(matches("sender-domain", "evil.test", "a@evil.test"));
  CHECK(matches("sender-domain", "evil.test", "a@mail.evil.test"));
  CHECK_FALSE(matches("sender-domain", "evil.test", "a@notevil.test"));
  // Exact addresses, compared without case.
  CHECK(matches("sender", "boss@client.example", "Boss@Client.example"));
  CHECK_FALSE(matches("sender", "boss@client.example", "boss2@client.example"));
}

TEST_CASE("list matching: the lookup candidates and the null sender") {
  auto v = sender_match_values(ListKind::kSenderDomain, "a@x.mail.evil.test", "x.mail.evil.test");
  std::vector<std::string> want = {"x.mail.evil.test", "*.mail.evil.test", "mail.evil.test", "*.evil.test",
                                   "evil.test", "test"};
  CHECK(v == want);
  CHECK(sender_match_values(ListKind::kSender, "A@Evil.test", "evil.test") ==
        std::vector<std::string>{"a@evil.test", "*@evil.test"});
  CHECK(sender_match_values(ListKind::kSender, "", "").empty());
  CHECK(sender_match_values(ListKind::kSenderDomain, "", "").empty());
  CHECK_FALSE(list_value_matches(ListKind::kSender, "*@evil.test", "", "", std::nullopt));
  CHECK(list_value_matches(ListKind::kClientIp, "192.0.2.0/24", "", "", IpAddress::parse("192.0.2.9")));
  CHECK_FALSE(list_value_matches(ListKind::kClientIp, "192.0.2.0/24", "", "", IpAddress::parse("192.0.3.9")));
}
