// Turns the guest's transmit descriptors into Ethernet frames: legacy
// descriptors, TCP/IP context descriptors and data descriptors, frames that
// span several descriptors up to EOP, and checksum insertion (legacy
// CSO/CSS with IC; IP and TCP/UDP checksums from the context with POPTS
// IXSM/TXSM). TCP segmentation is not offered: a data descriptor with TSE
// drops its whole frame. No threads, no registers: the device model feeds
// it one descriptor at a time under its own lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/devices/e1000/e1000_regs.h"
#include "vmm/guest_memory.h"

namespace vmm::e1000 {

class TxAssembler {
 public:
  // A frame assembled from several descriptors never exceeds this; the
  // 82540EM's transmit FIFO is 16 KiB at most.
  static constexpr size_t kMaxFrame = 16 << 10;

  enum class Outcome {
    kConsumed,    // the descriptor was taken; no frame finished
    kFrame,       // the descriptor ended a frame: frame() holds it
    kDropped,     // the descriptor ended a frame that was dropped: reason()
    kBadBuffer,   // the buffer lies outside guest RAM: reason(); the ring is broken
  };

  // Takes one descriptor. Data buffers are copied out of `mem` at once.
  Outcome feed(const TxDesc& desc, const GuestMemory& mem);
  // The finished frame after kFrame; the caller may pad it in place.
  std::vector<uint8_t>& frame() { return frame_; }
  const std::string& reason() const { return reason_; }
  // True while a frame is being assembled (descriptors seen, no EOP yet).
  bool in_frame() const { return in_frame_; }
  // Frames dropped because they asked for TCP segmentation.
  uint64_t tso_refused() const { return tso_refused_; }
  // Forgets the partial frame and the checksum context (device reset).
  void reset();

  // The Internet checksum of data[start..end] (inclusive, clipped to the
  // frame) stored big-endian at `offset`; nothing when out of range.
  static void insert_checksum(std::vector<uint8_t>& data, size_t start, size_t end, size_t offset);

 private:
  struct Context {
    uint8_t ipcss = 0, ipcso = 0, tucss = 0, tucso = 0;
    uint16_t ipcse = 0, tucse = 0;
  };
  Outcome end_of_frame();
  Outcome drop_rest(std::string why);

  Context context_;
  std::vector<uint8_t> frame_;
  bool in_frame_ = false;
  bool dropping_ = false;  // discard descriptors up to EOP
  std::string reason_;
  std::string drop_reason_;
  // Options of the frame's first descriptor (the manual takes them from
  // there): legacy IC with CSS/CSO, or a data descriptor's POPTS.
  bool legacy_ = false;
  bool legacy_ic_ = false;
  uint8_t legacy_css_ = 0, legacy_cso_ = 0;
  uint8_t popts_ = 0;
  uint64_t tso_refused_ = 0;
};

}  // namespace vmm::e1000
