#include "serve/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "util/error.h"

namespace s2s::serve {

TranslateRequest parse_request(const std::string& body, const ServeOptions& o) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers out of range (out_of_range)
    throw HttpError(400, std::string("bad JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("text"))
    throw HttpError(400, R"(expected a JSON object {"text": ["...", ...]})");
  TranslateRequest r;
  const auto& text = j["text"];
  if (text.is_string()) {
    r.lines.push_back(text.get<std::string>());
  } else if (text.is_array()) {
    for (const auto& line : text) {
      if (!line.is_string()) throw HttpError(400, "\"text\" must hold strings only");
      r.lines.push_back(line.get<std::string>());
    }
  } else {
    throw HttpError(400, "\"text\" must be a string or an array of strings");
  }
  if (r.lines.size() > o.max_lines) {
    throw HttpError(413, std::to_string(r.lines.size()) + " lines in one request; the limit is " +
                             std::to_string(o.max_lines));
  }
  r.beam_size = o.default_beam_size;
  if (j.contains("beam_size")) {
    const auto& b = j["beam_size"];
    if (!b.is_number_integer() || b.get<int64_t>() < 1 || b.get<int64_t>() > o.max_beam_size) {
      throw HttpError(400, "\"beam_size\" must be an integer from 1 to " + std::to_string(o.max_beam_size));
    }
    r.beam_size = b.get<int>();
  }
  for (auto& line : r.lines) {  // a line break inside one entry would shift every later line
    for (auto& ch : line) {
      if (ch == '\n' || ch == '\r') ch = ' ';
    }
  }
  return r;
}

namespace {

// Gathers the lines of requests queued together and translates them as one input.
class BatchQueue {
 public:
  BatchQueue(TranslatorFactory factory, int wait_ms) : factory_(std::move(factory)), wait_ms_(wait_ms) {
    thread_ = std::thread([this] { loop(); });
  }
  ~BatchQueue() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  std::future<std::vector<std::string>> submit(TranslateRequest r) {
    Pending p{std::move(r), {}};
    auto future = p.promise.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(p));
    }
    cv_.notify_all();
    return future;
  }

  nlohmann::json stats() const {
    return {{"requests", requests_.load()}, {"batches", batches_.load()}, {"lines", lines_.load()}};
  }

 private:
  struct Pending {
    TranslateRequest request;
    std::promise<std::vector<std::string>> promise;
  };

  void loop() {
    for (;;) {
      std::vector<Pending> group;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        // Let requests sent together arrive, then take every queued one with the first one's beam size.
        cv_.wait_for(lock, std::chrono::milliseconds(wait_ms_), [&] { return stopping_; });
        const int beam = queue_.front().request.beam_size;
        for (auto it = queue_.begin(); it != queue_.end();) {
          if (it->request.beam_size == beam) {
            group.push_back(std::move(*it));
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
      }
      translate(group);
    }
  }

  void translate(std::vector<Pending>& group) {
    std::vector<std::string> lines;
    for (const auto& p : group) lines.insert(lines.end(), p.request.lines.begin(), p.request.lines.end());
    try {
      auto& translator = translators_[group.front().request.beam_size];
      if (!translator) translator = factory_(group.front().request.beam_size);
      const auto out = translator->translate(lines);
      size_t at = 0;
      for (auto& p : group) {
        const auto n = p.request.lines.size();
        p.promise.set_value({out.begin() + static_cast<std::ptrdiff_t>(at),
                             out.begin() + static_cast<std::ptrdiff_t>(at + n)});
        at += n;
      }
    } catch (...) {
      for (auto& p : group) p.promise.set_exception(std::current_exception());
    }
    requests_ += group.size(), lines_ += lines.size(), ++batches_;
  }

  TranslatorFactory factory_;
  int wait_ms_;
  std::map<int, std::unique_ptr<Translator>> translators_;  // per beam size; used by the batching thread only
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::atomic<int64_t> requests_{0}, batches_{0}, lines_{0};
  std::thread thread_;
};

void reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // replace: an error message may quote invalid UTF-8 from the request
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

}  // namespace

struct Server::Impl {
  Impl(TranslatorFactory factory, ServeOptions o)
      : options(std::move(o)), queue(std::move(factory), options.batch_wait_ms) {}
  ServeOptions options;
  BatchQueue queue;
  httplib::Server http;
};

Server::Server(TranslatorFactory factory, ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(factory), std::move(options))) {
  auto& http = impl_->http;
  const auto threads = static_cast<size_t>(std::max(1, impl_->options.http_threads));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(impl_->options.max_request_bytes);  // larger bodies: 413 from httplib
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto body = impl_->queue.stats();
    body["status"] = "ok";
    reply(res, 200, body);
  });
  http.Post("/translate", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      auto request = parse_request(req.body, impl_->options);
      auto future = impl_->queue.submit(std::move(request));
      reply(res, 200, {{"translations", future.get()}});
    } catch (const HttpError& e) {
      reply(res, e.status, {{"error", e.what()}});
    } catch (const std::exception& e) {
      spdlog::error("translation failed: {}", e.what());
      reply(res, 500, {{"error", e.what()}});
    }
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      const std::string what = res.status == 413   ? "request body too large"
                               : res.status == 404 ? "no such endpoint (POST /translate, GET /health)"
                                                   : "HTTP error " + std::to_string(res.status);
      reply(res, res.status, nlohmann::json{{"error", what}});
    }
  });
}

Server::~Server() = default;

void Server::run(const std::function<void(int port)>& on_listening) {
  const auto& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
  } else if (!impl_->http.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0) {
    throw Error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (port in use, or not an address of this machine?)");
  }
  on_listening(port);
  impl_->http.listen_after_bind();
}

void Server::stop() {
  impl_->http.stop();
}

namespace {

sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

void block_stop_signals() {
  const auto signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void run_until_signal(Server& server, const std::function<void(int port)>& on_listening) {
  block_stop_signals();  // in case the caller did not (then earlier threads may still take them)
  std::atomic<bool> signaled{false}, done{false};
  std::thread waiter([&] {
    const auto signals = stop_signals();
    int sig = 0;
    sigwait(&signals, &sig);
    if (done) return;  // woken by us: the server stopped on its own
    signaled = true;
    spdlog::info("{}: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop();
  });
  auto finish = [&] {
    done = true;
    if (!signaled) pthread_kill(waiter.native_handle(), SIGTERM);  // still in sigwait: wake it
    waiter.join();
  };
  try {
    server.run(on_listening);
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

}  // namespace s2s::serve
