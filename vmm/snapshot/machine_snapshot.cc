// Machine::snapshot and Machine::restore (vmm/machine.h): the order of
// pausing, quiescing, dirty-log reading and writing, and the file's
// sections. README.md in this folder describes the format and its limits.
#include <filesystem>
#include <random>

#include "virtio/host/virtio_pci.h"
#include "vmm/devices/uart16550.h"
#include "vmm/machine.h"
#include "vmm/snapshot/dirty_bitmap.h"
#include "vmm/snapshot/kvm_state.h"
#include "vmm/snapshot/snapshot_chain.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/snapshot/state_codec.h"

namespace vmm {
namespace snap = vmm::snapshot;

namespace {

// Pages per RAM section: 4 MiB of data, well under kMaxSectionBytes.
constexpr uint64_t kPagesPerSection = 1024;
constexpr uint32_t kConf = snap::tag("CONF"), kRam = snap::tag("RAM "), kVcpu = snap::tag("VCPU"),
                   kIrqc = snap::tag("IRQC"), kSerial = snap::tag("SERL"), kPci = snap::tag("PCI "),
                   kClock = snap::tag("CLCK");

std::string absolute_path(const std::string& p) {
  return std::filesystem::absolute(std::filesystem::path(p)).lexically_normal().string();
}

uint64_t random_id() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t(rd()) << 32) ^ rd();
  return v;
}

bool all_zero(const uint8_t* p) {
  static const uint8_t zero[snap::kPageSize] = {};
  return std::memcmp(p, zero, snap::kPageSize) == 0;
}

// Writes pages as RAM sections: u32 count, count u64 page numbers, then the
// pages' bytes in that order.
class RamWriter {
 public:
  RamWriter(snap::FileWriter& w, const GuestMemory& mem) : w_(w), mem_(mem) {}
  void add(uint64_t page) {
    pages_.push_back(page);
    if (pages_.size() == kPagesPerSection) flush();
  }
  void flush() {
    if (pages_.empty()) return;
    snap::ByteWriter b;
    b.data().reserve(4 + pages_.size() * (8 + snap::kPageSize));
    b.u32(static_cast<uint32_t>(pages_.size()));
    for (uint64_t p : pages_) b.u64(p);
    for (uint64_t p : pages_) b.bytes(mem_.ptr(p * snap::kPageSize, snap::kPageSize), snap::kPageSize);
    w_.section(kRam, b.data());
    total_ += pages_.size();
    pages_.clear();
  }
  uint64_t total() const { return total_; }

 private:
  snap::FileWriter& w_;
  const GuestMemory& mem_;
  std::vector<uint64_t> pages_;
  uint64_t total_ = 0;
};

}  // namespace

Machine::SnapshotResult Machine::snapshot(const std::string& file, const std::string& base) {
  std::lock_guard snapshot_lock(snapshot_mu_);
  // Everything that can be refused is refused before the VM stops.
  if (file.empty()) throw std::runtime_error("the snapshot needs a file name");
  if (e1000_)
    throw std::runtime_error("the e1000 NIC cannot be saved yet (its registers and rings are not in the snapshot format); "
                             "use --nic virtio");
  for (const auto& [slot, dev] : virtio_)
    if (std::string why = dev->snapshot_refusal(); !why.empty()) throw std::runtime_error(why);
  const bool incremental = !base.empty();
  const std::string path = absolute_path(file);
  if (incremental) {
    if (last_snapshot_.empty())
      throw std::runtime_error("this VM has no earlier snapshot in this VMM to be incremental to: take a full one first");
    if (absolute_path(base) != last_snapshot_)
      throw std::runtime_error("base '" + base + "' is not this VM's last snapshot ('" + last_snapshot_ + "')");
    if (path == last_snapshot_) throw std::runtime_error("an incremental snapshot cannot overwrite its own base");
  }
  if (stopping_) throw std::runtime_error("the VM is not running");
  // Opening the file first: a bad directory is an error while the VM runs.
  snap::FileWriter writer(path);
  snap::SnapshotMeta meta{random_id(), incremental ? last_snapshot_id_ : 0, incremental ? last_snapshot_ : "", config_};
  meta.config.console.clear();
  meta.config.stats = false;
  writer.section(kConf, snap::encode_meta(meta));

  const auto t0 = std::chrono::steady_clock::now();
  ParkedVcpus parked(*this);
  if (stopping_) throw std::runtime_error("the VM stopped");
  std::vector<uint64_t> dirty;
  bool took_dirty = false;
  SnapshotResult result;
  result.incremental = incremental;
  try {
    {
      // Devices still: no I/O thread touches guest memory or its queues
      // until these locks go, and no request is in flight.
      std::vector<std::unique_lock<std::mutex>> quiet;
      for (const auto& [slot, dev] : virtio_) quiet.push_back(dev->quiesce());

      // From the first snapshot on, every write is logged; a full snapshot
      // clears the log (it saves everything), an incremental one writes
      // exactly what the log holds.
      if (!dirty_log_) dirty_log_ = std::make_unique<snap::KvmDirtyLog>(vm_, mem_);
      dirty_log_->start();
      dirty = dirty_log_->take();
      took_dirty = true;

      RamWriter ram(writer, mem_);
      if (incremental) {
        snap::for_each_page(dirty, [&](uint64_t p) {
          if (mem_.contains(p * snap::kPageSize, snap::kPageSize)) ram.add(p);
        });
      } else {
        // Untouched (zero) pages are left out: a restored machine's RAM
        // starts zeroed.
        for (const MemoryRegion& r : mem_.regions())
          for (uint64_t off = 0; off < r.size; off += snap::kPageSize)
            if (!all_zero(r.host + off)) ram.add((r.gpa + off) / snap::kPageSize);
      }
      ram.flush();
      result.pages = ram.total();

      const auto msrs = snap::saveable_msrs(kvm_);
      const bool has_xsave = kvm_.check_extension(KVM_CAP_XSAVE) > 0;
      const bool has_xcrs = kvm_.check_extension(KVM_CAP_XCRS) > 0;
      for (auto& v : vcpus_) {
        snap::ByteWriter b;
        snap::save_vcpu(*v, msrs, has_xsave, has_xcrs, b);
        writer.section(kVcpu, b.data());
      }
      {
        snap::ByteWriter b;
        snap::save_irqchips(vm_, has_pit_, b);
        writer.section(kIrqc, b.data());
      }
      {
        snap::ByteWriter b;
        snap::encode_uart(uart_->state(), b);
        writer.section(kSerial, b.data());
      }
      for (uint32_t slot = 0; slot < PciBus::kSlots; ++slot) {
        auto dev = pci_->device(slot);
        if (!dev) continue;
        snap::ByteWriter b;
        b.u32(slot);
        b.str(dev->name());
        const auto image = dev->config_image();
        b.blob(image.data(), image.size());
        auto* vdev = dynamic_cast<VirtioPciDevice*>(dev.get());
        b.u8(vdev ? 1 : 0);
        if (vdev) {
          b.u16(vdev->device_type());
          snap::encode_transport(vdev->transport_state_locked(), b);  // quiesce()'s lock is held
          snap::encode_msix(vdev->msix().table_state(), b);
        }
        writer.section(kPci, b.data());
      }
      // The clock last, closest to the moment the VM stops being frozen.
      snap::ByteWriter b;
      snap::save_clock(vm_, b);
      writer.section(kClock, b.data());
    }
    parked.release();
    result.pause_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    // fsync and rename while the VM runs again: RAM is no longer read.
    writer.commit();
  } catch (...) {
    // Nothing taken from the dirty log may be lost: the next incremental
    // snapshot must still write those pages.
    if (took_dirty) dirty_log_->give_back(dirty);
    throw;  // parked lets the vCPUs run
  }
  result.bytes = writer.bytes_written();
  last_snapshot_ = path;
  last_snapshot_id_ = meta.id;
  return result;
}

std::unique_ptr<Machine> Machine::restore(const std::string& file, const std::string& console, bool stats, MachineIo io,
                                          NetConnector connect_net) {
  const auto chain = snap::read_chain(file);
  VmConfig config = chain.back().meta.config;
  config.console = console;
  config.stats = stats;
  auto m = std::make_unique<Machine>(config, std::move(io), std::move(connect_net), Boot::kSnapshot);
  std::vector<std::string> paths;
  for (const auto& link : chain) paths.push_back(link.path);
  m->load_snapshot(paths);
  return m;
}

void Machine::load_snapshot(const std::vector<std::string>& chain) {
  std::vector<std::vector<uint8_t>> vcpu_states, pci_states;
  std::vector<uint8_t> irqchips, serial, clock;
  for (size_t i = 0; i < chain.size(); ++i) {
    const bool newest = i + 1 == chain.size();
    snap::FileReader reader(chain[i]);
    snap::Section s;
    while (reader.next(s)) {
      const std::string what = "snapshot '" + chain[i] + "': section " + snap::tag_name(s.tag) + " at byte " +
                               std::to_string(s.offset);
      if (s.tag == kRam) {
        // Oldest first: a later snapshot's page replaces an earlier one's.
        snap::ByteReader in(s.payload, what);
        const uint32_t n = in.u32();
        if (n > kPagesPerSection) throw snap::SnapshotError(what + ": " + std::to_string(n) + " pages");
        std::vector<uint64_t> pages(n);
        for (auto& p : pages) p = in.u64();
        for (uint64_t p : pages) {
          uint8_t* dst = p < (UINT64_MAX / snap::kPageSize) ? mem_.ptr(p * snap::kPageSize, snap::kPageSize) : nullptr;
          if (!dst) throw snap::SnapshotError(what + ": page " + std::to_string(p) + " lies outside guest RAM");
          std::memcpy(dst, in.bytes(snap::kPageSize).data(), snap::kPageSize);
        }
        in.expect_end();
      } else if (!newest || s.tag == kConf) {
        // State of older snapshots is superseded by the newest one's.
      } else if (s.tag == kVcpu) {
        vcpu_states.push_back(std::move(s.payload));
      } else if (s.tag == kPci) {
        pci_states.push_back(std::move(s.payload));
      } else if (s.tag == kIrqc) {
        irqchips = std::move(s.payload);
      } else if (s.tag == kSerial) {
        serial = std::move(s.payload);
      } else if (s.tag == kClock) {
        clock = std::move(s.payload);
      } else {
        throw snap::SnapshotError(what + ": unknown section");
      }
    }
  }
  const std::string& newest = chain.back();
  auto missing = [&](const char* what) { return snap::SnapshotError("snapshot '" + newest + "' has no " + what); };
  if (irqchips.empty()) throw missing("interrupt controller state");
  if (serial.empty()) throw missing("serial port state");
  if (clock.empty()) throw missing("clock");
  if (vcpu_states.size() != vcpus_.size())
    throw snap::SnapshotError("snapshot '" + newest + "' holds " + std::to_string(vcpu_states.size()) +
                              " vCPUs, its configuration " + std::to_string(vcpus_.size()));

  // Interrupt controllers before the vCPUs (their LAPICs), devices after.
  snap::ByteReader irq_in(irqchips, "snapshot '" + newest + "': IRQC");
  snap::restore_irqchips(vm_, irq_in);
  irq_in.expect_end();
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    snap::ByteReader in(vcpu_states[i], "snapshot '" + newest + "': vCPU " + std::to_string(i));
    snap::restore_vcpu(*vcpus_[i], in);
    in.expect_end();
  }
  size_t devices = 0;
  for (uint32_t slot = 0; slot < PciBus::kSlots; ++slot) devices += pci_->device(slot) ? 1 : 0;
  if (pci_states.size() != devices)
    throw snap::SnapshotError("snapshot '" + newest + "' holds " + std::to_string(pci_states.size()) +
                              " PCI devices, its configuration makes " + std::to_string(devices));
  for (const auto& payload : pci_states) {
    snap::ByteReader in(payload, "snapshot '" + newest + "': PCI device");
    const uint32_t slot = in.u32();
    const std::string name = in.str();
    auto dev = slot < PciBus::kSlots ? pci_->device(slot) : nullptr;
    if (!dev || dev->name() != name)
      throw snap::SnapshotError("snapshot '" + newest + "' has " + name + " at PCI slot " + std::to_string(slot) +
                                ", the rebuilt machine " + (dev ? dev->name() : "nothing"));
    const auto image = in.blob();
    PciDevice::ConfigImage cfg{};
    if (image.size() != cfg.size()) throw snap::SnapshotError(in.what() + " " + name + ": config space size");
    std::copy(image.begin(), image.end(), cfg.begin());
    dev->restore_config_image(cfg);
    const bool is_virtio = in.u8();
    auto* vdev = dynamic_cast<VirtioPciDevice*>(dev.get());
    if (is_virtio != (vdev != nullptr)) throw snap::SnapshotError(in.what() + " " + name + ": device kind differs");
    if (vdev) {
      if (in.u16() != vdev->device_type()) throw snap::SnapshotError(in.what() + " " + name + ": virtio type differs");
      vdev->restore_transport_state(snap::decode_transport(in));
      if (!vdev->msix().restore_table(snap::decode_msix(in)))
        throw snap::SnapshotError(in.what() + " " + name + ": MSI-X table size differs");
    }
    in.expect_end();
  }
  snap::ByteReader serial_in(serial, "snapshot '" + newest + "': SERL");
  uart_->restore(snap::decode_uart(serial_in));
  serial_in.expect_end();
  snap::ByteReader clock_in(clock, "snapshot '" + newest + "': CLCK");
  snap::restore_clock(vm_, clock_in);
  clock_in.expect_end();
}

}  // namespace vmm
