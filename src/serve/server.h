// s2s serve: an HTTP/JSON translation server over a Translator (cpp-httplib, Debian libcpp-httplib-dev).
//   POST /translate  {"text": ["...", ...] | "...", "beam_size": 5}  ->  {"translations": [...]}
//   GET  /health     ->  {"status": "ok", "requests": N, "batches": M, "lines": L}
// Requests that arrive together are translated together: a batching thread gathers every request queued
// within `batch_wait_ms` (per beam size) and hands their lines to the Translator as one input, which sorts
// them by length into decoder batches. Bad JSON is a 400, an oversize request a 413. stop() (SIGTERM,
// SIGINT) lets in-flight requests finish.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "decode/translator.h"
#include "util/error.h"

namespace s2s::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";      // address to listen on
  int port = 8080;                     // TCP port (0: any free port, logged)
  size_t max_request_bytes = 1 << 20;  // larger bodies get 413
  size_t max_lines = 1000;             // more lines in one request get 413
  int max_beam_size = 64;              // larger beam_size values get 400
  int default_beam_size = 5;           // when a request has no beam_size
  int batch_wait_ms = 5;               // how long a batch waits for more requests to join it
  int http_threads = 32;               // connections served at once
};

// A client error with its HTTP status (400 bad request, 413 too large).
struct HttpError : Error {
  HttpError(int status, const std::string& what) : Error(what), status(status) {}
  int status;
};

// A parsed POST /translate body.
struct TranslateRequest {
  std::vector<std::string> lines;  // one entry per line to translate (line breaks inside became spaces)
  int beam_size = 5;
};

// Parses and checks a POST /translate body; throws HttpError (400/413) naming what is wrong.
TranslateRequest parse_request(const std::string& body, const ServeOptions& options);

// Builds the Translator for one beam size (the server keeps one per beam size asked for).
using TranslatorFactory = std::function<std::unique_ptr<Translator>(int beam_size)>;

class Server {
 public:
  Server(TranslatorFactory factory, ServeOptions options);
  ~Server();
  // Binds, calls `on_listening(port)`, then serves until stop(); returns once in-flight requests are done.
  // Throws s2s::Error when the address cannot be bound.
  void run(const std::function<void(int port)>& on_listening);
  // Stops accepting connections; safe from any thread (not from a signal handler).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Blocks SIGTERM and SIGINT in the calling thread and so in every thread it starts later. Call it before any
// thread exists (the model's, the server's), so that run_until_signal() alone receives them.
void block_stop_signals();

// Runs `server` until SIGTERM or SIGINT (blocked beforehand by block_stop_signals), then stops it gracefully.
void run_until_signal(Server& server, const std::function<void(int port)>& on_listening);

}  // namespace s2s::serve
