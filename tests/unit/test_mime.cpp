// Unit tests for the mime module.
#include <doctest.h>
