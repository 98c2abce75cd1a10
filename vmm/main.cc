// vmm: boots a PVH kernel in a KVM virtual machine. See cli.h for usage.
#include <iostream>

#include "vmm/cli.h"
#include "vmm/cluster.h"
#include "vmm/machine.h"
#include "vmm/memory/merge_service.h"
#include "vmm/snapshot/restore_cli.h"

#ifndef VMM_VERSION
#define VMM_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace vmm;
  if (argc > 1 && std::string(argv[1]) == "restore") {
    snapshot::RestoreOptions options;
    try {
      options = snapshot::parse_restore_cli(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const UsageError& e) {
      std::cerr << "vmm: " << e.what() << "\n";
      return kExitUsage;
    }
    try {
      return snapshot::run_restore(options);
    } catch (const std::exception& e) {
      std::cerr << "vmm: " << e.what() << "\n";
      return kExitVmmError;
    }
  }
  CliResult cli;
  try {
    cli = parse_cli(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "vmm: " << e.what() << "\n";
    return kExitUsage;
  }
  switch (cli.command) {
    case CliCommand::kHelp: std::cout << usage_text(); return 0;
    case CliCommand::kVersion: std::cout << "vmm " << VMM_VERSION << "\n"; return 0;
    case CliCommand::kRun: break;
  }
  try {
    if (cli.cluster.vms > 0) {
      Cluster cluster(cli.config, cli.cluster, cli.merge);
      return cluster.run();
    }
    // The merger outlives the VM (declared first); a lone VM merges with itself.
    std::unique_ptr<MergeService> merge;
    if (cli.merge.mode != MergeMode::kOff) merge = std::make_unique<MergeService>(cli.merge);
    MachineIo io;
    io.merge = merge.get();
    Machine machine(cli.config, std::move(io));
    const int status = machine.run();
    if (merge && cli.config.stats) std::cerr << "vmm: " + merge->summary();
    return status;
  } catch (const std::exception& e) {
    std::cerr << "vmm: " << e.what() << "\n";
    return kExitVmmError;
  }
}
