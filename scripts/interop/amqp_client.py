"""An information system on the queue adapter, written with pika (RabbitMQ's own Python client).

publish FILE      publishes each JSON line of FILE ({"body", "content_type", "message_id",
                  "user_id"?, "queue"}) as a persistent message, each confirmed by the broker
                  before the next; a message the broker did not confirm because it went away
                  is published again when it is back. Prints `confirmed=N`.
collect QUEUE N SECS
                  consumes QUEUE with manual acks until N distinct ids (message_id, else
                  correlation_id) have come or SECS pass; prints one JSON line per message
                  ({"id", "status", "type", "sha256", "redelivered"}), acking each after
                  printing it, then `collected=N`.
handed EXCHANGE JOURNAL ID
                  declares the inbox exchange, its queue and the journal queue as the node does,
                  and publishes a stand-in for message ID through the exchange: what a node
                  leaves when it dies after the broker's confirm and before its own
                  acknowledgement (tests only).
delete QUEUE...   deletes the queues (and the exchanges of the same names).

The broker is amqp://guest:guest@127.0.0.1:5672/%2F unless AMQP_URL says otherwise.
"""

import hashlib
import json
import os
import sys
import time

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def connect():
    return pika.BlockingConnection(pika.URLParameters(URL))


def publish(path):
    with open(path, encoding="utf-8") as f:
        messages = [json.loads(line) for line in f]
    n = 0
    conn = None
    lost_at = None
    while n < len(messages):
        try:
            if conn is None:
                conn = connect()
                ch = conn.channel()
                ch.confirm_delivery()
            m = messages[n]
            props = pika.BasicProperties(
                content_type=m["content_type"],
                message_id=m["message_id"],
                user_id=m.get("user_id"),
                delivery_mode=pika.DeliveryMode.Persistent,
            )
            # BlockingChannel with confirms returns only when the broker has confirmed it:
            # the message is then durably queued, whatever happens to the node.
            ch.basic_publish("", m["queue"], m["body"].encode("utf-8"), props, mandatory=True)
            n += 1
            lost_at = None
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                pika.exceptions.StreamLostError, ConnectionError) as e:
            # The broker went away before confirming message n: publish it again once it is
            # back (the same MessageID, so the node takes it once), as an IS must.
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > 90:
                raise
            print(f"lost the broker at message {n}: {e!r}", file=sys.stderr, flush=True)
            conn = None
            time.sleep(0.5)
    if conn is not None:
        conn.close()
    print(f"confirmed={n}", flush=True)


def collect(queue, want, secs):
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=500)
    seen = set()
    deadline = time.monotonic() + secs
    for method, props, body in ch.consume(queue, inactivity_timeout=0.5):
        if method is not None:
            ident = props.message_id if props.correlation_id is None else props.correlation_id
            status = (props.headers or {}).get("status")
            print(json.dumps({
                "id": ident,
                "status": status,
                "type": props.type,
                "content_type": props.content_type,
                "sha256": hashlib.sha256(body).hexdigest(),
                "redelivered": method.redelivered,
                "possible_repeat": bool((props.headers or {}).get("ortaq-possible-repeat")),
                "text": body[:400].decode("utf-8", "replace") if os.environ.get("AMQP_CLIENT_TEXT") else None,
            }), flush=True)
            ch.basic_ack(method.delivery_tag)
            seen.add(ident)
        if len(seen) >= want or time.monotonic() > deadline:
            break
    ch.cancel()
    conn.close()
    print(f"collected={len(seen)}", flush=True)


def handed(exchange, journal, message_id):
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    for q in (exchange, journal):
        ch.queue_declare(q, durable=True)
    ch.exchange_declare(exchange, "fanout", durable=True)
    for q in (exchange, journal):
        ch.queue_bind(q, exchange)
    props = pika.BasicProperties(message_id=message_id, delivery_mode=pika.DeliveryMode.Persistent)
    ch.basic_publish(exchange, "", b"<stand-in/>", props, mandatory=True)
    conn.close()


def delete(queues):
    conn = connect()
    ch = conn.channel()
    for q in queues:
        ch.queue_delete(q)
        try:
            ch.exchange_delete(q)
        except pika.exceptions.ChannelClosedByBroker:
            ch = conn.channel()
    conn.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "publish":
        publish(sys.argv[2])
    elif cmd == "collect":
        collect(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "handed":
        handed(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "delete":
        delete(sys.argv[2:])
    else:
        sys.exit(f"unknown command {cmd}")
