// Wire formats: checksum, text forms, and each parser's acceptance rules.
#include <gtest/gtest.h>

#include "guest-kernel/net/wire.h"
#include "tests/unit/net/net_test_util.h"

namespace net {
namespace {

using namespace test;

TEST(Checksum, MatchesRfc1071Example) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_finish(checksum_add(0, data, sizeof data)), static_cast<uint16_t>(~0xddf2));
}

TEST(Checksum, KnownIpv4Header) {
  // A captured header (Wikipedia's IPv4 checksum example): b861.
  const uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(internet_checksum(h, sizeof h), 0xb861);
}

TEST(Checksum, OddLengthAndPiecesAgreeWithReference) {
  std::vector<uint8_t> d;
  for (int n = 0; n < 300; ++n) {
    EXPECT_EQ(internet_checksum(d.data(), d.size()), ref_checksum(d.data(), d.size())) << n;
    d.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
  // Summing in two even-length pieces equals summing the whole.
  const uint32_t s = checksum_add(checksum_add(0, d.data(), 100), d.data() + 100, d.size() - 100);
  EXPECT_EQ(checksum_finish(s), internet_checksum(d.data(), d.size()));
}

TEST(Format, Ipv4AndMac) {
  char buf[18];
  format_ipv4(Ipv4Address::of(10, 0, 0, 1), buf);
  EXPECT_STREQ(buf, "10.0.0.1");
  format_ipv4(Ipv4Address::of(255, 255, 255, 255), buf);
  EXPECT_STREQ(buf, "255.255.255.255");
  format_ipv4(Ipv4Address{}, buf);
  EXPECT_STREQ(buf, "0.0.0.0");
  format_mac(MacAddress{{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}}, buf);
  EXPECT_STREQ(buf, "52:54:00:ab:cd:ef");
}

TEST(Ipv4Parse, AcceptsValidAndTrimsPadding) {
  auto f = ipv4_frame(kMacB, kMacA, kIpA, kIpB, 17, udp_segment(kIpA, kIpB, 1, 2, bytes("hi")));
  f.resize(60, 0xee);  // Ethernet padding after the packet
  Ipv4Packet p;
  ASSERT_EQ(parse_ipv4(f.data() + kIp, f.size() - kIp, &p), Ipv4Error::kNone);
  EXPECT_EQ(p.src, kIpA);
  EXPECT_EQ(p.dst, kIpB);
  EXPECT_EQ(p.protocol, 17);
  EXPECT_EQ(p.payload_len, 10u);  // by total length, not the frame
  EXPECT_EQ(p.payload, f.data() + kL4);
}

TEST(Ipv4Parse, SkipsOptions) {
  auto f = ipv4_frame(kMacB, kMacA, kIpA, kIpB, 17, bytes("12345678"));
  f.insert(f.begin() + kL4, {1, 1, 1, 0});  // NOP NOP NOP EOL
  f[kIp] = 0x46;
  put16(f, kIp + 2, 32);
  fix_ip_checksum(f);
  Ipv4Packet p;
  ASSERT_EQ(parse_ipv4(f.data() + kIp, f.size() - kIp, &p), Ipv4Error::kNone);
  EXPECT_EQ(p.payload, f.data() + kL4 + 4);
  EXPECT_EQ(p.payload_len, 8u);
}

TEST(Ipv4Parse, RejectsEachDefect) {
  const auto good = ipv4_frame(kMacB, kMacA, kIpA, kIpB, 17, bytes("12345678"));
  struct Case {
    const char* what;
    void (*edit)(std::vector<uint8_t>&);
    bool fix;
    Ipv4Error want;
  };
  const Case cases[] = {
      {"version 6", [](auto& f) { f[kIp] = 0x65; }, true, Ipv4Error::kBadVersion},
      {"IHL 4", [](auto& f) { f[kIp] = 0x44; }, true, Ipv4Error::kBadHeaderLength},
      {"IHL 0", [](auto& f) { f[kIp] = 0x40; }, true, Ipv4Error::kBadHeaderLength},
      {"IHL 15 past the data", [](auto& f) { f[kIp] = 0x4f; }, true, Ipv4Error::kBadHeaderLength},
      {"total length past the data", [](auto& f) { put16(f, kIp + 2, 29); }, true, Ipv4Error::kBadTotalLength},
      {"total length below header", [](auto& f) { put16(f, kIp + 2, 19); }, true, Ipv4Error::kBadTotalLength},
      {"bad checksum", [](auto& f) { f[kIp + 10] ^= 1; }, false, Ipv4Error::kBadChecksum},
      {"TTL 0", [](auto& f) { f[kIp + 8] = 0; }, true, Ipv4Error::kBadTtl},
  };
  for (const Case& c : cases) {
    auto f = good;
    c.edit(f);
    if (c.fix) fix_ip_checksum(f);
    Ipv4Packet p;
    EXPECT_EQ(parse_ipv4(f.data() + kIp, f.size() - kIp, &p), c.want) << c.what;
  }
  // The reserved "evil" bit alone is not a fragment.
  auto f = good;
  put16(f, kIp + 6, 0x8000);
  fix_ip_checksum(f);
  Ipv4Packet p;
  EXPECT_EQ(parse_ipv4(f.data() + kIp, f.size() - kIp, &p), Ipv4Error::kNone);
  EXPECT_FALSE(p.is_fragment());
}

TEST(Ipv4Parse, ReadsFragmentFields) {
  const auto good = ipv4_frame(kMacB, kMacA, kIpA, kIpB, 17, bytes("12345678"));
  struct Case {
    uint16_t word;
    bool mf;
    uint32_t offset;
  };
  const Case cases[] = {
      {0x4000, false, 0},          // DF: whole
      {0x2000, true, 0},           // first fragment
      {0x0001, false, 8},          // last fragment at 8
      {0x40b9, false, 0xb9 * 8},   // last fragment with DF (meaningless, accepted)
      {0x3fff, true, 0x1fff * 8},  // the largest offset: 65528
  };
  for (const Case& c : cases) {
    auto f = good;
    put16(f, kIp + 6, c.word);
    fix_ip_checksum(f);
    Ipv4Packet p;
    ASSERT_EQ(parse_ipv4(f.data() + kIp, f.size() - kIp, &p), Ipv4Error::kNone) << c.word;
    EXPECT_EQ(p.more_fragments, c.mf) << c.word;
    EXPECT_EQ(p.fragment_offset, c.offset) << c.word;
    EXPECT_EQ(p.is_fragment(), c.mf || c.offset != 0) << c.word;
  }
}

TEST(Ipv4Parse, EveryTruncationIsRejected) {
  const auto f = ipv4_frame(kMacB, kMacA, kIpA, kIpB, 17, bytes("12345678"));
  for (size_t n = 0; n < f.size() - kIp; ++n) {
    std::vector<uint8_t> cut(f.begin() + kIp, f.begin() + kIp + n);  // exact size: ASan sees over-reads
    Ipv4Packet p;
    EXPECT_NE(parse_ipv4(cut.data(), cut.size(), &p), Ipv4Error::kNone) << n;
  }
}

TEST(Ipv4Write, HeaderMatchesReferenceAndParses) {
  uint8_t h[20];
  write_ipv4(h, kIpA, kIpB, kProtoUdp, 7, 100);
  EXPECT_EQ(h[0], 0x45);
  EXPECT_EQ(load16(h + 2), 120);
  EXPECT_EQ(load16(h + 6), 0x4000);
  EXPECT_EQ(h[8], 64);
  EXPECT_EQ(ref_checksum(h, 20), 0);
  // A fragment: MF and the offset in 8-byte units, DF clear.
  write_ipv4(h, kIpA, kIpB, kProtoUdp, 7, 1480, kIpv4MoreFragments | (2960 / 8));
  EXPECT_EQ(load16(h + 2), 1500);
  EXPECT_EQ(load16(h + 6), 0x2000 | 370);
  EXPECT_EQ(ref_checksum(h, 20), 0);
}

TEST(UdpParse, ChecksumLengthAndPort) {
  auto u = udp_segment(kIpA, kIpB, 1000, 7, bytes("hello"));
  UdpDatagram d;
  ASSERT_EQ(parse_udp(u.data(), u.size(), kIpA, kIpB, &d), UdpError::kNone);
  EXPECT_EQ(d.src_port, 1000);
  EXPECT_EQ(d.dst_port, 7);
  EXPECT_EQ(d.data_len, 5u);
  // The pseudo-header is covered: another destination fails.
  EXPECT_EQ(parse_udp(u.data(), u.size(), kIpA, kIpC, &d), UdpError::kBadChecksum);
  auto bad = u;
  bad.back() ^= 0x40;
  EXPECT_EQ(parse_udp(bad.data(), bad.size(), kIpA, kIpB, &d), UdpError::kBadChecksum);
  // No checksum: accepted as is.
  auto none = udp_segment(kIpA, kIpB, 1000, 7, bytes("hello"), false);
  none.back() ^= 0x40;
  EXPECT_EQ(parse_udp(none.data(), none.size(), kIpA, kIpB, &d), UdpError::kNone);
  // Length field.
  auto l = none;
  put16(l, 4, 7);
  EXPECT_EQ(parse_udp(l.data(), l.size(), kIpA, kIpB, &d), UdpError::kBadLength);
  put16(l, 4, static_cast<uint16_t>(l.size() + 1));
  EXPECT_EQ(parse_udp(l.data(), l.size(), kIpA, kIpB, &d), UdpError::kBadLength);
  put16(l, 4, 10);  // shorter than the IP payload: the rest is ignored
  ASSERT_EQ(parse_udp(l.data(), l.size(), kIpA, kIpB, &d), UdpError::kNone);
  EXPECT_EQ(d.data_len, 2u);
  auto p0 = udp_segment(kIpA, kIpB, 1000, 0, bytes("x"));
  EXPECT_EQ(parse_udp(p0.data(), p0.size(), kIpA, kIpB, &d), UdpError::kBadPort);
  for (size_t n = 0; n < 8; ++n) {
    std::vector<uint8_t> cut(u.begin(), u.begin() + n);
    EXPECT_EQ(parse_udp(cut.data(), cut.size(), kIpA, kIpB, &d), UdpError::kTruncated);
  }
}

TEST(UdpWrite, ChecksumMatchesReferenceAndZeroBecomesFfff) {
  const auto ref = udp_segment(kIpA, kIpB, 1000, 7, bytes("hello"));
  std::vector<uint8_t> u(8 + 5);
  std::memcpy(u.data() + 8, "hello", 5);
  write_udp(u.data(), kIpA, kIpB, 1000, 7, 5);
  EXPECT_EQ(u, ref);
  // Find a payload whose checksum computes to 0: it must go out as ffff.
  std::vector<uint8_t> z(8 + 2);
  for (uint32_t v = 0; v < 0x10000; ++v) {
    put16(z, 8, static_cast<uint16_t>(v));
    write_udp(z.data(), kIpA, kIpB, 1, 2, 2);
    if (load16(z.data() + 6) == 0xffff) break;
  }
  ASSERT_EQ(load16(z.data() + 6), 0xffff);
  UdpDatagram d;
  EXPECT_EQ(parse_udp(z.data(), z.size(), kIpA, kIpB, &d), UdpError::kNone);
}

TEST(IcmpParse, ChecksumAndTruncation) {
  auto m = icmp_echo(8, 0x1234, 1, bytes("abc"));
  IcmpMessage msg;
  ASSERT_EQ(parse_icmp(m.data(), m.size(), &msg), IcmpError::kNone);
  EXPECT_EQ(msg.type, 8);
  EXPECT_EQ(msg.id, 0x1234);
  EXPECT_EQ(msg.seq, 1);
  EXPECT_EQ(msg.data_len, 3u);
  m[9] ^= 1;
  EXPECT_EQ(parse_icmp(m.data(), m.size(), &msg), IcmpError::kBadChecksum);
  for (size_t n = 0; n < 8; ++n) EXPECT_EQ(parse_icmp(m.data(), n, &msg), IcmpError::kTruncated);
  // write_icmp_echo agrees with the reference.
  std::vector<uint8_t> w(8 + 3);
  std::memcpy(w.data() + 8, "abc", 3);
  write_icmp_echo(w.data(), 8, 0x1234, 1, 3);
  EXPECT_EQ(w, icmp_echo(8, 0x1234, 1, bytes("abc")));
}

TEST(ArpParse, AcceptsRequestAndRejectsDefects) {
  const auto good = arp_frame(1, kBroadcastMac, kMacA, kIpA, kZeroMac, kIpB);
  ArpPacket p;
  ASSERT_EQ(parse_arp(good.data() + 14, 28, &p), ArpError::kNone);
  EXPECT_EQ(p.op, 1);
  EXPECT_EQ(p.sender_mac, kMacA);
  EXPECT_EQ(p.sender_ip, kIpA);
  EXPECT_EQ(p.target_ip, kIpB);
  uint8_t w[28];
  write_arp(w, p);
  EXPECT_EQ(std::memcmp(w, good.data() + 14, 28), 0);
  for (size_t n = 0; n < 28; ++n) {
    std::vector<uint8_t> cut(good.begin() + 14, good.begin() + 14 + n);
    EXPECT_EQ(parse_arp(cut.data(), cut.size(), &p), ArpError::kTruncated) << n;
  }
  struct Case {
    size_t at;
    uint8_t value;
    ArpError want;
  };
  const Case cases[] = {
      {15, 6, ArpError::kUnsupported},      // hardware type 6 (IEEE 802)
      {16, 0x86, ArpError::kUnsupported},   // protocol 0x86..
      {18, 8, ArpError::kUnsupported},      // hardware length 8
      {19, 16, ArpError::kUnsupported},     // protocol length 16
      {21, 3, ArpError::kBadOperation},     // RARP request
      {21, 0, ArpError::kBadOperation},
      {22, 0x01, ArpError::kBadSender},     // group MAC
      {28, 0xe0, ArpError::kBadSender},     // multicast sender IP
  };
  for (const Case& c : cases) {
    auto f = good;
    f[c.at] = c.value;
    EXPECT_EQ(parse_arp(f.data() + 14, 28, &p), c.want) << c.at;
  }
  auto zero = arp_frame(1, kBroadcastMac, kZeroMac, kIpA, kZeroMac, kIpB);
  EXPECT_EQ(parse_arp(zero.data() + 14, 28, &p), ArpError::kBadSender);
  auto bcast = arp_frame(1, kBroadcastMac, kMacA, Ipv4Address{0xffffffff}, kZeroMac, kIpB);
  EXPECT_EQ(parse_arp(bcast.data() + 14, 28, &p), ArpError::kBadSender);
}

TEST(EthParse, Bounds) {
  EthFrame e;
  std::vector<uint8_t> f(kEthMaxFrame + 1, 0);
  EXPECT_EQ(parse_eth(f.data(), 13, &e), EthError::kRunt);
  EXPECT_EQ(parse_eth(f.data(), 14, &e), EthError::kNone);
  EXPECT_EQ(e.payload_len, 0u);
  EXPECT_EQ(parse_eth(f.data(), kEthMaxFrame, &e), EthError::kNone);
  EXPECT_EQ(parse_eth(f.data(), kEthMaxFrame + 1, &e), EthError::kOversize);
}

}  // namespace
}  // namespace net
