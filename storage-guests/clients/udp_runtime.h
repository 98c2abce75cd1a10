// A host-side runtime for client nodes (sg::Node) that talk to a cluster
// of VMs through the virtual switch's gateway (DESIGN.md decision 8): the
// real-time counterpart of the simulator, for kvctl and the Jepsen driver.
//
// Each client gets its own UdpEnv: a UDP socket on 127.0.0.1 and its own
// NodeId. Server NodeId k is reached at 127.0.0.1:(gateway_base + k - 1)
// (storage-guests/common/transport.h). One thread runs the loop; node
// handlers run on it, one at a time, exactly as in the guest or simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <netinet/in.h>

#include "storage-guests/common/env.h"

namespace sg::clients {

class UdpRuntime;

// Clients keep nothing durable; a crash of a host client is a new session.
class VolatileStorage final : public Storage {
 public:
  void append(const Bytes& record) override { records_.push_back(record); }
  void rewrite(const std::vector<Bytes>& records) override { records_ = records; }
  uint64_t sync() override;
  std::vector<Bytes> recover() override { return {}; }

 private:
  std::vector<Bytes> records_;
  uint64_t token_ = 0;
};

class UdpEnv final : public Env {
 public:
  NodeId self() const override { return self_; }
  void send(NodeId to, const Bytes& message) override;
  TimeNs now() const override;
  TimeNs clock_uncertainty() const override { return 0; }
  TimerId set_timer(TimeNs delay) override;
  void cancel_timer(TimerId id) override;
  Storage& storage() override { return storage_; }
  uint64_t random() override { return rng_(); }

  void set_node(Node* node) { node_ = node; }
  // Datagrams dropped because they were malformed or not for us.
  uint64_t rejected() const { return rejected_; }
  ~UdpEnv() override;

 private:
  friend class UdpRuntime;
  UdpEnv(UdpRuntime& runtime, NodeId self, int fd, uint64_t seed);
  void receive_all();

  UdpRuntime& runtime_;
  NodeId self_;
  int fd_;
  Node* node_ = nullptr;
  VolatileStorage storage_;
  std::mt19937_64 rng_;
  uint64_t rejected_ = 0;
};

class UdpRuntime {
 public:
  // `gateway_base`: the host port of VM 0's gateway relay; `servers`: how
  // many servers (VMs) the cluster has. Throws std::invalid_argument.
  UdpRuntime(uint16_t gateway_base, size_t servers);
  ~UdpRuntime();
  UdpRuntime(const UdpRuntime&) = delete;
  UdpRuntime& operator=(const UdpRuntime&) = delete;

  // A new client endpoint with `id` (a client id, storage-guests/common/ids.h).
  // Throws std::runtime_error if the socket cannot be made.
  UdpEnv& add_client(NodeId id);
  // A random client id, unique across runs with high probability (sessions
  // of a restarted client must not collide with its earlier ones).
  NodeId fresh_client_id();

  // Runs the loop until `done()` is true (checked after every event) or
  // `max_ns` of real time passed. Returns done().
  bool run_until(const std::function<bool()>& done, TimeNs max_ns);
  TimeNs now() const;

 private:
  friend class UdpEnv;
  struct Timer {
    UdpEnv* env;
  };
  TimerId add_timer(UdpEnv* env, TimeNs deadline);
  void cancel(TimerId id);
  bool address_of(NodeId server, sockaddr_in* out) const;

  uint16_t gateway_base_;
  size_t servers_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<UdpEnv>> envs_;
  std::map<std::pair<TimeNs, TimerId>, UdpEnv*> timers_;  // by deadline
  std::map<TimerId, TimeNs> deadline_of_;
  TimerId next_timer_ = 1;
  std::mt19937_64 id_rng_;
};

}  // namespace sg::clients
