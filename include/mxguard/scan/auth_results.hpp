// What the engine makes of the sender checks for one message: the DMARC
// request built from the message and the SPF and DKIM results, and the
// Authentication-Results field (RFC 8601) that reports all of them. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/dkim/dkim.hpp"
#include "mxguard/scan/scanner.hpp"

namespace mxguard::scan {

// The DMARC request once SPF and DKIM are known: the first From field's
// domain and how many From fields there are, the results, and as the pct=
// sample key the Message-ID (the queue id when there is none), so that a
// message sent again gets the same decision.
auth::DmarcRequest dmarc_request(const MessageFacts& facts, const auth::SpfOutcome& spf,
                                 const std::vector<dkim::DkimVerdict>& dkim, std::string_view queue_id);

// "Authentication-Results: host; spf=... ; dkim=... ; dmarc=...\r\n" for the
// checks that ran ("; none" when none did). dkim=none only when the message
// has no DKIM-Signature at all: a signature that does not even parse is a
// permerror (RFC 8601 2.7.1). Property values that are no plain token or
// domain are quoted, and empty ones left out.
std::string authentication_results(std::string_view host, std::string_view sender, std::string_view helo,
                                   const CheckResults& checks, const MessageFacts& facts);

}  // namespace mxguard::scan
