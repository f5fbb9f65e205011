// Transport-neutral request/response types for admin routes, so that modules adding routes
// (the app: /api/v1/queues, export, report) need no Beast headers.
#pragma once

#include <functional>
#include <map>
#include <string>

namespace respscope::admin {

struct HttpRequest {
  std::string method;                         // "GET", ...
  std::string path;                           // without the query string, e.g. "/api/v1/x"
  std::map<std::string, std::string> query;   // URL-decoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Called on the admin server's thread; must not block for long. Exceptions become a 500.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace respscope::admin
