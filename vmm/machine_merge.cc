// Machine's part in same-page merging (vmm/memory/merge_service.h): how
// the merger stops every writer of this VM's RAM, and how the VM joins and
// leaves the merger. Kept apart from machine.cc: it is one concern.
//
// Who writes guest RAM, and how each is stopped:
//   - the vCPUs (the guest itself, and KVM on their behalf at entry):
//     parked outside KVM_RUN, like pause(), with their own flag (held_);
//   - the virtio devices' I/O threads: every queue callback runs under the
//     device's mu_, which quiesce() takes; virtio-blk also
//     finishes its in-flight io_uring reads, which the kernel writes into
//     guest RAM on its own time;
//   - the e1000's I/O thread: its guest-memory writes are under its mu_;
//   - the control socket's clock skew (TimePage::set) under the page's lock.
// The vCPUs go first: a vCPU in the middle of an MMIO exit may hold a
// device lock, and parks only after its exit is handled.
#include <chrono>

#include "virtio/host/virtio_pci.h"
#include "vmm/devices/e1000/e1000.h"
#include "vmm/machine.h"
#include "vmm/memory/merge_service.h"

namespace vmm {

bool Machine::stop_guest_writes() {
  {
    std::unique_lock lock(control_mu_);
    held_ = true;
    // A VM that is stopping has had its vCPUs kicked already, and some of
    // their threads may be joined (a signal to one would be undefined):
    // then only wait for them to leave. Without stopping_ no vCPU thread
    // has left (each leaves only after request_stop), so kicking is safe.
    if (!stopping_) kick_all_locked();
    const bool parked = threads_.empty() || pause_cv_.wait_for(lock, std::chrono::seconds(2), [this] {
      return parked_ + exited_ == static_cast<int>(vcpus_.size());
    });
    if (!parked) {
      held_ = false;
      pause_cv_.notify_all();
      return false;
    }
  }
  for (auto& [slot, dev] : virtio_) write_holds_.push_back(dev->quiesce());
  if (e1000_) write_holds_.push_back(e1000_->quiesce());
  write_holds_.push_back(time_page_.hold_writes());
  return true;
}

void Machine::resume_guest_writes() {
  while (!write_holds_.empty()) write_holds_.pop_back();  // unlocks, last taken first
  std::lock_guard lock(control_mu_);
  held_ = false;
  pause_cv_.notify_all();
}

void Machine::register_with_merger() {
  if (!io_.merge) return;
  MergeMember m;
  m.memory = &mem_;
  m.name = io_.name.empty() ? "vm" : io_.name;
  m.stop_writers = [this] { return stop_guest_writes(); };
  m.resume_writers = [this] { resume_guest_writes(); };
  io_.merge->add(std::move(m));
}

void Machine::unregister_from_merger() {
  if (io_.merge) io_.merge->remove(mem_);
}

std::function<int(uint64_t, uint8_t*, uint64_t)> Machine::merge_balloon_release() {
  return io_.merge ? io_.merge->balloon_release() : nullptr;
}

}  // namespace vmm
