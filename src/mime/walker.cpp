// Placeholder: implemented by its owner.
#include "mxguard/mime/walker.hpp"
