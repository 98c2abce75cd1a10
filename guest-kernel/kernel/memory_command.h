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
//   mem-pattern=MiB[,S] allocate MiB of pages and fill them with checksummed
//                      patterns that repeat across pages (page i holds
//                      pattern i % 64) and are the same in every VM booted
//                      alike: food for same-page merging. For S seconds
//                      (default 0: one check) verify every page over and
//                      over, rewriting a few pages with new checksummed
//                      patterns each pass (so merged pages are copied on
//                      write); prints "mem-pattern: N pages, M verified,
//                      C corrupt, ..." and fails on any corrupt page
// Returns 0 when every command succeeded (or none was given), 1 otherwise:
// memory could not be had, no balloon device, not settled in time.
#pragma once

#include <stdint.h>

class Cmdline;

uint32_t run_memory_commands(const Cmdline& cmdline);
