#include "vmm/cluster_control.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "vmm/cluster.h"
#include "virtio/host/virtio_balloon.h"
#include "vmm/memory/merge_report_json.h"
#include "vmm/memory/process_memory.h"

namespace vmm {
namespace {

using control::CommandError;
using control::Json;

int get_vm(Cluster& c, const Json& args, const char* field = "vm") {
  const uint64_t vm = control::get_uint(args, field);
  if (vm >= static_cast<uint64_t>(c.vms())) {
    throw CommandError("no VM " + std::to_string(vm) + " (the cluster has VMs 0 to " + std::to_string(c.vms() - 1) +
                       ")");
  }
  return static_cast<int>(vm);
}

double get_probability(const Json& args, const char* field) {
  auto it = args.find(field);
  if (it == args.end()) return 0;
  if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
    throw CommandError(std::string("\"") + field + "\" must be a probability from 0 to 1");
  }
  return it->get<double>();
}

uint64_t get_ms_as_ns(const Json& args, const char* field) {
  const uint64_t ms = control::get_uint(args, field, /*required=*/false, 0);
  if (ms > 600'000) throw CommandError(std::string("\"") + field + "\" is at most 600000 ms");
  return ms * 1'000'000ull;
}

// Runs a cluster call, turning its exceptions into error replies.
template <typename F>
Json guarded(F&& f) {
  try {
    return f();
  } catch (const CommandError&) {
    throw;
  } catch (const std::exception& e) {
    throw CommandError(e.what());
  }
}

const char* state_name(Cluster::VmState s) {
  switch (s) {
    case Cluster::VmState::kRunning: return "running";
    case Cluster::VmState::kPaused: return "paused";
    case Cluster::VmState::kStopped: return "stopped";
  }
  return "?";
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Json vcpu_json(const VcpuProbe& p) {
  const uint32_t lvt = p.lvt_timer;
  const char* mode = ((lvt >> 17) & 3) == 2 ? "tsc-deadline" : ((lvt >> 17) & 3) == 1 ? "periodic" : "one-shot";
  Json timer{{"vector", lvt & 0xff}, {"masked", (lvt & (1u << 16)) != 0}, {"mode", mode}};
  // How far ahead the deadline is (negative: already past).
  if (p.tsc_deadline && p.tsc_khz) {
    const double ms = static_cast<double>(static_cast<int64_t>(p.tsc_deadline - p.tsc)) / p.tsc_khz;
    timer["deadline_ahead_ms"] = std::round(ms * 1000) / 1000;
  }
  Json j{{"vcpu", p.index},
         {"state", mp_state_name(p.mp_state)},
         {"rip", hex(p.rip)},
         {"interrupts_enabled", (p.rflags & (1u << 9)) != 0},
         {"interrupt_shadow", p.interrupt_shadow},
         {"tpr", p.tpr},
         {"ppr", p.ppr},
         {"in_service", p.in_service},
         {"requested", p.requested},
         {"timer", timer}};
  if (p.interrupt_injected) j["injecting"] = p.injected_vector;
  return j;
}

}  // namespace

void add_cluster_commands(Cluster& c, control::CommandTable& t) {
  t.add("status", "every VM's state", [&c](const Json&) {
    Json vms = Json::array();
    for (int i = 0; i < c.vms(); ++i) {
      const auto s = c.status(i);
      Json vm{{"vm", i}, {"state", state_name(s.state)}, {"boots", s.boots}, {"crashes", s.crashes},
              {"clock_offset_ms", s.clock_offset_ns / 1'000'000}};
      if (s.state == Cluster::VmState::kStopped) {
        vm["exit_status"] = s.exit_status;
        vm["killed"] = s.killed;
      }
      vms.push_back(vm);
    }
    return Json{{"vms", vms}};
  });
  t.add("stats", "switch and gateway counters", [&c](const Json&) { return Json{{"text", c.format_stats()}}; });
  t.add("pause", "stop a VM's vCPUs: {vm}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    return guarded([&] { c.pause(vm); return Json(); });
  });
  t.add("vcpus", "a VM's vCPUs: registers, LAPIC vectors in service and requested, timer: {vm}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    return guarded([&] {
      Json vcpus = Json::array();
      for (const VcpuProbe& p : c.probe_vcpus(vm)) vcpus.push_back(vcpu_json(p));
      return Json{{"vm", vm}, {"vcpus", vcpus}};
    });
  });
  t.add("resume", "let a paused VM run: {vm}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    return guarded([&] { c.resume(vm); return Json(); });
  });
  t.add("kill", "power a VM off: {vm}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    return guarded([&] { c.kill(vm); return Json(); });
  });
  t.add("restart", "boot a stopped VM again: {vm, if_stopped?}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    bool if_stopped = false;
    if (auto it = a.find("if_stopped"); it != a.end()) {
      if (!it->is_boolean()) throw CommandError("\"if_stopped\" must be true or false");
      if_stopped = it->get<bool>();
    }
    return guarded([&] { c.restart(vm, if_stopped); return Json(); });
  });
  t.add("partition", "cut every link between groups of VMs: {groups: [[0,1],[2]]}", [&c](const Json& a) {
    auto it = a.find("groups");
    if (it == a.end() || !it->is_array() || it->size() < 2) {
      throw CommandError("\"groups\" must be a list of at least two lists of VM indices");
    }
    std::vector<std::vector<std::string>> groups;
    for (const Json& g : *it) {
      if (!g.is_array() || g.empty()) throw CommandError("each group must be a non-empty list of VM indices");
      groups.emplace_back();
      for (const Json& v : g) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() >= static_cast<uint64_t>(c.vms())) {
          throw CommandError("groups hold VM indices from 0 to " + std::to_string(c.vms() - 1));
        }
        groups.back().push_back(cluster_port_name(v.get<int>()));
      }
    }
    return guarded([&] {
      c.network().partition(groups);
      return Json();
    });
  });
  t.add("isolate", "cut every link of a VM: {vm}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    return guarded([&] { c.network().isolate(cluster_port_name(vm)); return Json(); });
  });
  t.add("link", "faults on one direction: {from, to, cut?, drop?, dup?, delay_ms?, jitter_ms?, reorder?}",
        [&c](const Json& a) {
          const int from = get_vm(c, a, "from"), to = get_vm(c, a, "to");
          if (from == to) throw CommandError("\"from\" and \"to\" must differ");
          net::LinkFaults f;
          if (auto it = a.find("cut"); it != a.end()) {
            if (!it->is_boolean()) throw CommandError("\"cut\" must be true or false");
            f.cut = it->get<bool>();
          }
          f.drop_prob = get_probability(a, "drop");
          f.dup_prob = get_probability(a, "dup");
          f.reorder_prob = get_probability(a, "reorder");
          f.delay_ns = get_ms_as_ns(a, "delay_ms");
          f.jitter_ns = get_ms_as_ns(a, "jitter_ms");
          return guarded([&] {
            c.network().set_link(cluster_port_name(from), cluster_port_name(to), f);
            return Json();
          });
        });
  t.add("heal", "every link perfect again", [&c](const Json&) {
    c.network().heal_all();
    return Json();
  });
  t.add("clock", "skew a VM's clock: {vm, offset_ms}", [&c](const Json& a) {
    const int vm = get_vm(c, a);
    auto it = a.find("offset_ms");
    if (it == a.end() || !it->is_number_integer()) throw CommandError("\"offset_ms\" must be an integer");
    const int64_t ms = it->get<int64_t>();
    if (ms < -3'600'000 || ms > 3'600'000) throw CommandError("\"offset_ms\" is at most one hour either way");
    return guarded([&] { c.set_clock_offset(vm, ms * 1'000'000); return Json(); });
  });
  t.add("balloon", "set a VM's balloon target: {vm?, target: 4096|\"64M\"}", [&c](const Json& a) {
    const int vm = a.contains("vm") ? get_vm(c, a) : 0;
    const uint64_t target = control::get_size(a, "target");
    Json reply;
    guarded([&] {
      c.with_machine(vm, [&](Machine& m) {
        VirtioBalloonDevice* b = m.balloon();
        if (!b) throw CommandError("VM " + std::to_string(vm) + " has no balloon (start it with --balloon)");
        b->set_target_bytes(target);  // throws std::invalid_argument above guest RAM
        reply = Json{{"vm", vm}, {"target_bytes", b->target_bytes()}, {"actual_bytes", b->actual_bytes()},
                     {"released_bytes", b->released_bytes()}};
      });
      return Json();
    });
    return reply;
  });
  t.add("memory", "a VM's balloon and the VMM's memory: {vm?}", [&c](const Json& a) {
    const int vm = a.contains("vm") ? get_vm(c, a) : 0;
    Json reply{{"vm", vm}};
    guarded([&] {
      c.with_machine(vm, [&](Machine& m) {
        if (VirtioBalloonDevice* b = m.balloon()) {
          reply["balloon"] = Json{{"target_bytes", b->target_bytes()}, {"actual_bytes", b->actual_bytes()},
                                  {"released_bytes", b->released_bytes()}};
        }
      });
      return Json();
    });
    if (auto mem = read_process_memory()) reply["vmm_rss_bytes"] = mem->rss_bytes;
    // Merging is process-wide: every VM's pages, whichever `vm` was named.
    if (MergeService* merge = c.merge()) reply["merge"] = merge_report_json(merge->report());
    return reply;
  });
  t.add("snapshot", "save a VM to a file: {file, vm?, base?} (base: the VM's last snapshot, for an incremental one)",
        [&c](const Json& a) {
          const int vm = a.contains("vm") ? get_vm(c, a) : 0;
          const std::string file = control::get_string(a, "file");
          const std::string base = control::get_string(a, "base", /*required=*/false);
          if (file.empty()) throw CommandError("\"file\" must name the snapshot file");
          Json reply;
          guarded([&] {
            c.with_machine(vm, [&](Machine& m) {
              const Machine::SnapshotResult r = m.snapshot(file, base);
              reply = Json{{"vm", vm},
                           {"file", file},
                           {"kind", r.incremental ? "incremental" : "full"},
                           {"bytes", r.bytes},
                           {"pages", r.pages},
                           {"pause_ms", std::round(r.pause_ms * 1000) / 1000}};
            });
            return Json();
          });
          return reply;
        });
  t.add("shutdown", "stop every VM; the VMM exits", [&c](const Json&) {
    c.shutdown();
    return Json();
  });
}

}  // namespace vmm
