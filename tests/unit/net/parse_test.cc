// Text forms: addresses, interface settings and demo arguments.
#include <gtest/gtest.h>

#include <cstring>

#include "guest-kernel/net/parse.h"

namespace net {
namespace {

TEST(ParseIpv4, AcceptsDottedQuads) {
  Ipv4Address a;
  ASSERT_TRUE(parse_ipv4("10.0.0.11", &a));
  EXPECT_EQ(a, Ipv4Address::of(10, 0, 0, 11));
  ASSERT_TRUE(parse_ipv4("255.255.255.255", &a));
  EXPECT_EQ(a.value, 0xffffffffu);
  ASSERT_TRUE(parse_ipv4("0.0.0.0", &a));
  EXPECT_EQ(a.value, 0u);
}

TEST(ParseIpv4, RejectsEverythingElse) {
  const char* bad[] = {"", "10", "10.0.0", "10.0.0.1.", "10.0.0.1.2", "10..0.1", ".10.0.0.1", "256.0.0.1",
                       "10.0.0.-1", "10.0.0.01", "010.0.0.1", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1x", "a.b.c.d",
                       "10.0.0.99999999999999999999", "1e1.0.0.1", "+1.0.0.1"};
  for (const char* s : bad) {
    Ipv4Address a{0x12345678};
    EXPECT_FALSE(parse_ipv4(s, &a)) << s;
    EXPECT_EQ(a.value, 0x12345678u) << "untouched on failure: " << s;
  }
  Ipv4Address a;
  EXPECT_FALSE(parse_ipv4(nullptr, &a));
}

TEST(ParseInterfaceConfig, DefaultsAndForms) {
  InterfaceConfig c;
  ASSERT_EQ(parse_interface_config("10.0.0.11", nullptr, "10.0.0.1", &c), nullptr);
  EXPECT_EQ(c.address, Ipv4Address::of(10, 0, 0, 11));
  EXPECT_EQ(c.netmask, Ipv4Address::of(255, 255, 255, 0));
  EXPECT_EQ(c.gateway, Ipv4Address::of(10, 0, 0, 1));
  ASSERT_EQ(parse_interface_config("10.1.2.3", "16", nullptr, &c), nullptr);
  EXPECT_EQ(c.netmask, Ipv4Address::of(255, 255, 0, 0));
  EXPECT_TRUE(c.gateway.is_zero());
  ASSERT_EQ(parse_interface_config("10.1.2.3", "255.0.0.0", "10.200.0.1", &c), nullptr);
  EXPECT_EQ(c.netmask, Ipv4Address::of(255, 0, 0, 0));
  ASSERT_EQ(parse_interface_config("10.0.0.1", "30", "10.0.0.2", &c), nullptr);
}

TEST(ParseInterfaceConfig, RejectsWithAReason) {
  struct Case {
    const char *ip, *mask, *gw;
  };
  const Case bad[] = {
      {nullptr, nullptr, nullptr},        {"10.0.0", nullptr, nullptr},       {"0.0.0.0", nullptr, nullptr},
      {"224.0.0.1", nullptr, nullptr},    {"127.0.0.1", nullptr, nullptr},    {"10.0.0.0", nullptr, nullptr},
      {"10.0.0.255", nullptr, nullptr},   {"10.0.0.11", "33", nullptr},       {"10.0.0.11", "0", nullptr},
      {"10.0.0.11", "31", nullptr},       {"10.0.0.11", "32", nullptr},       {"10.0.0.11", "255.0.255.0", nullptr},
      {"10.0.0.11", "x", nullptr},        {"10.0.0.11", nullptr, "10.0.1.1"}, {"10.0.0.11", nullptr, "10.0.0.11"},
      {"10.0.0.11", nullptr, "10.0.0.255"}, {"10.0.0.11", nullptr, "10.0.0.0"}, {"10.0.0.11", nullptr, "gateway"},
  };
  for (const Case& c : bad) {
    InterfaceConfig out;
    out.address = Ipv4Address::of(1, 2, 3, 4);
    const char* err = parse_interface_config(c.ip, c.mask, c.gw, &out);
    ASSERT_NE(err, nullptr) << (c.ip ? c.ip : "-") << " " << (c.mask ? c.mask : "-") << " " << (c.gw ? c.gw : "-");
    EXPECT_GT(std::strlen(err), 10u);
    EXPECT_EQ(out.address, Ipv4Address::of(1, 2, 3, 4));
  }
}

TEST(ParseDemoArgs, Ping) {
  PingArgs p;
  ASSERT_EQ(parse_ping_args("10.0.0.12", &p), nullptr);
  EXPECT_EQ(p.dst, Ipv4Address::of(10, 0, 0, 12));
  EXPECT_EQ(p.count, 3u);
  EXPECT_EQ(p.interval_ms, 1000u);
  ASSERT_EQ(parse_ping_args("10.0.0.12,5", &p), nullptr);
  EXPECT_EQ(p.count, 5u);
  ASSERT_EQ(parse_ping_args("10.0.0.12,5,200", &p), nullptr);
  EXPECT_EQ(p.interval_ms, 200u);
  for (const char* s : {"", "10.0.0.12,", "10.0.0.12,0", "10.0.0.12,1001", "10.0.0.12,x", "10.0.0.12,3,5",
                        "10.0.0.12,3,", "10.0.0.12,3,200,1", "host,3"})
    EXPECT_NE(parse_ping_args(s, &p), nullptr) << s;
}

TEST(ParseDemoArgs, UdpSendAndEcho) {
  UdpSendArgs s;
  ASSERT_EQ(parse_udp_send_args("10.0.0.12:7,5", &s), nullptr);
  EXPECT_EQ(s.dst, Ipv4Address::of(10, 0, 0, 12));
  EXPECT_EQ(s.port, 7);
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.size, 0u);
  ASSERT_EQ(parse_udp_send_args("10.0.0.12:65535", &s), nullptr);
  EXPECT_EQ(s.count, 1u);
  ASSERT_EQ(parse_udp_send_args("10.0.0.12:7,3,20000", &s), nullptr);
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.size, 20000u);
  ASSERT_EQ(parse_udp_send_args("10.0.0.12:7,1,65507", &s), nullptr);
  EXPECT_EQ(s.size, 65507u);
  for (const char* bad : {"10.0.0.12", "10.0.0.12:", "10.0.0.12:0", "10.0.0.12:65536", "10.0.0.12:7,",
                          "10.0.0.12:7,0", ":7,1", "10.0.0.12:7,1,0", "10.0.0.12:7,1,65508", "10.0.0.12:7,1,",
                          "10.0.0.12:7,1,2,3", "10.0.0.12:7,,2"})
    EXPECT_NE(parse_udp_send_args(bad, &s), nullptr) << bad;
  UdpEchoArgs e;
  ASSERT_EQ(parse_udp_echo_args("7", &e), nullptr);
  EXPECT_EQ(e.port, 7);
  EXPECT_EQ(e.count, 0u);
  ASSERT_EQ(parse_udp_echo_args("7000,3", &e), nullptr);
  EXPECT_EQ(e.count, 3u);
  for (const char* bad : {"", "0", "x", "7,", "7,0", "70000"}) EXPECT_NE(parse_udp_echo_args(bad, &e), nullptr) << bad;
}

}  // namespace
}  // namespace net
