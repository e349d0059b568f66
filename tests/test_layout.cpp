// The source tree's architecture, checked: LibTorch code lives under src/libtorch/ only, the torch-free
// folders never include it, and the folders include each other without cycles.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;

const fs::path kSrc = fs::path(S2S_SOURCE_DIR) / "src";

// The folder of a path relative to src/, e.g. "infer/rnn/native_model.h" -> "infer/rnn".
std::string folder_of(const std::string& relative) {
  const auto slash = relative.rfind('/');
  return slash == std::string::npos ? "" : relative.substr(0, slash);
}

bool is_torch_folder(const std::string& folder) {
  return folder == "libtorch" || folder.rfind("libtorch/", 0) == 0;
}

struct Include {
  std::string file;    // relative to src/
  std::string target;  // quoted include path, or the <...> path
  bool system = false;
};

std::vector<Include> all_includes() {
  static const std::regex line(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::vector<Include> out;
  for (const auto& entry : fs::recursive_directory_iterator(kSrc)) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
    const auto rel = fs::relative(entry.path(), kSrc).generic_string();
    std::ifstream in(entry.path());
    std::string text;
    std::smatch m;
    while (std::getline(in, text)) {
      if (std::regex_search(text, m, line)) out.push_back({rel, m[2], m[1] == "<"});
    }
  }
  return out;
}

TEST(Layout, TorchFreeFoldersNeverIncludeLibTorch) {
  const auto includes = all_includes();
  ASSERT_GT(includes.size(), 100u) << "no sources found under " << kSrc;
  for (const auto& inc : includes) {
    if (is_torch_folder(folder_of(inc.file))) continue;
    const bool torch_header =
        inc.system && (inc.target.rfind("torch/", 0) == 0 || inc.target.rfind("ATen/", 0) == 0 ||
                       inc.target.rfind("c10/", 0) == 0);
    const bool ours = !inc.system && inc.target.rfind("libtorch/", 0) == 0;
    EXPECT_FALSE(torch_header || ours)
        << "src/" << inc.file << " is LibTorch-free but includes " << inc.target;
  }
}

// Depth-first search for a cycle in the folder graph; returns the cycle as "a -> b -> a", or "".
std::string find_cycle(const std::map<std::string, std::set<std::string>>& edges) {
  std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& node) {
    state[node] = 1;
    stack.push_back(node);
    const auto it = edges.find(node);
    if (it != edges.end()) {
      for (const auto& next : it->second) {
        if (state[next] == 1) {
          for (auto s = std::find(stack.begin(), stack.end(), next); s != stack.end(); ++s)
            cycle += *s + " -> ";
          cycle += next;
          return true;
        }
        if (state[next] == 0 && visit(next)) return true;
      }
    }
    stack.pop_back();
    state[node] = 2;
    return false;
  };
  for (const auto& [node, _] : edges) {
    if (state[node] == 0 && visit(node)) return cycle;
  }
  return "";
}

TEST(Layout, FoldersIncludeEachOtherWithoutCycles) {
  std::map<std::string, std::set<std::string>> edges;
  for (const auto& inc : all_includes()) {
    if (inc.system || inc.target.find('/') == std::string::npos) continue;
    const auto from = folder_of(inc.file), to = folder_of(inc.target);
    if (from != to) edges[from].insert(to);
  }
  ASSERT_TRUE(edges.count("libtorch/train")) << "the include graph looks empty";
  EXPECT_EQ(find_cycle(edges), "");
}

TEST(Layout, CycleFinderFindsACycle) {
  EXPECT_EQ(find_cycle({{"a", {"b"}}, {"b", {"c"}}, {"c", {"a"}}}), "a -> b -> c -> a");
  EXPECT_EQ(find_cycle({{"a", {"b", "c"}}, {"b", {"c"}}}), "");
}

}  // namespace
