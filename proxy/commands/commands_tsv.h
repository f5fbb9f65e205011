// Internals shared by the two ways a CommandTable is built: the embedded commands.tsv and a
// COMMAND reply. Not part of the interface; tests use it to check the data file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/commands/command_table.h"

namespace respscope::commands::detail {

// The bytes of commands.tsv, embedded by embed_tsv.cmake (generated commands_tsv_data.cc).
extern const std::string_view kCommandsTsv;

// Longest command name, "container|sub" included, a table holds. Redis 7.0's longest is 29
// ("cluster|count-failure-reports"); the room is for modules. Longer names in a COMMAND reply
// are left out (they map to "other"); in commands.tsv they are an error.
inline constexpr size_t kMaxNameLength = 64;
// Bound on every position and count in a key spec: real specs use single digits; the bound
// keeps index arithmetic far from overflow whatever a reply says.
inline constexpr int kMaxSpecValue = 1 << 16;

// Maps a Redis command flag name (lowercase, as COMMAND spells it, plus "script" and
// "sensitive_args") to its bit, 0 for flags respscope does not use. Returns false for a name
// it does not know.
bool FlagFromName(std::string_view name, uint32_t* bit);

// Checks the values of a spec are in range (what KeyIndices relies on). On failure says why.
bool ValidKeySpec(const KeySpec& spec, std::string* why);

// Parses commands.tsv text (format in its header comment). On error returns false and sets
// *error to "line N: ...". Names are checked (lowercase, no duplicates, containers before
// use); ids and has_subcommands are left to the table.
bool ParseCommandsTsv(std::string_view text, std::vector<CommandInfo>* out, std::string* error);

// Strict decimal integer: optional '-', no '+', no spaces, no leading zeros, fits int64.
bool ParseInt64(std::string_view s, int64_t* out);

}  // namespace respscope::commands::detail
