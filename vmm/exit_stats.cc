#include "vmm/exit_stats.h"

#include <linux/kvm.h>

#include <atomic>
#include <cstdio>

namespace vmm {

const char* exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN: return "unknown";
    case KVM_EXIT_EXCEPTION: return "exception";
    case KVM_EXIT_IO: return "io";
    case KVM_EXIT_HYPERCALL: return "hypercall";
    case KVM_EXIT_DEBUG: return "debug";
    case KVM_EXIT_HLT: return "hlt";
    case KVM_EXIT_MMIO: return "mmio";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "irq-window-open";
    case KVM_EXIT_SHUTDOWN: return "shutdown";
    case KVM_EXIT_FAIL_ENTRY: return "fail-entry";
    case KVM_EXIT_INTR: return "intr";
    case KVM_EXIT_SET_TPR: return "set-tpr";
    case KVM_EXIT_TPR_ACCESS: return "tpr-access";
    case KVM_EXIT_NMI: return "nmi";
    case KVM_EXIT_INTERNAL_ERROR: return "internal-error";
    case KVM_EXIT_SYSTEM_EVENT: return "system-event";
    case KVM_EXIT_IOAPIC_EOI: return "ioapic-eoi";
    case KVM_EXIT_X86_RDMSR: return "rdmsr";
    case KVM_EXIT_X86_WRMSR: return "wrmsr";
    default: return "other";
  }
}

namespace {
// One writer per ExitStats: a relaxed load-add-store is enough, and
// compiles to what a plain increment does.
void add_relaxed(uint64_t& field, uint64_t v) {
  std::atomic_ref<uint64_t> a(field);
  a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}
uint64_t load_relaxed(const uint64_t& field) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(field)).load(std::memory_order_relaxed);
}
}  // namespace

void ExitStats::record(uint32_t exit_reason, uint64_t handling_ns) {
  Entry& e = entries_[exit_reason < kReasons ? exit_reason : kReasons - 1];
  add_relaxed(e.count, 1);
  add_relaxed(e.handling_ns, handling_ns);
}

ExitStats ExitStats::snapshot() const {
  ExitStats copy;
  for (uint32_t r = 0; r < kReasons; ++r) {
    copy.entries_[r].count = load_relaxed(entries_[r].count);
    copy.entries_[r].handling_ns = load_relaxed(entries_[r].handling_ns);
  }
  return copy;
}

void ExitStats::merge(const ExitStats& other) {
  for (uint32_t r = 0; r < kReasons; ++r) {
    entries_[r].count += other.entries_[r].count;
    entries_[r].handling_ns += other.entries_[r].handling_ns;
  }
}

uint64_t ExitStats::total() const {
  uint64_t n = 0;
  for (const Entry& e : entries_) n += e.count;
  return n;
}

std::map<uint32_t, ExitStats::Entry> ExitStats::entries() const {
  std::map<uint32_t, Entry> used;
  for (uint32_t r = 0; r < kReasons; ++r)
    if (entries_[r].count) used[r] = entries_[r];
  return used;
}

std::string ExitStats::format(double wall_seconds) const {
  std::string out;
  char line[160];
  const uint64_t total_exits = total();
  snprintf(line, sizeof line, "%-16s %10s %7s %14s %12s\n", "exit reason", "count", "share", "mean handling", "exits/s");
  out += line;
  for (const auto& [reason, e] : entries()) {
    snprintf(line, sizeof line, "%-16s %10llu %6.1f%% %11.1f us %12.1f\n", exit_reason_name(reason),
             static_cast<unsigned long long>(e.count), total_exits ? 100.0 * e.count / total_exits : 0.0,
             e.count ? e.handling_ns / 1e3 / e.count : 0.0, wall_seconds > 0 ? e.count / wall_seconds : 0.0);
    out += line;
  }
  snprintf(line, sizeof line, "%-16s %10llu %7s %14s %12.1f\n", "total", static_cast<unsigned long long>(total_exits),
           "", "", wall_seconds > 0 ? total_exits / wall_seconds : 0.0);
  out += line;
  snprintf(line, sizeof line, "VM ran for %.3f s\n", wall_seconds);
  out += line;
  return out;
}

}  // namespace vmm
