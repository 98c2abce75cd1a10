#include "vmm/control/control_server.h"

#include "vmm/control/socket_util.h"
#include "vmm/thread_name.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

namespace vmm::control {
namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

// True if a server accepts connections at `path` now.
bool someone_listens(const sockaddr_un& addr) {
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

ControlServer::ControlServer(std::string path, const CommandTable& commands)
    : path_(std::move(path)), commands_(commands) {
  const sockaddr_un addr = make_address(path_);
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("control socket path " + path_ + " exists and is not a socket");
    if (someone_listens(addr)) throw std::runtime_error("control socket " + path_ + " is in use by a running VMM");
    ::unlink(path_.c_str());  // stale: its VMM died without cleaning up
  }
  listener_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener_) throw sys_error("control socket");
  // 0600: the socket can pause and kill VMs; only its owner may connect.
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::umask(old_mask);
  if (rc != 0) throw sys_error("control socket: bind " + path_);
  if (::listen(listener_.get(), 16) != 0) throw sys_error("control socket: listen");
  thread_ = std::thread([this] { serve(); });
}

ControlServer::~ControlServer() {
  stop_.signal();
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void ControlServer::serve() {
  set_thread_name("control");
  std::map<int, std::pair<Fd, std::string>> clients;  // fd -> (socket, partial line)
  for (;;) {
    std::vector<pollfd> fds{{stop_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const auto& [fd, c] : clients) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid fds; the VMM keeps running without control
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        clients.emplace(fd, std::make_pair(Fd(fd), std::string()));
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      auto it = clients.find(fds[i].fd);
      std::string& buffer = it->second.second;
      bool close_it = false;
      char chunk[4096];
      ssize_t n = ::recv(fds[i].fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        close_it = !(n < 0 && (errno == EAGAIN || errno == EINTR));
      } else {
        buffer.append(chunk, static_cast<size_t>(n));
        size_t start = 0, nl;
        while (!close_it && (nl = buffer.find('\n', start)) != std::string::npos) {
          std::string_view line(buffer.data() + start, nl - start);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          start = nl + 1;
          if (line.empty()) continue;
          requests_.fetch_add(1);
          close_it = !write_all(fds[i].fd, commands_.dispatch(line) + "\n");
        }
        buffer.erase(0, start);
        if (!close_it && buffer.size() > kMaxRequestBytes) {
          write_all(fds[i].fd, commands_.dispatch(buffer) + "\n");  // the "too long" reply
          close_it = true;
        }
      }
      if (close_it) clients.erase(it);
    }
  }
}

}  // namespace vmm::control
