// Cluster mode's command line and per-VM configuration (no KVM needed).
#include <gtest/gtest.h>

#include "vmm/cli.h"
#include "tests/unit/vmm/cli_test_util.h"
#include "vmm/cluster.h"

namespace vmm {
namespace {

TEST(ClusterCliTest, NoClusterWithoutVmsOrGateway) {
  const auto r = parse_cli({"run", "-k", "k"});
  EXPECT_EQ(r.cluster.vms, 0);
  EXPECT_EQ(r.cluster.gateway_base, 0);
  EXPECT_EQ(r.cluster.switch_seed, 1u);
}

TEST(ClusterCliTest, ParsesVmsGatewayAndSeed) {
  auto r = parse_cli({"run", "-k", "k", "--vms", "3", "--gateway", "9000:7100", "--switch-seed=77"});
  EXPECT_EQ(r.cluster.vms, 3);
  EXPECT_EQ(r.cluster.gateway_base, 9000);
  EXPECT_EQ(r.cluster.gateway_service_port, 7100);
  EXPECT_EQ(r.cluster.switch_seed, 77u);
  r = parse_cli({"run", "-k", "k", "--gateway=9000"});
  EXPECT_EQ(r.cluster.vms, 1) << "--gateway alone means one VM behind the gateway";
  EXPECT_EQ(r.cluster.gateway_service_port, 7000);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--vms", "64"}).cluster.vms, 64);
}

TEST(ClusterCliTest, BadVmCounts) {
  for (const char* bad : {"0", "-1", "65", "two", "", "3x", "1.5"})
    EXPECT_NE(usage_error({"run", "-k", "k", "--vms", bad}).find("--vms must be a number from 1 to 64"), std::string::npos)
        << bad;
  EXPECT_EQ(usage_error({"run", "-k", "k", "--vms"}), "option --vms needs a value");
}

TEST(ClusterCliTest, BadGateways) {
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "0"}).find("--gateway BASE must be a UDP port"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "70000"}).find("not '70000'"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "abc"}).find("--gateway BASE"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "9000:"}).find("service PORT"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "9000:0"}).find("service PORT"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", "9000:1:2"}).find("service PORT"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--gateway", ":7000"}).find("--gateway BASE"), std::string::npos);
  // The last VM's host port must exist.
  EXPECT_NE(usage_error({"run", "-k", "k", "--vms", "4", "--gateway", "65533"}).find("leaves no host port for VM 3"),
            std::string::npos);
  EXPECT_EQ(usage_error({"run", "-k", "k", "--vms", "3", "--gateway", "65533"}), "");
}

TEST(ClusterCliTest, BadSeeds) {
  EXPECT_NE(usage_error({"run", "-k", "k", "--switch-seed", "-3"}).find("--switch-seed"), std::string::npos);
  EXPECT_NE(usage_error({"run", "-k", "k", "--switch-seed", "18446744073709551616"}).find("--switch-seed"),
            std::string::npos);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--switch-seed", "18446744073709551615"}).cluster.switch_seed, UINT64_MAX);
}

TEST(ClusterCliTest, OnCrashPolicy) {
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--vms", "2"}).cluster.crash_restarts, 0);
  auto r = parse_cli({"run", "-k", "k", "--vms", "2", "--on-crash", "restart"});
  EXPECT_EQ(r.cluster.crash_restarts, kDefaultCrashRestarts);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--on-crash=restart:1"}).cluster.crash_restarts, 1);
  EXPECT_EQ(parse_cli({"run", "-k", "k", "--on-crash=restart:100"}).cluster.crash_restarts, 100);
  r = parse_cli({"run", "-k", "k", "--on-crash=stop"});
  EXPECT_EQ(r.cluster.crash_restarts, 0);
  EXPECT_EQ(r.cluster.vms, 1) << "a crash policy is a cluster's: one VM";
  for (const char* bad : {"reboot", "restart:", "restart:0", "restart:101", "restart:-1", "restart:2x", "Restart"})
    EXPECT_EQ(usage_error({"run", "-k", "k", "--on-crash", bad}),
              std::string("--on-crash must be stop, restart or restart:N (N from 1 to 100), not '") + bad + "'");
  EXPECT_EQ(usage_error({"run", "-k", "k", "--on-crash"}), "option --on-crash needs a value");
}

TEST(ClusterCliTest, SharedConsoleFileNeedsAnIndex) {
  EXPECT_NE(usage_error({"run", "-k", "k", "--vms", "2", "--console", "c.log"}).find("must contain %i"),
            std::string::npos);
  EXPECT_EQ(usage_error({"run", "-k", "k", "--vms", "2", "--console", "c%i.log"}), "");
  EXPECT_EQ(usage_error({"run", "-k", "k", "--vms", "1", "--console", "c.log"}), "");
}

TEST(ClusterConfigTest, SubstitutesTheVmIndex) {
  EXPECT_EQ(substitute_vm_index("node=%i disk=d%i.img", 7), "node=7 disk=d7.img");
  EXPECT_EQ(substitute_vm_index("100%% %d %", 3), "100% %d %");
  EXPECT_EQ(substitute_vm_index("%%i", 3), "%i");
  EXPECT_EQ(substitute_vm_index("", 3), "");
  EXPECT_EQ(substitute_vm_index("%i%i", 12), "1212");
}

TEST(ClusterConfigTest, PerVmConfigFollowsTheAddressPlan) {
  VmConfig base;
  base.cmdline = "node=%i exit=0";
  base.console = "out/vm%i.log";
  const VmConfig c = cluster_vm_config(base, 2);
  EXPECT_EQ(c.cmdline, "node=2 exit=0 ip=10.0.0.12 gw=10.0.0.1");
  EXPECT_EQ(c.console, "out/vm2.log");
  EXPECT_EQ(cluster_vm_config(VmConfig{}, 0).cmdline, "ip=10.0.0.10 gw=10.0.0.1");
  base.cmdline = "ip=10.0.0.99 x";  // the user's own address wins
  EXPECT_EQ(cluster_vm_config(base, 1).cmdline, "ip=10.0.0.99 x gw=10.0.0.1");
  EXPECT_EQ(net::format_mac(cluster_vm_mac(0)), "52:54:00:00:00:0a");
  EXPECT_EQ(net::format_mac(cluster_vm_mac(63)), "52:54:00:00:00:49");
  EXPECT_EQ(net::format_ipv4(cluster_vm_ip(63)), "10.0.0.73");
  EXPECT_EQ(cluster_port_name(4), "vm4");
}

}  // namespace
}  // namespace vmm
