#!/usr/bin/env python3
"""Load generator for `s2s serve` (Python standard library only): N requests of one Multi30k line each from C
concurrent clients (each with its own keep-alive connection). Prints requests/s, p50/p99 latency and the
failures as its last line: serve_requests_per_s=<r> p50_ms=<ms> p99_ms=<ms> failed=<n>."""
import http.client
import json
import sys
import threading
import time


def main():
    port, src, total, clients, beam = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    lines = [l.rstrip("\n") for l in open(src, encoding="utf-8")]
    latencies, failures = [], []
    lock = threading.Lock()
    next_request = [0]

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next_request[0]
                if i >= total:
                    return
                next_request[0] += 1
            body = json.dumps({"text": [lines[i % len(lines)]], "beam_size": beam})
            start = time.perf_counter()
            try:
                conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
                res = conn.getresponse()
                answer = res.read()
                ok = res.status == 200 and len(json.loads(answer)["translations"]) == 1
            except Exception as e:  # a failed request is counted, then the client reconnects
                ok, answer = False, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            elapsed = time.perf_counter() - start
            with lock:
                (latencies if ok else failures).append(elapsed if ok else answer[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    pct = lambda p: 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    for f in failures[:3]:
        print("failed:", f, file=sys.stderr)
    print(f"serve_requests_per_s={len(latencies) / wall:.1f} p50_ms={pct(0.5):.1f} p99_ms={pct(0.99):.1f} "
          f"failed={len(failures)}")


if __name__ == "__main__":
    main()
