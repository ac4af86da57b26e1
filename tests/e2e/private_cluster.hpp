#pragma once
// A PostgreSQL cluster of a test's own (scripts/pg.sh), for tests that stop
// and start the server under the daemon.
#include <pqxx/pqxx>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

namespace tscb::testing {

// A PostgreSQL cluster of the test's own (scripts/pg.sh), so that the test
// can stop and start the server itself. Removed by the destructor.
class PrivateCluster {
 public:
  explicit PrivateCluster(std::string dir) : dir_(std::move(dir)) {
    auto out = Shell(". '" + std::string(TSCB_SOURCE_DIR) + "/scripts/pg.sh' && pg_start '" + dir_ +
                     "' >/dev/null && echo $TSCB_PG_PORT");
    port_ = std::stoi(out);
  }
  ~PrivateCluster() {
    Shell(". '" + std::string(TSCB_SOURCE_DIR) + "/scripts/pg.sh' && TSCB_PG_DIR='" + dir_ +
          "' pg_stop");
  }
  int Port() const { return port_; }
  void Stop() { Shell(Ctl() + " -m fast -w stop"); }
  void Start() { Shell(Ctl() + " -l '" + dir_ + "/server.log' -w start"); }
  long long Scalar(const std::string& sql) const {
    pqxx::connection conn("host=127.0.0.1 port=" + std::to_string(port_) +
                          " user=postgres dbname=postgres");
    pqxx::nontransaction tx(conn);
    return tx.exec1(sql)[0].as<long long>();
  }

 private:
  std::string Ctl() const {
    return ". '" + std::string(TSCB_SOURCE_DIR) +
           "/scripts/pg.sh'\nrunuser -u postgres -- \"$(pg_bin)/pg_ctl\" -D '" + dir_ + "/data'";
  }
  // Runs `command` with bash from a script file: no quoting through a
  // second shell, and no variable from the test's own environment leaks in.
  std::string Shell(const std::string& command) const {
    std::string script = dir_ + ".sh";
    std::ofstream(script) << "set -e\n" << command << "\n";
    int rc = -1;
    std::string out = RunShell("env -u TSCB_PG_PORT -u TSCB_PG_DIR bash '" + script + "'", &rc);
    if (rc != 0) throw std::runtime_error("failed: " + command + "\n" + out);
    return out;
  }
  std::string dir_;
  int port_ = 0;
};

}  // namespace tscb::testing
