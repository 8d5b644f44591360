"""RabbitMQ baseline for `ortaq bench exchange`: the same 2 KB payloads, published as persistent
messages to a durable queue with publisher confirms, so a publish counts only once the broker
has written it to disk (as ortaq counts an envelope only once both nodes committed it).

Prints `rate=<messages/s>` for the full-load run (one blocking connection per thread, each
publish waiting for its confirm, like ortaq's clients waiting for their answer) and
`paced_p50_ms=` / `paced_p99_ms=` for publishes at a fixed rate. Needs `pika`; the broker is
amqp://guest:guest@127.0.0.1:5672 unless AMQP_URL says otherwise.
"""

import argparse
import os
import threading
import time

import pika

QUEUE = "ortaq-bench-baseline"


def connect():
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue=QUEUE, durable=True)
    ch.confirm_delivery()
    return conn, ch


def payload(size, i):
    head = f'<tr:ConformityDocDetails xmlns:tr="urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1"><tr:DocId>KZ-{i}</tr:DocId><tr:Text>'
    tail = "</tr:Text></tr:ConformityDocDetails>"
    fill = max(0, size - len(head) - len(tail))
    return (head + "Ә" * (fill // 2) + tail).encode()


PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)


def publish(ch, body):
    # With confirms on, basic_publish returns once the broker confirmed (raises if nacked).
    ch.basic_publish(exchange="", routing_key=QUEUE, body=body, properties=PERSISTENT, mandatory=True)


def full_load(messages, concurrency, size):
    bodies = [payload(size, i) for i in range(messages)]
    nxt = iter(range(messages))
    lock = threading.Lock()
    lat = []
    errors = []

    def worker():
        try:
            conn, ch = connect()
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    break
                t = time.perf_counter()
                publish(ch, bodies[i])
                d = time.perf_counter() - t
                with lock:
                    lat.append(d)
            conn.close()
        except Exception as e:  # reported below; a baseline that failed must not look fast
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"RabbitMQ baseline failed: {errors[0]}")
    return messages / elapsed, sorted(lat)


def paced(rate, seconds, size):
    conn, ch = connect()
    n = rate * seconds
    bodies = [payload(size, i) for i in range(n)]
    lat = []
    start = time.perf_counter()
    for i, b in enumerate(bodies):
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        t = time.perf_counter()
        publish(ch, b)
        # Latency from when it was due, so falling behind the schedule shows.
        lat.append(time.perf_counter() - min(t, due))
    conn.close()
    return sorted(lat)


def pct(xs, p):
    return xs[round((len(xs) - 1) * p)] * 1000 if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    conn, ch = connect()
    ch.queue_purge(QUEUE)
    conn.close()
    full_load(1000, a.concurrency, a.size)  # warm-up
    rate, lat = full_load(a.messages, a.concurrency, a.size)
    plat = paced(a.rate, a.seconds, a.size)
    conn, ch = connect()
    ch.queue_delete(QUEUE)
    conn.close()
    print(f"RabbitMQ {pika.__version__ and 'via pika ' + pika.__version__}: persistent messages, durable queue, publisher confirms, {a.size} B payloads")
    print(f"  full load ({a.messages} messages, {a.concurrency} publishing connections): rate={rate:.0f} messages/s, confirm p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms")
    print(f"  fixed rate {a.rate}/s for {a.seconds} s: paced_p50_ms={pct(plat, 0.5):.1f} paced_p99_ms={pct(plat, 0.99):.1f}")


if __name__ == "__main__":
    main()
