"""What bench/run.py measures: shared by run.py and report.py."""
import statistics

TARGETS = ["direct", "respscope", "twemproxy"]
TESTS = ["get", "set", "mget", "lpush", "lrange_100"]
TEST_LABEL = {"get": "GET", "set": "SET", "mget": "MGET (10 keys)", "lpush": "LPUSH",
              "lrange_100": "LRANGE_100"}
PIPELINES = [1, 16]
CLIENTS = 50
KEYSPACE = 100000  # redis-benchmark -r


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def carry_over(path, generated):
    """The generated markdown followed by the sections ("## " headings) of the file at path that
    the generator does not write: those of bench/ab.py runs, bench/unix_socket.py and
    bench/bullmq_bench.js, which each replace only their own section. A regenerated
    RESULTS.md keeps them, in their order, after the generated ones."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        return generated

    def sections(text):
        parts = ("\n" + text).split("\n## ")[1:]
        return [("## " + p).rstrip("\n") for p in parts]

    def heading(section):
        return section.split("\n", 1)[0]

    written = {heading(s) for s in sections(generated)}
    kept = [s for s in sections(old) if heading(s) not in written]
    if not kept:
        return generated
    return generated.rstrip("\n") + "\n\n" + "\n\n".join(kept) + "\n"
