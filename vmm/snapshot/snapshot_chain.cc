#include "vmm/snapshot/snapshot_chain.h"

#include <algorithm>

#include "vmm/snapshot/snapshot_file.h"

namespace vmm::snapshot {

std::vector<ChainLink> read_chain(const std::string& file) {
  std::vector<ChainLink> links;
  std::string path = file;
  for (;;) {
    if (links.size() == kMaxChainLength)
      throw SnapshotError("snapshot '" + file + "': more than " + std::to_string(kMaxChainLength) + " incremental snapshots in its chain");
    FileReader reader(path);
    Section s;
    bool have_meta = false;
    SnapshotMeta meta;
    // Every section is read (and its CRC checked) before anything is applied.
    while (reader.next(s)) {
      if (s.tag == tag("CONF")) {
        if (have_meta) throw SnapshotError("snapshot '" + path + "': two configuration sections");
        meta = decode_meta(s.payload, "snapshot '" + path + "'");
        have_meta = true;
      }
    }
    if (!have_meta) throw SnapshotError("snapshot '" + path + "': no configuration section");
    if (!links.empty()) {
      const ChainLink& child = links.back();
      if (meta.id != child.meta.base_id)
        throw SnapshotError("snapshot '" + path + "' is not the base '" + child.path +
                            "' was taken against (it was replaced since)");
      if (meta.config.mem_bytes != child.meta.config.mem_bytes)
        throw SnapshotError("snapshot '" + path + "' has another memory size than '" + child.path + "'");
    }
    links.push_back({path, meta});
    if (meta.base_id == 0) break;
    if (meta.base_path.empty()) throw SnapshotError("snapshot '" + path + "': an incremental snapshot without a base path");
    path = meta.base_path;
  }
  std::reverse(links.begin(), links.end());
  return links;
}

}  // namespace vmm::snapshot
