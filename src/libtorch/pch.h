// Precompiled header for the LibTorch-facing targets: the heavy includes, parsed once.
#pragma once
#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <torch/nn.h>
#include <torch/optim.h>
#include <torch/serialize.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
