// The network benchmark's wire format and arithmetic (netbench=, see
// net_bench.h): the argument syntax, the 16-byte header every benchmark
// datagram starts with, and the round-trip summary. Freestanding and
// host-tested (tests/unit/net/bench_proto_test.cc); the guest-only glue
// that sends and counts lives in net_bench.cc.
//
// Why a header at all: both ends must agree on a measurement window
// without a shared clock. The sender opens it with HELLO (answered by
// READY), streams DATA with consecutive sequence numbers, and closes it
// with FIN (answered by FIN_ACK); the sink counts only DATA between HELLO
// and FIN and measures the rate on its own clock from the first DATA to the
// last. The sequence numbers give the loss.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/net/wire.h"

namespace net::bench {

enum class Mode : uint8_t { kSink, kStream, kRr, kEcho };

// netbench=sink,PORT,SECONDS          count a stream of SECONDS on PORT
// netbench=stream,IP:PORT,SIZE,SECONDS send SIZE-byte datagrams for SECONDS
// netbench=rr,IP:PORT,SIZE,COUNT      COUNT request/response round trips
// netbench=echo,PORT                  echo server that marks the window
// SIZE is the UDP payload: kMinSize-1472 (no IP fragments: the benchmark
// measures the cost per frame). SECONDS 1-600, COUNT 1-100000.
struct Args {
  Mode mode = Mode::kSink;
  Ipv4Address dst{};
  uint16_t port = 0;
  size_t size = 0;
  unsigned seconds = 0;
  unsigned count = 0;
};
constexpr size_t kMinSize = 16;  // the header
constexpr size_t kMaxSize = kUdpMaxUnfragmentedPayload;
constexpr unsigned kMaxSeconds = 600;
constexpr unsigned kMaxCount = 100000;

// Returns nullptr on success, else a one-line reason naming netbench=.
const char* parse_args(const char* s, Args* out);

// The header: magic, kind, sequence number; little-endian (both ends are
// x86, but the byte order is fixed here so the format does not depend on it).
enum class Kind : uint32_t { kHello = 1, kReady = 2, kData = 3, kFin = 4, kFinAck = 5, kWarm = 6 };
constexpr uint32_t kMagic = 0x4e455442;  // "NETB"
constexpr size_t kHeaderBytes = 16;

// Writes the header into buf[0..16); the rest of the payload is the
// caller's. Requires len >= kHeaderBytes (false otherwise, nothing written).
bool encode(uint8_t* buf, size_t len, Kind kind, uint64_t seq);
// False for anything that is not a benchmark datagram (short, wrong magic,
// unknown kind).
bool decode(const uint8_t* buf, size_t len, Kind* kind, uint64_t* seq);

// Round-trip times: nearest-rank percentiles (the smallest sample with at
// least p% of the samples at or below it), mean, extremes. Sorts `samples`
// in place. All zero when n == 0.
struct RttSummary {
  uint64_t p50_ns = 0, p99_ns = 0, mean_ns = 0, min_ns = 0, max_ns = 0;
};
RttSummary summarize(uint64_t* samples, size_t n);

}  // namespace net::bench
