#include "vmm/memory/process_memory.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace vmm {
namespace {

// "VmRSS:\t  123456 kB" -> bytes; nullopt if `line` is not that field.
std::optional<uint64_t> field_kib(std::string_view line, std::string_view name) {
  if (line.substr(0, name.size()) != name || line.size() <= name.size() || line[name.size()] != ':')
    return std::nullopt;
  line.remove_prefix(name.size() + 1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  uint64_t kib = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), kib);
  if (ec != std::errc() || std::string_view(end, line.data() + line.size() - end) != " kB") return std::nullopt;
  return kib << 10;
}

}  // namespace

std::optional<ProcessMemory> parse_process_memory(std::string_view status) {
  std::optional<uint64_t> rss, hwm;
  while (!status.empty()) {
    const size_t nl = status.find('\n');
    const std::string_view line = status.substr(0, nl);
    if (auto v = field_kib(line, "VmRSS")) rss = v;
    if (auto v = field_kib(line, "VmHWM")) hwm = v;
    if (nl == std::string_view::npos) break;
    status.remove_prefix(nl + 1);
  }
  if (!rss || !hwm) return std::nullopt;
  return ProcessMemory{*rss, *hwm};
}

std::optional<ProcessMemory> read_process_memory() {
  std::ifstream f("/proc/self/status");
  if (!f) return std::nullopt;
  std::stringstream text;
  text << f.rdbuf();
  return parse_process_memory(text.str());
}

}  // namespace vmm
