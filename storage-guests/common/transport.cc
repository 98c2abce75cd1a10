#include "storage-guests/common/transport.h"

namespace sg {

Bytes frame_datagram(const TransportHeader& h, const Bytes& message) {
  Writer w;
  w.u32(kTransportMagic);
  w.u32(h.from);
  w.u32(h.to);
  Bytes out = w.take();
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

std::optional<TransportHeader> unframe_datagram(const uint8_t* data, size_t len, Bytes& message) {
  Reader r(data, len);
  const uint32_t magic = r.u32();
  TransportHeader h;
  h.from = r.u32();
  h.to = r.u32();
  if (!r.ok() || magic != kTransportMagic) return std::nullopt;
  for (NodeId id : {h.from, h.to}) {
    if (id == 0 || id == kNoNode) return std::nullopt;
  }
  message.assign(data + kTransportHeaderSize, data + len);
  return h;
}

}  // namespace sg
