#include "guest-kernel/net/net_boot.h"

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/net/event_loop_clock.h"
#include "guest-kernel/net/net_device.h"
#include "guest-kernel/net/pair_device.h"
#include "guest-kernel/net/parse.h"

namespace net {

namespace {

Stack* g_stack = nullptr;

// net-peer=IP: an in-memory cable to a second stack inside this kernel,
// at IP, that answers ARP and ping and echoes UDP port 7. The demos then
// run end to end, through this file's glue and the real event loop,
// without a NIC. Everything here lives as long as the kernel.
NetDevice* make_peer(Clock& clock, const InterfaceConfig& ours, const char* peer_ip) {
  InterfaceConfig peer = ours;
  if (!parse_ipv4(peer_ip, &peer.address)) panic("net: net-peer= is not a dotted-quad IPv4 address");
  const uint32_t host = peer.address.value & ~ours.netmask.value;
  if ((peer.address.value & ours.netmask.value) != (ours.address.value & ours.netmask.value) ||
      peer.address == ours.address || host == 0 || host == ~ours.netmask.value)
    panic("net: net-peer= must be another host address on the interface's subnet");
  peer.gateway = {};
  auto* local = new PairDevice(clock, MacAddress{{0x02, 0, 0, 0, 0, 0x01}});
  auto* remote = new PairDevice(clock, MacAddress{{0x02, 0, 0, 0, 0, 0x02}});
  PairDevice::connect(*local, *remote);
  auto* peer_stack = new Stack(*remote, clock, peer);
  peer_stack->up();
  auto* echo = new UdpSocket(*peer_stack);
  echo->bind(7, [echo](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
    echo->sendto(src, port, data, len);
  });
  kprintf("net: net-peer: in-memory cable to a stack at %s (echo on UDP port 7)\n", peer_ip);
  return local;
}

}  // namespace

Stack* stack() { return g_stack; }

void boot_init(const Cmdline& cmdline) {
  if (g_stack || !cmdline.has("ip")) return;
  char ip[32], mask[32], gw[32];
  // Present but not fetched: longer than any address could be.
  for (const char* key : {"ip", "mask", "gw"})
    if (cmdline.has(key) && !cmdline.get(key, ip, sizeof ip)) panic("net: %s= is too long for an address", key);
  cmdline.get("ip", ip, sizeof ip);
  const bool has_mask = cmdline.get("mask", mask, sizeof mask);
  const bool has_gw = cmdline.get("gw", gw, sizeof gw);
  InterfaceConfig config;
  if (const char* err = parse_interface_config(ip, has_mask ? mask : nullptr, has_gw ? gw : nullptr, &config))
    panic("net: %s", err);
  static EventLoopClock clock;
  char peer_ip[32];
  NetDevice* dev = cmdline.get("net-peer", peer_ip, sizeof peer_ip) ? make_peer(clock, config, peer_ip) : net_device(0);
  if (!dev) {
    kprintf("net: ip=%s given but no network device; networking is off\n", ip);
    return;
  }
  // Lives as long as the kernel: never freed.
  g_stack = new Stack(*dev, clock, config);
  g_stack->up();
  // The lost-interrupt safety net (NetDevice::sweep_missed_interrupt), for
  // as long as the kernel runs.
  EventLoop::instance().add_timer(
      NetDevice::kMissedInterruptSweepNs,
      [dev] {
        if (dev->sweep_missed_interrupt() && (dev->missed_interrupts <= 5 || dev->missed_interrupts % 100 == 0))
          kprintf("net: %s: a receive interrupt never came; the sweep took the waiting frames (%lu so far)\n",
                  dev->name(), dev->missed_interrupts);
      },
      NetDevice::kMissedInterruptSweepNs);
  char mac[18], addr[16], gwtext[16];
  format_mac(dev->mac(), mac);
  format_ipv4(config.address, addr);
  format_ipv4(config.gateway, gwtext);
  unsigned prefix = 0;
  for (uint32_t m = config.netmask.value; m & 0x80000000u; m <<= 1) ++prefix;
  kprintf("net: %s %s: %s/%u gateway %s\n", dev->name(), mac, addr, prefix,
          config.gateway.is_zero() ? "none" : gwtext);
}

void print_stats(const NetStats& stats) {
  const char* current = nullptr;
  char line[512];
  size_t len = 0;
  auto flush = [&] {
    if (current) kprintf("net: %s%s\n", current, line);
  };
  stats.for_each([&](const char* proto, const char* name, uint64_t value) {
    if (!current || strcmp(current, proto) != 0) {
      flush();
      current = proto;
      len = 0;
      line[0] = '\0';
    }
    const bool always = strcmp(name, "rx") == 0 || strcmp(name, "tx") == 0;
    if ((value || always) && len < sizeof line)
      len += ksnprintf(line + len, sizeof line - len, " %s=%lu", name, static_cast<unsigned long>(value));
  });
  flush();
}

}  // namespace net
