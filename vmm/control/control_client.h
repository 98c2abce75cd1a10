// The client half of the control protocol, for vmctl and tests.
#pragma once

#include <string>

namespace vmm::control {

// Connects to the control socket at `path`, sends one request line and
// returns the reply line. Throws std::runtime_error on socket errors.
std::string request(const std::string& path, const std::string& line);

}  // namespace vmm::control
