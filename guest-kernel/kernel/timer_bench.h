// Measurements run from the command line, for scripts/bench-timer:
//   timer-bench=N  a 10 ms periodic timer for N ticks; prints the mean and
//                  worst deviation of each tick from its deadline
//   idle=S         a 10 ms periodic timer for S seconds doing nothing else,
//                  so the host can measure what an idle guest costs it
#pragma once

#include <stdint.h>

uint32_t run_timer_bench(unsigned long ticks);
uint32_t run_idle(unsigned long seconds);
