#include "guest-kernel/net/bench_proto.h"

#include <string.h>

#include <algorithm>

#include "guest-kernel/net/parse.h"

namespace net::bench {
namespace {

// The next comma-separated field of *s: its start and length; *s moves past
// the comma (or to the end). False when no field is left.
bool next_field(const char** s, const char** field, size_t* len) {
  if (!*s) return false;
  const char* p = *s;
  while (*p && *p != ',') ++p;
  *field = *s;
  *len = static_cast<size_t>(p - *s);
  *s = *p ? p + 1 : nullptr;
  return true;
}

bool parse_number(const char* s, size_t len, uint64_t min, uint64_t max, uint64_t* out) {
  return parse_decimal(s, len, max, out) && *out >= min;
}

bool parse_port(const char* s, size_t len, uint16_t* out) {
  uint64_t v;
  if (!parse_number(s, len, 1, 65535, &v)) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// IP:PORT
bool parse_endpoint(const char* s, size_t len, Ipv4Address* ip, uint16_t* port) {
  const char* colon = static_cast<const char*>(memchr(s, ':', len));
  if (!colon) return false;
  char text[16];
  const size_t ip_len = static_cast<size_t>(colon - s);
  if (ip_len == 0 || ip_len >= sizeof text) return false;
  memcpy(text, s, ip_len);
  text[ip_len] = 0;
  return parse_ipv4(text, ip) && parse_port(colon + 1, len - ip_len - 1, port);
}

void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

const char* parse_args(const char* s, Args* out) {
  Args a;
  const char* f;
  size_t n;
  if (!next_field(&s, &f, &n)) return "netbench= needs sink|stream|rr|echo and its arguments";
  uint64_t v;
  auto is = [&](const char* word) { return n == strlen(word) && memcmp(f, word, n) == 0; };
  if (is("sink")) {
    a.mode = Mode::kSink;
    if (!next_field(&s, &f, &n) || !parse_port(f, n, &a.port)) return "netbench=sink,PORT,SECONDS: PORT must be 1-65535";
    if (!next_field(&s, &f, &n) || !parse_number(f, n, 1, kMaxSeconds, &v))
      return "netbench=sink,PORT,SECONDS: SECONDS must be 1-600";
    a.seconds = static_cast<unsigned>(v);
  } else if (is("stream") || is("rr")) {
    const bool rr = is("rr");
    a.mode = rr ? Mode::kRr : Mode::kStream;
    if (!next_field(&s, &f, &n) || !parse_endpoint(f, n, &a.dst, &a.port))
      return rr ? "netbench=rr,IP:PORT,SIZE,COUNT: needs a dotted-quad IP and a PORT 1-65535"
                : "netbench=stream,IP:PORT,SIZE,SECONDS: needs a dotted-quad IP and a PORT 1-65535";
    if (!next_field(&s, &f, &n) || !parse_number(f, n, kMinSize, kMaxSize, &v))
      return rr ? "netbench=rr,IP:PORT,SIZE,COUNT: SIZE must be 16-1472"
                : "netbench=stream,IP:PORT,SIZE,SECONDS: SIZE must be 16-1472";
    a.size = static_cast<size_t>(v);
    if (rr) {
      if (!next_field(&s, &f, &n) || !parse_number(f, n, 1, kMaxCount, &v))
        return "netbench=rr,IP:PORT,SIZE,COUNT: COUNT must be 1-100000";
      a.count = static_cast<unsigned>(v);
    } else {
      if (!next_field(&s, &f, &n) || !parse_number(f, n, 1, kMaxSeconds, &v))
        return "netbench=stream,IP:PORT,SIZE,SECONDS: SECONDS must be 1-600";
      a.seconds = static_cast<unsigned>(v);
    }
  } else if (is("echo")) {
    a.mode = Mode::kEcho;
    if (!next_field(&s, &f, &n) || !parse_port(f, n, &a.port)) return "netbench=echo,PORT: PORT must be 1-65535";
  } else {
    return "netbench= mode must be sink, stream, rr or echo";
  }
  if (s) return "netbench=: too many arguments";
  *out = a;
  return nullptr;
}

bool encode(uint8_t* buf, size_t len, Kind kind, uint64_t seq) {
  if (!buf || len < kHeaderBytes) return false;
  put32(buf, kMagic);
  put32(buf + 4, static_cast<uint32_t>(kind));
  put64(buf + 8, seq);
  return true;
}

bool decode(const uint8_t* buf, size_t len, Kind* kind, uint64_t* seq) {
  if (!buf || len < kHeaderBytes || get32(buf) != kMagic) return false;
  const uint32_t k = get32(buf + 4);
  if (k < static_cast<uint32_t>(Kind::kHello) || k > static_cast<uint32_t>(Kind::kWarm)) return false;
  *kind = static_cast<Kind>(k);
  *seq = get64(buf + 8);
  return true;
}

RttSummary summarize(uint64_t* samples, size_t n) {
  RttSummary r;
  if (n == 0) return r;
  std::sort(samples, samples + n);
  // Nearest rank: ceil(p/100 * n), 1-based.
  auto rank = [n](unsigned p) { return (static_cast<uint64_t>(p) * n + 99) / 100 - 1; };
  r.p50_ns = samples[rank(50)];
  r.p99_ns = samples[rank(99)];
  r.min_ns = samples[0];
  r.max_ns = samples[n - 1];
  // 64 bits hold the sum: at most kMaxCount samples, each far below an hour.
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += samples[i];
  r.mean_ns = static_cast<uint64_t>(sum / n);
  return r;
}

}  // namespace net::bench
