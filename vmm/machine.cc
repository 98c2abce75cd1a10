#include "vmm/machine.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>

#include "boot/platform.h"
#include "virtio/host/virtio_balloon.h"
#include "virtio/host/virtio_blk.h"
#include "virtio/host/virtio_net.h"
#include "vmm/cpu_state.h"
#include "vmm/devices/bench_mark.h"
#include "vmm/devices/debug_exit.h"
#include "vmm/devices/post_mortem_port.h"
#include "vmm/devices/e1000/e1000.h"
#include "vmm/devices/uart16550.h"
#include "vmm/host_virt.h"
#include "vmm/irq/irq_line.h"
#include "vmm/memory/process_memory.h"
#include "vmm/net/discard_port.h"
#include "vmm/pvh_loader.h"
#include "vmm/thread_name.h"

namespace vmm {
namespace {

constexpr uint32_t kSerialIrq = 4;
// The e1000's INTx: GSI 16, the first pin only the IOAPIC has.
constexpr uint32_t kE1000Gsi = 16;
constexpr int kKickSignal = SIGUSR1;

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void install_kick_handler() {
  // The handler does nothing: its only purpose is to make KVM_RUN return
  // EINTR. No SA_RESTART, so the ioctl is not restarted.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sigaction(kKickSignal, &sa, nullptr);
}

}  // namespace

Machine::BootEntry Machine::load_kernel(const VmConfig& config, GuestMemory& mem) {
  const std::vector<uint8_t> image = read_kernel_file(config.kernel);
  const PvhKernel kernel = load_pvh_kernel(image, mem);
  return {kernel.entry, write_start_info(mem, config.cmdline)};
}

Machine::Machine(const VmConfig& config, MachineIo io, NetConnector connect_net, Boot boot)
    : config_(config),
      io_(std::move(io)),
      who_(io_.name.empty() ? "vmm: " : "vmm: " + io_.name + ": "),
      mem_(config.mem_bytes),
      boot_(boot == Boot::kKernel ? load_kernel(config_, mem_) : BootEntry{}),
      kvm_(),
      vm_(kvm_),
      time_page_(mem_) {
  time_page_.set(config_.clock_offset_ns, config_.clock_uncertainty_ns);
  if (!kvm_.check_extension(KVM_CAP_IRQCHIP)) throw std::runtime_error("KVM lacks the in-kernel irqchip");
  if (!kvm_.check_extension(KVM_CAP_USER_MEMORY)) throw std::runtime_error("KVM lacks user memory regions");
  run_area_size_ = kvm_.vcpu_mmap_size();

  // Intel needs three pages for the real-mode TSS and one for the identity
  // map, outside RAM; they are reserved in the guest's memory map.
  if (kvm_.check_extension(KVM_CAP_SET_TSS_ADDR)) vm_.set_tss_addr(BootLayout::kKvmReservedStart + 0x1000);
  if (kvm_.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR))
    vm_.set_identity_map_addr(BootLayout::kKvmReservedStart);
  // KVM's default halt polling (up to 200 us of spinning per halt) costs an
  // idle guest with a 10 ms timer several percent of a core; per-VM control
  // exists since Linux 5.13.
  if (kvm_.check_extension(KVM_CAP_HALT_POLL)) vm_.enable_cap(KVM_CAP_HALT_POLL, config_.halt_poll_ns);
  vm_.create_irqchip();
  has_pit_ = kvm_.check_extension(KVM_CAP_PIT2);
  if (has_pit_) vm_.create_pit();
  for (size_t slot = 0; slot < mem_.regions().size(); ++slot) {
    const MemoryRegion& r = mem_.regions()[slot];
    vm_.set_memory_region(static_cast<uint32_t>(slot), r.gpa, r.size, r.host);
  }

  if (io_.console) {
    // console_ stays null: the bytes go to io_.console.
  } else if (config_.console.empty()) {
    console_ = stdout;
  } else {
    console_ = std::fopen(config_.console.c_str(), "w");
    if (!console_) throw std::runtime_error("cannot open console file '" + config_.console + "': " + std::strerror(errno));
    own_console_ = true;
  }

  setup_devices();
  setup_virtio(connect_net);
  setup_vcpus(boot_);
  register_with_merger();  // last: a throw above leaves nothing registered
}

Machine::~Machine() {
  unregister_from_merger();  // before the RAM and the devices go
  // Device I/O threads stop before anything they use goes away.
  for (auto& [slot, dev] : virtio_) dev->shutdown();
  if (console_) std::fflush(console_);
  if (own_console_) std::fclose(console_);
}

void Machine::console_byte(uint8_t b) {
  if (io_.console) return io_.console(b);
  std::fputc(b, console_);
  if (b == '\n') std::fflush(console_);
}

void Machine::setup_devices() {
  const int vm_fd = vm_.fd();
  auto serial_irq = [vm_fd](bool level) {
    kvm_irq_level irq{};
    irq.irq = kSerialIrq;
    irq.level = level ? 1 : 0;
    // A failed interrupt line change is not fatal for a console; report it.
    if (ioctl(vm_fd, KVM_IRQ_LINE, &irq) < 0) std::perror("vmm: KVM_IRQ_LINE for the serial port");
  };
  uart_ = std::make_shared<Uart16550>([this](uint8_t b) { console_byte(b); }, serial_irq);
  pio_.add(platform::kSerialPort, 8, uart_, "serial (COM1)");
  pio_.add(platform::kDebugExitPort, platform::kDebugExitSize,
           std::make_shared<DebugExit>([this](uint32_t status) {
             // Statuses above 255 cannot be an exit status; say so and clamp.
             request_stop(status > 255 ? 255 : static_cast<int>(status));
           }),
           "debug-exit");
  pio_.add(platform::kBenchMarkPort, platform::kBenchMarkSize,
           std::make_shared<BenchMark>([this](uint32_t what) { bench_mark(what); }), "bench-mark");
  pio_.add(platform::kPostMortemPort, platform::kPostMortemSize, std::make_shared<PostMortemPort>(post_mortem_),
           "post-mortem");

  // MSI routing for PCI devices. Every x86 KVM since Linux 3.5 has these;
  // a sandboxed /dev/kvm might not, and then we say what is missing.
  irq_caps_ = IrqCapabilities::probe(kvm_);
  if (!irq_caps_.can_deliver_msi())
    throw std::runtime_error("KVM cannot deliver MSIs; it lacks " + irq_caps_.missing());
  irq_backend_ = std::make_unique<KvmIrqBackend>(vm_);
  gsi_router_ = std::make_unique<GsiRouter>(*irq_backend_, irq_caps_);

  // PCI bus 0 with the host bridge at 00:00.0; configuration through ports
  // 0xcf8/0xcfc and the ECAM window (reserved in the guest's memory map).
  pci_ = PciBus::create(pio_, mmio_);
  pci_->add(std::make_shared<PciHostBridge>(), 0);
}

void Machine::setup_virtio(const NetConnector& connect_net) {
  for (const DiskConfig& d : config_.disks) {
    auto dev = std::make_shared<VirtioBlkDevice>(mem_, *gsi_router_, VirtioBlkOptions{d.path, d.read_only, d.serial});
    virtio_.emplace_back(pci_->add(dev), dev);
  }
  if (config_.net) {
    NetConnector connect = connect_net;
    if (!connect) {
      discard_port_ = std::make_shared<net::DiscardPort>();
      connect = [port = discard_port_](std::shared_ptr<net::FrameSink>) { return port; };
    }
    if (config_.nic == NicModel::kE1000) {
      // INTx on an IOAPIC-only GSI of its own: KVM keeps one level per GSI
      // from userspace, so a shared line would lose a device's level.
      auto line = std::make_shared<KvmIrqLine>(vm_, kE1000Gsi);
      // MSI besides INTx, a capability the 82540EM lacks (vmm/devices/
      // e1000/README.md): Linux's e1000 ignores it, our driver uses it.
      E1000::Options options;
      options.msi_router = gsi_router_.get();
      e1000_ = E1000::create(mem_, line, config_.mac, std::move(options));
      e1000_->set_port(connect(std::make_shared<net::WeakSink>(e1000_)));
      e1000_slot_ = pci_->add(e1000_);
    } else {
      auto dev = std::make_shared<VirtioNetDevice>(mem_, *gsi_router_, config_.mac, connect);
      virtio_.emplace_back(pci_->add(dev), dev);
      virtio_net_ = dev;
    }
  }
  if (config_.balloon) {
    // Guest RAM is anonymous private memory, so the default release
    // (MADV_DONTNEED) is right, unless our merger has mapped pages from its
    // pool (file-backed, see virtio_balloon.h): then it releases them.
    BalloonOptions options;
    options.target_bytes = config_.balloon_target;
    options.release = merge_balloon_release();
    balloon_ = std::make_shared<VirtioBalloonDevice>(mem_, *gsi_router_, options);
    virtio_.emplace_back(pci_->add(balloon_), balloon_);
  }
  for (auto& [slot, dev] : virtio_) dev->start();
}

void Machine::setup_vcpus(const BootEntry& boot) {
  const auto supported = kvm_.supported_cpuid();
  for (int i = 0; i < config_.vcpus; ++i) {
    auto vcpu = vm_.create_vcpu(i, run_area_size_);
    auto cpuid = cpuid_for_vcpu(supported, i, config_.vcpus);
    // KVM's in-kernel LAPIC emulates the TSC-deadline timer, but
    // KVM_GET_SUPPORTED_CPUID leaves the bit for the VMM to offer.
    if (kvm_.check_extension(KVM_CAP_TSC_DEADLINE_TIMER))
      for (auto& e : cpuid)
        if (e.function == 1) e.ecx |= 1u << 24;
    vcpu->set_cpuid(cpuid);
    // Only the boot processor starts at the PVH entry; the others wait in
    // the in-kernel LAPIC for INIT and SIPI, as on real hardware.
    if (i == 0) {
      kvm_sregs sregs = vcpu->sregs();
      kvm_regs regs{};
      set_pvh_entry_state(sregs, regs, boot.entry, static_cast<uint32_t>(boot.start_info));
      vcpu->set_sregs(sregs);
      vcpu->set_regs(regs);
    }
    vcpus_.push_back(std::move(vcpu));
  }
  stats_.resize(vcpus_.size());

  // KVM's own exit counters (Linux 5.14+). Missing ones are not fatal: the
  // VM runs, and --stats says why they are absent.
  try {
    for (const auto& v : vcpus_) {
      auto k = KvmStats::open(v->fd());
      if (!k) {
        kvm_stats_note_ = "this KVM has no binary statistics (KVM_GET_STATS_FD)";
        counter_sources_.kvm.clear();
        break;
      }
      counter_sources_.kvm.push_back(std::move(*k));
    }
  } catch (const std::exception& e) {
    kvm_stats_note_ = e.what();
    counter_sources_.kvm.clear();
  }
  counter_sources_.userspace = [this] {
    ExitStats all;
    for (const auto& s : stats_) all.merge(s.snapshot());
    return all;
  };
  if (e1000_) counter_sources_.nic = [this] { return nic_counters(e1000_->stats()); };
  if (virtio_net_)
    counter_sources_.nic = [this] {
      return nic_counters(virtio_net_->transport_stats(), virtio_net_->stats(), virtio_net_->rx_dropped());
    };
}

void Machine::bench_mark(uint32_t what) {
  // On the vCPU thread that wrote the mark. A failed read of KVM's
  // statistics loses this mark, not the VM.
  try {
    CounterSnapshot s = take_snapshot(counter_sources_);
    if (what == platform::kBenchMarkStart) window_.start(std::move(s));
    else window_.end(std::move(s));
  } catch (const std::exception& e) {
    std::lock_guard lock(report_mu_);
    std::cerr << (who_ + "benchmark mark lost: " + e.what() + "\n");
  }
}

std::string Machine::kvm_and_window_report(const CounterSnapshot& end) const {
  std::string out = who_ + "KVM exit counters (whole run, " + std::to_string(vcpus_.size()) + " vCPU" +
                    (vcpus_.size() > 1 ? "s" : "") + "): ";
  out += kvm_stats_note_.empty() ? format_counters(counter_delta(end.kvm, run_start_.kvm))
                                 : "not available: " + kvm_stats_note_;
  return out + "\n" + window_.report(who_);
}

int Machine::run() {
  // Every message goes out in one write, so the VMs of a cluster never mix
  // their lines on a shared stderr.
  std::cerr << (who_ + "KVM on " + describe_host_virtualization() + "; " + std::to_string(config_.vcpus) + " vCPU" +
                (config_.vcpus > 1 ? "s" : "") + ", " + std::to_string(config_.mem_bytes >> 20) + " MiB\n");
  install_kick_handler();
  // A failed read of KVM's statistics costs the report its KVM part only.
  auto snapshot = [this] {
    try {
      return take_snapshot(counter_sources_);
    } catch (const std::exception& e) {
      kvm_stats_note_ = e.what();
      return CounterSnapshot{};
    }
  };
  if (config_.stats) run_start_ = snapshot();
  const uint64_t start = now_ns();
  {
    // Under control_mu_: a pause() from the control socket reads threads_.
    std::lock_guard lock(control_mu_);
    for (size_t i = 0; i < vcpus_.size(); ++i) threads_.emplace_back([this, i] { vcpu_loop(static_cast<int>(i)); });
  }
  for (auto& t : threads_) t.join();
  const double seconds = (now_ns() - start) / 1e9;
  if (console_) std::fflush(console_);
  if (config_.stats) {
    ExitStats all;
    for (const auto& s : stats_) all.merge(s);
    std::string report = who_ + "exit statistics\n" + all.format(seconds);
    if (!virtio_.empty() || e1000_) report += who_ + "device statistics\n";
    auto slot_name = [](uint32_t slot) {
      char where[16];
      std::snprintf(where, sizeof where, "  00:%02x.0 ", slot);
      return std::string(where);
    };
    for (const auto& [slot, dev] : virtio_) report += slot_name(slot) + dev->stats_line() + "\n";
    if (e1000_) report += slot_name(e1000_slot_) + e1000_->stats_line() + "\n";
    if (balloon_) {
      // What the balloon gave back, next to what the whole process holds
      // now and at its peak (the guest's touched RAM is most of it).
      char line[160];
      const auto pm = read_process_memory();
      if (pm)
        std::snprintf(line, sizeof line, "balloon: released %.1f MiB, RSS %.1f MiB (peak %.1f MiB)\n",
                      balloon_->released_bytes() / 1048576.0, pm->rss_bytes / 1048576.0,
                      pm->peak_rss_bytes / 1048576.0);
      else
        std::snprintf(line, sizeof line, "balloon: released %.1f MiB, RSS unknown (no /proc/self/status)\n",
                      balloon_->released_bytes() / 1048576.0);
      report += who_ + line;
      // The guest's own view, from its last statistics report.
      const BalloonGuestStats gs = balloon_->guest_stats();
      const auto free_b = gs.get(virtio::VIRTIO_BALLOON_S_MEMFREE), total_b = gs.get(virtio::VIRTIO_BALLOON_S_MEMTOT);
      if (gs.updates && free_b && total_b) {
        const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - gs.received).count();
        std::snprintf(line, sizeof line, "balloon: the guest reports %.1f MiB free of %.1f MiB (%.1f s ago)\n",
                      *free_b / 1048576.0, *total_b / 1048576.0, age);
        report += who_ + line;
      }
    }
    if (discard_port_) {
      report += "  (no switch: the NIC's " + std::to_string(discard_port_->frames()) +
                " transmitted frames went nowhere)\n";
    }
    const CounterSnapshot end = snapshot();
    report += kvm_and_window_report(end);
    std::cerr << report;
  }
  return status_.load();
}

void Machine::request_stop(int status) {
  bool expected = false;
  if (!stopping_.compare_exchange_strong(expected, true)) return;
  status_ = status;
  std::lock_guard lock(control_mu_);
  kick_all_locked();
  pause_cv_.notify_all();  // parked vCPUs see stopping_ and leave
}

void Machine::kick_all_locked() {
  // immediate_exit first: a vCPU between its checks and KVM_RUN then leaves
  // KVM_RUN at once, so no kick is lost (see vcpu_loop).
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    vcpus_[i]->run_area()->immediate_exit = 1;
    if (i < threads_.size()) pthread_kill(threads_[i].native_handle(), kKickSignal);
  }
}

bool Machine::pause() {
  std::unique_lock lock(control_mu_);
  paused_ = true;
  kick_all_locked();
  if (threads_.empty()) return true;  // not started: vCPUs park before their first entry
  return pause_cv_.wait_for(lock, std::chrono::seconds(2),
                            [this] { return stopping_ || parked_ == static_cast<int>(vcpus_.size()); });
}

void Machine::resume() {
  std::lock_guard lock(control_mu_);
  paused_ = false;
  pause_cv_.notify_all();
}

Machine::ParkedVcpus::ParkedVcpus(Machine& m) : m_(m), was_paused_(m.paused()) {
  if (!m_.pause()) {
    release();
    throw std::runtime_error("the vCPUs did not stop within 2 s");
  }
}

void Machine::ParkedVcpus::release() {
  if (released_) return;
  released_ = true;
  if (!was_paused_) m_.resume();
}

std::vector<VcpuProbe> Machine::probe_vcpus() {
  ParkedVcpus parked(*this);
  std::vector<VcpuProbe> probes;
  for (auto& v : vcpus_) probes.push_back(probe_vcpu(*v));
  return probes;
}

void Machine::kill(int status) { request_stop(status); }

void Machine::set_clock_offset(int64_t offset_ns) { time_page_.set(offset_ns, time_page_.uncertainty_ns()); }

void Machine::vcpu_loop(int index) {
  {
    std::string vm = io_.name;  // "vm 1" -> "vm1-vcpu0"
    std::erase(vm, ' ');
    set_thread_name((vm.empty() ? "" : vm + "-") + "vcpu" + std::to_string(index));
  }
  Vcpu& vcpu = *vcpus_[index];
  ExitStats& stats = stats_[index];
  try {
    while (!stopping_) {
      // Clear the kick before looking at the flags (pause() and
      // request_stop() set the flag, then the kick): a pause that lands
      // after this line is seen below or makes KVM_RUN return at once.
      vcpu.run_area()->immediate_exit = 0;
      if (paused_ || held_) {
        // A parked VM's console is complete in its file: a line cut by the
        // pause would otherwise wait in stdio's buffer, and a VMM killed
        // while paused (snapshot, then kill -9) would lose it.
        if (console_) std::fflush(console_);
        std::unique_lock lock(control_mu_);
        ++parked_;
        pause_cv_.notify_all();
        pause_cv_.wait(lock, [this] { return !(paused_ || held_) || stopping_; });
        --parked_;
        continue;
      }
      if (stopping_) break;
      const bool ran = vcpu.run();
      const uint64_t t0 = now_ns();
      if (!ran) {
        stats.record(KVM_EXIT_INTR, now_ns() - t0);
        continue;
      }
      kvm_run* run = vcpu.run_area();
      const uint32_t reason = run->exit_reason;
      const bool keep_going = handle_exit(vcpu, run);
      stats.record(reason, now_ns() - t0);
      if (!keep_going) break;
    }
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(report_mu_);
      std::cerr << (who_ + "vCPU " + std::to_string(index) + ": " + e.what() + "\n");
    }
    request_stop(kExitVmmError);
  }
  // stop_guest_writes() counts a vCPU that has left as stopped.
  std::lock_guard lock(control_mu_);
  ++exited_;
  pause_cv_.notify_all();
}

bool Machine::handle_exit(Vcpu& vcpu, kvm_run* run) {
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      handle_pio(run);
      return true;
    case KVM_EXIT_MMIO:
      handle_mmio(run);
      return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT:  // with the in-kernel LAPIC, only on odd hosts: resume
      return true;
    case KVM_EXIT_SHUTDOWN:
      report_crash(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)");
      request_stop(kExitGuestCrash);
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::string what = "KVM internal error, suberror " + std::to_string(run->internal.suberror);
      for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i) {
        char b[24];
        snprintf(b, sizeof b, " %llx", static_cast<unsigned long long>(run->internal.data[i]));
        what += b;
      }
      report_crash(vcpu, what);
      request_stop(kExitGuestCrash);
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY: {
      char b[96];
      snprintf(b, sizeof b, "VM entry failed, hardware reason 0x%llx",
               static_cast<unsigned long long>(run->fail_entry.hardware_entry_failure_reason));
      report_crash(vcpu, b);
      request_stop(kExitGuestCrash);
      return false;
    }
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
        report_crash(vcpu, "guest reported a crash (KVM_SYSTEM_EVENT_CRASH)");
        request_stop(kExitGuestCrash);
      } else {
        request_stop(0);  // shutdown or reset: the guest ended itself
      }
      return false;
    default:
      report_crash(vcpu, std::string("unexpected exit '") + exit_reason_name(run->exit_reason) + "' (" +
                             std::to_string(run->exit_reason) + ")");
      request_stop(kExitGuestCrash);
      return false;
  }
}

void Machine::handle_pio(kvm_run* run) {
  const auto& io = run->io;
  // The data area lies inside the run area; KVM sets it up, but a bad
  // offset must not make us touch memory we do not own.
  const uint64_t bytes = uint64_t(io.size) * io.count;
  if ((io.size != 1 && io.size != 2 && io.size != 4) || io.data_offset > uint64_t(run_area_size_) ||
      bytes > uint64_t(run_area_size_) - io.data_offset)
    throw std::runtime_error("malformed port I/O exit");
  uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
  for (uint32_t i = 0; i < io.count; ++i, data += io.size) {
    if (io.direction == KVM_EXIT_IO_OUT) pio_.write(io.port, data, io.size);
    else pio_.read(io.port, data, io.size);
  }
}

void Machine::handle_mmio(kvm_run* run) {
  auto& m = run->mmio;
  if (m.len == 0 || m.len > sizeof m.data) throw std::runtime_error("malformed MMIO exit");
  if (m.is_write) mmio_.write(m.phys_addr, m.data, m.len);
  else mmio_.read(m.phys_addr, m.data, m.len);
}

void Machine::report_crash(Vcpu& vcpu, const std::string& what) {
  if (console_) std::fflush(console_);
  std::lock_guard lock(report_mu_);
  std::ostringstream out;
  out << who_ << "vCPU " << vcpu.index() << ": guest crashed: " << what << "\n";
  try {
    const kvm_regs regs = vcpu.regs();
    const kvm_sregs sregs = vcpu.sregs();
    out << format_cpu_state(regs, sregs);
    if (regs.rip == 0xfff0 && sregs.cs.selector == 0xf000)
      out << who_ << "(this is the reset state: KVM on AMD SVM reinitializes the vCPU on a shutdown "
                     "intercept, so the registers at the fault are lost)\n";
  } catch (const std::exception& e) {
    out << who_ << "cannot read the vCPU's registers: " << e.what() << "\n";
  }
  // Guest RAM survives where the registers do not: what broke delivery?
  out << post_mortem_.report(who_);
  std::cerr << out.str();
}

}  // namespace vmm
