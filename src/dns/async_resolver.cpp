// Placeholder: implemented by its owner.
#include "mxguard/dns/async_resolver.hpp"
