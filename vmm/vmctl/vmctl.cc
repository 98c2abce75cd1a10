// vmctl: talks to a running VMM's control socket (vmm/control/).
//
//   vmctl --sock PATH COMMAND [KEY=VALUE ...]
//   vmctl --sock PATH balloon 64M          (shorthand for target=64M)
//   vmctl --sock PATH snapshot FILE        (shorthand for file=FILE)
//   vmctl --sock PATH snapshot FILE --base EARLIER --vm 0   (--KEY VALUE = KEY=VALUE)
//   vmctl --sock PATH --raw '{"cmd": "stats"}'
//   vmctl --sock PATH --timeout 5 status   (seconds to wait for the reply; default 60)
//
// VALUEs that are plain decimal numbers are sent as numbers, "true"/"false"
// as booleans, anything else as strings. Prints the reply as indented JSON.
// Exit status: 0 ok, 1 the VMM refused the request, 2 usage, 3 no VMM there.
#include <cctype>
#include <iostream>
#include <string>
#include <vector>

#include "vmm/control/control_protocol.h"
#include "vmm/control/control_client.h"

namespace {

using vmm::control::Json;

const char kUsage[] =
    "usage: vmctl --sock PATH COMMAND [KEY=VALUE ...]\n"
    "       vmctl --sock PATH --raw JSON\n"
    "  vmctl --sock PATH help        lists the commands of that VMM\n"
    "  --timeout S   seconds to wait for the reply (1 to 3600, default 60)\n";

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Json value_of(const std::string& s) {
  if (all_digits(s)) return Json(std::stoull(s));
  if (s == "true") return Json(true);
  if (s == "false") return Json(false);
  return Json(s);
}

// Commands whose one positional argument has an obvious name.
const char* positional_field(const std::string& cmd) {
  if (cmd == "balloon") return "target";
  if (cmd == "snapshot" || cmd == "restore") return "file";
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string sock, raw;
  int timeout_ms = vmm::control::kDefaultRequestTimeoutMs;
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0; ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= args.size()) {
      std::cerr << "vmctl: " << args[i] << " needs a value\n" << kUsage;
      return 2;
    }
    if (args[i] == "--sock") {
      sock = args[++i];
    } else if (args[i] == "--raw") {
      raw = args[++i];
    } else if (args[i] == "--timeout") {
      const std::string& t = args[++i];
      if (!all_digits(t) || std::stoull(t) < 1 || std::stoull(t) > 3600) {
        std::cerr << "vmctl: --timeout must be 1 to 3600 seconds, not '" << t << "'\n" << kUsage;
        return 2;
      }
      timeout_ms = static_cast<int>(std::stoull(t)) * 1000;
    } else {
      std::cerr << "vmctl: unknown option " << args[i] << "\n" << kUsage;
      return 2;
    }
  }
  if (sock.empty()) {
    std::cerr << "vmctl: --sock PATH is required\n" << kUsage;
    return 2;
  }
  std::string line = raw;
  if (raw.empty()) {
    if (i >= args.size()) {
      std::cerr << "vmctl: no command\n" << kUsage;
      return 2;
    }
    Json request{{"cmd", args[i]}};
    const char* positional = positional_field(args[i]);
    for (++i; i < args.size(); ++i) {
      auto eq = args[i].find('=');
      if (args[i].rfind("--", 0) == 0 && args[i].size() > 2 && eq == std::string::npos) {
        // --KEY VALUE after the command: the same as KEY=VALUE.
        if (i + 1 >= args.size()) {
          std::cerr << "vmctl: " << args[i] << " needs a value\n";
          return 2;
        }
        request[args[i].substr(2)] = value_of(args[i + 1]);
        ++i;
      } else if (eq == std::string::npos && positional && !request.contains(positional)) {
        request[positional] = value_of(args[i]);
      } else if (eq == std::string::npos || eq == 0) {
        std::cerr << "vmctl: argument \"" << args[i] << "\" is not KEY=VALUE\n";
        return 2;
      } else {
        request[args[i].substr(0, eq)] = value_of(args[i].substr(eq + 1));
      }
    }
    line = request.dump();
  } else if (i < args.size()) {
    std::cerr << "vmctl: --raw takes no further arguments\n";
    return 2;
  }

  std::string reply;
  try {
    reply = vmm::control::request(sock, line, timeout_ms);
  } catch (const std::exception& e) {
    std::cerr << "vmctl: " << e.what() << "\n";
    return 3;
  }
  Json parsed = Json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    std::cerr << "vmctl: the VMM sent a malformed reply: " << reply << "\n";
    return 3;
  }
  std::cout << parsed.dump(2) << "\n";
  if (parsed.value("ok", false)) return 0;
  std::cerr << "vmctl: " << parsed.value("error", std::string("request refused")) << "\n";
  return 1;
}
