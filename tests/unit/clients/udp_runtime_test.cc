#include "storage-guests/clients/udp_runtime.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "storage-guests/common/ids.h"
#include "storage-guests/common/transport.h"
#include "storage-guests/raft/kv_client.h"
#include "storage-guests/raft/wire.h"

namespace sg::clients {
namespace {

// A UDP socket on 127.0.0.1 standing in for the gateway relay of one VM.
struct FakeServer {
  int fd;
  uint16_t port;
  FakeServer() {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~FakeServer() { ::close(fd); }
  // Waits for one datagram; returns it and where it came from.
  bool receive(Bytes& data, sockaddr_in& from) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    data.resize(65536);
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return false;
    data.resize(static_cast<size_t>(n));
    return true;
  }
  void reply(const Bytes& data, const sockaddr_in& to) {
    ::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
};

TEST(UdpRuntime, KvClientRoundTripThroughAGatewayPort) {
  FakeServer server;
  UdpRuntime runtime(server.port, 1);
  UdpEnv& env = runtime.add_client(runtime.fresh_client_id());
  raft::KvClientConfig cfg;
  cfg.servers = {1};
  raft::KvClient client(env, cfg);
  env.set_node(&client);

  std::thread fake([&] {
    Bytes d;
    sockaddr_in from{};
    ASSERT_TRUE(server.receive(d, from));
    Bytes msg;
    auto h = unframe_datagram(d.data(), d.size(), msg);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->to, 1u);
    EXPECT_TRUE(is_client_id(h->from));
    auto req = raft::decode_request(msg);
    ASSERT_TRUE(req);
    EXPECT_EQ(req->op, raft::KvOp::kGet);
    EXPECT_EQ(req->key, "k");
    // Garbage first: it must be rejected, not crash or confuse the client.
    server.reply(Bytes{1, 2, 3}, from);
    server.reply(frame_datagram({1, h->from + 1}, msg), from);  // for someone else
    raft::KvResponse resp;
    resp.id = req->id;
    resp.value = "v";
    server.reply(frame_datagram({1, h->from}, raft::encode_response(resp)), from);
  });

  std::optional<raft::KvOutcome> outcome;
  std::optional<std::string> value;
  client.get("k", [&](raft::KvOutcome o, const std::optional<std::string>& v) {
    outcome = o;
    value = v;
  });
  EXPECT_TRUE(runtime.run_until([&] { return outcome.has_value(); }, 10'000'000'000ull));
  fake.join();
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, raft::KvOutcome::kOk);
  EXPECT_EQ(value, "v");
  EXPECT_EQ(env.rejected(), 2u);
}

TEST(UdpRuntime, NoServerMeansTimeoutNotHang) {
  FakeServer server;  // bound, never answers
  UdpRuntime runtime(server.port, 1);
  UdpEnv& env = runtime.add_client(runtime.fresh_client_id());
  raft::KvClientConfig cfg;
  cfg.servers = {1};
  cfg.op_timeout = 300'000'000;
  cfg.attempt_timeout = 100'000'000;
  raft::KvClient client(env, cfg);
  env.set_node(&client);
  std::optional<raft::KvOutcome> outcome;
  client.put("k", "v", [&](raft::KvOutcome o, const std::optional<std::string>&) { outcome = o; });
  const TimeNs t0 = runtime.now();
  EXPECT_TRUE(runtime.run_until([&] { return outcome.has_value(); }, 5'000'000'000ull));
  EXPECT_EQ(outcome, raft::KvOutcome::kTimeout);
  EXPECT_LT(runtime.now() - t0, 2'000'000'000ull);
}

TEST(UdpRuntime, BadConfigurationsAreRefused) {
  EXPECT_THROW(UdpRuntime(7100, 0), std::invalid_argument);
  EXPECT_THROW(UdpRuntime(7100, 65), std::invalid_argument);
  EXPECT_THROW(UdpRuntime(65535, 2), std::invalid_argument);
  EXPECT_THROW(UdpRuntime(0, 1), std::invalid_argument);
  UdpRuntime ok(7100, 3);
  EXPECT_THROW(ok.add_client(2), std::invalid_argument);  // a server id
}

TEST(Transport, FramesRoundTripAndRejectGarbage) {
  Bytes msg{9, 8, 7};
  Bytes d = frame_datagram({kFirstClientId + 5, 2}, msg);
  Bytes out;
  auto h = unframe_datagram(d.data(), d.size(), out);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->from, kFirstClientId + 5);
  EXPECT_EQ(h->to, 2u);
  EXPECT_EQ(out, msg);
  for (size_t len = 0; len < kTransportHeaderSize; ++len) EXPECT_FALSE(unframe_datagram(d.data(), len, out)) << len;
  Bytes bad = d;
  bad[0] ^= 1;
  EXPECT_FALSE(unframe_datagram(bad.data(), bad.size(), out));
  EXPECT_FALSE(unframe_datagram(frame_datagram({0, 2}, msg).data(), d.size(), out));
  EXPECT_FALSE(unframe_datagram(frame_datagram({3, kNoNode}, msg).data(), d.size(), out));
  EXPECT_EQ(server_ip(1), 0x0a00000au);
  EXPECT_EQ(server_at(0x0a00000cu), 3u);
  EXPECT_EQ(server_at(kGatewayIp), kNoNode);
  EXPECT_EQ(server_at(0x0b00000au), kNoNode);
}

}  // namespace
}  // namespace sg::clients
