#include "vmm/pvh_loader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "boot/platform.h"

#include "tests/unit/vmm/elf_builder.h"

namespace vmm {
namespace {

using testing::ElfBuilder;

class PvhLoaderTest : public ::testing::Test {
 protected:
  GuestMemory mem{16 << 20};

  std::string load_error(const std::vector<uint8_t>& img) {
    try {
      load_pvh_kernel(img, mem);
    } catch (const LoadError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(PvhLoaderTest, LoadsSegmentsAndZeroesBss) {
  ElfBuilder b;
  b.code = {1, 2, 3, 4};
  b.entry = 0x100002;
  std::memset(mem.ptr(0x100000, 0x2000), 0xaa, 0x2000);  // stale contents
  PvhKernel k = load_pvh_kernel(b.build(), mem);
  EXPECT_EQ(k.entry, 0x100002u);
  EXPECT_EQ(k.load_start, 0x100000u);
  EXPECT_EQ(k.load_end, 0x100000u + 4 + 0x1000);
  const uint8_t* p = mem.ptr(0x100000, 4 + 0x1000);
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[3], 4);
  for (int i = 4; i < 4 + 0x1000; ++i) ASSERT_EQ(p[i], 0) << "bss byte " << i;
}

TEST_F(PvhLoaderTest, AcceptsFourByteNote) {
  ElfBuilder b;
  b.note_desc_size = 4;
  EXPECT_EQ(load_pvh_kernel(b.build(), mem).entry, 0x100000u);
}

TEST_F(PvhLoaderTest, RejectsEmptyAndTinyFiles) {
  EXPECT_NE(load_error({}).find("not an ELF file"), std::string::npos);
  EXPECT_NE(load_error({0x7f, 'E', 'L', 'F'}).find("not an ELF file"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsBadMagicClassMachineType) {
  auto img = ElfBuilder{}.build();
  auto bad = img;
  bad[1] = 'X';
  EXPECT_NE(load_error(bad).find("bad magic"), std::string::npos);
  bad = img;
  bad[EI_CLASS] = ELFCLASS32;
  EXPECT_NE(load_error(bad).find("64-bit"), std::string::npos);
  bad = img;
  testing::header(bad)->e_machine = EM_386;
  EXPECT_NE(load_error(bad).find("x86-64"), std::string::npos);
  bad = img;
  testing::header(bad)->e_type = ET_DYN;
  EXPECT_NE(load_error(bad).find("executable"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsTruncatedFileAtEveryLength) {
  auto img = ElfBuilder{}.build();
  for (size_t len = 0; len < img.size(); ++len) {
    std::vector<uint8_t> cut(img.begin(), img.begin() + len);
    EXPECT_NE(load_error(cut), "") << "accepted a file truncated to " << len << " bytes";
  }
}

TEST_F(PvhLoaderTest, RejectsProgramHeadersPastEnd) {
  auto img = ElfBuilder{}.build();
  testing::header(img)->e_phoff = img.size() - 8;
  EXPECT_NE(load_error(img).find("program headers lie past the end"), std::string::npos);
  testing::header(img)->e_phoff = ~0ull - 10;  // overflow when added to the size
  EXPECT_NE(load_error(img).find("program headers lie past the end"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsMissingPvhNote) {
  ElfBuilder b;
  b.with_note = false;
  EXPECT_NE(load_error(b.build()).find("no XEN_ELFNOTE_PHYS32_ENTRY"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsMalformedNote) {
  auto img = ElfBuilder{}.build();
  auto* nh = reinterpret_cast<Elf64_Nhdr*>(img.data() + testing::phdr(img, 1)->p_offset);
  nh->n_descsz = 0xfffffff0;  // runs past the segment
  EXPECT_NE(load_error(img).find("malformed ELF note"), std::string::npos);
  ElfBuilder b;
  b.note_desc_size = 2;
  EXPECT_NE(load_error(b.build()).find("malformed PVH note"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsSegmentsOutsideGuestRam) {
  ElfBuilder b;
  b.load_addr = 15 << 20;
  b.entry = b.load_addr;
  b.bss = 2 << 20;  // ends past 16 MiB
  EXPECT_NE(load_error(b.build()).find("outside guest RAM"), std::string::npos);
  b.load_addr = 0xfffffffffffff000ull;  // wraps around
  b.entry = 0x100000;
  EXPECT_NE(load_error(b.build()).find("outside guest RAM"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsSegmentsBelowOneMiB) {
  ElfBuilder b;
  b.load_addr = 0x1000;  // would overwrite the start info
  b.entry = 0x1000;
  EXPECT_NE(load_error(b.build()).find("below 1 MiB"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsFileSizeLargerThanMemorySize) {
  auto img = ElfBuilder{}.build();
  testing::phdr(img, 0)->p_memsz = 1;
  EXPECT_NE(load_error(img).find("more file bytes"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsSegmentDataPastEndOfFile) {
  auto img = ElfBuilder{}.build();
  testing::phdr(img, 0)->p_filesz = 1 << 20;
  testing::phdr(img, 0)->p_memsz = 1 << 20;
  EXPECT_NE(load_error(img).find("past the end of the file"), std::string::npos);
}

TEST_F(PvhLoaderTest, RejectsEntryOutsideLoadedSegments) {
  ElfBuilder b;
  b.entry = 0x900000;
  EXPECT_NE(load_error(b.build()).find("entry point lies outside"), std::string::npos);
}

TEST(StartInfoTest, LayoutMatchesPvhAbi) {
  // Offsets of struct hvm_start_info in Xen's public header.
  EXPECT_EQ(offsetof(pvh::StartInfo, magic), 0u);
  EXPECT_EQ(offsetof(pvh::StartInfo, version), 4u);
  EXPECT_EQ(offsetof(pvh::StartInfo, flags), 8u);
  EXPECT_EQ(offsetof(pvh::StartInfo, nr_modules), 12u);
  EXPECT_EQ(offsetof(pvh::StartInfo, modlist_paddr), 16u);
  EXPECT_EQ(offsetof(pvh::StartInfo, cmdline_paddr), 24u);
  EXPECT_EQ(offsetof(pvh::StartInfo, rsdp_paddr), 32u);
  EXPECT_EQ(offsetof(pvh::StartInfo, memmap_paddr), 40u);
  EXPECT_EQ(offsetof(pvh::StartInfo, memmap_entries), 48u);
  EXPECT_EQ(sizeof(pvh::StartInfo), 56u);
  EXPECT_EQ(offsetof(pvh::MemmapEntry, size), 8u);
  EXPECT_EQ(offsetof(pvh::MemmapEntry, type), 16u);
  EXPECT_EQ(sizeof(pvh::MemmapEntry), 24u);
}

TEST(StartInfoTest, WritesStartInfoMemoryMapAndCmdline) {
  GuestMemory mem(64 << 20);
  const uint64_t at = write_start_info(mem, "console=ttyS0 exit=3");
  pvh::StartInfo si;
  ASSERT_TRUE(mem.read(at, &si, sizeof si));
  EXPECT_EQ(si.magic, pvh::kStartInfoMagic);
  EXPECT_EQ(si.version, 1u);
  EXPECT_EQ(si.nr_modules, 0u);
  const char* cmd = reinterpret_cast<const char*>(mem.ptr(si.cmdline_paddr, 21));
  ASSERT_NE(cmd, nullptr);
  EXPECT_STREQ(cmd, "console=ttyS0 exit=3");

  ASSERT_EQ(si.memmap_entries, 5u);
  std::vector<pvh::MemmapEntry> map(si.memmap_entries);
  ASSERT_TRUE(mem.read(si.memmap_paddr, map.data(), map.size() * sizeof map[0]));
  uint64_t ram = 0;
  for (const auto& e : map)
    if (e.type == pvh::kRam) ram += e.size;
  EXPECT_EQ(ram, (64u << 20) - 0x61000);  // all RAM but the time page and the legacy hole
  EXPECT_EQ(map[1].addr, platform::kTimePageGpa);
  EXPECT_EQ(map[1].type, pvh::kReserved);
  EXPECT_EQ(map[2].addr, 0x100000u);
  EXPECT_EQ(map[2].addr + map[2].size, 64u << 20);
  // Boot data must not overlap the map, nor the map the command line.
  EXPECT_LE(at + sizeof si, si.memmap_paddr);
  EXPECT_LE(si.memmap_paddr + map.size() * sizeof map[0], si.cmdline_paddr);
}

TEST(StartInfoTest, RejectsOverlongCommandLine) {
  GuestMemory mem(16 << 20);
  EXPECT_THROW(write_start_info(mem, std::string(5000, 'x')), LoadError);
  EXPECT_NO_THROW(write_start_info(mem, std::string(4095, 'x')));
  EXPECT_THROW(write_start_info(mem, std::string("a\0b", 3)), LoadError);
}

}  // namespace
}  // namespace vmm
