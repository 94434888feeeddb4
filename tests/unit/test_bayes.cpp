// Unit tests for the bayes module.
#include <doctest.h>
