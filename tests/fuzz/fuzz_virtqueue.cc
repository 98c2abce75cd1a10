// libFuzzer target: a hostile driver against the host side of a split
// virtqueue. The input fills a small guest RAM (descriptor table, rings,
// indirect tables, buffers: all of it guest-controlled), picks the queue
// size and the negotiated features, then drives the device through a
// sequence of pops, completions, notification changes and concurrent-looking
// guest writes. Every chain the queue hands out must consist of buffers
// inside guest RAM, and each is read and written end to end. The VMM must
// never crash and the queue's invariants must hold.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tests/fuzz/fuzz_input.h"
#include <deque>
#include <vector>

#include "virtio/host/virtqueue.h"
#include "virtio/ring.h"

namespace {

using namespace vmm;
using namespace virtio;

constexpr uint64_t kRam = 16 << 10;
// Fixed layout for the largest queue (32): parts as the alignments allow.
constexpr uint64_t kDesc = 0x0, kAvail = 0x200, kUsed = 0x280;

using fuzz::Input;

// Touches every byte of every buffer, through the chain's helpers and
// through the host pointers, and checks each buffer independently.
void consume(GuestMemory& mem, const VirtqChain& c, uint16_t size, std::vector<uint8_t>& scratch) {
  CHECK(c.head() < size);
  CHECK(c.descriptors() <= size);
  uint64_t r = 0, w = 0;
  for (const VirtqBuffer& b : c.readable()) {
    CHECK(b.len > 0 && b.host == mem.ptr(b.gpa, b.len));
    r += b.len;
  }
  for (const VirtqBuffer& b : c.writable()) {
    CHECK(b.len > 0 && b.host == mem.ptr(b.gpa, b.len));
    w += b.len;
  }
  CHECK(r == c.readable_bytes() && w == c.writable_bytes() && r + w <= UINT32_MAX);
  scratch.resize(r > w ? r : w);
  CHECK(c.read(0, scratch.data(), r) == r);
  CHECK(c.read(r, scratch.data(), 1) == 0);
  CHECK(c.write(0, scratch.data(), w) == w);
  if (w) CHECK(c.write(w - 1, scratch.data(), 2) == 1);
  for (const VirtqBuffer& b : c.writable()) b.host[b.len - 1] ^= b.host[0];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static GuestMemory mem(kRam);
  static std::vector<uint8_t> scratch;
  std::memset(mem.ptr(0, kRam), 0, kRam);

  Input in{data, size};
  const uint16_t qsize = static_cast<uint16_t>(1u << (in.take(1) % 6));
  const uint8_t features = static_cast<uint8_t>(in.take(1));
  const size_t image = in.take(2) % (kRam + 1);
  const size_t k = image < in.n ? image : in.n;
  std::memcpy(mem.ptr(0, kRam), in.p, k);
  in.p += k;
  in.n -= k;
  // Most random addresses miss a 16 KiB RAM; optionally fold the main
  // table's addresses and lengths to just around it so that deep chains get
  // explored too (a little past the end, so the edge stays covered).
  if (features & 4) {
    for (uint16_t i = 0; i < qsize; ++i) {
      virtq_desc d;
      mem.read(kDesc + 16 * i, &d, sizeof d);
      d.addr %= kRam + 64;
      d.len %= 2 * kRam;
      mem.write(kDesc + 16 * i, &d, sizeof d);
    }
  }

  Virtqueue q(mem);
  const VirtqueueConfig cfg{qsize, kDesc, kAvail, kUsed, (features & 1) != 0, (features & 2) != 0};
  CHECK(q.enable(cfg) == VirtqueueConfigError::kNone);
  VirtqChain chain;
  std::deque<VirtqChain> held;  // chains the device has not completed yet

  auto pop_one = [&]() {
    const PopResult r = q.pop(chain);
    if (r == PopResult::kChain) {
      consume(mem, chain, qsize, scratch);
      held.push_back(chain);
    } else if (r == PopResult::kBroken) {
      CHECK(q.broken() && !q.broken_reason().empty());
    }
    return r;
  };
  auto push_one = [&]() {
    if (held.empty()) return;
    const bool ok = q.push_used(held.front().head(), held.front().writable_bytes());
    CHECK(ok == (!q.broken()));
    held.pop_front();
  };

  for (int ops = 0; in.n && ops < 512; ++ops) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    switch (op % 8) {
      case 0:  // drain
        while (pop_one() == PopResult::kChain) {
        }
        break;
      case 1:
        pop_one();
        break;
      case 2:
        push_one();
        break;
      case 3:
        q.should_notify();
        break;
      case 4:
        q.set_notification(op & 0x80);
        break;
      case 5: {  // the driver writes somewhere, as it would concurrently
        const uint64_t at = in.take(2) % (kRam - 8);
        const uint64_t v = in.take(8);
        mem.write(at, &v, 1 + (op >> 5) % 8);
        break;
      }
      case 6:  // complete everything held
        while (!held.empty()) push_one();
        break;
      case 7:  // device reset and re-enable
        held.clear();
        q.reset();
        CHECK(!q.broken() && !q.enabled());
        CHECK(q.enable(cfg) == VirtqueueConfigError::kNone);
        break;
    }
    if (q.broken()) {
      CHECK(q.pop(chain) == PopResult::kBroken);
      CHECK(!q.should_notify());
    }
  }
  // Then as a device would: drain, complete, notify.
  while (pop_one() == PopResult::kChain) {
  }
  while (!held.empty()) push_one();
  q.should_notify();
  CHECK(q.broken() || q.in_flight() == 0);
  return 0;
}
