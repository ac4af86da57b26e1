#pragma once
// An HTTP/1.1 client over TLS (Beast, C++20 coroutines) for ThingSpace and,
// in the carrier simulator, for callback delivery. It verifies the peer
// certificate against a CA bundle (or the system's) and the host name, sends
// SNI, puts a deadline on connect and on the whole exchange, and keeps idle
// connections per host for reuse. A reused connection that turns out closed
// before any answer byte is retried once on a fresh one.
//
// One instance per executor; all calls on that executor's thread (it holds
// the idle pool without a lock).
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/net.hpp"
#include "handlers/api_outcome.hpp"

namespace tscb::daemon {

struct ClientOptions {
  std::string ca_file;  // PEM bundle; "" = the system's trust store
  bool verify_peer = true;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};  // write request + read response
  std::chrono::milliseconds keep_idle{20'000};        // idle connections older than this are closed
  std::size_t max_response_bytes = 8 * 1024 * 1024;
  std::size_t max_idle_per_host = 16;
  // Connections being opened to one host at once. A call that finds no idle
  // connection while these are under way waits for one of them to end or
  // for another call's connection to come back, whichever is first (at most
  // connect_timeout, then it opens its own): a burst of calls then shares a
  // few new connections instead of paying one TLS handshake each.
  int max_connecting_per_host = 8;
};

struct ClientRequest {
  http::verb method = http::verb::get;
  std::string url;  // https://host[:port]/path?query (http:// for plain test peers)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Length even on GET/DELETE when not empty
};

struct ClientResponse {
  int status = 0;         // 0: no HTTP answer (see `error`)
  std::string error;      // transport failure: what and where
  bool not_sent = false;  // the request surely never left (no connection could be made)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// What an answer means (handlers/api_outcome.hpp: success, retry, renew,
// final), for ThingSpace and for the internal URLs of http.post actions.
handlers::ApiOutcome OutcomeOf(const ClientResponse& res);
// Whether a failed exchange may still have been carried out by the server:
// no answer although the request left, 408, or a 5xx other than 503.
bool MaybeCarriedOut(const ClientResponse& res);

class HttpsClient {
 public:
  HttpsClient(asio::any_io_executor executor, ClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Never throws for network or HTTP errors; a bad URL gives status 0 too.
  asio::awaitable<ClientResponse> Send(ClientRequest request);

  // Closes every idle connection.
  void CloseIdle();

 private:
  struct Connection;
  struct Fate {
    bool reusable = false;  // a whole answer, keep-alive: back to the pool
    bool stale = false;     // closed before any answer byte: safe to send again
  };
  struct Target {
    bool tls = true;
    std::string host;
    std::string port;
    std::string path;  // origin-form: path and query
    std::string Key() const { return (tls ? "s:" : "p:") + host + ":" + port; }
  };
  asio::awaitable<std::unique_ptr<Connection>> Open(const Target& target, std::string& error);
  asio::awaitable<ClientResponse> Exchange(Connection& conn, const Target& target,
                                           const ClientRequest& request, Fate& fate);

  struct Host {
    std::vector<std::unique_ptr<Connection>> idle;  // the newest at the back
    int connecting = 0;                             // connections being opened
    std::deque<asio::steady_timer*> waiting;        // calls waiting for one
  };
  // An idle connection to reuse (those idle past keep_idle are closed), or
  // null once a new one may be opened: see max_connecting_per_host.
  asio::awaitable<std::unique_ptr<Connection>> Acquire(Host& host);
  void WakeOne(Host& host);

  asio::any_io_executor executor_;
  ClientOptions options_;
  std::shared_ptr<ssl::context> tls_;
  std::map<std::string, Host> hosts_;
};

}  // namespace tscb::daemon
