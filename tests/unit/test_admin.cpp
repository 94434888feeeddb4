// The admin library's tables: which role may do what to which tenant's
// domain (and what category a refusal has), which setting values are
// refused before anything is written, and the category -> status tables.
// Real LMDB in a temporary state dir; no sockets.
#include <doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "exit_codes.hpp"
#include "mxguard/admin/customers.hpp"
#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/lists.hpp"
#include "mxguard/admin/mx_check.hpp"
#include "mxguard/admin/recipients.hpp"
#include "mxguard/admin/users.hpp"

using namespace mxguard;
using admin::Category;

namespace {

struct Fixture {
  std::string dir;
  Config cfg;
  std::unique_ptr<store::ConfigStore> store;
  admin::Principal op{"console:test", store::Role::kOperator, "", ""};
  admin::Principal acme_admin{"acme-admin", store::Role::kCustomerAdmin, "acme", ""};
  admin::Principal acme_pm{"acme-pm", store::Role::kPostmaster, "acme", "acme.example"};
  admin::Principal anna{"anna", store::Role::kUser, "acme", ""};

  Fixture() {
    char tmpl[] = "/tmp/mxguard-admin-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    cfg.state_dir = dir;
    auto s = store::ConfigStore::open(dir);
    REQUIRE(s.ok());
    store = std::move(*s);
    for (auto [name, customer] : {std::pair{"acme.example", "acme"}, {"globex.example", "globex"}}) {
      admin::NewDomain in;
      in.domain = name;
      in.customer = customer;
      in.backend = "192.0.2.1";
      in.active = true;
      REQUIRE(admin::add_domain(as(op), in));
    }
  }
  ~Fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  admin::Actor as(const admin::Principal& p) { return {cfg, *store, p}; }
};

// The category of a failed outcome; "ok" for success.
template <typename T>
std::string category_of(const admin::Outcome<T>& o) {
  return o ? "ok" : std::string(admin::category_info(o.failure().category).name);
}

}  // namespace

TEST_CASE("admin: who may see and change which domain") {
  Fixture f;
  struct Case {
    const admin::Principal* who;
    const char* domain;
    const char* show;    // category of show_domain
    const char* set;     // category of set_domain (tls=encrypt)
    const char* remove;  // category of remove_domain, run last
  };
  const Case cases[] = {
      {&f.acme_pm, "globex.example", "not_found", "not_found", "not_found"},
      {&f.acme_admin, "globex.example", "not_found", "not_found", "not_found"},
      {&f.acme_admin, "nosuch.example", "not_found", "not_found", "not_found"},
      {&f.anna, "acme.example", "not_found", "not_found", "not_found"},
      {&f.acme_pm, "acme.example", "ok", "ok", "not_permitted"},
      {&f.acme_admin, "acme.example", "ok", "ok", "ok"},
      {&f.op, "nosuch.example", "not_found", "not_found", "not_found"},
      {&f.op, "globex.example", "ok", "ok", "ok"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.who->name);
    CAPTURE(c.domain);
    auto a = f.as(*c.who);
    CHECK(category_of(admin::show_domain(a, c.domain)) == c.show);
    admin::DomainSettings s;
    s.assignments = {"tls=encrypt"};
    CHECK(category_of(admin::set_domain(a, c.domain, s)) == c.set);
    CHECK(category_of(admin::remove_domain(a, c.domain)) == c.remove);
  }
}

TEST_CASE("admin: another tenant's domain and a missing one are refused alike") {
  Fixture f;
  auto a = f.as(f.acme_admin);
  auto other = admin::show_domain(a, "globex.example");
  auto missing = admin::show_domain(a, "nosuch.example");
  REQUIRE(!other);
  REQUIRE(!missing);
  CHECK(other.failure().out_of_scope);
  CHECK(missing.failure().out_of_scope);
  // The API's words are a missing object's; the console keeps "not permitted".
  CHECK(other.failure().message == "no such domain: globex.example");
  CHECK(missing.failure().message == "no such domain: nosuch.example");
  CHECK(admin::console_text(other.failure()) == "not permitted: domain globex.example");
  CHECK(admin::console_text(missing.failure()) == "not permitted: domain nosuch.example");
  // The API's status and the console's exit code for the same refusal.
  CHECK(admin::category_info(other.failure().category).http_status == 404);
  CHECK(console::exit_code_for(other.failure()) == console::kExitNotPermitted);
  // The list shows only the principal's own.
  auto listed = admin::list_domains(a);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].name == "acme.example");
}

TEST_CASE("admin: adding domains by role") {
  Fixture f;
  auto add = [&](const admin::Principal& p, const char* domain, const char* customer, bool active = false) {
    admin::NewDomain in;
    in.domain = domain;
    in.customer = customer;
    in.backend = "192.0.2.9";
    in.active = active;
    return category_of(admin::add_domain(f.as(p), in));
  };
  CHECK(add(f.acme_pm, "pm.example", "acme") == "not_permitted");
  CHECK(add(f.anna, "anna.example", "acme") == "not_permitted");
  CHECK(add(f.acme_admin, "new.example", "globex") == "not_permitted");
  CHECK(add(f.acme_admin, "new.example", "acme", true) == "not_permitted");
  CHECK(add(f.acme_admin, "new.example", "acme") == "ok");
  CHECK(add(f.acme_admin, "new.example", "acme") == "conflict");
  CHECK(add(f.acme_admin, "globex.example", "acme") == "conflict");
  CHECK(add(f.acme_admin, "Bad Name", "acme") == "usage");
  CHECK(add(f.op, "gmail.com", "acme") == "needs_force");
  // A role that may not add domains is refused whatever the input.
  CHECK(add(f.acme_pm, "Bad Name", "acme") == "not_permitted");
  CHECK(add(f.anna, "http://bad.example/", "") == "not_permitted");
}

TEST_CASE("admin: bad setting values are refused with their field, and nothing is written") {
  Fixture f;
  struct Case {
    const char* assignment;
    const char* field;  // "" = accepted
  };
  const Case cases[] = {
      {"backend=mail.acme.example:2525", ""}, {"backend=:25", "backend"},
      {"backend=host:99999", "backend"},       {"tls=dane", ""},
      {"tls=maybe", "tls"},                    {"trust=password", "trust"},
      {"recipients=some", "recipients"},       {"reject_threshold=abc", "reject_threshold"},
      {"reject_threshold=1e9", "reject_threshold"}, {"quarantine_days=0", "quarantine_days"},
      {"quarantine_days=3651", "quarantine_days"},  {"quarantine_days=30", ""},
      {"digest_from=nobody", "digest_from"},   {"digest_from=q@acme.example", ""},
      {"colour=blue", "colour"},               {"recipient_delimiter=+", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.assignment);
    store::Domain d;
    auto r = admin::apply_setting(d, c.assignment);
    if (*c.field == 0) {
      CHECK(r);
      continue;
    }
    REQUIRE(!r);
    CHECK(r.failure().category == Category::kUsage);
    CHECK(r.failure().field == c.field);
  }
  auto before = admin::show_domain(f.as(f.op), "acme.example");
  REQUIRE(before);
  admin::DomainSettings s;
  s.assignments = {"tls=encrypt", "quarantine_days=0"};
  auto refused = admin::set_domain(f.as(f.acme_admin), "acme.example", s);
  REQUIRE(!refused);
  CHECK(refused.failure().field == "quarantine_days");
  auto after = admin::show_domain(f.as(f.op), "acme.example");
  REQUIRE(after);
  CHECK(after->tls_policy == before->tls_policy);
  CHECK(store::encode_domain(*after) == store::encode_domain(*before));
  // An empty password keeps the stored one; a risky setting needs force.
  s.assignments = {"trust=auth", "auth_user=relay"};
  s.password_given = true;
  s.auth_password = "";
  CHECK(category_of(admin::set_domain(f.as(f.op), "acme.example", s)) == "needs_force");
  s.auth_password = "secret-one";
  REQUIRE(admin::set_domain(f.as(f.op), "acme.example", s));
  s.assignments = {"tls=none"};
  s.auth_password = "";
  auto kept = admin::set_domain(f.as(f.op), "acme.example", s);
  REQUIRE(kept);
  CHECK(kept->auth_password == "secret-one");
}

TEST_CASE("admin: customers and users by role") {
  Fixture f;
  CHECK(category_of(admin::add_customer(f.as(f.acme_admin), "initech")) == "not_permitted");
  CHECK(category_of(admin::add_customer(f.as(f.op), "bad name")) == "usage");
  CHECK(category_of(admin::add_customer(f.as(f.op), "initech")) == "ok");
  CHECK(category_of(admin::remove_customer(f.as(f.op), "acme")) == "conflict");
  CHECK(category_of(admin::remove_customer(f.as(f.op), "nosuch")) == "not_found");
  auto seen = admin::list_customers(f.as(f.acme_admin));
  REQUIRE(seen);
  REQUIRE(seen->size() == 1);
  CHECK((*seen)[0].customer.name == "acme");
  CHECK((*seen)[0].domains == 1);
  CHECK(category_of(admin::list_customers(f.as(f.acme_pm))) == "not_permitted");

  admin::NewUser pm{"globex-pm", "postmaster", "", "globex.example", "", {}, std::nullopt};
  auto refused = admin::add_user(f.as(f.acme_admin), pm);
  CHECK(category_of(refused) == "not_found");
  pm.domain = "acme.example";
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), pm)) == "ok");
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), pm)) == "conflict");
  admin::NewUser boss{"boss", "customer-admin", "acme", "", "", {}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), boss)) == "not_permitted");
  admin::NewUser weak{"weak", "user", "", "", "weak@acme.example", {}, std::string("short")};
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), weak)) == "usage");
  // A user may add nobody: refused whatever the input (it was a usage error for a bad name).
  admin::NewUser bad_name{"bad name", "user", "", "", "x@acme.example", {}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.anna), bad_name)) == "not_permitted");
  CHECK(category_of(admin::audit_log(f.as(f.anna))) == "not_permitted");  // customer-admins read their part (below)
  auto log = admin::audit_log(f.as(f.op));
  REQUIRE(log);
  CHECK(log->size() >= 4);  // two domains, a customer, a user
}

TEST_CASE("admin: a user's digest setting: who may change it, and bad values change nothing") {
  Fixture f;
  admin::NewUser u{"anna", "user", "", "", "anna@acme.example", {}, std::nullopt};
  REQUIRE(admin::add_user(f.as(f.acme_admin), u));
  admin::NewUser g{"gus", "user", "globex", "", "gus@globex.example", {}, std::nullopt};
  REQUIRE(admin::add_user(f.as(f.op), g));
  CHECK(category_of(admin::set_user_settings(f.as(f.anna), "anna", {"digest=maybe"})) == "usage");
  CHECK(category_of(admin::set_user_settings(f.as(f.anna), "anna", {"colour=red"})) == "usage");
  CHECK(category_of(admin::set_user_settings(f.as(f.anna), "anna", {})) == "usage");
  CHECK((*f.store->user("anna"))->digest);
  CHECK(category_of(admin::set_user_settings(f.as(f.anna), "gus", {"digest=off"})) == "not_found");
  CHECK(category_of(admin::set_user_settings(f.as(f.acme_admin), "gus", {"digest=off"})) == "not_found");
  CHECK(category_of(admin::set_user_settings(f.as(f.acme_admin), "acme-pm", {"digest=off"})) == "not_found");
  auto off = admin::set_user_settings(f.as(f.anna), "anna", {"digest=off"});
  REQUIRE(off);
  CHECK_FALSE(off->digest);
  CHECK_FALSE((*f.store->user("anna"))->digest);
  CHECK(admin::user_json(*off)["digest"] == "off");
  REQUIRE(admin::set_user_settings(f.as(f.acme_admin), "anna", {"digest=on"}));
  CHECK((*f.store->user("anna"))->digest);
  CHECK(category_of(admin::set_user_settings(f.as(f.op), "gus", {"digest=off"})) == "ok");
}

TEST_CASE("admin: each category has one HTTP status and one exit code") {
  using console::exit_code_for;
  struct Case {
    Category c;
    int http;
    int exit;
  };
  const Case cases[] = {
      {Category::kUsage, 400, console::kExitUsage},
      {Category::kNotFound, 404, console::kExitUsage},
      {Category::kNotPermitted, 403, console::kExitNotPermitted},
      {Category::kConflict, 409, console::kExitTaken},
      {Category::kNeedsForce, 409, console::kExitNeedsForce},
      {Category::kUnavailable, 503, console::kExitRuntime},
  };
  for (const Case& c : cases) {
    CHECK(admin::category_info(c.c).http_status == c.http);
    CHECK(exit_code_for(admin::Failure{c.c, "x"}) == c.exit);
  }
}

namespace {

size_t audit_count(Fixture& f) {
  auto log = f.store->audit();
  REQUIRE(log.ok());
  return log->size();
}

size_t recipient_count(Fixture& f, const char* domain) {
  auto all = f.store->recipients(domain);
  REQUIRE(all.ok());
  return all->size();
}

size_t list_count(Fixture& f, const char* scope) {
  auto all = f.store->list_entries(scope, false);
  REQUIRE(all.ok());
  return all->size();
}

}  // namespace

TEST_CASE("admin: recipients, lists and the MX check by role") {
  Fixture f;
  admin::Principal globex_pm{"globex-pm", store::Role::kPostmaster, "globex", "globex.example"};
  struct Case {
    const admin::Principal* who;
    const char* domain;
    const char* expect;  // category of every operation on the domain
    bool out_of_scope;   // the console's "not permitted" exit for another tenant
  };
  const Case cases[] = {
      {&f.op, "acme.example", "ok", false},
      {&f.acme_admin, "acme.example", "ok", false},
      {&f.acme_admin, "globex.example", "not_found", true},
      {&f.acme_pm, "acme.example", "ok", false},
      {&f.acme_pm, "globex.example", "not_found", true},
      {&globex_pm, "acme.example", "not_found", true},
      {&f.anna, "acme.example", "not_found", true},
      {&f.op, "nosuch.example", "not_found", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.who->name);
    CAPTURE(c.domain);
    admin::Actor a = f.as(*c.who);
    size_t audits = audit_count(f), recipients = recipient_count(f, c.domain), lists = list_count(f, c.domain);
    auto added = admin::add_recipients(a, {c.domain, {"alice"}});
    CHECK(category_of(added) == c.expect);
    CHECK(category_of(admin::list_recipients(a, c.domain)) == c.expect);
    auto imported = admin::import_recipients(a, c.domain, std::string("bob@") + c.domain + "\n", "t");
    CHECK(category_of(imported) == c.expect);
    auto entry = admin::add_list_entry(a, {"block", c.domain, "sender", "spam@bad.test"});
    CHECK(category_of(entry) == c.expect);
    CHECK(category_of(admin::show_list(a, "allow", c.domain)) == c.expect);
    if (std::string(c.expect) != "ok") {
      // The MX check refuses before any lookup; the permitted ones would ask DNS.
      auto mx = admin::check_mx(a, c.domain);
      CHECK(category_of(mx) == c.expect);
      CHECK(mx.failure().out_of_scope == c.out_of_scope);
      CHECK(added.failure().out_of_scope == c.out_of_scope);
      CHECK(entry.failure().out_of_scope == c.out_of_scope);
      CHECK(console::exit_code_for(entry.failure()) ==
            (c.out_of_scope ? console::kExitNotPermitted : console::kExitUsage));
      CHECK(audit_count(f) == audits);
      CHECK(recipient_count(f, c.domain) == recipients);
      CHECK(list_count(f, c.domain) == lists);
    } else {
      CHECK(recipient_count(f, c.domain) == 2);
      CHECK(list_count(f, c.domain) == 1);
      CHECK(admin::remove_recipients(a, {c.domain, {"alice", "bob"}}));
      CHECK(admin::remove_list_entry(a, {"block", c.domain, "sender", "spam@bad.test"}));
      CHECK(recipient_count(f, c.domain) == 0);
    }
  }
  SUBCASE("a principal refused the domain learns nothing about its input") {
    for (const admin::Principal* p : {&f.anna, &f.acme_pm}) {
      CHECK(category_of(admin::add_recipients(f.as(*p), {"globex.example", {"not an address"}})) == "not_found");
      CHECK(category_of(admin::import_recipients(f.as(*p), "globex.example", "not valid\n", "t")) == "not_found");
      CHECK(category_of(admin::add_list_entry(f.as(*p), {"block", "globex.example", "mailbox", "x"})) == "not_found");
      CHECK(category_of(admin::add_list_entry(f.as(*p), {"block", "", "ip", "300.1.1.1"})) == "not_permitted");
    }
  }
  SUBCASE("the global lists are the operators'") {
    for (const admin::Principal* p : {&f.acme_admin, &f.acme_pm, &f.anna}) {
      CHECK(category_of(admin::add_list_entry(f.as(*p), {"allow", "", "ip", "192.0.2.1"})) == "not_permitted");
      CHECK(category_of(admin::show_list(f.as(*p), "allow", "")) == "not_permitted");
    }
    CHECK(list_count(f, "") == 0);
    CHECK(admin::add_list_entry(f.as(f.op), {"allow", "", "ip", "192.0.2.0/24"}));
    CHECK(list_count(f, "") == 1);
  }
}

TEST_CASE("admin: bad recipients and list entries are refused with their field, and nothing is written") {
  Fixture f;
  admin::Actor a = f.as(f.acme_admin);
  size_t audits = audit_count(f);
  struct Bad {
    admin::RecipientInput in;
    const char* field;
    const char* says;
  };
  const Bad bad[] = {
      {{"acme.example", {"alice", "not an address"}}, "address", "not an address"},
      {{"acme.example", {"eve@globex.example"}}, "address", "eve@globex.example is not in acme.example"},
      {{"acme.example", {}}, "address", "no address after the domain acme.example"},
      {{"bad..example", {"alice"}}, "domain", ""},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.says);
    auto r = admin::add_recipients(a, b.in);
    REQUIRE(category_of(r) == "usage");
    CHECK(r.failure().field == b.field);
    CHECK(r.failure().message.find(b.says) != std::string::npos);
  }
  CHECK(recipient_count(f, "acme.example") == 0);

  // One bad line and one duplicate refuse the whole import, each by its line number.
  auto imported = admin::import_recipients(a, "acme.example", "# staff\nalice@acme.example\n\nbob@acme.example\nnot valid\nalice@acme.example\n", "f");
  REQUIRE(category_of(imported) == "usage");
  CHECK(imported.failure().field == "text");
  REQUIRE(imported.failure().lines.size() == 2);
  CHECK(imported.failure().lines[0].line == 5);
  CHECK(imported.failure().lines[1].line == 6);
  CHECK(imported.failure().lines[1].problem == "duplicate alice@acme.example");
  CHECK(imported.failure().message.find("line 5: ") != std::string::npos);
  CHECK(recipient_count(f, "acme.example") == 0);
  auto good = admin::import_recipients(a, "acme.example", "# staff\r\nalice@acme.example\r\n\r\nbob@acme.example\r\n", "f");
  REQUIRE(good);
  CHECK(good->addresses == 2);
  CHECK(good->added == 2);
  audits += 1;

  struct BadEntry {
    admin::ListEntryInput in;
    const char* field;
  };
  const BadEntry entries[] = {
      {{"grey", "acme.example", "sender", "x@y.test"}, "list"},
      {{"block", "acme.example", "mailbox", "x@y.test"}, "kind"},
      {{"block", "acme.example", "ip", "300.1.1.1"}, "value"},
      {{"block", "acme.example", "sender", ""}, "value"},
      {{"block", "bad..example", "sender", "x@y.test"}, "domain"},
  };
  for (const BadEntry& b : entries) {
    CAPTURE(b.field);
    auto r = admin::add_list_entry(a, b.in);
    REQUIRE(category_of(r) == "usage");
    CHECK(r.failure().field == b.field);
  }
  CHECK(category_of(admin::show_list(a, "grey", "acme.example")) == "usage");
  // Removing an entry that is not there is refused, not reported as done.
  auto gone = admin::remove_list_entry(a, {"block", "acme.example", "sender", "x@y.test"});
  CHECK(category_of(gone) == "not_found");
  CHECK(list_count(f, "acme.example") == 0);
  CHECK(audit_count(f) == audits);
  // A duplicate add changes nothing and writes no audit entry.
  REQUIRE(admin::add_list_entry(a, {"block", "acme.example", "sender", "X@Y.test"}));
  auto again = admin::add_list_entry(a, {"block", "acme.example", "sender", "x@y.test"});
  REQUIRE(again);
  CHECK_FALSE(again->changed);
  CHECK(audit_count(f) == audits + 1);
  auto dup = admin::add_recipients(a, {"acme.example", {"alice"}});
  REQUIRE(dup);
  CHECK_FALSE(dup->front().changed);
  CHECK(audit_count(f) == audits + 1);
}

TEST_CASE("admin: shadow addresses: who may set them, and only in the user's customer's domains") {
  Fixture f;
  REQUIRE(admin::add_customer(f.as(f.op), "initech"));
  admin::NewUser bad{"anna", "user", "", "", "anna@acme.example", {"gus@globex.example"}, std::nullopt};
  auto refused = admin::add_user(f.as(f.acme_admin), bad);
  CHECK(category_of(refused) == "usage");
  CHECK(refused.failure().field == "shadows");
  CHECK_FALSE(*f.store->user("anna"));  // nothing written
  bad.shadows = {"not-an-address"};
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), bad)) == "usage");
  bad.shadows = {"anna@acme.example"};  // her own address
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), bad)) == "usage");
  bad.shadows = {"a@acme.example", "A@acme.example"};  // twice
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), bad)) == "usage");
  admin::NewUser pm{"pm2", "postmaster", "", "acme.example", "", {"x@acme.example"}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), pm)) == "usage");  // only users have shadows
  admin::NewUser anna{"anna", "user", "", "", "anna@acme.example", {"Anna.Alias@acme.example"}, std::nullopt};
  auto added = admin::add_user(f.as(f.acme_admin), anna);
  REQUIRE(added);
  CHECK(added->shadows == std::vector<std::string>{"anna.alias@acme.example"});
  admin::NewUser gus{"gus", "user", "", "", "gus@globex.example", {}, std::nullopt};
  REQUIRE(admin::add_user(f.as(f.op), gus));

  // Changing them later: the same checks, through update_user and `user set`.
  auto set = admin::set_user_settings(f.as(f.acme_admin), "anna", {"shadows=a1@acme.example,a2@acme.example"});
  REQUIRE(set);
  CHECK((*f.store->user("anna"))->shadows == std::vector<std::string>{"a1@acme.example", "a2@acme.example"});
  auto outside = admin::update_user(f.as(f.acme_admin), "anna", {std::nullopt, std::vector<std::string>{"x@globex.example"}});
  CHECK(category_of(outside) == "usage");
  CHECK(outside.failure().field == "shadows");
  auto mixed = admin::set_user_settings(f.as(f.acme_admin), "anna", {"digest=off", "shadows=x@nowhere.example"});
  CHECK(category_of(mixed) == "usage");
  CHECK((*f.store->user("anna"))->digest);  // the good pair was not written either
  CHECK((*f.store->user("anna"))->shadows.size() == 2);
  // The user sees her shadows but does not choose them; another tenant's user is not found.
  CHECK(category_of(admin::set_user_settings(f.as(f.anna), "anna", {"shadows="})) == "not_permitted");
  CHECK(category_of(admin::set_user_settings(f.as(f.acme_admin), "gus", {"shadows="})) == "not_found");
  CHECK(category_of(admin::set_user_settings(f.as(f.acme_pm), "anna", {"shadows="})) == "not_found");
  // An operator may name another customer's domain (the quarantine scope ignores it).
  CHECK(category_of(admin::set_user_settings(f.as(f.op), "anna", {"shadows=x@globex.example"})) == "ok");
  auto cleared = admin::set_user_settings(f.as(f.acme_admin), "anna", {"shadows="});
  REQUIRE(cleared);
  CHECK(cleared->shadows.empty());
  auto log = admin::audit_log(f.as(f.acme_admin));
  REQUIRE(log);
  REQUIRE_FALSE(log->empty());
  CHECK(log->back().action == "user.set");
  CHECK(log->back().before.find("x@globex.example") != std::string::npos);
}

TEST_CASE("admin: which roles each role may create") {
  Fixture f;
  using R = store::Role;
  CHECK(admin::creatable_roles(f.op).size() == 4);
  CHECK(admin::creatable_roles(f.acme_admin) == std::vector<R>{R::kPostmaster, R::kUser});
  CHECK(admin::creatable_roles(f.acme_pm) == std::vector<R>{R::kPostmaster, R::kUser});
  CHECK(admin::creatable_roles(f.anna).empty());
  admin::NewUser u{"u2", "user", "", "", "u2@acme.example", {}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.anna), u)) == "not_permitted");
  admin::NewUser op{"op2", "operator", "", "", "", {}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.acme_admin), op)) == "not_permitted");
  CHECK(category_of(admin::add_user(f.as(f.op), op)) == "ok");
  admin::NewUser other{"u3", "user", "", "", "u3@globex.example", {}, std::nullopt};
  CHECK(category_of(admin::add_user(f.as(f.acme_pm), other)) == "not_found");
  CHECK(category_of(admin::add_user(f.as(f.acme_pm), u)) == "ok");
}

TEST_CASE("admin: changing one's own password needs the current one; a reset by an admin does not") {
  Fixture f;
  admin::NewUser anna{"anna", "user", "", "", "anna@acme.example", {}, std::string("anna-old-pw")};
  REQUIRE(admin::add_user(f.as(f.acme_admin), anna));
  admin::NewUser gus{"gus", "user", "", "", "gus@globex.example", {}, std::string("gus-old-pw")};
  REQUIRE(admin::add_user(f.as(f.op), gus));
  const std::string hash = (*f.store->user("anna"))->password_hash;
  auto change = [&](const admin::Principal& p, std::string name, std::optional<std::string> current,
                    std::string pw) { return admin::change_password(f.as(p), {std::move(name), current, pw}); };
  auto no_current = change(f.anna, "anna", std::nullopt, "anna-new-pw");
  CHECK(category_of(no_current) == "usage");
  CHECK(no_current.failure().field == "current");
  auto wrong = change(f.anna, "anna", "not-her-pw", "anna-new-pw");
  CHECK(category_of(wrong) == "usage");
  CHECK(wrong.failure().field == "current");
  auto weak = change(f.anna, "anna", "anna-old-pw", "short");
  CHECK(weak.failure().field == "password");
  CHECK((*f.store->user("anna"))->password_hash == hash);  // none of these wrote
  CHECK(category_of(change(f.anna, "anna", "anna-old-pw", "anna-new-pw")) == "ok");
  CHECK((*f.store->user("anna"))->password_hash != hash);
  // Users cannot reset others; admins reset their customer's users without the old password.
  CHECK(category_of(change(f.anna, "gus", std::nullopt, "whatever-pw")) == "not_found");
  CHECK(category_of(change(f.acme_admin, "gus", std::nullopt, "whatever-pw")) == "not_found");
  CHECK(category_of(change(f.acme_admin, "anna", "anna-new-pw", "anna-3rd-pw")).starts_with("usage"));
  CHECK(category_of(change(f.acme_admin, "anna", std::nullopt, "anna-3rd-pw")) == "ok");
  CHECK(category_of(change(f.acme_pm, "anna", std::nullopt, "anna-4th-pw")) == "not_found");
  auto log = admin::audit_log(f.as(f.op));
  REQUIRE(log);
  for (const auto& e : *log) CHECK(e.after.find("pw") == std::string::npos);  // no password in the log
  CHECK(log->back().principal == "acme-admin");
}

TEST_CASE("admin: the audit log by role: operators all, customer-admins their customer's, postmasters their domain's") {
  Fixture f;  // the operator added acme.example and globex.example
  admin::NewUser anna{"anna", "user", "", "", "anna@acme.example", {}, std::nullopt};
  REQUIRE(admin::add_user(f.as(f.acme_admin), anna));
  admin::NewUser gus{"gus", "user", "", "", "gus@globex.example", {}, std::nullopt};
  REQUIRE(admin::add_user(f.as(f.op), gus));
  REQUIRE(admin::add_customer(f.as(f.op), "initech"));
  // An entry written before entries had an owner reads as the appliance's own.
  store::AuditEntry old;
  old.time_ms = 1000;
  old.principal = "console:root";
  old.action = "domain.set";
  old.object = "acme.example";
  std::string raw = store::encode_audit(old);
  auto j = nlohmann::json::parse(raw.substr(1));
  j.erase("customer");
  j.erase("domain");
  auto decoded = store::decode_audit(raw.substr(0, 1) + j.dump());
  REQUIRE(decoded.ok());
  CHECK(decoded->customer.empty());
  REQUIRE(f.store->append_audit(*decoded));

  auto objects = [&](const admin::Principal& p) {
    auto log = admin::audit_log(f.as(p));
    REQUIRE(log);
    std::vector<std::string> out;
    for (const auto& e : *log) out.push_back(e.action + " " + e.object);
    return out;
  };
  auto all = objects(f.op);
  CHECK(all.size() == 6);
  CHECK(objects(f.acme_admin) == std::vector<std::string>{"domain.add acme.example", "user.add anna"});
  CHECK(objects(f.acme_pm) == std::vector<std::string>{"domain.add acme.example", "user.add anna"});
  admin::Principal other_pm{"other-pm", store::Role::kPostmaster, "acme", "other.acme.example"};
  CHECK(objects(other_pm).empty());
  admin::Principal globex_admin{"globex-admin", store::Role::kCustomerAdmin, "globex", ""};
  CHECK(objects(globex_admin) == std::vector<std::string>{"domain.add globex.example", "user.add gus"});
  CHECK(category_of(admin::audit_log(f.as(f.anna))) == "not_permitted");

  // Filters: time and the newest N, checked before anything is read.
  auto newest = admin::audit_log(f.as(f.op), {"", "", "2"});
  REQUIRE(newest);
  CHECK(newest->size() == 2);
  CHECK(newest->back().action == "customer.add");
  for (std::string bad : {"0", "x", "10001", "-1"}) {
    auto r = admin::audit_log(f.as(f.op), {"", "", bad});
    CHECK(category_of(r) == "usage");
    CHECK(r.failure().field == "limit");
  }
  CHECK(admin::audit_log(f.as(f.op), {"yesterday-ish", "", ""}).failure().field == "since");
  auto recent = admin::audit_log(f.as(f.op), {"1h", "", ""});
  REQUIRE(recent);
  CHECK(recent->size() == 5);  // not the old one at 1970
  auto until = admin::audit_log(f.as(f.op), {"", "@1", ""});
  REQUIRE(until);
  CHECK(until->size() == 1);
}
