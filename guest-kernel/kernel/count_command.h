// `count[=MS]` on the kernel command line: prints "count: N" with N = 1,
// 2, 3... every MS milliseconds (default 200) from the event loop's
// periodic timer, forever (the VMM ends the VM). The snapshot tests watch
// it: after a restore the count goes on from where it stopped, because the
// counter lives in guest RAM and the timer in the restored LAPIC and clock.
#pragma once

class Cmdline;

// Returns only if `count` is not on the command line; a bad period prints
// why and returns true with *status set.
bool run_count_command(const Cmdline& cmdline, unsigned* status);
