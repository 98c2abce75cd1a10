// Client histories of a key-value service: what the clients asked for and
// what they were told, in real-time order (DESIGN.md decision 6).
//
// A history is a sequence of events. Each client has at most one operation
// outstanding: an `invoke` event opens it and exactly one completion closes
// it:
//   ok    the operation took effect (for get: `value` is what was read, null
//         when the key was absent; for cas: it matched and stored `value`);
//   fail  the operation definitely did not take effect (a cas whose expected
//         value did not match, a request the server refused before acting);
//   info  indeterminate: it may or may not have taken effect, at any moment
//         after its invoke (a timeout, a crash). The client may invoke again.
// An invoke that is never completed is treated as `info`: the client crashed.
//
// The order of events is the real-time order: an event appended after
// another happened after it. That is all the checker needs to know about
// time, so no clocks are recorded.
//
// The JSON-lines form, one event per line (see README.md):
//   {"client":3,"type":"invoke","f":"cas","key":"k1","value":"v2","expected":"v1"}
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace checker {

using ClientId = std::int64_t;

enum class EventType { kInvoke, kOk, kFail, kInfo };
enum class OpKind { kGet, kPut, kDel, kCas };

std::string_view to_string(EventType t);
std::string_view to_string(OpKind f);

struct Event {
  ClientId client = 0;
  EventType type = EventType::kInvoke;
  OpKind f = OpKind::kGet;
  std::string key;
  // put, cas: the value written. ok of get: the value read (nullopt: absent).
  // Completions other than ok-of-get carry their invoke's value.
  std::optional<std::string> value;
  // cas only: the value the key must hold for the cas to apply (nullopt: the
  // key must be absent, i.e. create-if-absent).
  std::optional<std::string> expected;

  friend bool operator==(const Event&, const Event&) = default;
};

// A history that breaks the invoke/complete protocol (ok without a pending
// invoke, a second invoke while one is pending, a put without a value...).
class HistoryError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A malformed JSON line. `line` is 1-based; what() is "line N: message".
class ParseError : public std::runtime_error {
 public:
  ParseError(std::size_t line, std::string message);
  std::size_t line() const { return line_; }
  const std::string& message() const { return message_; }

 private:
  std::size_t line_;
  std::string message_;
};

// The recorder. Clients call invoke_* before sending a request and ok / fail
// / info after learning its outcome; append order is real-time order, so call
// these at the moment the request leaves and the reply arrives, not later.
// Every append is validated; a protocol error throws HistoryError and leaves
// the history unchanged. Thread-safe, so the host test driver may record from
// several client threads (the lock orders the events).
class History {
 public:
  History() = default;
  History(const History& other);
  History& operator=(const History& other);

  void invoke_get(ClientId c, std::string key);
  void invoke_put(ClientId c, std::string key, std::string value);
  void invoke_del(ClientId c, std::string key);
  void invoke_cas(ClientId c, std::string key, std::optional<std::string> expected,
                  std::string value);

  // Completes c's pending put, del or cas successfully.
  void ok(ClientId c);
  // Completes c's pending get successfully with the value read.
  void ok_get(ClientId c, std::optional<std::string> value);
  void fail(ClientId c);
  void info(ClientId c);

  // Appends any event, validating it against the pending invokes. A
  // completion must name the same f and key as its invoke and carry the same
  // value and expected (except ok of get, whose value is the value read).
  // `line` is where the event came from (for messages); 0: its index + 1.
  void append(Event e, std::size_t line = 0);

  std::vector<Event> events() const;
  std::size_t size() const;
  // 1-based line of event i in the JSON-lines form it was read from, or i + 1
  // for a recorded history (the line it has when written out).
  std::size_t line_of(std::size_t i) const;

 private:
  void append_locked(Event e, std::size_t line);
  void complete(ClientId c, EventType type, std::optional<std::string> value, bool is_get_result);

  mutable std::mutex mu_;
  std::vector<Event> events_;
  std::vector<std::size_t> lines_;  // parallel to events_
  // Client -> index of its pending invoke in events_.
  std::map<ClientId, std::size_t> pending_;
};

// One event as one line of JSON (no trailing newline).
std::string to_json_line(const Event& e);
void write_jsonl(std::ostream& out, const History& h);

// Reads JSON lines, strictly: every line must be an object with exactly the
// known fields, of the right types, obeying the invoke/complete protocol.
// Blank lines are skipped. Throws ParseError naming the first bad line.
History read_jsonl(std::istream& in);

// A JSON string literal for s (quotes and escapes), for readable output.
std::string quote(std::string_view s);
// quote(*v), or `null` (an absent key).
std::string quote_or_null(const std::optional<std::string>& v);

}  // namespace checker
