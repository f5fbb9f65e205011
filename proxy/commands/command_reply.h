// The reader of the upstream's COMMAND / COMMAND INFO reply (RESP2 or RESP3, the whole reply
// bytes) into command entries, for CommandTable::FromCommandReply. Not part of the interface.
//
// The reply comes from a server but is treated as hostile: it is read with the one RESP value
// reader (proxy/resp/resp_value.h) under this reader's own bounds (size, nesting), and every
// arity, position and count is range-checked (kMaxSpecValue, ValidKeySpec) before the table
// relies on it. No I/O; runs once, off the data path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/commands/command_table.h"

namespace respscope::commands::detail {

struct ReplyEntry {
  // Name, arity, flags and key specs as the server sent them. Lookup semantics and the
  // overlay-only flags (kFlagScript, kFlagSensitiveArgs) are not in COMMAND: the table takes
  // them from its built-in entry of the same name.
  CommandInfo info;
  // Key specs COMMAND cannot express (SORT's "unknown") or did not send (Redis 6 movable-key
  // commands): the built-in specs of the same name are used instead when there are any.
  bool specs_incomplete = false;
};

// Appends the entries of `reply`, containers before their subcommands, in reply order. Names
// longer than kMaxNameLength are left out; COMMAND INFO's nulls (unknown names) are skipped.
// On a malformed reply, an error reply, or one that names no command, returns false and sets
// *error (never null).
bool ReadCommandReply(std::string_view reply, std::vector<ReplyEntry>* out, std::string* error);

}  // namespace respscope::commands::detail
