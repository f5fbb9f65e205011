#include "analytics/admin/export.h"

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <string_view>

#include "analytics/admin/api.h"

namespace respscope::admin {

namespace json = boost::json;

namespace {

struct Documents {
  json::object overview, commands, patterns, hotkeys, slowlog, clients;
};

Documents Load(const engine::Snapshot& s) {
  return {json::parse(OverviewJson(s)).as_object(), json::parse(CommandsJson(s)).as_object(),
          json::parse(PatternsJson(s)).as_object(), json::parse(HotKeysJson(s)).as_object(),
          json::parse(SlowLogJson(s)).as_object(),  json::parse(ClientsJson(s)).as_object()};
}

const json::array& Array(const json::object& o, std::string_view key) {
  static const json::array kEmpty;
  auto it = o.find(key);
  return it != o.end() && it->value().is_array() ? it->value().as_array() : kEmpty;
}

double Num(const json::value& v) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return 0;
}

double Field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? 0 : Num(it->value());
}

double Latency(const json::object& o, std::string_view quantile) {
  auto it = o.find("latency");
  if (it == o.end() || !it->value().is_object()) return 0;
  return Field(it->value().as_object(), quantile);
}

std::string Text(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

// RFC 4180: quote when needed, double the quotes. A leading = + - @ is prefixed with ' so a
// spreadsheet never runs a key as a formula.
std::string Csv(std::string_view v) {
  std::string out(v);
  if (!out.empty() && (out[0] == '=' || out[0] == '+' || out[0] == '-' || out[0] == '@')) {
    out.insert(out.begin(), '\'');
  }
  if (out.find_first_of(",\"\r\n") == std::string::npos) return out;
  std::string q = "\"";
  for (char c : out) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string Html(std::string_view v) {
  std::string out;
  for (char c : v) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string IsoTime(int64_t wall_ms) {
  std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string ExportJson(const engine::Snapshot& s) {
  Documents d = Load(s);
  json::object out;
  out["generated_at"] = IsoTime(s.wall_ms);
  out["overview"] = std::move(d.overview);
  out["commands"] = Array(d.commands, "commands");
  out["patterns"] = Array(d.patterns, "patterns");
  out["hotkeys"] = Array(d.hotkeys, "keys");
  out["slowlog"] = Array(d.slowlog, "entries");
  out["clients"] = Array(d.clients, "clients");
  json::value insights = json::parse(InsightsJson(s));
  out["insights"] = insights.as_object().at("findings");
  out["health"] = json::parse(HealthJson(s));
  return json::serialize(out);
}

std::string ExportNdjson(const engine::Snapshot& s) {
  Documents d = Load(s);
  std::string out;
  auto line = [&](std::string_view type, json::object o) {
    o["type"] = type;
    o["generated_at"] = IsoTime(s.wall_ms);
    out += json::serialize(o);
    out += '\n';
  };
  line("overview", d.overview);
  for (const auto& v : Array(d.commands, "commands")) line("command", v.as_object());
  for (const auto& v : Array(d.patterns, "patterns")) line("pattern", v.as_object());
  for (const auto& v : Array(d.hotkeys, "keys")) line("hotkey", v.as_object());
  for (const auto& v : Array(d.slowlog, "entries")) line("slow", v.as_object());
  for (const auto& v : Array(d.clients, "clients")) line("client", v.as_object());
  json::value insights = json::parse(InsightsJson(s));
  for (const auto& v : insights.as_object().at("findings").as_array()) line("insight", v.as_object());
  return out;
}

std::string ExportCsv(const engine::Snapshot& s) {
  Documents d = Load(s);
  std::string out =
      "section,name,commands,errors,hits,misses,hit_rate,p50_ms,p99_ms,bytes_in,bytes_out\r\n";
  for (const auto& v : Array(d.commands, "commands")) {
    const auto& o = v.as_object();
    out += "command," + Csv(Text(o, "command")) + "," + Number(Field(o, "calls")) + "," +
           Number(Field(o, "errors")) + ",,,," + Number(Latency(o, "p50_ms")) + "," +
           Number(Latency(o, "p99_ms")) + ",,\r\n";
  }
  for (const auto& v : Array(d.patterns, "patterns")) {
    const auto& o = v.as_object();
    double hits = Field(o, "hits"), misses = Field(o, "misses");
    out += "pattern," + Csv(Text(o, "pattern")) + "," + Number(Field(o, "commands")) + ",," +
           Number(hits) + "," + Number(misses) + "," +
           (hits + misses > 0 ? Number(hits / (hits + misses)) : "") + "," +
           Number(Latency(o, "p50_ms")) + "," + Number(Latency(o, "p99_ms")) + "," +
           Number(Field(o, "bytes_in")) + "," + Number(Field(o, "bytes_out")) + "\r\n";
  }
  return out;
}

std::string ReportHtml(const engine::Snapshot& s) {
  Documents d = Load(s);
  const json::object& ov = d.overview;
  json::object totals = ov.contains("totals") ? ov.at("totals").as_object() : json::object{};
  json::object latency = ov.contains("latency") ? ov.at("latency").as_object() : json::object{};
  std::string h;
  h += "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>respscope report "
       "</title><style>body{font:14px/1.4 sans-serif;margin:24px;color:#222}"
       "table{border-collapse:collapse;margin:8px 0 24px}td,th{border-bottom:1px solid #ddd;"
       "padding:4px 10px;text-align:left}td.n{text-align:right}h1{margin:0}"
       ".k{display:inline-block;margin:12px 24px 12px 0}.k b{display:block;font-size:22px}"
       "code{font-size:12px}</style></head><body>";
  h += "<h1>respscope report</h1><p>Generated " + Html(IsoTime(s.wall_ms)) + ", respscope up " +
       Number(static_cast<double>(s.uptime_s)) + " s. Keys are shown sanitised.</p>";
  double hits = Field(totals, "hits"), misses = Field(totals, "misses");
  auto kpi = [&](std::string_view label, const std::string& value) {
    h += "<span class=\"k\">" + Html(label) + "<b>" + Html(value) + "</b></span>";
  };
  kpi("health score", Number(static_cast<double>(s.health_score)));
  kpi("commands", Number(Field(totals, "commands")));
  kpi("errors", Number(Field(totals, "errors")));
  kpi("cache hit rate",
      hits + misses > 0 ? Number(100 * hits / (hits + misses)) + "%" : std::string("n/a"));
  kpi("p50 / p99 ms",
      Number(Field(latency, "p50_ms")) + " / " + Number(Field(latency, "p99_ms")));
  kpi("status", s.health_status);
  for (const auto& reason : s.health_reasons) h += "<p>&#9888; " + Html(reason) + "</p>";

  h += "<h2>Insights</h2>";
  if (s.insights.empty()) h += "<p>Nothing to report.</p>";
  else {
    h += "<table><tr><th>severity</th><th>kind</th><th>subject</th><th>since (UTC)</th>"
         "<th>evidence</th><th>recommendation</th></tr>";
    for (const auto& f : s.insights) {
      std::string evidence = "window " + Number(f.window_s) + " s";
      for (const auto& [k, v] : f.evidence) evidence += "; " + k + " " + Number(v);
      for (const auto& [k, v] : f.details) evidence += "; " + k + " " + v;
      h += "<tr><td>" + Html(f.severity) + "</td><td><code>" + Html(f.kind) + "</code></td><td><code>" +
           Html(f.subject) + "</code></td><td>" + Html(IsoTime(f.since_ms)) + "</td><td>" +
           Html(evidence) + "</td><td>" + Html(f.recommendation) + "</td></tr>";
    }
    h += "</table>";
  }
  bool any_baseline = false;
  for (const auto& b : s.baselines) any_baseline |= b.established;
  if (any_baseline) {
    h += "<h2>Latency baselines</h2><table><tr><th>scope</th><th>subject</th><th>baseline p95 ms"
         "</th><th>last p95 ms</th><th>windows</th><th>trend</th></tr>";
    for (const auto& b : s.baselines) {
      if (!b.established) continue;
      h += "<tr><td>" + Html(b.scope) + "</td><td><code>" + Html(b.subject) + "</code></td><td class=n>" +
           Number(b.baseline_p95_ms) + "</td><td class=n>" + Number(b.last_p95_ms) +
           "</td><td class=n>" + Number(b.windows) + "</td><td>" + Html(b.trend) +
           (b.regressed ? " (regressed)" : "") + "</td></tr>";
    }
    h += "</table>";
  }

  h += "<h2>Commands</h2><table><tr><th>command</th><th>calls</th><th>errors</th>"
       "<th>p50 ms</th><th>p99 ms</th></tr>";
  for (const auto& v : Array(d.commands, "commands")) {
    const auto& o = v.as_object();
    h += "<tr><td><code>" + Html(Text(o, "command")) + "</code></td><td class=n>" +
         Number(Field(o, "calls")) + "</td><td class=n>" + Number(Field(o, "errors")) +
         "</td><td class=n>" + Number(Latency(o, "p50_ms")) + "</td><td class=n>" +
         Number(Latency(o, "p99_ms")) + "</td></tr>";
  }
  h += "</table><h2>Key patterns</h2><table><tr><th>pattern</th><th>commands</th><th>hits</th>"
       "<th>misses</th><th>hit rate</th><th>p99 ms</th><th>bytes out</th></tr>";
  for (const auto& v : Array(d.patterns, "patterns")) {
    const auto& o = v.as_object();
    double ph = Field(o, "hits"), pm = Field(o, "misses");
    h += "<tr><td><code>" + Html(Text(o, "pattern")) + "</code></td><td class=n>" +
         Number(Field(o, "commands")) + "</td><td class=n>" + Number(ph) + "</td><td class=n>" +
         Number(pm) + "</td><td class=n>" +
         (ph + pm > 0 ? Number(100 * ph / (ph + pm)) + "%" : std::string()) +
         "</td><td class=n>" + Number(Latency(o, "p99_ms")) + "</td><td class=n>" +
         Number(Field(o, "bytes_out")) + "</td></tr>";
  }
  h += "</table><h2>Hot keys</h2><table><tr><th>key</th><th>pattern</th><th>count</th></tr>";
  for (const auto& v : Array(d.hotkeys, "keys")) {
    const auto& o = v.as_object();
    h += "<tr><td><code>" + Html(Text(o, "key")) + "</code></td><td><code>" +
         Html(Text(o, "pattern")) + "</code></td><td class=n>" + Number(Field(o, "count")) +
         "</td></tr>";
  }
  h += "</table><h2>Slow log</h2><table><tr><th>when (UTC)</th><th>command</th><th>key</th>"
       "<th>ms</th><th>client</th></tr>";
  for (const auto& v : Array(d.slowlog, "entries")) {
    const auto& o = v.as_object();
    h += "<tr><td>" + Html(IsoTime(static_cast<int64_t>(Field(o, "time_ms")))) +
         "</td><td><code>" + Html(Text(o, "command")) + "</code></td><td><code>" +
         Html(Text(o, "key")) + "</code></td><td class=n>" + Number(Field(o, "duration_ms")) +
         "</td><td>" + Html(Text(o, "client")) + "</td></tr>";
  }
  h += "</table></body></html>\n";
  return h;
}

}  // namespace respscope::admin
