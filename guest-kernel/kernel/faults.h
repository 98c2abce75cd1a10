// Deliberate CPU faults, requested with fault=KIND on the command line, so
// tests can check that each is reported (and that a triple fault reaches
// the VMM as a shutdown).
#pragma once

// Returns false if KIND is unknown; otherwise does not return.
bool trigger_fault(const char* kind);
