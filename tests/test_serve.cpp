// s2s serve as a real process on localhost: translations equal the Translator's, requests sent together are
// decoded in shared batches, bad JSON is a 400, oversize requests a 413, and SIGTERM lets the in-flight
// request finish before the server exits 0.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "libtorch/decode/torch_engine.h"
#include "libtorch/train/checkpoint.h"
#include "nn_fixture.h"
#include "process.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = s2s_test::seeded_model_dir("serve_model", 3); }

  // Starts `s2s serve` on a free port; returns its port once it listens (0 when it did not within 30 s).
  int start(const std::vector<std::string>& flags) {
    std::vector<std::string> args{"serve", "-m", dir_.string(), "--port", "0", "--precision", "fp32"};
    args.insert(args.end(), flags.begin(), flags.end());
    static int servers = 0;  // a fresh log per server: an old one would name an old port
    log_ = dir_ / ("serve_" + std::to_string(::getpid()) + "_" + std::to_string(++servers) + ".log");
    child_ = s2s_test::spawn(args, log_.string());
    const std::regex listening(R"(on http://127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 600; ++i) {
      std::smatch m;
      std::ifstream in(log_);  // the child may not have created it yet
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (std::regex_search(text, m, listening)) return std::stoi(m[1]);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }

  // SIGTERM, then the exit code (-1 when it did not exit normally).
  int stop() {
    ::kill(child_.pid, SIGTERM);
    const int status = s2s_test::wait_status(child_.pid);
    ::close(child_.stdout_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static std::vector<std::string> translate_in_process(const std::vector<std::string>& lines, int beam) {
    auto b = s2s::load_model_dir(dir_, torch::kCPU);
    s2s::TranslateOptions opt;
    opt.search.beam_size = beam;
    return s2s::make_translator(b.model, b.src_tok, b.tgt_tok, b.device, opt).translate(lines);
  }

  static inline stdfs::path dir_;
  stdfs::path log_;
  s2s_test::Child child_;
};

const std::vector<std::string> kLines = {"Ein Mann geht.",
                                         "Zwei Kinder spielen im Park.",
                                         "Hallo Welt.",
                                         "Eine Frau liest ein Buch.",
                                         "",
                                         "Der Hund läuft schnell.",
                                         "Wir gehen nach Hause.",
                                         "Sie trinkt Kaffee."};

TEST_F(ServeTest, TranslatesConcurrentRequestsInSharedBatches) {
  const int port = start({"--batch-wait-ms", "100"});
  ASSERT_GT(port, 0) << s2s::fs::read_file(log_);
  httplib::Client client("127.0.0.1", port);
  auto health = client.Get("/health");
  ASSERT_TRUE(health) << "no answer";
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  const auto expected = translate_in_process(kLines, 2);
  std::vector<std::string> got(kLines.size());
  std::vector<int> status(kLines.size(), 0);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < kLines.size(); ++i) {
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      const auto res =
          c.Post("/translate", json{{"text", {kLines[i]}}, {"beam_size", 2}}.dump(), "application/json");
      if (!res) return;
      status[i] = res->status;
      if (res->status == 200) got[i] = json::parse(res->body)["translations"][0];
    });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < kLines.size(); ++i) {
    EXPECT_EQ(status[i], 200) << "request " << i;
    EXPECT_EQ(got[i], expected[i]) << "request " << i;
  }
  const auto stats = json::parse(client.Get("/health")->body);
  EXPECT_EQ(stats["requests"], kLines.size());
  EXPECT_LT(stats["batches"].get<int>(), static_cast<int>(kLines.size())) << "no request shared a batch";
  EXPECT_EQ(stop(), 0);
}

TEST_F(ServeTest, BadRequestsGet400And413) {
  const int port = start({"--max-lines", "4", "--max-request-kb", "1"});
  ASSERT_GT(port, 0) << s2s::fs::read_file(log_);
  httplib::Client client("127.0.0.1", port);
  auto post = [&](const std::string& body) { return client.Post("/translate", body, "application/json"); };
  auto bad = post("{\"text\": [\"unterminated");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(json::parse(bad->body)["error"].get<std::string>().find("bad JSON"), std::string::npos);
  EXPECT_EQ(post(R"({"text": 5})")->status, 400);
  EXPECT_EQ(post(R"({"text": [167373e80011]})")->status,
            400);                                          // a number overflow (found by fuzz_serve_request)
  const auto binary = post("{\"text\": [\"\xff\xfe\"]}");  // invalid UTF-8: a 400 whose JSON still parses
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->status, 400);
  EXPECT_NO_THROW(json::parse(binary->body));
  EXPECT_EQ(post(R"({"text": ["a"], "beam_size": 0})")->status, 400);
  EXPECT_EQ(post(R"({"text": ["a", "b", "c", "d", "e"]})")->status, 413);
  EXPECT_EQ(post(json{{"text", {std::string(2000, 'x')}}}.dump())->status, 413);
  const auto one = post(R"({"text": "Ein Mann geht."})");  // a single string is one line
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body)["translations"].size(), 1u);
  EXPECT_EQ(stop(), 0);
}

TEST_F(ServeTest, SigtermFinishesTheRequestInFlight) {
  const int port = start({"--batch-wait-ms", "400"});
  ASSERT_GT(port, 0) << s2s::fs::read_file(log_);
  int status = 0;
  size_t answered = 0;
  std::thread request([&] {
    httplib::Client c("127.0.0.1", port);
    const auto res = c.Post("/translate", json{{"text", kLines}}.dump(), "application/json");
    if (!res) return;
    status = res->status;
    answered = json::parse(res->body)["translations"].size();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the request waits in its batch
  EXPECT_EQ(stop(), 0);
  request.join();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(answered, kLines.size());
  const auto log = s2s::fs::read_file(log_);
  EXPECT_NE(log.find("SIGTERM: finishing in-flight requests"), std::string::npos) << log;
}

}  // namespace
