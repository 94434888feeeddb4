// The DNS-backed onboarding subcommands under `mxguard domain`: verify and check-mx.
#pragma once

#include "console.hpp"

namespace mxguard::console {

void add_verify_command(CLI::App& domain_group, Commands& out);
void add_check_mx_command(CLI::App& domain_group, Commands& out);

// What domain_cmd.cpp calls to register both.
inline void add_domain_dns_commands(CLI::App& domain_group, Commands& out) {
  add_verify_command(domain_group, out);
  add_check_mx_command(domain_group, out);
}

}  // namespace mxguard::console
