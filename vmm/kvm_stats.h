// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): counters KVM keeps
// per VM and per vCPU, including the exits it handles without coming back
// to userspace (an ioeventfd write, an in-kernel LAPIC access, a HLT). The
// VMM's own ExitStats only sees userspace exits; these are what "VM exits
// per packet" must count, because a virtio kick through an ioeventfd is
// still a VM exit even though the VMM never sees it.
//
// The file is: a header, the id string, an array of descriptors (each a
// fixed part plus a name of header.name_size bytes) and the data. It is
// parsed by hand from bytes: the uapi struct ends in a flexible array,
// which the C++ view of Linux 6.1's headers places differently (see
// KvmFlexBuffer in kvm.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmm {

class KvmStats {
 public:
  struct Counter {
    std::string name;
    uint32_t offset;  // in the data block
    // Only cumulative counters have meaningful differences; instant and
    // peak values (e.g. "blocking", "halt_poll_fail_hist" peaks) do not.
    bool cumulative = false;
  };

  // Opens the statistics of a VM or vCPU file descriptor. Nothing if this
  // KVM has no binary statistics (older kernels, or PVM); throws KvmError
  // on any other failure and std::runtime_error if the layout is malformed.
  static std::optional<KvmStats> open(int kvm_object_fd);

  // Parses the header and descriptors of a stats file (its first bytes up to
  // the data block). Exposed for unit tests; throws std::runtime_error.
  static std::vector<Counter> parse_descriptors(std::span<const uint8_t> file, uint32_t* data_offset);

  // Current values of every single-value counter (histograms are skipped).
  std::map<std::string, uint64_t> read() const;
  // The same, cumulative counters only: what a window's difference means.
  std::map<std::string, uint64_t> read_cumulative() const;
  const std::vector<Counter>& counters() const { return counters_; }

 private:
  KvmStats(int fd, std::vector<Counter> counters, uint32_t data_offset);
  std::shared_ptr<int> fd_;  // closed with the last copy
  std::vector<Counter> counters_;
  uint32_t data_offset_ = 0;
  uint32_t data_size_ = 0;
};

}  // namespace vmm
