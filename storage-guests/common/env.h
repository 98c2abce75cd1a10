// The one interface between a protocol state machine and the world.
//
// Every service node is a pure, deterministic state machine: it reacts to
// messages, timer expiries and storage-sync completions, and acts only
// through an Env. Two implementations exist: the guest kernel's (UDP over
// virtio-net or e1000, the block log on virtio-blk, kvmclock) and the host's
// deterministic simulator (tests/sim). The same protocol code runs in both,
// so nothing here may use threads, clocks, files or sockets of the standard
// library (DESIGN.md decisions 4 and 5). This header is freestanding-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sg {

using NodeId = uint32_t;  // cluster-wide identity of a node or a client
using TimeNs = uint64_t;  // nanoseconds on the local (possibly skewed) clock
using TimerId = uint64_t;
using Bytes = std::vector<uint8_t>;

constexpr NodeId kNoNode = 0xffffffffu;

// Durable storage as an append-only log of records, the shape the guest's
// checksummed block log has. Appends are volatile until sync() completes:
// a crash loses every record appended after the last completed sync, which
// is exactly what the simulator's crash fault does.
class Storage {
 public:
  virtual ~Storage() = default;
  // Buffer one record; it becomes durable with the next completed sync.
  virtual void append(const Bytes& record) = 0;
  // Replace the whole log (compaction after a snapshot). Atomic: after a
  // crash either the old log or the new one is found, never a mix. Like
  // append, durable only once a later sync completes.
  virtual void rewrite(const std::vector<Bytes>& records) = 0;
  // Start making everything appended so far durable. Returns a token; the
  // node's on_sync(token) is called when it is durable. Tokens increase.
  virtual uint64_t sync() = 0;
  // The records that were durable at the last crash or shutdown, in order.
  // Called by a node when it starts.
  virtual std::vector<Bytes> recover() = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  virtual NodeId self() const = 0;
  // Best-effort datagram to another node or client: may be lost,
  // duplicated, reordered or delayed. Never blocks.
  virtual void send(NodeId to, const Bytes& message) = 0;
  // The local clock: monotonic, but it may run at a skewed rate or offset
  // relative to other nodes' clocks.
  virtual TimeNs now() const = 0;
  // The bound on this node's clock error relative to true time, in ns
  // (TrueTime's epsilon). 0 where the platform gives no bound.
  virtual TimeNs clock_uncertainty() const = 0;
  // One-shot timer: after `delay` on the local clock, on_timer(id) runs.
  virtual TimerId set_timer(TimeNs delay) = 0;
  virtual void cancel_timer(TimerId id) = 0;
  virtual Storage& storage() = 0;
  // Deterministic in the simulator (seeded), hardware-seeded in the guest.
  virtual uint64_t random() = 0;
};

// What every protocol node implements. The runtime (simulator or guest)
// constructs it with its Env, calls start() once (also after a restart,
// when it must rebuild its state from storage().recover()), then delivers
// events one at a time; handlers never run concurrently.
class Node {
 public:
  virtual ~Node() = default;
  virtual void start() = 0;
  virtual void on_message(NodeId from, const Bytes& message) = 0;
  virtual void on_timer(TimerId id) = 0;
  virtual void on_sync(uint64_t token) = 0;
};

}  // namespace sg
