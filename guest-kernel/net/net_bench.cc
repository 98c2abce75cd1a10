// netbench= (see net_bench.h). Guest only: the event loop, the monotonic
// clock and the mark port.
#include "guest-kernel/net/net_bench.h"

#include <vector>

#include "boot/platform.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/net/bench_proto.h"
#include "guest-kernel/net/net_boot.h"
#include "guest-kernel/net/udp.h"
#include "guest-kernel/time/clock.h"

namespace net {
namespace {

using bench::Kind;

// How long each side waits for the other. The peer VM boots in parallel
// and may be seconds behind (more in the nested host).
constexpr uint64_t kPeerWaitNs = 60 * kSecond;
constexpr uint64_t kHelloIntervalNs = 200 * kMillisecond;
constexpr uint64_t kFinIntervalNs = 100 * kMillisecond;
constexpr unsigned kFinTries = 30;
constexpr uint64_t kRrTimeoutNs = 1 * kSecond;
constexpr unsigned kRrWarmups = 10;
// After the window closes, stay a little to answer the peer's retries.
constexpr uint64_t kLingerNs = 300 * kMillisecond;
// The echo server gives up when a started exchange goes quiet this long.
constexpr uint64_t kEchoIdleNs = 10 * kSecond;
// A full TX ring: yield to the event loop this many times in a row, then
// sleep this long on a timer (the guest halts) before retrying. The halt
// gives the host CPU back to the device's I/O thread, which is what drains
// the ring when vCPUs and device threads share CPUs (the nested host).
constexpr unsigned kBusyYields = 16;
constexpr uint64_t kBusySleepNs = 20'000;
constexpr uint64_t kStreamYieldEvery = 32;

uint64_t now() { return timekeeping::monotonic_ns(); }

// The mark port: the VMM snapshots its counters at each write.
bool marks_available() { return x86::inl(platform::kBenchMarkPort) == platform::kBenchMarkPresent; }
void mark(uint32_t what) { x86::outl(platform::kBenchMarkPort, what); }

// The NIC driver's counters, for the per-packet interrupt counts.
struct NicCounters {
  uint64_t interrupts, tx_frames, rx_frames, tx_dropped, rx_dropped;
  static NicCounters of(const NetDevice& d) {
    return {d.interrupts, d.tx_frames, d.rx_frames, d.tx_dropped, d.rx_dropped};
  }
};

// Opens and closes the window on both sides: the VMM's snapshot and the
// driver's counters, taken at the same moment.
class Window {
 public:
  explicit Window(Stack& s) : s_(s), marks_(marks_available()) {}
  void open() {
    if (marks_) mark(platform::kBenchMarkStart);
    start_ = NicCounters::of(s_.device());
    t_open_ = now();
    open_ = true;
  }
  void close() {
    if (!open_ || closed_) return;
    t_close_ = now();
    end_ = NicCounters::of(s_.device());
    if (marks_) mark(platform::kBenchMarkEnd);
    closed_ = true;
  }
  bool is_open() const { return open_ && !closed_; }
  uint64_t opened_at() const { return t_open_; }
  void print() const {
    kprintf("netbench: nic name=%s interrupts=%lu tx_frames=%lu rx_frames=%lu tx_dropped=%lu rx_dropped=%lu "
            "window_ns=%lu vmm_marks=%d\n",
            s_.device().name(), end_.interrupts - start_.interrupts, end_.tx_frames - start_.tx_frames,
            end_.rx_frames - start_.rx_frames, end_.tx_dropped - start_.tx_dropped,
            end_.rx_dropped - start_.rx_dropped, t_close_ - t_open_, marks_ ? 1 : 0);
  }

 private:
  Stack& s_;
  bool marks_;
  bool open_ = false, closed_ = false;
  NicCounters start_{}, end_{};
  uint64_t t_open_ = 0, t_close_ = 0;
};

// Runs the event loop until `done()` or `timeout_ns` passed; true if done.
template <typename Done>
bool wait_for(uint64_t timeout_ns, Done done) {
  EventLoop& loop = EventLoop::instance();
  bool timed_out = false;
  const auto timer = loop.add_timer(timeout_ns, [&] { timed_out = true; });
  loop.run([&] { return done() || timed_out; });
  loop.cancel_timer(timer);
  return done();
}

// One pass of the event loop: interrupt work (received frames, TX
// completions) and due timers run, then we come back.
void yield() {
  EventLoop& loop = EventLoop::instance();
  bool back = false;
  loop.defer([&back] { back = true; });
  loop.run([&back] { return back; });
}

// Sends one datagram, waiting while the NIC's TX ring is full: yields to
// the loop, then sleeps briefly (see kBusyYields). Never drops silently:
// false only for a real error, which the caller reports.
struct SendCounters {
  uint64_t busy = 0, sleeps = 0;
};
TxResult send_waiting(UdpSocket& sock, Ipv4Address dst, uint16_t port, const uint8_t* data, size_t len,
                      SendCounters& c) {
  unsigned yields = 0;
  for (;;) {
    const TxResult r = sock.sendto(dst, port, data, len);
    if (r != TxResult::kDeviceBusy) return r;
    ++c.busy;
    if (++yields < kBusyYields) {
      yield();
    } else {
      yields = 0;
      ++c.sleeps;
      bool woke = false;
      wait_for(kBusySleepNs, [&woke] { return woke; });
    }
  }
}

// Sends `kind` every `interval` until `answered()` or `tries` are spent.
template <typename Answered>
bool exchange(UdpSocket& sock, Ipv4Address dst, uint16_t port, Kind kind, uint64_t seq, uint64_t interval,
              unsigned tries, Answered answered) {
  uint8_t msg[bench::kHeaderBytes];
  bench::encode(msg, sizeof msg, kind, seq);
  SendCounters ignored;
  for (unsigned i = 0; i < tries && !answered(); ++i) {
    send_waiting(sock, dst, port, msg, sizeof msg, ignored);
    if (wait_for(interval, answered)) return true;
  }
  return answered();
}

uint32_t run_sink(Stack& s, const bench::Args& a) {
  UdpSocket sock(s);
  Window window(s);
  uint64_t datagrams = 0, bytes = 0, first_ns = 0, last_ns = 0, max_seq = 0, foreign = 0, sent_total = 0;
  bool done = false;
  uint64_t done_at = 0;
  if (!sock.bind(a.port, [&](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        Kind kind;
        uint64_t seq;
        if (!bench::decode(data, len, &kind, &seq)) {
          ++foreign;
          return;
        }
        uint8_t reply[bench::kHeaderBytes];
        if (kind == Kind::kData) {
          if (!window.is_open()) return;  // before HELLO or after FIN: not ours to count
          const uint64_t t = now();
          if (!datagrams) first_ns = t;
          last_ns = t;
          ++datagrams;
          bytes += len;
          if (seq > max_seq) max_seq = seq;
        } else if (kind == Kind::kHello) {
          if (!window.is_open() && !done) window.open();
          bench::encode(reply, sizeof reply, Kind::kReady, seq);
          sock.sendto(src, port, reply, sizeof reply);
        } else if (kind == Kind::kFin) {
          if (window.is_open()) {
            window.close();
            done = true;
            done_at = now();
            sent_total = seq;
          }
          bench::encode(reply, sizeof reply, Kind::kFinAck, seq);
          sock.sendto(src, port, reply, sizeof reply);
        }
      })) {
    kprintf("netbench: port %u is taken\n", a.port);
    return platform::kStatusTestsFailed;
  }
  kprintf("netbench: sink on port %u, expecting a %u s stream\n", a.port, a.seconds);
  // Wait for the sender's HELLO, then for its FIN: at most its stream's
  // length and a margin. A lost FIN ends the wait by the time limit.
  if (!wait_for(kPeerWaitNs, [&] { return window.is_open() || done; })) {
    kprintf("netbench: no sender came\n");
    return platform::kStatusTestsFailed;
  }
  const bool fin = wait_for(a.seconds * kSecond + 10 * kSecond, [&] { return done; });
  if (!fin) window.close();
  // Answer FIN retries for a moment.
  if (fin) wait_for(kLingerNs, [&] { return now() - done_at >= kLingerNs; });
  const uint64_t span = datagrams > 1 ? last_ns - first_ns : 0;
  const uint64_t expected = fin ? sent_total : (datagrams ? max_seq + 1 : 0);
  // first_at/last_at: when the stream's first and last datagram came,
  // after the window opened (the HELLO): shows a receiver still catching
  // up long after the sender stopped.
  kprintf("netbench: sink size=%lu datagrams=%lu bytes=%lu span_ns=%lu first_at_ns=%lu last_at_ns=%lu sent=%lu "
          "lost=%lu fin=%d foreign=%lu\n",
          datagrams ? static_cast<unsigned long>(bytes / datagrams) : 0UL, datagrams, bytes, span,
          datagrams ? first_ns - window.opened_at() : 0UL, datagrams ? last_ns - window.opened_at() : 0UL, expected,
          expected > datagrams ? expected - datagrams : 0UL, fin ? 1 : 0, foreign);
  window.print();
  return datagrams > 1 ? platform::kStatusOk : platform::kStatusTestsFailed;
}

uint32_t run_stream(Stack& s, const bench::Args& a) {
  UdpSocket sock(s);
  Window window(s);
  bool ready = false, fin_acked = false;
  if (!sock.bind(0, [&](Ipv4Address src, uint16_t, const uint8_t* data, size_t len) {
        Kind kind;
        uint64_t seq;
        if (src != a.dst || !bench::decode(data, len, &kind, &seq)) return;
        if (kind == Kind::kReady) ready = true;
        if (kind == Kind::kFinAck) fin_acked = true;
      })) {
    kprintf("netbench: no ephemeral port\n");
    return platform::kStatusTestsFailed;
  }
  char dst[16];
  format_ipv4(a.dst, dst);
  kprintf("netbench: stream to %s port %u, %zu-byte datagrams for %u s\n", dst, a.port, a.size, a.seconds);
  if (!exchange(sock, a.dst, a.port, Kind::kHello, 0, kHelloIntervalNs,
                static_cast<unsigned>(kPeerWaitNs / kHelloIntervalNs), [&] { return ready; })) {
    kprintf("netbench: the sink never answered\n");
    return platform::kStatusTestsFailed;
  }
  // Payload: the header, then bytes that vary by position.
  std::vector<uint8_t> buf(a.size);
  for (size_t k = bench::kHeaderBytes; k < buf.size(); ++k) buf[k] = static_cast<uint8_t>(k * 7);
  SendCounters c;
  uint64_t sent = 0, errors = 0;
  window.open();
  const uint64_t t0 = now(), end = t0 + a.seconds * kSecond;
  while (now() < end) {
    bench::encode(buf.data(), buf.size(), Kind::kData, sent);
    const TxResult r = send_waiting(sock, a.dst, a.port, buf.data(), buf.size(), c);
    // A pass of the event loop now and then, as any sending program makes:
    // received frames (ARP refreshes) and interrupt work do not pile up.
    if (sent % kStreamYieldEvery == 0) yield();
    if (tx_ok(r)) {  // kQueued only when ARP refreshes (60 s): sent then
      ++sent;
    } else {
      // ARP was resolved by the handshake; anything else is a real error.
      if (!errors++) kprintf("netbench: datagram %lu not sent: %s\n", sent, to_string(r));
      if (errors > 1000) break;
    }
  }
  const uint64_t elapsed = now() - t0;
  window.close();
  exchange(sock, a.dst, a.port, Kind::kFin, sent, kFinIntervalNs, kFinTries, [&] { return fin_acked; });
  kprintf("netbench: stream size=%zu sent=%lu errors=%lu elapsed_ns=%lu busy=%lu sleeps=%lu fin_acked=%d\n", a.size,
          sent, errors, elapsed, c.busy, c.sleeps, fin_acked ? 1 : 0);
  window.print();
  return sent && !errors ? platform::kStatusOk : platform::kStatusTestsFailed;
}

uint32_t run_rr(Stack& s, const bench::Args& a) {
  UdpSocket sock(s);
  Window window(s);
  bool have_reply = false;
  Kind want_kind = Kind::kWarm;
  uint64_t want_seq = 0;
  if (!sock.bind(0, [&](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        Kind kind;
        uint64_t seq;
        // Only the echo of the request in flight: right peer, kind,
        // sequence and length (late echoes of timed-out requests are not).
        if (src == a.dst && port == a.port && len == a.size && bench::decode(data, len, &kind, &seq) &&
            kind == want_kind && seq == want_seq)
          have_reply = true;
      })) {
    kprintf("netbench: no ephemeral port\n");
    return platform::kStatusTestsFailed;
  }
  char dst[16];
  format_ipv4(a.dst, dst);
  kprintf("netbench: rr to %s port %u, %zu-byte requests, %u round trips\n", dst, a.port, a.size, a.count);
  std::vector<uint8_t> buf(a.size);
  for (size_t k = bench::kHeaderBytes; k < buf.size(); ++k) buf[k] = static_cast<uint8_t>(k * 7);
  SendCounters c;
  // One request and its echo; the round trip in *rtt. False on timeout or
  // a send error.
  auto round_trip = [&](Kind kind, uint64_t seq, uint64_t timeout, uint64_t* rtt) {
    want_kind = kind;
    want_seq = seq;
    have_reply = false;
    bench::encode(buf.data(), buf.size(), kind, seq);
    const uint64_t t = now();
    if (!tx_ok(send_waiting(sock, a.dst, a.port, buf.data(), buf.size(), c))) return false;
    if (!wait_for(timeout, [&] { return have_reply; })) return false;
    *rtt = now() - t;
    return true;
  };
  // Warm-up, not measured: the peer may still be booting, and ARP resolves.
  uint64_t rtt = 0;
  uint64_t seq = 0;
  for (unsigned tries = static_cast<unsigned>(kPeerWaitNs / kHelloIntervalNs); tries; --tries)
    if (round_trip(Kind::kWarm, seq++, kHelloIntervalNs, &rtt)) break;
  if (!have_reply) {
    kprintf("netbench: the echo server never answered\n");
    return platform::kStatusTestsFailed;
  }
  for (unsigned i = 0; i < kRrWarmups; ++i) round_trip(Kind::kWarm, seq++, kRrTimeoutNs, &rtt);

  std::vector<uint64_t> samples;
  samples.reserve(a.count);
  uint64_t lost = 0;
  window.open();
  for (unsigned i = 0; i < a.count; ++i) {
    if (round_trip(Kind::kData, i, kRrTimeoutNs, &rtt)) samples.push_back(rtt);
    else ++lost;
  }
  window.close();
  // FIN ends netbench=echo's window (udp-echo= just echoes it).
  bool fin_echoed = false;
  for (unsigned i = 0; i < kFinTries && !fin_echoed; ++i) fin_echoed = round_trip(Kind::kFin, 0, kFinIntervalNs, &rtt);
  const bench::RttSummary r = bench::summarize(samples.data(), samples.size());
  kprintf("netbench: rr size=%zu count=%u replies=%zu lost=%lu p50_ns=%lu p99_ns=%lu mean_ns=%lu min_ns=%lu "
          "max_ns=%lu busy=%lu fin_echoed=%d\n",
          a.size, a.count, samples.size(), lost, r.p50_ns, r.p99_ns, r.mean_ns, r.min_ns, r.max_ns, c.busy,
          fin_echoed ? 1 : 0);
  window.print();
  return samples.empty() ? platform::kStatusTestsFailed : platform::kStatusOk;
}

uint32_t run_echo(Stack& s, const bench::Args& a) {
  UdpSocket sock(s);
  Window window(s);
  uint64_t echoed = 0, requests = 0, last_ns = 0, done_at = 0;
  bool done = false;
  if (!sock.bind(a.port, [&](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        last_ns = now();
        Kind kind;
        uint64_t seq;
        const bool ours = bench::decode(data, len, &kind, &seq);
        // The window: from the first measured request to the FIN, so the
        // warm-up (peer booting, ARP) stays out of it.
        if (ours && kind == Kind::kData && !window.is_open() && !done) window.open();
        if (ours && kind == Kind::kData && window.is_open()) ++requests;
        if (tx_ok(sock.sendto(src, port, data, len))) ++echoed;
        if (ours && kind == Kind::kFin && !done) {
          window.close();
          done = true;
          done_at = now();
        }
      })) {
    kprintf("netbench: port %u is taken\n", a.port);
    return platform::kStatusTestsFailed;
  }
  kprintf("netbench: echo on port %u\n", a.port);
  if (!wait_for(kPeerWaitNs, [&] { return last_ns != 0; })) {
    kprintf("netbench: no client came\n");
    return platform::kStatusTestsFailed;
  }
  // Until FIN, or until the client has been quiet for kEchoIdleNs.
  EventLoop& loop = EventLoop::instance();
  bool idle = false;
  auto check = loop.add_timer(kSecond, [&] { idle = now() - last_ns > kEchoIdleNs; }, kSecond);
  loop.run([&] { return done || idle; });
  loop.cancel_timer(check);
  if (!done) window.close();
  // Echo FIN retries for a moment (the client waits for its FIN's echo).
  if (done) wait_for(kLingerNs, [&] { return now() - done_at >= kLingerNs; });
  kprintf("netbench: echo requests=%lu echoed=%lu fin=%d\n", requests, echoed, done ? 1 : 0);
  window.print();
  return done ? platform::kStatusOk : platform::kStatusTestsFailed;
}

}  // namespace

bool run_bench(const Cmdline& cmdline, uint32_t* status) {
  if (!cmdline.has("netbench")) return false;
  char value[64];
  if (!cmdline.get("netbench", value, sizeof value))
    panic("netbench= needs a value (at most %zu characters)", sizeof value - 1);
  bench::Args a;
  if (const char* err = bench::parse_args(value, &a)) panic("%s", err);
  Stack* s = stack();
  if (!s) {
    kprintf("netbench: no network (needs a network device and ip=)\n");
    *status = platform::kStatusTestsFailed;
    return true;
  }
  if (!marks_available()) kprintf("netbench: no VMM mark port: the VMM's counters cover the whole run\n");
  switch (a.mode) {
    case bench::Mode::kSink: *status = run_sink(*s, a); break;
    case bench::Mode::kStream: *status = run_stream(*s, a); break;
    case bench::Mode::kRr: *status = run_rr(*s, a); break;
    case bench::Mode::kEcho: *status = run_echo(*s, a); break;
  }
  if (cmdline.has("net-stats") || *status != platform::kStatusOk) print_stats(s->stats());
  return true;
}

}  // namespace net
