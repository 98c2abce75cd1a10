#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "vmm/control/control_client.h"
#include "vmm/control/control_protocol.h"
#include "vmm/control/control_server.h"
#include "vmm/control/socket_util.h"

namespace vmm::control {
namespace {

Json parse(const std::string& reply) { return Json::parse(reply); }

void fill(CommandTable& t) {
  t.add("echo", "returns its arguments", [](const Json& args) { return Json{{"args", args}}; });
  t.add("size", "parses \"bytes\"", [](const Json& args) { return Json{{"bytes", get_size(args, "bytes")}}; });
  t.add("vm", "needs \"vm\"", [](const Json& args) { return Json{{"vm", get_uint(args, "vm")}}; });
  t.add("fails", "always refuses", [](const Json&) -> Json { throw CommandError("no such VM"); });
  t.add("buggy", "throws something else", [](const Json&) -> Json { throw std::out_of_range("oops"); });
}

TEST(ControlProtocol, GoodRequestsGetOkReplies) {
  CommandTable t;
  fill(t);
  Json r = parse(t.dispatch(R"({"cmd":"vm","vm":3})"));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["vm"], 3);
  r = parse(t.dispatch(R"({"cmd":"help"})"));
  EXPECT_EQ(r["ok"], true);
  EXPECT_TRUE(r["commands"].contains("echo"));
  EXPECT_TRUE(r["commands"].contains("help"));
}

TEST(ControlProtocol, EveryBadRequestGetsAOneLineError) {
  CommandTable t;
  fill(t);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "malformed JSON"},
      {"{", "malformed JSON"},
      {"not json at all", "malformed JSON"},
      {"[1,2,3]", "a request is a JSON object"},
      {"42", "a request is a JSON object"},
      {"{}", "missing \"cmd\""},
      {R"({"cmd":7})", "missing \"cmd\""},
      {R"({"cmd":"reboot-the-universe"})", "unknown command \"reboot-the-universe\""},
      {R"({"cmd":"vm"})", "missing \"vm\""},
      {R"({"cmd":"vm","vm":-1})", "\"vm\" must be a non-negative integer"},
      {R"({"cmd":"vm","vm":"one"})", "\"vm\" must be a non-negative integer"},
      {R"({"cmd":"vm","vm":1.5})", "\"vm\" must be a non-negative integer"},
      {R"({"cmd":"fails"})", "no such VM"},
      {R"({"cmd":"buggy"})", "internal error: oops"},
  };
  for (const auto& [request, error] : cases) {
    const std::string reply = t.dispatch(request);
    EXPECT_EQ(reply.find('\n'), std::string::npos) << request;
    Json r = parse(reply);
    EXPECT_EQ(r["ok"], false) << request;
    EXPECT_NE(r["error"].get<std::string>().find(error), std::string::npos) << request << " -> " << reply;
  }
}

TEST(ControlProtocol, SizesAreParsedWithoutOverflow) {
  CommandTable t;
  fill(t);
  EXPECT_EQ(parse(t.dispatch(R"({"cmd":"size","bytes":4096})"))["bytes"], 4096u);
  EXPECT_EQ(parse(t.dispatch(R"({"cmd":"size","bytes":"64M"})"))["bytes"], 64ull << 20);
  EXPECT_EQ(parse(t.dispatch(R"({"cmd":"size","bytes":"1g"})"))["bytes"], 1ull << 30);
  EXPECT_EQ(parse(t.dispatch(R"({"cmd":"size","bytes":"512K"})"))["bytes"], 512ull << 10);
  for (const char* bad : {R"("")", R"("M")", R"("12X")", R"("12MB")", R"("-5")", R"("99999999999999999999")",
                          R"("17179869184G")", "-5", "1.5", "true", "null"}) {
    Json r = parse(t.dispatch(std::string(R"({"cmd":"size","bytes":)") + bad + "}"));
    EXPECT_EQ(r["ok"], false) << bad;
  }
}

TEST(ControlProtocol, TooLongAndRandomInputIsRefused) {
  CommandTable t;
  fill(t);
  std::string huge = R"({"cmd":"echo","pad":")" + std::string(kMaxRequestBytes, 'x') + "\"}";
  EXPECT_EQ(parse(t.dispatch(huge))["ok"], false);
  // Random bytes, including invalid UTF-8, never escape as an exception.
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    Json r = parse(t.dispatch(s));
    EXPECT_EQ(r["ok"], false);
  }
  // Invalid UTF-8 inside an otherwise valid request is refused by the parser.
  Json r = parse(t.dispatch("{\"cmd\":\"echo\",\"x\":\"\xc3\x28\"}"));
  EXPECT_EQ(r["ok"], false);
}

std::string temp_socket_path() {
  char dir[] = "/tmp/control-test-XXXXXX";
  EXPECT_NE(::mkdtemp(dir), nullptr);
  return std::string(dir) + "/vmm.sock";
}

TEST(ControlServer, AnswersRequestsOverTheSocket) {
  CommandTable t;
  fill(t);
  const std::string path = temp_socket_path();
  {
    ControlServer server(path, t);
    Json r = parse(request(path, R"({"cmd":"vm","vm":7})"));
    EXPECT_EQ(r["vm"], 7);
    r = parse(request(path, "garbage"));
    EXPECT_EQ(r["ok"], false);
    // Still serving after garbage.
    EXPECT_EQ(parse(request(path, R"({"cmd":"help"})"))["ok"], true);
    EXPECT_EQ(server.requests_served(), 3u);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file is removed on shutdown";
}

TEST(ControlServer, ManyClientsAtOnce) {
  CommandTable t;
  fill(t);
  const std::string path = temp_socket_path();
  ControlServer server(path, t);
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 25; ++i) {
        Json r = parse(request(path, Json{{"cmd", "vm"}, {"vm", c * 100 + i}}.dump()));
        if (r["vm"] == c * 100 + i) ++good;
      }
    });
  }
  for (auto& th : clients) th.join();
  EXPECT_EQ(good.load(), 200);
}

// A raw connection, for what request() would never send.
int connect_raw(const std::string& path) {
  sockaddr_un addr = make_address(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(ControlServer, PipelinedRequestsAndOversizedLines) {
  CommandTable t;
  fill(t);
  const std::string path = temp_socket_path();
  ControlServer server(path, t);

  // Three requests in one write (and CRLF): three replies, in order.
  int fd = connect_raw(path);
  const std::string three = "{\"cmd\":\"vm\",\"vm\":1}\r\n{\"cmd\":\"nope\"}\n{\"cmd\":\"vm\",\"vm\":2}\n";
  ASSERT_TRUE(write_all(fd, three));
  ::shutdown(fd, SHUT_WR);
  std::string replies = read_all(fd);
  ::close(fd);
  ASSERT_EQ(std::count(replies.begin(), replies.end(), '\n'), 3) << replies;
  EXPECT_NE(replies.find("\"vm\":1"), std::string::npos);
  EXPECT_LT(replies.find("\"vm\":1"), replies.find("unknown command"));
  EXPECT_LT(replies.find("unknown command"), replies.find("\"vm\":2"));

  // A line longer than the limit gets one error and the connection closes.
  fd = connect_raw(path);
  write_all(fd, std::string(kMaxRequestBytes + 10, 'a'));
  std::string reply = read_all(fd);
  ::close(fd);
  EXPECT_NE(reply.find("longer than"), std::string::npos) << reply.substr(0, 200);

  // The server is unharmed.
  EXPECT_EQ(parse(request(path, R"({"cmd":"vm","vm":9})"))["vm"], 9);
}

TEST(ControlServer, RefusesALiveSocketAndReplacesAStaleOne) {
  CommandTable t;
  fill(t);
  const std::string path = temp_socket_path();
  {
    ControlServer first(path, t);
    EXPECT_THROW(ControlServer(path, t), std::runtime_error);
  }
  // A stale socket file: bound, never listening, left behind.
  sockaddr_un addr = make_address(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  ControlServer replaced(path, t);
  EXPECT_EQ(parse(request(path, R"({"cmd":"help"})"))["ok"], true);
}

TEST(ControlServer, BadPathsAreClearErrors) {
  CommandTable t;
  fill(t);
  const std::string path = temp_socket_path();
  std::ofstream(path) << "not a socket";
  try {
    ControlServer s(path, t);
    FAIL() << "a regular file was replaced";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a socket"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ControlServer(std::string(200, 'x'), t), std::runtime_error);
  EXPECT_THROW(ControlServer("/nonexistent-dir/vmm.sock", t), std::runtime_error);
  EXPECT_THROW(request("/nonexistent-dir/vmm.sock", "{}"), std::runtime_error);
}

TEST(ControlClient, ASilentServerTimesOut) {
  // Listening, never answering: a VMM whose control thread is stuck.
  const std::string path = temp_socket_path();
  sockaddr_un addr = make_address(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  try {
    request(path, R"({"cmd":"status"})", 200);
    FAIL() << "no reply, yet request returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no reply within 200 ms"), std::string::npos) << e.what();
  }
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace vmm::control
