// The SMTP listening sockets: one per shard and address, joined by
// SO_REUSEPORT, after a check that no other process already listens there.
#pragma once

#include <chrono>
#include <string_view>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::engine {

// Binds `a` without SO_REUSEPORT and closes at once: fails when another
// socket listens there (another engine, another MTA), which the shards'
// SO_REUSEPORT binds would otherwise join and split the connections with.
// An address still taken after `grace` is refused: the listeners of an engine
// that has just exited outlive it briefly, until the kernel has torn down
// the io_uring instances that hold them.
Status check_address_free(const ListenAddress& a, std::chrono::milliseconds grace);

// One listening socket with SO_REUSEPORT, so each shard has its own.
Result<int> open_listener(const ListenAddress& a);

// A listening socket of the process alone (no SO_REUSEPORT), for the HTTP
// endpoints; the error names the config key.
Result<int> open_single_listener(const ListenAddress& a, std::string_view key);

}  // namespace mxguard::engine
