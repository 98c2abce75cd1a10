// The client half of the control protocol, for vmctl and tests.
#pragma once

#include <string>

namespace vmm::control {

// Connects to the control socket at `path`, sends one request line and
// returns the reply line. Throws std::runtime_error on socket errors and
// when no reply comes within `timeout_ms` (a VMM that stopped answering
// must not hang its callers: the nemesis, vmctl, the diagnostics).
constexpr int kDefaultRequestTimeoutMs = 60'000;
std::string request(const std::string& path, const std::string& line, int timeout_ms = kDefaultRequestTimeoutMs);

}  // namespace vmm::control
