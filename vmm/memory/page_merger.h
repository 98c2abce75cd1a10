// Same-page merging across the VMs of one VMM process (issue [memory]):
// guest pages with identical contents are backed by one host page.
//
// How a page is shared: the merger keeps a pool of read-only reference
// pages in a memfd. Merging guest page P onto pool page k is
//   mmap(P, 4 KiB, RW, MAP_PRIVATE | MAP_FIXED, memfd, k * 4 KiB)
// which makes P read the pool page, and gives the guest a private copy the
// moment it writes (copy-on-write in the host kernel, transparent to KVM,
// which follows the mapping change through its MMU notifier). All-zero
// pages are not pooled: they are dropped (MADV_DONTNEED, or an anonymous
// remap for a page that was merged before), so they read the kernel's zero
// page until written. Zero pages with no memory of their own (never
// written: the guest's untouched RAM) are left alone and not counted as
// savings, which would flatter the merger.
//
// Which pages: like Linux KSM, a page is a candidate only once its hash
// was the same on two consecutive visits (volatile pages are skipped), and
// every merge is confirmed byte for byte, never on the hash alone.
//
// Safety: comparing and remapping must not race with writes to the page.
// Guest vCPUs and device threads (a virtio-blk read completing into guest
// RAM) both write it, so every batch of merges runs inside the caller's
// quiesce callback, which must stop both (Machine pauses vCPUs and drains
// device I/O) and re-checks equality under it.
//
// Threads: every public call takes the merger's lock, except that scan()
// lets go of it while it calls the quiesce callback (and takes it again
// inside, for the merges): the callback stops device threads, and one of
// them (the balloon's, in release()) may be waiting for this lock, so
// holding it across the callback would deadlock. Lock order: whatever the
// callback takes (vCPU pause, device locks) -> the merger's lock.
//
// Accounting is measured, not assumed: /proc/self/pagemap tells, for each
// guest page, whether it is still backed by the file (a pool page) or has
// been copied on write, so pages_sharing() counts only real sharing.
//
// Security caveat (documented in docs/architecture.md): merging across
// tenants is a side channel (write timing reveals whether another guest
// holds a page); it is off unless the user asks for it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vmm {

class GuestMemory;

struct MergerStats {
  uint64_t pages_scanned = 0;     // pages hashed, cumulative
  uint64_t full_scans = 0;        // complete passes over every VM's RAM
  uint64_t merges = 0;            // guest pages remapped onto a pool page
  uint64_t zero_pages_dropped = 0;
  uint64_t pool_pages = 0;        // distinct shared contents held
  uint64_t batches = 0;           // quiesce callbacks made
  uint64_t raced = 0;             // candidates that changed before the merge
  uint64_t limit_hits = 0;        // merges refused near vm.max_map_count
  uint64_t pages_released = 0;    // given back through release() (the balloon)
  uint64_t released_runs = 0;     // system calls release() made
  uint64_t pages_released_pooled = 0;  // of those, pages in a pool mapping (remapped anonymous)
};

class PageMerger {
 public:
  static constexpr uint64_t kPageSize = 4096;
  // Runs `work` with every writer of guest memory stopped (vCPUs paused,
  // device I/O drained), then lets them go.
  using Quiesce = std::function<void(const std::function<void()>& work)>;

  explicit PageMerger(Quiesce quiesce);
  ~PageMerger();
  PageMerger(const PageMerger&) = delete;
  PageMerger& operator=(const PageMerger&) = delete;

  // Adds the RAM of one VM; it must outlive the merger (or be removed).
  void add(GuestMemory& memory, std::string name);
  void remove(const GuestMemory& memory);

  // Hashes up to `budget` present pages (continuing where the last call
  // stopped, wrapping around, at most one full pass; pages with nothing
  // behind them are passed over for free) and merges what it can, in one
  // quiesced batch.
  void scan(uint64_t budget);

  // Gives guest pages [host, host + len) back to the host (the balloon's
  // release): afterwards they read zeroes and cost no host memory. A page
  // the merger mapped from the pool is remapped anonymous (MADV_DONTNEED
  // would show the pool page again, not zeroes); any other page is
  // MADV_DONTNEED'ed. The merger forgets what it knew of them. `host` and
  // `len` must be page-aligned; returns 0 or an errno.
  int release(uint8_t* host, uint64_t len);

  MergerStats stats() const;
  size_t vm_count() const;
  // Guest pages still backed by a pool page (read from pagemap), and the
  // guest pages that read the zero page because the merger dropped them.
  uint64_t pages_sharing() const;
  uint64_t pages_zero() const;
  // Host memory saved: guest pages sharing minus the pool pages behind them,
  // plus dropped zero pages that are still unbacked.
  uint64_t bytes_saved() const;

 private:
  struct Vm {
    GuestMemory* memory;
    std::string name;
    uint8_t* base;
    uint64_t pages;
    std::vector<uint64_t> last_hash;    // 0: not seen yet
    std::vector<uint8_t> state;         // PageState
    // The page lies in a file-backed mapping of the pool (merged once, even
    // if copied on write since): MADV_DONTNEED there would bring back the
    // pool page, not zeroes, so it is dropped by an anonymous remap.
    std::vector<bool> in_pool_mapping;
  };
  // kZeroUnbacked: a zero page that held no host memory of its own (never
  // written, or already released): nothing to drop and nothing saved, so
  // it is left alone and not counted.
  enum PageState : uint8_t { kPrivate = 0, kMerged = 1, kZeroDropped = 2, kZeroUnbacked = 3 };
  struct Candidate {
    enum Kind : uint8_t { kZero, kOntoPool, kPair } kind;
    size_t vm;
    uint64_t page;
    uint64_t hash;
    size_t twin_vm = 0;  // kPair: the page it matched earlier in this pass
    uint64_t twin_page = 0;
  };

  uint8_t* page_ptr(const Vm& vm, uint64_t page) const { return vm.base + page * kPageSize; }
  uint64_t pages_zero_locked() const;
  // Merges the batch; runs quiesced.
  void merge_batch(const std::vector<Candidate>& batch);
  bool remap_onto_pool(Vm& vm, uint64_t page, uint64_t pool_index);
  bool drop_zero(Vm& vm, uint64_t page);
  // pagemap: the page is backed by a private anonymous page of its own
  // (present and exclusively mapped, bit 56), not the kernel's zero page.
  bool privately_backed(const Vm& vm, uint64_t page) const;
  uint64_t add_pool_page(const uint8_t* content);
  const uint8_t* pool_page(uint64_t index) const { return pool_view_ + index * kPageSize; }
  void grow_pool_view(uint64_t pages);
  // The visiting part of scan(), lock held.
  void choose(uint64_t budget, std::vector<Candidate>& batch);
  // out[i] = 1 if page first+i of `vm` is present (pagemap bit 63).
  void present_bits(const Vm& vm, uint64_t first, uint64_t n, std::vector<uint64_t>& out) const;
  // Visits one page; may append a candidate to `batch`.
  void visit(size_t vm_index, uint64_t page, std::vector<Candidate>& batch);
  // Merges `c.vm/c.page` onto a pool page holding the same bytes, if any.
  bool merge_onto_existing(const Candidate& c);
  // pagemap bit 61: the page is file-backed (a pool page), not an anonymous copy.
  uint64_t count_file_backed() const;

  Quiesce quiesce_;
  mutable std::mutex mu_;  // everything below
  // Moves on every add()/remove(): a batch chosen before scan() let go of
  // the lock is dropped if the VMs changed meanwhile (its indices are stale).
  uint64_t generation_ = 0;
  std::vector<Vm> vms_;
  size_t cursor_vm_ = 0;
  uint64_t cursor_page_ = 0;
  int memfd_ = -1;
  int pagemap_fd_ = -1;  // /proc/self/pagemap; -1: every zero page is dropped
  uint8_t* pool_view_ = nullptr;      // read-only view of the whole pool
  uint64_t pool_view_pages_ = 0;
  uint64_t pool_pages_ = 0;
  // Merges stop here: each merged page can split its VMA in three, and the
  // kernel caps a process's VMAs at vm.max_map_count.
  uint64_t merge_limit_ = 0;
  uint64_t merged_pages_ = 0;
  // Stable contents: hash -> pool pages holding that hash (collisions kept).
  std::unordered_multimap<uint64_t, uint64_t> pool_by_hash_;
  // First stable page seen with a hash in this pass, waiting for a twin.
  std::unordered_map<uint64_t, std::pair<size_t, uint64_t>> unmatched_;
  MergerStats stats_;
};

// 64-bit hash of one 4 KiB page; 0 is never returned (0 means "unseen").
uint64_t hash_page(const uint8_t* page, bool* all_zero);

}  // namespace vmm
