// `s2s train --nproc N`: starts N ranks of the same command on this machine, with torchrun's environment
// variables (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE), forwards SIGINT and
// SIGTERM to them, and reports a rank that dies. LibTorch-free: the ranks load LibTorch, not the launcher.
#pragma once

#include <string>
#include <vector>

namespace s2s::app {

// Runs `argv` (the s2s command line without --nproc) as `nproc` ranks and waits for them. Returns 0 when all
// finished, 128 + signal when they stopped on SIGINT/SIGTERM, 1 when a rank failed or was killed.
int launch_local_ranks(const std::vector<std::string>& argv, int nproc);

// `argv` without its --nproc option (`--nproc N` or `--nproc=N`).
std::vector<std::string> without_nproc(const std::vector<std::string>& argv);

}  // namespace s2s::app
