# Turns dashboard.html into a C++ source with the page as a raw string literal.
file(READ ${IN} content)
string(FIND "${content}" ")DASHBOARD\"" bad)
if(NOT bad EQUAL -1)
  message(FATAL_ERROR "dashboard.html contains the raw string delimiter")
endif()
file(WRITE ${OUT} "// Generated from analytics/admin/dashboard.html. Do not edit.\n#include \"analytics/admin/dashboard.h\"\nnamespace respscope::admin {\nconst char* DashboardHtml() {\n  return R\"DASHBOARD(${content})DASHBOARD\";\n}\n}  // namespace respscope::admin\n")
