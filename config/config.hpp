#pragma once
// The daemon's configuration as plain structs, built once by LoadConfig()
// (loader.hpp) and then only read. Defaults live here; config/example.yaml
// documents every key. Keys marked "reloadable" are re-read on SIGHUP by a
// later stage; everything else needs a restart.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/cidr.hpp"
#include "config/secret.hpp"

namespace tscb::config {

using Duration = std::chrono::milliseconds;

struct LogConfig {
  std::string level = "info";  // reloadable
  std::string file;            // reloadable (reopened); "" = stderr, the journal under systemd
  bool operator==(const LogConfig&) const = default;
};

struct DatabaseConfig {
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string name = "tscb";
  std::string user = "tscb";
  Secret password;  // optional: peer/trust/.pgpass setups need none
  Duration connect_timeout{std::chrono::seconds(5)};
  bool migrate_on_start = true;

  // libpq connection string; holds the password, so never log it. `role`
  // names the part of the daemon that holds the connection, in its
  // application_name (pg_stat_activity shows "ts-callbackd/inbox").
  std::string ConnectionString(const std::string& role = {}) const;
  // The same without the password, for messages.
  std::string Describe() const;
  bool operator==(const DatabaseConfig&) const = default;
};

struct TlsConfig {
  bool enabled = true;
  std::string certificate_file;  // PEM chain, leaf first
  std::string private_key_file;  // PEM
  // Staple the certificate's OCSP status when it names a responder and its
  // issuer follows it in certificate_file.
  bool ocsp_stapling = true;
  bool operator==(const TlsConfig&) const = default;
};

struct ListenerLimits {
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  Duration request_timeout{std::chrono::seconds(10)};  // TLS handshake, one request, one response
  Duration idle_timeout{std::chrono::seconds(60)};     // keep-alive wait for the next request
  std::size_t max_connections = 10000;
  bool operator==(const ListenerLimits&) const = default;
};

struct ListenerConfig {
  std::string address = "0.0.0.0";
  std::uint16_t port = 9443;  // 0 picks a free port (tests)
  std::string base_path = "/callbacks";
  int threads = 0;  // 0 = one per core
  TlsConfig tls;
  ListenerLimits limits;
  std::vector<Cidr> allow_from;       // reloadable; empty list = refuse everyone
  std::vector<Cidr> trusted_proxies;  // peers whose X-Forwarded-For is believed
  bool operator==(const ListenerConfig&) const = default;
};

struct ServiceConfig {
  std::string name;  // a ThingSpace callback service name (spec 3.4)
  std::string username;
  Secret password;
  bool operator==(const ServiceConfig&) const = default;
};

// Defaults measured with bench/run.sh and bench/ab.sh on 2 cores: no linger
// (a batch is what queued while the previous commit ran) and two writers, so
// that one commits while the other fills, beat longer lingers and larger
// batches; a second commit that starts once the first has run 1 ms beat
// waiting for a full batch (bench/README.md).
struct InboxConfig {
  std::size_t batch_max = 64;  // callbacks per commit at most
  Duration linger{0};          // extra wait for company once a batch has one callback
  int writers = 2;             // threads, each with its own connection
  // An idle writer takes what waits once the commit in progress has run
  // this long (or at once when a full batch waits).
  Duration join_after{1};
  // A commit wakes the processors (NOTIFY) at most this often; what commits
  // in between is announced at the end of the interval. 0: every commit.
  Duration notify_interval{5};
  bool operator==(const InboxConfig&) const = default;
};

struct AdminConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9090;
  Secret api_token;  // bearer token for the operator API (/v1/...); empty = API off
  bool operator==(const AdminConfig&) const = default;
};

// The processor (inbox -> events -> pending requests).
struct ProcessingConfig {
  int workers = 2;  // threads, each with its own connection (bench: 2 drain ~2x faster than 1)
  std::size_t batch_max = 500;                      // inbox rows per transaction
  Duration poll_interval{std::chrono::seconds(1)};  // besides LISTEN/NOTIFY
  // After a transaction that took fewer than batch_max rows, the worker waits
  // this long before it claims again, so that rows arriving at a steady rate
  // share a transaction (bench/README.md: at 2,000 callbacks/s, 5 ms took a
  // sixth of PostgreSQL's CPU off the pipeline and lowered the follow-up p99).
  Duration linger{5};
  bool operator==(const ProcessingConfig&) const = default;
};

// Pending asynchronous requests and their recovery (spec 5).
struct RequestsConfig {
  // ThingSpace resends for about 15 minutes (4 attempts, 5 minutes apart);
  // a request still pending after this is reconciled.
  Duration default_deadline{std::chrono::minutes(20)};
  std::vector<std::pair<std::string, Duration>> deadlines;  // per action
  Duration reconcile_interval{std::chrono::minutes(1)};
  Duration DeadlineFor(const std::string& action) const {
    for (const auto& [name, d] : deadlines)
      if (name == action) return d;
    return default_deadline;
  }
  bool operator==(const RequestsConfig&) const = default;
};

// Rules (DESIGN.md section 6): the YAML file of rules, re-read on SIGHUP.
struct RulesConfig {
  std::string file;  // "" = no rules; relative paths resolve against the config's folder
  bool operator==(const RulesConfig&) const = default;
};

// The outbox dispatcher: sends queued follow-up actions through the
// ThingSpace client (or to http.post URLs).
struct ActionsConfig {
  int concurrency = 16;                             // actions in flight at once, per daemon
  Duration poll_interval{std::chrono::seconds(1)};  // besides wake-ups from this daemon's processor
  Duration lease{std::chrono::minutes(5)};          // in flight longer: its daemon is taken as dead
  int max_attempts = 5;                             // dispatches per action, then dead
  Duration retry_initial{std::chrono::seconds(5)};  // backoff between dispatches (full jitter)
  Duration retry_max{std::chrono::minutes(10)};
  bool operator==(const ActionsConfig&) const = default;
};

// The local spool for PostgreSQL outages (DESIGN.md section 2).
struct SpoolConfig {
  bool enabled = true;
  std::string file;  // "" = $STATE_DIRECTORY/inbox.spool (systemd); none without it
  std::uint64_t max_bytes = 1024ULL * 1024 * 1024;
  bool operator==(const SpoolConfig&) const = default;
};

struct RetentionConfig {
  int months = 13;  // monthly partitions older than this are dropped
  Duration check_interval{std::chrono::hours(24)};
  bool operator==(const RetentionConfig&) const = default;
};

// Limits for the ThingSpace calls whose path (under the M2M base URL, without
// the query) starts with `path`; the longest matching entry wins.
struct EndpointLimit {
  std::string path;     // e.g. "/devices/actions/activate"; "" = every call
  double rate = 5.0;    // calls per second on average
  double burst = 10.0;  // calls allowed at once after a quiet spell
  int concurrency = 4;  // calls in flight at most
  bool operator==(const EndpointLimit&) const = default;
};

// The ThingSpace API client (spec sections 1, 2, 7). Present only when the
// config has a `thingspace` section; without it the daemon only receives.
struct ThingSpaceConfig {
  bool enabled = false;
  std::string oauth_url = "https://thingspace.verizon.com/api/ts/v1/oauth2/token";
  std::string m2m_url = "https://thingspace.verizon.com/api/m2m/v1";
  std::string ca_file;  // PEM bundle; "" = the system's trust store
  Secret app_key;       // OAuth2 client credentials (Key Management)
  Secret app_secret;
  std::string username;  // UWS web-services user for POST /session/login
  Secret password;
  Duration connect_timeout{std::chrono::seconds(5)};
  Duration request_timeout{std::chrono::seconds(30)};
  Duration token_refresh_margin{std::chrono::minutes(5)};  // renew this long before expiry
  int max_failed_logins = 2;  // in a row, then stop (5 lock the account for good)
  int max_attempts = 5;       // per call, for retryable failures
  Duration retry_initial{500};
  Duration retry_max{std::chrono::seconds(60)};
  int breaker_failures = 5;  // failures in a row that open the circuit
  Duration breaker_open_for{std::chrono::seconds(30)};
  bool logout_on_shutdown = true;
  EndpointLimit default_limit;
  std::vector<EndpointLimit> limits;
  bool operator==(const ThingSpaceConfig&) const = default;
};

// Self-registration (spec 3.1-3.3): every configured service is registered
// at `public_url` + "/" + service name.
struct RegistrationConfig {
  bool enabled = true;     // needs the thingspace section
  std::string public_url;  // e.g. https://cb.example.com:443/callbacks
  Duration interval{std::chrono::minutes(15)};
  bool replace_foreign = false;         // take over services registered elsewhere
  bool deregister_on_shutdown = false;  // would drop callbacks during a restart
  bool operator==(const RegistrationConfig&) const = default;
};

struct Config {
  std::string source_file;  // where it was loaded from
  std::string account;      // ThingSpace account name, e.g. 0000123456-00001
  LogConfig log;
  DatabaseConfig database;
  ListenerConfig listener;
  std::vector<ServiceConfig> services;
  InboxConfig inbox;
  AdminConfig admin;
  ThingSpaceConfig thingspace;
  RegistrationConfig registration;
  ProcessingConfig processing;
  RequestsConfig requests;
  RetentionConfig retention;
  RulesConfig rules;
  ActionsConfig actions;
  SpoolConfig spool;
  Duration shutdown_grace{std::chrono::seconds(10)};
  bool operator==(const Config&) const = default;
};

}  // namespace tscb::config
