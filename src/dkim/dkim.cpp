// Placeholder: implemented by its owner.
#include "mxguard/dkim/dkim.hpp"
