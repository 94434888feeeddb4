// Unit tests for the dkim module.
#include <doctest.h>
