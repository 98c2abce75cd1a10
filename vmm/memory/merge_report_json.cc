#include "vmm/memory/merge_report_json.h"

namespace vmm {

control::Json merge_report_json(const MergeReport& r) {
  using control::Json;
  Json j{{"mode", to_string(r.mode)}, {"vms", r.vms}};
  if (r.mode == MergeMode::kVmm) {
    j["pages_scanned"] = r.merger.pages_scanned;
    j["full_scans"] = r.merger.full_scans;
    j["merges"] = r.merger.merges;
    j["pool_pages"] = r.merger.pool_pages;
    j["pages_sharing"] = r.pages_sharing;
    j["pages_zero"] = r.pages_zero;
    j["bytes_saved"] = r.bytes_saved;
    j["scanner_cpu_seconds"] = r.scanner_cpu_seconds;
    j["raced"] = r.merger.raced;
    j["limit_hits"] = r.merger.limit_hits;
    j["batches"] = r.merger.batches;
    j["pages_released"] = r.merger.pages_released;
    j["pages_released_merged"] = r.merger.pages_released_pooled;
    j["quiesce_failures"] = r.quiesce_failures;
    j["pages_per_second"] = r.pages_per_second;
    j["ticks"] = r.ticks;
  } else if (r.mode == MergeMode::kKsm) {
    j["mergeable_bytes"] = r.mergeable_bytes;
    j["available"] = r.ksm.available;
    j["running"] = r.ksm.running;
    j["pages_shared"] = r.ksm.pages_shared;
    j["pages_sharing"] = r.ksm.pages_sharing;
    j["pages_unshared"] = r.ksm.pages_unshared;
    j["full_scans"] = r.ksm.full_scans;
    j["pages_to_scan"] = r.ksm.pages_to_scan;
    j["sleep_millisecs"] = r.ksm.sleep_millisecs;
    if (!r.ksm.note.empty()) j["note"] = r.ksm.note;
    if (!r.ksm_error.empty()) j["error"] = r.ksm_error;
  }
  return j;
}

}  // namespace vmm
