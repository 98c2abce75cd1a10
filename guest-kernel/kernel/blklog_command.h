// The block log from the command line, for the QEMU and integration tests
// (and for trying it by hand), on the first block device:
//   blklog=append:N  recover, append N records with distinct payloads, sync;
//                    prints "blklog: appended N records, synced"
//   blklog=append:N,hold  the same, then stays up (for kill -9 tests)
//   blklog=check     recover and print every intact record (sequence,
//                    sector, length, CRC-32C of the payload, first bytes),
//                    then where and why the scan stopped: "blklog: end of
//                    log at sector S (...)" or "blklog: corruption detected
//                    at sector S (reason)"
// Returns the exit status: 0 done (corruption found is a result, not a
// failure), 1 no device, the log cannot be opened, or an append failed.
#pragma once

#include <stdint.h>

uint32_t run_blklog_command(const char* arg);
