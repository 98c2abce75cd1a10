// Runs a fault probe with the exception handler armed to catch it, for the
// self-tests. Returns the vector raised, or -1 if the probe did not fault.
#pragma once

#include <stdint.h>

#include "guest-kernel/arch/x86/fault_probes.h"
#include "guest-kernel/arch/x86/interrupts.h"

template <typename Probe>
int64_t catch_exception(Probe probe, uint64_t* error_code = nullptr, uint64_t* cr2 = nullptr) {
  x86::ExpectedFault& ef = x86::expected_fault();
  ef = {};
  ef.resume_rip = reinterpret_cast<uint64_t>(&fault_probe_resume);
  ef.armed = true;
  const uint64_t faulted = probe();
  ef.armed = false;
  if (!faulted || !ef.hit) return -1;
  if (error_code) *error_code = ef.error_code;
  if (cr2) *cr2 = ef.cr2;
  return static_cast<int64_t>(ef.vector);
}
