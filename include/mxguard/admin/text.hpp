// Text helpers every front end shares: safe display of stored text and the
// timestamps of records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mxguard::admin {

// Escapes control bytes as \xNN so text taken from mail (subjects, HELO
// names) cannot move the cursor or inject terminal escape sequences.
std::string printable(std::string_view s);

// "2024-05-01T12:00:00Z" and "2024-05-01T12:00:00.123Z" for milliseconds since the epoch.
std::string iso8601(int64_t epoch_ms);
std::string iso8601_ms(int64_t epoch_ms);

// Milliseconds since the epoch, from the system clock.
int64_t now_ms();

// "1 domain" / "3 domains".
std::string count_of(size_t n, std::string_view singular, std::string_view plural);

}  // namespace mxguard::admin
