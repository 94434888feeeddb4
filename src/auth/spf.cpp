// Placeholder: implemented by its owner.
#include "mxguard/auth/checks.hpp"
