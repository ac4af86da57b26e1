#pragma once
// A fresh PostgreSQL database per test, in the throwaway cluster that
// scripts/test.sh starts (TSCB_TEST_PG_HOST / _PORT / _USER). Dropped, with
// its connections, when the object goes. Fails the test loudly when the
// cluster is not configured: a pg test never silently skips.
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace tscb::testing {

class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& Name() const { return name_; }
  const std::string& Host() const { return host_; }
  int Port() const { return port_; }
  const std::string& User() const { return user_; }
  std::string ConnectionString() const;
  std::string AdminConnectionString() const;  // the cluster's postgres database

  // One-off query returning the first column of the first row as a number.
  long long Scalar(const std::string& sql) const;
  void Exec(const std::string& sql) const;
  // The first column of every row, as text.
  std::vector<std::string> Column(const std::string& sql) const;
  void ExecAdmin(const std::string& sql) const;

 private:
  std::string host_, user_, name_;
  int port_ = 0;
};

}  // namespace tscb::testing
