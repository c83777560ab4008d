"""Reference for `scripts/bench.sh kafka-avro`: the plain Python a user
would write to read Avro records from Kafka — confluent-kafka's Consumer and
AvroDeserializer (schemas from the Schema Registry) — timed from the first
message to the N-th decoded record; the records are kept as dicts.

    kafka_avro_python.py BROKERS TOPIC REGISTRY_URL GROUP N   → prints "N seconds"
"""
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, topic, registry, group, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry}))
consumer = Consumer({"bootstrap.servers": brokers, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
consumer.subscribe([topic])
context = SerializationContext(topic, MessageField.VALUE)
records, start = [], None
while len(records) < n:
    for message in consumer.consume(num_messages=1000, timeout=1.0):
        if message.error():
            continue
        start = start or time.perf_counter()
        records.append(deserialize(message.value(), context))
print(len(records), time.perf_counter() - start)
consumer.close()
