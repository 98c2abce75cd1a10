// Small unix-socket helpers shared by the control server and its client.
#pragma once

#include <sys/un.h>

#include <string>

namespace vmm::control {

// The address of `path`; throws std::runtime_error if it does not fit.
sockaddr_un make_address(const std::string& path);
// Writes all of `data` to a (possibly non-blocking) socket. False if the
// peer went away or stopped reading for 5 s.
bool write_all(int fd, const std::string& data);

}  // namespace vmm::control
