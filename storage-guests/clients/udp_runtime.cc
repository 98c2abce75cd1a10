#include "storage-guests/clients/udp_runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "storage-guests/common/ids.h"
#include "storage-guests/common/transport.h"

namespace sg::clients {
namespace {

TimeNs monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1'000'000'000ull + static_cast<TimeNs>(ts.tv_nsec);
}

// The largest datagram a service sends; anything longer is truncated by
// recv and rejected.
constexpr size_t kMaxDatagram = 65536;

}  // namespace

uint64_t VolatileStorage::sync() { return ++token_; }

UdpEnv::UdpEnv(UdpRuntime& runtime, NodeId self, int fd, uint64_t seed)
    : runtime_(runtime), self_(self), fd_(fd), rng_(seed) {}

UdpEnv::~UdpEnv() { ::close(fd_); }

void UdpEnv::send(NodeId to, const Bytes& message) {
  sockaddr_in addr{};
  if (!runtime_.address_of(to, &addr)) return;  // not a server of this cluster: lost
  const Bytes datagram = frame_datagram({self_, to}, message);
  // Best effort, like the network: a full socket buffer loses the datagram.
  (void)::sendto(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr),
                 sizeof addr);
}

TimeNs UdpEnv::now() const { return runtime_.now(); }

TimerId UdpEnv::set_timer(TimeNs delay) { return runtime_.add_timer(this, runtime_.now() + delay); }

void UdpEnv::cancel_timer(TimerId id) { runtime_.cancel(id); }

void UdpEnv::receive_all() {
  std::vector<uint8_t> buf(kMaxDatagram);
  for (;;) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN: drained
    Bytes message;
    auto header = static_cast<size_t>(n) <= buf.size()
                      ? unframe_datagram(buf.data(), static_cast<size_t>(n), message)
                      : std::nullopt;
    // Only servers answer clients, and only datagrams addressed to us count.
    if (!header || header->to != self_ || !is_server_id(header->from)) {
      ++rejected_;
      continue;
    }
    if (node_) node_->on_message(header->from, message);
  }
}

UdpRuntime::UdpRuntime(uint16_t gateway_base, size_t servers)
    : gateway_base_(gateway_base), servers_(servers), id_rng_(std::random_device{}()) {
  if (servers == 0 || servers > kMaxClusterSize) throw std::invalid_argument("the cluster needs 1-64 servers");
  if (gateway_base == 0 || gateway_base + servers - 1 > 65535) {
    throw std::invalid_argument("gateway ports " + std::to_string(gateway_base) + "+" + std::to_string(servers) +
                                " do not fit in 1-65535");
  }
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
}

UdpRuntime::~UdpRuntime() {
  envs_.clear();
  ::close(epoll_fd_);
}

NodeId UdpRuntime::fresh_client_id() {
  std::uniform_int_distribution<NodeId> d(kFirstClientId, kNoNode - 1);
  return d(id_rng_);
}

UdpEnv& UdpRuntime::add_client(NodeId id) {
  if (!is_client_id(id)) throw std::invalid_argument("not a client id: " + std::to_string(id));
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("bind 127.0.0.1: ") + std::strerror(err));
  }
  auto env = std::unique_ptr<UdpEnv>(new UdpEnv(*this, id, fd, id_rng_()));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = env.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  envs_.push_back(std::move(env));
  return *envs_.back();
}

TimeNs UdpRuntime::now() const { return monotonic_ns(); }

TimerId UdpRuntime::add_timer(UdpEnv* env, TimeNs deadline) {
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(deadline, id), env);
  deadline_of_[id] = deadline;
  return id;
}

void UdpRuntime::cancel(TimerId id) {
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return;
  timers_.erase({it->second, id});
  deadline_of_.erase(it);
}

bool UdpRuntime::address_of(NodeId server, sockaddr_in* out) const {
  if (!is_server_id(server) || server > servers_) return false;
  out->sin_family = AF_INET;
  out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  out->sin_port = htons(static_cast<uint16_t>(gateway_base_ + server - kFirstServerId));
  return true;
}

bool UdpRuntime::run_until(const std::function<bool()>& done, TimeNs max_ns) {
  const TimeNs end = now() + max_ns;
  while (!done()) {
    const TimeNs t = now();
    if (t >= end) return false;
    // Fire every due timer first: a handler may arm new ones.
    if (!timers_.empty() && timers_.begin()->first.first <= t) {
      auto it = timers_.begin();
      const TimerId id = it->first.second;
      UdpEnv* env = it->second;
      timers_.erase(it);
      deadline_of_.erase(id);
      if (env->node_) env->node_->on_timer(id);
      continue;
    }
    TimeNs wake = end;
    if (!timers_.empty()) wake = std::min(wake, timers_.begin()->first.first);
    const int timeout_ms = static_cast<int>((wake - t + 999'999) / 1'000'000);
    epoll_event events[16];
    const int n = ::epoll_wait(epoll_fd_, events, 16, timeout_ms);
    for (int i = 0; i < n; ++i) static_cast<UdpEnv*>(events[i].data.ptr)->receive_all();
  }
  return true;
}

}  // namespace sg::clients
