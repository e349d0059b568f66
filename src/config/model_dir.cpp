#include "config/model_dir.h"

#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"

namespace s2s {

Config read_model_dir_config(const std::filesystem::path& dir, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) throw Error("model directory '" + dir.string() + "' does not exist");
  if (!std::filesystem::is_directory(dir, ec)) {
    throw Error("model directory '" + dir.string() +
                "' is a file; pass the directory that s2s train wrote (--model-dir)");
  }
  const auto config_file = dir / model_files::kConfig;
  if (!std::filesystem::exists(config_file, ec)) {
    throw Error("'" + dir.string() + "' is not an s2s model directory (no " + model_files::kConfig + ")");
  }
  const auto text = fs::read_file(config_file);
  if (text::strip(text).empty()) {
    throw Error("'" + config_file.string() + "' is empty: the model directory is damaged (restore " +
                model_files::kConfig + " from a copy, or train again)");
  }
  return parse_config(text, config_file.string(), dir, overrides);
}

}  // namespace s2s
