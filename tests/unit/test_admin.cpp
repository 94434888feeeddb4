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
  CHECK(category_of(admin::audit_log(f.as(f.acme_admin))) == "not_permitted");
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
