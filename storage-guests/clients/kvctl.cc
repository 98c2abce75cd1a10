// kvctl: one operation against the Raft key-value cluster, from the host,
// through the virtual switch's gateway.
//
//   kvctl [--gateway BASE] [--nodes N] [--timeout S] put KEY VALUE
//   kvctl ... get KEY | del KEY | cas KEY EXPECTED NEW | cas KEY --absent NEW
//   kvctl ... bench N       N puts then N gets, one at a time: throughput,
//                           latency percentiles, and which node led
//
// Exit status: 0 done (get prints the value, or "(absent)"), 1 a cas whose
// expected value did not match (definitely not applied), 3 no answer in
// time (the operation may or may not have taken effect), 2 usage.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "storage-guests/clients/udp_runtime.h"
#include "storage-guests/raft/kv_client.h"
#include "storage-guests/raft/wire.h"

namespace {

using sg::raft::KvOutcome;

constexpr int kExitFail = 1, kExitUsage = 2, kExitUnknown = 3;
// Raft client datagrams must fit one Ethernet frame: the guest stack does
// not reassemble IP fragments. 1472 bytes of UDP payload, less the
// transport header, the envelope and the request's own fields.
constexpr size_t kMaxDatagramPayload = 1400;

const char kUsage[] =
    "usage: kvctl [--gateway BASE] [--nodes N] [--timeout SECONDS] COMMAND\n"
    "  put KEY VALUE        get KEY        del KEY\n"
    "  cas KEY EXPECTED NEW (EXPECTED may be --absent)\n"
    "  bench N              N puts, then N gets: ops/s and p50/p99 latency\n"
    "  --gateway BASE   host port of VM 0's gateway relay (default 7100)\n"
    "  --nodes N        servers in the cluster (default 3)\n"
    "  --timeout S      give up after S seconds (default 5)\n";

int usage_error(const std::string& message) {
  std::cerr << "kvctl: " << message << "\n" << kUsage;
  return kExitUsage;
}

bool parse_uint(const std::string& s, unsigned long max, unsigned long* out) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

// One client of the cluster with a fresh session id, on `runtime`.
struct Session {
  Session(sg::clients::UdpRuntime& runtime, unsigned long nodes, unsigned long timeout_s)
      : env(runtime.add_client(runtime.fresh_client_id())), client(env, config_for(nodes, timeout_s)) {
    env.set_node(&client);
  }
  static sg::raft::KvClientConfig config_for(unsigned long nodes, unsigned long timeout_s) {
    sg::raft::KvClientConfig config;
    for (sg::NodeId id = 1; id <= nodes; ++id) config.servers.push_back(id);
    config.op_timeout = timeout_s * 1'000'000'000ull;
    return config;
  }
  sg::clients::UdpEnv& env;
  sg::raft::KvClient client;
};

// One phase of the benchmark: n operations of one kind, sequentially.
struct Phase {
  uint64_t ok = 0, failed = 0;
  std::vector<double> latency_ms;
  double seconds = 0;
};

void print_phase(const char* name, Phase& p) {
  std::sort(p.latency_ms.begin(), p.latency_ms.end());
  auto pct = [&](double q) {
    if (p.latency_ms.empty()) return 0.0;
    return p.latency_ms[std::min(p.latency_ms.size() - 1, static_cast<size_t>(q * p.latency_ms.size()))];
  };
  std::printf("kvctl: %-4s %6lu ok %4lu failed  %8.1f ops/s  p50 %7.2f ms  p99 %7.2f ms\n", name,
              static_cast<unsigned long>(p.ok), static_cast<unsigned long>(p.failed),
              p.seconds > 0 ? p.ok / p.seconds : 0.0, pct(0.50), pct(0.99));
}

int run_bench(uint16_t gateway, unsigned long nodes, unsigned long timeout_s, unsigned long n) {
  try {
    sg::clients::UdpRuntime runtime(gateway, nodes);
    Session session(runtime, nodes, timeout_s);
    sg::raft::KvClient& client = session.client;
    Phase phases[2];
    for (int phase = 0; phase < 2; ++phase) {
      Phase& p = phases[phase];
      const sg::TimeNs start = runtime.now();
      for (unsigned long i = 0; i < n; ++i) {
        std::optional<KvOutcome> outcome;
        auto done = [&](KvOutcome o, const std::optional<std::string>&) { outcome = o; };
        const std::string key = "bench-" + std::to_string(i % 16);
        const sg::TimeNs t0 = runtime.now();
        if (phase == 0) client.put(key, "value-" + std::to_string(i), done);
        else client.get(key, done);
        runtime.run_until([&] { return outcome.has_value(); }, (timeout_s + 5) * 1'000'000'000ull);
        if (outcome == KvOutcome::kOk) {
          ++p.ok;
          p.latency_ms.push_back((runtime.now() - t0) / 1e6);
        } else {
          ++p.failed;
        }
      }
      p.seconds = (runtime.now() - start) / 1e9;
    }
    print_phase("put", phases[0]);
    print_phase("get", phases[1]);
    std::printf("kvctl: leader node %u (10.0.0.%u)\n", client.leader_guess(), 9 + client.leader_guess());
    return phases[0].failed + phases[1].failed == 0 ? 0 : kExitUnknown;
  } catch (const std::exception& e) {
    std::cerr << "kvctl: " << e.what() << "\n";
    return kExitUnknown;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  unsigned long gateway = 7100, nodes = 3, timeout_s = 5;
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0 && args[i] != "--absent"; i += 2) {
    if (args[i] == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= args.size()) return usage_error(args[i] + " needs a value");
    const std::string& v = args[i + 1];
    if (args[i] == "--gateway") {
      if (!parse_uint(v, 65535, &gateway) || gateway == 0) return usage_error("--gateway: a port, 1-65535");
    } else if (args[i] == "--nodes") {
      if (!parse_uint(v, 64, &nodes) || nodes == 0) return usage_error("--nodes: 1-64");
    } else if (args[i] == "--timeout") {
      if (!parse_uint(v, 3600, &timeout_s) || timeout_s == 0) return usage_error("--timeout: 1-3600 seconds");
    } else {
      return usage_error("unknown option " + args[i]);
    }
  }
  if (i >= args.size()) return usage_error("no command");
  const std::string cmd = args[i++];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  if (cmd == "bench") {
    unsigned long n = 0;
    if (rest.size() != 1 || !parse_uint(rest[0], 1000000, &n) || n == 0) return usage_error("bench takes N, 1-1000000");
    return run_bench(static_cast<uint16_t>(gateway), nodes, timeout_s, n);
  }
  const size_t want = cmd == "put" ? 2 : cmd == "get" || cmd == "del" ? 1 : cmd == "cas" ? 3 : 0;
  if (want == 0) return usage_error("unknown command \"" + cmd + "\"");
  if (rest.size() != want) return usage_error(cmd + " takes " + std::to_string(want) + " argument(s)");
  const std::string& key = rest[0];
  if (key.empty()) return usage_error("the key is empty");
  size_t total = 0;
  for (const auto& s : rest) total += s.size();
  if (total > kMaxDatagramPayload) {
    return usage_error("key and values take " + std::to_string(total) + " bytes; at most " +
                       std::to_string(kMaxDatagramPayload) + " fit one datagram");
  }
  if (rest[0] == "--absent" || (cmd != "cas" && rest.back() == "--absent")) {
    return usage_error("--absent is only the EXPECTED of cas");
  }

  try {
    sg::clients::UdpRuntime runtime(static_cast<uint16_t>(gateway), nodes);
    Session session(runtime, nodes, timeout_s);
    sg::raft::KvClient& client = session.client;

    std::optional<KvOutcome> outcome;
    std::optional<std::string> value;
    auto done = [&](KvOutcome o, const std::optional<std::string>& v) {
      outcome = o;
      value = v;
    };
    if (cmd == "put") client.put(key, rest[1], done);
    if (cmd == "get") client.get(key, done);
    if (cmd == "del") client.del(key, done);
    if (cmd == "cas") {
      std::optional<std::string> expected;
      if (rest[1] != "--absent") expected = rest[1];
      client.cas(key, expected, rest[2], done);
    }
    // The client's own op_timeout ends the operation; the margin only
    // guards against a bug there.
    runtime.run_until([&] { return outcome.has_value(); }, (timeout_s + 5) * 1'000'000'000ull);
    if (!outcome || *outcome == KvOutcome::kTimeout) {
      std::cerr << "kvctl: no answer within " << timeout_s
                << " s; the operation may or may not have taken effect\n";
      return kExitUnknown;
    }
    if (*outcome == KvOutcome::kFail) {
      std::cout << "cas failed: the current value is not the expected one\n";
      return kExitFail;
    }
    if (cmd == "get") std::cout << (value ? *value : "(absent)") << "\n";
    else std::cout << "ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "kvctl: " << e.what() << "\n";
    return kExitUnknown;
  }
}
