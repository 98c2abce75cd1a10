// The history model: the recorder's protocol checks, the JSON-lines writer,
// and the strict reader (one test per kind of malformed line).
#include "tests/checker/history.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace checker {
namespace {

History read(const std::string& text) {
  std::istringstream in(text);
  return read_jsonl(in);
}

std::string write(const History& h) {
  std::ostringstream out;
  write_jsonl(out, h);
  return out.str();
}

TEST(HistoryRecorder, CompletionsRepeatTheirInvoke) {
  History h;
  h.invoke_put(1, "k", "v1");
  h.invoke_cas(2, "k", "v1", "v2");
  h.ok(1);
  h.fail(2);
  h.invoke_get(1, "k");
  h.ok_get(1, std::nullopt);
  const auto ev = h.events();
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[2], (Event{1, EventType::kOk, OpKind::kPut, "k", "v1", std::nullopt}));
  EXPECT_EQ(ev[3], (Event{2, EventType::kFail, OpKind::kCas, "k", "v2", "v1"}));
  EXPECT_EQ(ev[5], (Event{1, EventType::kOk, OpKind::kGet, "k", std::nullopt, std::nullopt}));
}

TEST(HistoryRecorder, RejectsProtocolErrorsAndStaysUnchanged) {
  History h;
  EXPECT_THROW(h.ok(1), HistoryError);  // nothing pending
  EXPECT_THROW(h.info(1), HistoryError);
  h.invoke_get(1, "k");
  EXPECT_THROW(h.invoke_put(1, "k", "v"), HistoryError);  // second invoke
  EXPECT_THROW(h.ok(1), HistoryError);                    // a get needs ok_get
  h.invoke_put(2, "k", "v");
  EXPECT_THROW(h.ok_get(2, "v"), HistoryError);  // a put has no result
  EXPECT_THROW(h.invoke_get(-1, "k"), HistoryError);
  EXPECT_EQ(h.size(), 2u);
  h.ok_get(1, "v");
  h.ok(2);
  EXPECT_EQ(h.size(), 4u);
}

TEST(HistoryRecorder, AppendChecksCompletionsAgainstTheirInvoke) {
  History h;
  h.invoke_put(1, "k", "v");
  EXPECT_THROW(h.append({1, EventType::kOk, OpKind::kPut, "other", "v", std::nullopt}),
               HistoryError);
  EXPECT_THROW(h.append({1, EventType::kOk, OpKind::kDel, "k", std::nullopt, std::nullopt}),
               HistoryError);
  EXPECT_THROW(h.append({1, EventType::kOk, OpKind::kPut, "k", "w", std::nullopt}), HistoryError);
  EXPECT_THROW(h.append({2, EventType::kInvoke, OpKind::kPut, "k", std::nullopt, std::nullopt}),
               HistoryError);  // a put without a value
  EXPECT_THROW(h.append({2, EventType::kInvoke, OpKind::kGet, "k", "v", std::nullopt}),
               HistoryError);  // a get with one
  EXPECT_THROW(h.append({2, EventType::kInvoke, OpKind::kPut, "k", "v", "x"}),
               HistoryError);  // expected is for cas
  h.append({1, EventType::kOk, OpKind::kPut, "k", "v", std::nullopt});
  EXPECT_EQ(h.size(), 2u);
}

TEST(HistoryRecorder, AClientMayInvokeAgainAfterInfo) {
  History h;
  h.invoke_put(1, "k", "v1");
  h.info(1);  // timed out; the request may still be in flight
  h.invoke_put(1, "k", "v2");
  h.ok(1);
  EXPECT_EQ(h.size(), 4u);
}

TEST(HistoryRecorder, ClientsMayRecordFromSeveralThreads) {
  History h;
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c) {
    threads.emplace_back([&h, c] {
      for (int i = 0; i < 200; ++i) {
        h.invoke_put(c, "k" + std::to_string(c), std::to_string(i));
        h.ok(c);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.size(), 1600u);
  // Each client's events alternate invoke, ok: the lock kept them whole.
  std::ostringstream out;
  write_jsonl(out, h);
  std::istringstream in(out.str());
  EXPECT_EQ(read_jsonl(in).size(), 1600u);
}

TEST(HistoryJson, WritesOneObjectPerLineAndReadsItBack) {
  History h;
  h.invoke_put(1, "k1", "v1");
  h.invoke_cas(2, "k1", std::nullopt, "v0");
  h.ok(1);
  h.fail(2);
  h.invoke_get(3, "k\"odd\"\n");
  h.ok_get(3, std::nullopt);
  h.invoke_del(4, "k1");
  h.info(4);
  h.invoke_get(5, "k1");  // never completes
  const std::string text = write(h);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            R"({"client":1,"type":"invoke","f":"put","key":"k1","value":"v1"})");
  EXPECT_NE(
      text.find(
          R"({"client":2,"type":"invoke","f":"cas","key":"k1","value":"v0","expected":null})"),
      std::string::npos);
  EXPECT_NE(text.find(R"({"client":3,"type":"ok","f":"get","key":"k\"odd\"\n","value":null})"),
            std::string::npos);
  const History back = read(text);
  EXPECT_EQ(back.events(), h.events());
  EXPECT_EQ(write(back), text);
}

TEST(HistoryJson, CompletionsMayOmitWhatTheyRepeat) {
  const History h =
      read(R"({"client":1,"type":"invoke","f":"cas","key":"k","value":"b","expected":"a"})"
           "\n"
           R"({"client":1,"type":"fail","f":"cas","key":"k"})"
           "\n\n  \n"  // blank lines are skipped but counted
           R"({"client":1,"type":"invoke","f":"put","key":"k","value":"c"})"
           "\r\n"
           R"({"client":1,"type":"ok","f":"put","key":"k"})"
           "\n");
  const auto ev = h.events();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[1], (Event{1, EventType::kFail, OpKind::kCas, "k", "b", "a"}));
  EXPECT_EQ(ev[3].value, "c");
  EXPECT_EQ(h.line_of(2), 5u);
}

TEST(HistoryJson, NonUtf8CannotBeWritten) {
  History h;
  h.invoke_put(1, "k", std::string("\xff", 1));
  EXPECT_THROW(write(h), HistoryError);
}

// Each kind of malformed line: the error names the line and what is wrong.
struct Malformed {
  const char* name;
  std::string text;
  std::size_t line;
  const char* message;  // a substring of the message
};

const std::string kInvokePut = R"({"client":1,"type":"invoke","f":"put","key":"k","value":"v"})";
const std::string kInvokeGet = R"({"client":1,"type":"invoke","f":"get","key":"k"})";

class MalformedLine : public testing::TestWithParam<Malformed> {};

TEST_P(MalformedLine, IsRejectedWithItsLineNumber) {
  const Malformed& m = GetParam();
  try {
    read(m.text);
    FAIL() << "accepted: " << m.text;
  } catch (const ParseError& e) {
    EXPECT_EQ(e.line(), m.line) << e.what();
    EXPECT_NE(e.message().find(m.message), std::string::npos)
        << "message: " << e.message() << "\nwanted: " << m.message;
    EXPECT_EQ(std::string(e.what()), "line " + std::to_string(m.line) + ": " + e.message());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, MalformedLine,
    testing::Values(
        Malformed{"BadJson", kInvokePut + "\n{\"client\": 1,\n", 2, "invalid JSON"},
        Malformed{"TrailingGarbage", kInvokePut + " x\n", 1, "invalid JSON"},
        Malformed{"NotAnObject", "[1, 2]\n", 1, "expected a JSON object, got array"},
        Malformed{"MissingClient", R"({"type":"invoke","f":"get","key":"k"})", 1,
                  "missing field \"client\""},
        Malformed{"MissingType", R"({"client":1,"f":"get","key":"k"})", 1,
                  "missing field \"type\""},
        Malformed{"MissingF", R"({"client":1,"type":"invoke","key":"k"})", 1,
                  "missing field \"f\""},
        Malformed{"MissingKey", R"({"client":1,"type":"invoke","f":"get"})", 1,
                  "missing field \"key\""},
        Malformed{"ClientString", R"({"client":"1","type":"invoke","f":"get","key":"k"})", 1,
                  "\"client\" must be an integer, not string"},
        Malformed{"ClientFloat", R"({"client":1.5,"type":"invoke","f":"get","key":"k"})", 1,
                  "\"client\" must be an integer, not number"},
        Malformed{"ClientNegative", R"({"client":-2,"type":"invoke","f":"get","key":"k"})", 1,
                  "\"client\" must not be negative"},
        Malformed{"ClientHuge",
                  R"({"client":18446744073709551615,"type":"invoke","f":"get","key":"k"})", 1,
                  "out of range"},
        Malformed{"TypeUnknown", R"({"client":1,"type":"done","f":"get","key":"k"})", 1,
                  "unknown type \"done\""},
        Malformed{"TypeNotString", R"({"client":1,"type":3,"f":"get","key":"k"})", 1,
                  "\"type\" must be a string, not integer"},
        Malformed{"FUnknown", R"({"client":1,"type":"invoke","f":"incr","key":"k"})", 1,
                  "unknown f \"incr\""},
        Malformed{"KeyNotString", R"({"client":1,"type":"invoke","f":"get","key":7})", 1,
                  "\"key\" must be a string, not integer"},
        Malformed{"ValueNotString", R"({"client":1,"type":"invoke","f":"put","key":"k","value":7})",
                  1, "\"value\" must be a string or null, not integer"},
        Malformed{"UnknownField",
                  R"({"client":1,"type":"invoke","f":"get","key":"k","vaule":null})", 1,
                  "unknown field \"vaule\""},
        Malformed{"DuplicateField",
                  R"({"client":1,"type":"invoke","f":"put","key":"k","value":"a","value":"b"})", 1,
                  "duplicate field \"value\""},
        Malformed{"ExpectedOnPut",
                  R"({"client":1,"type":"invoke","f":"put","key":"k","value":"a","expected":"b"})",
                  1, "\"expected\" is only for cas"},
        Malformed{"PutWithoutValue", R"({"client":1,"type":"invoke","f":"put","key":"k"})", 1,
                  "needs a string \"value\""},
        Malformed{"PutNullValue",
                  R"({"client":1,"type":"invoke","f":"put","key":"k","value":null})", 1,
                  "needs a string \"value\""},
        Malformed{"CasWithoutExpected",
                  R"({"client":1,"type":"invoke","f":"cas","key":"k","value":"a"})", 1,
                  "needs \"expected\""},
        Malformed{"GetWithValue", R"({"client":1,"type":"invoke","f":"get","key":"k","value":"a"})",
                  1, "must not carry a value"},
        Malformed{"OkWithoutInvoke", R"({"client":4,"type":"ok","f":"put","key":"k"})", 1,
                  "ok for client 4, which has no pending invoke"},
        Malformed{"InfoWithoutInvoke", R"({"client":4,"type":"info","f":"put","key":"k"})", 1,
                  "info for client 4, which has no pending invoke"},
        Malformed{"OkAfterCompletion",
                  kInvokePut + "\n" + R"({"client":1,"type":"ok","f":"put","key":"k"})" + "\n" +
                      R"({"client":1,"type":"ok","f":"put","key":"k"})",
                  3, "no pending invoke"},
        Malformed{"TwoInvokesPending", kInvokePut + "\n\n" + kInvokeGet, 3,
                  "client 1 invokes get \"k\" while its invoke of put \"k\" on line 1 is still "
                  "pending"},
        Malformed{"OkGetWithoutValue",
                  kInvokeGet + "\n" + R"({"client":1,"type":"ok","f":"get","key":"k"})", 2,
                  "ok of get needs \"value\""},
        Malformed{"CompletionOtherF",
                  kInvokeGet + "\n" + R"({"client":1,"type":"ok","f":"del","key":"k"})", 2,
                  "does not match: client 1's pending invoke (line 1) is get \"k\""},
        Malformed{"CompletionOtherKey",
                  kInvokeGet + "\n" + R"({"client":1,"type":"fail","f":"get","key":"j"})", 2,
                  "does not match"},
        Malformed{"CompletionOtherValue",
                  kInvokePut + "\n" + R"({"client":1,"type":"ok","f":"put","key":"k","value":"w"})",
                  2, "has \"value\" \"w\""},
        Malformed{"CompletionOtherExpected",
                  R"({"client":1,"type":"invoke","f":"cas","key":"k","value":"a","expected":"b"})"
                  "\n"
                  R"({"client":1,"type":"ok","f":"cas","key":"k","expected":null})",
                  2, "has \"expected\" null"}),
    [](const testing::TestParamInfo<Malformed>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace checker
