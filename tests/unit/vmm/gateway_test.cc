#include "vmm/net/gateway.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

namespace vmm::net {
namespace {

using namespace std::chrono_literals;

constexpr MacAddress kVmMac = {0x52, 0x54, 0x00, 0x00, 0x00, 0x0a};
constexpr Ipv4 kVmIp = ipv4(10, 0, 0, 10);

class RecordingSink : public FrameSink {
 public:
  void deliver(Frame frame) override {
    std::lock_guard lock(mu_);
    frames_.push_back(std::move(frame));
    cv_.notify_all();
  }
  // The first recorded frame matching pred, removed; nullopt on timeout.
  std::optional<Frame> wait(std::function<bool(const Frame&)> pred, std::chrono::milliseconds t = 3000ms) {
    std::unique_lock lock(mu_);
    std::optional<Frame> found;
    cv_.wait_for(lock, t, [&] {
      for (auto it = frames_.begin(); it != frames_.end(); ++it)
        if (pred(*it)) {
          found = std::move(*it);
          frames_.erase(it);
          return true;
        }
      return false;
    });
    return found;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return frames_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Frame> frames_;
};

bool is_arp(const Frame& f, uint16_t op) {
  if (f.size() < kEthHeaderLen || ether_type(f) != kEtherTypeArp) return false;
  auto a = parse_arp(std::span<const uint8_t>(f).subspan(kEthHeaderLen));
  return a && a->op == op;
}

bool is_ip(const Frame& f, uint8_t proto) {
  Ipv4Packet ip;
  return f.size() > kEthHeaderLen && ether_type(f) == kEtherTypeIpv4 &&
         parse_ipv4(std::span<const uint8_t>(f).subspan(kEthHeaderLen), ip) == IpError::kNone && ip.protocol == proto;
}

bool eventually(std::function<bool()> pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// A base port with `n` free UDP ports on 127.0.0.1 after it.
uint16_t free_base(int n) {
  for (uint16_t base = 20000 + (getpid() % 500) * 20; base < 40000; base += 37) {
    std::vector<int> fds;
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in a{AF_INET, htons(base + i), {htonl(INADDR_LOOPBACK)}, {}};
      ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      fds.push_back(fd);
    }
    for (int fd : fds) close(fd);
    if (ok) return base;
  }
  return 0;
}

// A host-side UDP socket on 127.0.0.1 with a receive timeout.
struct HostSocket {
  explicit HostSocket(uint16_t port = 0) {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~HostSocket() { close(fd); }
  uint16_t port() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
  void send_to(uint16_t port, const std::string& s) {
    sockaddr_in a{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
    ASSERT_EQ(sendto(fd, s.data(), s.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a), ssize_t(s.size()));
  }
  // The next datagram and the port it came from; "" on timeout.
  std::string recv(uint16_t* from_port = nullptr) {
    char b[2048];
    sockaddr_in a{};
    socklen_t len = sizeof a;
    const ssize_t n = recvfrom(fd, b, sizeof b, 0, reinterpret_cast<sockaddr*>(&a), &len);
    if (n < 0) return "";
    if (from_port) *from_port = ntohs(a.sin_port);
    return std::string(b, size_t(n));
  }
  int fd;
};

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

struct Rig {
  explicit Rig(uint16_t base = 0, uint64_t arp_retry_ns = 1000000000) {
    GatewayConfig c;
    c.vm_ips = {kVmIp, ipv4(10, 0, 0, 11)};
    c.host_base_port = base;
    c.arp_retry_ns = arp_retry_ns;
    gw = std::make_unique<Gateway>(sw, c);
    port = sw.attach("vm0", vm);
  }
  ~Rig() {
    gw.reset();  // stop the gateway thread before the switch goes
  }
  void send(const Frame& f) { ASSERT_TRUE(port->transmit(f)); }
  Frame udp_to_gateway(uint16_t sport, uint16_t dport, const std::string& payload) {
    return build_udp(kGatewayMac, kVmMac, kVmIp, kGatewayIp, 1, sport, dport, bytes(payload));
  }
  // Answers the gateway's ARP request for the VM's address.
  void answer_arp() {
    auto req = vm->wait([](const Frame& f) { return is_arp(f, kArpRequest); });
    ASSERT_TRUE(req) << "the gateway never asked for the VM's MAC";
    auto a = parse_arp(std::span<const uint8_t>(*req).subspan(kEthHeaderLen));
    EXPECT_EQ(a->target_ip, kVmIp);
    EXPECT_EQ(a->sender_ip, kGatewayIp);
    EXPECT_EQ(load_mac(req->data()), kBroadcastMac);
    send(build_arp(kGatewayMac, kVmMac, ArpPacket{kArpReply, kVmMac, kVmIp, kGatewayMac, kGatewayIp}));
  }
  Switch sw;
  std::shared_ptr<RecordingSink> vm = std::make_shared<RecordingSink>();
  std::unique_ptr<Gateway> gw;
  std::shared_ptr<FramePort> port;
};

TEST(PacketTest, ChecksumMatchesRfc1071Example) {
  // RFC 1071's worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_finish(checksum_partial(d)), static_cast<uint16_t>(~0xddf2));
  const uint8_t odd[] = {0x01};  // padded with a zero byte: 0x0100
  EXPECT_EQ(internet_checksum(odd), static_cast<uint16_t>(~0x0100));
}

TEST(PacketTest, BuiltUdpParsesBackWithValidChecksums) {
  const Frame f = build_udp(kVmMac, kGatewayMac, kGatewayIp, kVmIp, 7, 50000, 7000, bytes("hello"));
  Ipv4Packet ip;
  ASSERT_EQ(parse_ipv4(std::span<const uint8_t>(f).subspan(kEthHeaderLen), ip), IpError::kNone);
  EXPECT_EQ(ip.src, kGatewayIp);
  EXPECT_EQ(ip.dst, kVmIp);
  EXPECT_EQ(ip.ttl, 64);
  UdpDatagram u;
  ASSERT_EQ(parse_udp(ip, u), UdpError::kNone);
  EXPECT_EQ(u.src_port, 50000);
  EXPECT_EQ(u.dst_port, 7000);
  EXPECT_EQ(std::string(u.payload.begin(), u.payload.end()), "hello");
  EXPECT_EQ(format_ipv4(kVmIp), "10.0.0.10");
}

TEST(PacketTest, RejectsEveryMalformedIpv4Field) {
  const Frame good = build_udp(kVmMac, kGatewayMac, kGatewayIp, kVmIp, 7, 1, 2, bytes("x"));
  auto parse = [](Frame f, std::function<void(uint8_t*)> edit, bool fix_checksum = true) {
    uint8_t* ip = f.data() + kEthHeaderLen;
    edit(ip);
    if (fix_checksum) {
      store16(ip + 10, 0);
      store16(ip + 10, internet_checksum({ip, size_t(ip[0] & 0xf) * 4}));
    }
    Ipv4Packet p;
    return parse_ipv4(std::span<const uint8_t>(f).subspan(kEthHeaderLen), p);
  };
  EXPECT_EQ(parse(good, [](uint8_t*) {}), IpError::kNone);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { ip[0] = 0x65; }), IpError::kBadVersion);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { ip[0] = 0x44; }), IpError::kBadHeaderLength);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { ip[0] = 0x4f; }, false), IpError::kBadHeaderLength);  // 60 > 29 bytes
  EXPECT_EQ(parse(good, [](uint8_t* ip) { store16(ip + 2, 200); }), IpError::kBadTotalLength);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { store16(ip + 2, 19); }), IpError::kBadTotalLength);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { ip[12] ^= 1; }, false), IpError::kBadChecksum);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { store16(ip + 6, 0x2000); }), IpError::kFragment);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { store16(ip + 6, 0x0001); }), IpError::kFragment);
  EXPECT_EQ(parse(good, [](uint8_t* ip) { ip[8] = 0; }), IpError::kTtlExpired);
  Ipv4Packet p;
  EXPECT_EQ(parse_ipv4(std::span<const uint8_t>(good).subspan(kEthHeaderLen, 19), p), IpError::kTruncated);
}

TEST(GatewayTest, AnswersArpForItsAddress) {
  Rig r;
  r.send(build_arp(kBroadcastMac, kVmMac, ArpPacket{kArpRequest, kVmMac, kVmIp, {}, kGatewayIp}));
  auto reply = r.vm->wait([](const Frame& f) { return is_arp(f, kArpReply); });
  ASSERT_TRUE(reply);
  auto a = parse_arp(std::span<const uint8_t>(*reply).subspan(kEthHeaderLen));
  EXPECT_EQ(a->sender_mac, kGatewayMac);
  EXPECT_EQ(a->sender_ip, kGatewayIp);
  EXPECT_EQ(a->target_mac, kVmMac);
  EXPECT_EQ(load_mac(reply->data()), kVmMac);
  // ARP for another VM's address is not ours to answer.
  r.send(build_arp(kBroadcastMac, kVmMac, ArpPacket{kArpRequest, kVmMac, kVmIp, {}, ipv4(10, 0, 0, 11)}));
  EXPECT_FALSE(r.vm->wait([](const Frame& f) { return is_arp(f, kArpReply); }, 100ms));
  EXPECT_EQ(r.gw->stats().arp_replies_sent, 1u);
}

TEST(GatewayTest, AnswersIcmpEcho) {
  Rig r;
  std::vector<uint8_t> echo = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'};
  store16(&echo[2], internet_checksum(echo));
  r.send(build_ipv4(kGatewayMac, kVmMac, kVmIp, kGatewayIp, kIpProtoIcmp, 9, echo));
  auto reply = r.vm->wait([](const Frame& f) { return is_ip(f, kIpProtoIcmp); });
  ASSERT_TRUE(reply);
  Ipv4Packet ip;
  ASSERT_EQ(parse_ipv4(std::span<const uint8_t>(*reply).subspan(kEthHeaderLen), ip), IpError::kNone);
  EXPECT_EQ(ip.dst, kVmIp);
  ASSERT_EQ(ip.payload.size(), echo.size());
  EXPECT_EQ(ip.payload[0], 0);  // echo reply
  EXPECT_EQ(internet_checksum(ip.payload), 0);
  EXPECT_TRUE(std::equal(echo.begin() + 4, echo.end(), ip.payload.begin() + 4));
  // A bad ICMP checksum is refused.
  echo[9] ^= 1;
  r.send(build_ipv4(kGatewayMac, kVmMac, kVmIp, kGatewayIp, kIpProtoIcmp, 10, echo));
  EXPECT_TRUE(eventually([&] { return r.gw->stats().bad_icmp == 1; }));
  EXPECT_EQ(r.gw->stats().icmp_echo_replies, 1u);
}

TEST(GatewayTest, HostRequestReachesTheVmAndTheReplyComesBack) {
  const uint16_t base = free_base(2);
  ASSERT_NE(base, 0);
  Rig r(base);
  HostSocket host;
  host.send_to(base, "ping");
  r.answer_arp();
  auto frame = r.vm->wait([](const Frame& f) { return is_ip(f, kIpProtoUdp); });
  ASSERT_TRUE(frame) << "the request never reached the VM";
  EXPECT_EQ(load_mac(frame->data()), kVmMac);
  Ipv4Packet ip;
  ASSERT_EQ(parse_ipv4(std::span<const uint8_t>(*frame).subspan(kEthHeaderLen), ip), IpError::kNone);
  UdpDatagram u;
  ASSERT_EQ(parse_udp(ip, u), UdpError::kNone);
  EXPECT_EQ(ip.src, kGatewayIp);
  EXPECT_EQ(ip.dst, kVmIp);
  EXPECT_EQ(u.dst_port, kDefaultServicePort);
  EXPECT_GE(u.src_port, kFirstMappedPort);
  EXPECT_EQ(std::string(u.payload.begin(), u.payload.end()), "ping");

  r.send(r.udp_to_gateway(kDefaultServicePort, u.src_port, "pong"));
  uint16_t from = 0;
  EXPECT_EQ(host.recv(&from), "pong");
  EXPECT_EQ(from, base) << "the reply must come from the port the host sent to";

  // A second datagram from the same peer reuses the mapping, and the MAC is cached.
  host.send_to(base, "again");
  auto second = r.vm->wait([](const Frame& f) { return is_ip(f, kIpProtoUdp); });
  ASSERT_TRUE(second);
  ASSERT_EQ(parse_ipv4(std::span<const uint8_t>(*second).subspan(kEthHeaderLen), ip), IpError::kNone);
  UdpDatagram u2;
  ASSERT_EQ(parse_udp(ip, u2), UdpError::kNone);
  EXPECT_EQ(u2.src_port, u.src_port);
  // The counters move just after the frame is handed on.
  EXPECT_TRUE(eventually([&] { return r.gw->stats().udp_to_vm == 2; }));
  const GatewayStats s = r.gw->stats();
  EXPECT_EQ(s.arp_requests_sent, 1u);
  EXPECT_EQ(s.udp_to_host, 1u);
}

TEST(GatewayTest, ReplyFromAnotherVmOrToAnUnmappedPortIsRefused) {
  const uint16_t base = free_base(2);
  ASSERT_NE(base, 0);
  Rig r(base);
  r.send(r.udp_to_gateway(7000, 60000, "nobody asked"));
  EXPECT_TRUE(eventually([&] { return r.gw->stats().no_mapping == 1; }));
  HostSocket host;
  host.send_to(base + 1, "to vm1");  // VM 1 (10.0.0.11); our fake VM is 10.0.0.10
  const auto req = r.vm->wait([](const Frame& f) { return is_arp(f, kArpRequest); });
  ASSERT_TRUE(req);
  // Pretend 10.0.0.10 answers for the mapping made for VM 1.
  r.send(r.udp_to_gateway(7000, kFirstMappedPort, "spoof"));
  EXPECT_TRUE(eventually([&] { return r.gw->stats().wrong_vm == 1; }));
  EXPECT_EQ(r.gw->stats().udp_to_host, 0u);
}

TEST(GatewayTest, GuestInitiatedDatagramReachesTheHostAndBack) {
  Rig r;
  const uint16_t service = free_base(1);
  ASSERT_NE(service, 0);
  HostSocket host(service);
  r.send(build_arp(kBroadcastMac, kVmMac, ArpPacket{kArpRequest, kVmMac, kVmIp, {}, kGatewayIp}));  // learns our MAC
  r.send(r.udp_to_gateway(5555, service, "hello host"));
  uint16_t from = 0;
  ASSERT_EQ(host.recv(&from), "hello host");
  host.send_to(from, "hello guest");
  auto frame = r.vm->wait([](const Frame& f) { return is_ip(f, kIpProtoUdp); });
  ASSERT_TRUE(frame);
  Ipv4Packet ip;
  ASSERT_EQ(parse_ipv4(std::span<const uint8_t>(*frame).subspan(kEthHeaderLen), ip), IpError::kNone);
  UdpDatagram u;
  ASSERT_EQ(parse_udp(ip, u), UdpError::kNone);
  EXPECT_EQ(u.src_port, service);
  EXPECT_EQ(u.dst_port, 5555);
  EXPECT_EQ(std::string(u.payload.begin(), u.payload.end()), "hello guest");
  EXPECT_EQ(r.gw->stats().arp_requests_sent, 0u) << "the MAC was learned from the VM's own ARP request";
}

TEST(GatewayTest, CountsEveryKindOfBadFrame) {
  Rig r;
  auto edit_ip = [&](std::function<void(uint8_t*)> edit, bool fix = true) {
    Frame f = r.udp_to_gateway(5555, 7, "x");
    uint8_t* ip = f.data() + kEthHeaderLen;
    edit(ip);
    if (fix) {
      store16(ip + 10, 0);
      store16(ip + 10, internet_checksum({ip, kIpv4HeaderLen}));
    }
    r.send(f);
  };
  edit_ip([](uint8_t* ip) { ip[10] ^= 0xff; }, false);             // header checksum
  edit_ip([](uint8_t* ip) { store16(ip + 6, 0x2000); });            // fragment
  edit_ip([](uint8_t* ip) { ip[8] = 0; });                          // TTL
  edit_ip([](uint8_t* ip) { store16(ip + 2, 1000); });              // total length past the frame
  edit_ip([](uint8_t* ip) { ip[9] = 6; });                          // TCP
  edit_ip([](uint8_t* ip) { store32(ip + 16, ipv4(10, 0, 0, 2)); });  // not the gateway's IP
  edit_ip([](uint8_t* ip) { store32(ip + 12, ipv4(192, 168, 1, 1)); });  // source outside the network
  edit_ip([](uint8_t* ip) { ip[20 + 7] ^= 0x55; });                 // UDP checksum
  edit_ip([](uint8_t* ip) { store16(ip + 20 + 4, 200); });          // UDP length
  Frame arp = build_arp(kBroadcastMac, kVmMac, ArpPacket{kArpRequest, kVmMac, kVmIp, {}, kGatewayIp});
  arp[kEthHeaderLen + 5] = 16;  // protocol address length
  r.send(arp);
  ASSERT_TRUE(eventually([&] {
    const GatewayStats s = r.gw->stats();
    return s.bad_ip_checksum == 1 && s.fragments == 1 && s.ttl_expired == 1 && s.bad_ip_header == 1 &&
           s.unsupported_protocol == 1 && s.not_for_us == 1 && s.bad_source == 1 && s.bad_udp_checksum == 1 &&
           s.bad_udp == 1 && s.bad_arp == 1;
  })) << r.gw->format_stats();
  EXPECT_EQ(r.gw->stats().udp_to_host, 0u);
  EXPECT_EQ(r.vm->count(), 0u) << "nothing answered a bad frame";
}

TEST(GatewayTest, GivesUpWhenTheVmNeverAnswersArp) {
  const uint16_t base = free_base(2);
  ASSERT_NE(base, 0);
  Rig r(base, 20000000);  // retry every 20 ms
  HostSocket host;
  host.send_to(base, "one");
  host.send_to(base, "two");
  ASSERT_TRUE(eventually([&] { return r.gw->stats().arp_failed == 2; })) << r.gw->format_stats();
  EXPECT_EQ(r.gw->stats().arp_requests_sent, 3u);
  EXPECT_EQ(r.gw->stats().udp_to_vm, 0u);
}

TEST(GatewayTest, TakenHostPortIsAClearError) {
  const uint16_t base = free_base(2);
  ASSERT_NE(base, 0);
  HostSocket squatter(base + 1);
  Switch sw;
  GatewayConfig c;
  c.vm_ips = {kVmIp, ipv4(10, 0, 0, 11)};
  c.host_base_port = base;
  try {
    Gateway gw(sw, c);
    FAIL() << "bound a port that is taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind 127.0.0.1:" + std::to_string(base + 1)), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(sw.attached("gateway"));
  c.vm_ips = {ipv4(10, 0, 1, 5)};
  c.host_base_port = 0;
  EXPECT_THROW(Gateway(sw, c), std::invalid_argument);
}

}  // namespace
}  // namespace vmm::net
