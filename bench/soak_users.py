"""soak_users.py: simulated users against gate nodes, for bench/soak.lua.

usage: soak_users.py USERS SECONDS EVENT_AT EVENT_CMD NODE_URL...

Each user signs in on one node (the reference backend's users, many sessions
each), browses /app/ on random nodes about twice a second until SECONDS have
passed, then signs out and checks that its cookie no longer works. At
EVENT_AT seconds, EVENT_CMD (a shell command: the failover) runs once.
Prints one JSON object: requests, statuses, latencies' p50/p99, users who
lost their session (a 401 while signed in), the event's time, logouts that
failed (not 200), logouts that did not end the session.
"""
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse

USERS = [("alice", "alice-Secret-1"), ("bob", "bob-Secret-2"), ("admin", "admin-Secret-3")]


def request(url, method, path, cookie=None, body=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    headers = {"Accept": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Set-Cookie") or "", time.monotonic() - started
    except OSError:
        return 0, "", time.monotonic() - started
    finally:
        conn.close()


def main():
    n, seconds, event_at, event_cmd = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    nodes = sys.argv[5:]
    lock = threading.Lock()
    stats = {"requests": 0, "statuses": {}, "lost": 0, "login_failed": 0, "logout_failed": 0, "logout_kept": 0, "latencies": []}
    start = time.monotonic()

    def record(status, latency):
        with lock:
            stats["requests"] += 1
            stats["statuses"][str(status)] = stats["statuses"].get(str(status), 0) + 1
            stats["latencies"].append(latency)

    def login(i):
        user, password = USERS[i % len(USERS)]
        node = nodes[i % len(nodes)]
        body = urllib.parse.urlencode({"user": user, "password": password})
        for _ in range(20):
            status, cookie, latency = request(node, "POST", "/login", body=body)
            record(status, latency)
            if status == 200 and "tfauth_sid=" in cookie:
                return cookie.split(";", 1)[0]
            time.sleep(0.5)
        return None

    def user(i):
        time.sleep(random.random() * 2)  # sign-ins spread over two seconds
        cookie = login(i)
        if not cookie:
            with lock:
                stats["login_failed"] += 1
            return
        lost = False
        while time.monotonic() - start < seconds:
            status, _, latency = request(random.choice(nodes), "GET", "/app/x", cookie=cookie)
            record(status, latency)
            if status == 401 and not lost:
                lost = True
                with lock:
                    stats["lost"] += 1
            time.sleep(0.3 + random.random() * 0.4)
        status, _, latency = request(random.choice(nodes), "POST", "/logout", cookie=cookie, body="")
        record(status, latency)
        if status != 200:
            with lock:
                stats["logout_failed"] += 1
            return
        status, _, latency = request(random.choice(nodes), "GET", "/app/x", cookie=cookie)
        if status == 200:
            with lock:
                stats["logout_kept"] += 1

    def event():
        time.sleep(event_at)
        stats["event_at"] = time.monotonic() - start
        subprocess.run(event_cmd, shell=True, check=False)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
    if event_cmd:
        threads.append(threading.Thread(target=event))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = sorted(stats.pop("latencies"))
    stats["p50"] = latencies[len(latencies) // 2] if latencies else 0
    stats["p99"] = latencies[int(len(latencies) * 0.99)] if latencies else 0
    stats["seconds"] = time.monotonic() - start
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
