// The check-history tool on the hand-written histories in tests/histories/:
// exit status 0 for legal-*, 1 for illegal-*, 2 for malformed-* and misuse.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

fs::path self_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

// build/san/check-history sits beside this test (build/san/test-checker).
fs::path tool() { return self_dir() / "check-history"; }

// tests/histories/ of the source tree that holds this build directory.
fs::path histories() {
  for (fs::path p = self_dir(); !p.empty(); p = p.parent_path()) {
    if (fs::is_directory(p / "tests/histories")) return p / "tests/histories";
    if (p == p.root_path()) break;
  }
  return "tests/histories";  // run from the repository root
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Outcome {
  int status;
  std::string out;  // stdout and stderr together
};

Outcome run(const std::string& args) {
  const std::string cmd = shell_quote(tool().string()) + " " + args + " 2>&1";
  Outcome r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

Outcome check(const std::string& file) {
  return run("--model kv " + shell_quote((histories() / file).string()));
}

class CheckHistory : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(tool())) << tool() << " is missing; make build/san/check-history";
    ASSERT_TRUE(fs::is_directory(histories())) << histories();
  }
};

TEST_F(CheckHistory, EveryFileInTestsHistoriesGetsTheExitStatusItsNameSays) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(histories())) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".jsonl") continue;
    ++files;
    const Outcome r = check(name);
    if (name.rfind("legal-", 0) == 0) {
      EXPECT_EQ(r.status, 0) << name << "\n" << r.out;
      EXPECT_EQ(r.out, "linearizable\n") << name;
    } else if (name.rfind("illegal-", 0) == 0) {
      EXPECT_EQ(r.status, 1) << name << "\n" << r.out;
      EXPECT_EQ(r.out.rfind("not linearizable\n", 0), 0u) << name << "\n" << r.out;
    } else if (name.rfind("malformed-", 0) == 0) {
      EXPECT_EQ(r.status, 2) << name << "\n" << r.out;
    } else {
      ADD_FAILURE() << name << ": name it legal-*, illegal-* or malformed-*";
    }
  }
  EXPECT_GE(files, 8);
}

TEST_F(CheckHistory, StaleReadWindowNamesTheRead) {
  const Outcome r = check("illegal-stale-read.jsonl");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("key \"x\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("client 3  get(\"x\") -> \"1\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("read \"1\", but the key holds \"2\""), std::string::npos) << r.out;
}

TEST_F(CheckHistory, LostWriteWindowNamesTheRead) {
  const Outcome r = check("illegal-lost-write.jsonl");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("read null, but the key holds"), std::string::npos) << r.out;
}

TEST_F(CheckHistory, MalformedInputNamesFileAndLine) {
  const std::string path = (histories() / "malformed-ok-without-invoke.jsonl").string();
  Outcome r = run("--model kv " + shell_quote(path));
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out.rfind(path + ":3: ok for client 2, which has no pending invoke", 0), 0u) << r.out;

  r = check("malformed-bad-json.jsonl");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("malformed-bad-json.jsonl:2: invalid JSON"), std::string::npos) << r.out;
}

TEST_F(CheckHistory, ReadsStandardInput) {
  const std::string file = shell_quote((histories() / "legal-concurrent.jsonl").string());
  Outcome r = run("--model kv - < " + file);
  EXPECT_EQ(r.status, 0) << r.out;
  r = run("--model kv - < " + shell_quote((histories() / "malformed-bad-json.jsonl").string()));
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out.rfind("<stdin>:2: invalid JSON", 0), 0u) << r.out;
}

TEST_F(CheckHistory, BudgetExhaustedExitsThree) {
  // 20 concurrent puts, then reads of two of their values in a row.
  const fs::path file =
      fs::temp_directory_path() / ("check-history-hard-" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream out(file);
    for (int c = 0; c < 20; ++c) {
      out << R"({"client":)" << c << R"(,"type":"invoke","f":"put","key":"k","value":"v)" << c
          << "\"}\n";
    }
    for (int c = 0; c < 20; ++c) {
      out << R"({"client":)" << c << R"(,"type":"ok","f":"put","key":"k","value":"v)" << c
          << "\"}\n";
    }
    for (int v = 0; v < 2; ++v) {
      out << R"({"client":99,"type":"invoke","f":"get","key":"k"})"
             "\n";
      out << R"({"client":99,"type":"ok","f":"get","key":"k","value":"v)" << v << "\"}\n";
    }
  }
  const Outcome r = run("--model kv --max-steps 1000 " + shell_quote(file.string()));
  fs::remove(file);
  EXPECT_EQ(r.status, 3) << r.out;
  EXPECT_EQ(r.out.rfind("unknown", 0), 0u) << r.out;
}

TEST_F(CheckHistory, Usage) {
  Outcome r = run("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: check-history --model kv"), std::string::npos);
  EXPECT_EQ(run("").status, 2);
  const std::string file = shell_quote((histories() / "legal-sequential.jsonl").string());
  r = run(file);  // no --model
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("--model is required"), std::string::npos) << r.out;
  r = run("--model sql " + file);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("unknown model"), std::string::npos) << r.out;
  EXPECT_EQ(run("--model kv --frobnicate " + file).status, 2);
  EXPECT_EQ(run("--model kv " + file + " " + file).status, 2);
  EXPECT_EQ(run("--model kv --max-steps lots " + file).status, 2);
  EXPECT_EQ(run("--model").status, 2);
  r = run("--model kv /nonexistent/history.jsonl");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("/nonexistent/history.jsonl: cannot open"), std::string::npos) << r.out;
}

}  // namespace
