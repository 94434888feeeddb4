// Helpers shared by the client session and the DSN builder; not part of the
// module's interface.
#pragma once

#include <string>
#include <string_view>

namespace mxguard::delivery {

// Text from a peer or the engine made safe for a log line or a header value:
// control characters become spaces, surrounding spaces are dropped.
std::string one_line(std::string_view s);

// RFC 4648 base64 with padding, for SASL responses.
std::string base64_encode(std::string_view bytes);

}  // namespace mxguard::delivery
