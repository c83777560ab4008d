//! Benchmark helper: creates a topic and produces a JSONL file's lines to it
//! (key = the line's `id`). Usage: produce_jsonl BROKERS TOPIC PARTITIONS FILE

use std::io::BufRead;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, partitions, file] = args.as_slice() else {
        anyhow::bail!("usage: produce_jsonl BROKERS TOPIC PARTITIONS FILE");
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let new_topic = NewTopic::new(topic, partitions.parse()?, TopicReplication::Fixed(1));
    for result in runtime.block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))? {
        if let Err((name, e)) = result {
            eprintln!("topic {name}: {e}");
        }
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()?;
    let mut count = 0;
    for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
        let line = line?;
        let value: serde_json::Value = serde_json::from_str(&line)?;
        let key = value["id"].as_str().unwrap_or_default().to_string();
        let mut record = BaseRecord::to(topic.as_str()).key(&key).payload(&line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
        count += 1;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60))?;
    eprintln!("produced {count} records to {topic}");
    Ok(())
}
