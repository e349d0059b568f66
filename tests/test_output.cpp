// Output handling of the binary, as coreutils do it: -o writes through symlinks (the link stays), streams
// into FIFOs and devices (they stay what they are), replaces regular files atomically with their permissions,
// and refuses to name the input; every write error (a full disk, on -o or on stdout) is a one-line error,
// exit 1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "config/model_dir.h"
#include "libtorch/model/weights_io.h"
#include "nn_fixture.h"
#include "util/fs.h"

namespace {

namespace stdfs = std::filesystem;

struct ShellResult {
  int code = -1;
  std::string err;
};

class Output : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = s2s_test::seeded_model_dir("output_model", 1); }
  void SetUp() override {
    dir_ = s2s_test::temp_dir("output");
    input_ = dir_ / "in.txt";
    s2s::fs::write_file_atomic(input_, "Ein Hund läuft.\nHallo Welt.\nZwei Kinder spielen.\n");
  }

  // Runs `s2s <args> <redirect>` through the shell (for `> /dev/full`); returns the exit code and stderr.
  ShellResult shell(const std::string& args, const std::string& redirect = "> /dev/null") const {
    const auto err = dir_ / "stderr.txt";
    const auto cmd =
        std::string("'") + S2S_BINARY + "' " + args + " " + redirect + " 2> '" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, s2s::fs::read_file(err)};
  }
  std::string translate_to(const std::string& output) const {
    return "-q translate -m '" + model_.string() + "' -i '" + input_.string() + "' -o '" + output + "'";
  }
  static void expect_one_line_error(const ShellResult& r, const std::string& text) {
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  }

  static inline stdfs::path model_;
  stdfs::path dir_, input_;
};

TEST_F(Output, WritesThroughSymlinksAndKeepsThem) {
  stdfs::create_symlink("real.txt", dir_ / "link.txt");  // relative and dangling: its target is created
  ASSERT_EQ(shell(translate_to((dir_ / "link.txt").string())).code, 0);
  EXPECT_TRUE(stdfs::is_symlink(dir_ / "link.txt"));
  EXPECT_EQ(s2s::fs::read_lines(dir_ / "real.txt").size(), 3u);
  ASSERT_EQ(shell(translate_to((dir_ / "link.txt").string())).code, 0);  // and when the target exists
  EXPECT_TRUE(stdfs::is_symlink(dir_ / "link.txt"));
}

TEST_F(Output, StreamsIntoAFifo) {
  const auto fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // A read end held open (non-blocking) lets the writer in and keeps what it writes in the pipe buffer.
  const int read_end = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(read_end, 0);
  const auto r = shell(translate_to(fifo.string()));
  std::string received;
  char buf[4096];
  for (ssize_t n; (n = ::read(read_end, buf, sizeof buf)) > 0;) received.append(buf, static_cast<size_t>(n));
  ::close(read_end);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(received.begin(), received.end(), '\n'), 3);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced by a file";
}

TEST_F(Output, ReplacingARegularFileKeepsItsPermissions) {
  const auto out = dir_ / "out.txt";
  s2s::fs::write_file_atomic(out, "old\n");
  stdfs::permissions(out, stdfs::perms::owner_read | stdfs::perms::owner_write);
  ASSERT_EQ(shell(translate_to(out.string())).code, 0);
  EXPECT_EQ(s2s::fs::read_lines(out).size(), 3u);
  EXPECT_EQ(stdfs::status(out).permissions() & stdfs::perms::all,
            stdfs::perms::owner_read | stdfs::perms::owner_write);
}

TEST_F(Output, OutputNamingTheInputIsRefused) {
  const auto before = s2s::fs::read_file(input_);
  expect_one_line_error(shell(translate_to(input_.string())), "is the input file");
  EXPECT_EQ(s2s::fs::read_file(input_), before);
  stdfs::create_symlink(input_, dir_ / "same.txt");  // the same file under another name
  expect_one_line_error(shell(translate_to((dir_ / "same.txt").string())), "is the input file");
  EXPECT_EQ(s2s::fs::read_file(input_), before);
}

TEST_F(Output, AFullDiskIsAnErrorOnOutputAndStdout) {
  if (!stdfs::is_character_file("/dev/full")) GTEST_SKIP() << "no /dev/full here";
  expect_one_line_error(shell(translate_to("/dev/full")), "No space left on device");
  EXPECT_TRUE(stdfs::is_character_file("/dev/full")) << "the device was replaced";
  const auto translate = "-q translate -m '" + model_.string() + "' -i '" + input_.string() + "'";
  expect_one_line_error(shell(translate, "> /dev/full"), "No space left on device");
  const auto eval = "eval --hyp '" + input_.string() + "' --ref '" + input_.string() + "'";
  expect_one_line_error(shell(eval, "> /dev/full"), "cannot write to standard output: No space left");
  const auto dump = "train -c '" + std::string(S2S_SOURCE_DIR) + "/configs/demo.yaml' --model-dir '" +
                    (dir_ / "m").string() + "' --dump-config";
  expect_one_line_error(shell(dump, "> /dev/full"), "cannot write to standard output: No space left");
  EXPECT_EQ(shell(eval).code, 0);  // the same commands succeed when the output can be written
  EXPECT_EQ(shell(dump).code, 0);
}

TEST_F(Output, EvalKeepsItsTranslationsWithDashO) {
  const auto hyps = dir_ / "hyps.txt", translated = dir_ / "translated.txt";
  const auto model = "-m '" + model_.string() + "' ";
  ASSERT_EQ(shell("-q eval " + model + "--src '" + input_.string() + "' --ref '" + input_.string() +
                  "' -o '" + hyps.string() + "'")
                .code,
            0);
  ASSERT_EQ(shell(translate_to(translated.string())).code, 0);
  EXPECT_EQ(s2s::fs::read_file(hyps), s2s::fs::read_file(translated));  // what translate prints
  expect_one_line_error(shell("eval --hyp '" + input_.string() + "' --ref '" + input_.string() + "' -o '" +
                              hyps.string() + "'"),
                        "with --hyp there are none");
}

}  // namespace
