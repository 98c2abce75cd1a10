// A snapshot and the bases it builds on: an incremental snapshot holds only
// the pages dirtied since its base, so restoring it means reading the
// chain from the full snapshot at its root, oldest first.
#pragma once

#include <string>
#include <vector>

#include "vmm/snapshot/state_codec.h"

namespace vmm::snapshot {

constexpr size_t kMaxChainLength = 64;

struct ChainLink {
  std::string path;
  SnapshotMeta meta;
};

// Reads `file` and its bases, checking every section's CRC and that each
// base is the very snapshot the next one was taken against (its id), not a
// file written over it since. Oldest (the full snapshot) first. Throws
// SnapshotError with the file and the reason.
std::vector<ChainLink> read_chain(const std::string& file);

}  // namespace vmm::snapshot
