#include "daemon/dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include "daemon/processor.hpp"
#include "daemon/time_format.hpp"
#include "handlers/json_fields.hpp"

namespace tscb::daemon {
namespace json = boost::json;
namespace {

std::string HostAndPid() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

http::verb Verb(const std::string& method) {
  if (method == "GET") return http::verb::get;
  if (method == "PUT") return http::verb::put;
  if (method == "DELETE") return http::verb::delete_;
  return http::verb::post;
}

// The devices an action body names, as pending requests store them
// ([[{id, kind}, ...], ...]): devices[].deviceIds, deviceIds[] (one device
// each), or device.
std::string DevicesOfBody(const json::object& body) {
  json::array out;
  if (auto* devices = body.if_contains("devices"); devices && devices->is_array()) {
    for (const auto& d : devices->as_array())
      if (auto* ids = d.is_object() ? d.as_object().if_contains("deviceIds") : nullptr;
          ids && ids->is_array())
        out.push_back(*ids);
  } else if (auto* ids = body.if_contains("deviceIds"); ids && ids->is_array()) {
    for (const auto& id : ids->as_array()) out.push_back(json::array{id});
  } else if (auto* device = body.if_contains("device"); device && device->is_object()) {
    out.push_back(json::array{*device});
  }
  return json::serialize(out);
}

std::string RequestIdOf(const std::string& response) {
  boost::system::error_code ec;
  auto v = json::parse(response, ec);
  return !ec && v.is_object() ? handlers::StringField(v.as_object(), "requestId") : std::string();
}

}  // namespace

Dispatcher::Dispatcher(const config::Config& config, StoreFactory factory, Metrics* metrics)
    : config_(config),
      db_(std::move(factory), "tscb-dispatch", metrics),
      metrics_(metrics),
      owner_(HostAndPid()),
      backoff_(handlers::BackoffPolicy{config.actions.retry_initial, config.actions.retry_max, 2.0},
               [this] { return std::uniform_real_distribution<double>(0, 1)(rng_); }),
      not_sent_wait_(std::max<std::chrono::milliseconds>(
          config.actions.poll_interval,
          std::min<std::chrono::milliseconds>(config.thingspace.breaker_open_for / 4,
                                              std::chrono::seconds(5)))),
      rng_(std::random_device{}()) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::Wake() {
  woken_ = true;
  alarm_.Ring();
}

void Dispatcher::Stop() {
  stopping_ = true;
  alarm_.Ring();
}

asio::awaitable<void> Dispatcher::Drain(std::chrono::milliseconds timeout) {
  asio::steady_timer wait(co_await asio::this_coro::executor);
  auto until = std::chrono::steady_clock::now() + timeout;
  while (calling_ > 0 && std::chrono::steady_clock::now() < until) {
    wait.expires_after(std::chrono::milliseconds(20));
    co_await wait.async_wait(kUse);
  }
  // The Run loop has stopped: record what ended.
  std::vector<Finished> done;
  done.swap(finished_);
  if (!done.empty()) {
    try {
      co_await Round(done, 0);
    } catch (...) {
      Report(done, std::current_exception());
    }
  }
  if (calling_ > 0)
    spdlog::warn("actions: {} still in flight at shutdown; their leases expire in {} s", calling_,
                 config_.actions.lease.count() / 1000);
}

asio::awaitable<void> Dispatcher::Recover() {
  auto recovered = co_await db_.Run([](storage::ProcessingStore& store) {
    auto batch = store.Begin();
    auto rows = batch->RecoverLeases();
    batch->Commit();
    return rows;
  });
  for (const auto& a : recovered) {
    if (a.state == "needs_review")
      spdlog::error(
          "action {} ({} of rule {}) was in flight past its lease (held by {}): it may have "
          "reached ThingSpace and is not safe to repeat; moved to needs_review (see `ts-callbackd "
          "actions list --state needs_review`)",
          a.id, a.action, a.rule, a.leased_by);
    else
      spdlog::warn(
          "action {} ({} of rule {}) was in flight past its lease (held by {}); safe to "
          "repeat, queued again",
          a.id, a.action, a.rule, a.leased_by);
    if (metrics_)
      metrics_->CountAction(a.action,
                            a.state == "needs_review" ? "needs_review" : "lease_recovered");
  }
}

asio::awaitable<void> Dispatcher::Run(ThingSpaceClient* client) {
  auto executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor);
  alarm_.Attach(timer);
  ClientOptions options;
  options.connect_timeout = config_.thingspace.connect_timeout;
  options.request_timeout = config_.thingspace.request_timeout;
  http_ = std::make_unique<HttpsClient>(executor, options);
  spdlog::info("actions: dispatcher {} running (concurrency {}, lease {} s)", owner_,
               config_.actions.concurrency, config_.actions.lease.count() / 1000);

  auto next_recovery = std::chrono::steady_clock::now();
  const auto recovery_every =
      std::min<std::chrono::milliseconds>(config_.actions.lease / 4, std::chrono::seconds(10));
  while (!stopping_) {
    try {
      if (std::chrono::steady_clock::now() >= next_recovery) {
        co_await Recover();
        next_recovery = std::chrono::steady_clock::now() + recovery_every;
      }
      // One round trip records the answers that came in and claims as many
      // new actions as there are free slots (the claim must be durable before
      // anything is sent, so this commit waits for the WAL flush; grouping
      // keeps that to one flush per round).
      std::vector<Finished> done;
      done.swap(finished_);
      const int room = config_.actions.concurrency - in_flight_ + static_cast<int>(done.size());
      woken_ = false;  // what this round sees needs no second look
      if (room > 0 || !done.empty()) {
        const auto start = std::chrono::steady_clock::now();
        std::vector<storage::OutboxAction> claimed;
        try {
          claimed = co_await Round(done, room);
        } catch (...) {
          Report(done, std::current_exception());
          throw;
        }
        spdlog::debug(
            "actions: recorded {}, claimed {} (room {}) in {:.1f} ms", done.size(), claimed.size(),
            room,
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
        for (auto& a : claimed) {
          ++in_flight_;
          ++calling_;
          asio::co_spawn(executor, Execute(std::move(a), client), asio::detached);
        }
      }
    } catch (const std::exception& e) {
      spdlog::error("actions: dispatcher: {}; trying again in {} ms", e.what(),
                    config_.actions.poll_interval.count());
      if (metrics_) metrics_->CountAction("dispatcher", "database_error");
    }
    if (stopping_) break;
    // Woken meanwhile (new actions, or calls that ended): another round now.
    if (woken_.exchange(false)) continue;
    // Until new actions are planned or a call ends, or the poll interval.
    timer->expires_after(config_.actions.poll_interval);
    co_await timer->async_wait(kUse);
  }
}

asio::awaitable<void> Dispatcher::Execute(storage::OutboxAction a, ThingSpaceClient* client) {
  storage::ActionResult r;
  r.id = a.id;
  r.owner = owner_;
  const std::string body = a.body_json.value_or("");
  bool retryable = false;
  bool maybe_performed = false;
  std::optional<std::chrono::seconds> retry_after;
  if (a.action == "http.post") {
    ClientRequest req;
    req.method = http::verb::post;
    req.url = a.target;
    req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    req.body = body;
    auto res = co_await http_->Send(std::move(req));
    auto outcome = OutcomeOf(res);
    r.http_status = res.status;
    r.response = res.body;
    if (outcome.verdict == handlers::ApiVerdict::kSuccess) {
      r.state = "succeeded";
    } else {
      retryable = outcome.verdict == handlers::ApiVerdict::kRetryable;
      retry_after = outcome.retry_after;
      maybe_performed = MaybeCarriedOut(res);
      r.error = res.status == 0 ? res.error : "HTTP " + std::to_string(res.status);
    }
  } else if (!client) {
    r.error = "no thingspace section in the config: ThingSpace actions cannot be sent";
  } else {
    auto res = co_await client->Call(Verb(a.method), a.target, body, a.safe);
    r.http_status = res.outcome.http_status;
    r.response = res.body;
    if (res.Ok()) {
      r.state = "succeeded";
      r.request_id = RequestIdOf(res.body);
    } else if (res.attempts == 0 && res.outcome.verdict == handlers::ApiVerdict::kRetryable) {
      // Refused here before anything went out (circuit breaker open, the
      // client stopping): wait, without using up one of the attempts, so a
      // long ThingSpace outage does not make actions dead.
      r.not_sent = true;
      retryable = true;
      r.error = res.Describe();
    } else {
      retryable = res.outcome.verdict == handlers::ApiVerdict::kRetryable;
      retry_after = res.outcome.retry_after;
      maybe_performed = res.maybe_performed;
      r.error = res.Describe();
    }
  }
  if (r.state.empty()) {
    if (!retryable) {
      r.state = "failed";
    } else if (!a.safe && maybe_performed) {
      r.state = "needs_review";
      r.error += "; it may have been carried out and is not safe to repeat";
    } else if (r.not_sent) {
      r.state = "queued";
      r.retry_in_seconds = static_cast<double>(not_sent_wait_.count()) / 1000.0;
    } else if (a.attempts >= a.max_attempts) {
      r.state = "dead";
      r.error += "; gave up after " + std::to_string(a.attempts) + " attempt(s)";
    } else {
      r.state = "queued";
      r.retry_in_seconds =
          static_cast<double>(backoff_.Delay(a.attempts, retry_after).count()) / 1000.0;
    }
  }

  // The answer is recorded with the next round (Run), together with the
  // others that ended meanwhile.
  finished_.push_back({std::move(a), std::move(r), body});
  --calling_;
  Wake();
}

asio::awaitable<std::vector<storage::OutboxAction>> Dispatcher::Round(
    const std::vector<Finished>& done, int room) {
  std::vector<char> recorded(done.size(), 0);
  std::vector<std::string> registered(done.size());
  // The answers' requests are registered in byte order of their ids: each
  // registration takes its id's advisory lock exclusively, and processors
  // take theirs shared in the same order (pg_processing_store.cpp), so the
  // two never wait for each other in a cycle.
  std::vector<std::size_t> order(done.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return done[x].result.request_id < done[y].result.request_id;
  });
  auto claimed = co_await db_.Run([&](storage::ProcessingStore& store) {
    auto batch = store.Begin();
    std::vector<storage::ActionResult> results;
    for (const auto& f : done) results.push_back(f.result);
    auto mine = batch->FinishActions(results);
    for (std::size_t i : order) {
      const auto& [a, r, body] = done[i];
      recorded[i] = mine[i];
      registered[i].clear();  // from an attempt DbWorker ran again
      if (!recorded[i] || r.state != "succeeded" || r.request_id.empty() || a.correlate.empty())
        continue;
      boost::system::error_code ec;
      auto parsed = json::parse(body, ec);
      json::object fields = !ec && parsed.is_object() ? parsed.as_object() : json::object();
      storage::PendingRequestRecord req;
      req.request_id = r.request_id;
      req.account = handlers::StringField(fields, "accountName");
      if (req.account.empty()) req.account = config_.account;
      req.action = a.correlate;
      req.devices_json = DevicesOfBody(fields);
      req.origin = "action:" + std::to_string(a.id);
      req.deadline_at =
          IsoUtc(std::chrono::system_clock::now() + config_.requests.DeadlineFor(a.correlate));
      registered[i] = Processor::RegisterInBatch(*batch, req);
    }
    std::vector<storage::OutboxAction> rows;
    if (room > 0)
      rows = batch->ClaimActions(static_cast<std::size_t>(room), config_.actions.lease, owner_);
    batch->Commit();
    return rows;
  });
  for (std::size_t i = 0; i < done.size(); ++i) {
    const auto& [a, r, body] = done[i];
    if (!recorded[i]) {
      spdlog::warn(
          "action_id={} action={} rule={}: its lease was lost before the answer was recorded ({})",
          a.id, a.action, a.rule, r.state);
    } else if (r.state == "succeeded") {
      spdlog::info("action_id={} action={} rule={} succeeded{}{}", a.id, a.action, a.rule,
                   r.request_id.empty() ? "" : " request_id=" + r.request_id,
                   registered[i].empty() ? "" : " (" + registered[i] + ")");
    } else if (r.state == "queued" && r.not_sent) {
      spdlog::debug("action_id={} action={} rule={} waits ({}); attempt {} of {} not used", a.id,
                    a.action, a.rule, r.error, a.attempts, a.max_attempts);
    } else if (r.state == "queued") {
      spdlog::warn("action_id={} action={} rule={} attempt {} of {} failed: {}; retry in {:.1f} s",
                   a.id, a.action, a.rule, a.attempts, a.max_attempts, r.error, r.retry_in_seconds);
    } else {
      spdlog::error("action_id={} action={} rule={} {}: {}", a.id, a.action, a.rule, r.state,
                    r.error);
    }
    if (metrics_) metrics_->CountAction(a.action, r.state);
  }
  in_flight_ -= static_cast<int>(done.size());
  co_return claimed;
}

void Dispatcher::Report(const std::vector<Finished>& done, std::exception_ptr error) {
  std::string what = "unknown error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  for (const auto& [a, r, body] : done) {
    spdlog::error("action {} ({}): recording its answer ({}) failed: {}; the lease will expire",
                  a.id, a.action, r.state, what);
    if (metrics_) metrics_->CountAction(a.action, "record_failed");
  }
  in_flight_ -= static_cast<int>(done.size());
}

}  // namespace tscb::daemon
