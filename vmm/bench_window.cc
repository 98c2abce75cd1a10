#include "vmm/bench_window.h"

#include <chrono>
#include <cstdio>

namespace vmm {

Counters counter_delta(const Counters& after, const Counters& before) {
  Counters d;
  for (const auto& [name, value] : after) {
    auto it = before.find(name);
    const uint64_t base = it == before.end() ? 0 : it->second;
    if (value > base) d[name] = value - base;
  }
  return d;
}

std::string format_counters(const Counters& c) {
  if (c.empty()) return "(none)";
  std::string out;
  for (const auto& [name, value] : c) {
    if (!out.empty()) out += ' ';
    out += name + "=" + std::to_string(value);
  }
  return out;
}

Counters userspace_exit_counters(const ExitStats& stats) {
  Counters c;
  // Several reasons can share a name ("other"): add them up.
  for (const auto& [reason, e] : stats.entries()) c[exit_reason_name(reason)] += e.count;
  return c;
}

CounterSnapshot take_snapshot(const CounterSources& sources) {
  CounterSnapshot s;
  for (const KvmStats& k : sources.kvm)
    for (const auto& [name, value] : k.read_cumulative()) s.kvm[name] += value;
  if (sources.userspace) s.userspace = userspace_exit_counters(sources.userspace());
  if (sources.nic) s.nic = sources.nic();
  s.t_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
  return s;
}

Counters nic_counters(const E1000::Stats& s) {
  return {{"mmio_exits", s.mmio_exits}, {"mmio_tdt", s.mmio_tdt},     {"mmio_rdt", s.mmio_rdt},
          {"mmio_icr", s.mmio_icr},     {"mmio_ims", s.mmio_ims},     {"mmio_imc", s.mmio_imc},
          {"mmio_other", s.mmio_other}, {"interrupts", s.interrupts}, {"tx_frames", s.tx_frames},
          {"tx_bytes", s.tx_bytes},     {"tx_errors", s.tx_errors},   {"rx_frames", s.rx_frames},
          {"rx_bytes", s.rx_bytes},     {"rx_drops", s.rx_fifo_drops + s.rx_dropped}};
}

Counters nic_counters(const VirtioTransportStats& t, const VirtioNetStats& n, uint64_t rx_dropped) {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {{"mmio_exits", get(t.mmio_exits)}, {"kicks", get(t.kicks)},         {"interrupts", get(t.interrupts)},
          {"tx_frames", get(n.tx_frames)},   {"tx_bytes", get(n.tx_bytes)},   {"tx_errors", get(n.tx_errors)},
          {"rx_frames", get(n.rx_frames)},   {"rx_bytes", get(n.rx_bytes)},   {"rx_drops", rx_dropped}};
}

void MeasurementWindow::start(CounterSnapshot s) {
  std::lock_guard lock(mu_);
  start_ = std::move(s);
  end_.reset();
}

void MeasurementWindow::end(CounterSnapshot s) {
  std::lock_guard lock(mu_);
  if (!start_ || end_) {
    ++stray_ends_;
    return;
  }
  end_ = std::move(s);
  ++windows_;
}

bool MeasurementWindow::complete() const {
  std::lock_guard lock(mu_);
  return start_ && end_;
}

std::string MeasurementWindow::report(const std::string& who) const {
  std::lock_guard lock(mu_);
  if (!start_ && !stray_ends_) return "";
  std::string out;
  char line[200];
  if (!start_ || !end_) {
    std::snprintf(line, sizeof line, "measurement window: %s (%llu end marks without a start)\n",
                  start_ ? "opened by the guest but never closed" : "never opened",
                  static_cast<unsigned long long>(stray_ends_));
    return who + line;
  }
  const double seconds = end_->t_ns > start_->t_ns ? (end_->t_ns - start_->t_ns) / 1e9 : 0.0;
  std::snprintf(line, sizeof line, "measurement window: %.6f s between the guest's marks (%llu window%s, the last shown",
                seconds, static_cast<unsigned long long>(windows_), windows_ == 1 ? "" : "s");
  out += who + line;
  if (stray_ends_) out += "; " + std::to_string(stray_ends_) + " stray end marks ignored";
  out += ")\n";
  out += who + "window kvm: " + format_counters(counter_delta(end_->kvm, start_->kvm)) + "\n";
  out += who + "window userspace: " + format_counters(counter_delta(end_->userspace, start_->userspace)) + "\n";
  if (!end_->nic.empty()) out += who + "window nic: " + format_counters(counter_delta(end_->nic, start_->nic)) + "\n";
  return out;
}

}  // namespace vmm
