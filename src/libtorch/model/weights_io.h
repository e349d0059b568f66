// The model's weights on disk: weights-only files (best.bin, infer/weights_file.h) written and read straight
// from and into a module's parameters, the model part of LibTorch archives (training checkpoints), and the
// parameters handed to the native engine in memory.
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "infer/parameters.h"

namespace s2s {

// First `limit` characters of a LibTorch message, on one line (for s2s::Error messages).
std::string brief_error(const std::exception& e, size_t limit = 160);

// Checkpoint files: "S2SCKPT1", uint64 payload size, uint64 XXH64 of the payload, then a LibTorch archive.
// Writes `ar` to `file` atomically (temp file, fsync, rename).
void save_model_archive(const std::filesystem::path& file, torch::serialize::OutputArchive& ar);

// Opens a checkpoint (or a bare LibTorch archive from s2s before 0.2), verifying the checksum; throws
// s2s::Error naming the file when it is missing, damaged or not an archive.
torch::serialize::InputArchive open_model_archive(const std::filesystem::path& file);

// Loads the archive's "model" part into `model`, checking every parameter's shape against the model.
void load_module_archive(torch::serialize::InputArchive& ar, torch::nn::Module& model,
                         const std::filesystem::path& file);

// Model parameters only (the best checkpoint), atomically, as raw float32 with names and shapes: loading
// needs no LibTorch archive machinery (4x faster) and no second copy of the model.
void save_weights(const std::filesystem::path& file, torch::nn::Module& model);

// The module's parameters as the native engine reads them from a weights file, copied to float32 in memory
// (validation during training converts the current weights without a best.bin round trip).
std::unique_ptr<infer::ParameterSource> module_parameters(const torch::nn::Module& model);

// Loads parameters from a file written by save_weights or save_checkpoint into CPU `model`, converting
// them to `dtype` (float32 or bf16) as they are read. Names and shapes must match the model.
void load_weights(const std::filesystem::path& file, torch::nn::Module& model,
                  torch::Dtype dtype = torch::kFloat);

}  // namespace s2s
