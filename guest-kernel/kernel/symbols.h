// Kernel symbol lookup for backtraces. The table is generated from the
// linked kernel by a second link pass (see guest-kernel/module.mk): it sits
// last in the image, so adding it moves no code.
#pragma once

#include <stddef.h>
#include <stdint.h>

// Writes "name+0xoff" for the function containing addr, or "?" if unknown.
void symbolize(uint64_t addr, char* out, size_t size);
// Address of a symbol by exact name; 0 if absent.
uint64_t symbol_address(const char* name);
size_t symbol_count();
