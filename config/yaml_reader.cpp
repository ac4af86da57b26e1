#include "config/yaml_reader.hpp"

#include <sys/stat.h>

#include <cstdio>

#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

namespace tscb::config {

void ErrorList::Add(const YAML::Node& at, const std::string& path, const std::string& message) {
  std::ostringstream out;
  out << file_;
  if (at.IsDefined() && at.Mark().line >= 0) out << ':' << at.Mark().line + 1;
  out << ": " << path << ": " << message;
  messages_.push_back(out.str());
}

void ErrorList::AddFileLevel(const std::string& message) {
  messages_.push_back(file_ + ": " + message);
}

void ErrorList::Warn(const YAML::Node& at, const std::string& path, const std::string& message) {
  std::ostringstream out;
  out << file_;
  if (at.IsDefined() && at.Mark().line >= 0) out << ':' << at.Mark().line + 1;
  out << ": " << path << ": " << message;
  warnings_.push_back(out.str());
}

std::string OthersMayRead(const std::string& file) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0 || (st.st_mode & (S_IROTH | S_IWOTH)) == 0) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return std::string("other users can ") + ((st.st_mode & S_IWOTH) ? "write" : "read") + " " +
         file + " (mode " + mode + "); chmod o-rwx it";
}

std::optional<Duration> ParseDuration(const std::string& text) {
  std::int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [rest, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || rest == begin || value < 0) return std::nullopt;
  std::string_view unit(rest, end - rest);
  if (unit == "ms") return Duration(value);
  if (unit == "s") return Duration(value * 1000);
  if (unit == "m") return Duration(value * 60'000);
  if (unit == "h") return Duration(value * 3'600'000);
  return std::nullopt;
}

MapReader::MapReader(YAML::Node node, std::string path, ReadContext& ctx)
    : node_(std::move(node)), path_(std::move(path)), ctx_(ctx) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    ctx_.errors.Add(node_, path_.empty() ? "(top level)" : path_, "expected a mapping");
    valid_ = false;
  }
}

std::string MapReader::PathOf(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void MapReader::Error(const YAML::Node& at, const std::string& key, const std::string& message) {
  ctx_.errors.Add(at.IsDefined() ? at : node_, PathOf(key), message);
}

YAML::Node MapReader::Lookup(const char* key) {
  seen_.insert(key);
  if (!valid_ || !node_.IsDefined() || node_.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node child = node_[key];
  if (child.IsDefined() && child.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  return child;
}

void MapReader::Read(const char* key, std::string& out, bool required) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) {
    if (required) Error(n, key, "is required");
    return;
  }
  if (!n.IsScalar()) return Error(n, key, "expected a string");
  out = n.Scalar();
  if (required && out.empty()) Error(n, key, "must not be empty");
}

void MapReader::Read(const char* key, bool& out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) return Error(n, key, "expected true or false");
  const std::string& s = n.Scalar();
  if (s == "true")
    out = true;
  else if (s == "false")
    out = false;
  else
    Error(n, key, "expected true or false, got '" + s + "'");
}

void MapReader::Read(const char* key, int& out, int min, int max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  long long value = 0;
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size())
    return Error(n, key, "expected an integer");
  if (value < min || value > max)
    return Error(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  out = static_cast<int>(value);
}

void MapReader::Read(const char* key, std::uint16_t& out) {
  int value = out;
  Read(key, value, 0, 65535);
  out = static_cast<std::uint16_t>(value);
}

void MapReader::Read(const char* key, std::size_t& out, std::size_t min, std::size_t max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  unsigned long long value = 0;
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size())
    return Error(n, key, "expected a whole number");
  if (value < min || value > max)
    return Error(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  out = static_cast<std::size_t>(value);
}

void MapReader::Read(const char* key, double& out, double min, double max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  double value = 0;
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size())
    return Error(n, key, "expected a number");
  if (value < min || value > max) {
    std::ostringstream range;
    range << "must be between " << min << " and " << max;
    return Error(n, key, range.str());
  }
  out = value;
}

void MapReader::Read(const char* key, Duration& out, Duration min, Duration max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  auto value = n.IsScalar() ? ParseDuration(n.Scalar()) : std::nullopt;
  if (!value) return Error(n, key, "expected a duration such as 500ms, 10s, 5m or 1h");
  if (*value < min || *value > max)
    return Error(n, key,
                 "must be between " + std::to_string(min.count()) + "ms and " +
                     std::to_string(max.count()) + "ms");
  out = *value;
}

void MapReader::Read(const char* key, Secret& out, bool required) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) {
    if (required) Error(n, key, "is required (as {env: NAME}, {file: PATH} or {credential: NAME})");
    return;
  }
  if (!n.IsMap()) {
    return Error(n, key,
                 "secrets are not written in the config file; use {env: NAME}, {file: PATH} or "
                 "{credential: NAME}");
  }
  MapReader source(n, PathOf(key), ctx_);
  std::string env_name, file_name, credential;
  source.Read("env", env_name);
  source.Read("file", file_name);
  source.Read("credential", credential);
  source.Finish();
  if (int{!env_name.empty()} + int{!file_name.empty()} + int{!credential.empty()} != 1)
    return Error(n, key, "give exactly one of env, file or credential");
  // systemd's LoadCredential=NAME:PATH puts the secret in
  // $CREDENTIALS_DIRECTORY/NAME, readable by this service only.
  if (!credential.empty()) {
    auto dir = ctx_.env ? ctx_.env("CREDENTIALS_DIRECTORY") : std::nullopt;
    if (!dir || dir->empty())
      return Error(n, key,
                   "credential " + credential +
                       ": CREDENTIALS_DIRECTORY is not set (only under systemd with "
                       "LoadCredential=)");
    if (credential.find('/') != std::string::npos)
      return Error(n, key, "a credential name has no '/'");
    file_name = *dir + "/" + credential;
  }
  if (!env_name.empty()) {
    auto value = ctx_.env ? ctx_.env(env_name) : std::nullopt;
    if (!value) return Error(n, key, "environment variable " + env_name + " is not set");
    out = Secret(*value);
    return;
  }
  std::string path = file_name;
  if (path.front() != '/' && !ctx_.base_dir.empty()) path = ctx_.base_dir + "/" + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(n, key, "cannot read secret file " + path);
  if (auto open = OthersMayRead(path); !open.empty()) ctx_.errors.Warn(n, PathOf(key), open);
  std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  out = Secret(std::move(value));
}

void MapReader::Read(const char* key, std::vector<Cidr>& out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsSequence()) return Error(n, key, "expected a list of addresses or CIDR networks");
  std::vector<Cidr> parsed;
  for (std::size_t i = 0; i < n.size(); ++i) {
    std::string item_path = PathOf(key) + "[" + std::to_string(i) + "]";
    auto cidr = n[i].IsScalar() ? Cidr::Parse(n[i].Scalar()) : std::nullopt;
    if (!cidr) {
      ctx_.errors.Add(n[i], item_path, "expected an IP address or CIDR network such as 10.0.0.0/8");
      continue;
    }
    parsed.push_back(std::move(*cidr));
  }
  out = std::move(parsed);
}

MapReader MapReader::Map(const char* key) { return MapReader(Lookup(key), PathOf(key), ctx_); }

YAML::Node MapReader::Child(const char* key) { return Lookup(key); }

void MapReader::Finish() {
  if (!valid_ || !node_.IsDefined() || !node_.IsMap()) return;
  for (const auto& item : node_) {
    if (!item.first.IsScalar()) {  // "? [a, b]: x" is YAML, but not a key we know
      ctx_.errors.Add(item.first, path_.empty() ? "(key)" : path_, "a key must be a plain name");
      continue;
    }
    std::string key = item.first.Scalar();
    if (!seen_.count(key)) ctx_.errors.Add(item.first, PathOf(key), "unknown key");
  }
}

}  // namespace tscb::config
