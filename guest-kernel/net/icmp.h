// ICMP: answers echo requests addressed to us, and ping(): a session that
// sends `count` echo requests `interval_ns` apart and reports each reply
// with its round-trip time, then a summary.
//
// A session has its own ICMP identifier. A reply counts only if it comes
// from the pinged address, carries our identifier, a sequence number we
// sent and not yet seen, and the exact payload we sent; the RTT is measured
// from our own record of the send time, never from packet contents.
// The session ends when every reply has come or `timeout_ns` after the last
// request; the handler then gets one `done` event and the session is gone.
// Broadcast echo requests are ignored (as Linux does by default).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <map>
#include <vector>

#include "guest-kernel/net/clock.h"
#include "guest-kernel/net/wire.h"

namespace net {

class Stack;

struct PingEvent {
  bool done;            // false: one reply; true: the session's summary
  Ipv4Address from;
  uint16_t seq;         // replies: 1 for the first request
  uint64_t rtt_ns;      // replies
  unsigned sent, received;  // so far
};

class Icmp {
 public:
  using PingHandler = std::function<void(const PingEvent&)>;
  static constexpr size_t kPingDataLen = 56;  // as ping(8) sends

  explicit Icmp(Stack& stack);
  ~Icmp();
  Icmp(const Icmp&) = delete;
  Icmp& operator=(const Icmp&) = delete;

  // An ICMP message for us (`broadcast`: sent to a broadcast address).
  void input(Ipv4Address src, bool broadcast, const uint8_t* data, size_t len);

  // Starts a ping session; returns its id (nonzero), 0 if count is 0 or
  // all ids are in use. The first request goes out at once. The handler
  // may cancel the session or start others.
  uint16_t ping(Ipv4Address dst, unsigned count, uint64_t interval_ns, PingHandler handler,
                uint64_t timeout_ns = 2 * kSecond);
  // Ends a session without its done event; false if it is not running.
  bool cancel_ping(uint16_t id);
  size_t active_pings() const { return sessions_.size(); }

 private:
  struct Session {
    Ipv4Address dst;
    unsigned count;
    uint64_t interval_ns, timeout_ns;
    unsigned received = 0;
    std::vector<uint64_t> sent_at;  // index seq-1
    std::vector<bool> answered;
    Clock::TimerId timer = 0;
    PingHandler handler;
    uint64_t serial = 0;  // tells a new session under a reused id apart
  };

  void answer_echo(Ipv4Address src, const IcmpMessage& m);
  void echo_reply(Ipv4Address src, const IcmpMessage& m);
  void send_next(uint16_t id);
  void finish(uint16_t id);
  // Calls the session's handler so that the handler may end the session.
  void notify(uint16_t id, const PingEvent& e);
  static void fill_payload(uint16_t id, uint16_t seq, uint8_t* out);

  Stack& stack_;
  std::map<uint16_t, Session> sessions_;
  uint16_t next_id_ = 1;
  uint64_t next_serial_ = 1;
};

}  // namespace net
