// check-history: decides whether a recorded history is linearizable.
//
//   check-history --model kv [--max-steps N] [--time-limit SECONDS] FILE|-
//
// Exit status: 0 linearizable, 1 not linearizable (the illegal window is
// printed), 2 malformed input or bad usage, 3 unknown (the search budget ran
// out before a verdict).
#include <charconv>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "tests/checker/history.h"
#include "tests/checker/linearizability.h"

namespace {

constexpr const char* kUsage =
    "usage: check-history --model kv [--max-steps N] [--time-limit SECONDS] FILE\n"
    "\n"
    "Checks that the history in FILE (- for standard input) is linearizable.\n"
    "FILE holds JSON lines, one event per line in real-time order:\n"
    "  {\"client\": 3, \"type\": \"invoke\"|\"ok\"|\"fail\"|\"info\",\n"
    "   \"f\": \"get\"|\"put\"|\"del\"|\"cas\", \"key\": \"k1\",\n"
    "   \"value\": \"v\" or null, \"expected\": \"v0\" or null (cas only)}\n"
    "\n"
    "  --model kv         a map of registers: get, put, del, cas (the only model)\n"
    "  --max-steps N      give up on a key after N search steps (default: never)\n"
    "  --time-limit S     give up after S seconds in all (default: never)\n"
    "  --help             this text\n"
    "\n"
    "Exit status: 0 linearizable; 1 not linearizable (the illegal window is\n"
    "printed); 2 malformed input or bad usage; 3 unknown (a limit ran out).\n";

int usage_error(const std::string& message) {
  std::cerr << "check-history: " << message << "\n\n" << kUsage;
  return 2;
}

template <typename T>
bool parse_number(std::string_view s, T* out) {
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && p == end && !s.empty();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  std::string file;
  bool have_file = false;
  checker::CheckOptions options;

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--model") {
      const char* v = value();
      if (!v) return usage_error("--model needs a value");
      model = v;
    } else if (arg == "--max-steps") {
      const char* v = value();
      if (!v || !parse_number(v, &options.max_steps_per_key) || options.max_steps_per_key == 0) {
        return usage_error("--max-steps needs a positive integer");
      }
    } else if (arg == "--time-limit") {
      const char* v = value();
      unsigned seconds = 0;
      if (!v || !parse_number(v, &seconds) || seconds == 0) {
        return usage_error("--time-limit needs a positive number of seconds");
      }
      options.time_limit = std::chrono::seconds(seconds);
    } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      return usage_error("unknown option " + std::string(arg));
    } else {
      if (have_file) return usage_error("more than one FILE");
      file = arg;
      have_file = true;
    }
  }
  if (model.empty()) return usage_error("--model is required");
  if (model != "kv") return usage_error("unknown model \"" + model + "\" (known: kv)");
  if (!have_file) return usage_error("no FILE given");

  checker::History history;
  const std::string name = file == "-" ? "<stdin>" : file;
  try {
    if (file == "-") {
      history = checker::read_jsonl(std::cin);
    } else {
      std::ifstream in(file);
      if (!in) {
        std::cerr << name << ": cannot open\n";
        return 2;
      }
      history = checker::read_jsonl(in);
    }
  } catch (const checker::ParseError& e) {
    std::cerr << name << ":" << e.line() << ": " << e.message() << "\n";
    return 2;
  }

  const checker::CheckResult r = checker::check_kv(history, options);
  switch (r.verdict) {
    case checker::Verdict::kLinearizable:
      std::cout << "linearizable\n";
      return 0;
    case checker::Verdict::kNotLinearizable:
      std::cout << "not linearizable\n" << checker::format_window(*r.counterexample);
      return 1;
    case checker::Verdict::kUnknown:
      std::cout << "unknown: the search ran out of budget on " << r.unknown_keys.size() << " of "
                << r.keys << " keys, first " << checker::quote(r.unknown_keys.front()) << "\n";
      return 3;
  }
  return 2;
}
