// The VMM's side of the post-mortem protocol (boot/platform.h,
// PostMortemInfo): explains a guest triple fault after the fact.
//
// A triple fault means the CPU could not deliver a double fault: the IDT,
// GDT, TSS, an IST stack or the page tables that map them were broken, or
// the CPU (here often an emulated one) misbehaved. On AMD SVM, KVM resets
// the vCPU at the shutdown intercept, so the registers at the fault are
// lost; guest RAM is not. So when the guest tells us where those structures
// are, we copy them, and at a crash we compare guest RAM against the
// copies, walk the guest's current page tables for every page that
// delivery needs, measure how deep each stack was used, and print the
// guest's breadcrumbs (its last interrupt entries).
//
// Everything the guest hands us is hostile input: addresses and sizes are
// checked against RAM and bounded; a bad report is refused (and said so in
// the crash report) and the previous good one kept.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "boot/platform.h"
#include "vmm/guest_memory.h"

namespace vmm {

class PostMortem {
 public:
  explicit PostMortem(const GuestMemory& mem) : mem_(mem) {}

  // The guest wrote the GPA of its PostMortemInfo: copy what it describes.
  // Returns false, keeping the previous copies, if the report is unusable
  // (the reason is kept for report()). Safe from any vCPU thread.
  bool take(uint64_t info_gpa);

  // The post-mortem text for a crash report, one finding per line, each
  // prefixed with `prefix`; empty if the guest never reported its layout.
  std::string report(const std::string& prefix) const;

  // The most page-table pages copied: a 64 MiB guest uses about ten.
  static constexpr size_t kMaxTablePages = 256;

 private:
  struct Area {
    std::string name;
    uint64_t gpa = 0;
    std::vector<uint8_t> bytes;
  };
  struct StackBaseline {
    uint64_t low = 0, top = 0;  // [low, top): the stack's own pages
    uint64_t used = 0;          // bytes below top ever written, at the copy
  };
  struct Copy {
    platform::PostMortemInfo info{};
    uint64_t info_gpa = 0;
    Area idt, gdt, tss;
    std::vector<Area> tables;  // page-table pages reachable from CR3
    bool tables_truncated = false;
    StackBaseline stacks[platform::kPostMortemStacks];
  };

  bool copy_area(const char* name, uint64_t gpa, uint64_t len, Area* out, std::string* why) const;
  void copy_tables(uint64_t cr3, Copy* c) const;
  // Bytes of [low, top) below `top` that have been written (non-zero),
  // assuming the stack started zeroed.
  uint64_t stack_used(uint64_t low, uint64_t top) const;
  // Lines for the entries of `a` that differ in RAM now, bits in `ignore`
  // aside (entries of up to 8 bytes).
  void diff_area(const Area& a, size_t entry_size, uint64_t ignore, const std::string& prefix,
                 std::string* out) const;
  // Walks the guest's current tables from `cr3`; empty if `va` is mapped
  // (and writable if `write`), else why not.
  std::string translate_problem(uint64_t cr3, uint64_t va, bool write, bool exec) const;
  // Adds a line to `out` (if not null) and counts a problem if a page of
  // [va, va + len) does not translate as delivery needs.
  void check_mapped(const Copy& c, const char* what, uint64_t va, uint64_t len, bool write, bool exec,
                    const std::string& prefix, std::string* out, int* problems) const;
  void report_crumbs(const Copy& c, const std::string& prefix, std::string* out) const;

  const GuestMemory& mem_;
  mutable std::mutex mu_;
  bool have_ = false;
  Copy copy_;
  uint64_t reports_ = 0;
  std::string refused_;  // why the last refused report was refused
};

}  // namespace vmm
