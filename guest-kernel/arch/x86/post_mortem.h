// What our VMM needs to explain a triple fault after the fact
// (boot/platform.h, PostMortemInfo): where the IDT, GDT, TSS, page tables
// and stacks are, and breadcrumbs of the last interrupt entries. A triple
// fault means that delivering a double fault failed, which only broken
// delivery structures (or a broken CPU) explain; on AMD the vCPU's
// registers are gone by the time the VMM hears of it, but guest RAM is not.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "boot/platform.h"

namespace x86 {
struct InterruptFrame;
}

namespace x86::post_mortem {

// Records stack `slot` (0: the main stack, 1-4: IST 1-4): its top and its
// size; `guarded` says an unmapped guard page lies right below it.
void set_stack(unsigned slot, uint64_t top, size_t pages, bool guarded);
// Fills the layout from what the CPU has loaded (IDTR, GDTR, TR, CR3) and
// tells the VMM, if one listens on the post-mortem port.
void publish();
// The page tables changed: tells the VMM again so that its copy is
// current (nothing before the first publish()).
void tables_changed();

// Panics, saying which, if IDTR, GDTR, TR or CR3 differ from what
// publish() recorded: the kernel never reloads them after boot, so a change
// means something below us changed them, and the next interrupt would
// triple-fault without a word. Cheap (no exits under SVM with NPT): the
// event loop calls it before each halt.
void check_cpu_state();

// The interrupt entry path's breadcrumbs: a few stores each, with
// interrupts off (gates clear IF) on our single CPU.
void enter(const InterruptFrame& frame);
void leave();

// For the self-tests.
const platform::PostMortemInfo& info();

}  // namespace x86::post_mortem
