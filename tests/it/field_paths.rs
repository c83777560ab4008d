//! Nested field paths (`after.body`) for the id, text and metadata of JSON
//! records: the JSONL source here, the Kafka source through the same decoder.

use crate::common::*;

#[test]
fn nested_field_paths_name_the_id_text_and_metadata_of_json_records() {
    let ws = Workspace::new();
    ws.write(
        "in.jsonl",
        r#"{"doc": {"id": "a", "body": "Alpha text."}, "meta": {"title": "A", "tags": ["x", "y"]}}
{"doc": {"id": 7, "body": "Beta text."}, "meta": {}}
{"doc": {"id": "c"}}
{"doc.id": "d", "doc": {"id": "not-this", "body": "A literal dotted key wins."}}
"#,
    );
    let pipeline = "name: nested\nsource: { type: jsonl, path: in.jsonl, id_field: doc.id, text_field: doc.body, metadata: [meta.title, meta.tags] }\nsinks:\n  - { type: jsonl, path: out.jsonl }\ndead_letter: { path: dead.jsonl }\n";
    ws.write("p.yaml", pipeline);
    ws.vecpipe(&["validate", "p.yaml"]).expect_code(0);
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_output_eq!(
        std::fs::read_to_string(ws.path("out.jsonl")).unwrap(),
        r#"{"id":"a","text":"Alpha text.","title":"A","tags":"[\"x\",\"y\"]"}
{"id":"7","text":"Beta text.","title":null,"tags":null}
{"id":"d","text":"A literal dotted key wins.","title":null,"tags":null}
"#
    );
    assert_output_eq!(
        std::fs::read_to_string(ws.path("dead.jsonl")).unwrap(),
        r#"{"position":"in.jsonl:3","reason":"missing text field `doc.body`","raw":"{\"doc\": {\"id\": \"c\"}}"}
"#
    );

    // Two paths ending alike would make one column twice.
    ws.write("p.yaml", pipeline.replace("meta.tags", "doc.title"));
    let refused = ws.vecpipe(&["validate", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        refused.stderr(),
        "error: p.yaml:2:103: source.metadata[1]: `doc.title` (column `title`) is listed twice (a metadata column is its path's last segment)\n"
    );
}
