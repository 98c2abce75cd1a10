// The virtual L2 switch that joins every NIC of every VM of one VMM process
// (DESIGN.md decision 7), with per-link faults for the hypervisor nemesis.
//
// A learning switch: it learns source MAC -> port (entries age out, and move
// when a MAC shows up on another port), forwards unicast to the learned
// port, floods broadcast, multicast and unknown unicast to every other port,
// and never sends a frame back out of the port it came in on.
//
// Faults are set per directed link (from port, to port), by port name, and
// outlive a port's detach and re-attach under the same name (a restarted VM
// stays partitioned). Each link draws its random decisions from its own
// PRNG, seeded from (seed, from, to): the k-th frame on a link meets the same
// fate in every run with the same seed and settings, whatever the other
// links and threads do.
//
// Thread safety: every method may be called from any thread. transmit() runs
// concurrently from many NIC threads; delayed frames are delivered by the
// switch's own scheduler thread. Sinks are called without the switch's lock
// held, so a sink may transmit from inside deliver() (the contract still
// asks it only to queue).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vmm/net/frame_port.h"

namespace vmm::net {

// What a directed link does to the frames crossing it. All zero: a perfect
// link. Decisions, in order: cut (drop all), drop_prob (drop this frame),
// dup_prob (deliver it twice), delay_ns + a uniform jitter in
// [0, jitter_ns] (jitter alone reorders frames, as in netem), reorder_prob
// (hold the frame back until the next frame on the link has been delivered,
// or reorder_hold_ns at most: a true swap of neighbours).
struct LinkFaults {
  bool cut = false;
  double drop_prob = 0;
  double dup_prob = 0;
  uint64_t delay_ns = 0;
  uint64_t jitter_ns = 0;
  double reorder_prob = 0;

  bool operator==(const LinkFaults&) const = default;
  bool healthy() const { return *this == LinkFaults{}; }
};

// Counters of one port. "in" is what the port's NIC transmitted into the
// switch, "out" what the switch delivered to the port's sink. Drops on
// ingress are counted where the frame came in; drops on a link are counted
// on its "from" port (and in LinkStats).
struct PortStats {
  uint64_t in_frames = 0, in_bytes = 0;
  uint64_t out_frames = 0, out_bytes = 0;
  uint64_t drop_runt = 0;        // shorter than an Ethernet header
  uint64_t drop_oversize = 0;    // longer than kMaxFrameLen
  uint64_t drop_bad_source = 0;  // multicast or all-zero source MAC
  uint64_t drop_hairpin = 0;     // destination learned on the source port
  uint64_t drop_cut = 0;         // link cut
  uint64_t drop_loss = 0;        // random loss (drop_prob)
  uint64_t drop_detached = 0;    // delayed frame whose destination left
  uint64_t duplicated = 0, delayed = 0, reordered = 0;
};

struct LinkStats {
  uint64_t forwarded = 0;  // copies handed on (duplicates included)
  uint64_t drop_cut = 0, drop_loss = 0, drop_detached = 0;
  uint64_t duplicated = 0, delayed = 0, reordered = 0;
};

struct SwitchStats {
  uint64_t flooded = 0;           // frames sent to every other port
  uint64_t unicast = 0;           // frames sent to one learned port
  uint64_t mac_moves = 0;         // a learned MAC showed up on another port
  uint64_t learn_table_full = 0;  // a MAC not learned: the table was full
  size_t macs_learned = 0;        // entries now in the table
};

struct SwitchOptions {
  uint64_t seed = 1;
  uint64_t aging_ns = 300ull * 1000000000;  // IEEE 802.1D's default
  size_t max_macs = 4096;                   // a guest spraying source MACs cannot grow it further
  uint64_t reorder_hold_ns = 10000000;      // a held frame waits this long at most for a successor
  // The clock for MAC aging (ns, monotonic); steady_clock when empty. Tests
  // inject one. Delays always use the real steady clock.
  std::function<uint64_t()> clock;
};

class Switch {
 public:
  explicit Switch(SwitchOptions options = {});
  // Stops the scheduler (frames still delayed are dropped) and detaches
  // every port; ports still held elsewhere then refuse to transmit.
  ~Switch();
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

  // Attaches a sink under a unique name ("vm0", "gateway"). The port
  // detaches when the returned object is destroyed or detach(name) is
  // called. Throws std::invalid_argument for an empty or attached name.
  // Frames already on their way may still reach a sink just after detach.
  std::shared_ptr<FramePort> attach(std::string name, std::shared_ptr<FrameSink> sink);
  void detach(const std::string& name);

  // Link controls. Names must have been attached at least once (else
  // std::invalid_argument): faults are kept by name across re-attach.
  // Probabilities must lie in [0, 1].
  void set_link(const std::string& from, const std::string& to, const LinkFaults& faults);
  LinkFaults link(const std::string& from, const std::string& to) const;
  // Cuts every link into and out of port (to every known port).
  void isolate(const std::string& port);
  // Cuts every link between two ports that share no group; links inside a
  // group and links of ports named in no group are left as they are. A
  // port may stand in several groups: {{a, m}, {m, b}} is a bridge, where
  // m talks to both sides and a and b cannot talk to each other.
  void partition(const std::vector<std::vector<std::string>>& groups);
  // Every link perfect again; frames held for reordering are released.
  void heal_all();

  // Names of every port ever attached, in attach order.
  std::vector<std::string> ports() const;
  bool attached(const std::string& name) const;
  PortStats port_stats(const std::string& name) const;
  LinkStats link_stats(const std::string& from, const std::string& to) const;
  SwitchStats stats() const;
  // A table of every port's counters, for --stats.
  std::string format_stats() const;
  // Frames waiting in the scheduler (delayed or held for reordering).
  size_t pending() const;

  class Core;  // shared with the ports and the scheduler thread

 private:
  std::shared_ptr<Core> core_;
};

std::string format_mac(const MacAddress& mac);

}  // namespace vmm::net
