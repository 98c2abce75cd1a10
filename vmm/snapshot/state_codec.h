// How the VM's configuration and its devices' state become snapshot
// payloads and back (the framing is snapshot_file.h, KVM's own state
// kvm_state.h). Decoders throw SnapshotError on a payload that does not
// parse; what a decoded value means is checked by whoever applies it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "virtio/host/virtio_pci.h"
#include "vmm/cli.h"
#include "vmm/devices/uart16550.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci_device.h"
#include "vmm/snapshot/byte_io.h"

namespace vmm::snapshot {

// The CONF section: what identifies the snapshot and rebuilds the machine.
struct SnapshotMeta {
  uint64_t id = 0;              // random; an incremental names its base by it
  uint64_t base_id = 0;         // 0: a full snapshot
  std::string base_path;        // absolute path of the base, for incrementals
  VmConfig config;              // console and stats are the restoring VMM's own
};
std::vector<uint8_t> encode_meta(const SnapshotMeta& m);   // JSON text
SnapshotMeta decode_meta(std::span<const uint8_t> payload, const std::string& what);

void encode_uart(const Uart16550::State& s, ByteWriter& out);
Uart16550::State decode_uart(ByteReader& in);

void encode_transport(const VirtioPciDevice::TransportState& s, ByteWriter& out);
VirtioPciDevice::TransportState decode_transport(ByteReader& in);

void encode_msix(const std::vector<MsiX::EntryState>& table, ByteWriter& out);
std::vector<MsiX::EntryState> decode_msix(ByteReader& in);

}  // namespace vmm::snapshot
