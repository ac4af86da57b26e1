#include "tests/support/daemon_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tscb::testing {

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "tscb-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string file = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(file).parent_path());
  std::ofstream(file, std::ios::binary) << content;
  // Configs and secret files as an operator keeps them: owner only (the
  // daemon warns about files others can read).
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return file;
}

void MakeTestCertificates(const std::string& dir, const std::string& ocsp_url) {
  std::string cmd = std::string(". '") + TSCB_SOURCE_DIR + "/scripts/certs.sh' && make_certs '" +
                    dir + "' '" + ocsp_url + "'";
  if (std::system(("bash -c \"" + cmd + "\"").c_str()) != 0)
    throw std::runtime_error("could not make test certificates in " + dir);
}

std::string RunShell(const std::string& command, int* rc) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (pipe && fgets(buf, sizeof buf, pipe)) out += buf;
  int status = pipe ? pclose(pipe) : -1;
  if (rc) *rc = status;
  return out;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) close(fd);
  if (port == 0) throw std::runtime_error("no free loopback port");
  return port;
}

namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& output_file,
            const std::map<std::string, std::string>& env,
            const std::string& program = TSCB_BINARY) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int fd = open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    int null_in = open("/dev/null", O_RDONLY);
    dup2(null_in, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string binary = program;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string ReadFile(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

RunResult RunBinary(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
  TempDir dir;
  std::string out = dir.Path() + "/out.txt";
  pid_t pid = Spawn(args, out, env);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out)};
}

DaemonProcess::DaemonProcess(const std::vector<std::string>& args, const std::string& log_file,
                             const std::map<std::string, std::string>& env,
                             const std::string& binary)
    : log_file_(log_file) {
  pid_ = Spawn(args, log_file, env, binary);
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool DaemonProcess::WaitUntilListening(std::chrono::milliseconds timeout) {
  static const std::regex callback_re("callback listener bound on [^ \n]*:([0-9]+)");
  static const std::regex admin_re("admin listener bound on [^ \n]*:([0-9]+)");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = Log();
    std::smatch cm, am;
    if (std::regex_search(log, cm, callback_re) && std::regex_search(log, am, admin_re) &&
        log.find(" ready") != std::string::npos) {
      callback_port_ = std::stoi(cm[1]);
      admin_port_ = std::stoi(am[1]);
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::optional<int> DaemonProcess::WaitForPort(const std::string& pattern,
                                              std::chrono::milliseconds timeout) {
  const std::regex re(pattern);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = Log();
    std::smatch m;
    if (std::regex_search(log, m, re)) return std::stoi(m[1]);
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

void DaemonProcess::Signal(int signal) const {
  if (pid_ > 0 && !reaped_) kill(pid_, signal);
}

std::optional<int> DaemonProcess::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

std::string DaemonProcess::Log() const { return ReadFile(log_file_); }

}  // namespace tscb::testing
