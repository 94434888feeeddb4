// Message files named on the command line: directories expanded, an mbox
// "From " separator line dropped, sizes bounded.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::console {

// Files in the order given; a directory contributes its regular files in name order.
Result<std::vector<std::string>> expand_message_paths(const std::vector<std::string>& args);

// The message in `path` without a leading mbox "From " line.
Result<std::string> read_message_file(const std::string& path, size_t max_bytes);

// The part of `data` after a leading mbox "From " line.
std::string_view strip_mbox_from(std::string_view data);

}  // namespace mxguard::console
