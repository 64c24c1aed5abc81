"""bench_requests.py URL N: the floor of the backend's Python SDK (which adds
pydantic on top): a requests.Session doing the same login POST and JSON
decode. Prints "calls_per_second p50_us p99_us"."""
import sys
import time

import requests

url, n = sys.argv[1] + "/api/iam/login", int(sys.argv[2])
body = {"user": "alice", "password": "alice-Secret-1", "remember_me": False}
session = requests.Session()
session.headers.update({"Accept": "application/json"})
for _ in range(100):
    session.post(url, json=body).json()
latencies = []
start = time.perf_counter()
for _ in range(n):
    t0 = time.perf_counter()
    r = session.post(url, json=body)
    assert r.status_code == 200 and r.json()["expires_in"] == 300
    latencies.append((time.perf_counter() - t0) * 1e6)
total = time.perf_counter() - start
latencies.sort()
print("%.0f %.1f %.1f" % (n / total, latencies[n // 2], latencies[int(n * 0.99)]))
