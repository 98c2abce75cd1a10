#include "vmm/memory/page_merger.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "vmm/guest_memory.h"

namespace vmm {
namespace {

constexpr uint64_t kPoolGrowPages = 256;  // ftruncate and remap the view in steps
constexpr uint64_t kPagemapFile = 1ull << 61;
constexpr uint64_t kPagemapPresent = 1ull << 63;

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

uint64_t max_map_count() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  uint64_t v = 65530;  // the kernel's default
  f >> v;
  return v;
}

bool is_zero_page(const uint8_t* p) {
  static const uint8_t zeros[PageMerger::kPageSize] = {};
  return std::memcmp(p, zeros, PageMerger::kPageSize) == 0;
}

}  // namespace

uint64_t hash_page(const uint8_t* page, bool* all_zero) {
  // A multiply-xorshift over 64-bit words: fast enough to scan thousands of
  // pages per millisecond, and only a filter (merges compare bytes).
  uint64_t h = 0x9e3779b97f4a7c15ull, any = 0;
  for (size_t i = 0; i < PageMerger::kPageSize; i += 8) {
    uint64_t w;
    std::memcpy(&w, page + i, 8);
    any |= w;
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
  }
  h ^= h >> 33;
  *all_zero = any == 0;
  return h == 0 ? 1 : h;
}

PageMerger::PageMerger(Quiesce quiesce) : quiesce_(std::move(quiesce)) {
  memfd_ = ::memfd_create("vmm-merged-pages", MFD_CLOEXEC);
  if (memfd_ < 0) throw sys_error("memfd_create for merged pages");
  // Each merge can add two VMAs; keep well clear of the limit so the rest
  // of the VMM (threads, io_uring, other VMs) can still map memory.
  const uint64_t limit = max_map_count();
  merge_limit_ = limit > 8192 ? (limit - 8192) / 2 : 0;
  pagemap_fd_ = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

PageMerger::~PageMerger() {
  if (pool_view_) ::munmap(pool_view_, pool_view_pages_ * kPageSize);
  ::close(memfd_);
  if (pagemap_fd_ >= 0) ::close(pagemap_fd_);
}

void PageMerger::add(GuestMemory& memory, std::string name) {
  std::lock_guard lock(mu_);
  ++generation_;
  for (const auto& r : memory.regions()) {
    Vm vm{&memory, name, r.host, r.size / kPageSize, {}, {}, {}};
    vm.last_hash.assign(vm.pages, 0);
    vm.state.assign(vm.pages, kPrivate);
    vm.in_pool_mapping.assign(vm.pages, false);
    vms_.push_back(std::move(vm));
  }
}

void PageMerger::remove(const GuestMemory& memory) {
  std::lock_guard lock(mu_);
  ++generation_;
  // Its mappings go with its RAM: they no longer count against the limit.
  for (const Vm& vm : vms_) {
    if (vm.memory != &memory) continue;
    const uint64_t n = static_cast<uint64_t>(std::count(vm.in_pool_mapping.begin(), vm.in_pool_mapping.end(), true));
    merged_pages_ -= std::min(merged_pages_, n);
  }
  std::erase_if(vms_, [&](const Vm& vm) { return vm.memory == &memory; });
  cursor_vm_ = 0;
  cursor_page_ = 0;
  unmatched_.clear();
}

void PageMerger::scan(uint64_t budget) {
  std::vector<Candidate> batch;
  uint64_t generation;
  {
    std::unique_lock lock(mu_);
    if (vms_.empty()) return;
    generation = generation_;
    choose(budget, batch);
    if (batch.empty()) return;
    ++stats_.batches;
  }
  // Without the lock (see the header): the callback stops the writers,
  // then the merges run under the lock again, re-checking every page.
  quiesce_([&] {
    std::lock_guard lock(mu_);
    if (generation != generation_) return;  // a VM came or went: indices are stale
    merge_batch(batch);
  });
}

void PageMerger::choose(uint64_t budget, std::vector<Candidate>& batch) {
  // Pages with nothing behind them (never written, dropped, or merged and
  // not touched since) read as zeroes or as their pool page: there is
  // nothing to hash, so, as KSM does, they cost no budget; pagemap tells
  // them apart a run at a time. At most one full pass per call, so a
  // mostly empty guest does not make a tick spin.
  const uint64_t total = [&] {
    uint64_t t = 0;
    for (const Vm& vm : vms_) t += vm.pages;
    return t;
  }();
  std::vector<uint64_t> entries;
  uint64_t hashed = 0, walked = 0;
  while (hashed < budget && walked < total) {
    Vm& vm = vms_[cursor_vm_];
    const uint64_t run = std::min<uint64_t>({budget - hashed, vm.pages - cursor_page_, 4096});
    present_bits(vm, cursor_page_, run, entries);
    for (uint64_t i = 0; i < run; ++i) {
      if (!entries[i]) continue;
      visit(cursor_vm_, cursor_page_ + i, batch);
      ++hashed;
    }
    walked += run;
    cursor_page_ += run;
    if (cursor_page_ == vm.pages) {
      cursor_page_ = 0;
      if (++cursor_vm_ == vms_.size()) {
        cursor_vm_ = 0;
        ++stats_.full_scans;
        unmatched_.clear();  // a twin must be seen within one pass
      }
    }
  }
  stats_.pages_scanned += hashed;
}

void PageMerger::present_bits(const Vm& vm, uint64_t first, uint64_t n, std::vector<uint64_t>& out) const {
  out.assign(n, 1);
  if (pagemap_fd_ < 0) return;  // no pagemap: every page is looked at
  const off_t at = static_cast<off_t>((reinterpret_cast<uintptr_t>(vm.base) / kPageSize + first) * 8);
  if (::pread(pagemap_fd_, out.data(), n * 8, at) != static_cast<ssize_t>(n * 8)) {
    out.assign(n, 1);
    return;
  }
  for (uint64_t& e : out) e = (e & kPagemapPresent) ? 1 : 0;
}

void PageMerger::visit(size_t vm_index, uint64_t page, std::vector<Candidate>& batch) {
  Vm& vm = vms_[vm_index];
  bool zero = false;
  const uint64_t h = hash_page(page_ptr(vm, page), &zero);
  const uint64_t previous = vm.last_hash[page];
  vm.last_hash[page] = h;
  if (h != previous) {
    // Written since the last visit: a merged or dropped page was copied on
    // write, and a volatile page is not worth merging yet.
    vm.state[page] = kPrivate;
    return;
  }
  if (vm.state[page] != kPrivate) return;  // already shared
  if (zero) {
    // A zero page with no memory of its own behind it (never written)
    // costs nothing: no quiesce, no system call, nothing counted.
    if (!vm.in_pool_mapping[page] && !privately_backed(vm, page)) {
      vm.state[page] = kZeroUnbacked;
      return;
    }
    batch.push_back({Candidate::kZero, vm_index, page, h});
    return;
  }
  if (pool_by_hash_.count(h)) {
    batch.push_back({Candidate::kOntoPool, vm_index, page, h});
    return;
  }
  auto [it, inserted] = unmatched_.try_emplace(h, vm_index, page);
  if (!inserted && it->second != std::make_pair(vm_index, page)) {
    batch.push_back({Candidate::kPair, vm_index, page, h, it->second.first, it->second.second});
    unmatched_.erase(it);
  }
}

void PageMerger::merge_batch(const std::vector<Candidate>& batch) {
  for (const Candidate& c : batch) {
    Vm& vm = vms_[c.vm];
    const uint8_t* p = page_ptr(vm, c.page);
    if (vm.state[c.page] != kPrivate) continue;
    switch (c.kind) {
      case Candidate::kZero:
        if (!is_zero_page(p)) ++stats_.raced;
        else if (!vm.in_pool_mapping[c.page] && !privately_backed(vm, c.page)) vm.state[c.page] = kZeroUnbacked;
        else drop_zero(vm, c.page);
        break;
      case Candidate::kOntoPool:
        if (!merge_onto_existing(c)) ++stats_.raced;
        break;
      case Candidate::kPair: {
        // An earlier entry of this batch may have pooled this content
        // already; then both pages simply join that pool page.
        Vm& twin = vms_[c.twin_vm];
        const Candidate twin_c{Candidate::kOntoPool, c.twin_vm, c.twin_page, c.hash};
        if (merge_onto_existing(c)) {
          if (twin.state[c.twin_page] == kPrivate) merge_onto_existing(twin_c);
          break;
        }
        const uint8_t* q = page_ptr(twin, c.twin_page);
        bool zero = false;
        if (twin.state[c.twin_page] != kPrivate || hash_page(p, &zero) != c.hash ||
            std::memcmp(p, q, kPageSize) != 0) {
          ++stats_.raced;
          break;
        }
        if (merged_pages_ + 2 > merge_limit_) {
          ++stats_.limit_hits;
          return;
        }
        const uint64_t k = add_pool_page(p);
        remap_onto_pool(vm, c.page, k);
        remap_onto_pool(twin, c.twin_page, k);
        break;
      }
    }
  }
}

bool PageMerger::merge_onto_existing(const Candidate& c) {
  Vm& vm = vms_[c.vm];
  const uint8_t* p = page_ptr(vm, c.page);
  auto [begin, end] = pool_by_hash_.equal_range(c.hash);
  for (auto it = begin; it != end; ++it) {
    if (std::memcmp(p, pool_page(it->second), kPageSize) == 0) {
      if (merged_pages_ >= merge_limit_ && !vm.in_pool_mapping[c.page]) {
        ++stats_.limit_hits;
        return false;
      }
      return remap_onto_pool(vm, c.page, it->second);
    }
  }
  return false;
}

bool PageMerger::remap_onto_pool(Vm& vm, uint64_t page, uint64_t pool_index) {
  void* at = page_ptr(vm, page);
  void* p = ::mmap(at, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, memfd_,
                   static_cast<off_t>(pool_index * kPageSize));
  if (p == MAP_FAILED) {
    // The kernel checks the VMA limit before it unmaps anything, so the
    // old page is still in place; stop merging rather than risk it again.
    merge_limit_ = merged_pages_;
    return false;
  }
  vm.state[page] = kMerged;
  // Counted once per page in a pool mapping (the VMA budget), not per
  // merge: a page copied on write and merged again stays in the mapping.
  if (!vm.in_pool_mapping[page]) ++merged_pages_;
  vm.in_pool_mapping[page] = true;
  ++stats_.merges;
  return true;
}

bool PageMerger::privately_backed(const Vm& vm, uint64_t page) const {
  if (pagemap_fd_ < 0) return true;
  constexpr uint64_t kExclusive = 1ull << 56;
  uint64_t entry = 0;
  const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(page_ptr(vm, page)) / kPageSize * 8);
  if (::pread(pagemap_fd_, &entry, 8, at) != 8) return true;
  return (entry & kPagemapPresent) && (entry & kExclusive);
}

bool PageMerger::drop_zero(Vm& vm, uint64_t page) {
  void* at = page_ptr(vm, page);
  if (vm.in_pool_mapping[page]) {
    void* p = ::mmap(at, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                     -1, 0);
    if (p == MAP_FAILED) return false;
    vm.in_pool_mapping[page] = false;
    if (merged_pages_ > 0) --merged_pages_;
  } else if (::madvise(at, kPageSize, MADV_DONTNEED) != 0) {
    return false;
  }
  vm.state[page] = kZeroDropped;
  ++stats_.zero_pages_dropped;
  return true;
}

void PageMerger::grow_pool_view(uint64_t pages) {
  if (pages <= pool_view_pages_) return;
  const uint64_t want = (pages + kPoolGrowPages - 1) / kPoolGrowPages * kPoolGrowPages;
  if (::ftruncate(memfd_, static_cast<off_t>(want * kPageSize)) != 0) throw sys_error("growing the page pool");
  void* view = ::mmap(nullptr, want * kPageSize, PROT_READ, MAP_SHARED, memfd_, 0);
  if (view == MAP_FAILED) throw sys_error("mapping the page pool");
  if (pool_view_) ::munmap(pool_view_, pool_view_pages_ * kPageSize);
  pool_view_ = static_cast<uint8_t*>(view);
  pool_view_pages_ = want;
}

uint64_t PageMerger::add_pool_page(const uint8_t* content) {
  const uint64_t index = pool_pages_;
  grow_pool_view(index + 1);
  if (::pwrite(memfd_, content, kPageSize, static_cast<off_t>(index * kPageSize)) != static_cast<ssize_t>(kPageSize)) {
    throw sys_error("writing the page pool");
  }
  bool zero = false;
  pool_by_hash_.emplace(hash_page(content, &zero), index);
  ++pool_pages_;
  stats_.pool_pages = pool_pages_;
  return index;
}

uint64_t PageMerger::count_file_backed() const {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t count = 0;
  std::vector<uint64_t> entries(4096);
  for (const Vm& vm : vms_) {
    const uint64_t first = reinterpret_cast<uintptr_t>(vm.base) / kPageSize;
    for (uint64_t done = 0; done < vm.pages; done += entries.size()) {
      const uint64_t n = std::min<uint64_t>(entries.size(), vm.pages - done);
      const ssize_t got = ::pread(fd, entries.data(), n * 8, static_cast<off_t>((first + done) * 8));
      if (got != static_cast<ssize_t>(n * 8)) break;
      for (uint64_t i = 0; i < n; ++i) {
        if (vm.state[done + i] != kMerged) continue;
        // A copy-on-write turns the page into a present anonymous one; a
        // page still backed by the pool is file-backed, or not yet faulted in.
        const bool private_copy = (entries[i] & kPagemapPresent) && !(entries[i] & kPagemapFile);
        if (!private_copy) ++count;
      }
    }
  }
  ::close(fd);
  return count;
}

uint64_t PageMerger::pages_sharing() const {
  std::lock_guard lock(mu_);
  return count_file_backed();
}

uint64_t PageMerger::pages_zero() const {
  std::lock_guard lock(mu_);
  return pages_zero_locked();
}

MergerStats PageMerger::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t PageMerger::vm_count() const {
  std::lock_guard lock(mu_);
  return vms_.size();
}

uint64_t PageMerger::pages_zero_locked() const {
  uint64_t n = 0;
  for (const Vm& vm : vms_) {
    for (uint64_t p = 0; p < vm.pages; ++p) {
      if (vm.state[p] == kZeroDropped && is_zero_page(page_ptr(vm, p))) ++n;
    }
  }
  return n;
}

uint64_t PageMerger::bytes_saved() const {
  std::lock_guard lock(mu_);
  const uint64_t sharing = count_file_backed();
  const uint64_t shared_net = sharing > pool_pages_ ? sharing - pool_pages_ : 0;
  return (shared_net + pages_zero_locked()) * kPageSize;
}

int PageMerger::release(uint8_t* host, uint64_t len) {
  if (reinterpret_cast<uintptr_t>(host) % kPageSize || len % kPageSize) return EINVAL;
  std::lock_guard lock(mu_);
  uint8_t* const end = host + len;
  uint8_t* p = host;
  while (p < end) {
    // The VM region holding p, if any: the balloon only names guest RAM,
    // but a range outside every region we track is still released plainly.
    Vm* vm = nullptr;
    for (Vm& v : vms_) {
      if (p >= v.base && p < v.base + v.pages * kPageSize) {
        vm = &v;
        break;
      }
    }
    if (!vm) {
      uint8_t* stop = end;
      for (const Vm& v : vms_)
        if (v.base > p && v.base < stop) stop = v.base;
      if (::madvise(p, static_cast<size_t>(stop - p), MADV_DONTNEED) != 0) return errno;
      p = stop;
      continue;
    }
    // A run of pages inside this VM that are all in, or all out of, a pool
    // mapping: one system call for the run.
    const uint64_t first = static_cast<uint64_t>(p - vm->base) / kPageSize;
    const uint64_t limit = std::min<uint64_t>(vm->pages, first + static_cast<uint64_t>(end - p) / kPageSize);
    const bool pooled = vm->in_pool_mapping[first];
    uint64_t last = first;
    while (last < limit && vm->in_pool_mapping[last] == pooled) ++last;
    const size_t bytes = (last - first) * kPageSize;
    if (pooled) {
      // Anonymous again: zeroes until written, no host memory, and the
      // file mapping (one or more VMAs) is gone, so the VMA budget grows back.
      void* r = ::mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                       -1, 0);
      if (r == MAP_FAILED) return errno;
    } else if (::madvise(p, bytes, MADV_DONTNEED) != 0) {
      return errno;
    }
    for (uint64_t i = first; i < last; ++i) {
      if (vm->in_pool_mapping[i] && merged_pages_ > 0) --merged_pages_;
      vm->in_pool_mapping[i] = false;
      vm->state[i] = kPrivate;
      vm->last_hash[i] = 0;  // seen afresh: it must be stable again before a merge
    }
    ++stats_.released_runs;
    stats_.pages_released += last - first;
    if (pooled) stats_.pages_released_pooled += last - first;
    p += bytes;
  }
  return 0;
}

}  // namespace vmm
