// The live dashboard served at "/": one static page (analytics/admin/dashboard.html, embedded at
// build time) that polls the JSON API. It holds no data itself, so it is served without the
// admin token; the API calls it makes carry the token the user types in.
#pragma once

namespace respscope::admin {
const char* DashboardHtml();
}  // namespace respscope::admin
