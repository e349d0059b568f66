// Data-parallel training over c10d, through the real binary on localhost with 2 ranks: 2 ranks x B equal
// 1 rank x 2B, a 2-rank checkpoint resumes in 1 rank, SIGINT saves and exits 130, a killed rank stops the
// others with an error naming it, and a bad rendezvous fails within its timeout.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/optim/adam.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <fstream>

#include "libtorch/train/checkpoint.h"
#include "libtorch/train/distributed.h"
#include "nn_fixture.h"
#include "process.h"

namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

s2s::Config dp_config() {
  auto c = s2s_test::tiny_config();
  c.vocab.src_model = s2s_test::demo_tokenizer()->path().string();
  c.data.valid_max_sentences = 5;
  c.model.dropout_emb = c.model.dropout_hidden = c.model.dropout_attn = 0;
  c.train.precision = s2s::Precision::kFp32;
  c.train.log_every = 2, c.train.valid_every = 4;
  c.train.share_cores = false;
  return c;
}

stdfs::path write_config(const s2s::Config& c, const std::string& name) {
  const auto file = s2s_test::temp_dir(name) / "config.yml";
  s2s::fs::write_file_atomic(file, s2s::dump_config(c));
  return file;
}

struct Run {
  int code = -1;        // exit code, or 128 + signal
  std::string stderr_;  // everything logged
  double seconds = 0;
};

// Runs `s2s train` to its end (at most `limit_s`).
Run run_train(const std::vector<std::string>& args, int limit_s = 300) {
  const auto err = s2s_test::temp_dir("dp_log") / "stderr.txt";
  const auto start = Clock::now();
  auto child = s2s_test::spawn(args, err.string());
  Run r;
  int status = 0;
  while (::waitpid(child.pid, &status, WNOHANG) == 0) {
    if (Clock::now() - start > std::chrono::seconds(limit_s)) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(child.stdout_fd);
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.stderr_ = s2s::fs::read_file(err);
  return r;
}

std::vector<std::string> train_args(const stdfs::path& config, const stdfs::path& dir,
                                    std::vector<std::string> extra) {
  std::vector<std::string> args{"train", "-c", config.string(), "--model-dir", dir.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct Checkpoint {
  std::vector<torch::Tensor> params;
  s2s::TrainState state;
};

Checkpoint load(const stdfs::path& dir, const s2s::Config& c) {
  auto model = s2s::build_model(c.model, s2s_test::vocabs_of(*s2s_test::demo_tokenizer()));
  auto params = s2s::unique_parameters(*model);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-3));
  Checkpoint out;
  s2s::load_checkpoint(dir / s2s::model_files::kLast, *model, adam, out.state);
  for (const auto& p : params) out.params.push_back(p.detach().clone());
  return out;
}

double max_difference(const Checkpoint& a, const Checkpoint& b) {
  double worst = 0;
  for (size_t i = 0; i < a.params.size(); ++i) {
    worst = std::max(worst, (a.params[i] - b.params[i]).abs().max().item<double>());
  }
  return worst;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET, addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The pids of `pid`'s children, i.e. the ranks of a launcher.
std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  for (pid_t child; in >> child;) out.push_back(child);
  return out;
}

// The RANK in a process's environment (-1 when unset).
int rank_of(pid_t pid) {
  const auto env = s2s::fs::read_file("/proc/" + std::to_string(pid) + "/environ");
  for (size_t pos = 0; pos < env.size();) {
    const size_t end = env.find('\0', pos);
    if (env.compare(pos, 5, "RANK=") == 0) return std::atoi(env.c_str() + pos + 5);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return -1;
}

// The pid of the launcher's child with RANK=`rank` (-1 when none).
pid_t rank_pid(pid_t launcher, int rank) {
  for (const pid_t child : children_of(launcher)) {
    if (rank_of(child) == rank) return child;
  }
  return -1;
}

// Starts a long 2-rank run and waits until it has trained (last.pt written at step 4).
s2s_test::Child start_long_run(const stdfs::path& dir, const std::string& err) {
  auto c = dp_config();
  c.train.max_steps = 100000;
  auto child = s2s_test::spawn(train_args(write_config(c, "dp_long"), dir, {"--nproc", "2"}), err);
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (!stdfs::exists(dir / s2s::model_files::kLast) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return child;
}

// Waits at most `limit_s` for `pid`; returns its exit code (128 + signal), -1 on timeout.
int wait_for(pid_t pid, int limit_s) {
  const auto deadline = Clock::now() + std::chrono::seconds(limit_s);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Distributed, TwoRanksEqualOneRankWithTheirGlobalBatch) {
  auto c = dp_config();
  c.train.max_steps = 5;
  const auto two = s2s_test::temp_dir("dp_two"), one = s2s_test::temp_dir("dp_one");
  const auto half = s2s_test::temp_dir("dp_half");
  const auto r2 = run_train(train_args(write_config(c, "dp_cfg2"), two, {"--nproc", "2"}));
  ASSERT_EQ(r2.code, 0) << r2.stderr_;
  EXPECT_CONTAINS(r2.stderr_, "global batch of 2 x 600 tokens");
  EXPECT_CONTAINS(r2.stderr_, "% | ");  // the progress lines give the gradient sum's share of the time
  EXPECT_CONTAINS(r2.stderr_, "| gradient sum ");
  c.train.batch_tokens = 1200;
  const auto r1 = run_train(train_args(write_config(c, "dp_cfg1"), one, {}));
  ASSERT_EQ(r1.code, 0) << r1.stderr_;
  c.train.batch_tokens = 600;  // the same per-rank batch in one process: other data per step
  ASSERT_EQ(run_train(train_args(write_config(c, "dp_cfg3"), half, {})).code, 0);
  const auto a = load(two, c), b = load(one, c), d = load(half, c);
  EXPECT_EQ(a.state.step, 5);
  EXPECT_EQ(a.state.batch_in_epoch, b.state.batch_in_epoch);
  EXPECT_EQ(a.state.total_tokens, b.state.total_tokens);
  EXPECT_LT(max_difference(a, b), 1e-5);
  EXPECT_GT(max_difference(a, d), 1e-3);  // the comparison can fail
  EXPECT_TRUE(stdfs::exists(two / "best.bin"));
}

TEST(Distributed, TwoRankCheckpointResumesInOneRank) {
  auto c = dp_config();
  c.train.max_steps = 4;
  const auto dir = s2s_test::temp_dir("dp_resume");
  ASSERT_EQ(run_train(train_args(write_config(c, "dp_cfg_r"), dir, {"--nproc", "2"})).code, 0);
  const auto at4 = load(dir, c);
  EXPECT_EQ(at4.state.batch_plan_tokens, 1200);
  c.train.max_steps = 6;
  const auto r = run_train(train_args(write_config(c, "dp_cfg_r1"), dir, {}));
  ASSERT_EQ(r.code, 0) << r.stderr_;
  EXPECT_CONTAINS(r.stderr_, "the global batch changed from 1200 to 600 tokens");
  const auto at6 = load(dir, c);
  EXPECT_EQ(at6.state.step, 6);
  EXPECT_EQ(at6.state.batch_plan_tokens, 600);
  // The same fraction of the epoch in the finer plan (about twice the batches), then 2 more steps.
  EXPECT_NEAR(at6.state.batch_in_epoch, 2 * at4.state.batch_in_epoch + 2, 1);
}

TEST(Distributed, SigintToTheLauncherSavesAndExits130) {
  const auto dir = s2s_test::temp_dir("dp_sigint");
  const auto err = (s2s_test::temp_dir("dp_sigint_log") / "stderr.txt").string();
  auto child = start_long_run(dir, err);
  ASSERT_TRUE(stdfs::exists(dir / s2s::model_files::kLast)) << s2s::fs::read_file(err);
  ::kill(child.pid, SIGINT);
  EXPECT_EQ(wait_for(child.pid, 60), 130) << s2s::fs::read_file(err);
  ::close(child.stdout_fd);
  const auto log = s2s::fs::read_file(err);
  EXPECT_CONTAINS(log, "[rank 0] interrupted by signal 2: checkpoint saved");
  EXPECT_CONTAINS(log, "[rank 1] interrupted by signal 2");
  EXPECT_GT(load(dir, dp_config()).state.step, 4);  // loadable, and saved at the stop, not at step 4
}

TEST(Distributed, SigtermToOneRankStopsThemAllWith143) {
  const auto dir = s2s_test::temp_dir("dp_sigterm");
  const auto err = (s2s_test::temp_dir("dp_sigterm_log") / "stderr.txt").string();
  auto child = start_long_run(dir, err);
  const pid_t rank1 = rank_pid(child.pid, 1);
  ASSERT_GT(rank1, 0) << "no rank 1 among the launcher's children";
  ::kill(rank1, SIGTERM);
  EXPECT_EQ(wait_for(child.pid, 60), 143) << s2s::fs::read_file(err);
  ::close(child.stdout_fd);
  EXPECT_CONTAINS(s2s::fs::read_file(err), "[rank 0] interrupted by signal 15: checkpoint saved");
  EXPECT_GT(load(dir, dp_config()).state.step, 4);
}

TEST(Distributed, AKilledRankStopsTheOthersWithAnErrorNamingIt) {
  const auto dir = s2s_test::temp_dir("dp_kill");
  const auto err = (s2s_test::temp_dir("dp_kill_log") / "stderr.txt").string();
  auto child = start_long_run(dir, err);
  const pid_t victim = rank_pid(child.pid, 1);
  ASSERT_GT(victim, 0) << "no rank 1 among the launcher's children";
  ::kill(victim, SIGKILL);
  const auto start = Clock::now();
  EXPECT_EQ(wait_for(child.pid, 60), 1);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  ::close(child.stdout_fd);
  const auto log = s2s::fs::read_file(err);
  EXPECT_CONTAINS(log, "was killed by signal 9");
  EXPECT_CONTAINS(log, "[rank 0] lost rank 1 during");
  EXPECT_GT(load(dir, dp_config()).state.step, 0);  // the last checkpoint is intact
}

// The group's collectives in-process, on a 1-rank Gloo group: buckets of several tensors, sums, bytes.
TEST(Distributed, OneRankGroupKeepsValuesAndBytes) {
  s2s::dist::DistOptions o;
  o.enabled = true, o.port = free_port(), o.timeout = std::chrono::seconds(30);
  auto group = s2s::dist::Group::connect(o, torch::kCPU);
  EXPECT_EQ(group->rank(), 0);
  EXPECT_EQ(group->size(), 1);
  EXPECT_EQ(group->sum({1.5, -2.0}, "test"), (std::vector<double>{1.5, -2.0}));
  std::vector<torch::Tensor> grads{torch::arange(6, torch::kFloat).view({2, 3}), torch::Tensor(),
                                   torch::full({8 << 20}, 0.5f)};  // 32 MB: a bucket of its own
  const auto before = grads[0].clone();
  group->all_reduce(grads, "test");
  EXPECT_TRUE(torch::equal(grads[0], before));
  EXPECT_FALSE(grads[1].defined());
  EXPECT_EQ(grads[2].sum().item<double>(), 0.5 * (8 << 20));
  const std::string bytes("a\0b", 3);
  EXPECT_EQ(group->broadcast_bytes(bytes, "test"), bytes);
  EXPECT_EQ(group->broadcast_bytes("", "test"), "");
}

// A group whose process group cannot be made (here: Gloo on an interface that does not exist) throws an
// s2s::Error naming the cause, after its heartbeat thread is stopped; a running thread would terminate.
TEST(Distributed, AGroupThatCannotConnectThrowsAnError) {
  s2s::dist::DistOptions o;
  o.enabled = true, o.port = free_port(), o.timeout = std::chrono::seconds(30);
  ::setenv("GLOO_SOCKET_IFNAME", "s2s_no_such_if0", 1);
  EXPECT_THROW(s2s::dist::Group::connect(o, torch::kCPU), s2s::Error);
  ::unsetenv("GLOO_SOCKET_IFNAME");
}

// Gloo writes to its peers with write(2). A rank whose peer died must see EPIPE and name the lost rank,
// not die of SIGPIPE before its read fails (the race behind a silently vanished rank 0).
void connect_then_write_to_a_dead_peer() {
  s2s::dist::DistOptions o;
  o.enabled = true, o.port = free_port(), o.timeout = std::chrono::seconds(30);
  auto group = s2s::dist::Group::connect(o, torch::kCPU);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) ::_exit(2);
  ::close(fds[1]);  // the peer dies
  const bool epipe = ::write(fds[0], "x", 1) < 0 && errno == EPIPE;
  ::_exit(epipe ? 0 : 3);
}

TEST(Distributed, AConnectedRankSurvivesAWriteToADeadPeer) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(connect_then_write_to_a_dead_peer(), ::testing::ExitedWithCode(0), "");
}

// torchrun's agent hosts the store on MASTER_PORT and sets TORCHELASTIC_USE_AGENT_STORE: every rank is a
// client then, and the keys live under /worker/attempt_<restart count>/.
TEST(Distributed, UnderTorchrunEveryRankIsAClientOfTheAgentsStore) {
  c10d::TCPStoreOptions so;
  so.port = 0, so.isServer = true, so.waitWorkers = false;
  auto agent = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  auto c = dp_config();
  c.train.max_steps = 3;
  const auto config = write_config(c, "dp_agent");
  const auto dir = s2s_test::temp_dir("dp_agent_dir");
  const std::vector<std::pair<const char*, std::string>> env{
      {"MASTER_ADDR", "127.0.0.1"},
      {"MASTER_PORT", std::to_string(agent->getPort())},
      {"WORLD_SIZE", "2"},
      {"LOCAL_WORLD_SIZE", "2"},
      {"TORCHELASTIC_USE_AGENT_STORE", "True"},
      {"TORCHELASTIC_RESTART_COUNT", "3"}};
  for (const auto& [name, value] : env) ::setenv(name, value.c_str(), 1);
  std::vector<s2s_test::Child> ranks;
  std::vector<std::string> logs;
  for (int r = 0; r < 2; ++r) {
    ::setenv("RANK", std::to_string(r).c_str(), 1), ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
    logs.push_back((s2s_test::temp_dir("dp_agent_log") / "stderr.txt").string());
    ranks.push_back(s2s_test::spawn(train_args(config, dir, {}), logs.back()));
  }
  for (const auto& [name, value] : env) ::unsetenv(name);
  ::unsetenv("RANK"), ::unsetenv("LOCAL_RANK");
  for (size_t r = 0; r < ranks.size(); ++r) {
    EXPECT_EQ(wait_for(ranks[r].pid, 120), 0) << s2s::fs::read_file(logs[r]);
    ::close(ranks[r].stdout_fd);
  }
  EXPECT_EQ(load(dir, c).state.step, 3);
  EXPECT_TRUE(agent->check({"/worker/attempt_3/s2s/joined"}));
}

TEST(Distributed, BadRendezvousFailsWithinTheTimeout) {
  const auto config = write_config(dp_config(), "dp_bad");
  const auto dir = s2s_test::temp_dir("dp_bad_dir");
  const auto addr = "127.0.0.1:" + std::to_string(free_port());
  // A world of 2 where only rank 0 comes.
  auto r =
      run_train(train_args(config, dir,
                           {"--world-size", "2", "--rank", "0", "--dist-addr", addr, "--dist-timeout", "3"}),
                60);
  EXPECT_EQ(r.code, 1);
  EXPECT_LT(r.seconds, 30);
  EXPECT_CONTAINS(r.stderr_, "only 1 of 2 ranks joined the rendezvous at " + addr + " within 3 s");
  // The port is taken.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET, sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK), sa.sin_port = 0;
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ::listen(fd, 1);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const auto taken = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  r = run_train(train_args(config, dir,
                           {"--world-size", "2", "--rank", "0", "--dist-addr", taken, "--dist-timeout", "3"}),
                60);
  ::close(fd);
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.stderr_, "cannot listen on " + taken + " for the rendezvous: the port is in use");
  EXPECT_EQ(std::count(r.stderr_.begin(), r.stderr_.end(), '\n'), 1) << r.stderr_;  // one line
  // Ranks that disagree about the world size.
  const auto addr2 = "127.0.0.1:" + std::to_string(free_port());
  const auto err0 = (s2s_test::temp_dir("dp_ws_log") / "rank0.txt").string();
  auto rank0 = s2s_test::spawn(
      train_args(config, dir,
                 {"--world-size", "2", "--rank", "0", "--dist-addr", addr2, "--dist-timeout", "5"}),
      err0);
  r = run_train(train_args(config, s2s_test::temp_dir("dp_ws_dir"),
                           {"--world-size", "3", "--rank", "1", "--dist-addr", addr2, "--dist-timeout", "5"}),
                60);
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.stderr_, "rank 1 was started with world size 3, rank 0 with 2");
  EXPECT_EQ(wait_for(rank0.pid, 60), 1);
  ::close(rank0.stdout_fd);
  // Flags and environment variables out of range.
  r = run_train(train_args(config, dir, {"--world-size", "2", "--rank", "2"}), 60);
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.stderr_, "rank 2 is outside 0..1 (world size 2)");
  r = run_train(train_args(config, dir, {"--dist-addr", "nohost"}), 60);
  EXPECT_CONTAINS(r.stderr_, "--dist-addr 'nohost': expected host:port");
}

}  // namespace
