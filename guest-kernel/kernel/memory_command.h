// Memory commands on the kernel command line, run in the order they are
// written (so a test can touch memory, then let the balloon inflate, then
// touch again):
//   mem-touch=MiB      allocate MiB of memory page by page (through the
//                      allocator's low-memory hook, so a DEFLATE_ON_OOM
//                      balloon gives pages back), write every byte, check
//                      the pattern, free it all; prints "mem-touch: wrote N
//                      MiB ..., the balloon gave back P pages"
//   balloon-wait[=S]   run the event loop until the balloon reached its
//                      target with nothing in flight (at most S seconds,
//                      default 30); prints "balloon: target N pages, actual N"
//   balloon-demo[=S]   print "balloon: target N pages, actual M" at every
//                      new target and whenever the balloon reaches it, for
//                      S seconds (without S: until the VMM stops the VM)
// Returns 0 when every command succeeded (or none was given), 1 otherwise:
// memory could not be had, no balloon device, not settled in time.
#pragma once

#include <stdint.h>

class Cmdline;

uint32_t run_memory_commands(const Cmdline& cmdline);
