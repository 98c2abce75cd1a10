#include "vmm/net/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "vmm/thread_name.h"

namespace vmm::net {
namespace {

uint64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

int udp_socket_on_loopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("gateway: cannot create a UDP socket: ") + std::strerror(errno));
  sockaddr_in a = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error("gateway: cannot bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
  }
  return fd;
}

// What the switch hands the gateway: a bounded queue and an eventfd that
// wakes the gateway thread. deliver() runs on other threads and only queues.
class Inbox final : public FrameSink {
 public:
  explicit Inbox(size_t limit) : limit_(limit) {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) throw std::runtime_error(std::string("gateway: eventfd: ") + std::strerror(errno));
  }
  ~Inbox() override { close(efd_); }
  void deliver(Frame frame) override {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= limit_) {
        ++dropped_;
        return;
      }
      queue_.push_back(std::move(frame));
    }
    wake();
  }
  void wake() {
    const uint64_t one = 1;
    (void)!write(efd_, &one, sizeof one);  // a full counter still wakes the reader
  }
  std::deque<Frame> take() {
    uint64_t v;
    (void)!read(efd_, &v, sizeof v);
    std::lock_guard lock(mu_);
    return std::exchange(queue_, {});
  }
  uint64_t dropped() {
    std::lock_guard lock(mu_);
    return dropped_;
  }
  int fd() const { return efd_; }

 private:
  const size_t limit_;
  int efd_;
  std::mutex mu_;
  std::deque<Frame> queue_;
  uint64_t dropped_ = 0;
};

// epoll tags: what kind of fd woke us, and which one.
enum : uint64_t { kTagInbox = 1, kTagVmSocket = 2, kTagFlow = 3 };
uint64_t tag(uint64_t kind, uint64_t value) { return (kind << 32) | value; }

constexpr size_t kMappedPorts = 65536 - kFirstMappedPort;
constexpr size_t kArpQueueLimit = 32;

}  // namespace

class Gateway::Impl {
 public:
  Impl(Switch& sw, const GatewayConfig& cfg) : cfg_(cfg), inbox_(std::make_shared<Inbox>(cfg.inbox_limit)) {
    if (cfg_.vm_ips.size() > 253) throw std::invalid_argument("gateway: at most 253 VMs on a /24");
    for (Ipv4 ip : cfg_.vm_ips)
      if (!vm_network_host(ip)) throw std::invalid_argument("gateway: VM address " + format_ipv4(ip) + " is outside the VM network");
    if (cfg_.host_base_port != 0 && size_t(cfg_.host_base_port) + cfg_.vm_ips.size() > 65536)
      throw std::invalid_argument("gateway: host ports " + std::to_string(cfg_.host_base_port) + "+" +
                                  std::to_string(cfg_.vm_ips.size()) + " run past 65535");
    slots_.resize(kMappedPorts);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) throw std::runtime_error(std::string("gateway: epoll_create1: ") + std::strerror(errno));
    try {
      watch(inbox_->fd(), tag(kTagInbox, 0));
      if (cfg_.host_base_port != 0)
        for (size_t i = 0; i < cfg_.vm_ips.size(); ++i) {
          vm_socks_.push_back(udp_socket_on_loopback(static_cast<uint16_t>(cfg_.host_base_port + i)));
          watch(vm_socks_.back(), tag(kTagVmSocket, i));
        }
      port_ = sw.attach("gateway", inbox_);
    } catch (...) {
      close_all();
      throw;
    }
    thread_ = std::thread([this] { loop(); });
  }

  ~Impl() {
    stop_ = true;
    inbox_->wake();
    thread_.join();
    port_.reset();  // detaches from the switch
    close_all();
  }

  GatewayStats stats() {
    std::lock_guard lock(stats_mu_);
    GatewayStats s = stats_;
    s.inbox_full = inbox_->dropped();
    return s;
  }

 private:
  struct Mapping {  // gateway port kFirstMappedPort + index <-> (VM, host peer)
    bool used = false;
    size_t vm = 0;
    sockaddr_in peer{};
    uint64_t key = 0;
    uint64_t last_used = 0;
  };
  struct Flow {  // guest-initiated: (VM, guest port) <-> one host socket
    int fd;
    size_t vm;
    uint16_t guest_port;
    uint64_t last_used;
  };
  struct Outgoing {
    uint16_t src_port, dst_port;
    std::vector<uint8_t> payload;
  };
  struct ArpWait {
    std::deque<Outgoing> queue;
    int tries = 0;
    uint64_t next_try = 0;
  };

  void bump(uint64_t GatewayStats::*field, uint64_t n = 1) {
    std::lock_guard lock(stats_mu_);
    stats_.*field += n;
  }

  void watch(int fd, uint64_t t) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = t;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) < 0)
      throw std::runtime_error(std::string("gateway: epoll_ctl: ") + std::strerror(errno));
  }

  void close_all() {
    for (int fd : vm_socks_) close(fd);
    vm_socks_.clear();
    for (auto& [key, f] : flows_) close(f.fd);
    flows_.clear();
    if (epoll_ >= 0) close(epoll_);
    epoll_ = -1;
  }

  // A host address of the VM network other than the gateway's own.
  bool vm_network_host(Ipv4 ip) const {
    const Ipv4 host = ip & ~cfg_.netmask;
    return (ip & cfg_.netmask) == (cfg_.ip & cfg_.netmask) && ip != cfg_.ip && host != 0 && host != (~cfg_.netmask);
  }

  int vm_index(Ipv4 ip) const {
    for (size_t i = 0; i < cfg_.vm_ips.size(); ++i)
      if (cfg_.vm_ips[i] == ip) return static_cast<int>(i);
    return -1;
  }

  void loop() {
    set_thread_name("gateway");
    epoll_event events[32];
    while (!stop_) {
      int timeout_ms = -1;
      if (!arp_waits_.empty()) {
        uint64_t next = UINT64_MAX;
        for (auto& [ip, w] : arp_waits_) next = std::min(next, w.next_try);
        const uint64_t now = steady_ns();
        timeout_ms = next <= now ? 0 : static_cast<int>(std::min<uint64_t>((next - now + 999999) / 1000000, 1000));
      }
      const int n = epoll_wait(epoll_, events, 32, timeout_ms);
      for (int k = 0; k < n && !stop_; ++k) {
        const uint64_t t = events[k].data.u64;
        const uint64_t kind = t >> 32, value = t & 0xffffffff;
        if (kind == kTagInbox) {
          for (Frame& f : inbox_->take()) handle_frame(f);
        } else if (kind == kTagVmSocket) {
          drain_socket(vm_socks_[value], [&](const sockaddr_in& peer, std::span<const uint8_t> d) {
            host_to_vm(value, peer, d);
          });
        } else if (kind == kTagFlow) {
          auto it = flow_by_fd_.find(static_cast<int>(value));
          if (it == flow_by_fd_.end()) continue;  // closed earlier in this round
          Flow& flow = flows_.at(it->second);
          drain_socket(flow.fd, [&](const sockaddr_in& peer, std::span<const uint8_t> d) {
            flow.last_used = steady_ns();
            send_to_vm(cfg_.vm_ips[flow.vm], ntohs(peer.sin_port), flow.guest_port, d);
          });
        }
      }
      arp_timers();
    }
  }

  template <typename F>
  void drain_socket(int fd, F on_datagram) {
    // Bounded per wake-up so one busy socket cannot starve the others.
    for (int i = 0; i < 64; ++i) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      const ssize_t n = recvfrom(fd, buf_, sizeof buf_, MSG_TRUNC, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 0) return;  // EAGAIN, or an ICMP error from an earlier send: nothing to relay
      if (peer.sin_family != AF_INET) continue;
      if (size_t(n) > kMaxUdpPayload) {
        bump(&GatewayStats::too_large);
        continue;
      }
      on_datagram(peer, std::span<const uint8_t>(buf_, size_t(n)));
    }
  }

  // ---- host -> VM --------------------------------------------------------

  void host_to_vm(size_t vm, const sockaddr_in& peer, std::span<const uint8_t> data) {
    const uint64_t key = (uint64_t(vm) << 48) | (uint64_t(ntohl(peer.sin_addr.s_addr)) << 16) | ntohs(peer.sin_port);
    const uint64_t now = steady_ns();
    size_t slot;
    if (auto it = mapping_by_key_.find(key); it != mapping_by_key_.end()) {
      slot = it->second;
    } else {
      slot = allocate_mapping();
      slots_[slot] = Mapping{true, vm, peer, key, now};
      mapping_by_key_[key] = slot;
    }
    slots_[slot].last_used = now;
    send_to_vm(cfg_.vm_ips[vm], static_cast<uint16_t>(kFirstMappedPort + slot), cfg_.service_port, data);
  }

  size_t allocate_mapping() {
    for (size_t n = 0; n < kMappedPorts; ++n) {
      const size_t s = next_slot_++ % kMappedPorts;
      if (!slots_[s].used) return s;
    }
    // All 16384 in use: reuse the least recently used.
    size_t lru = 0;
    for (size_t s = 1; s < kMappedPorts; ++s)
      if (slots_[s].last_used < slots_[lru].last_used) lru = s;
    mapping_by_key_.erase(slots_[lru].key);
    slots_[lru].used = false;
    bump(&GatewayStats::mappings_evicted);
    return lru;
  }

  void send_to_vm(Ipv4 ip, uint16_t src_port, uint16_t dst_port, std::span<const uint8_t> data) {
    if (auto it = arp_cache_.find(ip); it != arp_cache_.end()) {
      transmit(build_udp(it->second, cfg_.mac, cfg_.ip, ip, next_ip_id_++, src_port, dst_port, data));
      bump(&GatewayStats::udp_to_vm);
      return;
    }
    ArpWait& w = arp_waits_[ip];
    if (w.queue.size() >= kArpQueueLimit) {
      bump(&GatewayStats::arp_queue_full);
      return;
    }
    w.queue.push_back(Outgoing{src_port, dst_port, {data.begin(), data.end()}});
    if (w.tries == 0) arp_request(ip, w);
  }

  void arp_request(Ipv4 ip, ArpWait& w) {
    ++w.tries;
    w.next_try = steady_ns() + cfg_.arp_retry_ns;
    transmit(build_arp(kBroadcastMac, cfg_.mac, ArpPacket{kArpRequest, cfg_.mac, cfg_.ip, MacAddress{}, ip}));
    bump(&GatewayStats::arp_requests_sent);
  }

  void arp_timers() {
    const uint64_t now = steady_ns();
    for (auto it = arp_waits_.begin(); it != arp_waits_.end();) {
      ArpWait& w = it->second;
      if (w.next_try > now) {
        ++it;
      } else if (w.tries >= cfg_.arp_tries) {
        bump(&GatewayStats::arp_failed, w.queue.size());
        it = arp_waits_.erase(it);
      } else {
        arp_request(it->first, w);
        ++it;
      }
    }
  }

  void learn(Ipv4 ip, const MacAddress& mac) {
    if (!vm_network_host(ip) || (mac[0] & 1) || mac == MacAddress{}) return;
    arp_cache_[ip] = mac;  // bounded: at most one entry per address of the /24
    bump(&GatewayStats::arp_learned);
    auto it = arp_waits_.find(ip);
    if (it == arp_waits_.end()) return;
    std::deque<Outgoing> queue = std::move(it->second.queue);
    arp_waits_.erase(it);
    for (Outgoing& o : queue) {
      transmit(build_udp(mac, cfg_.mac, cfg_.ip, ip, next_ip_id_++, o.src_port, o.dst_port, o.payload));
      bump(&GatewayStats::udp_to_vm);
    }
  }

  void transmit(const Frame& f) {
    if (!port_->transmit(f)) bump(&GatewayStats::transmit_errors);
  }

  // ---- VM -> gateway -----------------------------------------------------

  void handle_frame(const Frame& frame) {
    if (frame.size() < kEthHeaderLen) {  // the switch refuses these; never trust it blindly
      bump(&GatewayStats::not_for_us);
      return;
    }
    const std::span<const uint8_t> l3 = std::span<const uint8_t>(frame).subspan(kEthHeaderLen);
    const MacAddress eth_src = load_mac(frame.data() + 6);
    const uint16_t type = ether_type(frame);
    if (type == kEtherTypeArp) return handle_arp(l3);
    if (type != kEtherTypeIpv4 || load_mac(frame.data()) != cfg_.mac) {
      bump(&GatewayStats::not_for_us);
      return;
    }
    Ipv4Packet ip;
    switch (parse_ipv4(l3, ip)) {
      case IpError::kNone: break;
      case IpError::kBadChecksum: return bump(&GatewayStats::bad_ip_checksum);
      case IpError::kFragment: return bump(&GatewayStats::fragments);
      case IpError::kTtlExpired: return bump(&GatewayStats::ttl_expired);
      default: return bump(&GatewayStats::bad_ip_header);
    }
    if (ip.dst != cfg_.ip) return bump(&GatewayStats::not_for_us);  // the gateway routes nowhere
    if (!vm_network_host(ip.src)) return bump(&GatewayStats::bad_source);
    if (ip.protocol == kIpProtoIcmp) return handle_icmp(eth_src, ip);
    if (ip.protocol == kIpProtoUdp) return handle_udp(ip);
    bump(&GatewayStats::unsupported_protocol);
  }

  void handle_arp(std::span<const uint8_t> l3) {
    const auto arp = parse_arp(l3);
    if (!arp) return bump(&GatewayStats::bad_arp);
    if (arp->target_ip == cfg_.ip) {
      // RFC 826: a packet for us updates (or adds) the sender's entry.
      learn(arp->sender_ip, arp->sender_mac);
      if (arp->op == kArpRequest && vm_network_host(arp->sender_ip) && !(arp->sender_mac[0] & 1)) {
        transmit(build_arp(arp->sender_mac, cfg_.mac,
                           ArpPacket{kArpReply, cfg_.mac, cfg_.ip, arp->sender_mac, arp->sender_ip}));
        bump(&GatewayStats::arp_replies_sent);
      }
    } else if (arp->sender_ip == arp->target_ip && arp_cache_.count(arp->sender_ip)) {
      learn(arp->sender_ip, arp->sender_mac);  // gratuitous ARP: a VM announcing a new MAC
    }
    // ARP between VMs reaches us by flooding; it is not ours to answer.
  }

  void handle_icmp(const MacAddress& eth_src, const Ipv4Packet& ip) {
    const auto p = ip.payload;
    // Type 8 code 0: echo request. The checksum covers the whole message.
    if (p.size() < 8 || internet_checksum(p) != 0 || p[0] != 8 || p[1] != 0) return bump(&GatewayStats::bad_icmp);
    if ((eth_src[0] & 1)) return bump(&GatewayStats::bad_source);
    std::vector<uint8_t> reply(p.begin(), p.end());
    reply[0] = 0;  // echo reply
    store16(&reply[2], 0);
    store16(&reply[2], internet_checksum(reply));
    transmit(build_ipv4(eth_src, cfg_.mac, cfg_.ip, ip.src, kIpProtoIcmp, next_ip_id_++, reply));
    bump(&GatewayStats::icmp_echo_replies);
  }

  void handle_udp(const Ipv4Packet& ip) {
    UdpDatagram udp;
    switch (parse_udp(ip, udp)) {
      case UdpError::kNone: break;
      case UdpError::kBadChecksum: return bump(&GatewayStats::bad_udp_checksum);
      default: return bump(&GatewayStats::bad_udp);
    }
    if (udp.dst_port >= kFirstMappedPort) {
      Mapping& m = slots_[udp.dst_port - kFirstMappedPort];
      if (!m.used) return bump(&GatewayStats::no_mapping);
      if (cfg_.vm_ips[m.vm] != ip.src) return bump(&GatewayStats::wrong_vm);
      m.last_used = steady_ns();
      send_to_host(vm_socks_[m.vm], m.peer, udp.payload);
      return;
    }
    const int vm = vm_index(ip.src);
    if (vm < 0) return bump(&GatewayStats::bad_source);
    if (udp.dst_port == 0 || udp.src_port == 0) return bump(&GatewayStats::bad_udp);
    Flow* flow = guest_flow(static_cast<size_t>(vm), udp.src_port);
    if (!flow) return bump(&GatewayStats::host_send_errors);
    send_to_host(flow->fd, loopback(udp.dst_port), udp.payload);
  }

  void send_to_host(int fd, const sockaddr_in& to, std::span<const uint8_t> data) {
    if (sendto(fd, data.data(), data.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0)
      return bump(&GatewayStats::host_send_errors);  // e.g. a full socket buffer: UDP may drop
    bump(&GatewayStats::udp_to_host);
  }

  Flow* guest_flow(size_t vm, uint16_t guest_port) {
    const uint64_t key = (uint64_t(vm) << 16) | guest_port;
    const uint64_t now = steady_ns();
    if (auto it = flows_.find(key); it != flows_.end()) {
      it->second.last_used = now;
      return &it->second;
    }
    if (flows_.size() >= cfg_.max_guest_flows && !flows_.empty()) {
      auto lru = flows_.begin();
      for (auto it = flows_.begin(); it != flows_.end(); ++it)
        if (it->second.last_used < lru->second.last_used) lru = it;
      flow_by_fd_.erase(lru->second.fd);
      close(lru->second.fd);  // also leaves the epoll set
      flows_.erase(lru);
      bump(&GatewayStats::flows_evicted);
    }
    int fd;
    try {
      fd = udp_socket_on_loopback(0);
      watch(fd, tag(kTagFlow, static_cast<uint64_t>(fd)));
    } catch (const std::exception&) {
      return nullptr;
    }
    flow_by_fd_[fd] = key;
    return &(flows_[key] = Flow{fd, vm, guest_port, now});
  }

  GatewayConfig cfg_;
  std::shared_ptr<Inbox> inbox_;
  std::shared_ptr<FramePort> port_;
  int epoll_ = -1;
  std::vector<int> vm_socks_;
  std::vector<Mapping> slots_;
  std::unordered_map<uint64_t, size_t> mapping_by_key_;
  size_t next_slot_ = 0;
  std::unordered_map<uint64_t, Flow> flows_;
  std::unordered_map<int, uint64_t> flow_by_fd_;
  std::unordered_map<Ipv4, MacAddress> arp_cache_;
  std::unordered_map<Ipv4, ArpWait> arp_waits_;
  uint16_t next_ip_id_ = 1;
  uint8_t buf_[65536];
  std::atomic<bool> stop_{false};
  std::mutex stats_mu_;
  GatewayStats stats_;
  std::thread thread_;
};

Gateway::Gateway(Switch& sw, GatewayConfig config)
    : config_(std::move(config)), impl_(std::make_unique<Impl>(sw, config_)) {}
Gateway::~Gateway() = default;

GatewayStats Gateway::stats() const { return impl_->stats(); }

std::string Gateway::format_stats() const {
  const GatewayStats s = stats();
  const uint64_t rejected = s.bad_arp + s.not_for_us + s.bad_ip_header + s.bad_ip_checksum + s.fragments +
                            s.ttl_expired + s.bad_source + s.unsupported_protocol + s.bad_udp + s.bad_udp_checksum +
                            s.bad_icmp + s.no_mapping + s.wrong_vm;
  char b[512];
  snprintf(b, sizeof b,
           "gateway %s: %llu UDP to VMs, %llu UDP to host, %llu ARP replies, %llu ARP requests, %llu echo replies, "
           "%llu frames refused (%llu bad IP, %llu bad checksum, %llu fragments, %llu TTL 0, %llu no mapping, "
           "%llu not for us), %llu dropped waiting for ARP, %llu host send errors\n",
           format_ipv4(config_.ip).c_str(), (unsigned long long)s.udp_to_vm, (unsigned long long)s.udp_to_host,
           (unsigned long long)s.arp_replies_sent, (unsigned long long)s.arp_requests_sent,
           (unsigned long long)s.icmp_echo_replies, (unsigned long long)rejected,
           (unsigned long long)s.bad_ip_header, (unsigned long long)(s.bad_ip_checksum + s.bad_udp_checksum),
           (unsigned long long)s.fragments, (unsigned long long)s.ttl_expired, (unsigned long long)s.no_mapping,
           (unsigned long long)s.not_for_us, (unsigned long long)s.arp_failed,
           (unsigned long long)s.host_send_errors);
  return b;
}

}  // namespace vmm::net
