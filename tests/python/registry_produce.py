"""Produces records with confluent-kafka's own AvroSerializer or
JSONSerializer (which register the schema in the Schema Registry and frame
each value in the Confluent wire format), keyed by their id.

    registry_produce.py [--json-schema] [--key-field F] BROKERS TOPIC REGISTRY_URL SCHEMA RECORDS.jsonl
        SCHEMA is an Avro schema (.avsc), or a JSON Schema with --json-schema;
        prints the schema id the serializer used (with no records, the id it
        registered the schema under); the key is the record's `id` (or F)
    registry_produce.py --raw BROKERS TOPIC KEY HEX   one message of raw bytes
"""
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    if sys.argv[1] == "--raw":
        brokers, topic, key, hex_value = sys.argv[2:6]
        producer = Producer({"bootstrap.servers": brokers})
        producer.produce(topic, key=key.encode(), value=bytes.fromhex(hex_value))
        assert producer.flush(30) == 0
        return
    args = sys.argv[1:]
    serializer_class, key_field = AvroSerializer, "id"
    if args[0] == "--json-schema":
        serializer_class, args = JSONSerializer, args[1:]
    if args[0] == "--key-field":
        key_field, args = args[1], args[2:]
    brokers, topic, registry, schema_path, records_path = args[:5]
    client = SchemaRegistryClient({"url": registry})
    with open(schema_path, encoding="utf-8") as f:
        schema = f.read()
    serializer = serializer_class(schema, client) if serializer_class is JSONSerializer else serializer_class(client, schema)
    producer = Producer({"bootstrap.servers": brokers})
    context = SerializationContext(topic, MessageField.VALUE)
    value = None
    with open(records_path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            value = serializer(record, context)
            key = str(record[key_field]).encode()
            try:
                producer.produce(topic, key=key, value=value)
            except BufferError:  # the local queue is full: wait for deliveries
                producer.flush(30)
                producer.produce(topic, key=key, value=value)
            producer.poll(0)
    assert producer.flush(30) == 0
    if value is None:
        # No records: the schema is only registered (under a subject of its own).
        kind = "JSON" if serializer_class is JSONSerializer else "AVRO"
        print(client.register_schema(f"{topic}-registered-only", Schema(schema, kind)))
        return
    print(int.from_bytes(value[1:5], "big"))


if __name__ == "__main__":
    main()
