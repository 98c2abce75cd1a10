#include "vmm/post_mortem.h"

#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace vmm {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPresent = 1, kWrite = 2, kHuge = 0x80, kNx = 1ull << 63;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;
// Bits the CPU itself sets as the guest runs: not changes worth reporting.
constexpr uint64_t kAccessedDirty = 0x60;            // page-table entries
constexpr uint64_t kDescriptorAccessed = 1ull << 40;  // code/data descriptors
constexpr size_t kMaxDiffLines = 8;  // per area: enough to see the pattern
constexpr size_t kTssSize = 104;
constexpr uint64_t kTssIstOffset = 36;  // IST1; see the 64-bit TSS layout

const char* const kStackNames[platform::kPostMortemStacks] = {"main stack", "IST1 (#DF)", "IST2 (NMI)",
                                                              "IST3 (exceptions)", "IST4 (interrupts)"};

const char* vector_name(uint64_t v) {
  static const char* const names[32] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                        "#DF", "-",   "#TS", "#NP", "#SS", "#GP", "#PF", "-",
                                        "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "-",   "-",
                                        "-",   "-",   "-",   "-",   "#HV", "#VC", "#SX", "-"};
  return v < 32 ? names[v] : (v == 255 ? "spurious" : "irq");
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char b[256];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

// The handler address in a 16-byte IDT gate.
uint64_t gate_target(const uint8_t* g) {
  return load_le(g, 2) | (load_le(g + 6, 2) << 16) | (load_le(g + 8, 4) << 32);
}

}  // namespace

bool PostMortem::copy_area(const char* name, uint64_t gpa, uint64_t len, Area* out, std::string* why) const {
  out->name = name;
  out->gpa = gpa;
  out->bytes.resize(len);
  if (!mem_.read(gpa, out->bytes.data(), len)) {
    *why = fmt("its %s [%#" PRIx64 ", +%#" PRIx64 ") is not in RAM", name, gpa, len);
    return false;
  }
  return true;
}

void PostMortem::copy_tables(uint64_t cr3, Copy* c) const {
  // Breadth-first over the four levels; huge mappings end a branch.
  struct Pending {
    uint64_t gpa;
    int level;  // 4: PML4 ... 1: PT
  };
  std::vector<Pending> queue{{cr3 & kAddrMask, 4}};
  static const char* const kLevelNames[5] = {"", "PT", "PD", "PDPT", "PML4"};
  for (size_t i = 0; i < queue.size(); ++i) {
    if (c->tables.size() >= kMaxTablePages) {
      c->tables_truncated = true;
      return;
    }
    Area a;
    std::string why;
    if (!copy_area(kLevelNames[queue[i].level], queue[i].gpa, kPage, &a, &why)) continue;  // found at the crash
    if (queue[i].level > 1) {
      for (size_t e = 0; e < 512; ++e) {
        const uint64_t entry = load_le(&a.bytes[e * 8], 8);
        if (!(entry & kPresent) || (queue[i].level < 4 && (entry & kHuge))) continue;
        queue.push_back({entry & kAddrMask, queue[i].level - 1});
      }
    }
    c->tables.push_back(std::move(a));
  }
}

uint64_t PostMortem::stack_used(uint64_t low, uint64_t top) const {
  const uint8_t* p = mem_.ptr(low, top - low);
  if (!p) return 0;
  uint64_t at = 0;
  while (at < top - low && p[at] == 0) ++at;
  return (top - low) - at;
}

bool PostMortem::take(uint64_t info_gpa) {
  Copy c;
  c.info_gpa = info_gpa;
  std::string why;
  if (!mem_.read(info_gpa, &c.info, sizeof c.info)) {
    why = fmt("its report at %#" PRIx64 " is not in RAM", info_gpa);
  } else if (c.info.magic != platform::kPostMortemMagic || c.info.size != sizeof c.info) {
    why = fmt("its report at %#" PRIx64 " has magic %#x size %u", info_gpa, c.info.magic, c.info.size);
  } else if (uint64_t(c.info.idt_limit) + 1 > 256 * 16) {
    why = fmt("its IDT limit %#x is larger than 256 gates", c.info.idt_limit);
  } else if (copy_area("IDT", c.info.idt_base, uint64_t(c.info.idt_limit) + 1, &c.idt, &why) &&
             copy_area("GDT", c.info.gdt_base, uint64_t(c.info.gdt_limit) + 1, &c.gdt, &why) &&
             copy_area("TSS", c.info.tss_base, kTssSize, &c.tss, &why)) {
    for (unsigned s = 0; s < platform::kPostMortemStacks && why.empty(); ++s) {
      const platform::PostMortemStack& st = c.info.stacks[s];
      if (!st.top) continue;
      if (!st.guard || st.guard >= st.top || st.top - st.guard <= kPage || st.top - st.guard > (64ull << 20) ||
          !mem_.contains(st.guard + kPage, st.top - st.guard - kPage)) {
        why = fmt("its %s (guard %#" PRIx64 ", top %#" PRIx64 ") is not a stack in RAM", kStackNames[s], st.guard,
                  st.top);
        break;
      }
      c.stacks[s] = {st.guard + kPage, st.top, stack_used(st.guard + kPage, st.top)};
    }
    if (why.empty()) copy_tables(c.info.cr3, &c);
  }
  std::lock_guard lock(mu_);
  ++reports_;
  if (!why.empty()) {
    refused_ = "report " + std::to_string(reports_) + " refused: " + why;
    return false;
  }
  copy_ = std::move(c);
  have_ = true;
  return true;
}

void PostMortem::diff_area(const Area& a, size_t entry_size, uint64_t ignore, const std::string& prefix,
                           std::string* out) const {
  std::vector<uint8_t> now(a.bytes.size());
  if (!mem_.read(a.gpa, now.data(), now.size())) {
    *out += prefix + fmt("  %s at %#" PRIx64 ": no longer readable\n", a.name.c_str(), a.gpa);
    return;
  }
  size_t changed = 0;
  for (size_t off = 0; off < now.size(); off += entry_size) {
    const size_t n = std::min(entry_size, now.size() - off);
    if (n > 8 ? std::memcmp(&now[off], &a.bytes[off], n) == 0
              : ((load_le(&now[off], n) ^ load_le(&a.bytes[off], n)) & ~ignore) == 0)
      continue;
    if (++changed > kMaxDiffLines) continue;
    std::string line = prefix + fmt("  %s at %#" PRIx64 " [%zu] (+%#zx): was ", a.name.c_str(), a.gpa,
                                    off / entry_size, off);
    for (size_t i = n; i-- > 0;) line += fmt("%02x", a.bytes[off + i]);
    line += " now ";
    for (size_t i = n; i-- > 0;) line += fmt("%02x", now[off + i]);
    *out += line + "\n";
  }
  if (changed > kMaxDiffLines)
    *out += prefix + fmt("  %s at %#" PRIx64 ": %zu more entries changed\n", a.name.c_str(), a.gpa,
                         changed - kMaxDiffLines);
}

std::string PostMortem::translate_problem(uint64_t cr3, uint64_t va, bool write, bool exec) const {
  static const char* const kLevelNames[5] = {"", "PT", "PD", "PDPT", "PML4"};
  uint64_t table = cr3 & kAddrMask;
  for (int level = 4; level >= 1; --level) {
    const unsigned index = (va >> (12 + 9 * (level - 1))) & 511;
    uint64_t entry;
    if (!mem_.read(table + 8 * index, &entry, sizeof entry))
      return fmt("the %s at %#" PRIx64 " is outside RAM", kLevelNames[level], table);
    const std::string where = fmt("%s %#" PRIx64 "[%u] = %#" PRIx64, kLevelNames[level], table, index, entry);
    if (!(entry & kPresent)) return "not present: " + where;
    if (write && !(entry & kWrite)) return "read-only: " + where;
    if (exec && (entry & kNx)) return "no-execute: " + where;
    if (level == 1 || (level < 4 && (entry & kHuge))) return {};
    table = entry & kAddrMask;
  }
  return {};
}

void PostMortem::check_mapped(const Copy& c, const char* what, uint64_t va, uint64_t len, bool write, bool exec,
                              const std::string& prefix, std::string* out, int* problems) const {
  if (!len) return;
  for (uint64_t page = va & ~(kPage - 1); page < va + len; page += kPage) {
    const std::string why = translate_problem(c.info.cr3, page, write, exec);
    if (why.empty()) continue;
    ++*problems;
    if (out) *out += prefix + fmt("  %s: page %#" PRIx64 " ", what, page) + why + "\n";
    return;  // one line per structure
  }
}

void PostMortem::report_crumbs(const Copy& c, const std::string& prefix, std::string* out) const {
  platform::PostMortemInfo now;
  if (!mem_.read(c.info_gpa, &now, sizeof now)) return;
  *out += prefix + fmt("  breadcrumbs: %" PRIu64 " interrupt/exception entries, %" PRIu64 " returned%s\n",
                       now.crumb_count, now.crumb_done,
                       now.crumb_count == now.crumb_done ? " (not inside a handler)"
                       : now.crumb_count > now.crumb_done ? " (inside a handler at the end)"
                                                          : " (counters inconsistent)");
  const uint64_t n = std::min<uint64_t>(now.crumb_count, platform::kPostMortemCrumbs);
  if (!n) return;
  const platform::PostMortemCrumb& last = now.crumbs[(now.crumb_count - 1) % platform::kPostMortemCrumbs];
  for (uint64_t k = n; k-- > 0;) {
    const platform::PostMortemCrumb& e = now.crumbs[(now.crumb_count - 1 - k) % platform::kPostMortemCrumbs];
    const uint64_t vector = e.vector & 0xffffffff;
    *out += prefix + fmt("    -%-2" PRIu64 " vector %3" PRIu64 " %-8s err %#" PRIx64 " rip %#" PRIx64 " rsp %#" PRIx64
                         " tsc last-%" PRIu64 "\n",
                         k, vector, vector_name(vector), e.vector >> 32, e.rip, e.rsp, last.tsc - e.tsc);
  }
}

std::string PostMortem::report(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  std::string out;
  if (!have_) {
    if (!refused_.empty()) out += prefix + "post-mortem: the guest's layout " + refused_ + "\n";
    return out;
  }
  const Copy& c = copy_;
  out += prefix + fmt("post-mortem: guest RAM now against the layout the guest reported (%" PRIu64
                      " reports; IDT %#" PRIx64 ", GDT %#" PRIx64 ", TSS %#" PRIx64 ", CR3 %#" PRIx64 "):\n",
                      reports_, c.info.idt_base, c.info.gdt_base, c.info.tss_base, c.info.cr3);
  if (!refused_.empty()) out += prefix + "  (the guest's " + refused_ + ")\n";

  // 1. Did the delivery structures change?
  std::string diffs;
  diff_area(c.idt, 16, 0, prefix, &diffs);
  diff_area(c.gdt, 8, kDescriptorAccessed, prefix, &diffs);
  diff_area(c.tss, 4, 0, prefix, &diffs);
  for (const Area& t : c.tables) diff_area(t, 8, kAccessedDirty, prefix, &diffs);
  out += diffs.empty() ? prefix + fmt("  IDT, GDT, TSS and the %zu page-table pages%s: unchanged\n", c.tables.size(),
                                      c.tables_truncated ? " copied (more not copied)" : "")
                       : diffs;

  // 2. Does everything delivery touches translate now, through the
  // tables as they are in RAM?
  int problems = 0;
  std::string maps;
  check_mapped(c, "IDT", c.info.idt_base, c.idt.bytes.size(), false, false, prefix, &maps, &problems);
  check_mapped(c, "GDT", c.info.gdt_base, c.gdt.bytes.size(), true, false, prefix, &maps, &problems);
  check_mapped(c, "TSS", c.info.tss_base, kTssSize, false, false, prefix, &maps, &problems);
  std::vector<uint8_t> idt_now(c.idt.bytes.size());
  if (mem_.read(c.info.idt_base, idt_now.data(), idt_now.size())) {
    int bad_gates = 0;
    for (size_t v = 0; v < idt_now.size() / 16; ++v) {
      const std::string what = fmt("handler of vector %zu", v);
      const int before = problems;
      check_mapped(c, what.c_str(), gate_target(&idt_now[v * 16]), 16, false, true, prefix,
                   bad_gates < 2 ? &maps : nullptr, &problems);
      bad_gates += problems - before;
    }
    if (bad_gates > 2) maps += prefix + fmt("  (%d handlers unmapped in all)\n", bad_gates);
  }
  uint8_t tss_now[kTssSize];
  const bool have_tss = mem_.read(c.info.tss_base, tss_now, sizeof tss_now);
  for (unsigned s = 0; s < platform::kPostMortemStacks; ++s) {
    const StackBaseline& b = c.stacks[s];
    if (!b.top) continue;
    check_mapped(c, kStackNames[s], b.low, b.top - b.low, true, false, prefix, &maps, &problems);
    const std::string guard = translate_problem(c.info.cr3, b.low - kPage, false, false);
    if (guard.empty()) {
      ++problems;
      maps += prefix + fmt("  %s: its guard page %#" PRIx64 " is mapped\n", kStackNames[s], b.low - kPage);
    }
  }
  out += maps.empty() ? prefix + "  IDT, GDT, TSS, all 256 handlers and every stack are mapped as delivery needs\n"
                      : maps;

  // 3. The stacks: how deep each went, and where the TSS points now.
  for (unsigned s = 0; s < platform::kPostMortemStacks; ++s) {
    const StackBaseline& b = c.stacks[s];
    if (!b.top) continue;
    const uint64_t size = b.top - b.low, used = stack_used(b.low, b.top);
    std::string line = prefix + fmt("  %s [%#" PRIx64 ", %#" PRIx64 "): ", kStackNames[s], b.low, b.top);
    if (b.used == size) line += "depth not measurable (not zeroed when reported)";
    else line += fmt("deepest use %" PRIu64 " of %" PRIu64 " bytes%s", used, size,
                     used == size ? " (reached its guard page: overflow)" : "");
    if (s >= 1 && have_tss) {
      const uint64_t ist = load_le(tss_now + kTssIstOffset + 8 * (s - 1), 8);
      if (ist != b.top) {
        ++problems;
        line += fmt("; the TSS's IST%u is now %#" PRIx64, s, ist);
      }
    }
    out += line + "\n";
  }

  report_crumbs(c, prefix, &out);
  if (diffs.empty() && problems == 0)
    out += prefix +
           "  verdict: every structure double-fault delivery needs is intact in RAM and mapped: what failed is "
           "not in guest memory (a descriptor-table register or CR3 the guest reloaded, or the CPU or "
           "hypervisor below us)\n";
  else
    out += prefix + "  verdict: the guest's delivery structures were changed or unmapped (see above)\n";
  return out;
}

}  // namespace vmm
