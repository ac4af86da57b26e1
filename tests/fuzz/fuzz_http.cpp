// libFuzzer: raw bytes on the callback listener's path: Beast's request
// parser with the listener's header and body limits, then the router and
// the allow-list (X-Forwarded-For) the callback endpoint applies.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>

#include "config/cidr.hpp"
#include "handlers/allow_list.hpp"
#include "handlers/router.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tscb::handlers::Router router("/callbacks", {"CarrierService", "NiddService"});
  static const tscb::handlers::AllowList allow({*tscb::config::Cidr::Parse("127.0.0.0/8")},
                                               {*tscb::config::Cidr::Parse("10.0.0.0/8")});
  http::request_parser<http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < size && !parser.is_done()) {
    std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) return 0;
  const auto& req = parser.get();
  (void)router.Route(req.target());
  (void)allow.Check("10.1.2.3", req["X-Forwarded-For"]);
  return 0;
}
