#include "config/loader.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/services.hpp"

namespace tscb::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
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
    std::string name = item.first.as<std::string>();
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

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

LoadResult LoadConfigText(const std::string& text, const std::string& name,
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
  log.Finish();

  ReadDatabase(top.Map("database"), config.database);
  ReadListener(top.Map("listener"), config.listener);
  ReadServices(top, config.services);

  MapReader inbox = top.Map("inbox");
  inbox.Read("batch_max", config.inbox.batch_max, 1, 10'000);
  inbox.Read("linger", config.inbox.linger, milliseconds(0), seconds(1));
  inbox.Read("writers", config.inbox.writers, 1, 64);
  inbox.Finish();

  MapReader admin = top.Map("admin");
  admin.Read("address", config.admin.address);
  if (!ParseIp(config.admin.address))
    errors.Add(admin.Child("address"), "admin.address", "expected an IP address such as 127.0.0.1");
  admin.Read("port", config.admin.port);
  admin.Finish();

  MapReader shutdown = top.Map("shutdown");
  shutdown.Read("grace_period", config.shutdown_grace, milliseconds(0), seconds(600));
  shutdown.Finish();

  top.Finish();
  if (!root.IsDefined() || root.IsNull()) errors.AddFileLevel("the file is empty");
  result.errors = errors.Messages();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult LoadConfigFile(const std::string& path, EnvLookup env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return LoadResult{std::nullopt, {path + ": cannot open the file"}};
  std::stringstream text;
  text << in.rdbuf();
  auto slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return LoadConfigText(text.str(), path, base_dir, std::move(env));
}

std::string DatabaseConfig::Describe() const {
  return "host=" + host + " port=" + std::to_string(port) + " dbname=" + name + " user=" + user;
}

std::string DatabaseConfig::ConnectionString() const {
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
                  " application_name='ts-callbackd'";
  if (!password.Empty()) s += " password=" + quote(password.Reveal());
  return s;
}

}  // namespace tscb::config
