#include "guest-kernel/service/service.h"

#include <string.h>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/net/net_boot.h"
#include "guest-kernel/service/guest_env.h"
#include "guest-kernel/service/log_storage.h"
#include "storage-guests/common/ids.h"
#include "storage-guests/common/transport.h"
#include "storage-guests/raft/kv_node.h"

namespace service {
namespace {

constexpr uint64_t kStatusPeriodNs = 5'000'000'000ull;

// One line every few seconds while something changed: role, term, commit
// and applied index, so a console shows the cluster converging.
void report_status(const sg::raft::RaftKvNode& node, const GuestEnv& env) {
  static sg::raft::Role last_role{};
  static sg::raft::Term last_term = 0;
  static sg::raft::Index last_applied = ~0ull;
  const auto& r = node.raft();
  if (r.role() == last_role && r.term() == last_term && node.applied() == last_applied) return;
  last_role = r.role();
  last_term = r.term();
  last_applied = node.applied();
  kprintf("raft: node %u %s term %lu applied %lu, %zu keys; datagrams in %lu out %lu rejected %lu\n",
          env.self(), node.is_leader() ? "leader" : "follower/candidate", static_cast<unsigned long>(r.term()),
          static_cast<unsigned long>(node.applied()), node.store().data().size(), static_cast<unsigned long>(env.stats().received),
          static_cast<unsigned long>(env.stats().sent), static_cast<unsigned long>(env.stats().rejected));
}

[[noreturn]] void run_raft(const Cmdline& cmdline) {
  unsigned long node_id = 0, nodes = 0;
  if (!cmdline.get_uint("node", &node_id) || !cmdline.get_uint("nodes", &nodes)) {
    panic("service=raft needs node=K and nodes=N");
  }
  if (nodes < 1 || nodes > sg::kMaxClusterSize || node_id < 1 || node_id > nodes) {
    panic("service=raft: node=%lu nodes=%lu: need 1 <= node <= nodes <= %zu", node_id, nodes, sg::kMaxClusterSize);
  }
  net::Stack* stack = net::stack();
  if (!stack) panic("service=raft needs the network (ip= and a NIC)");
  if (stack->address().value != sg::server_ip(static_cast<sg::NodeId>(node_id))) {
    panic("service=raft: node %lu must have address 10.0.0.%lu (the cluster's address plan)", node_id,
          sg::kFirstServerHost + node_id - 1);
  }

  block::BlockLog* log = nullptr;
  std::vector<sg::Bytes> recovered = open_and_replay(log, 0x52414654'00000000ull | node_id);  // "RAFT"

  sg::raft::RaftKvNode* node = nullptr;
  auto* storage = new LogStorage(*log, std::move(recovered), [&node](uint64_t token) {
    if (node) node->on_sync(token);
  });
  auto* env = new GuestEnv(*stack, static_cast<sg::NodeId>(node_id), *storage);
  sg::raft::KvNodeConfig cfg;
  for (sg::NodeId id = 1; id <= nodes; ++id) cfg.servers.push_back(id);
  cfg.lease_reads = cmdline.has("raft-lease");
  node = new sg::raft::RaftKvNode(*env, cfg);
  env->attach(node);
  node->start();
  kprintf("raft: node %lu of %lu up at 10.0.0.%lu:%u\n", node_id, nodes, sg::kFirstServerHost + node_id - 1,
          sg::kServicePort);
  EventLoop::instance().add_timer(kStatusPeriodNs, [node, env] { report_status(*node, *env); }, kStatusPeriodNs);
  EventLoop::instance().run();
  panic("raft: the event loop stopped");
}

}  // namespace

bool run_from_cmdline(const Cmdline& cmdline) {
  char name[16];
  if (!cmdline.get("service", name, sizeof name)) return false;
  if (strcmp(name, "raft") == 0) run_raft(cmdline);
  panic("service=%s: unknown service (raft)", name);
}

}  // namespace service
