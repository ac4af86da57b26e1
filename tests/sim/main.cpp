// tscb-sim: the carrier simulator as a program. Prints
// "simulator bound on ADDRESS:PORT" once it listens; stops on SIGTERM/SIGINT.
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "daemon/tls_context.hpp"
#include "tests/sim/simulator.hpp"

namespace {

constexpr const char* kUsage =
    "usage: tscb-sim --cert FILE --key FILE [options]\n"
    "  --address IP            listen address (default 127.0.0.1)\n"
    "  --port N                listen port (default 0: any free port)\n"
    "  --ca FILE               CA that signed the callback listeners' certificates\n"
    "  --no-verify             do not verify the callback listeners' certificates\n"
    "  --app-key K --app-secret S      OAuth client credentials to accept (default any)\n"
    "  --uws-user U --uws-password P   session login to accept (default any)\n"
    "  --token-lifetime SECONDS        OAuth token lifetime (default 3600)\n"
    "  --session-idle SECONDS          session idle expiry (default 1200)\n"
    "  --retry-interval MS             callback resend interval (default 300000)\n"
    "  --faults JSON                   faults at start (see tests/sim/README.md)\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace tscb;
  sim::SimOptions options;
  std::string address = "127.0.0.1", cert, key;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "tscb-sim: " << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (arg == "--address")
        address = value();
      else if (arg == "--port")
        port = std::stoi(value());
      else if (arg == "--cert")
        cert = value();
      else if (arg == "--key")
        key = value();
      else if (arg == "--ca")
        options.ca_file = value();
      else if (arg == "--no-verify")
        options.verify_listeners = false;
      else if (arg == "--app-key")
        options.app_key = value();
      else if (arg == "--app-secret")
        options.app_secret = value();
      else if (arg == "--uws-user")
        options.uws_user = value();
      else if (arg == "--uws-password")
        options.uws_password = value();
      else if (arg == "--token-lifetime")
        options.token_lifetime_s = std::stoi(value());
      else if (arg == "--session-idle")
        options.session_idle_s = std::stoi(value());
      else if (arg == "--retry-interval")
        options.retry_interval_ms = std::stoi(value());
      else if (arg == "--faults")
        options.faults = boost::json::parse(value()).as_object();
      else if (arg == "-h" || arg == "--help") {
        std::cout << kUsage;
        return 0;
      } else {
        std::cerr << "tscb-sim: unknown argument " << arg << '\n' << kUsage;
        return 2;
      }
    } catch (const std::exception& e) {
      std::cerr << "tscb-sim: bad value for " << arg << ": " << e.what() << '\n';
      return 2;
    }
  }
  if (cert.empty() || key.empty()) {
    std::cerr << "tscb-sim: --cert and --key are required\n" << kUsage;
    return 2;
  }
  try {
    daemon::asio::io_context ioc(1);
    config::TlsConfig tls{true, cert, key};
    auto context = daemon::MakeServerTlsContext(tls);
    sim::Simulator simulator(ioc, options);
    daemon::ServerLimits limits;
    limits.max_body_bytes = 4 * 1024 * 1024;
    limits.request_timeout = std::chrono::minutes(10);  // /_sim/load answers when done
    limits.idle_timeout = std::chrono::minutes(5);
    daemon::HttpServer server(ioc, "simulator", context, limits, simulator, nullptr);
    auto bound = server.Bind(address, static_cast<std::uint16_t>(port));
    server.Start();
    std::cout << "simulator bound on " << address << ":" << bound << std::endl;
    daemon::asio::signal_set signals(ioc, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) ioc.stop();
    });
    ioc.run();
    std::cout << "simulator stopped" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "tscb-sim: " << e.what() << '\n';
    return 1;
  }
}
