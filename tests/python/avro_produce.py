"""Produces records with confluent-kafka's own AvroSerializer (which
registers the schema in the Schema Registry and frames each value in the
Confluent wire format), keyed by their id.

    avro_produce.py [--key-field F] BROKERS TOPIC REGISTRY_URL SCHEMA.avsc RECORDS.jsonl
        prints the schema id the serializer used; the key is the record's
        `id` (or F)
    avro_produce.py --raw BROKERS TOPIC KEY HEX   one message of raw bytes
"""
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    if sys.argv[1] == "--raw":
        brokers, topic, key, hex_value = sys.argv[2:6]
        producer = Producer({"bootstrap.servers": brokers})
        producer.produce(topic, key=key.encode(), value=bytes.fromhex(hex_value))
        assert producer.flush(30) == 0
        return
    args = sys.argv[1:]
    key_field = "id"
    if args[0] == "--key-field":
        key_field, args = args[1], args[2:]
    brokers, topic, registry, schema_path, records_path = args[:5]
    client = SchemaRegistryClient({"url": registry})
    with open(schema_path, encoding="utf-8") as f:
        schema = f.read()
    serializer = AvroSerializer(client, schema)
    producer = Producer({"bootstrap.servers": brokers})
    context = SerializationContext(topic, MessageField.VALUE)
    value = None
    with open(records_path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            value = serializer(record, context)
            producer.produce(topic, key=str(record[key_field]).encode(), value=value)
    assert producer.flush(30) == 0
    print(int.from_bytes(value[1:5], "big"))


if __name__ == "__main__":
    main()
