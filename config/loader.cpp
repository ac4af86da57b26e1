#include "config/loader.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/public_url.hpp"
#include "config/services.hpp"

namespace tscb::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

bool IsValidLogLevel(const std::string& level) {
  for (const char* known : {"trace", "debug", "info", "warn", "error", "critical", "off"})
    if (level == known) return true;
  return false;
}

void ReadDatabase(MapReader r, DatabaseConfig& db) {
  r.Read("host", db.host);
  r.Read("port", db.port, 1, 65535);
  r.Read("name", db.name);
  r.Read("user", db.user);
  r.Read("password", db.password);
  r.Read("connect_timeout", db.connect_timeout, seconds(1), seconds(60));
  r.Read("migrate_on_start", db.migrate_on_start);
  r.Finish();
}

// Relative paths are relative to the config file's folder, not the cwd.
std::string ResolvePath(const ReadContext& ctx, const std::string& path) {
  if (path.empty() || path.front() == '/' || ctx.base_dir.empty()) return path;
  return ctx.base_dir + "/" + path;
}

void RequireReadableFile(MapReader& r, const char* key, const std::string& path) {
  if (path.empty()) {
    r.Context().errors.Add(r.Child(key), r.PathOf(key), "is required when tls.enabled is true");
  } else if (access(path.c_str(), R_OK) != 0) {
    r.Context().errors.Add(r.Child(key), r.PathOf(key), "cannot read file " + path);
  }
}

void ReadListener(MapReader r, ListenerConfig& l) {
  r.Read("address", l.address);
  if (!ParseIp(l.address))
    r.Context().errors.Add(r.Child("address"), r.PathOf("address"),
                           "expected an IP address such as 0.0.0.0 or ::");
  r.Read("port", l.port);
  r.Read("base_path", l.base_path);
  if (l.base_path.empty() || l.base_path.front() != '/' ||
      (l.base_path.size() > 1 && l.base_path.back() == '/'))
    r.Context().errors.Add(r.Child("base_path"), r.PathOf("base_path"),
                           "must start with '/' and not end with '/'");
  r.Read("threads", l.threads, 0, 256);

  MapReader tls = r.Map("tls");
  tls.Read("enabled", l.tls.enabled);
  tls.Read("certificate", l.tls.certificate_file);
  tls.Read("private_key", l.tls.private_key_file);
  tls.Read("ocsp_stapling", l.tls.ocsp_stapling);
  l.tls.certificate_file = ResolvePath(r.Context(), l.tls.certificate_file);
  l.tls.private_key_file = ResolvePath(r.Context(), l.tls.private_key_file);
  if (l.tls.enabled) {
    RequireReadableFile(tls, "certificate", l.tls.certificate_file);
    RequireReadableFile(tls, "private_key", l.tls.private_key_file);
  }
  tls.Finish();

  MapReader limits = r.Map("limits");
  limits.Read("max_body_bytes", l.limits.max_body_bytes, 1024, 16 * 1024 * 1024);
  limits.Read("max_header_bytes", l.limits.max_header_bytes, 1024, 1024 * 1024);
  limits.Read("request_timeout", l.limits.request_timeout, milliseconds(100), seconds(300));
  limits.Read("idle_timeout", l.limits.idle_timeout, milliseconds(100), hours(1));
  limits.Read("max_connections", l.limits.max_connections, 1, 1'000'000);
  limits.Finish();

  if (!r.Child("allow_from").IsDefined())
    r.Context().errors.Add(YAML::Node(), r.PathOf("allow_from"),
                           "is required (list ThingSpace's source addresses, spec 3.5)");
  r.Read("allow_from", l.allow_from);
  r.Read("trusted_proxies", l.trusted_proxies);
  r.Finish();
}

void ReadServices(MapReader& top, std::vector<ServiceConfig>& services) {
  YAML::Node node = top.Child("services");
  ReadContext& ctx = top.Context();
  if (!node.IsDefined()) {
    ctx.errors.Add(node, "services", "is required: name at least one callback service");
    return;
  }
  if (!node.IsMap() || node.size() == 0) {
    ctx.errors.Add(node, "services", "expected a mapping of service name to credentials");
    return;
  }
  for (const auto& item : node) {
    if (!item.first.IsScalar()) {
      ctx.errors.Add(item.first, "services", "a service name must be a plain name");
      continue;
    }
    std::string name = item.first.Scalar();
    std::string path = "services." + name;
    if (!IsKnownCallbackService(name)) {
      ctx.errors.Add(item.first, path, "unknown ThingSpace callback service (spec 3.4)");
      continue;
    }
    ServiceConfig service;
    service.name = name;
    MapReader r(item.second, path, ctx);
    r.Read("username", service.username, true);
    r.Read("password", service.password, true);
    r.Finish();
    if (service.username.size() > 40)
      ctx.errors.Add(r.Child("username"), path + ".username",
                     "ThingSpace accepts at most 40 characters");
    if (service.password.Reveal().size() > 40)
      ctx.errors.Add(r.Child("password"), path + ".password",
                     "ThingSpace accepts at most 40 characters");
    services.push_back(std::move(service));
  }
}

bool IsHttpsUrl(const std::string& url) { return url.rfind("https://", 0) == 0 && url.size() > 8; }

void ReadLimit(MapReader& r, EndpointLimit& limit) {
  r.Read("rate", limit.rate, 0.001, 10'000);
  r.Read("burst", limit.burst, 1, 100'000);
  r.Read("concurrency", limit.concurrency, 1, 1'000);
}

void ReadThingSpace(MapReader& top, ThingSpaceConfig& ts) {
  if (!top.Child("thingspace").IsDefined()) return;
  ts.enabled = true;
  MapReader r = top.Map("thingspace");
  ReadContext& ctx = r.Context();
  for (auto [key, url] : {std::pair{"oauth_url", &ts.oauth_url}, {"m2m_url", &ts.m2m_url}}) {
    r.Read(key, *url);
    if (!IsHttpsUrl(*url)) ctx.errors.Add(r.Child(key), r.PathOf(key), "expected an https:// URL");
  }
  while (!ts.m2m_url.empty() && ts.m2m_url.back() == '/') ts.m2m_url.pop_back();
  r.Read("ca_file", ts.ca_file);
  ts.ca_file = ResolvePath(ctx, ts.ca_file);
  if (!ts.ca_file.empty() && access(ts.ca_file.c_str(), R_OK) != 0)
    ctx.errors.Add(r.Child("ca_file"), r.PathOf("ca_file"), "cannot read file " + ts.ca_file);
  r.Read("app_key", ts.app_key, true);
  r.Read("app_secret", ts.app_secret, true);
  r.Read("username", ts.username, true);
  r.Read("password", ts.password, true);
  r.Read("connect_timeout", ts.connect_timeout, milliseconds(100), seconds(120));
  r.Read("request_timeout", ts.request_timeout, milliseconds(100), seconds(600));
  r.Read("token_refresh_margin", ts.token_refresh_margin, seconds(0), minutes(30));
  // More than 2 would risk the 5-failure lock-out (spec 2.2).
  r.Read("max_failed_logins", ts.max_failed_logins, 1, 2);
  r.Read("logout_on_shutdown", ts.logout_on_shutdown);

  MapReader retry = r.Map("retry");
  retry.Read("max_attempts", ts.max_attempts, 1, 20);
  retry.Read("initial", ts.retry_initial, milliseconds(1), minutes(10));
  retry.Read("max", ts.retry_max, milliseconds(1), hours(1));
  if (ts.retry_max < ts.retry_initial)
    ctx.errors.Add(retry.Child("max"), retry.PathOf("max"), "must not be below retry.initial");
  retry.Finish();

  MapReader breaker = r.Map("circuit_breaker");
  breaker.Read("failures", ts.breaker_failures, 1, 1'000);
  breaker.Read("open_for", ts.breaker_open_for, milliseconds(10), hours(1));
  breaker.Finish();

  MapReader defaults = r.Map("default_limit");
  ReadLimit(defaults, ts.default_limit);
  defaults.Finish();

  YAML::Node limits = r.Child("limits");
  if (limits.IsDefined() && !limits.IsNull()) {
    if (!limits.IsSequence()) {
      ctx.errors.Add(limits, r.PathOf("limits"),
                     "expected a list of {path, rate, burst, concurrency}");
    } else {
      for (std::size_t i = 0; i < limits.size(); ++i) {
        std::string path = r.PathOf("limits") + "[" + std::to_string(i) + "]";
        MapReader item(limits[i], path, ctx);
        EndpointLimit limit = ts.default_limit;
        item.Read("path", limit.path, true);
        if (!limit.path.empty() && limit.path.front() != '/')
          ctx.errors.Add(item.Child("path"), path + ".path",
                         "must start with '/' (a path under thingspace.m2m_url)");
        ReadLimit(item, limit);
        item.Finish();
        ts.limits.push_back(std::move(limit));
      }
    }
  }
  r.Finish();
}

void ReadRegistration(MapReader& top, const Config& config, RegistrationConfig& reg) {
  bool present = top.Child("registration").IsDefined();
  MapReader r = top.Map("registration");
  ReadContext& ctx = r.Context();
  r.Read("enabled", reg.enabled);
  r.Read("public_url", reg.public_url);
  while (!reg.public_url.empty() && reg.public_url.back() == '/') reg.public_url.pop_back();
  r.Read("interval", reg.interval, seconds(1), hours(24 * 7));
  r.Read("replace_foreign", reg.replace_foreign);
  r.Read("deregister_on_shutdown", reg.deregister_on_shutdown);
  r.Finish();
  if (!config.thingspace.enabled) {
    if (present && reg.enabled)
      ctx.errors.Add(top.Child("registration"), "registration",
                     "needs the thingspace section (or set registration.enabled: false)");
    reg.enabled = false;
    return;
  }
  if (!reg.enabled) return;
  if (reg.public_url.empty()) {
    ctx.errors.Add(r.Child("public_url"), "registration.public_url",
                   "is required: the https URL ThingSpace reaches this daemon at");
  } else if (auto why = CheckPublicUrl(reg.public_url); !why.empty()) {
    ctx.errors.Add(r.Child("public_url"), "registration.public_url", why);
  }
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

namespace {
LoadResult LoadConfigTextUnguarded(const std::string& text, const std::string& name,
                                   const std::string& base_dir, EnvLookup env);
}  // namespace

// A YAML shape no check foresaw (found by fuzzing) is an error in the file,
// never a crash.
LoadResult LoadConfigText(const std::string& text, const std::string& name,
                          const std::string& base_dir, EnvLookup env) {
  try {
    return LoadConfigTextUnguarded(text, name, base_dir, std::move(env));
  } catch (const std::exception& e) {
    return LoadResult{std::nullopt, {name + ": cannot read the configuration: " + e.what()}, {}};
  }
}

namespace {
LoadResult LoadConfigTextUnguarded(const std::string& text, const std::string& name,
                                   const std::string& base_dir, EnvLookup env) {
  LoadResult result;
  ErrorList errors(name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::ostringstream out;
    out << name << ':' << e.mark.line + 1 << ": " << e.msg;
    result.errors.push_back(out.str());
    return result;
  }
  ReadContext ctx{errors, env ? env : ProcessEnvironment(), base_dir};
  Config config;
  config.source_file = name;
  MapReader top(root, "", ctx);
  top.Read("account", config.account, true);

  MapReader log = top.Map("log");
  log.Read("level", config.log.level);
  if (!IsValidLogLevel(config.log.level))
    errors.Add(log.Child("level"), "log.level",
               "expected one of trace, debug, info, warn, error, critical, off");
  log.Read("file", config.log.file);
  config.log.file = ResolvePath(ctx, config.log.file);
  log.Finish();

  ReadDatabase(top.Map("database"), config.database);
  ReadListener(top.Map("listener"), config.listener);
  ReadServices(top, config.services);

  MapReader inbox = top.Map("inbox");
  inbox.Read("batch_max", config.inbox.batch_max, 1, 10'000);
  inbox.Read("linger", config.inbox.linger, milliseconds(0), seconds(1));
  inbox.Read("writers", config.inbox.writers, 1, 64);
  inbox.Read("join_after", config.inbox.join_after, milliseconds(0), seconds(1));
  inbox.Read("notify_interval", config.inbox.notify_interval, milliseconds(0), seconds(1));
  inbox.Finish();

  MapReader admin = top.Map("admin");
  admin.Read("address", config.admin.address);
  if (!ParseIp(config.admin.address))
    errors.Add(admin.Child("address"), "admin.address", "expected an IP address such as 127.0.0.1");
  admin.Read("port", config.admin.port);
  admin.Read("api_token", config.admin.api_token);
  admin.Finish();

  MapReader processing = top.Map("processing");
  processing.Read("workers", config.processing.workers, 0, 64);
  processing.Read("batch_max", config.processing.batch_max, 1, 10'000);
  processing.Read("poll_interval", config.processing.poll_interval, milliseconds(10), minutes(10));
  processing.Read("linger", config.processing.linger, milliseconds(0), seconds(1));
  processing.Finish();

  MapReader requests = top.Map("requests");
  requests.Read("default_deadline", config.requests.default_deadline, seconds(1), hours(24 * 30));
  requests.Read("reconcile_interval", config.requests.reconcile_interval, milliseconds(100),
                hours(1));
  YAML::Node deadlines = requests.Child("deadlines");
  if (deadlines.IsDefined() && !deadlines.IsNull()) {
    if (!deadlines.IsMap()) {
      errors.Add(deadlines, "requests.deadlines", "expected a mapping of action to duration");
    } else {
      MapReader per(deadlines, "requests.deadlines", ctx);
      for (const auto& item : deadlines) {
        if (!item.first.IsScalar()) continue;  // reported by per.Finish()
        std::string action = item.first.Scalar();
        config::Duration d = config.requests.default_deadline;
        per.Read(action.c_str(), d, seconds(1), hours(24 * 30));
        config.requests.deadlines.emplace_back(action, d);
      }
      per.Finish();
    }
  }
  requests.Finish();

  MapReader rules = top.Map("rules");
  rules.Read("file", config.rules.file);
  config.rules.file = ResolvePath(ctx, config.rules.file);
  rules.Finish();

  MapReader actions = top.Map("actions");
  actions.Read("concurrency", config.actions.concurrency, 1, 1'000);
  actions.Read("poll_interval", config.actions.poll_interval, milliseconds(10), minutes(10));
  actions.Read("lease", config.actions.lease, seconds(1), hours(24));
  actions.Read("max_attempts", config.actions.max_attempts, 1, 100);
  MapReader action_retry = actions.Map("retry");
  action_retry.Read("initial", config.actions.retry_initial, milliseconds(1), hours(1));
  action_retry.Read("max", config.actions.retry_max, milliseconds(1), hours(24));
  action_retry.Finish();
  actions.Finish();

  MapReader spool = top.Map("spool");
  spool.Read("enabled", config.spool.enabled);
  spool.Read("file", config.spool.file);
  config.spool.file = ResolvePath(ctx, config.spool.file);
  spool.Read("max_bytes", config.spool.max_bytes, std::size_t{1024 * 1024}, std::size_t{1} << 50);
  spool.Finish();

  MapReader retention = top.Map("retention");
  retention.Read("months", config.retention.months, 1, 1200);
  retention.Read("check_interval", config.retention.check_interval, seconds(1), hours(24 * 7));
  retention.Finish();

  ReadThingSpace(top, config.thingspace);
  if (config.thingspace.enabled && config.actions.lease < config.thingspace.request_timeout * 2)
    errors.Add(actions.Child("lease"), "actions.lease",
               "must be at least twice thingspace.request_timeout: an action still in flight "
               "must not be taken for abandoned");
  ReadRegistration(top, config, config.registration);

  MapReader shutdown = top.Map("shutdown");
  shutdown.Read("grace_period", config.shutdown_grace, milliseconds(0), seconds(600));
  shutdown.Finish();

  top.Finish();
  if (!root.IsDefined() || root.IsNull()) errors.AddFileLevel("the file is empty");
  result.errors = errors.Messages();
  result.warnings = errors.Warnings();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace

LoadResult LoadConfigFile(const std::string& path, EnvLookup env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return LoadResult{std::nullopt, {path + ": cannot open the file"}, {}};
  std::stringstream text;
  text << in.rdbuf();
  auto slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "." : path.substr(0, slash);
  auto result = LoadConfigText(text.str(), path, base_dir, std::move(env));
  if (auto open = OthersMayRead(path); !open.empty())
    result.warnings.insert(result.warnings.begin(),
                           path + ": " + open + " (it says where the secrets are)");
  return result;
}

std::string DatabaseConfig::Describe() const {
  return "host=" + host + " port=" + std::to_string(port) + " dbname=" + name + " user=" + user;
}

std::string DatabaseConfig::ConnectionString(const std::string& role) const {
  // libpq quoting: single quotes around values, backslash-escaped.
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  std::string s = "host=" + quote(host) + " port=" + std::to_string(port) +
                  " dbname=" + quote(name) + " user=" + quote(user) + " connect_timeout=" +
                  std::to_string(std::max<long long>(1, connect_timeout.count() / 1000)) +
                  " application_name=";
  std::string application = "ts-callbackd";
  if (!role.empty()) application.append("/").append(role);
  s += quote(application);
  if (!password.Empty()) s += " password=" + quote(password.Reveal());
  return s;
}

}  // namespace tscb::config
