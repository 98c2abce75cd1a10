#include "vmm/control/control_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "vmm/control/socket_util.h"

namespace vmm::control {
namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// Closes the socket on every path out of request().
struct SocketCloser {
  int fd;
  ~SocketCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string request(const std::string& path, const std::string& line, int timeout_ms) {
  const sockaddr_un addr = make_address(path);
  SocketCloser fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) throw sys_error("socket");
  const timeval limit{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (::setsockopt(fd.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0 ||
      ::setsockopt(fd.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) != 0) {
    throw sys_error("control socket: set timeout");
  }
  if (::connect(fd.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw sys_error("cannot connect to control socket " + path);
  }
  std::string out = line;
  if (out.empty() || out.back() != '\n') out += '\n';
  if (!write_all(fd.fd, out)) throw sys_error("control socket: send");
  std::string reply;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::recv(fd.fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      throw std::runtime_error("control socket " + path + ": no reply within " + std::to_string(timeout_ms) +
                               " ms (the VMM is not answering)");
    }
    if (n < 0) throw sys_error("control socket: receive");
    if (n == 0) break;
    reply.append(chunk, static_cast<size_t>(n));
    if (auto nl = reply.find('\n'); nl != std::string::npos) return reply.substr(0, nl);
  }
  throw std::runtime_error("control socket " + path + " closed the connection without a reply");
}

}  // namespace vmm::control
