#include "guest-kernel/net/parse.h"

#include <string.h>

namespace net {

namespace {

// Splits s at the first `sep`: [s, *rest-1) and *rest after it; *rest is
// nullptr if sep is absent. Returns the length of the first part.
size_t split(const char* s, char sep, const char** rest) {
  const char* p = s;
  while (*p && *p != sep) ++p;
  *rest = *p ? p + 1 : nullptr;
  return static_cast<size_t>(p - s);
}

bool parse_ipv4_n(const char* s, size_t len, Ipv4Address* out) {
  uint32_t v = 0;
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part) {
      if (i >= len || s[i] != '.') return false;
      ++i;
    }
    size_t start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') ++i;
    uint64_t octet;
    if (!parse_decimal(s + start, i - start, 255, &octet)) return false;
    v = v << 8 | static_cast<uint32_t>(octet);
  }
  if (i != len) return false;
  out->value = v;
  return true;
}

bool parse_port(const char* s, size_t len, uint16_t* out) {
  uint64_t v;
  if (!parse_decimal(s, len, 65535, &v) || v == 0) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

bool parse_decimal(const char* s, size_t len, uint64_t max, uint64_t* out) {
  if (len == 0 || len > 19 || (len > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');  // 19 digits cannot overflow
  }
  if (v > max) return false;
  *out = v;
  return true;
}

bool parse_ipv4(const char* s, Ipv4Address* out) { return s && parse_ipv4_n(s, strlen(s), out); }

const char* parse_interface_config(const char* ip, const char* mask, const char* gw, InterfaceConfig* out) {
  InterfaceConfig c;
  if (!ip) return "ip= is required";
  if (!parse_ipv4(ip, &c.address)) return "ip= is not a dotted-quad IPv4 address";
  if (mask) {
    uint64_t prefix;
    if (parse_decimal(mask, strlen(mask), 32, &prefix)) {
      c.netmask.value = prefix ? ~0u << (32 - prefix) : 0;
    } else if (!parse_ipv4(mask, &c.netmask)) {
      return "mask= is neither a prefix length nor a dotted-quad netmask";
    }
    // Contiguous ones from the top: ~mask + 1 is then a power of two.
    const uint32_t host = ~c.netmask.value;
    if (host & (host + 1)) return "mask= has non-contiguous bits";
    // /31 and /32 leave no room for a subnet with a broadcast address.
    if (host < 3) return "mask= leaves no host addresses (at most /30)";
    if (host == ~0u) return "mask= of /0 is not a subnet";
  }
  const uint32_t host = c.address.value & ~c.netmask.value;
  if (c.address.is_zero() || c.address.is_multicast() || c.address.is_limited_broadcast() ||
      (c.address.value >> 24) == 127)
    return "ip= is not a usable host address";
  if (host == 0 || host == ~c.netmask.value) return "ip= is the subnet's network or broadcast address";
  if (gw) {
    if (!parse_ipv4(gw, &c.gateway)) return "gw= is not a dotted-quad IPv4 address";
    const uint32_t gw_host = c.gateway.value & ~c.netmask.value;
    if ((c.gateway.value & c.netmask.value) != (c.address.value & c.netmask.value))
      return "gw= is not on the interface's subnet";
    if (c.gateway == c.address) return "gw= is the interface's own address";
    if (gw_host == 0 || gw_host == ~c.netmask.value) return "gw= is the subnet's network or broadcast address";
  }
  *out = c;
  return nullptr;
}

const char* parse_ping_args(const char* s, PingArgs* out) {
  PingArgs a;
  const char* rest;
  const size_t n = split(s, ',', &rest);
  if (!parse_ipv4_n(s, n, &a.dst)) return "ping= needs IP[,COUNT[,INTERVAL_MS]] with a dotted-quad IP";
  if (rest) {
    const char* rest2;
    const size_t m = split(rest, ',', &rest2);
    uint64_t v;
    if (!parse_decimal(rest, m, 1000, &v) || v == 0) return "ping= COUNT must be 1-1000";
    a.count = static_cast<unsigned>(v);
    if (rest2) {
      if (!parse_decimal(rest2, strlen(rest2), 10000, &v) || v < 10) return "ping= INTERVAL_MS must be 10-10000";
      a.interval_ms = static_cast<unsigned>(v);
    }
  }
  *out = a;
  return nullptr;
}

const char* parse_udp_send_args(const char* s, UdpSendArgs* out) {
  UdpSendArgs a;
  const char* port;
  const size_t n = split(s, ':', &port);
  if (!parse_ipv4_n(s, n, &a.dst) || !port) return "udp-send= needs IP:PORT[,N[,SIZE]] with a dotted-quad IP";
  const char* count;
  const size_t m = split(port, ',', &count);
  if (!parse_port(port, m, &a.port)) return "udp-send= PORT must be 1-65535";
  if (count) {
    const char* size;
    const size_t k = split(count, ',', &size);
    uint64_t v;
    if (!parse_decimal(count, k, 100000, &v) || v == 0) return "udp-send= N must be 1-100000";
    a.count = static_cast<unsigned>(v);
    if (size) {
      if (!parse_decimal(size, strlen(size), kUdpMaxPayload, &v) || v == 0) return "udp-send= SIZE must be 1-65507";
      a.size = static_cast<size_t>(v);
    }
  }
  *out = a;
  return nullptr;
}

const char* parse_udp_echo_args(const char* s, UdpEchoArgs* out) {
  UdpEchoArgs a;
  const char* count;
  const size_t n = split(s, ',', &count);
  if (!parse_port(s, n, &a.port)) return "udp-echo= needs PORT[,N] with PORT 1-65535";
  if (count) {
    uint64_t v;
    if (!parse_decimal(count, strlen(count), 1000000, &v) || v == 0) return "udp-echo= N must be 1-1000000";
    a.count = static_cast<unsigned>(v);
  }
  *out = a;
  return nullptr;
}

}  // namespace net
