#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"

namespace s2s {
namespace {

// Where a value came from, for error messages: "configs/x.yaml:12" or "--set model.emb_dim=...".
std::string where(const std::string& origin, const YAML::Node& node) {
  if (node.Mark().line >= 0 && origin.rfind("--set", 0) != 0) {
    return origin + ":" + std::to_string(node.Mark().line + 1);
  }
  return origin;
}

template <class T>
void convert_scalar(const YAML::Node& node, T& out, const std::string& key, const std::string& origin) {
  const char* expected = std::is_same_v<T, bool>       ? "true or false"
                         : std::is_integral_v<T>       ? "an integer"
                         : std::is_floating_point_v<T> ? "a number"
                         : std::is_enum_v<T>           ? "a name"
                                                       : "a string";
  if (!node.IsScalar()) {
    throw Error(where(origin, node) + ": key '" + key + "' expects " + expected + ", got a " +
                (node.IsMap()        ? "mapping"
                 : node.IsSequence() ? "list"
                                     : "null value"));
  }
  if constexpr (std::is_enum_v<T>) {
    out = parse_enum<T>(node.Scalar(), where(origin, node) + ": " + key);
  } else if constexpr (std::is_same_v<T, Device>) {
    out = parse_device(node.Scalar(), where(origin, node) + ": " + key);
  } else {
    try {
      out = node.as<T>();
    } catch (const YAML::Exception&) {
      throw Error(where(origin, node) + ": key '" + key + "' expects " + expected + ", got '" +
                  node.Scalar() + "'");
    }
  }
}

// YAML keeps the first of two equal keys and drops the second silently: a duplicate is an error instead.
void reject_duplicate(std::map<std::string, YAML::Node>& seen, const std::string& key, const YAML::Node& node,
                      const std::string& what, const std::string& origin) {
  const auto [it, fresh] = seen.emplace(key, node);
  if (fresh) return;
  throw Error(where(origin, node) + ": duplicate " + what + " (first at line " +
              std::to_string(it->second.Mark().line + 1) + "); keep one");
}

// Reads one section (a YAML mapping) into its struct; unknown keys are errors with a suggestion.
template <class Section>
void read_section(const YAML::Node& node, Section& section, const std::string& name,
                  const std::string& origin) {
  if (!node.IsMap()) {
    throw Error(where(origin, node) + ": section '" + name + "' must be a mapping of key: value");
  }
  std::vector<std::string> known;
  section.visit([&](const char* key, auto&) { known.emplace_back(key); });
  std::map<std::string, YAML::Node> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      throw Error(where(origin, kv.first) + ": keys of section '" + name + "' must be plain names");
    const auto key = kv.first.as<std::string>();
    reject_duplicate(seen, key, kv.first, "key '" + name + "." + key + "'", origin);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      const auto hint = text::closest_match(key, known);
      throw Error(where(origin, kv.first) + ": unknown key '" + name + "." + key + "'" +
                  (hint.empty() ? "" : " (did you mean '" + name + "." + hint + "'?)"));
    }
  }
  section.visit([&](const char* key, auto& field) {
    if (const auto value = node[key]) convert_scalar(value, field, name + "." + key, origin);
  });
}

void read_config(const YAML::Node& root, Config& config, const std::string& origin) {
  if (root.IsNull()) return;
  if (!root.IsMap()) {
    throw Error(origin + ": expected a YAML mapping of sections (data, vocab, model, train, decode)");
  }
  std::vector<std::string> sections;
  config.visit([&](const char* name, auto&) { sections.emplace_back(name); });
  std::map<std::string, YAML::Node> seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) throw Error(where(origin, kv.first) + ": section names must be plain names");
    const auto name = kv.first.as<std::string>();
    reject_duplicate(seen, name, kv.first, "section '" + name + "'", origin);
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      const auto hint = text::closest_match(name, sections);
      throw Error(where(origin, kv.first) + ": unknown section '" + name + "'" +
                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }
  config.visit([&](const char* name, auto& section) {
    if (const auto node = root[name]) read_section(node, section, name, origin);
  });
}

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  const auto nul = text.find('\0');
  if (nul != std::string::npos) {
    const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(nul), '\n') + 1;
    throw Error(origin + ":" + std::to_string(line) + ": not a YAML text file (NUL byte)");
  }
  if (!text::is_valid_utf8(text)) throw Error(origin + ": not a YAML text file (invalid UTF-8)");
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(origin + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                ": malformed YAML: " + e.msg);
  }
}

// Applies one "section.key=value" override onto the parsed document.
void apply_override(YAML::Node& root, const std::string& item, std::vector<std::string>& overridden_paths) {
  const auto eq = item.find('=');
  const auto dot = item.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
    throw Error("--set '" + item + "': expected section.key=value (e.g. train.lr=0.0005)");
  }
  const auto section = item.substr(0, dot), key = item.substr(dot + 1, eq - dot - 1);
  const auto value = item.substr(eq + 1);
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception&) {
    parsed = YAML::Node(value);
  }
  if (!parsed.IsScalar()) parsed = YAML::Node(value);
  root[section][key] = parsed;
  overridden_paths.push_back(section + "." + key);
}

// Makes a relative path absolute against `base` (the config file's directory).
void resolve(std::string& path, const std::filesystem::path& base) {
  if (path.empty()) return;
  std::filesystem::path p(path);
  if (p.is_relative()) p = base / p;
  path = p.lexically_normal().string();
}

void resolve_paths(Config& c, const std::filesystem::path& file_base,
                   const std::vector<std::string>& from_cli) {
  const auto cwd = std::filesystem::current_path();
  auto fix = [&](std::string& path, const char* key) {
    const bool cli = std::find(from_cli.begin(), from_cli.end(), key) != from_cli.end();
    resolve(path, cli ? cwd : file_base);
  };
  fix(c.data.train_src, "data.train_src"), fix(c.data.train_tgt, "data.train_tgt");
  fix(c.data.valid_src, "data.valid_src"), fix(c.data.valid_tgt, "data.valid_tgt");
  fix(c.vocab.src_model, "vocab.src_model"), fix(c.vocab.tgt_model, "vocab.tgt_model");
}

// A validation failure that knows its key, so parse_config can point at the file line that set it.
class KeyError : public Error {
 public:
  KeyError(std::string key, const std::string& message) : Error(message), key(std::move(key)) {}
  std::string key;
};

template <class T>
void check(bool ok, const char* key, T value, const std::string& requirement) {
  if (!ok) {
    std::ostringstream os;
    os << key << " " << requirement << " (got " << value << ")";
    throw KeyError(key, os.str());
  }
}

// Where a key's value came from: the last --set that named it, else its line in the file.
std::string locate(const std::string& key, const YAML::Node& root, const std::string& origin,
                   const std::vector<std::string>& overrides) {
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    if (it->rfind(key + "=", 0) == 0) return "--set " + *it;
  }
  const auto dot = key.find('.');
  if (root.IsMap() && dot != std::string::npos) {
    const auto section = root[key.substr(0, dot)];
    if (section.IsMap()) {
      if (const auto node = section[key.substr(dot + 1)]) return where(origin, node);
    }
  }
  return origin;
}

}  // namespace

void validate(const Config& c) {
  check(c.data.max_length > 0, "data.max_length", c.data.max_length, "must be > 0");
  check(c.data.valid_max_sentences >= 0, "data.valid_max_sentences", c.data.valid_max_sentences,
        "must be >= 0");
  check(c.data.valid_src.empty() == c.data.valid_tgt.empty(), "data.valid_tgt", "'" + c.data.valid_tgt + "'",
        "and data.valid_src must be given together");
  check(c.vocab.size > 4, "vocab.size", c.vocab.size, "must be > 4");
  check(c.vocab.character_coverage > 0 && c.vocab.character_coverage <= 1, "vocab.character_coverage",
        c.vocab.character_coverage, "must be in (0, 1]");
  check(c.vocab.max_sentences > 0, "vocab.max_sentences", c.vocab.max_sentences, "must be > 0");
  const auto& m = c.model;
  check(m.emb_dim > 0, "model.emb_dim", m.emb_dim, "must be > 0");
  check(m.enc_layers > 0, "model.enc_layers", m.enc_layers, "must be > 0");
  check(m.enc_hidden > 0, "model.enc_hidden", m.enc_hidden, "must be > 0");
  check(m.dec_layers > 0, "model.dec_layers", m.dec_layers, "must be > 0");
  check(m.dec_hidden > 0, "model.dec_hidden", m.dec_hidden, "must be > 0");
  check(m.type != ModelType::kRnn || m.attention != AttentionType::kLuongDot ||
            m.dec_hidden == 2 * m.enc_hidden,
        "model.attention", to_string(m.attention),
        "luong-dot needs model.dec_hidden == 2 * model.enc_hidden");
  check(m.heads > 0, "model.heads", m.heads, "must be > 0");
  check(m.type != ModelType::kTransformer || m.emb_dim % m.heads == 0, "model.heads", m.heads,
        "must divide model.emb_dim (" + std::to_string(m.emb_dim) + ")");
  check(m.ffn_dim > 0, "model.ffn_dim", m.ffn_dim, "must be > 0");
  check(!m.share_embeddings || c.vocab.joint, "model.share_embeddings", "true", "needs vocab.joint: true");
  for (auto [key, p] : {std::pair{"model.dropout_emb", m.dropout_emb},
                        {"model.dropout_hidden", m.dropout_hidden},
                        {"model.dropout_attn", m.dropout_attn},
                        {"model.attention_dropout", m.attention_dropout},
                        {"model.ffn_dropout", m.ffn_dropout}}) {
    check(p >= 0 && p < 1, key, p, "must be in [0, 1)");
  }
  const auto& t = c.train;
  check(t.batch_tokens > 0, "train.batch_tokens", t.batch_tokens, "must be > 0");
  check(t.batch_multiple > 0, "train.batch_multiple", t.batch_multiple, "must be > 0");
  check(t.accum_steps > 0, "train.accum_steps", t.accum_steps, "must be > 0");
  check(t.max_steps >= 0, "train.max_steps", t.max_steps, "must be >= 0");
  check(t.max_epochs >= 0, "train.max_epochs", t.max_epochs, "must be >= 0");
  check(t.max_minutes >= 0, "train.max_minutes", t.max_minutes, "must be >= 0");
  check(t.lr > 0, "train.lr", t.lr, "must be > 0");
  check(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must be >= 0");
  check(t.lr_decay > 0 && t.lr_decay <= 1, "train.lr_decay", t.lr_decay, "must be in (0, 1]");
  check(t.lr_patience >= 0, "train.lr_patience", t.lr_patience, "must be >= 0");
  check(t.min_lr >= 0, "train.min_lr", t.min_lr, "must be >= 0");
  check(t.label_smoothing >= 0 && t.label_smoothing < 1, "train.label_smoothing", t.label_smoothing,
        "must be in [0, 1)");
  check(t.clip_norm >= 0, "train.clip_norm", t.clip_norm, "must be >= 0");
  check(t.adam_beta1 >= 0 && t.adam_beta1 < 1, "train.adam_beta1", t.adam_beta1, "must be in [0, 1)");
  check(t.adam_beta2 >= 0 && t.adam_beta2 < 1, "train.adam_beta2", t.adam_beta2, "must be in [0, 1)");
  check(t.threads > 0, "train.threads", t.threads, "must be > 0");
  check(t.log_every > 0, "train.log_every", t.log_every, "must be > 0");
  check(t.valid_every > 0, "train.valid_every", t.valid_every, "must be > 0");
  check(t.patience >= 0, "train.patience", t.patience, "must be >= 0");
  check(t.valid_beam_size > 0, "train.valid_beam_size", t.valid_beam_size, "must be > 0");
  check(t.valid_batch_size > 0, "train.valid_batch_size", t.valid_batch_size, "must be > 0");
  check(t.precision != Precision::kInt8, "train.precision", to_string(t.precision),
        "must be fp32, bf16 or auto (int8 is for decoding)");
  check(t.keep_checkpoints >= 0, "train.keep_checkpoints", t.keep_checkpoints, "must be >= 0");
  check(t.ema_decay >= 0 && t.ema_decay < 1, "train.ema_decay", t.ema_decay, "must be in [0, 1) (0 = off)");
  const auto& d = c.decode;
  check(d.beam_size > 0, "decode.beam_size", d.beam_size, "must be > 0");
  check(d.n_best > 0 && d.n_best <= d.beam_size, "decode.n_best", d.n_best, "must be in [1, beam_size]");
  check(d.batch_size >= 0, "decode.batch_size", d.batch_size, "must be >= 0 (0 = auto)");
  check(d.batch_tokens >= 0, "decode.batch_tokens", d.batch_tokens, "must be >= 0");
  check(d.normalize >= 0, "decode.normalize", d.normalize, "must be >= 0");
  check(d.max_length > 0, "decode.max_length", d.max_length, "must be > 0");
  check(d.max_length_factor > 0, "decode.max_length_factor", d.max_length_factor, "must be > 0");
  check(d.read_ahead > 0, "decode.read_ahead", d.read_ahead, "must be > 0");
  check(d.threads > 0, "decode.threads", d.threads, "must be > 0");
  check(d.workers >= 0, "decode.workers", d.workers, "must be >= 0 (0 = auto)");
  check(d.shortlist_per_source >= 1, "decode.shortlist_per_source", d.shortlist_per_source, "must be >= 1");
  check(d.shortlist_frequent >= 0, "decode.shortlist_frequent", d.shortlist_frequent, "must be >= 0");
}

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::filesystem::path& base_dir, const std::vector<std::string>& overrides) {
  YAML::Node root = parse_yaml(yaml_text, origin);
  Config config;
  read_config(root, config, origin);  // file errors point at the file's lines
  std::vector<std::string> from_cli;
  for (const auto& item : overrides) {
    YAML::Node patch(YAML::NodeType::Map);
    apply_override(patch, item, from_cli);
    read_config(patch, config, "--set " + item);
  }
  resolve_paths(config, base_dir, from_cli);
  try {
    validate(config);
  } catch (const KeyError& e) {
    throw Error(locate(e.key, root, origin, overrides) + ": " + e.what());
  }
  return config;
}

Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw Error("config file '" + file.string() + "' does not exist");
  if (std::filesystem::is_directory(file, ec)) {
    throw Error("config file '" + file.string() + "' is a directory, not a YAML file");
  }
  const auto text = fs::read_file(file);
  auto base = std::filesystem::absolute(file).parent_path();
  return parse_config(text, file.string(), base, overrides);
}

std::string dump_config(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  const_cast<Config&>(config).visit([&](const char* name, auto& section) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    section.visit([&](const char* key, auto& value) {
      out << YAML::Key << key << YAML::Value;
      using T = std::decay_t<decltype(value)>;
      if constexpr (std::is_same_v<T, std::string>) {
        out << YAML::DoubleQuoted << value;
      } else if constexpr (std::is_enum_v<T> || std::is_same_v<T, Device>) {
        out << to_string(value);
      } else if constexpr (std::is_floating_point_v<T>) {
        char buf[64];
        const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;  // shortest round-trip form
        out << std::string(buf, end);
      } else {
        out << value;
      }
    });
    out << YAML::EndMap;
  });
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace s2s
