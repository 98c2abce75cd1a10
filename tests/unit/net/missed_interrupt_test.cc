// NetDevice::sweep_missed_interrupt: frames that wait through a whole sweep
// period with no interrupt taken are a missed interrupt; anything else is
// left to the interrupt.
#include <gtest/gtest.h>

#include "guest-kernel/net/net_device.h"

namespace {

// A device whose receive ring and interrupt count the test sets.
class FakeNic final : public net::NetDevice {
 public:
  const char* name() const override { return "fake"; }
  net::MacAddress mac() const override { return {}; }
  bool transmit(const uint8_t*, size_t) override { return true; }

  int frames_waiting = 0;
  bool driver_busy = false;  // working through the ring (interrupts off)
  int taken = 0;

  // What the interrupt would do: count it and take the frames.
  void interrupt() {
    ++interrupts;
    take_rx();
  }

 protected:
  bool rx_waiting_for_interrupt() const override { return frames_waiting > 0 && !driver_busy; }
  void take_rx() override {
    taken += frames_waiting;
    frames_waiting = 0;
  }
};

TEST(MissedInterrupt, FramesThatArriveJustBeforeASweepAreLeftToTheirInterrupt) {
  FakeNic nic;
  nic.frames_waiting = 2;
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.taken, 0);
  nic.interrupt();  // it came
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.missed_interrupts, 0u);
  EXPECT_EQ(nic.taken, 2);
}

TEST(MissedInterrupt, FramesWaitingThroughAWholePeriodWithNoInterruptAreTakenAndCounted) {
  FakeNic nic;
  nic.frames_waiting = 3;
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_TRUE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.missed_interrupts, 1u);
  EXPECT_EQ(nic.taken, 3);
  EXPECT_EQ(nic.frames_waiting, 0);
  // Receive goes on: new frames get their interrupt.
  nic.frames_waiting = 1;
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  nic.interrupt();
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.missed_interrupts, 1u);
}

TEST(MissedInterrupt, AnInterruptBetweenSweepsMeansNothingWasMissed) {
  FakeNic nic;
  nic.frames_waiting = 1;
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  // An interrupt took those frames, and new ones arrived just before the
  // next sweep: waiting at both sweeps, but not the same frames.
  nic.interrupt();
  nic.frames_waiting = 1;
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.missed_interrupts, 0u);
}

TEST(MissedInterrupt, ADriverWorkingThroughItsRingIsNotWaiting) {
  FakeNic nic;
  nic.frames_waiting = 64;
  nic.driver_busy = true;  // interrupts off, more work deferred
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_FALSE(nic.sweep_missed_interrupt());
  EXPECT_EQ(nic.taken, 0);
  EXPECT_EQ(nic.missed_interrupts, 0u);
}

TEST(MissedInterrupt, ADeviceWithoutInterruptsNeverReportsAMiss) {
  struct Plain final : net::NetDevice {
    const char* name() const override { return "plain"; }
    net::MacAddress mac() const override { return {}; }
    bool transmit(const uint8_t*, size_t) override { return true; }
  } nic;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(nic.sweep_missed_interrupt());
}

}  // namespace
