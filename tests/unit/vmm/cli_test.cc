#include "vmm/cli.h"
#include "tests/unit/vmm/cli_test_util.h"

#include <gtest/gtest.h>

namespace vmm {
namespace {

TEST(CliTest, ParsesRunWithAllOptions) {
  auto r = parse_cli({"run", "-k", "k.elf", "-m", "128M", "-c", "2", "--cmdline", "a b", "--stats", "--console", "c.log"});
  EXPECT_EQ(r.command, CliCommand::kRun);
  EXPECT_EQ(r.config.kernel, "k.elf");
  EXPECT_EQ(r.config.mem_bytes, 128ull << 20);
  EXPECT_EQ(r.config.vcpus, 2);
  EXPECT_EQ(r.config.cmdline, "a b");
  EXPECT_TRUE(r.config.stats);
  EXPECT_EQ(r.config.console, "c.log");
}

TEST(CliTest, LongOptionsTakeEqualsForm) {
  auto r = parse_cli({"run", "--kernel=k", "--mem=1G", "--cpus=4", "--cmdline=x=1 y"});
  EXPECT_EQ(r.config.kernel, "k");
  EXPECT_EQ(r.config.mem_bytes, 1ull << 30);
  EXPECT_EQ(r.config.vcpus, 4);
  EXPECT_EQ(r.config.cmdline, "x=1 y");
}

TEST(CliTest, Defaults) {
  auto r = parse_cli({"run", "-k", "k"});
  EXPECT_EQ(r.config.mem_bytes, 64ull << 20);
  EXPECT_EQ(r.config.vcpus, 1);
  EXPECT_FALSE(r.config.stats);
  EXPECT_TRUE(r.config.console.empty());
}

TEST(CliTest, HelpAndVersion) {
  EXPECT_EQ(parse_cli({"--help"}).command, CliCommand::kHelp);
  EXPECT_EQ(parse_cli({"--version"}).command, CliCommand::kVersion);
  EXPECT_EQ(parse_cli({"run", "--help"}).command, CliCommand::kHelp);
}

TEST(CliTest, MemorySizes) {
  EXPECT_EQ(parse_mem_size("64M"), 64ull << 20);
  EXPECT_EQ(parse_mem_size("64"), 64ull << 20);  // MiB, as kvmtool
  EXPECT_EQ(parse_mem_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_mem_size("3G"), 3ull << 30);
  EXPECT_EQ(parse_mem_size("32768K"), 32ull << 20);
}

TEST(CliTest, RejectsBadMemorySizes) {
  for (const char* bad : {"", "M", "abc", "64X", "-1", "64MB", "0", "1M", "15M", "4G", "3073M", "1000000000000G",
                          "99999999999999999999", "16385K"}) {
    EXPECT_THROW(parse_mem_size(bad), UsageError) << "accepted '" << bad << "'";
  }
}

TEST(CliTest, RejectsBadInput) {
  EXPECT_NE(usage_error({}).find("no command"), std::string::npos);
  EXPECT_NE(usage_error({"boot"}).find("unknown command"), std::string::npos);
  EXPECT_NE(usage_error({"run"}).find("no kernel"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k"}).find("needs a value"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--frobnicate"}).find("unknown option '--frobnicate'"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "-c", "0"}).find("vCPU count"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "-c", "65"}).find("vCPU count"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "-c", "2x"}).find("vCPU count"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "-m", "lots"}).find("malformed memory size"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--stats=yes"}).find("unknown option"), std::string::npos);
}

TEST(CliTest, Balloon) {
  EXPECT_FALSE(parse_cli({"run", "-k", "k"}).config.balloon);
  auto r = parse_cli({"run", "-k", "k", "--balloon"});
  EXPECT_TRUE(r.config.balloon);
  EXPECT_EQ(r.config.balloon_target, 0u);
  r = parse_cli({"run", "-k", "k", "-m", "128M", "--balloon-target=64M"});  // implies --balloon
  EXPECT_TRUE(r.config.balloon);
  EXPECT_EQ(r.config.balloon_target, 64ull << 20);
  // The order of -m and the target does not matter; the whole RAM is allowed.
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--balloon-target", "1G", "-m", "1G"}).config.balloon_target, 1ull << 30);
  EXPECT_EQ(parse_balloon_size("0"), 0u);
  EXPECT_EQ(parse_balloon_size("8"), 8ull << 20);
  EXPECT_EQ(parse_balloon_size("12K"), 12ull << 10);
  for (const char* bad : {"", "K", "x", "-4M", "5K", "4T", "4G", "64MB"})
    EXPECT_THROW(parse_balloon_size(bad), UsageError) << "accepted '" << bad << "'";
  EXPECT_NE(usage_error({"run", "-k", "k", "--balloon-target", "65M"}).find("larger than the guest's 64 MiB"),
            std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--balloon=1"}).find("unknown option"), std::string::npos);
}

TEST(CliTest, ClockOptions) {
  auto r = parse_cli({"run", "-k", "k", "--clock-offset", "-250ms", "--clock-uncertainty=4ms"});
  EXPECT_EQ(r.config.clock_offset_ns, -250'000'000);
  EXPECT_EQ(r.config.clock_uncertainty_ns, 4'000'000u);
  EXPECT_NE(usage_error({"run", "-k", "k", "--clock-uncertainty", "-1ms"}).find("cannot be negative"), std::string::npos);
}

TEST(CliTest, HaltPoll) {
  EXPECT_EQ(parse_cli({"run", "-k", "k"}).config.halt_poll_ns, 0u);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--halt-poll", "200us"}).config.halt_poll_ns, 200000u);
  EXPECT_NE(usage_error({"run", "-k", "k", "--halt-poll", "-1"}).find("cannot be negative"), std::string::npos);
}

TEST(CliTest, Durations) {
  EXPECT_EQ(parse_duration_ns("42"), 42);
  EXPECT_EQ(parse_duration_ns("42ns"), 42);
  EXPECT_EQ(parse_duration_ns("7us"), 7000);
  EXPECT_EQ(parse_duration_ns("+3ms"), 3'000'000);
  EXPECT_EQ(parse_duration_ns("-2s"), -2'000'000'000);
  for (const char* bad : {"", "-", "ms", "3 ms", "3min", "1e3", "99999999999999999999", "400000000s"})
    EXPECT_THROW(parse_duration_ns(bad), UsageError) << "accepted '" << bad << "'";
}

TEST(CliTest, Disks) {
  EXPECT_TRUE(parse_cli({"run", "-k", "k"}).config.disks.empty());
  auto r = parse_cli({"run", "-k", "k", "--disk", "a.img", "--disk=b.img,ro,serial=vol-2"});
  ASSERT_EQ(r.config.disks.size(), 2u);
  EXPECT_EQ(r.config.disks[0], (DiskConfig{"a.img", false, ""}));
  EXPECT_EQ(r.config.disks[1], (DiskConfig{"b.img", true, "vol-2"}));
  EXPECT_EQ(parse_disk("/tmp/x.img,serial=,ro"), (DiskConfig{"/tmp/x.img", true, ""}));
  EXPECT_EQ(parse_disk("d,serial=01234567890123456789").serial, "01234567890123456789");  // 20: the limit
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk"}).find("needs a value"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", ""}).find("file name"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", ",ro"}).find("file name"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", "d,rw"}).find("unknown disk option 'rw'"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", "d,"}).find("unknown disk option ''"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", "d,serial=012345678901234567890"}).find("longer than 20"),
            std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--disk", "d,serial=a\tb"}).find("printable"), std::string::npos);
}

TEST(CliTest, Net) {
  auto plain = parse_cli({"run", "-k", "k"});
  EXPECT_FALSE(plain.config.net);
  auto r = parse_cli({"run", "-k", "k", "--net"});
  EXPECT_TRUE(r.config.net);
  EXPECT_EQ(r.config.mac, kDefaultMac);
  auto m = parse_cli({"run", "-k", "k", "--mac", "02:00:00:AB:cd:ef"});
  EXPECT_TRUE(m.config.net);  // --mac implies --net
  EXPECT_EQ(m.config.mac, (std::array<uint8_t, 6>{0x02, 0x00, 0x00, 0xab, 0xcd, 0xef}));
  EXPECT_NE(usage_error({"run", "-k", "k", "--net=yes"}).find("unknown option"), std::string::npos);
  for (const char* bad : {"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56", "5:254:00:12:34:56",
                          "52:54:00:12:34:5g", "+2:54:00:12:34:56", "525400123456", " 52:54:00:12:34:5"})
    EXPECT_NE(usage_error({"run", "-k", "k", "--mac", bad}).find("malformed MAC"), std::string::npos) << bad;
  EXPECT_NE(usage_error({"run", "-k", "k", "--mac", "01:00:5e:00:00:01"}).find("multicast"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--mac", "00:00:00:00:00:00"}).find("all zeroes"), std::string::npos);
}

TEST(CliTest, DevicesCombineWithTheRest) {
  auto r = parse_cli({"run", "-k", "build/guest-kernel.elf", "--disk", "/tmp/x.img", "--net", "--stats"});
  EXPECT_EQ(r.config.kernel, "build/guest-kernel.elf");
  EXPECT_EQ(r.config.disks.size(), 1u);
  EXPECT_TRUE(r.config.net);
  EXPECT_TRUE(r.config.stats);
}

TEST(CliTest, Merge) {
  auto r = parse_cli({"run", "-k", "k"});
  EXPECT_EQ(r.merge.mode, MergeMode::kOff);
  EXPECT_EQ(r.merge.pages_per_second, kDefaultMergeRate);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--merge=vmm"}).merge.mode, MergeMode::kVmm);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--merge", "ksm"}).merge.mode, MergeMode::kKsm);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--merge", "off"}).merge.mode, MergeMode::kOff);
  r = parse_cli({"run", "-k", "k", "--vms", "4", "--merge=vmm", "--merge-rate", "1000"});
  EXPECT_EQ(r.merge.mode, MergeMode::kVmm);
  EXPECT_EQ(r.merge.pages_per_second, 1000u);
  EXPECT_EQ(r.cluster.vms, 4);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--merge=vmm", "--merge-rate=1048576"}).merge.pages_per_second, 1u << 20);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--merge-rate=1", "--merge=vmm"}).merge.pages_per_second, 1u);
  for (const char* bad : {"", "on", "VMM", "ksm,vmm", "1"})
    EXPECT_NE(usage_error({"run", "-k", "k", std::string("--merge=") + bad}).find("--merge must be off, vmm or ksm"),
              std::string::npos)
        << bad;
  for (const char* bad : {"", "0", "-5", "1048577", "10k", "1e5", "99999999999999999999999"})
    EXPECT_NE(usage_error({"run", "-k", "k", "--merge=vmm", std::string("--merge-rate=") + bad})
                  .find("--merge-rate must be a number of pages per second from 1 to 1048576"),
              std::string::npos)
        << bad;
  EXPECT_NE(usage_error({"run", "-k", "k", "--merge-rate", "100"}).find("applies only to --merge vmm"),
            std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--merge=ksm", "--merge-rate", "100"}).find("applies only to --merge vmm"),
            std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--merge"}).find("needs a value"), std::string::npos);
}

}  // namespace
}  // namespace vmm
