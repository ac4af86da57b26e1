#pragma once
// The real ts-callbackd binary as a child process, for e2e tests. stderr
// goes to a log file the test can read; the listeners' ports (configured as
// 0) are read from the start-up log lines. The destructor kills the process
// by PID if it is still running. Also: a temporary folder and test
// certificates made with scripts/certs.sh.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tscb::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& Path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Makes ca.pem, cert.pem and key.pem in `dir` (once per call). With
// `ocsp_url`, the certificate names that OCSP responder, cert.pem carries
// the CA too, and index.txt is its status for `openssl ocsp`.
void MakeTestCertificates(const std::string& dir, const std::string& ocsp_url = "");

// Runs `command` with /bin/sh; its stdout and stderr together. `rc`, when
// given, gets pclose's status (0: exited 0).
std::string RunShell(const std::string& command, int* rc = nullptr);

// A free TCP port on 127.0.0.1 at the time of the call.
int FreeLoopbackPort();

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs the binary with `args` to completion (for check-config, migrate).
RunResult RunBinary(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {});

class DaemonProcess {
 public:
  DaemonProcess(const std::vector<std::string>& args, const std::string& log_file,
                const std::map<std::string, std::string>& env = {},
                const std::string& binary = TSCB_BINARY);
  ~DaemonProcess();

  // Waits for both "bound on" log lines; false on timeout or early exit.
  bool WaitUntilListening(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Waits for a log line matching `pattern` (one capture group: a port).
  std::optional<int> WaitForPort(const std::string& pattern,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(15));
  int CallbackPort() const { return callback_port_; }
  int AdminPort() const { return admin_port_; }
  pid_t Pid() const { return pid_; }

  void Signal(int signal) const;
  // Waits for exit; returns the exit code, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> exit_code_;  // once reaped by Wait()
  std::string log_file_;
  int callback_port_ = 0;
  int admin_port_ = 0;
};

}  // namespace tscb::testing
