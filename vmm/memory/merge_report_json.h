// The control socket's view of same-page merging: the `memory` command's
// "merge" object (vmm/cluster_control.cc), built from a MergeReport.
//   vmm: {"mode":"vmm", "vms", "pages_scanned", "full_scans", "merges",
//         "pool_pages", "pages_sharing", "pages_zero", "bytes_saved",
//         "scanner_cpu_seconds", "raced", "limit_hits", "batches", "pages_released", "pages_released_merged",
//         "quiesce_failures", "pages_per_second", "ticks"}
//   ksm: {"mode":"ksm", "vms", "mergeable_bytes", "available", "running",
//         "pages_shared", "pages_sharing", "pages_unshared", "full_scans",
//         "pages_to_scan", "sleep_millisecs", "note"?, "error"?}
// KSM's counters are the host's, over every process that asked for KSM.
#pragma once

#include "vmm/control/control_protocol.h"
#include "vmm/memory/merge_service.h"

namespace vmm {

control::Json merge_report_json(const MergeReport& r);

}  // namespace vmm
