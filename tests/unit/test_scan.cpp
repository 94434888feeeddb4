// Unit tests for the scan module.
#include <doctest.h>
