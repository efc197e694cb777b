"""Publishes messages to a RabbitMQ queue: rabbit_publish.py URL QUEUE
FIRST COUNT sends bodies mFIRST .. m(FIRST+COUNT-1), then exits."""
import sys

import pika

url, queue, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.queue_declare(queue=queue)
for i in range(first, first + count):
    ch.basic_publish(exchange="", routing_key=queue, body=f"m{i}")
conn.close()
