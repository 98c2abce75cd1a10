#include "vmm/pvh_loader.h"

#include <elf.h>

#include "boot/platform.h"
#include "vmm/pci/pci_bus.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace vmm {
namespace {

// A bounds-checked view of the file: every read of a header goes through
// here, so a truncated or lying image cannot make us read past its end.
class Image {
 public:
  explicit Image(std::span<const uint8_t> bytes) : b_(bytes) {}
  bool has(uint64_t off, uint64_t len) const { return off <= b_.size() && len <= b_.size() - off; }
  template <typename T>
  T get(uint64_t off, const char* what) const {
    if (!has(off, sizeof(T))) throw LoadError(std::string("truncated ELF: ") + what + " lies past the end of the file");
    T v;
    std::memcpy(&v, b_.data() + off, sizeof(T));
    return v;
  }
  const uint8_t* at(uint64_t off) const { return b_.data() + off; }
  uint64_t size() const { return b_.size(); }

 private:
  std::span<const uint8_t> b_;
};

uint64_t align4(uint64_t v) { return (v + 3) & ~uint64_t(3); }

std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// Looks for the PVH entry note in one PT_NOTE segment.
bool find_pvh_note(const Image& img, uint64_t off, uint64_t size, uint32_t* entry) {
  if (!img.has(off, size)) throw LoadError("truncated ELF: a PT_NOTE segment lies past the end of the file");
  uint64_t pos = 0;
  while (size - pos >= sizeof(Elf64_Nhdr)) {
    auto n = img.get<Elf64_Nhdr>(off + pos, "note header");
    pos += sizeof(Elf64_Nhdr);
    const uint64_t name_len = align4(n.n_namesz), desc_len = align4(n.n_descsz);
    if (name_len > size - pos || desc_len > size - pos - name_len)
      throw LoadError("malformed ELF note: its name or descriptor runs past the segment");
    const uint8_t* name = img.at(off + pos);
    const uint8_t* desc = img.at(off + pos + name_len);
    if (n.n_type == pvh::kElfNotePhys32Entry && n.n_namesz == 4 && std::memcmp(name, "Xen", 4) == 0) {
      // Linux writes a 64-bit value here, others 32-bit; both are accepted.
      uint64_t e = 0;  // little-endian: a 4-byte value fills the low half
      if (n.n_descsz == 4 || n.n_descsz == 8) std::memcpy(&e, desc, n.n_descsz);
      else throw LoadError("malformed PVH note: descriptor of " + std::to_string(n.n_descsz) + " bytes");
      if (e > 0xffffffffull) throw LoadError("PVH entry point is above 4 GiB");
      *entry = static_cast<uint32_t>(e);
      return true;
    }
    pos += name_len + desc_len;
  }
  return false;
}

}  // namespace

PvhKernel load_pvh_kernel(std::span<const uint8_t> bytes, GuestMemory& mem) {
  Image img(bytes);
  if (img.size() < sizeof(Elf64_Ehdr)) throw LoadError("not an ELF file: only " + std::to_string(img.size()) + " bytes");
  auto eh = img.get<Elf64_Ehdr>(0, "ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) throw LoadError("not an ELF file (bad magic)");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) throw LoadError("not a 64-bit ELF file");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) throw LoadError("not a little-endian ELF file");
  if (eh.e_machine != EM_X86_64) throw LoadError("not an x86-64 ELF file (e_machine " + std::to_string(eh.e_machine) + ")");
  if (eh.e_type != ET_EXEC) throw LoadError("not an executable ELF file (e_type " + std::to_string(eh.e_type) + ")");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) throw LoadError("unexpected ELF program header size " + std::to_string(eh.e_phentsize));
  if (eh.e_phnum == 0) throw LoadError("ELF file has no program headers");
  if (!img.has(eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr)))
    throw LoadError("truncated ELF: program headers lie past the end of the file");

  PvhKernel k{0, UINT64_MAX, 0};
  bool have_entry = false, have_load = false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto ph = img.get<Elf64_Phdr>(eh.e_phoff + uint64_t(i) * sizeof(Elf64_Phdr), "program header");
    if (ph.p_type == PT_NOTE && !have_entry) have_entry = find_pvh_note(img, ph.p_offset, ph.p_filesz, &k.entry);
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const std::string seg = "segment " + std::to_string(i);
    if (ph.p_filesz > ph.p_memsz) throw LoadError("malformed ELF: " + seg + " has more file bytes than memory bytes");
    if (!img.has(ph.p_offset, ph.p_filesz)) throw LoadError("truncated ELF: " + seg + " lies past the end of the file");
    if (ph.p_paddr < BootLayout::kKernelMin)
      throw LoadError(seg + " loads below 1 MiB (at " + hex(ph.p_paddr) + ")");
    uint8_t* dst = mem.ptr(ph.p_paddr, ph.p_memsz);
    if (!dst)
      throw LoadError(seg + " [" + hex(ph.p_paddr) + ", +" + hex(ph.p_memsz) + ") lies outside guest RAM (" +
                      std::to_string(mem.size() >> 20) + " MiB)");
    std::memcpy(dst, img.at(ph.p_offset), ph.p_filesz);
    std::memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);  // .bss
    k.load_start = std::min(k.load_start, ph.p_paddr);
    k.load_end = std::max(k.load_end, ph.p_paddr + ph.p_memsz);
    have_load = true;
  }
  if (!have_load) throw LoadError("ELF file has no loadable segments");
  if (!have_entry) throw LoadError("not a PVH kernel: no XEN_ELFNOTE_PHYS32_ENTRY note");
  if (k.entry < k.load_start || k.entry >= k.load_end) throw LoadError("PVH entry point lies outside the loaded segments");
  return k;
}

std::vector<uint8_t> read_kernel_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw LoadError("cannot open kernel '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw LoadError("cannot read kernel '" + path + "'");
  return data;
}

std::vector<pvh::MemmapEntry> guest_memory_map(const GuestMemory& mem) {
  std::vector<pvh::MemmapEntry> map;
  map.push_back({0, platform::kTimePageGpa, pvh::kRam, 0});
  // The VMM's time page, then the VGA and BIOS hole.
  map.push_back({platform::kTimePageGpa, 0x100000 - platform::kTimePageGpa, pvh::kReserved, 0});
  if (mem.size() > 0x100000) map.push_back({0x100000, mem.size() - 0x100000, pvh::kRam, 0});
  // PCIe ECAM (MMCONFIG) window of the PCI host bridge (vmm/pci).
  map.push_back({PciLayout::kEcamBase, PciLayout::kEcamSize, pvh::kReserved, 0});
  map.push_back({BootLayout::kKvmReservedStart, BootLayout::kKvmReservedSize, pvh::kReserved, 0});
  return map;
}

uint64_t write_start_info(GuestMemory& mem, const std::string& cmdline) {
  if (cmdline.size() + 1 > BootLayout::kCmdlineMax)
    throw LoadError("kernel command line is longer than " + std::to_string(BootLayout::kCmdlineMax - 1) + " bytes");
  if (cmdline.find('\0') != std::string::npos) throw LoadError("kernel command line contains a NUL byte");
  auto map = guest_memory_map(mem);
  pvh::StartInfo si{};
  si.magic = pvh::kStartInfoMagic;
  si.version = 1;
  si.cmdline_paddr = BootLayout::kCmdline;
  si.memmap_paddr = BootLayout::kMemmap;
  si.memmap_entries = static_cast<uint32_t>(map.size());
  if (!mem.write(BootLayout::kCmdline, cmdline.c_str(), cmdline.size() + 1) ||
      !mem.write(BootLayout::kMemmap, map.data(), map.size() * sizeof(map[0])) ||
      !mem.write(BootLayout::kStartInfo, &si, sizeof si))
    throw LoadError("guest RAM too small for the boot data");
  return BootLayout::kStartInfo;
}

}  // namespace vmm
