#include "tests/support/test_database.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace tscb::testing {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v)
    throw std::runtime_error(std::string(name) +
                             " is not set: run the tests through scripts/test.sh, which starts "
                             "a throwaway PostgreSQL");
  return v;
}
std::atomic<int> counter{0};
}  // namespace

TestDatabase::TestDatabase()
    : host_(Env("TSCB_TEST_PG_HOST")),
      user_(Env("TSCB_TEST_PG_USER")),
      name_("tscb_t" + std::to_string(getpid()) + "_" + std::to_string(counter++)),
      port_(std::stoi(Env("TSCB_TEST_PG_PORT"))) {
  ExecAdmin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  ExecAdmin("CREATE DATABASE " + name_ + " TEMPLATE template0");
}

TestDatabase::~TestDatabase() {
  try {
    ExecAdmin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "could not drop " << name_ << ": " << e.what();
  }
}

std::string TestDatabase::ConnectionString() const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " user=" + user_ +
         " dbname=" + name_ + " connect_timeout=5";
}

std::string TestDatabase::AdminConnectionString() const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " user=" + user_ +
         " dbname=postgres connect_timeout=5";
}

long long TestDatabase::Scalar(const std::string& sql) const {
  pqxx::connection conn(ConnectionString());
  pqxx::nontransaction tx(conn);
  auto row = tx.exec1(sql);
  return row[0].is_null() ? 0 : row[0].as<long long>();
}

std::vector<std::string> TestDatabase::Column(const std::string& sql) const {
  pqxx::connection conn(ConnectionString());
  pqxx::nontransaction tx(conn);
  std::vector<std::string> out;
  for (const auto& row : tx.exec(sql)) out.push_back(row[0].is_null() ? "" : row[0].c_str());
  return out;
}

void TestDatabase::Exec(const std::string& sql) const {
  pqxx::connection conn(ConnectionString());
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

void TestDatabase::ExecAdmin(const std::string& sql) const {
  pqxx::connection conn(AdminConnectionString());
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

}  // namespace tscb::testing
