#include "vmm/devices/e1000/tx_assembler.h"

#include <cstdio>
#include <cstring>

namespace vmm::e1000 {
namespace {

uint8_t cmd_of(const TxDesc& d) { return static_cast<uint8_t>(d.dw2 >> 24); }
uint32_t dtyp_of(const TxDesc& d) { return (d.dw2 >> 20) & 0xf; }

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

void TxAssembler::reset() {
  context_ = {};
  frame_.clear();
  in_frame_ = dropping_ = false;
  reason_.clear();
  drop_reason_.clear();
}

void TxAssembler::insert_checksum(std::vector<uint8_t>& data, size_t start, size_t end, size_t offset) {
  // The manual: an end of 0 means "to the end of the frame"; the checksum
  // is not inserted when its offset or start lies outside the frame.
  if (data.empty()) return;
  if (end == 0 || end >= data.size()) end = data.size() - 1;
  if (start > end || offset + 2 > data.size()) return;
  uint32_t sum = 0;
  for (size_t i = start; i <= end; i += 2) {
    const uint32_t hi = data[i];
    const uint32_t lo = i + 1 <= end ? data[i + 1] : 0;
    sum += hi << 8 | lo;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t result = static_cast<uint16_t>(~sum);
  // A computed 0 goes out as 0xffff: for UDP 0 would mean "no checksum",
  // and in one's complement both encode the same value for TCP and IP.
  if (result == 0) result = 0xffff;
  data[offset] = static_cast<uint8_t>(result >> 8);
  data[offset + 1] = static_cast<uint8_t>(result);
}

TxAssembler::Outcome TxAssembler::drop_rest(std::string why) {
  // Remember why, discard this frame's data, and skip descriptors up to
  // its EOP so that the next frame starts clean.
  drop_reason_ = std::move(why);
  dropping_ = true;
  frame_.clear();
  return Outcome::kConsumed;
}

TxAssembler::Outcome TxAssembler::end_of_frame() {
  in_frame_ = false;
  if (dropping_) {
    dropping_ = false;
    reason_ = std::move(drop_reason_);
    frame_.clear();
    return Outcome::kDropped;
  }
  if (legacy_) {
    if (legacy_ic_) insert_checksum(frame_, legacy_css_, 0, legacy_cso_);
  } else {
    if (popts_ & kTxPoptsIxsm) insert_checksum(frame_, context_.ipcss, context_.ipcse, context_.ipcso);
    if (popts_ & kTxPoptsTxsm) insert_checksum(frame_, context_.tucss, context_.tucse, context_.tucso);
  }
  return Outcome::kFrame;
}

TxAssembler::Outcome TxAssembler::feed(const TxDesc& d, const GuestMemory& mem) {
  const uint8_t cmd = cmd_of(d);
  reason_.clear();
  if (!in_frame_) frame_.clear();

  uint64_t addr = d.lower;
  uint32_t len;
  if (!(cmd & kTxCmdDext)) {
    len = d.dw2 & 0xffff;
    if (!in_frame_) {
      legacy_ = true;
      legacy_ic_ = cmd & kTxCmdIc;
      legacy_cso_ = static_cast<uint8_t>(d.dw2 >> 16);
      legacy_css_ = static_cast<uint8_t>(d.dw3 >> 8);
    }
  } else if (dtyp_of(d) == kTxDtypContext) {
    // A context descriptor carries no data and applies to the frames
    // after it; it does not end or start a frame.
    context_.ipcss = static_cast<uint8_t>(d.lower);
    context_.ipcso = static_cast<uint8_t>(d.lower >> 8);
    context_.ipcse = static_cast<uint16_t>(d.lower >> 16);
    context_.tucss = static_cast<uint8_t>(d.lower >> 32);
    context_.tucso = static_cast<uint8_t>(d.lower >> 40);
    context_.tucse = static_cast<uint16_t>(d.lower >> 48);
    return Outcome::kConsumed;
  } else if (dtyp_of(d) == kTxDtypData) {
    len = d.dw2 & 0xfffff;
    if (!in_frame_) {
      legacy_ = false;
      popts_ = static_cast<uint8_t>(d.dw3 >> 8);
    }
    if ((cmd & kTxCmdTse) && !dropping_) {
      ++tso_refused_;
      drop_rest("TCP segmentation (TSE) is not offered");
    }
  } else {
    in_frame_ = true;
    if (!dropping_) drop_rest("descriptor type " + std::to_string(dtyp_of(d)) + " is not a transmit type");
    if (cmd & kTxCmdEop) return end_of_frame();
    return Outcome::kConsumed;
  }

  in_frame_ = true;
  if (!dropping_ && len > 0) {
    if (len > kMaxFrame - frame_.size()) {
      drop_rest("frame longer than " + std::to_string(kMaxFrame) + " bytes");
    } else {
      const uint8_t* src = mem.ptr(addr, len);
      if (!src) {
        reason_ = "buffer " + hex(addr) + "+" + std::to_string(len) + " lies outside guest RAM";
        frame_.clear();
        in_frame_ = dropping_ = false;
        return Outcome::kBadBuffer;
      }
      frame_.insert(frame_.end(), src, src + len);
    }
  }
  if (cmd & kTxCmdEop) return end_of_frame();
  return Outcome::kConsumed;
}

}  // namespace vmm::e1000
