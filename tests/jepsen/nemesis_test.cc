#include "tests/jepsen/nemesis.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "vmm/net/switch.h"

namespace jepsen {
namespace {

struct DiscardSink : vmm::net::FrameSink {
  void deliver(vmm::net::Frame) override {}
};

TEST(Nemesis, ParsesEveryKindAndRejectsOthers) {
  NemesisKind k;
  for (const char* name : {"none", "partition", "kill", "pause", "clock", "net", "all"}) {
    ASSERT_TRUE(parse_nemesis(name, &k)) << name;
    EXPECT_STREQ(to_string(k), name);
  }
  EXPECT_FALSE(parse_nemesis("", &k));
  EXPECT_FALSE(parse_nemesis("Partition", &k));
  EXPECT_FALSE(parse_nemesis("meteor", &k));
}

TEST(Nemesis, PartitionsCoverEveryNodeAndCutSomething) {
  for (int nodes : {3, 5}) {
    NemesisSchedule s(NemesisKind::kPartition, nodes, 42);
    for (int i = 0; i < 50; ++i) {
      Fault f = s.next();
      ASSERT_EQ(f.inject.size(), 1u);
      EXPECT_EQ(f.inject[0]["cmd"], "partition");
      const auto groups = f.inject[0]["groups"].get<std::vector<std::vector<int>>>();
      ASSERT_EQ(groups.size(), 2u);
      std::set<int> all;
      for (const auto& g : groups) {
        EXPECT_FALSE(g.empty()) << f.description;
        all.insert(g.begin(), g.end());
      }
      EXPECT_EQ(all.size(), static_cast<size_t>(nodes)) << f.description;
      // Some pair of nodes can no longer talk.
      EXPECT_LT(groups[0].size() + groups[1].size(), static_cast<size_t>(2 * nodes)) << f.description;
      ASSERT_EQ(f.heal.size(), 1u);
      EXPECT_EQ(f.heal[0]["cmd"], "heal");
    }
  }
}

// The switch takes every partition the schedule draws (a bridge names its
// middle node in both groups) and cuts exactly the links between nodes
// that share no group: some, never all, and never one of the bridge's.
TEST(Nemesis, SwitchAcceptsEveryPartition) {
  for (int nodes : {3, 5}) {
    NemesisSchedule s(NemesisKind::kPartition, nodes, 9);
    bool saw_bridge = false;
    for (int i = 0; i < 60; ++i) {
      vmm::net::Switch sw;
      std::vector<std::shared_ptr<vmm::net::FramePort>> ports;
      for (int vm = 0; vm < nodes; ++vm) ports.push_back(sw.attach("vm" + std::to_string(vm), std::make_shared<DiscardSink>()));
      const Fault f = s.next();
      std::vector<std::vector<std::string>> groups;
      for (const auto& g : f.inject[0]["groups"]) {
        groups.emplace_back();
        for (const auto& vm : g) groups.back().push_back("vm" + std::to_string(vm.get<int>()));
      }
      ASSERT_NO_THROW(sw.partition(groups)) << f.description;
      saw_bridge |= f.description.find("bridge") != std::string::npos;
      int cut = 0;
      for (int a = 0; a < nodes; ++a) {
        for (int b = 0; b < nodes; ++b) {
          if (a == b) continue;
          bool together = false;
          for (const auto& g : f.inject[0]["groups"]) {
            const auto v = g.get<std::vector<int>>();
            together |= std::count(v.begin(), v.end(), a) && std::count(v.begin(), v.end(), b);
          }
          const bool is_cut = sw.link("vm" + std::to_string(a), "vm" + std::to_string(b)).cut;
          EXPECT_EQ(is_cut, !together) << f.description << " vm" << a << "->vm" << b;
          cut += is_cut;
        }
      }
      EXPECT_GT(cut, 0) << f.description;
      EXPECT_LT(cut, nodes * (nodes - 1)) << f.description;
    }
    EXPECT_TRUE(saw_bridge) << nodes << " nodes";
  }
}

TEST(Nemesis, EveryFaultHasItsUndoAndIsReproducible) {
  NemesisSchedule a(NemesisKind::kAll, 5, 7), b(NemesisKind::kAll, 5, 7);
  std::set<std::string> kinds;
  for (int i = 0; i < 100; ++i) {
    Fault fa = a.next(), fb = b.next();
    EXPECT_EQ(fa.description, fb.description) << "same seed, same schedule";
    ASSERT_FALSE(fa.inject.empty());
    ASSERT_FALSE(fa.heal.empty());
    const std::string cmd = fa.inject[0]["cmd"];
    kinds.insert(cmd);
    const std::map<std::string, std::string> undo = {
        {"kill", "restart"}, {"pause", "resume"}, {"clock", "clock"}, {"partition", "heal"}, {"link", "heal"}};
    EXPECT_EQ(fa.heal[0]["cmd"], undo.at(cmd));
    if (fa.inject[0].contains("vm")) {
      EXPECT_LT(fa.inject[0]["vm"].get<int>(), 5);
      EXPECT_GE(fa.inject[0]["vm"].get<int>(), 0);
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"partition", "kill", "pause", "clock", "link"}));
  EXPECT_FALSE(a.heal_all().empty());
  // The lossy-link fault covers every directed link with probabilities.
  NemesisSchedule n(NemesisKind::kNet, 3, 1);
  Fault f = n.next();
  EXPECT_EQ(f.inject.size(), 6u);
  for (const auto& r : f.inject) {
    EXPECT_NE(r["from"], r["to"]);
    EXPECT_GE(r["drop"].get<double>(), 0.05);
    EXPECT_LE(r["drop"].get<double>(), 0.25);
  }
  EXPECT_TRUE(NemesisSchedule(NemesisKind::kNone, 3, 1).heal_all().empty());
}

}  // namespace
}  // namespace jepsen
