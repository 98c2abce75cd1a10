// The control socket's commands for a cluster (the nemesis's interface,
// DESIGN.md decision 7). Each translates one JSON request into a Cluster or
// Switch call; bad arguments get a one-line error reply, never an effect.
//
//   status                          every VM's state, exit status, boots, clock offset
//   stats                           the switch's and gateway's counters (text)
//   pause / resume / kill  {vm}     stop the vCPUs / let them go / power off
//   restart {vm, if_stopped?}       boot a stopped VM again (same disk)
//   partition {groups: [[0,1],[2]]} cut every link between the groups
//   isolate {vm}                    cut every link of one VM
//   link {from, to, cut?, drop?, dup?, delay_ms?, jitter_ms?, reorder?}
//                                   faults on one direction of one link
//   heal                            every link perfect again
//   clock {vm, offset_ms}           skew a VM's clock (may be negative)
//   balloon {vm?, target}           set the balloon target (bytes or "64M")
//   memory {vm?}                    balloon readings, the VMM's RSS, merging (--merge)
//   shutdown                        stop every VM; the VMM exits
#pragma once

#include "vmm/control/control_protocol.h"

namespace vmm {

class Cluster;

void add_cluster_commands(Cluster& cluster, control::CommandTable& table);

}  // namespace vmm
