# Turns commands.tsv into a C++ source holding it as a raw string literal.
#   cmake -DIN=commands.tsv -DOUT=commands_tsv_data.cc -P embed_tsv.cmake
# Checks the shape of every line so that a broken file fails the build here; the values are
# checked by ParseCommandsTsv (command_table_test, and BuiltIn() aborts on a bad table).
file(READ "${IN}" text)

# Characters that would break the literal or CMake's list handling below never belong in it.
foreach(ch ";" "[" "]" "\\" "\"" "\r")
  string(FIND "${text}" "${ch}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${IN}: contains one of ; [ ] \\ \" or CR")
  endif()
endforeach()
if(NOT text MATCHES "\n$")
  message(FATAL_ERROR "${IN}: must end with a newline")
endif()

string(REGEX MATCHALL "[^\n]*\n" lines "${text}")
set(line_no 0)
set(commands 0)
foreach(line IN LISTS lines)
  math(EXPR line_no "${line_no} + 1")
  if(line MATCHES "^#" OR line STREQUAL "\n")
    continue()
  endif()
  if(NOT line MATCHES "^[a-z0-9_|-]+\t-?[0-9]+\t[^\t\n]+\t[^\t\n]+\t[a-z_]+\t[^\t\n]+\t[a-z]+\n$")
    message(FATAL_ERROR "${IN}:${line_no}: not NAME ARITY FLAGS KEYS LOOKUP BLOCKING POOL "
                        "separated by single TABs: ${line}")
  endif()
  math(EXPR commands "${commands} + 1")
endforeach()
if(commands LESS 200)
  message(FATAL_ERROR "${IN}: only ${commands} commands; expected every Redis 7 command")
endif()

file(WRITE "${OUT}.tmp"
  "// Generated from proxy/commands/commands.tsv by embed_tsv.cmake. Do not edit.\n"
  "#include \"proxy/commands/commands_tsv.h\"\n\n"
  "namespace respscope::commands::detail {\n"
  "const std::string_view kCommandsTsv = R\"respscope_tsv(${text})respscope_tsv\";\n"
  "}  // namespace respscope::commands::detail\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
