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
