#include "vmm/snapshot/state_codec.h"

#include <nlohmann/json.hpp>

#include "vmm/net/switch.h"

namespace vmm::snapshot {
namespace {

using Json = nlohmann::json;

// JSON numbers above 2^53 lose bits in some readers: ids travel as hex.
std::string hex64(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

std::vector<uint8_t> encode_meta(const SnapshotMeta& m) {
  const VmConfig& c = m.config;
  Json disks = Json::array();
  for (const DiskConfig& d : c.disks) disks.push_back({{"path", d.path}, {"read_only", d.read_only}, {"serial", d.serial}});
  Json j{{"id", hex64(m.id)},
         {"base_id", hex64(m.base_id)},
         {"base_path", m.base_path},
         {"vm",
          {{"kernel", c.kernel},
           {"mem_bytes", c.mem_bytes},
           {"vcpus", c.vcpus},
           {"cmdline", c.cmdline},
           {"clock_offset_ns", c.clock_offset_ns},
           {"clock_uncertainty_ns", c.clock_uncertainty_ns},
           {"halt_poll_ns", c.halt_poll_ns},
           {"disks", disks},
           {"net", c.net},
           {"nic", to_string(c.nic)},
           {"mac", net::format_mac(c.mac)},
           {"balloon", c.balloon},
           {"balloon_target", c.balloon_target}}}};
  const std::string text = j.dump();
  return std::vector<uint8_t>(text.begin(), text.end());
}

SnapshotMeta decode_meta(std::span<const uint8_t> payload, const std::string& what) {
  const Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw SnapshotError(what + ": the configuration is not JSON");
  try {
    SnapshotMeta m;
    m.id = std::stoull(j.at("id").get<std::string>(), nullptr, 16);
    m.base_id = std::stoull(j.at("base_id").get<std::string>(), nullptr, 16);
    m.base_path = j.at("base_path").get<std::string>();
    const Json& v = j.at("vm");
    VmConfig& c = m.config;
    c.kernel = v.at("kernel").get<std::string>();
    c.mem_bytes = v.at("mem_bytes").get<uint64_t>();
    c.vcpus = v.at("vcpus").get<int>();
    c.cmdline = v.at("cmdline").get<std::string>();
    c.clock_offset_ns = v.at("clock_offset_ns").get<int64_t>();
    c.clock_uncertainty_ns = v.at("clock_uncertainty_ns").get<uint64_t>();
    c.halt_poll_ns = v.at("halt_poll_ns").get<uint64_t>();
    for (const Json& d : v.at("disks"))
      c.disks.push_back({d.at("path").get<std::string>(), d.at("read_only").get<bool>(), d.at("serial").get<std::string>()});
    c.net = v.at("net").get<bool>();
    const std::string nic = v.at("nic").get<std::string>();
    if (nic == to_string(NicModel::kVirtio)) c.nic = NicModel::kVirtio;
    else if (nic == to_string(NicModel::kE1000)) c.nic = NicModel::kE1000;
    else throw SnapshotError(what + ": unknown NIC model '" + nic + "'");
    c.mac = parse_mac(v.at("mac").get<std::string>());
    c.balloon = v.at("balloon").get<bool>();
    c.balloon_target = v.at("balloon_target").get<uint64_t>();
    // The same limits as the command line: a snapshot is input too.
    if (c.mem_bytes < kMinGuestMem || c.mem_bytes > kMaxGuestMem || c.mem_bytes % 4096)
      throw SnapshotError(what + ": guest memory size " + std::to_string(c.mem_bytes) + " is out of range");
    if (c.vcpus < 1 || c.vcpus > kMaxVcpus) throw SnapshotError(what + ": " + std::to_string(c.vcpus) + " vCPUs is out of range");
    return m;
  } catch (const SnapshotError&) {
    throw;
  } catch (const std::exception& e) {
    throw SnapshotError(what + ": malformed configuration: " + e.what());
  }
}

void encode_uart(const Uart16550::State& s, ByteWriter& out) {
  for (uint8_t v : {s.ier, s.lcr, s.mcr, s.scr, s.dll, s.dlm}) out.u8(v);
  for (bool b : {s.fifo_enabled, s.thr_interrupt, s.overrun, s.irq_level}) out.u8(b ? 1 : 0);
  out.blob(s.rx.data(), s.rx.size());
}

Uart16550::State decode_uart(ByteReader& in) {
  Uart16550::State s;
  s.ier = in.u8();
  s.lcr = in.u8();
  s.mcr = in.u8();
  s.scr = in.u8();
  s.dll = in.u8();
  s.dlm = in.u8();
  s.fifo_enabled = in.u8();
  s.thr_interrupt = in.u8();
  s.overrun = in.u8();
  s.irq_level = in.u8();
  auto rx = in.blob();
  s.rx.assign(rx.begin(), rx.end());
  return s;
}

void encode_transport(const VirtioPciDevice::TransportState& s, ByteWriter& out) {
  out.u8(s.status);
  out.u8(s.isr);
  out.u8(s.config_generation);
  out.u64(s.driver_features);
  out.u64(s.negotiated);
  out.u8(s.driver_features_high ? 1 : 0);
  out.u32(s.device_feature_select);
  out.u32(s.driver_feature_select);
  out.u16(s.config_vector);
  out.u16(s.queue_select);
  out.str(s.needs_reset_reason);
  out.u16(static_cast<uint16_t>(s.queues.size()));
  for (const auto& q : s.queues) {
    out.u16(q.size);
    out.u16(q.msix_vector);
    out.u64(q.desc);
    out.u64(q.driver);
    out.u64(q.device);
    out.u8(q.enabled ? 1 : 0);
    out.u8(q.reset_done ? 1 : 0);
    out.u16(q.vq.last_avail);
    out.u16(q.vq.used_idx);
    out.u16(q.vq.signalled_used);
    out.u8(q.vq.notify_enabled ? 1 : 0);
    out.u32(q.vq.in_flight);
  }
}

VirtioPciDevice::TransportState decode_transport(ByteReader& in) {
  VirtioPciDevice::TransportState s;
  s.status = in.u8();
  s.isr = in.u8();
  s.config_generation = in.u8();
  s.driver_features = in.u64();
  s.negotiated = in.u64();
  s.driver_features_high = in.u8();
  s.device_feature_select = in.u32();
  s.driver_feature_select = in.u32();
  s.config_vector = in.u16();
  s.queue_select = in.u16();
  s.needs_reset_reason = in.str();
  const uint16_t n = in.u16();
  if (n > VirtioPciDevice::kMaxQueues) throw SnapshotError(in.what() + ": " + std::to_string(n) + " queues");
  for (uint16_t i = 0; i < n; ++i) {
    VirtioPciDevice::QueueState q;
    q.size = in.u16();
    q.msix_vector = in.u16();
    q.desc = in.u64();
    q.driver = in.u64();
    q.device = in.u64();
    q.enabled = in.u8();
    q.reset_done = in.u8();
    q.vq.last_avail = in.u16();
    q.vq.used_idx = in.u16();
    q.vq.signalled_used = in.u16();
    q.vq.notify_enabled = in.u8();
    q.vq.in_flight = in.u32();
    s.queues.push_back(q);
  }
  return s;
}

void encode_msix(const std::vector<MsiX::EntryState>& table, ByteWriter& out) {
  out.u16(static_cast<uint16_t>(table.size()));
  for (const auto& e : table) {
    out.u32(e.address_lo);
    out.u32(e.address_hi);
    out.u32(e.data);
    out.u32(e.control);
    out.u8(e.pending ? 1 : 0);
  }
}

std::vector<MsiX::EntryState> decode_msix(ByteReader& in) {
  const uint16_t n = in.u16();
  if (n > 2048) throw SnapshotError(in.what() + ": " + std::to_string(n) + " MSI-X vectors");
  std::vector<MsiX::EntryState> t(n);
  for (auto& e : t) {
    e.address_lo = in.u32();
    e.address_hi = in.u32();
    e.data = in.u32();
    e.control = in.u32();
    e.pending = in.u8();
  }
  return t;
}

}  // namespace vmm::snapshot
