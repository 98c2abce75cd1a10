// libFuzzer target: a hostile driver against the e1000 device model. The
// input is a program of register writes and reads (the ring registers
// picked often, any offset sometimes), guest-RAM writes that forge
// descriptors and buffers, frames delivered from the switch, I/O-thread
// polls, clock jumps (interrupt throttling), PCI command and MSI
// capability writes, and raw BAR accesses of every size through the buses.
// The model must never crash or touch memory outside guest RAM (ASan), and
// its invariants must hold: frames it sends are bounded, the interrupt
// line matches its state and stays low while MSI is on, and a running
// transmitter consumes every descriptor up to TDT.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "vmm/devices/e1000/e1000.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/irq/fake_irq_line.h"
#include "vmm/pci/pci_bus.h"

namespace {

using namespace vmm;
using namespace vmm::e1000;
using fuzz::Input;

constexpr uint64_t kRam = 64 << 10;

// The registers a driver programs, so the fuzzer reaches deep states
// without guessing offsets.
constexpr uint32_t kRegs[] = {kCtrl, kStatus, kEecd,  kEerd,  kMdic,  kIcr,   kItr,   kIcs,   kIms,
                              kImc,  kRctl,   kTctl,  kRdbal, kRdbah, kRdlen, kRdh,   kRdt,   kTdbal,
                              kTdbah, kTdlen, kTdh,   kTdt,   kRal0,  kRal0 + 4, kMta, kGorcl, kGorch,
                              kGptc, kMpc};

class CountingPort : public net::FramePort {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    CHECK(frame.size() <= TxAssembler::kMaxFrame);
    ++frames;
    return !(frames % 7 == 0);  // the switch refuses some frames
  }
  uint64_t frames = 0;
};

uint32_t pick_offset(Input& in) {
  const uint8_t sel = static_cast<uint8_t>(in.take(1));
  if (sel < 0xc0) return kRegs[sel % (sizeof kRegs / sizeof kRegs[0])];
  return static_cast<uint32_t>(in.take(2) * 4) % kMmioBarSize;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static GuestMemory mem(kRam);
  std::memset(mem.ptr(0, kRam), 0, kRam);
  uint64_t clock = 1'000'000;
  auto irq = std::make_shared<FakeIrqLine>(11);
  auto port = std::make_shared<CountingPort>();
  // MSI goes to a fake KVM (declared before the device, which releases its
  // route on the way out).
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  E1000::Options options;
  options.msi_router = &router;
  options.io_thread = false;
  options.rx_fifo_bytes = 8 << 10;
  options.clock = [&clock] { return clock; };
  options.log = [](const std::string& line) { CHECK(line.size() > 20 && line.find('\n') == std::string::npos); };
  auto dev = E1000::create(mem, irq, {0x52, 0x54, 0, 0x12, 0x34, 0x56}, options);
  dev->set_port(port);
  IoBus pio, mmio;
  auto bus = PciBus::create(pio, mmio, false);
  bus->add(dev, 1);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandIo | pci::kCommandMaster);
  const uint64_t bar0 = *dev->bar_mapping(0), bar1 = *dev->bar_mapping(1);

  Input in{data, size};
  for (int ops = 0; in.n && ops < 400; ++ops) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    switch (op % 8) {
      case 0: {
        const uint32_t off = pick_offset(in);
        dev->reg_write(off, static_cast<uint32_t>(in.take(4)));
        // Transmit is synchronous: a running, enabled transmitter with DMA
        // allowed has consumed every descriptor up to the new tail (or
        // stopped, with a reason, on a bad one).
        if (off == kTdt && dev->tx_stop_reason().empty() && (dev->reg_read(kTctl) & kTctlEn) &&
            (dev->config_read(pci::kCommand, 2) & pci::kCommandMaster))
          CHECK(dev->reg_read(kTdh) == dev->reg_read(kTdt));
        break;
      }
      case 1:
        dev->reg_read(pick_offset(in));
        break;
      case 2: {  // a frame from the switch: to us, broadcast, or anything
        const size_t len = in.take(2) % 2100;
        net::Frame f(len);
        const size_t k = len < in.n ? len : in.n;
        if (k) std::memcpy(f.data(), in.p, k);
        in.p += k;
        in.n -= k;
        static constexpr uint8_t kUs[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
        if (len >= 6 && (op & 0x10)) std::memcpy(f.data(), kUs, 6);
        if (len >= 6 && (op & 0x20)) std::memset(f.data(), 0xff, 6);
        dev->deliver(std::move(f));
        break;
      }
      case 3:
        dev->poll();
        break;
      case 4: {  // forge descriptors and buffers
        const uint64_t at = in.take(2) % kRam;
        size_t n = in.take(1) + 1;
        if (n > kRam - at) n = kRam - at;
        if (n > in.n) n = in.n;
        if (n) mem.write(at, in.p, n);
        in.p += n;
        in.n -= n;
        break;
      }
      case 5:
        clock += in.take(3) * 64;
        break;
      case 6:
        if (op & 0x08) {  // the MSI capability: any byte of it, any size
          static constexpr uint32_t kSizes[3] = {1, 2, 4};
          const uint32_t off = dev->msi_capability() + static_cast<uint32_t>(in.take(1) % 16);
          dev->config_write(off, kSizes[(op >> 4) % 3], static_cast<uint32_t>(in.take(4)));
        } else {
          dev->config_write(pci::kCommand, 2, static_cast<uint32_t>(in.take(2)));
        }
        break;
      case 7: {  // raw bus access, any size and alignment, either BAR
        static constexpr uint32_t kSizes[4] = {1, 2, 4, 8};
        const uint32_t sz = kSizes[(op >> 3) % 4];
        const bool io = op & 0x20;
        const uint64_t off = in.take(3) % (io ? kIoBarSize : kMmioBarSize);
        uint64_t v = in.take(8);
        IoBus& b = io ? pio : mmio;
        const uint64_t base = io ? bar1 : bar0;
        if (op & 0x40)
          b.write(base + off, reinterpret_cast<uint8_t*>(&v), sz);
        else
          b.read(base + off, reinterpret_cast<uint8_t*>(&v), sz);
        break;
      }
    }
    CHECK(irq->level == dev->irq_asserted());
    CHECK(!(irq->level && dev->msi_enabled()));  // MSI enable disables INTx
  }
  dev->poll();  // the I/O thread's last word
  CHECK(irq->level == dev->irq_asserted());
  const auto s = dev->stats();
  // Every frame the port accepted, and only those, counts as sent.
  CHECK(s.tx_frames == port->frames - port->frames / 7);
  return 0;
}
