// The service runtime: runs one storage-service node inside the guest
// kernel, the same state machine the simulator runs, on the real network
// stack and disk (DESIGN.md decision 5).
//
//   service=raft node=K nodes=N [raft-lease]   the Raft key-value server
//                                              with id K of servers 1..N
//
// Needs the network up (ip=, see guest-kernel/net/net_boot.h) and a disk.
// Runs forever; the node's state lives in its block log, so a VM that is
// killed and booted again on the same disk resumes where it was.
#pragma once

#include "guest-kernel/kernel/cmdline.h"

namespace service {

// Runs the service the command line names and never returns; returns
// false if the command line names none. A malformed service line panics
// with the reason.
bool run_from_cmdline(const Cmdline& cmdline);

}  // namespace service
