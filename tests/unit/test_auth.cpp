// Unit tests for the auth module.
#include <doctest.h>
