// The guest's network bring-up and the command-line demos. Guest only.
//
//   ip=A.B.C.D [mask=N|A.B.C.D] [gw=A.B.C.D]   configure the first NIC
//   ping=IP[,COUNT[,INTERVAL_MS]]   one line per reply, a summary; exit 0
//                                   only if every reply came
//   udp-echo=PORT[,N]               echo server; with N, exit 0 after N
//   linger=MS                       after a demo, stay on the network MS ms
//   udp-send=IP:PORT[,N[,SIZE]]     N datagrams (of SIZE bytes, up to
//                                   65507: fragmented above 1472), each
//                                   awaiting its echo; "udp: N sent, M
//                                   echoed", exit 0 if M == N
//   net-stats                       print the counters after a demo
//   net-peer=IP                     no NIC: an in-memory cable to a second
//                                   in-kernel stack at IP (answers ping,
//                                   echoes UDP port 7), to run the demos
#pragma once

#include <stdint.h>

#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/net/stack.h"

namespace net {

// Brings the stack up on the first registered NIC when the command line
// has ip=. Call once, after the drivers have registered their devices.
// A malformed ip=/mask=/gw= panics with the reason (a typo must not boot
// into a silently unreachable VM); ip= without a NIC says so and goes on.
void boot_init(const Cmdline& cmdline);

// The running stack, or nullptr.
Stack* stack();

// Prints every nonzero counter, one line per protocol ("net: ip rx=3 ...").
void print_stats(const NetStats& stats);

// Runs the demo the command line asks for, if any: returns true and sets
// *status (0 ok, 1 failed) when one ran. udp-echo without N never returns.
bool run_demos(const Cmdline& cmdline, uint32_t* status);

}  // namespace net
