// The VMM's control protocol: one JSON object per line over a unix stream
// socket, one reply line per request.
//
//   request:  {"cmd": "stats"}            {"cmd": "pause", "vm": 1}
//   reply:    {"ok": true, ...results}    {"ok": false, "error": "one line"}
//
// This file is the transport-free half: a registry of commands and the
// dispatcher that turns one request line into one reply line. It never
// throws and never lets a handler's failure escape, so no input a client
// can send harms the VMM (tests/unit/vmm/control_test.cc feeds it garbage).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vmm::control {

using Json = nlohmann::json;

// A handler's way to refuse a request: the message becomes the reply's
// "error". Any other exception is reported as an internal error.
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Longest request line accepted; longer ones are refused and the
// connection closed (a client that sends megabytes is broken or hostile).
constexpr size_t kMaxRequestBytes = 64 * 1024;

class CommandTable {
 public:
  // `args` is the whole request object; the handler returns the fields to
  // add to {"ok": true} (an object, or null for none).
  using Handler = std::function<Json(const Json& args)>;

  // `help` is one line, listed by the built-in "help" command.
  void add(std::string name, std::string help, Handler handler);
  // One request line in, one reply line out (no trailing newline).
  std::string dispatch(std::string_view line) const;

 private:
  Json help() const;
  mutable std::mutex mu_;  // commands may be added while clients connect
  struct Command {
    std::string help;
    Handler handler;
  };
  std::map<std::string, Command, std::less<>> commands_;
};

// Helpers for handlers: typed access to request fields with one-line errors.
// `required` throws CommandError when the field is missing or of the wrong type.
uint64_t get_uint(const Json& args, const char* field, bool required = true, uint64_t fallback = 0);
std::string get_string(const Json& args, const char* field, bool required = true, std::string fallback = {});
// A size: a number of bytes, or a string "64M", "1G", "512K", "4096".
uint64_t get_size(const Json& args, const char* field);

}  // namespace vmm::control
