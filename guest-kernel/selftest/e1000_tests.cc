// Self-tests of the e1000 driver; they run only where an e1000 is present.
//   - e1000_transmit_completes: a broadcast ARP request goes out and the
//     device reports its descriptor done (any e1000, any network).
//   - e1000_arp_reply_from_gateway: with `gateway=A.B.C.D` on the command
//     line (tests/qemu passes QEMU slirp's 10.0.2.2), the ARP request is
//     answered and the reply arrives through the receive interrupt.
#include "guest-kernel/drivers/e1000.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/selftest.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/boot_info.h"
#include "guest-kernel/time/clock.h"

namespace {

constexpr uint8_t kOurIp[4] = {10, 0, 2, 15};  // QEMU slirp's first guest address

bool parse_ip(const char* s, uint8_t out[4]) {
  for (int i = 0; i < 4; ++i) {
    unsigned v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 3) v = v * 10 + (*s++ - '0'), ++digits;
    if (!digits || v > 255) return false;
    out[i] = static_cast<uint8_t>(v);
    if (i < 3 && *s++ != '.') return false;
  }
  return *s == '\0';
}

// An Ethernet broadcast carrying an ARP request "who has `target`".
size_t arp_request(const net::MacAddress& mac, const uint8_t target[4], uint8_t* f) {
  memset(f, 0, 42);
  memset(f, 0xff, 6);
  memcpy(f + 6, mac.b, 6);
  f[12] = 0x08, f[13] = 0x06;  // ARP
  uint8_t* a = f + 14;
  a[1] = 1;                    // Ethernet
  a[2] = 0x08, a[3] = 0x00;    // IPv4
  a[4] = 6, a[5] = 4;
  a[7] = 1;                    // request
  memcpy(a + 8, mac.b, 6);
  memcpy(a + 14, kOurIp, 4);
  memcpy(a + 24, target, 4);
  return 42;
}

struct ArpWait {
  uint8_t target[4];
  net::MacAddress us;
  bool got = false;
  uint8_t sender_mac[6];
};

void on_frame(void* ctx, const uint8_t* f, size_t len) {
  auto* w = static_cast<ArpWait*>(ctx);
  if (len < 42 || f[12] != 0x08 || f[13] != 0x06) return;
  const uint8_t* a = f + 14;
  if (a[7] != 2 || memcmp(a + 14, w->target, 4) != 0 || memcmp(a + 24, kOurIp, 4) != 0) return;
  if (memcmp(f, w->us.b, 6) != 0) return;  // a reply, to us
  memcpy(w->sender_mac, a + 8, 6);
  w->got = true;
}

// Runs the event loop until `done` or `timeout_ns` passes.
template <typename F>
void run_until(F done, uint64_t timeout_ns) {
  const uint64_t deadline = timekeeping::monotonic_ns() + timeout_ns;
  EventLoop& loop = EventLoop::instance();
  const auto timer = loop.add_timer(timeout_ns, [] {});
  loop.run([&] { return done() || timekeeping::monotonic_ns() >= deadline; });
  loop.cancel_timer(timer);
}

}  // namespace

KTEST(e1000_transmit_completes) {
  drivers::E1000* dev = drivers::first_e1000();
  if (!dev) {
    t.skip("no e1000");
    return;
  }
  KCHECK(dev->link_up());
  const uint8_t target[4] = {10, 0, 2, 2};
  uint8_t frame[64];
  const size_t len = arp_request(dev->mac(), target, frame);
  const uint64_t sent = dev->tx_frames;
  KCHECK(dev->transmit(frame, len));
  KCHECK(dev->tx_frames == sent + 1);
  run_until([&] { dev->service(); return dev->tx_in_flight() == 0; }, 1'000'000'000);
  KCHECKF(dev->tx_in_flight() == 0, "%u descriptors still in flight", dev->tx_in_flight());
  // Nothing larger than a buffer or empty goes to the device.
  static uint8_t big[4096];
  KCHECK(!dev->transmit(big, sizeof big));
  KCHECK(!dev->transmit(frame, 0));
}

KTEST(e1000_arp_reply_from_gateway) {
  drivers::E1000* dev = drivers::first_e1000();
  char text[32];
  ArpWait wait{};
  if (!dev || !Cmdline(boot_info().cmdline).get("gateway", text, sizeof text)) {
    t.skip("needs an e1000 and gateway=A.B.C.D");
    return;
  }
  KCHECKF(parse_ip(text, wait.target), "gateway=%s is not an IPv4 address", text);
  wait.us = dev->mac();
  dev->set_receiver(on_frame, &wait);
  uint8_t frame[64];
  const size_t len = arp_request(dev->mac(), wait.target, frame);
  const uint64_t interrupts = dev->interrupts, received = dev->rx_frames;
  // slirp may drop the first request while it sets up: ask up to 3 times.
  for (int attempt = 0; attempt < 3 && !wait.got; ++attempt) {
    KCHECK(dev->transmit(frame, len));
    run_until([&] { return wait.got; }, 1'000'000'000);
  }
  dev->set_receiver(nullptr, nullptr);
  KCHECKF(wait.got, "no ARP reply from %s", text);
  if (wait.got)
    kprintf("e1000: %s is at %02x:%02x:%02x:%02x:%02x:%02x\n", text, wait.sender_mac[0], wait.sender_mac[1],
            wait.sender_mac[2], wait.sender_mac[3], wait.sender_mac[4], wait.sender_mac[5]);
  KCHECK(dev->interrupts > interrupts);  // it came through the interrupt, not polling
  KCHECK(dev->rx_frames > received);
}
