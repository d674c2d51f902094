// Checks that raise. A failed check throws; the binding turns the exception
// into a Python error (std::invalid_argument -> ValueError), so no bad input
// can crash the process or touch memory out of bounds.
#pragma once

#include <stdexcept>
#include <string>

#define GS_CHECK(cond, msg)                                                   \
  do {                                                                        \
    if (!(cond)) throw std::invalid_argument(std::string(msg));               \
  } while (0)
