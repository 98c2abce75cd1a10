#include "tests/checker/history.h"

#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <utility>

namespace checker {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

std::string_view to_string(EventType t) {
  switch (t) {
    case EventType::kInvoke:
      return "invoke";
    case EventType::kOk:
      return "ok";
    case EventType::kFail:
      return "fail";
    case EventType::kInfo:
      return "info";
  }
  return "?";
}

std::string_view to_string(OpKind f) {
  switch (f) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put";
    case OpKind::kDel:
      return "del";
    case OpKind::kCas:
      return "cas";
  }
  return "?";
}

std::string quote(std::string_view s) {
  // For display only: a value that is not UTF-8 is shown with U+FFFD rather
  // than making the report itself fail.
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string quote_or_null(const std::optional<std::string>& v) {
  return v ? quote(*v) : std::string("null");
}

ParseError::ParseError(std::size_t line, std::string message)
    : std::runtime_error("line " + std::to_string(line) + ": " + message),
      line_(line),
      message_(std::move(message)) {}

// ---- the recorder -----------------------------------------------------------

History::History(const History& other) {
  std::lock_guard<std::mutex> lock(other.mu_);
  events_ = other.events_;
  lines_ = other.lines_;
  pending_ = other.pending_;
}

History& History::operator=(const History& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  events_ = other.events_;
  lines_ = other.lines_;
  pending_ = other.pending_;
  return *this;
}

void History::invoke_get(ClientId c, std::string key) {
  append(Event{c, EventType::kInvoke, OpKind::kGet, std::move(key), std::nullopt, std::nullopt});
}

void History::invoke_put(ClientId c, std::string key, std::string value) {
  append(
      Event{c, EventType::kInvoke, OpKind::kPut, std::move(key), std::move(value), std::nullopt});
}

void History::invoke_del(ClientId c, std::string key) {
  append(Event{c, EventType::kInvoke, OpKind::kDel, std::move(key), std::nullopt, std::nullopt});
}

void History::invoke_cas(ClientId c, std::string key, std::optional<std::string> expected,
                         std::string value) {
  append(Event{c, EventType::kInvoke, OpKind::kCas, std::move(key), std::move(value),
               std::move(expected)});
}

void History::ok(ClientId c) { complete(c, EventType::kOk, std::nullopt, false); }

void History::ok_get(ClientId c, std::optional<std::string> value) {
  complete(c, EventType::kOk, std::move(value), true);
}

void History::fail(ClientId c) { complete(c, EventType::kFail, std::nullopt, false); }

void History::info(ClientId c) { complete(c, EventType::kInfo, std::nullopt, false); }

// The completion copies f, key, value and expected from the invoke, so that
// every line of the written history reads on its own (as Jepsen's do).
void History::complete(ClientId c, EventType type, std::optional<std::string> value,
                       bool is_get_result) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(c);
  if (it == pending_.end()) {
    throw HistoryError("client " + std::to_string(c) + " has no pending invoke for this " +
                       std::string(to_string(type)));
  }
  Event e = events_[it->second];
  e.type = type;
  if (is_get_result) {
    if (e.f != OpKind::kGet) {
      throw HistoryError("ok_get for client " + std::to_string(c) + " whose pending invoke is " +
                         std::string(to_string(e.f)) + "; use ok()");
    }
    e.value = std::move(value);
  } else if (type == EventType::kOk && e.f == OpKind::kGet) {
    throw HistoryError("ok() for client " + std::to_string(c) +
                       " whose pending invoke is a get; use ok_get(value)");
  }
  append_locked(std::move(e), 0);
}

void History::append(Event e, std::size_t line) {
  std::lock_guard<std::mutex> lock(mu_);
  append_locked(std::move(e), line);
}

namespace {

std::string describe_invoke(const Event& e) {
  return std::string(to_string(e.f)) + " " + quote(e.key);
}

}  // namespace

void History::append_locked(Event e, std::size_t line) {
  const std::size_t index = events_.size();
  if (line == 0) line = index + 1;
  const std::string who = "client " + std::to_string(e.client);
  if (e.client < 0) throw HistoryError("client id " + std::to_string(e.client) + " is negative");
  auto it = pending_.find(e.client);
  if (e.type == EventType::kInvoke) {
    if (e.f != OpKind::kCas && e.expected) {
      throw HistoryError("\"expected\" is only for cas, not " + std::string(to_string(e.f)));
    }
    if (it != pending_.end()) {
      throw HistoryError(who + " invokes " + describe_invoke(e) + " while its invoke of " +
                         describe_invoke(events_[it->second]) + " on line " +
                         std::to_string(lines_[it->second]) + " is still pending");
    }
    switch (e.f) {
      case OpKind::kGet:
      case OpKind::kDel:
        if (e.value) {
          throw HistoryError("invoke of " + std::string(to_string(e.f)) +
                             " must not carry a value");
        }
        break;
      case OpKind::kPut:
      case OpKind::kCas:
        if (!e.value) {
          throw HistoryError("invoke of " + std::string(to_string(e.f)) +
                             " needs a string \"value\" (the value written)");
        }
        break;
    }
    pending_.emplace(e.client, index);
  } else {
    if (it == pending_.end()) {
      throw HistoryError(std::string(to_string(e.type)) + " for " + who +
                         ", which has no pending invoke");
    }
    const Event& inv = events_[it->second];
    const std::string pending_desc = who + "'s pending invoke (line " +
                                     std::to_string(lines_[it->second]) + ") is " +
                                     describe_invoke(inv);
    if (e.f != inv.f || e.key != inv.key) {
      throw HistoryError(std::string(to_string(e.type)) + " of " + describe_invoke(e) +
                         " does not match: " + pending_desc);
    }
    if (e.expected != inv.expected) {
      throw HistoryError(std::string(to_string(e.type)) + " has \"expected\" " +
                         quote_or_null(e.expected) + " but " + pending_desc + " expecting " +
                         quote_or_null(inv.expected));
    }
    const bool is_read_result = e.type == EventType::kOk && e.f == OpKind::kGet;
    if (!is_read_result && e.value != inv.value) {
      throw HistoryError(std::string(to_string(e.type)) + " has \"value\" " +
                         quote_or_null(e.value) + " but " + pending_desc + " with value " +
                         quote_or_null(inv.value));
    }
    pending_.erase(it);
  }
  events_.push_back(std::move(e));
  lines_.push_back(line);
}

std::vector<Event> History::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::size_t History::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

std::size_t History::line_of(std::size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return i < lines_.size() ? lines_[i] : i + 1;
}

// ---- JSON lines -------------------------------------------------------------

std::string to_json_line(const Event& e) {
  ordered_json j;
  j["client"] = e.client;
  j["type"] = to_string(e.type);
  j["f"] = to_string(e.f);
  j["key"] = e.key;
  const bool has_value = e.f == OpKind::kPut || e.f == OpKind::kCas ||
                         (e.f == OpKind::kGet && e.type == EventType::kOk);
  if (has_value) j["value"] = e.value ? ordered_json(*e.value) : ordered_json(nullptr);
  if (e.f == OpKind::kCas)
    j["expected"] = e.expected ? ordered_json(*e.expected) : ordered_json(nullptr);
  try {
    return j.dump();
  } catch (const ordered_json::type_error&) {
    // JSON strings are UTF-8; silently replacing bytes would make the written
    // history disagree with what the service returned.
    throw HistoryError("key or value of client " + std::to_string(e.client) +
                       " is not valid UTF-8; JSON lines cannot hold it");
  }
}

void write_jsonl(std::ostream& out, const History& h) {
  for (const Event& e : h.events()) out << to_json_line(e) << '\n';
}

namespace {

// Parse errors from nlohmann read "[json.exception.parse_error.101] parse
// error at line 1, column 9: syntax error ..."; keep from "column".
std::string json_error_text(const std::string& what) {
  std::string_view s = what;
  if (auto p = s.find("column"); p != std::string_view::npos) return std::string(s.substr(p));
  if (auto p = s.find("] "); p != std::string_view::npos) return std::string(s.substr(p + 2));
  return what;
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

const json& required(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) throw std::invalid_argument(std::string("missing field \"") + name + "\"");
  return *v;
}

std::string required_string(const json& obj, const char* name) {
  const json& v = required(obj, name);
  if (!v.is_string()) {
    throw std::invalid_argument(std::string("field \"") + name + "\" must be a string, not " +
                                type_name(v));
  }
  return v.get<std::string>();
}

// A nullable string field: absent -> nullopt outer; null -> nullopt inner.
std::optional<std::optional<std::string>> nullable_string(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) {
    throw std::invalid_argument(std::string("field \"") + name +
                                "\" must be a string or null, not " + type_name(*v));
  }
  return std::optional<std::string>(v->get<std::string>());
}

EventType parse_type(const std::string& s) {
  if (s == "invoke") return EventType::kInvoke;
  if (s == "ok") return EventType::kOk;
  if (s == "fail") return EventType::kFail;
  if (s == "info") return EventType::kInfo;
  throw std::invalid_argument("unknown type " + quote(s) + " (expected invoke, ok, fail or info)");
}

OpKind parse_f(const std::string& s) {
  if (s == "get") return OpKind::kGet;
  if (s == "put") return OpKind::kPut;
  if (s == "del") return OpKind::kDel;
  if (s == "cas") return OpKind::kCas;
  throw std::invalid_argument("unknown f " + quote(s) + " (expected get, put, del or cas)");
}

// The shape of one line; the protocol (pending invokes) is History's job.
// `pending` is the client's pending invoke, if any, to fill in the fields a
// completion may leave out.
Event parse_event(const json& j, const std::map<ClientId, Event>& pending) {
  if (!j.is_object()) throw std::invalid_argument("expected a JSON object, got " + type_name(j));
  for (const auto& [name, unused] : j.items()) {
    (void)unused;
    if (name != "client" && name != "type" && name != "f" && name != "key" && name != "value" &&
        name != "expected") {
      throw std::invalid_argument("unknown field " + quote(name));
    }
  }
  Event e;
  const json& client = required(j, "client");
  if (!client.is_number_integer()) {
    throw std::invalid_argument("field \"client\" must be an integer, not " + type_name(client));
  }
  if (client.is_number_unsigned()) {
    const auto u = client.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) {
      throw std::invalid_argument("field \"client\" is out of range");
    }
    e.client = static_cast<ClientId>(u);
  } else {
    e.client = client.get<std::int64_t>();
  }
  if (e.client < 0) throw std::invalid_argument("field \"client\" must not be negative");
  e.type = parse_type(required_string(j, "type"));
  e.f = parse_f(required_string(j, "f"));
  e.key = required_string(j, "key");

  auto value = nullable_string(j, "value");
  auto expected = nullable_string(j, "expected");
  const std::string what = std::string(to_string(e.type)) + " of " + std::string(to_string(e.f));
  if (expected && e.f != OpKind::kCas) {
    throw std::invalid_argument("field \"expected\" is only for cas, not " +
                                std::string(to_string(e.f)));
  }

  if (e.type == EventType::kInvoke) {
    switch (e.f) {
      case OpKind::kGet:
      case OpKind::kDel:
        if (value && *value) throw std::invalid_argument(what + " must not carry a value");
        break;
      case OpKind::kPut:
      case OpKind::kCas:
        if (!value || !*value) {
          throw std::invalid_argument(what + " needs a string \"value\" (the value written)");
        }
        e.value = std::move(*value);
        break;
    }
    if (e.f == OpKind::kCas) {
      if (!expected) {
        throw std::invalid_argument(what +
                                    " needs \"expected\" (a string, or null for an absent key)");
      }
      e.expected = std::move(*expected);
    }
    return e;
  }

  if (e.type == EventType::kOk && e.f == OpKind::kGet) {
    // null is a result here (the key was absent), so leaving it out is an
    // error rather than a default.
    if (!value) {
      throw std::invalid_argument(
          "ok of get needs \"value\": the value read, or null if the key was absent");
    }
    e.value = std::move(*value);
  } else if (value) {
    e.value = std::move(*value);  // History checks it equals the invoke's.
  }
  // A completion may leave out what it repeats from its invoke. (If f or key
  // differ from the invoke, History rejects the line before looking at these.)
  auto p = pending.find(e.client);
  const Event* inv = p == pending.end() ? nullptr : &p->second;
  if (!value && inv && !(e.type == EventType::kOk && e.f == OpKind::kGet)) e.value = inv->value;
  if (expected) {
    e.expected = std::move(*expected);
  } else if (inv) {
    e.expected = inv->expected;
  }
  return e;
}

}  // namespace

History read_jsonl(std::istream& in) {
  History h;
  // The pending invokes, mirrored here to fill in fields a completion omits;
  // History itself owns the protocol checks.
  std::map<ClientId, Event> pending;
  std::string text;
  std::size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;

    // nlohmann keeps the last of duplicate keys without a word; a history
    // with {"value":"a","value":"b"} is a bug in its writer, so say so.
    std::string duplicate;
    std::vector<std::string> seen;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
      if (ev == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
        std::string k = parsed.get<std::string>();
        for (const auto& s : seen) {
          if (s == k) duplicate = k;
        }
        seen.push_back(std::move(k));
      }
      return true;
    };
    json j;
    try {
      j = json::parse(text, cb);
    } catch (const json::parse_error& e) {
      throw ParseError(line, "invalid JSON: " + json_error_text(e.what()));
    }
    if (!duplicate.empty()) throw ParseError(line, "duplicate field " + quote(duplicate));

    Event e;
    try {
      e = parse_event(j, pending);
    } catch (const std::invalid_argument& err) {
      throw ParseError(line, err.what());
    }
    try {
      h.append(e, line);
    } catch (const HistoryError& err) {
      throw ParseError(line, err.what());
    }
    if (e.type == EventType::kInvoke) {
      pending[e.client] = e;
    } else {
      pending.erase(e.client);
    }
  }
  if (in.bad()) throw ParseError(line + 1, "read error");
  return h;
}

}  // namespace checker
