// Builds small ELF64 images in memory for loader tests: a valid PVH kernel
// by default, which each test then breaks in one specific way.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace vmm::testing {

struct ElfBuilder {
  uint64_t load_addr = 0x100000;
  std::vector<uint8_t> code = std::vector<uint8_t>(64, 0x90);
  uint64_t bss = 0x1000;
  uint64_t entry = 0x100000;
  bool with_note = true;
  uint32_t note_desc_size = 8;

  // Layout: ELF header, 2 program headers (LOAD, NOTE), note, code.
  std::vector<uint8_t> build() const {
    const uint64_t ph_off = sizeof(Elf64_Ehdr);
    const uint64_t note_off = ph_off + 2 * sizeof(Elf64_Phdr);
    const uint64_t note_size = sizeof(Elf64_Nhdr) + 4 + ((note_desc_size + 3) & ~3u);
    const uint64_t code_off = (note_off + note_size + 15) & ~uint64_t(15);
    std::vector<uint8_t> img(code_off + code.size());

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = ph_off;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 2;
    std::memcpy(img.data(), &eh, sizeof eh);

    Elf64_Phdr load{};
    load.p_type = PT_LOAD;
    load.p_offset = code_off;
    load.p_vaddr = load.p_paddr = load_addr;
    load.p_filesz = code.size();
    load.p_memsz = code.size() + bss;
    load.p_flags = PF_R | PF_X;
    std::memcpy(img.data() + ph_off, &load, sizeof load);

    Elf64_Phdr note{};
    note.p_type = PT_NOTE;
    note.p_offset = note_off;
    note.p_filesz = note_size;
    std::memcpy(img.data() + ph_off + sizeof(Elf64_Phdr), &note, sizeof note);

    Elf64_Nhdr nh{};
    nh.n_namesz = 4;
    nh.n_descsz = note_desc_size;
    nh.n_type = with_note ? 18 : 1;
    std::memcpy(img.data() + note_off, &nh, sizeof nh);
    std::memcpy(img.data() + note_off + sizeof nh, "Xen", 4);
    std::memcpy(img.data() + note_off + sizeof nh + 4, &entry, note_desc_size < 8 ? note_desc_size : 8);
    std::memcpy(img.data() + code_off, code.data(), code.size());
    return img;
  }
};

inline Elf64_Ehdr* header(std::vector<uint8_t>& img) { return reinterpret_cast<Elf64_Ehdr*>(img.data()); }
inline Elf64_Phdr* phdr(std::vector<uint8_t>& img, int i) {
  return reinterpret_cast<Elf64_Phdr*>(img.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

}  // namespace vmm::testing
