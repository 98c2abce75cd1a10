// `vmm restore FILE [--console PATH] [--control PATH] [--stats]`: continues
// a VM saved by `snapshot` (control socket) in this new process. Without
// --control it runs as a lone VM (a NIC, if any, goes nowhere); with it, as
// a cluster of one VM on a switch, serving the control socket (so it can be
// snapshotted again, paused, killed...).
#pragma once

#include <string>
#include <vector>

namespace vmm::snapshot {

struct RestoreOptions {
  std::string file;
  std::string console;  // empty: stdout
  std::string control;  // empty: no control socket
  bool stats = false;
};

// `args` start after "restore"; throws UsageError (vmm/cli.h).
RestoreOptions parse_restore_cli(const std::vector<std::string>& args);
// Restores and runs the VM; returns the VMM's exit status (as `vmm run`).
int run_restore(const RestoreOptions& options);

}  // namespace vmm::snapshot
