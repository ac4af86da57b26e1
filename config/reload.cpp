#include "config/reload.hpp"

namespace tscb::config {
namespace {

bool SameServiceNames(const std::vector<ServiceConfig>& a, const std::vector<ServiceConfig>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name) return false;
  return true;
}

}  // namespace

ReloadPlan PlanReload(const Config& running, const Config& next) {
  ReloadPlan plan;
  plan.log_level = running.log != next.log;
  plan.access = running.listener.allow_from != next.listener.allow_from ||
                running.listener.trusted_proxies != next.listener.trusted_proxies;
  plan.rules_file = running.rules.file != next.rules.file;
  plan.tls_files = running.listener.tls.certificate_file != next.listener.tls.certificate_file ||
                   running.listener.tls.private_key_file != next.listener.tls.private_key_file;

  auto& restart = plan.needs_restart;
  auto check = [&restart](bool same, const char* path) {
    if (!same) restart.emplace_back(path);
  };
  // Services are routes, metrics labels and registrations: a new or renamed
  // one needs a restart; only their credentials are reloaded.
  if (SameServiceNames(running.services, next.services))
    plan.credentials = running.services != next.services;
  else
    restart.emplace_back("services");
  const ListenerConfig& a = running.listener;
  const ListenerConfig& b = next.listener;
  check(a.address == b.address, "listener.address");
  check(a.port == b.port, "listener.port");
  check(a.base_path == b.base_path, "listener.base_path");
  check(a.threads == b.threads, "listener.threads");
  check(a.tls.enabled == b.tls.enabled, "listener.tls.enabled");
  check(a.limits == b.limits, "listener.limits");
  check(running.account == next.account, "account");
  check(running.database == next.database, "database");
  check(running.inbox == next.inbox, "inbox");
  check(running.admin == next.admin, "admin");
  check(running.thingspace == next.thingspace, "thingspace");
  check(running.registration == next.registration, "registration");
  check(running.processing == next.processing, "processing");
  check(running.requests == next.requests, "requests");
  check(running.retention == next.retention, "retention");
  check(running.actions == next.actions, "actions");
  check(running.spool == next.spool, "spool");
  check(running.shutdown_grace == next.shutdown_grace, "shutdown_grace");
  return plan;
}

Config ApplyReloadable(const Config& running, const Config& next) {
  Config out = running;
  out.log = next.log;
  out.listener.allow_from = next.listener.allow_from;
  out.listener.trusted_proxies = next.listener.trusted_proxies;
  out.listener.tls.certificate_file = next.listener.tls.certificate_file;
  out.listener.tls.private_key_file = next.listener.tls.private_key_file;
  out.rules.file = next.rules.file;
  if (SameServiceNames(running.services, next.services)) out.services = next.services;
  return out;
}

}  // namespace tscb::config
