"""A RabbitMQ consumer (Debian's python3-pika, for /usr/bin/python3):
   rabbit_consumer.py URL QUEUE OUT ACK PREFETCH
consumes QUEUE with manual acknowledgement and a prefetch of PREFETCH,
appending one line per event to the file OUT: `connected`, then
`got BODY redelivered=True|False` for every message. With ACK=ack it
acknowledges each message, with ACK=hold never (it keeps them unacked).
When its connection fails it says `lost` and connects again, as a
well-behaved client does."""
import sys
import time

import pika

url, queue, out, ack, prefetch = sys.argv[1:6]


def say(line):
    with open(out, "a") as f:
        f.write(line + "\n")


while True:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue=queue)
        ch.basic_qos(prefetch_count=int(prefetch))
        say("connected")

        def on_message(ch, method, props, body):
            say(f"got {body.decode()} redelivered={method.redelivered}")
            if ack == "ack":
                ch.basic_ack(delivery_tag=method.delivery_tag)

        ch.basic_consume(queue=queue, on_message_callback=on_message)
        ch.start_consuming()
    except Exception as e:  # any failure of the connection: reconnect
        say(f"lost {type(e).__name__}")
        time.sleep(0.2)
