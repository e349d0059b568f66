#include "config/model_dir.h"

#include "util/error.h"
#include "util/fs.h"

namespace s2s {

Config read_model_dir_config(const std::filesystem::path& dir, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error("model directory '" + dir.string() + "' does not exist");
  const auto config_file = dir / model_files::kConfig;
  if (!std::filesystem::exists(config_file, ec)) {
    throw Error("'" + dir.string() + "' is not an s2s model directory (no " + model_files::kConfig + ")");
  }
  return parse_config(fs::read_file(config_file), config_file.string(), dir, overrides);
}

}  // namespace s2s
