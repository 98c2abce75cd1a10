// The control socket of a running VMM: a unix stream socket at a path the
// user names (`vmm run --control PATH`), speaking control_protocol.h.
//
// One thread serves every connection with poll(); requests on a connection
// are answered in order. Handlers run on that thread, so a handler must not
// block for long (pausing a VM is a flag and a kick, not a wait on the
// guest). Connections are independent: a client that sends garbage, a line
// that is too long, or disconnects mid-request affects only itself.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "vmm/control/control_protocol.h"
#include "vmm/irq/eventfd.h"
#include "vmm/kvm.h"

namespace vmm::control {

class ControlServer {
 public:
  // Binds `path` (mode 0600) and starts serving `commands`, which must
  // outlive the server. A stale socket file left by a dead VMM is replaced;
  // a live one (something accepts connections there) is an error, as is a
  // path that exists and is not a socket. Throws std::runtime_error.
  ControlServer(std::string path, const CommandTable& commands);
  ~ControlServer();  // stops the thread, closes every connection, unlinks path
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }
  uint64_t requests_served() const { return requests_.load(); }

 private:
  void serve();

  std::string path_;
  const CommandTable& commands_;
  Fd listener_;
  EventFd stop_;
  std::atomic<uint64_t> requests_{0};
  std::thread thread_;
};

}  // namespace vmm::control
