#pragma once
// A blocking HTTP/1.1 client for tests (Beast), over TLS that verifies the
// test CA and the host name, or over plain TCP. Keeps its connection open
// between requests. Not for production use; one thread per client.
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace tscb::testing {

struct HttpReply {
  int status = 0;  // 0: no answer (connection closed or failed)
  std::string body;
  std::string error;  // transport error text when status == 0
  std::map<std::string, std::string> headers;
};

class HttpClient {
 public:
  // `ca_file` empty means plain HTTP.
  HttpClient(int port, std::string ca_file, std::string host = "localhost");
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  HttpReply Request(const std::string& method, const std::string& target, const std::string& body,
                    const std::map<std::string, std::string>& headers = {});
  HttpReply Post(const std::string& target, const std::string& body,
                 const std::map<std::string, std::string>& headers = {}) {
    return Request("POST", target, body, headers);
  }
  HttpReply Get(const std::string& target) { return Request("GET", target, ""); }

  // Connects (and handshakes) without sending anything; false on failure.
  bool Connect();
  // Writes raw bytes on the (TLS) connection; false on failure.
  bool WriteRaw(const std::string& bytes);
  // Reads one response (after WriteRaw), waiting up to `timeout_ms`.
  HttpReply ReadReply(int timeout_ms);
  // Waits up to `timeout_ms` for the server to close; true if it did.
  bool WaitForClose(int timeout_ms);
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tscb::testing
