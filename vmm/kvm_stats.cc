#include "vmm/kvm_stats.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "vmm/kvm.h"

namespace vmm {
namespace {

// The fixed part of struct kvm_stats_desc, as C lays it out.
struct DescFixed {
  uint32_t flags;
  int16_t exponent;
  uint16_t size;
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(DescFixed) == 16);

constexpr size_t kMaxFileHead = 1 << 20;  // far above any real KVM's descriptor block

template <typename T>
T load(std::span<const uint8_t> bytes, size_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) {
    throw std::runtime_error("KVM statistics: truncated at offset " + std::to_string(offset));
  }
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

bool read_exact(int fd, void* dst, size_t len, off_t offset) {
  auto* p = static_cast<uint8_t*>(dst);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

}  // namespace

std::vector<KvmStats::Counter> KvmStats::parse_descriptors(std::span<const uint8_t> file, uint32_t* data_offset) {
  const auto header = load<kvm_stats_header>(file, 0);
  if (header.name_size == 0 || header.name_size > 4096) {
    throw std::runtime_error("KVM statistics: implausible name size " + std::to_string(header.name_size));
  }
  const size_t desc_size = sizeof(DescFixed) + header.name_size;
  std::vector<Counter> counters;
  for (uint32_t i = 0; i < header.num_desc; ++i) {
    const size_t at = header.desc_offset + static_cast<size_t>(i) * desc_size;
    const auto d = load<DescFixed>(file, at);
    if (at + desc_size > file.size()) throw std::runtime_error("KVM statistics: descriptor past the end");
    const char* name = reinterpret_cast<const char*>(file.data() + at + sizeof(DescFixed));
    const size_t name_len = strnlen(name, header.name_size);
    if (name_len == header.name_size) throw std::runtime_error("KVM statistics: unterminated name");
    const uint32_t type = d.flags & KVM_STATS_TYPE_MASK;
    const bool single = type == KVM_STATS_TYPE_CUMULATIVE || type == KVM_STATS_TYPE_INSTANT ||
                        type == KVM_STATS_TYPE_PEAK;
    if (single && d.size == 1)
      counters.push_back({std::string(name, name_len), d.offset, type == KVM_STATS_TYPE_CUMULATIVE});
  }
  *data_offset = header.data_offset;
  return counters;
}

std::optional<KvmStats> KvmStats::open(int kvm_object_fd) {
  int fd = ::ioctl(kvm_object_fd, KVM_GET_STATS_FD, nullptr);
  if (fd < 0) {
    if (errno == EINVAL || errno == ENOTTY || errno == ENOSYS) return std::nullopt;
    throw KvmError("KVM_GET_STATS_FD", errno);
  }
  // Read the head of the file: the header says how far the descriptors go.
  kvm_stats_header header{};
  if (!read_exact(fd, &header, sizeof header, 0)) {
    ::close(fd);
    throw std::runtime_error("KVM statistics: cannot read the header");
  }
  const uint64_t head_size = std::max<uint64_t>(header.data_offset, sizeof header);
  if (head_size > kMaxFileHead) {
    ::close(fd);
    throw std::runtime_error("KVM statistics: descriptor block of " + std::to_string(head_size) + " bytes");
  }
  std::vector<uint8_t> head(head_size);
  if (!read_exact(fd, head.data(), head.size(), 0)) {
    ::close(fd);
    throw std::runtime_error("KVM statistics: cannot read the descriptors");
  }
  uint32_t data_offset = 0;
  std::vector<Counter> counters;
  try {
    counters = parse_descriptors(head, &data_offset);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return KvmStats(fd, std::move(counters), data_offset);
}

KvmStats::KvmStats(int fd, std::vector<Counter> counters, uint32_t data_offset)
    : fd_(new int(fd), [](int* p) { ::close(*p); delete p; }),
      counters_(std::move(counters)),
      data_offset_(data_offset) {
  for (const auto& c : counters_) data_size_ = std::max(data_size_, c.offset + 8);
}

std::map<std::string, uint64_t> KvmStats::read() const {
  std::map<std::string, uint64_t> values;
  std::vector<uint8_t> data(data_size_);
  if (data_size_ && !read_exact(*fd_, data.data(), data.size(), data_offset_)) {
    throw std::runtime_error(std::string("KVM statistics: read failed: ") + std::strerror(errno));
  }
  for (const auto& c : counters_) {
    uint64_t v;
    std::memcpy(&v, data.data() + c.offset, sizeof v);
    values[c.name] = v;
  }
  return values;
}

std::map<std::string, uint64_t> KvmStats::read_cumulative() const {
  std::map<std::string, uint64_t> values = read();
  for (const auto& c : counters_)
    if (!c.cumulative) values.erase(c.name);
  return values;
}

}  // namespace vmm
