// Base64 decoding for b=, bh= and p= values, which may be folded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mxguard::dkim::detail {

// Decodes standard base64, skipping FWS anywhere. Padding is optional but
// nothing except padding and FWS may follow it; returns nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace mxguard::dkim::detail
