// Data-parallel training over LibTorch's c10d: a TCPStore rendezvous and a Gloo process group (NCCL with a
// CUDA LibTorch). Ranks find each other the way torchrun's do (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
// LOCAL_RANK, LOCAL_WORLD_SIZE), or through the --dist-* flags. Every failure of a collective becomes an
// s2s::Error that names the rank that was lost.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace s2s::dist {

struct DistOptions {
  std::string addr = "127.0.0.1";     // rendezvous host: rank 0 listens there
  int port = 29500;                   // rendezvous TCP port
  int world_size = 1;                 // ranks in the job
  int rank = 0;                       // this process's rank, 0 <= rank < world_size
  int local_rank = 0;                 // rank on this machine (with CUDA: the GPU it trains on)
  int local_world_size = 1;           // ranks on this machine: they share its cores
  std::chrono::seconds timeout{600};  // rendezvous, and any one collective (rank 0 validating included)
  bool enabled = false;               // join a group: WORLD_SIZE or --world-size given (even 1), or > 1 ranks
};

// The options from torchrun's environment variables; not enabled when WORLD_SIZE is unset. Throws
// s2s::Error naming the variable when one is malformed.
DistOptions options_from_env();

// Checks ranges (world size, rank, port); `source` names where the values came from, for the message.
void validate(const DistOptions& options, const std::string& source);

class Group {
 public:
  // Rendezvous with the other ranks; throws s2s::Error when they do not all arrive within the timeout, the
  // port is taken, the address cannot be reached, or the ranks disagree about the world size.
  static std::unique_ptr<Group> connect(const DistOptions& options, const c10::Device& device);
  virtual ~Group() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums every rank's tensors in place, flattened into ~25 MB buckets; undefined tensors count as zeros and
  // are left undefined.
  virtual void all_reduce(std::vector<torch::Tensor>& tensors, const std::string& what) = 0;
  // The sum over ranks of each value.
  virtual std::vector<double> sum(const std::vector<double>& values, const std::string& what) = 0;
  // Rank 0's tensors (in place) or bytes, on every rank.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) = 0;
  virtual std::string broadcast_bytes(const std::string& bytes, const std::string& what) = 0;
  virtual void barrier(const std::string& what) = 0;
};

}  // namespace s2s::dist
