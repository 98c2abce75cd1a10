// jepsen: a Jepsen-style test of the Raft key-value cluster running in VMs.
//
//   jepsen --control SOCK [--gateway BASE] [--nodes N] [--clients C] [--keys K]
//          [--time S] [--nemesis none|partition|kill|pause|clock|net|all]
//          [--interval S] [--seed X] [--history FILE] [--prefix P]
//
// Concurrent clients (real KvClient state machines on the host, through the
// switch's gateway) run random get/put/del/cas operations on a few keys
// while the nemesis injects faults through the VMM's control socket. Then
// every fault is healed, the cluster gets time to recover, and one client
// reads every key (those reads must see every acknowledged write). The
// whole history goes to FILE as JSON lines and is checked for
// linearizability (tests/checker), in-process and with check-history's
// code. Prints the ok/fail/info counts and the verdict.
//
// Exit status: 0 linearizable; 1 not linearizable or the final reads
// failed; 2 usage; 3 the check ran out of budget; 4 the nemesis could not
// reach the VMM.
#include <charconv>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage-guests/clients/udp_runtime.h"
#include "storage-guests/raft/kv_client.h"
#include "tests/checker/history.h"
#include "tests/checker/linearizability.h"
#include "tests/jepsen/nemesis.h"
#include "vmm/control/control_client.h"

namespace {

using sg::TimeNs;
using sg::raft::KvOutcome;

constexpr TimeNs kSecond = 1'000'000'000ull;

struct Options {
  std::string control;
  uint16_t gateway = 7100;
  int nodes = 3;
  int clients = 5;
  int keys = 3;
  uint64_t seconds = 20;
  uint64_t interval = 4;
  jepsen::NemesisKind nemesis = jepsen::NemesisKind::kAll;
  uint64_t seed = 0;
  std::string history = "build/jepsen/history.jsonl";
  std::string prefix;  // of every key this run touches
};

const char kUsage[] =
    "usage: jepsen --control SOCK [--gateway BASE] [--nodes N] [--clients C] [--keys K]\n"
    "              [--time S] [--nemesis none|partition|kill|pause|clock|net|all]\n"
    "              [--interval S] [--seed X] [--history FILE] [--prefix P]\n";

bool parse_u64(const std::string& s, uint64_t lo, uint64_t hi, uint64_t* out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::optional<Options> parse(const std::vector<std::string>& args) {
  Options o;
  o.seed = std::random_device{}();
  for (size_t i = 0; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) {
      std::cerr << "jepsen: " << args[i] << " needs a value\n";
      return std::nullopt;
    }
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    uint64_t n = 0;
    bool good = true;
    if (k == "--control") o.control = v;
    else if (k == "--prefix") o.prefix = v;
    else if (k == "--history") o.history = v;
    else if (k == "--gateway") good = parse_u64(v, 1, 65535, &n) && (o.gateway = static_cast<uint16_t>(n));
    else if (k == "--nodes") good = parse_u64(v, 1, 64, &n) && (o.nodes = static_cast<int>(n));
    else if (k == "--clients") good = parse_u64(v, 1, 100, &n) && (o.clients = static_cast<int>(n));
    else if (k == "--keys") good = parse_u64(v, 1, 1000, &n) && (o.keys = static_cast<int>(n));
    else if (k == "--time") good = parse_u64(v, 1, 86400, &o.seconds);
    else if (k == "--interval") good = parse_u64(v, 1, 3600, &o.interval);
    else if (k == "--seed") good = parse_u64(v, 0, UINT64_MAX, &o.seed);
    else if (k == "--nemesis") good = jepsen::parse_nemesis(v, &o.nemesis);
    else {
      std::cerr << "jepsen: unknown option " << k << "\n";
      return std::nullopt;
    }
    if (!good) {
      std::cerr << "jepsen: bad value for " << k << ": \"" << v << "\"\n";
      return std::nullopt;
    }
  }
  if (o.control.empty() && o.nemesis != jepsen::NemesisKind::kNone) {
    std::cerr << "jepsen: --control SOCK is required unless --nemesis none\n";
    return std::nullopt;
  }
  return o;
}

// Sends control requests; a refused one is logged (healing something that
// was not broken is refused harmlessly), an unreachable VMM is fatal.
bool send_all(const std::string& sock, const std::vector<jepsen::Json>& requests, bool log_refusals) {
  for (const auto& r : requests) {
    try {
      auto reply = jepsen::Json::parse(vmm::control::request(sock, r.dump()), nullptr, false);
      if (log_refusals && (!reply.is_object() || !reply.value("ok", false))) {
        std::cerr << "jepsen: nemesis request " << r.dump() << " refused: " << reply.dump() << "\n";
      }
    } catch (const std::exception& e) {
      std::cerr << "jepsen: nemesis: " << e.what() << "\n";
      return false;
    }
  }
  return true;
}

// One client of the workload: a KvClient, its history id and its counters.
struct Client {
  sg::clients::UdpEnv* env;
  std::unique_ptr<sg::raft::KvClient> kv;
  checker::ClientId id;
};

class Workload {
 public:
  Workload(sg::clients::UdpRuntime& rt, checker::History& h, const Options& o)
      : rt_(rt), h_(h), keys_(o.keys), prefix_(o.prefix), rng_(o.seed ^ 0x5eed) {
    for (int i = 0; i < o.clients; ++i) {
      sg::clients::UdpEnv& env = rt.add_client(rt.fresh_client_id());
      sg::raft::KvClientConfig cfg;
      for (int n = 1; n <= o.nodes; ++n) cfg.servers.push_back(static_cast<sg::NodeId>(n));
      cfg.op_timeout = 2 * kSecond;
      auto kv = std::make_unique<sg::raft::KvClient>(env, cfg);
      env.set_node(kv.get());
      clients_.push_back(Client{&env, std::move(kv), i + 1});
    }
  }

  // Starts the next operation on every idle client, until `until`.
  void pump(TimeNs until) {
    for (Client& c : clients_) {
      if (!c.kv->busy() && rt_.now() < until) start(c);
    }
  }
  bool idle() const {
    for (const Client& c : clients_) {
      if (c.kv->busy()) return false;
    }
    return true;
  }
  std::map<std::string, uint64_t> counts;

  // The final phase: one read of every key, retried until it is ok.
  bool final_reads(TimeNs deadline) {
    Client& c = clients_.front();
    for (int k = 0; k < keys_; ++k) {
      const std::string key = key_name(k);
      bool done = false;
      while (!done && rt_.now() < deadline) {
        std::optional<KvOutcome> outcome;
        h_.invoke_get(c.id, key);
        c.kv->get(key, [&](KvOutcome o, const std::optional<std::string>& v) {
          outcome = o;
          record(c, checker::OpKind::kGet, o, v);
        });
        rt_.run_until([&] { return outcome.has_value(); }, 10 * kSecond);
        done = outcome == KvOutcome::kOk;
      }
      if (!done) return false;
    }
    return true;
  }

 private:
  void record(Client& c, checker::OpKind f, KvOutcome o, const std::optional<std::string>& v) {
    switch (o) {
      case KvOutcome::kOk:
        ++counts["ok"];
        if (f == checker::OpKind::kGet) h_.ok_get(c.id, v);
        else h_.ok(c.id);
        break;
      case KvOutcome::kFail: ++counts["fail"]; h_.fail(c.id); break;
      case KvOutcome::kTimeout: ++counts["info"]; h_.info(c.id); break;
    }
  }

  void start(Client& c) {
    const std::string key = key_name(static_cast<int>(rng_() % static_cast<uint64_t>(keys_)));
    const std::string value = std::to_string(c.id) + "-" + std::to_string(++written_);
    const uint64_t dice = rng_() % 100;
    if (dice < 45) {
      h_.invoke_get(c.id, key);
      c.kv->get(key, [this, &c](KvOutcome o, const std::optional<std::string>& v) {
        record(c, checker::OpKind::kGet, o, v);
      });
    } else if (dice < 75) {
      h_.invoke_put(c.id, key, value);
      last_written_[key] = value;
      c.kv->put(key, value, [this, &c](KvOutcome o, const std::optional<std::string>& v) {
        record(c, checker::OpKind::kPut, o, v);
      });
    } else if (dice < 82) {
      h_.invoke_del(c.id, key);
      c.kv->del(key, [this, &c](KvOutcome o, const std::optional<std::string>& v) {
        record(c, checker::OpKind::kDel, o, v);
      });
    } else {
      std::optional<std::string> expected;
      if (auto it = last_written_.find(key); it != last_written_.end() && rng_() % 5) expected = it->second;
      h_.invoke_cas(c.id, key, expected, value);
      last_written_[key] = value;
      c.kv->cas(key, expected, value, [this, &c](KvOutcome o, const std::optional<std::string>& v) {
        record(c, checker::OpKind::kCas, o, v);
      });
    }
  }

  // Keys of this run: a cluster that served an earlier run still holds
  // that run's keys, and the checker assumes every key starts absent.
  std::string key_name(int k) const { return prefix_ + "k" + std::to_string(k); }

  sg::clients::UdpRuntime& rt_;
  checker::History& h_;
  int keys_;
  std::string prefix_;
  std::mt19937_64 rng_;
  std::vector<Client> clients_;
  std::map<std::string, std::string> last_written_;
  uint64_t written_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed) {
    std::cerr << kUsage;
    return 2;
  }
  const Options& o = *parsed;
  std::cout << "jepsen: " << o.nodes << " nodes, " << o.clients << " clients, " << o.keys << " keys, "
            << o.seconds << " s, nemesis " << jepsen::to_string(o.nemesis) << ", seed " << o.seed << "\n";
  try {
    sg::clients::UdpRuntime rt(o.gateway, static_cast<size_t>(o.nodes));
    checker::History history;
    Workload work(rt, history, o);
    jepsen::NemesisSchedule nemesis(o.nemesis, o.nodes, o.seed);

    // Phase 1: the workload, with a fault every other interval.
    const TimeNs start = rt.now(), end = start + o.seconds * kSecond;
    TimeNs next_change = start + o.interval * kSecond;
    std::optional<jepsen::Fault> active;
    while (rt.now() < end) {
      work.pump(end);
      rt.run_until([] { return false; }, std::min<TimeNs>(20'000'000, end - std::min(end, rt.now())));
      if (o.nemesis != jepsen::NemesisKind::kNone && rt.now() >= next_change) {
        if (active) {
          std::cout << "jepsen: heal " << active->description << "\n";
          if (!send_all(o.control, active->heal, true)) return 4;
          active.reset();
        } else {
          active = nemesis.next();
          std::cout << "jepsen: " << active->description << "\n";
          if (!send_all(o.control, active->inject, true)) return 4;
        }
        next_change = rt.now() + o.interval * kSecond;
      }
    }
    rt.run_until([&] { return work.idle(); }, 10 * kSecond);

    // Phase 2: heal everything, let the cluster settle, read every key.
    std::cout << "jepsen: healing everything, then reading every key\n";
    if (!send_all(o.control, nemesis.heal_all(), false)) return 4;
    rt.run_until([] { return false; }, 3 * kSecond);
    const bool reads_ok = work.final_reads(rt.now() + 60 * kSecond);

    std::ofstream out(o.history);
    if (!out) std::cerr << "jepsen: cannot write " << o.history << "\n";
    checker::write_jsonl(out, history);
    out.close();

    checker::CheckOptions copts;
    copts.time_limit = std::chrono::milliseconds(120'000);
    const checker::CheckResult result = checker::check_kv(history, copts);
    std::cout << "jepsen: " << work.counts["ok"] << " ok, " << work.counts["fail"] << " fail, "
              << work.counts["info"] << " info; history " << o.history << "\n";
    std::cout << "jepsen: verdict " << checker::to_string(result.verdict) << " (" << result.operations
              << " operations, " << result.keys << " keys)\n";
    if (result.counterexample) std::cout << checker::format_window(*result.counterexample);
    if (!reads_ok) {
      std::cout << "jepsen: FAILED: the final reads did not complete within 60 s of healing\n";
      return 1;
    }
    switch (result.verdict) {
      case checker::Verdict::kLinearizable: return 0;
      case checker::Verdict::kNotLinearizable: return 1;
      default: return 3;
    }
  } catch (const std::exception& e) {
    std::cerr << "jepsen: " << e.what() << "\n";
    return 2;
  }
}
