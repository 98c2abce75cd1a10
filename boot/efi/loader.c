// BOOTX64.EFI: boots our guest kernel ELF under UEFI through the PVH entry
// (DESIGN.md decision 3), so the same image runs under our VMM, QEMU's
// -kernel and UEFI firmware. See boot/efi/README.md.
//
// Order of work, and why:
//   1. read \guest-kernel.elf's headers and its PVH note, claim the physical
//      pages of every PT_LOAD segment at p_paddr (the kernel is not
//      relocatable) and read the segments straight into them: no
//      intermediate buffer that the firmware might place at 1 MiB first;
//   2. the command line (load options, else \cmdline.txt) and the RSDP;
//   3. one page of trampoline code and one "boot info" block (start info,
//      command line, E820 table) below 1 MiB, which our kernel treats as
//      reserved, so nothing it allocates early overwrites them;
//   4. ExitBootServices, convert the final UEFI memory map to E820 (pure
//      computation: no boot service may be called any more), and jump to
//      the trampoline, which leaves long mode for the PVH entry state.
// Every error before step 4 prints one "efi-loader: error: ..." line on the
// console and returns an EFI error to the firmware, with our pages freed.

#include <efi.h>
#include <efilib.h>

// ---- PVH ABI: mirrors boot/pvh.h (that header is C++; both follow Xen's
// arch-x86/hvm/start_info.h, version 1, whose layout is fixed).
#define PVH_MAGIC 0x336ec578u
#define PVH_NOTE_PHYS32_ENTRY 18u
enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4, E820_UNUSABLE = 5 };

struct hvm_start_info {
  UINT32 magic;
  UINT32 version;
  UINT32 flags;
  UINT32 nr_modules;
  UINT64 modlist_paddr;
  UINT64 cmdline_paddr;
  UINT64 rsdp_paddr;
  UINT64 memmap_paddr;
  UINT32 memmap_entries;
  UINT32 reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_paddr) == 40, "layout");

struct e820_entry {
  UINT64 addr;
  UINT64 size;
  UINT32 type;
  UINT32 reserved;
};
_Static_assert(sizeof(struct e820_entry) == 24, "hvm_memmap_table_entry layout");

// ---- ELF64: only what we check and load.
typedef struct {
  UINT8 e_ident[16];
  UINT16 e_type, e_machine;
  UINT32 e_version;
  UINT64 e_entry, e_phoff, e_shoff;
  UINT32 e_flags;
  UINT16 e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf64_Ehdr;

typedef struct {
  UINT32 p_type, p_flags;
  UINT64 p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

#define PT_LOAD 1
#define PT_NOTE 4
#define ET_EXEC 2
#define EM_X86_64 62

#define KERNEL_PATH L"\\guest-kernel.elf"
#define CMDLINE_PATH L"\\cmdline.txt"
#define CMDLINE_MAX 4095
#define MAX_PHDRS 64
#define MAX_NOTE_BYTES 65536
#define PAGE 4096ull
#define BELOW_1M 0xfffffull
#define BELOW_4G 0xffffffffull
// Extra E820 slots beyond the memory map's size when we sized the block: the
// map grows by a few descriptors with our own later allocations.
#define MAP_SLACK 64

// The trampoline (trampoline.S): position-independent, copied to a page
// below 4 GiB; called with the SysV ABI: (entry, start info address).
extern const UINT8 pvh_trampoline_start[] __attribute__((visibility("hidden")));
extern const UINT8 pvh_trampoline_end[] __attribute__((visibility("hidden")));
typedef void (*__attribute__((sysv_abi, noreturn)) trampoline_fn)(UINT32 entry, UINT32 start_info);

#define ERR(...) Print(L"efi-loader: error: " __VA_ARGS__)

// Page ranges we allocated, so that a failure gives them back: the firmware
// then boots the next option with the memory it had.
static struct {
  EFI_PHYSICAL_ADDRESS addr;
  UINTN pages;
} allocs[MAX_PHDRS + 8];
static UINTN nallocs;

static EFI_STATUS alloc_pages(EFI_ALLOCATE_TYPE how, EFI_MEMORY_TYPE type, UINTN pages,
                              EFI_PHYSICAL_ADDRESS* addr) {
  if (nallocs == sizeof allocs / sizeof allocs[0]) return EFI_OUT_OF_RESOURCES;
  EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, how, type, pages, addr);
  if (!EFI_ERROR(st)) {
    allocs[nallocs].addr = *addr;
    allocs[nallocs].pages = pages;
    nallocs++;
  }
  return st;
}

static void free_all_pages(void) {
  while (nallocs > 0) {
    nallocs--;
    uefi_call_wrapper(BS->FreePages, 2, allocs[nallocs].addr, allocs[nallocs].pages);
  }
}

// Below 1 MiB if the firmware has room there, else below 4 GiB (the PVH
// entry runs with paging off in 32-bit mode: nothing above 4 GiB is reachable).
// Never page 0: a start info at address 0 reads as "none" to a kernel (that
// page then stays allocated, unused, until the kernel reclaims it as RAM).
static EFI_STATUS alloc_low(EFI_MEMORY_TYPE type, UINTN pages, EFI_PHYSICAL_ADDRESS* addr) {
  EFI_PHYSICAL_ADDRESS limits[] = {BELOW_1M, BELOW_1M, BELOW_4G, BELOW_4G};
  EFI_STATUS st = EFI_NOT_FOUND;
  for (UINTN i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    *addr = limits[i];
    st = alloc_pages(AllocateMaxAddress, type, pages, addr);
    if (!EFI_ERROR(st) && *addr != 0) return EFI_SUCCESS;
  }
  return EFI_ERROR(st) ? st : EFI_OUT_OF_RESOURCES;
}

static EFI_STATUS read_at(EFI_FILE_HANDLE f, UINT64 offset, void* buf, UINTN len) {
  EFI_STATUS st = uefi_call_wrapper(f->SetPosition, 2, f, offset);
  if (EFI_ERROR(st)) return st;
  UINTN got = len;
  st = uefi_call_wrapper(f->Read, 3, f, &got, buf);
  if (EFI_ERROR(st)) return st;
  return got == len ? EFI_SUCCESS : EFI_END_OF_FILE;
}

// The 32-bit entry from a "Xen" note of type XEN_ELFNOTE_PHYS32_ENTRY; the
// descriptor is 4 or 8 bytes (we link it as a .quad). 0 if absent.
static UINT32 find_pvh_entry(const UINT8* p, UINT64 len) {
  UINT64 off = 0;
  while (len - off >= 12) {
    UINT32 namesz = *(const UINT32*)(p + off);
    UINT32 descsz = *(const UINT32*)(p + off + 4);
    UINT32 type = *(const UINT32*)(p + off + 8);
    UINT64 name = off + 12;
    UINT64 desc = name + ((namesz + 3ull) & ~3ull);
    UINT64 next = desc + ((descsz + 3ull) & ~3ull);
    if (next > len) return 0;
    if (namesz == 4 && CompareMem(p + name, "Xen", 4) == 0 && type == PVH_NOTE_PHYS32_ENTRY &&
        (descsz == 4 || (descsz == 8 && *(const UINT32*)(p + desc + 4) == 0)))
      return *(const UINT32*)(p + desc);
    off = next;
  }
  return 0;
}

// Validates the ELF, claims its segments' pages and loads them. On success
// *entry is the PVH entry point.
static EFI_STATUS load_kernel(EFI_FILE_HANDLE root, UINT32* entry) {
  EFI_FILE_HANDLE f;
  EFI_STATUS st = uefi_call_wrapper(root->Open, 5, root, &f, KERNEL_PATH, EFI_FILE_MODE_READ, 0);
  if (EFI_ERROR(st)) {
    ERR(L"cannot open %s on the boot volume: %r\n", KERNEL_PATH, st);
    return st;
  }
  Elf64_Phdr* ph = NULL;
  UINT8* notes = NULL;
  EFI_FILE_INFO* info = LibFileInfo(f);
  if (!info) {
    ERR(L"cannot stat %s\n", KERNEL_PATH);
    st = EFI_DEVICE_ERROR;
    goto out;
  }
  UINT64 fsize = info->FileSize;
  FreePool(info);

  Elf64_Ehdr eh;
  if (fsize < sizeof eh || EFI_ERROR(read_at(f, 0, &eh, sizeof eh))) {
    ERR(L"%s is too short to be an ELF file\n", KERNEL_PATH);
    st = EFI_LOAD_ERROR;
    goto out;
  }
  if (CompareMem(eh.e_ident, "\177ELF", 4) != 0 || eh.e_ident[4] != 2 /* ELFCLASS64 */ ||
      eh.e_ident[5] != 1 /* little endian */ || eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
    ERR(L"%s is not an x86-64 ELF64 executable\n", KERNEL_PATH);
    st = EFI_LOAD_ERROR;
    goto out;
  }
  // The bound on e_phnum keeps the multiplication and our tables small.
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS ||
      eh.e_phoff > fsize || fsize - eh.e_phoff < (UINT64)eh.e_phnum * sizeof(Elf64_Phdr)) {
    ERR(L"%s: program headers out of bounds (%d of size %d at %lx, file size %ld)\n", KERNEL_PATH,
        eh.e_phnum, eh.e_phentsize, eh.e_phoff, fsize);
    st = EFI_LOAD_ERROR;
    goto out;
  }
  UINTN phbytes = eh.e_phnum * sizeof(Elf64_Phdr);
  ph = AllocatePool(phbytes);
  if (!ph || EFI_ERROR((st = read_at(f, eh.e_phoff, ph, phbytes)))) {
    ERR(L"cannot read the program headers of %s\n", KERNEL_PATH);
    st = EFI_LOAD_ERROR;
    goto out;
  }

  // Every segment inside the file and below 4 GiB; notes searched for PVH.
  *entry = 0;
  int loads = 0;
  for (int i = 0; i < eh.e_phnum; i++) {
    const Elf64_Phdr* p = &ph[i];
    if (p->p_type != PT_LOAD && p->p_type != PT_NOTE) continue;
    if (p->p_offset > fsize || fsize - p->p_offset < p->p_filesz || p->p_filesz > p->p_memsz) {
      ERR(L"%s: segment %d out of bounds of the file\n", KERNEL_PATH, i);
      st = EFI_LOAD_ERROR;
      goto out;
    }
    if (p->p_type == PT_NOTE && !*entry && p->p_filesz <= MAX_NOTE_BYTES) {
      notes = AllocatePool(p->p_filesz + 1);
      if (!notes || EFI_ERROR(read_at(f, p->p_offset, notes, p->p_filesz))) {
        ERR(L"cannot read the notes of %s\n", KERNEL_PATH);
        st = EFI_LOAD_ERROR;
        goto out;
      }
      *entry = find_pvh_entry(notes, p->p_filesz);
      FreePool(notes);
      notes = NULL;
    }
    if (p->p_type == PT_LOAD) {
      if (p->p_memsz == 0) continue;
      if (p->p_paddr >= BELOW_4G || BELOW_4G + 1 - p->p_paddr < p->p_memsz) {
        ERR(L"%s: segment %d at %lx is not below 4 GiB\n", KERNEL_PATH, i, p->p_paddr);
        st = EFI_LOAD_ERROR;
        goto out;
      }
      loads++;
    }
  }
  if (!loads) {
    ERR(L"%s has no loadable segment\n", KERNEL_PATH);
    st = EFI_LOAD_ERROR;
    goto out;
  }
  if (!*entry) {
    ERR(L"%s has no PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY)\n", KERNEL_PATH);
    st = EFI_LOAD_ERROR;
    goto out;
  }

  // Sorted by address, so pages shared by two segments (a segment ending
  // mid-page and the next one starting there) are claimed once.
  for (int i = 1; i < eh.e_phnum; i++)
    for (int j = i; j > 0 && ph[j - 1].p_paddr > ph[j].p_paddr; j--) {
      Elf64_Phdr t = ph[j];
      ph[j] = ph[j - 1];
      ph[j - 1] = t;
    }
  UINT64 claimed_end = 0, prev_end = 0;
  int entry_ok = 0;
  for (int i = 0; i < eh.e_phnum; i++) {
    const Elf64_Phdr* p = &ph[i];
    if (p->p_type != PT_LOAD || p->p_memsz == 0) continue;
    UINT64 end = p->p_paddr + p->p_memsz;
    if (p->p_paddr < prev_end) {
      ERR(L"%s: segments overlap at %lx\n", KERNEL_PATH, p->p_paddr);
      st = EFI_LOAD_ERROR;
      goto out;
    }
    prev_end = end;
    if (*entry >= p->p_paddr && *entry < end) entry_ok = 1;
    EFI_PHYSICAL_ADDRESS first = p->p_paddr & ~(PAGE - 1);
    if (first < claimed_end) first = claimed_end;
    UINT64 last = (end + PAGE - 1) & ~(PAGE - 1);
    if (first < last) {
      EFI_PHYSICAL_ADDRESS at = first;
      st = alloc_pages(AllocateAddress, EfiLoaderData, (last - first) / PAGE, &at);
      if (EFI_ERROR(st)) {
        ERR(L"cannot claim %lx-%lx for the kernel (%r): the firmware uses that memory\n", first,
            last - 1, st);
        goto out;
      }
      claimed_end = last;
    }
    // Paging under UEFI is an identity map: p_paddr is also our pointer.
    if (p->p_filesz &&
        EFI_ERROR((st = read_at(f, p->p_offset, (void*)(UINTN)p->p_paddr, p->p_filesz)))) {
      ERR(L"cannot read %s: %r\n", KERNEL_PATH, st);
      goto out;
    }
    ZeroMem((void*)(UINTN)(p->p_paddr + p->p_filesz), p->p_memsz - p->p_filesz);
    Print(L"efi-loader: segment %lx-%lx (%ld bytes from the file)\n", p->p_paddr, end - 1,
          p->p_filesz);
  }
  if (!entry_ok) {
    ERR(L"%s: PVH entry %x lies outside every loadable segment\n", KERNEL_PATH, *entry);
    st = EFI_LOAD_ERROR;
    goto out;
  }
  st = EFI_SUCCESS;
out:
  if (ph) FreePool(ph);
  if (notes) FreePool(notes);
  uefi_call_wrapper(f->Close, 1, f);
  return st;
}

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// One line, words separated by single spaces (a file's line breaks and
// indentation are not part of the command line), in place.
static void tidy_cmdline(char* s) {
  UINTN n = 0;
  for (UINTN i = 0; s[i]; i++) {
    if (!is_space(s[i]))
      s[n++] = s[i];
    else if (n > 0 && s[n - 1] != ' ')
      s[n++] = ' ';
  }
  if (n > 0 && s[n - 1] == ' ') n--;
  s[n] = 0;
}

// The boot manager may pass binary data (edk2 tags the options it creates
// itself with a GUID); the UEFI shell passes the whole command, our program's
// name first. Only printable UCS-2 text counts, without that first word.
static int cmdline_from_load_options(const EFI_LOADED_IMAGE* li, char* out) {
  const CHAR16* w = li->LoadOptions;
  UINTN n = li->LoadOptionsSize / sizeof(CHAR16);
  if (!w || n == 0 || li->LoadOptionsSize % sizeof(CHAR16)) return 0;
  UINTN len = 0;
  while (len < n && w[len]) {
    if ((w[len] < 0x20 || w[len] > 0x7e) && !is_space(w[len])) return 0;
    len++;
  }
  if (len > CMDLINE_MAX) return 0;
  for (UINTN i = 0; i < len; i++) out[i] = (char)w[i];
  out[len] = 0;
  tidy_cmdline(out);
  UINTN first = 0;
  while (out[first] && out[first] != ' ') first++;
  if (first >= 4) {
    const char* ext = out + first - 4;
    if (ext[0] == '.' && (ext[1] | 0x20) == 'e' && (ext[2] | 0x20) == 'f' && (ext[3] | 0x20) == 'i') {
      UINTN rest = first + (out[first] == ' ');
      CopyMem(out, out + rest, strlena((CHAR8*)out + rest) + 1);
    }
  }
  return out[0] != 0;
}

// \cmdline.txt is optional; newlines become spaces.
static EFI_STATUS cmdline_from_file(EFI_FILE_HANDLE root, char* out) {
  out[0] = 0;
  EFI_FILE_HANDLE f;
  EFI_STATUS st = uefi_call_wrapper(root->Open, 5, root, &f, CMDLINE_PATH, EFI_FILE_MODE_READ, 0);
  if (st == EFI_NOT_FOUND) return EFI_SUCCESS;
  if (EFI_ERROR(st)) {
    ERR(L"cannot open %s: %r\n", CMDLINE_PATH, st);
    return st;
  }
  UINTN got = CMDLINE_MAX + 1;
  st = uefi_call_wrapper(f->Read, 3, f, &got, out);
  uefi_call_wrapper(f->Close, 1, f);
  if (EFI_ERROR(st)) {
    ERR(L"cannot read %s: %r\n", CMDLINE_PATH, st);
    return st;
  }
  if (got > CMDLINE_MAX) {
    ERR(L"%s is longer than %d bytes\n", CMDLINE_PATH, CMDLINE_MAX);
    return EFI_BAD_BUFFER_SIZE;
  }
  out[got] = 0;
  for (UINTN i = 0; i < got; i++)
    if ((UINT8)out[i] < 0x20 && !is_space(out[i])) {
      ERR(L"%s holds a control character at byte %ld\n", CMDLINE_PATH, i);
      return EFI_INVALID_PARAMETER;
    }
  tidy_cmdline(out);
  return EFI_SUCCESS;
}

static UINT64 find_rsdp(void) {
  EFI_GUID acpi20 = ACPI_20_TABLE_GUID, acpi10 = ACPI_TABLE_GUID;
  UINT64 v1 = 0;
  for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
    EFI_CONFIGURATION_TABLE* t = &ST->ConfigurationTable[i];
    if (CompareGuid(&t->VendorGuid, &acpi20) == 0) return (UINT64)(UINTN)t->VendorTable;
    if (CompareGuid(&t->VendorGuid, &acpi10) == 0) v1 = (UINT64)(UINTN)t->VendorTable;
  }
  return v1;
}

// Memory that is ours once boot services are gone is RAM; the firmware's
// runtime memory, MMIO, persistent (14) and unaccepted (15) memory and
// anything unknown stay reserved. E820 has its own "unusable" (5).
static UINT32 e820_type(UINT32 efi_type) {
  switch (efi_type) {
    case EfiLoaderCode:
    case EfiLoaderData:
    case EfiBootServicesCode:
    case EfiBootServicesData:
    case EfiConventionalMemory: return E820_RAM;
    case EfiACPIReclaimMemory: return E820_ACPI;
    case EfiACPIMemoryNVS: return E820_NVS;
    case EfiUnusableMemory: return E820_UNUSABLE;
    default: return E820_RESERVED;
  }
}

static UINT32 e820_add(struct e820_entry* e, UINT32 n, UINT64 addr, UINT64 size, UINT32 type) {
  if (size == 0) return n;
  e[n].addr = addr;
  e[n].size = size;
  e[n].type = type;
  e[n].reserved = 0;
  return n + 1;
}

// Runs after ExitBootServices: no allocation, no boot service. The boot
// info block [keep, keep_end) is marked reserved when it had to go above
// 1 MiB, where the kernel would otherwise hand its pages out as free RAM.
static UINT32 build_e820(const UINT8* map, UINTN map_size, UINTN desc_size, struct e820_entry* e,
                         UINT64 keep, UINT64 keep_end) {
  UINT32 n = 0;
  if (keep < 0x100000) keep = keep_end = 0;
  for (UINTN off = 0; off + desc_size <= map_size; off += desc_size) {
    const EFI_MEMORY_DESCRIPTOR* d = (const EFI_MEMORY_DESCRIPTOR*)(map + off);
    UINT64 a = d->PhysicalStart, b = a + d->NumberOfPages * PAGE;
    UINT32 type = e820_type(d->Type);
    if (keep_end <= a || keep >= b) {
      n = e820_add(e, n, a, b - a, type);
      continue;
    }
    UINT64 lo = keep > a ? keep : a, hi = keep_end < b ? keep_end : b;
    n = e820_add(e, n, a, lo - a, type);
    n = e820_add(e, n, lo, hi - lo, E820_RESERVED);
    n = e820_add(e, n, hi, b - hi, type);
  }
  // UEFI does not promise a sorted map; E820 readers expect one.
  for (UINT32 i = 1; i < n; i++)
    for (UINT32 j = i; j > 0 && e[j - 1].addr > e[j].addr; j--) {
      struct e820_entry t = e[j];
      e[j] = e[j - 1];
      e[j - 1] = t;
    }
  UINT32 m = 0;
  for (UINT32 i = 0; i < n; i++) {
    if (m > 0 && e[m - 1].type == e[i].type && e[m - 1].addr + e[m - 1].size == e[i].addr)
      e[m - 1].size += e[i].size;
    else
      e[m++] = e[i];
  }
  return m;
}

static EFI_STATUS boot(EFI_HANDLE image) {
  EFI_LOADED_IMAGE* li;
  EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void**)&li);
  if (EFI_ERROR(st)) {
    ERR(L"no loaded image protocol: %r\n", st);
    return st;
  }
  EFI_FILE_IO_INTERFACE* fs;
  st = uefi_call_wrapper(BS->HandleProtocol, 3, li->DeviceHandle, &FileSystemProtocol, (void**)&fs);
  if (EFI_ERROR(st)) {
    ERR(L"the boot device has no file system we can read: %r\n", st);
    return st;
  }
  EFI_FILE_HANDLE root;
  st = uefi_call_wrapper(fs->OpenVolume, 2, fs, &root);
  if (EFI_ERROR(st)) {
    ERR(L"cannot open the boot volume: %r\n", st);
    return st;
  }

  UINT32 entry;
  static char cmdline[CMDLINE_MAX + 1];
  const CHAR16* source = L"load options";
  st = load_kernel(root, &entry);
  if (!EFI_ERROR(st) && !cmdline_from_load_options(li, cmdline)) {
    source = CMDLINE_PATH;
    st = cmdline_from_file(root, cmdline);
  }
  uefi_call_wrapper(root->Close, 1, root);
  if (EFI_ERROR(st)) return st;
  Print(L"efi-loader: PVH entry %x, command line \"%a\" (from %s)\n", entry, cmdline, source);
  UINT64 rsdp = find_rsdp();
  if (!rsdp) Print(L"efi-loader: warning: the firmware offers no ACPI RSDP\n");

  // The trampoline turns paging off while it runs: it needs an identity-
  // mapped page below 4 GiB. EfiLoaderCode, because firmware NX policies
  // may make loader data non-executable.
  UINTN tsize = (UINTN)(pvh_trampoline_end - pvh_trampoline_start);
  if (tsize > PAGE) {
    ERR(L"the trampoline (%ld bytes) does not fit in a page\n", tsize);
    return EFI_LOAD_ERROR;
  }
  EFI_PHYSICAL_ADDRESS tramp;
  if (EFI_ERROR((st = alloc_low(EfiLoaderCode, 1, &tramp)))) {
    ERR(L"no page below 4 GiB for the mode-switch trampoline: %r\n", st);
    return st;
  }
  CopyMem((void*)(UINTN)tramp, pvh_trampoline_start, tsize);

  // Sized from the current memory map, with slack for what it gains until
  // the final GetMemoryMap (our own allocations split descriptors).
  UINTN map_size = 0, map_key, desc_size;
  UINT32 desc_version;
  st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, NULL, &map_key, &desc_size, &desc_version);
  if (st != EFI_BUFFER_TOO_SMALL || desc_size < sizeof(EFI_MEMORY_DESCRIPTOR)) {
    ERR(L"GetMemoryMap failed: %r\n", st);
    return EFI_ERROR(st) ? st : EFI_DEVICE_ERROR;
  }
  UINTN cap = map_size / desc_size + MAP_SLACK;
  UINTN cmd_len = strlena((CHAR8*)cmdline) + 1;
  UINTN cmd_off = sizeof(struct hvm_start_info);
  UINTN map_off = (cmd_off + cmd_len + 7) & ~(UINTN)7;
  UINTN info_bytes = map_off + cap * sizeof(struct e820_entry);
  UINTN info_pages = (info_bytes + PAGE - 1) / PAGE;
  EFI_PHYSICAL_ADDRESS info_addr;
  if (EFI_ERROR((st = alloc_low(EfiLoaderData, info_pages, &info_addr)))) {
    ERR(L"no memory below 4 GiB for the PVH start info: %r\n", st);
    return st;
  }
  UINT8* block = (UINT8*)(UINTN)info_addr;
  ZeroMem(block, info_pages * PAGE);
  struct hvm_start_info* si = (struct hvm_start_info*)block;
  struct e820_entry* e820 = (struct e820_entry*)(block + map_off);
  CopyMem(block + cmd_off, cmdline, cmd_len);
  si->magic = PVH_MAGIC;
  si->version = 1;
  si->cmdline_paddr = info_addr + cmd_off;
  si->rsdp_paddr = rsdp;
  si->memmap_paddr = info_addr + map_off;

  UINTN buf_size = map_size + 16 * desc_size;
  UINT8* map = AllocatePool(buf_size);
  if (!map) {
    ERR(L"out of memory for the memory map\n");
    return EFI_OUT_OF_RESOURCES;
  }
  Print(L"efi-loader: start info at %lx, trampoline at %lx, ACPI RSDP at %lx; exiting boot services\n",
        info_addr, tramp, rsdp);

  // The spec: ExitBootServices fails with EFI_INVALID_PARAMETER when the map
  // changed since our GetMemoryMap (a timer event may allocate); fetch the
  // map again and retry. Only memory services are allowed in between.
  for (int tries = 0;; tries++) {
    map_size = buf_size;
    st = uefi_call_wrapper(BS->GetMemoryMap, 5, &map_size, (EFI_MEMORY_DESCRIPTOR*)map, &map_key,
                           &desc_size, &desc_version);
    if (st == EFI_BUFFER_TOO_SMALL && tries < 8) {
      FreePool(map);
      buf_size = map_size + 16 * desc_size;
      if (!(map = AllocatePool(buf_size))) {
        ERR(L"out of memory for the memory map\n");
        return EFI_OUT_OF_RESOURCES;
      }
      continue;
    }
    if (EFI_ERROR(st)) {
      ERR(L"GetMemoryMap failed: %r\n", st);
      break;
    }
    if (map_size / desc_size + 2 > cap) {
      ERR(L"the memory map grew past %ld entries\n", cap);
      st = EFI_BUFFER_TOO_SMALL;
      break;
    }
    st = uefi_call_wrapper(BS->ExitBootServices, 2, image, map_key);
    if (!EFI_ERROR(st)) break;
    if (st != EFI_INVALID_PARAMETER || tries >= 8) {
      ERR(L"ExitBootServices failed: %r\n", st);
      break;
    }
  }
  if (EFI_ERROR(st)) {
    FreePool(map);
    return st;
  }

  // No console, no boot services from here on: the firmware is gone.
  si->memmap_entries = build_e820(map, map_size, desc_size, e820, info_addr, info_addr + info_pages * PAGE);
  ((trampoline_fn)(UINTN)tramp)(entry, (UINT32)info_addr);
}

// Not EFIAPI: gnu-efi's crt0 (_start) receives the firmware's ms_abi call,
// applies our relocations and calls efi_main with the SysV convention.
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE* systab) {
  InitializeLib(image, systab);
  Print(L"efi-loader: loading %s\n", KERNEL_PATH);
  EFI_STATUS st = boot(image);
  // Only failures come back here.
  free_all_pages();
  return st;
}
