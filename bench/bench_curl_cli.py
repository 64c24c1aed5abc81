"""bench_curl_cli.py URL N: curl as a process per call (a shell script's way),
same POST. Prints "calls_per_second p50_us p99_us"."""
import subprocess
import sys
import time

url, n = sys.argv[1] + "/api/iam/login", int(sys.argv[2])
cmd = ["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-H", "Accept: application/json",
       "--data", '{"user":"alice","password":"alice-Secret-1","remember_me":false}', url]
latencies = []
start = time.perf_counter()
for _ in range(n):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    latencies.append((time.perf_counter() - t0) * 1e6)
total = time.perf_counter() - start
latencies.sort()
print("%.0f %.1f %.1f" % (n / total, latencies[n // 2], latencies[int(n * 0.99)]))
