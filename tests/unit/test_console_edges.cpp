// Console rough edges (issue 16): the risky-setting checks behind --force and
// the wording of a backup MX role (admin/mx_check). Pure functions, no store.
#include <doctest.h>

#include <string>

#include "mxguard/admin/mx_check.hpp"
#include "mxguard/admin/risks.hpp"

using namespace mxguard::admin;

TEST_CASE("risks: each risky setting is named only when it is being changed") {
  mxguard::store::Domain d;
  d.name = "example.com";
  RiskFacts none;
  CHECK(setting_risks(d, {"greylist_threshold", "recipients", "tls", "trust"}, none).empty());

  d.greylist_threshold = -0.5;
  auto r = setting_risks(d, {"greylist_threshold"}, none);
  REQUIRE(r.size() == 1);
  CHECK(r[0].find("greylist_threshold=-0.5 is below 0") != std::string::npos);
  CHECK(setting_risks(d, {"backend"}, none).empty());  // set earlier with --force: not asked again
  d.greylist_threshold = 0;
  CHECK(setting_risks(d, {"greylist_threshold"}, none).empty());

  d.recipients_mode = "list";
  CHECK(setting_risks(d, {"recipients"}, none).size() == 1);
  RiskFacts some;
  some.recipients = 1;
  CHECK(setting_risks(d, {"recipients"}, some).empty());

  d.tls_policy = "dane";
  CHECK(setting_risks(d, {"tls"}, some).size() == 1);
  some.dane_trust_anchor = true;
  CHECK(setting_risks(d, {"tls"}, some).empty());

  d.trust = "auth";
  d.auth_user = "relay";
  CHECK(setting_risks(d, {"trust"}, some).size() == 1);
  d.auth_password = "secret";
  CHECK(setting_risks(d, {"trust"}, some).empty());

  d.auth_password.clear();
  d.greylist_threshold = -1;
  auto all = setting_risks(d, {"greylist_threshold", "recipients", "tls", "trust"}, none);
  CHECK(all.size() == 4);
  std::string line = force_refusal(all);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find("--force") != std::string::npos);
  CHECK(line.find("nothing changed") != std::string::npos);
}

TEST_CASE("check-mx: a backup role delivers to the configured backend, not to the primary") {
  std::string backup = role_description(MxRole::kBackup, "mail.acme.test:25");
  CHECK(backup.find("delivered to the configured backend mail.acme.test:25") != std::string::npos);
  CHECK(backup.find("forward") == std::string::npos);
  CHECK(role_description(MxRole::kPrimary, "[2001:db8::1]:2525").find("[2001:db8::1]:2525") != std::string::npos);
  CHECK(role_description(MxRole::kNotInMx, "x:25").find("does not reach MxGuard") != std::string::npos);
}
