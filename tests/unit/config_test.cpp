#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "config/loader.hpp"
#include "config/rules_file.hpp"

namespace tscb::config {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// A minimal valid config; tests append or replace parts of it.
constexpr const char* kBase = R"(account: "0000123456-00001"
listener:
  tls: { enabled: false }
  allow_from: [127.0.0.1]
services:
  CarrierService: { username: u, password: { env: PW } }
)";

LoadResult Load(const std::string& text, std::map<std::string, std::string> env = {{"PW", "p"}}) {
  return LoadConfigText(text, "cfg.yaml", "", FakeEnv(std::move(env)));
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

// Expects exactly one error, and that it contains `fragment`.
void ExpectOneError(const LoadResult& r, const std::string& fragment) {
  ASSERT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_NE(r.errors[0].find(fragment), std::string::npos) << r.errors[0];
}

TEST(ConfigTest, ExampleYamlLoadsWithEveryKeyAndItsSecrets) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("tscb-config-test-" + std::to_string(getpid()));
  fs::create_directories(dir / "tls");
  fs::copy_file(fs::path(TSCB_SOURCE_DIR) / "config/example.yaml", dir / "config.yaml",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "tls/cert.pem") << "x";
  std::ofstream(dir / "tls/key.pem") << "x";
  fs::create_directories(dir / "secrets");
  std::ofstream(dir / "secrets/uws-password") << "uws-pw\n";
  auto r = LoadConfigFile((dir / "config.yaml").string(),
                          FakeEnv({{"TSCB_DB_PASSWORD", "db"},
                                   {"TSCB_TS_APP_KEY", "key"},
                                   {"TSCB_ADMIN_TOKEN", "admin-token"},
                                   {"TSCB_TS_APP_SECRET", "secret"},
                                   {"TSCB_CARRIER_PASSWORD", "carrier-secret"},
                                   {"TSCB_NIDD_PASSWORD", "nidd-secret"}}));
  fs::remove_all(dir);
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0]);
  const Config& c = *r.config;
  EXPECT_EQ(c.account, "0000123456-00001");
  EXPECT_EQ(c.listener.allow_from.size(), 8u);
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[0].name, "CarrierService");
  EXPECT_EQ(c.services[0].password.Reveal(), "carrier-secret");
  EXPECT_EQ(c.database.password.Reveal(), "db");
  EXPECT_EQ(c.listener.limits.max_body_bytes, 65536u);
  EXPECT_EQ(c.inbox.linger, std::chrono::milliseconds(0));
  EXPECT_EQ(c.inbox.writers, 2);
  EXPECT_EQ(c.inbox.join_after, std::chrono::milliseconds(1));
  EXPECT_EQ(c.inbox.notify_interval, std::chrono::milliseconds(5));
  EXPECT_EQ(c.listener.tls.certificate_file, (dir / "tls/cert.pem").string());
  EXPECT_EQ(c.rules.file, (dir / "rules.example.yaml").string());
  EXPECT_EQ(c.actions.concurrency, 16);
  EXPECT_EQ(c.actions.lease, std::chrono::minutes(5));
  EXPECT_EQ(c.actions.max_attempts, 5);
  EXPECT_EQ(c.actions.retry_initial, std::chrono::seconds(5));
  EXPECT_EQ(c.actions.retry_max, std::chrono::minutes(10));
  EXPECT_TRUE(c.thingspace.enabled);
  EXPECT_EQ(c.thingspace.password.Reveal(), "uws-pw");
  EXPECT_EQ(c.thingspace.app_key.Reveal(), "key");
  ASSERT_EQ(c.thingspace.limits.size(), 1u);
  EXPECT_EQ(c.thingspace.limits[0].concurrency, 1);
  EXPECT_EQ(c.thingspace.limits[0].rate, 1.0);
  EXPECT_TRUE(c.registration.enabled);
  EXPECT_EQ(c.registration.public_url, "https://cb.example.com:443/callbacks");
  EXPECT_EQ(c.registration.interval, std::chrono::minutes(15));
  EXPECT_EQ(c.admin.api_token.Reveal(), "admin-token");
  EXPECT_EQ(c.processing.batch_max, 500u);
  EXPECT_EQ(c.processing.linger, std::chrono::milliseconds(5));
  EXPECT_EQ(c.requests.DeadlineFor("activate"), std::chrono::minutes(30));
  EXPECT_EQ(c.requests.DeadlineFor("suspend"), std::chrono::minutes(20));
  EXPECT_EQ(c.retention.months, 13);
}

constexpr const char* kThingSpace =
    "thingspace:\n"
    "  m2m_url: https://127.0.0.1:9/api/m2m/v1/\n"
    "  app_key: { env: K }\n"
    "  app_secret: { env: S }\n"
    "  username: u\n"
    "  password: { env: P }\n";

TEST(ConfigTest, ThingSpaceSectionEnablesClientAndRegistration) {
  auto r = Load(std::string(kBase) + kThingSpace +
                    "registration: { public_url: 'https://gw.example.com:28200/cb/' }\n",
                {{"PW", "x"}, {"K", "k"}, {"S", "s"}, {"P", "p"}});
  ASSERT_TRUE(r.config) << r.errors[0];
  EXPECT_EQ(r.config->thingspace.m2m_url, "https://127.0.0.1:9/api/m2m/v1");
  EXPECT_EQ(r.config->registration.public_url, "https://gw.example.com:28200/cb");
  EXPECT_EQ(r.config->thingspace.max_failed_logins, 2);
}

TEST(ConfigTest, NoThingSpaceSectionMeansReceiveOnly) {
  auto r = Load(kBase);
  ASSERT_TRUE(r.config) << r.errors[0];
  EXPECT_FALSE(r.config->thingspace.enabled);
  EXPECT_FALSE(r.config->registration.enabled);
}

TEST(ConfigTest, RegistrationRulesAreChecked) {
  std::map<std::string, std::string> env{{"PW", "x"}, {"K", "k"}, {"S", "s"}, {"P", "p"}};
  ExpectOneError(Load(std::string(kBase) + kThingSpace, env),
                 "registration.public_url: is required");
  ExpectOneError(Load(std::string(kBase) + kThingSpace +
                          "registration: { public_url: 'https://gw.example.com:8443' }\n",
                      env),
                 "registration.public_url: uses port 8443");
  ExpectOneError(Load(std::string(kBase) + "registration: { public_url: 'https://a.example' }\n"),
                 "registration: needs the thingspace section");
  ExpectOneError(Load(std::string(kBase) + kThingSpace + "  max_failed_logins: 3\n" +
                          "registration: { enabled: false }\n",
                      env),
                 "thingspace.max_failed_logins: must be between 1 and 2");
  ExpectOneError(Load(std::string(kBase) + kThingSpace + "  limits: [{ rate: 2 }]\n" +
                          "registration: { enabled: false }\n",
                      env),
                 "thingspace.limits[0].path: is required");
  ExpectOneError(Load(std::string(kBase) + Replace(kThingSpace, "{ env: K }", "literal") +
                          "registration: { enabled: false }\n",
                      env),
                 "thingspace.app_key");
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  auto r = Load(kBase);
  ASSERT_TRUE(r.config) << r.errors[0];
  EXPECT_EQ(r.config->listener.port, 9443);
  EXPECT_EQ(r.config->listener.base_path, "/callbacks");
  EXPECT_EQ(r.config->admin.address, "127.0.0.1");
  EXPECT_EQ(r.config->shutdown_grace, std::chrono::seconds(10));
}

TEST(ConfigTest, YamlSyntaxErrorNamesFileAndLine) {
  auto r = Load("account: [unclosed\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].rfind("cfg.yaml:", 0), 0u) << r.errors[0];
}

TEST(ConfigTest, EmptyFileIsRejected) { EXPECT_FALSE(Load("").config); }

TEST(ConfigTest, MissingFileIsReported) {
  auto r = LoadConfigFile("/nonexistent/ts.yaml");
  ExpectOneError(r, "/nonexistent/ts.yaml: cannot open the file");
}

TEST(ConfigTest, UnknownKeyIsReportedWithPathAndLine) {
  auto r = Load(Replace(kBase, "  tls:", "  prot: 1\n  tls:"));
  ExpectOneError(r, "cfg.yaml:3: listener.prot: unknown key");
}

TEST(ConfigTest, MissingAccountIsRequired) {
  ExpectOneError(Load(Replace(kBase, "account: \"0000123456-00001\"\n", "")),
                 "account: is required");
}

TEST(ConfigTest, PortMustBeAnInteger) {
  ExpectOneError(Load(std::string(kBase) + "admin: { port: http }\n"),
                 "admin.port: expected an integer");
}

TEST(ConfigTest, PortMustBeInRange) {
  ExpectOneError(Load(std::string(kBase) + "admin: { port: 70000 }\n"),
                 "admin.port: must be between 0 and 65535");
}

TEST(ConfigTest, DurationNeedsAUnit) {
  ExpectOneError(Load(std::string(kBase) + "shutdown: { grace_period: 10 }\n"),
                 "shutdown.grace_period: expected a duration");
}

TEST(ConfigTest, InboxJoinAfterIsRead) {
  auto r = Load(std::string(kBase) + "inbox: { join_after: 5ms }\n");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.config->inbox.join_after, std::chrono::milliseconds(5));
}

TEST(ConfigTest, InboxNotifyIntervalIsRead) {
  auto r = Load(std::string(kBase) + "inbox: { notify_interval: 0ms }\n");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.config->inbox.notify_interval, std::chrono::milliseconds(0));
  ExpectOneError(Load(std::string(kBase) + "inbox: { notify_interval: 2s }\n"),
                 "inbox.notify_interval: must be between 0ms and 1000ms");
}

TEST(ConfigTest, DurationOutOfRangeIsRejected) {
  ExpectOneError(Load(std::string(kBase) + "inbox: { linger: 5s }\n"),
                 "inbox.linger: must be between 0ms and 1000ms");
  ExpectOneError(Load(std::string(kBase) + "inbox: { join_after: 2s }\n"),
                 "inbox.join_after: must be between 0ms and 1000ms");
  ExpectOneError(Load(std::string(kBase) + "processing: { linger: 2s }\n"),
                 "processing.linger: must be between 0ms and 1000ms");
}

TEST(ConfigTest, BooleanMustBeTrueOrFalse) {
  ExpectOneError(Load(std::string(kBase) + "database: { migrate_on_start: maybe }\n"),
                 "database.migrate_on_start: expected true or false, got 'maybe'");
}

TEST(ConfigTest, LiteralSecretIsRefused) {
  ExpectOneError(Load(Replace(kBase, "{ env: PW }", "hunter2")),
                 "services.CarrierService.password: secrets are not written in the config file");
}

TEST(ConfigTest, SecretFromUnsetEnvironmentVariableIsReported) {
  ExpectOneError(Load(kBase, {}), "environment variable PW is not set");
}

TEST(ConfigTest, SecretFileMustBeReadable) {
  ExpectOneError(Load(Replace(kBase, "{ env: PW }", "{ file: /nonexistent/pw }")),
                 "cannot read secret file /nonexistent/pw");
}

// Found by fuzzing: a YAML complex key ("? ...") made the loader throw.
TEST(ConfigTest, AComplexKeyIsAnErrorNotACrash) {
  auto r = Load(std::string(kBase) + "inbox:\n  ? [a, b]\n  : 1\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.errors.at(0).find("inbox: a key must be a plain name"), std::string::npos)
      << r.errors.at(0);
  auto services = Load(Replace(kBase, "  CarrierService:", "  ? [x]\n  :"));
  ASSERT_FALSE(services.config);
  std::vector<std::string> errors;
  tscb::config::ParseRulesText("rules:\n  - ? {a: 1}\n    : x\n", "r.yaml", errors);
  EXPECT_FALSE(errors.empty());
}

TEST(ConfigTest, SecretNeedsExactlyOneSource) {
  ExpectOneError(Load(Replace(kBase, "{ env: PW }", "{ env: PW, file: x }")),
                 "give exactly one of env, file or credential");
}

// systemd LoadCredential=: the secret is the file NAME in $CREDENTIALS_DIRECTORY.
TEST(ConfigTest, SecretFromASystemdCredential) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("tscb-creds-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "carrier") << "from-credential\n";
  auto text = Replace(kBase, "{ env: PW }", "{ credential: carrier }");
  auto r = Load(text, {{"CREDENTIALS_DIRECTORY", dir.string()}});
  ASSERT_TRUE(r.config) << r.errors.front();
  EXPECT_EQ(r.config->services[0].password.Reveal(), "from-credential");
  ExpectOneError(Load(text, {}), "CREDENTIALS_DIRECTORY is not set");
  ExpectOneError(Load(Replace(kBase, "{ env: PW }", "{ credential: ../x }"),
                      {{"CREDENTIALS_DIRECTORY", dir.string()}}),
                 "a credential name has no '/'");
  fs::remove_all(dir);
}

TEST(ConfigTest, SecretFileOthersCanReadIsWarnedAbout) {
  namespace fs = std::filesystem;
  auto file = fs::temp_directory_path() / ("tscb-open-secret-" + std::to_string(getpid()));
  std::ofstream(file) << "pw\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  auto text = Replace(kBase, "{ env: PW }", "{ file: " + file.string() + " }");
  auto open = Load(text);
  ASSERT_TRUE(open.config);
  ASSERT_EQ(open.warnings.size(), 1u);
  EXPECT_NE(open.warnings[0].find("services.CarrierService.password: other users can read"),
            std::string::npos)
      << open.warnings[0];
  EXPECT_NE(open.warnings[0].find("(mode 0604)"), std::string::npos) << open.warnings[0];
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(Load(text).warnings.empty());
  fs::remove(file);
}

TEST(ConfigTest, SecretFileIsReadWithoutTrailingNewline) {
  namespace fs = std::filesystem;
  auto file = fs::temp_directory_path() / ("tscb-secret-" + std::to_string(getpid()));
  std::ofstream(file) << "from-file\n";
  auto r = Load(Replace(kBase, "{ env: PW }", "{ file: " + file.string() + " }"));
  fs::remove(file);
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->services[0].password.Reveal(), "from-file");
}

TEST(ConfigTest, UnknownServiceNameIsRejected) {
  ExpectOneError(Load(Replace(kBase, "CarrierService:", "DeviceSMSMessage:")),
                 "services.DeviceSMSMessage: unknown ThingSpace callback service");
}

TEST(ConfigTest, AtLeastOneServiceIsRequired) {
  auto text = std::string(kBase);
  text = text.substr(0, text.find("services:"));
  ExpectOneError(Load(text), "services: is required");
}

TEST(ConfigTest, ServiceUsernameIsRequired) {
  ExpectOneError(Load(Replace(kBase, "username: u, ", "")),
                 "services.CarrierService.username: is required");
}

TEST(ConfigTest, CredentialsLongerThanThingSpaceAllowsAreRejected) {
  ExpectOneError(Load(Replace(kBase, "username: u", "username: " + std::string(41, 'u'))),
                 "services.CarrierService.username: ThingSpace accepts at most 40 characters");
}

TEST(ConfigTest, BadCidrIsReportedWithItsIndex) {
  ExpectOneError(Load(Replace(kBase, "[127.0.0.1]", "[127.0.0.1, 10.0.0.0/33]")),
                 "listener.allow_from[1]: expected an IP address or CIDR network");
}

TEST(ConfigTest, AllowListIsRequired) {
  ExpectOneError(Load(Replace(kBase, "  allow_from: [127.0.0.1]\n", "")),
                 "listener.allow_from: is required");
}

TEST(ConfigTest, TlsNeedsCertificateAndKey) {
  auto r = Load(Replace(kBase, "tls: { enabled: false }", "tls: { enabled: true }"));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].find("listener.tls.certificate: is required when tls.enabled"),
            std::string::npos);
  EXPECT_NE(r.errors[1].find("listener.tls.private_key: is required"), std::string::npos);
}

TEST(ConfigTest, TlsFilesMustBeReadable) {
  auto r =
      Load(Replace(kBase, "tls: { enabled: false }",
                   "tls: { certificate: /nonexistent/c.pem, private_key: /nonexistent/k.pem }"));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].find("cannot read file /nonexistent/c.pem"), std::string::npos);
}

TEST(ConfigTest, UnknownLogLevelIsRejected) {
  ExpectOneError(Load(std::string(kBase) + "log: { level: loud }\n"), "log.level: expected one of");
}

TEST(ConfigTest, BasePathMustStartWithSlash) {
  ExpectOneError(Load(Replace(kBase, "  tls:", "  base_path: callbacks/\n  tls:")),
                 "listener.base_path: must start with '/'");
}

TEST(ConfigTest, ListenAddressMustBeAnIp) {
  ExpectOneError(Load(Replace(kBase, "  tls:", "  address: example.com\n  tls:")),
                 "listener.address: expected an IP address");
}

TEST(ConfigTest, SectionThatIsNotAMappingIsReported) {
  ExpectOneError(Load(std::string(kBase) + "inbox: 5\n"), "inbox: expected a mapping");
}

TEST(ConfigTest, EveryErrorIsReportedInOneRun) {
  std::string text = Replace(kBase, "account: \"0000123456-00001\"\n", "");
  text += "admin: { port: x }\nbogus: 1\n";
  auto r = Load(text, {});
  EXPECT_EQ(r.errors.size(), 4u);  // account, PW unset, admin.port, bogus
}

TEST(ConfigTest, ConnectionStringQuotesValues) {
  DatabaseConfig db;
  db.name = "it's";
  db.password = Secret("p w");
  auto s = db.ConnectionString();
  EXPECT_NE(s.find("dbname='it\\'s'"), std::string::npos) << s;
  EXPECT_NE(s.find("password='p w'"), std::string::npos);
  EXPECT_EQ(db.Describe().find("password"), std::string::npos);
}

TEST(ConfigTest, ConnectionStringNamesTheRoleInApplicationName) {
  DatabaseConfig db;
  EXPECT_NE(db.ConnectionString().find("application_name='ts-callbackd'"), std::string::npos);
  EXPECT_NE(db.ConnectionString("inbox").find("application_name='ts-callbackd/inbox'"),
            std::string::npos);
}

TEST(ConfigTest, SecretPrintsAsStars) {
  std::ostringstream out;
  out << Secret("hunter2");
  EXPECT_EQ(out.str(), "***");
}

}  // namespace
}  // namespace tscb::config
