"""Prometheus text format, parsed for assertions: {(name, ((label, value), ...)): float}."""
import re

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, ((label, value), ...)): float}, labels sorted and
    unescaped. Raises on a line that is not a sample, a comment or blank."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError("unparsable metrics line: %r" % line)
        labels = tuple(sorted(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in _LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def series(metrics, name, **labels):
    """{labels tuple: value} of the series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in metrics.items() if n == name and want <= set(lab)}


def value(metrics, name, **labels):
    """The one series `name` with exactly these labels (0 when absent)."""
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)
