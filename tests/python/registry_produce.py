"""Produces records with confluent-kafka's own AvroSerializer or
JSONSerializer (which register the schema in the Schema Registry and frame
each value in the Confluent wire format), keyed by their id.

    registry_produce.py [--json-schema] [--key-field F] BROKERS TOPIC REGISTRY_URL SCHEMA RECORDS.jsonl
        SCHEMA is an Avro schema (.avsc), or a JSON Schema with --json-schema;
        prints the schema id the serializer used (with no records, the id it
        registered the schema under); the key is the record's `id` (or F)
    registry_produce.py --raw BROKERS TOPIC KEY HEX   one message of raw bytes
    registry_produce.py --protobuf V BROKERS TOPIC REGISTRY_URL RECORDS.jsonl
        Protobuf with confluent-kafka's ProtobufSerializer, writer version V
        (1 or 2, the `.proto` texts below); prints the schema id. rivven-schema
        refuses the serializer's own registration (a base64 descriptor) and
        serves schemas back only as `.proto` text, which the serializer cannot
        read: so the text is registered over REST (as Confluent's Java client
        and Redpanda do) and the serializer is given that id. The framing
        (magic byte, id, message indexes) and the payload are the serializer's.
"""
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


# Version 2 adds a message before `Doc` (so `Doc` is message index 1) and a
# nested `Meta` with the title.
PROTO = {
    "1": """syntax = "proto3";
package docs;
message Doc {
  string id = 1;
  string text = 2;
}
""",
    "2": """syntax = "proto3";
package docs;
message Envelope { string note = 1; }
message Doc {
  string id = 1;
  string text = 2;
  Meta meta = 3;
  message Meta { string title = 1; }
}
""",
}


def protobuf_doc_class(version):
    """docs.Doc of `.proto` version `version`, described by hand (Python's
    protobuf cannot read `.proto` text)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    string, optional = field.TYPE_STRING, field.LABEL_OPTIONAL
    file = descriptor_pb2.FileDescriptorProto(name="docs.proto", package="docs", syntax="proto3")
    if version == "2":
        envelope = file.message_type.add(name="Envelope")
        envelope.field.add(name="note", number=1, type=string, label=optional)
    doc = file.message_type.add(name="Doc")
    doc.field.add(name="id", number=1, type=string, label=optional)
    doc.field.add(name="text", number=2, type=string, label=optional)
    if version == "2":
        meta = doc.nested_type.add(name="Meta")
        meta.field.add(name="title", number=1, type=string, label=optional)
        doc.field.add(name="meta", number=3, type=field.TYPE_MESSAGE, label=optional, type_name=".docs.Doc.Meta")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("docs.Doc"))


def produce_protobuf(version, brokers, topic, registry, records_path):
    import requests
    from google.protobuf import json_format
    from confluent_kafka.schema_registry.common.serde import SchemaId
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    answer = requests.post(
        f"{registry}/subjects/{topic}-value/versions",
        json={"schemaType": "PROTOBUF", "schema": PROTO[version]},
        timeout=10,
    )
    answer.raise_for_status()
    schema_id = answer.json()["id"]
    doc_class = protobuf_doc_class(version)
    client = SchemaRegistryClient({"url": registry})
    serializer = ProtobufSerializer(doc_class, client, {"auto.register.schemas": False, "use.deprecated.format": False})
    serializer._known_subjects.add(f"{topic}-value")
    serializer._schema_id = SchemaId("PROTOBUF", schema_id, None, None)
    producer = Producer({"bootstrap.servers": brokers})
    context = SerializationContext(topic, MessageField.VALUE)
    with open(records_path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if version == "1":
                record.pop("title", None)
            else:
                record["meta"] = {"title": record.pop("title")}
            value = serializer(json_format.ParseDict(record, doc_class()), context)
            producer.produce(topic, key=record["id"].encode(), value=value)
    assert producer.flush(30) == 0
    print(schema_id)


def main():
    if sys.argv[1] == "--protobuf":
        produce_protobuf(*sys.argv[2:7])
        return
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
