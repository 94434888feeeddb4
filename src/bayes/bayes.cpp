// Placeholder: implemented by its owner.
#include "mxguard/bayes/bayes.hpp"
