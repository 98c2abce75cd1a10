// The network benchmark of the kernel command line, driven by
// scripts/bench-net: one VM streams or sends requests, the other counts or
// echoes, through whatever NIC the VM has (virtio-net or e1000). Guest only.
//
//   netbench=sink,PORT,SECONDS            count a stream; SECONDS is the
//                                         sender's, a bound on the wait
//   netbench=stream,IP:PORT,SIZE,SECONDS  UDP datagrams of SIZE payload
//                                         bytes as fast as the NIC takes
//                                         them, for SECONDS
//   netbench=rr,IP:PORT,SIZE,COUNT        COUNT request/response round trips
//                                         against netbench=echo or udp-echo=
//   netbench=echo,PORT                    echo server that marks the window
//
// Each side opens and closes its measurement window with the VMM's mark
// port (boot/platform.h), so `vmm --stats` reports the window's counters,
// and prints one machine-readable line, "netbench: MODE key=value ...",
// plus "netbench: nic ..." with the driver's own counters over the window.
// Wire protocol and argument syntax: bench_proto.h.
#pragma once

#include <stdint.h>

#include "guest-kernel/kernel/cmdline.h"

namespace net {

// Runs the benchmark the command line asks for (netbench=), if any: returns
// true and sets *status (0 ok, 1 failed). Bad arguments panic with the reason.
bool run_bench(const Cmdline& cmdline, uint32_t* status);

}  // namespace net
