// Faulting instructions for the self-tests (see fault_probes.S).
#pragma once

#include <stdint.h>

extern "C" {
uint64_t probe_ud();
uint64_t probe_de();
uint64_t probe_load(uint64_t addr);
uint64_t probe_store(uint64_t addr);
uint64_t probe_bp();
void fault_probe_resume();
}
