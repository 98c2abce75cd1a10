#include "vmm/control/control_protocol.h"

#include <cctype>
#include <limits>

namespace vmm::control {
namespace {

std::string error_reply(const std::string& message) {
  return Json{{"ok", false}, {"error", message}}.dump();
}

}  // namespace

void CommandTable::add(std::string name, std::string help, Handler handler) {
  std::lock_guard lock(mu_);
  commands_[std::move(name)] = Command{std::move(help), std::move(handler)};
}

Json CommandTable::help() const {
  Json list = Json::object();
  for (const auto& [name, cmd] : commands_) list[name] = cmd.help;
  list["help"] = "lists the commands";
  return Json{{"commands", list}};
}

std::string CommandTable::dispatch(std::string_view line) const {
  if (line.size() > kMaxRequestBytes) return error_reply("request longer than 65536 bytes");
  Json request = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return error_reply("malformed JSON");
  if (!request.is_object()) return error_reply("a request is a JSON object");
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) return error_reply("missing \"cmd\" (a string)");
  const std::string& name = cmd->get_ref<const std::string&>();

  Handler handler;
  {
    std::lock_guard lock(mu_);
    if (name == "help") {
      Json reply{{"ok", true}};
      reply.update(help());
      return reply.dump();
    }
    auto it = commands_.find(name);
    if (it == commands_.end()) return error_reply("unknown command \"" + name + "\" (try \"help\")");
    handler = it->second.handler;
  }
  try {
    Json result = handler(request);
    Json reply{{"ok", true}};
    if (result.is_object()) reply.update(result);
    else if (!result.is_null()) reply["result"] = std::move(result);
    // Replies hold only what handlers put there; replace invalid UTF-8
    // (a guest-chosen string, say) instead of failing the whole reply.
    return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const CommandError& e) {
    return error_reply(e.what());
  } catch (const std::exception& e) {
    return error_reply(std::string("internal error: ") + e.what());
  }
}

uint64_t get_uint(const Json& args, const char* field, bool required, uint64_t fallback) {
  auto it = args.find(field);
  if (it == args.end()) {
    if (required) throw CommandError(std::string("missing \"") + field + "\"");
    return fallback;
  }
  if (!it->is_number_unsigned()) {
    throw CommandError(std::string("\"") + field + "\" must be a non-negative integer");
  }
  return it->get<uint64_t>();
}

std::string get_string(const Json& args, const char* field, bool required, std::string fallback) {
  auto it = args.find(field);
  if (it == args.end()) {
    if (required) throw CommandError(std::string("missing \"") + field + "\"");
    return fallback;
  }
  if (!it->is_string()) throw CommandError(std::string("\"") + field + "\" must be a string");
  return it->get<std::string>();
}

uint64_t get_size(const Json& args, const char* field) {
  auto it = args.find(field);
  if (it == args.end()) throw CommandError(std::string("missing \"") + field + "\"");
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  const std::string bad = std::string("\"") + field + "\" must be a size such as 4096, \"64M\" or \"1G\"";
  if (!it->is_string()) throw CommandError(bad);
  const std::string& s = it->get_ref<const std::string&>();
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) throw CommandError(bad);
  uint64_t value = 0;
  size_t i = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) throw CommandError(bad);
    value = value * 10 + digit;
  }
  unsigned shift = 0;
  if (i < s.size()) {
    switch (std::toupper(static_cast<unsigned char>(s[i]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      default: throw CommandError(bad);
    }
    ++i;
  }
  if (i != s.size()) throw CommandError(bad);
  if (shift && value > (std::numeric_limits<uint64_t>::max() >> shift)) throw CommandError(bad);
  return value << shift;
}

}  // namespace vmm::control
