// Parsers and formatters for the value types of the configuration: durations, sizes, listen
// addresses, upstream URLs, history tiers, numbers and the enums. Shared by the YAML loader,
// the command line and the RESPSCOPE_* overrides so that a value means the same everywhere.
//
// Every Parse* function throws ValueError whose what() says what was expected and what it got,
// e.g. "expected a duration like 10ms, 2s, 5m (got 'abc')", without location or key path.
// No I/O; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/error.h"

namespace respscope::config {

// "500us", "10ms", "2s", "1.5s", "5m", "1h"; a bare "0" is zero. One number, one unit, no
// spaces; fractions round to the nearest microsecond. At most 10^15 us.
Duration ParseDuration(std::string_view text);

// "1024", "512B", "512KiB", "8MiB", "1GiB", "1.5MiB" (binary units only: "8MB" is an error
// rather than a guess between 10^6 and 2^20). At most 2^50 bytes.
uint64_t ParseSize(std::string_view text);

// "HOST:PORT" or "[IPV6]:PORT"; port 0..65535.
HostPort ParseHostPort(std::string_view text);

// A listen address: "HOST:PORT" (as ParseHostPort) or "unix:///ABSOLUTE/PATH" (also
// "unix:/ABSOLUTE/PATH"; the path at most kMaxUnixPath bytes, taken as written: no
// percent-decoding, no query).
ListenAddress ParseListenAddress(std::string_view text);
// One or more listen addresses separated by commas (the --listen flag and RESPSCOPE_LISTEN):
// "127.0.0.1:6380,unix:///run/respscope.sock". Empty items, duplicates and more than
// kMaxListeners are errors.
std::vector<ListenAddress> ParseListenList(std::string_view text);
// Permission bits in octal like chmod: "0660", "660", "0o660"; at most 0777.
uint32_t ParseFileMode(std::string_view text);
// "0660".
std::string FormatFileMode(uint32_t mode);

// See UpstreamUrl. Error messages start with "invalid URL: " and never repeat the URL, which may
// hold a password.
UpstreamUrl ParseUpstreamUrl(std::string_view text);

// One sentinel address: HOST, HOST:PORT, [IPV6] or [IPV6]:PORT; the port defaults to
// kDefaultSentinelPort. Errors start with "invalid URL: ".
HostPort ParseSentinelAddress(std::string_view text);

// "10s for 1h": resolution a whole number of seconds, retention a multiple of it, at most
// kMaxHistoryPoints points.
inline constexpr int64_t kMaxHistoryPoints = 100000;
HistoryTier ParseHistoryTier(std::string_view text);

// admin.token / RESPSCOPE_ADMIN_TOKEN: printable ASCII, no spaces (it travels in an HTTP
// header). Returns the token; the error never repeats it.
std::string ParseAdminToken(std::string_view text);

int64_t ParseInteger(std::string_view text);  // decimal, optional '-'
double ParseNumber(std::string_view text);    // finite decimal, "0.8", "1e-3"
bool ParseBool(std::string_view text);        // true / false, any case

// Enums by their YAML names, any case ("INFO" == "info"; "warning" is accepted for warn).
LogLevel ParseLogLevel(std::string_view text);
// "auto" or "dedicated".
UpstreamPooling ParseUpstreamPooling(std::string_view text);
LogFormat ParseLogFormat(std::string_view text);
// upstream_tls.min_version: "1.2" or "1.3" ("TLSv1.2", "TLSv1.3" too).
TlsVersion ParseTlsVersion(std::string_view text);
SanitizeMode ParseSanitizeMode(std::string_view text);
AlertMetric ParseAlertMetric(std::string_view text);
Severity ParseSeverity(std::string_view text);
ChannelType ParseChannelType(std::string_view text);

// Edits (insert, delete, substitute, swap two neighbours) from a to b; for "did you mean".
size_t EditDistance(std::string_view a, std::string_view b);

// Shortest exact form: "2s", "90m", "1500ms", "250us", "0s".
std::string FormatDuration(Duration d);
// Shortest exact form: "8MiB", "1536B".
std::string FormatSize(uint64_t bytes);
// For "(got ...)": single-quoted, control characters escaped, cut after 64 characters.
std::string Quote(std::string_view text);
// "value out of range (must be between LO and HI, got GOT)".
ValueError OutOfRange(std::string_view lo, std::string_view hi, std::string_view got);

}  // namespace respscope::config
