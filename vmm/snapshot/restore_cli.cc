#include "vmm/snapshot/restore_cli.h"

#include <iostream>

#include "vmm/cli.h"
#include "vmm/cluster.h"
#include "vmm/machine.h"
#include "vmm/snapshot/snapshot_chain.h"

namespace vmm::snapshot {

RestoreOptions parse_restore_cli(const std::vector<std::string>& args) {
  RestoreOptions o;
  for (OptionReader opt(args); opt.next();) {
    const std::string& a = opt.word();
    const std::string& name = opt.name();
    if (name == "--console") o.console = opt.value();
    else if (name == "--control") {
      o.control = opt.value();
      if (o.control.empty()) throw UsageError("--control needs a socket path");
    } else if (name == "--stats" && !opt.has_inline_value()) o.stats = true;
    else if (a.rfind("-", 0) == 0) throw UsageError("unknown restore option '" + a + "' (try 'vmm --help')");
    else if (o.file.empty()) o.file = a;
    else throw UsageError("restore takes one snapshot file, not also '" + a + "'");
  }
  if (o.file.empty()) throw UsageError("restore needs a snapshot file");
  return o;
}

int run_restore(const RestoreOptions& o) {
  if (o.control.empty()) {
    auto m = Machine::restore(o.file, o.console, o.stats);
    std::cerr << "vmm: restored from " + o.file + "\n";
    return m->run();
  }
  // One VM on a switch with the control socket, as `vmm run --control`
  // makes it; its first machine comes from the snapshot. The snapshot's
  // configuration already carries the cluster's address plan.
  ClusterConfig cc;
  cc.vms = 1;
  cc.control = o.control;
  // Reading the chain twice (here for the configuration, then to restore)
  // keeps Cluster unaware of snapshots; the files are checked both times.
  VmConfig base = read_chain(o.file).back().meta.config;
  base.console = o.console;
  base.stats = o.stats;
  Cluster cluster(base, cc, MergeConfig{}, [&](int, MachineIo io, NetConnector connect) {
    auto m = Machine::restore(o.file, o.console, o.stats, std::move(io), std::move(connect));
    std::cerr << "vmm: restored from " + o.file + "\n";
    return m;
  });
  return cluster.run();
}

}  // namespace vmm::snapshot
