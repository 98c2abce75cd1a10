#include "vmm/net/switch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace vmm::net {
namespace {

using namespace std::chrono_literals;

constexpr MacAddress kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr MacAddress kMulticast = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
MacAddress mac(uint8_t last) { return {0x52, 0x54, 0x00, 0x00, 0x00, last}; }

// An Ethernet frame whose payload starts with a sequence number.
Frame make_frame(const MacAddress& dst, const MacAddress& src, uint32_t seq = 0, size_t size = 64) {
  Frame f(std::max<size_t>(size, 18), 0);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  f[12] = 0x88, f[13] = 0xb5;  // the local experimental EtherType
  std::memcpy(f.data() + 14, &seq, 4);
  f.resize(size);
  return f;
}

uint32_t seq_of(const Frame& f) {
  uint32_t s;
  std::memcpy(&s, f.data() + 14, 4);
  return s;
}

// A sink that records what it gets; deliver() may run on any thread.
class RecordingSink : public FrameSink {
 public:
  void deliver(Frame frame) override {
    std::lock_guard lock(mu_);
    frames_.push_back(std::move(frame));
    cv_.notify_all();
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return frames_.size();
  }
  std::vector<Frame> frames() {
    std::lock_guard lock(mu_);
    return frames_;
  }
  std::vector<uint32_t> seqs() {
    std::vector<uint32_t> s;
    for (const Frame& f : frames()) s.push_back(seq_of(f));
    return s;
  }
  bool wait_for(size_t n, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return frames_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Frame> frames_;
};

struct Rig {
  explicit Rig(SwitchOptions o = {}, int n = 3) : sw(std::move(o)) {
    for (int i = 0; i < n; ++i) {
      sinks.push_back(std::make_shared<RecordingSink>());
      ports.push_back(sw.attach(name(i), sinks.back()));
    }
  }
  static std::string name(int i) { return "vm" + std::to_string(i); }
  bool send(int from, const Frame& f) { return ports[from]->transmit(f); }
  // Port i announces its MAC (52:54:00:00:00:i) with a broadcast.
  void announce(int i) { send(i, make_frame(kBroadcast, mac(i))); }
  Switch sw;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  std::vector<std::shared_ptr<FramePort>> ports;
};

TEST(SwitchTest, FloodsBroadcastToEveryOtherPortNeverBack) {
  Rig r;
  ASSERT_TRUE(r.send(0, make_frame(kBroadcast, mac(0))));
  EXPECT_EQ(r.sinks[0]->count(), 0u);
  EXPECT_EQ(r.sinks[1]->count(), 1u);
  EXPECT_EQ(r.sinks[2]->count(), 1u);
  EXPECT_EQ(r.sw.stats().flooded, 1u);
  EXPECT_EQ(r.sw.port_stats("vm0").in_frames, 1u);
  EXPECT_EQ(r.sw.port_stats("vm0").in_bytes, 64u);
  EXPECT_EQ(r.sw.port_stats("vm1").out_frames, 1u);
  EXPECT_EQ(r.sw.port_stats("vm2").out_bytes, 64u);
  EXPECT_EQ(r.sw.port_stats("vm0").out_frames, 0u);
}

TEST(SwitchTest, FloodsMulticastAndUnknownUnicast) {
  Rig r;
  r.send(0, make_frame(kMulticast, mac(0)));
  r.send(0, make_frame(mac(9), mac(0)));  // nobody has announced 9
  EXPECT_EQ(r.sinks[1]->count(), 2u);
  EXPECT_EQ(r.sinks[2]->count(), 2u);
  EXPECT_EQ(r.sinks[0]->count(), 0u);
  EXPECT_EQ(r.sw.stats().flooded, 2u);
}

TEST(SwitchTest, LearnsSourceAndForwardsUnicastToOnePort) {
  Rig r;
  r.announce(1);
  r.send(0, make_frame(mac(1), mac(0), 7));
  ASSERT_EQ(r.sinks[1]->count(), 1u);  // the unicast only: vm1 never hears its own broadcast
  EXPECT_EQ(r.sinks[1]->seqs().back(), 7u);
  EXPECT_EQ(r.sinks[2]->count(), 1u);  // only the announcement
  // vm0 was learned from that frame: the reply is unicast too.
  r.send(1, make_frame(mac(0), mac(1), 8));
  EXPECT_EQ(r.sinks[0]->seqs(), (std::vector<uint32_t>{0, 8}));  // vm1's announcement, then the reply
  EXPECT_EQ(r.sinks[2]->count(), 1u);
  EXPECT_EQ(r.sw.stats().unicast, 2u);
  EXPECT_EQ(r.sw.stats().macs_learned, 2u);
}

TEST(SwitchTest, NoHairpinForADestinationLearnedOnTheSourcePort) {
  Rig r;
  r.send(0, make_frame(kBroadcast, mac(0)));
  r.send(0, make_frame(mac(0), mac(5)));  // to a MAC that lives behind vm0 itself
  EXPECT_EQ(r.sinks[0]->count(), 0u);
  EXPECT_EQ(r.sinks[1]->count(), 1u);
  EXPECT_EQ(r.sw.port_stats("vm0").drop_hairpin, 1u);
}

TEST(SwitchTest, RelearnsAMacThatMovesToAnotherPort) {
  Rig r;
  r.send(1, make_frame(kBroadcast, mac(7)));
  r.send(2, make_frame(kBroadcast, mac(7)));  // the MAC moved (a VM restarted elsewhere)
  r.send(0, make_frame(mac(7), mac(0), 3));
  EXPECT_EQ(r.sinks[2]->seqs().back(), 3u);
  EXPECT_EQ(r.sinks[1]->count(), 1u);  // vm2's broadcast only
  EXPECT_EQ(r.sw.stats().mac_moves, 1u);
}

TEST(SwitchTest, EntriesAgeOut) {
  std::atomic<uint64_t> now{1000};
  SwitchOptions o;
  o.aging_ns = 300ull * 1000000000;
  o.clock = [&] { return now.load(); };
  Rig r(o);
  r.announce(1);
  now += 299ull * 1000000000;
  r.send(0, make_frame(mac(1), mac(0)));
  EXPECT_EQ(r.sinks[2]->count(), 1u) << "still learned: unicast";
  now += 2ull * 1000000000;  // 301 s after vm1 last spoke
  r.send(0, make_frame(mac(1), mac(0)));
  EXPECT_EQ(r.sinks[2]->count(), 2u) << "aged out: flooded";
  EXPECT_EQ(r.sinks[1]->count(), 2u);
}

TEST(SwitchTest, FullTableStopsLearningButStillForwards) {
  SwitchOptions o;
  o.max_macs = 2;
  Rig r(o);
  r.announce(0);
  r.announce(1);
  r.announce(2);  // not learned
  EXPECT_EQ(r.sw.stats().learn_table_full, 1u);
  EXPECT_EQ(r.sw.stats().macs_learned, 2u);
  r.send(0, make_frame(mac(2), mac(0)));  // unknown: flooded, still arrives
  EXPECT_EQ(r.sinks[2]->count(), 3u);
}

TEST(SwitchTest, RefusesRuntsAndOversizedFrames) {
  Rig r;
  Frame runt = make_frame(kBroadcast, mac(0), 0, 64);
  runt.resize(kEthHeaderLen - 1);
  EXPECT_FALSE(r.send(0, runt));
  EXPECT_FALSE(r.send(0, make_frame(kBroadcast, mac(0), 0, kMaxFrameLen + 1)));
  EXPECT_TRUE(r.send(0, make_frame(kBroadcast, mac(0), 0, kEthHeaderLen)));
  EXPECT_TRUE(r.send(0, make_frame(kBroadcast, mac(0), 0, kMaxFrameLen)));
  const PortStats s = r.sw.port_stats("vm0");
  EXPECT_EQ(s.drop_runt, 1u);
  EXPECT_EQ(s.drop_oversize, 1u);
  EXPECT_EQ(s.in_frames, 2u);
  EXPECT_EQ(r.sinks[1]->count(), 2u);
}

TEST(SwitchTest, DropsFramesWithAGroupOrZeroSourceMac) {
  Rig r;
  EXPECT_TRUE(r.send(0, make_frame(kBroadcast, kMulticast)));
  EXPECT_TRUE(r.send(0, make_frame(kBroadcast, MacAddress{})));
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sw.port_stats("vm0").drop_bad_source, 2u);
  EXPECT_EQ(r.sw.stats().macs_learned, 0u);
}

TEST(SwitchTest, DetachOnPortDestructionAndByName) {
  Rig r;
  r.announce(1);
  r.ports[1].reset();  // vm1's NIC goes away
  EXPECT_FALSE(r.sw.attached("vm1"));
  r.send(0, make_frame(mac(1), mac(0)));  // its MAC is forgotten: flooded to vm2 only
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sinks[2]->count(), 2u);

  auto stale = r.ports[2];
  r.sw.detach("vm2");
  EXPECT_FALSE(stale->transmit(make_frame(kBroadcast, mac(2))));
  EXPECT_THROW(r.sw.detach("vm2"), std::invalid_argument);
  auto sink = std::make_shared<RecordingSink>();
  auto fresh = r.sw.attach("vm2", sink);
  stale.reset();  // destroying the stale port must not detach the new one
  r.ports[2].reset();
  EXPECT_TRUE(r.sw.attached("vm2"));
  r.announce(0);
  EXPECT_EQ(sink->count(), 1u);
}

TEST(SwitchTest, RejectsDuplicateAndEmptyNames) {
  Rig r;
  EXPECT_THROW(r.sw.attach("vm0", std::make_shared<RecordingSink>()), std::invalid_argument);
  EXPECT_THROW(r.sw.attach("", std::make_shared<RecordingSink>()), std::invalid_argument);
  EXPECT_THROW(r.sw.attach("x", nullptr), std::invalid_argument);
  EXPECT_EQ(r.sw.ports(), (std::vector<std::string>{"vm0", "vm1", "vm2"}));
}

TEST(SwitchTest, LinkControlsValidateTheirArguments) {
  Rig r;
  EXPECT_THROW(r.sw.set_link("vm0", "nope", {}), std::invalid_argument);
  EXPECT_THROW(r.sw.set_link("vm0", "vm0", {.cut = true}), std::invalid_argument);
  EXPECT_THROW(r.sw.set_link("vm0", "vm1", {.drop_prob = 1.5}), std::invalid_argument);
  EXPECT_THROW(r.sw.set_link("vm0", "vm1", {.dup_prob = -0.1}), std::invalid_argument);
  EXPECT_THROW(r.sw.set_link("vm0", "vm1", {.reorder_prob = std::nan("")}), std::invalid_argument);
  EXPECT_THROW(r.sw.isolate("nope"), std::invalid_argument);
  EXPECT_THROW(r.sw.partition({{"vm0"}, {"nope"}}), std::invalid_argument);
  const LinkFaults f{.drop_prob = 0.25, .delay_ns = 5};
  r.sw.set_link("vm0", "vm1", f);
  EXPECT_EQ(r.sw.link("vm0", "vm1"), f);
  EXPECT_TRUE(r.sw.link("vm1", "vm0").healthy());
}

TEST(SwitchTest, CutLinkDropsOneDirectionOnlyAndHeals) {
  Rig r;
  r.sw.set_link("vm0", "vm1", {.cut = true});
  r.announce(0);
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sinks[2]->count(), 1u);
  r.announce(1);  // the other direction still works
  EXPECT_EQ(r.sinks[0]->count(), 1u);
  EXPECT_EQ(r.sw.port_stats("vm0").drop_cut, 1u);
  EXPECT_EQ(r.sw.link_stats("vm0", "vm1").drop_cut, 1u);
  EXPECT_EQ(r.sw.link_stats("vm0", "vm2").forwarded, 1u);
  r.sw.heal_all();
  r.announce(0);
  EXPECT_EQ(r.sinks[1]->count(), 1u);
}

TEST(SwitchTest, IsolateCutsEverythingInAndOut) {
  Rig r;
  r.sw.isolate("vm1");
  r.announce(0);
  r.announce(1);
  r.announce(2);
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sinks[0]->count(), 1u);  // from vm2
  EXPECT_EQ(r.sinks[2]->count(), 1u);  // from vm0
  EXPECT_EQ(r.sw.port_stats("vm1").drop_cut, 2u);
}

TEST(SwitchTest, PartitionCutsBetweenGroupsOnly) {
  Rig r({}, 4);
  r.sw.partition({{"vm0", "vm1"}, {"vm2"}});  // vm3 in no group: untouched
  for (int i = 0; i < 4; ++i) r.announce(i);
  EXPECT_EQ(r.sinks[0]->count(), 2u);  // vm1, vm3
  EXPECT_EQ(r.sinks[1]->count(), 2u);  // vm0, vm3
  EXPECT_EQ(r.sinks[2]->count(), 1u);  // vm3
  EXPECT_EQ(r.sinks[3]->count(), 3u);
  r.sw.heal_all();
  r.announce(2);
  EXPECT_EQ(r.sinks[0]->count(), 3u);
}

TEST(SwitchTest, BridgePartitionKeepsTheMiddleNodeInBothHalves) {
  Rig r({}, 4);
  r.sw.partition({{"vm0", "vm2"}, {"vm1", "vm2"}});  // vm2 bridges; vm3 in no group
  for (int i = 0; i < 4; ++i) r.announce(i);
  EXPECT_EQ(r.sinks[0]->count(), 2u);  // vm2, vm3 (not vm1)
  EXPECT_EQ(r.sinks[1]->count(), 2u);  // vm2, vm3 (not vm0)
  EXPECT_EQ(r.sinks[2]->count(), 3u);  // everyone
  EXPECT_EQ(r.sinks[3]->count(), 3u);
  EXPECT_TRUE(r.sw.link("vm0", "vm1").cut);
  EXPECT_TRUE(r.sw.link("vm1", "vm0").cut);
  EXPECT_FALSE(r.sw.link("vm0", "vm2").cut);
  EXPECT_FALSE(r.sw.link("vm2", "vm1").cut);
}

TEST(SwitchTest, FaultsPersistWhenAPortReattaches) {
  Rig r;
  r.sw.set_link("vm0", "vm1", {.cut = true});
  r.ports[1].reset();
  auto sink = std::make_shared<RecordingSink>();
  auto port = r.sw.attach("vm1", sink);
  r.announce(0);
  EXPECT_EQ(sink->count(), 0u);
  EXPECT_TRUE(r.sw.link("vm0", "vm1").cut);
}

std::vector<uint32_t> lossy_run(uint64_t seed, double drop) {
  SwitchOptions o;
  o.seed = seed;
  Rig r(o, 2);
  r.sw.set_link("vm0", "vm1", {.drop_prob = drop});
  for (uint32_t i = 0; i < 2000; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  const PortStats s = r.sw.port_stats("vm0");
  EXPECT_EQ(s.drop_loss + r.sinks[1]->count(), 2000u);
  return r.sinks[1]->seqs();
}

TEST(SwitchTest, RandomLossMatchesItsProbabilityAndIsReproducible) {
  const auto a = lossy_run(42, 0.3), b = lossy_run(42, 0.3), c = lossy_run(43, 0.3);
  EXPECT_GT(a.size(), 1250u);  // 1400 expected; binomial sd is about 20
  EXPECT_LT(a.size(), 1550u);
  EXPECT_EQ(a, b) << "same seed, same fate for every frame";
  EXPECT_NE(a, c);
  EXPECT_EQ(lossy_run(1, 1.0).size(), 0u);
  EXPECT_EQ(lossy_run(1, 0.0).size(), 2000u);
}

TEST(SwitchTest, LinkFateDoesNotDependOnOtherLinks) {
  // vm0 -> vm1's fate is the same whether or not vm0 -> vm2 is lossy too.
  auto run = [](bool other_lossy) {
    SwitchOptions o;
    o.seed = 9;
    Rig r(o);
    r.sw.set_link("vm0", "vm1", {.drop_prob = 0.5});
    if (other_lossy) r.sw.set_link("vm0", "vm2", {.drop_prob = 0.5});
    for (uint32_t i = 0; i < 200; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
    return r.sinks[1]->seqs();
  };
  EXPECT_EQ(run(false), run(true));
}

TEST(SwitchTest, DuplicationDeliversTwoCopies) {
  Rig r({}, 2);
  r.sw.set_link("vm0", "vm1", {.dup_prob = 1.0});
  for (uint32_t i = 0; i < 5; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  EXPECT_EQ(r.sinks[1]->seqs(), (std::vector<uint32_t>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(r.sw.port_stats("vm0").duplicated, 5u);
  EXPECT_EQ(r.sw.link_stats("vm0", "vm1").forwarded, 10u);
  EXPECT_EQ(r.sw.port_stats("vm1").out_frames, 10u);
}

TEST(SwitchTest, DelayHoldsFramesAndKeepsTheirOrder) {
  Rig r({}, 2);
  constexpr uint64_t kDelay = 30000000;  // 30 ms
  r.sw.set_link("vm0", "vm1", {.delay_ns = kDelay});
  const auto t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < 50; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sw.pending(), 50u);
  ASSERT_TRUE(r.sinks[1]->wait_for(50));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::nanoseconds(kDelay));
  std::vector<uint32_t> want(50);
  for (uint32_t i = 0; i < 50; ++i) want[i] = i;
  EXPECT_EQ(r.sinks[1]->seqs(), want);
  EXPECT_EQ(r.sw.port_stats("vm0").delayed, 50u);
  EXPECT_EQ(r.sw.pending(), 0u);
}

TEST(SwitchTest, JitterReordersButLosesNothing) {
  Rig r({}, 2);
  r.sw.set_link("vm0", "vm1", {.delay_ns = 1000000, .jitter_ns = 20000000});
  for (uint32_t i = 0; i < 100; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  ASSERT_TRUE(r.sinks[1]->wait_for(100));
  auto got = r.sinks[1]->seqs();
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end())) << "100 frames over 20 ms of jitter stay in order?";
  std::sort(got.begin(), got.end());
  for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
}

TEST(SwitchTest, ReorderSwapsNeighbours) {
  Rig r({}, 2);
  r.sw.set_link("vm0", "vm1", {.reorder_prob = 1.0});
  for (uint32_t i = 0; i < 6; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  EXPECT_EQ(r.sinks[1]->seqs(), (std::vector<uint32_t>{1, 0, 3, 2, 5, 4}));
  EXPECT_EQ(r.sw.port_stats("vm0").reordered, 3u);
}

TEST(SwitchTest, ReorderWithDelayStillSwaps) {
  Rig r({}, 2);
  r.sw.set_link("vm0", "vm1", {.delay_ns = 5000000, .reorder_prob = 1.0});
  for (uint32_t i = 0; i < 4; ++i) r.send(0, make_frame(kBroadcast, mac(0), i));
  ASSERT_TRUE(r.sinks[1]->wait_for(4));
  EXPECT_EQ(r.sinks[1]->seqs(), (std::vector<uint32_t>{1, 0, 3, 2}));
}

TEST(SwitchTest, HeldFrameGoesOutAfterTheHoldLimitWithoutASuccessor) {
  SwitchOptions o;
  o.reorder_hold_ns = 20000000;
  Rig r(o, 2);
  r.sw.set_link("vm0", "vm1", {.reorder_prob = 1.0});
  r.send(0, make_frame(kBroadcast, mac(0), 1));
  EXPECT_EQ(r.sinks[1]->count(), 0u);
  EXPECT_EQ(r.sw.pending(), 1u);
  ASSERT_TRUE(r.sinks[1]->wait_for(1));
  EXPECT_EQ(r.sw.pending(), 0u);
}

TEST(SwitchTest, HealReleasesHeldFrames) {
  SwitchOptions o;
  o.reorder_hold_ns = 60ull * 1000000000;
  Rig r(o, 2);
  r.sw.set_link("vm0", "vm1", {.reorder_prob = 1.0});
  r.send(0, make_frame(kBroadcast, mac(0), 1));
  r.sw.heal_all();
  EXPECT_EQ(r.sinks[1]->seqs(), std::vector<uint32_t>{1});
}

TEST(SwitchTest, DelayedFrameToADetachedPortIsCounted) {
  Rig r({}, 2);
  r.sw.set_link("vm0", "vm1", {.delay_ns = 20000000});
  r.send(0, make_frame(kBroadcast, mac(0)));
  r.ports[1].reset();
  for (int i = 0; i < 200 && r.sw.pending(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(r.sw.port_stats("vm0").drop_detached, 1u);
  EXPECT_EQ(r.sinks[1]->count(), 0u);
}

TEST(SwitchTest, DestroyingTheSwitchWithFramesInFlightIsSafe) {
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<FramePort> survivor;
  {
    Switch sw;
    survivor = sw.attach("a", sink);
    auto b = sw.attach("b", std::make_shared<RecordingSink>());
    sw.set_link("a", "b", {.delay_ns = 1000000000});
    EXPECT_TRUE(survivor->transmit(make_frame(kBroadcast, mac(1))));
  }
  EXPECT_FALSE(survivor->transmit(make_frame(kBroadcast, mac(1))));
}

// Many NIC threads at once, some links delayed and lossy: every frame is
// accounted for exactly once.
TEST(SwitchTest, ConcurrentTransmitAccountsForEveryFrame) {
  constexpr int kPorts = 5, kFrames = 3000;
  Rig r({}, kPorts);
  for (int i = 0; i < kPorts; ++i) r.announce(i);
  r.sw.set_link("vm0", "vm1", {.drop_prob = 0.1, .delay_ns = 100000, .jitter_ns = 100000});
  r.sw.set_link("vm2", "vm3", {.dup_prob = 0.2, .reorder_prob = 0.2});
  std::vector<std::thread> threads;
  for (int t = 0; t < kPorts; ++t)
    threads.emplace_back([&r, t] {
      for (uint32_t i = 0; i < kFrames; ++i) {
        // Alternate unicast to the next port and broadcast.
        const MacAddress dst = i % 2 ? kBroadcast : mac((t + 1) % kPorts);
        r.send(t, make_frame(dst, mac(t), i));
      }
    });
  for (auto& th : threads) th.join();
  for (int i = 0; i < 400 && r.sw.pending(); ++i) std::this_thread::sleep_for(5ms);
  r.sw.heal_all();  // releases a frame still held for reordering
  ASSERT_EQ(r.sw.pending(), 0u);
  uint64_t in = 0, out = 0, dropped = 0, dups = 0;
  for (int i = 0; i < kPorts; ++i) {
    const PortStats s = r.sw.port_stats(Rig::name(i));
    in += s.in_frames, out += s.out_frames, dropped += s.drop_loss, dups += s.duplicated;
    EXPECT_EQ(s.out_frames, r.sinks[i]->count());
  }
  EXPECT_EQ(in, uint64_t(kPorts) * (kFrames + 1));
  // Each unicast reaches one port, each broadcast the other four.
  const uint64_t copies = kPorts * (uint64_t(kFrames / 2) * 1 + uint64_t(kFrames / 2 + 1) * (kPorts - 1));
  EXPECT_EQ(out + dropped, copies + dups);
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(dups, 0u);
}

TEST(SwitchTest, FormatsAStatsTable) {
  Rig r;
  r.announce(0);
  const std::string t = r.sw.format_stats();
  EXPECT_NE(t.find("in frames"), std::string::npos);
  EXPECT_NE(t.find("vm2"), std::string::npos);
  EXPECT_NE(t.find("1 flooded"), std::string::npos);
  EXPECT_EQ(format_mac(mac(0x1a)), "52:54:00:00:00:1a");
}

}  // namespace
}  // namespace vmm::net
