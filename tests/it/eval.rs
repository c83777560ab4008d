//! `vecpipe eval` and `search --queries` on the example BEIR set
//! (`pipelines/beir-eval.yaml`) ingested into a real Milvus Lite server. Every
//! figure is checked against trec_eval's own code (pytrec_eval) fed with the
//! hits `search --queries` prints for the same queries.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::Value;

const PIPELINE: &str = "pipelines/beir-eval.yaml";
const QUERIES: &str = "pipelines/data/beir-mini/queries.jsonl";
const QRELS: &str = "pipelines/data/beir-mini/qrels/test.tsv";
/// `vecpipe eval` on the example set.
const EVAL: [&str; 6] = ["eval", PIPELINE, "--queries", QUERIES, "--qrels", QRELS];

/// The example corpus fitted and ingested into `milvus`.
fn ingested(milvus: &MilvusServer) -> Workspace {
    setup(None);
    let ws = Workspace::new();
    for args in [
        &["bm25", "fit", "--pipeline", PIPELINE][..],
        &["run", PIPELINE][..],
    ] {
        Run(run_at_root(&ws, milvus, args)).expect_code(0);
    }
    ws
}

fn run_at_root(ws: &Workspace, milvus: &MilvusServer, args: &[&str]) -> std::process::Output {
    ws.command_at_root(args, &[("MILVUS_URI", milvus.uri.as_str())])
        .output()
        .unwrap()
}

/// `search --queries` as a trec run: query → document → its best hit's score.
/// A reranked hit's score is its cross-encoder score moved above every
/// search score, so trec_eval keeps the reranked head before the rest.
fn trec_run(search_output: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut run: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in search_output.lines() {
        let hit: Value = serde_json::from_str(line).unwrap();
        let score = match hit.get("rerank_score") {
            Some(rerank) => rerank.as_f64().unwrap() + 1000.0,
            None => hit["score"].as_f64().unwrap(),
        };
        run.entry(hit["query_id"].as_str().unwrap().to_string())
            .or_default()
            .entry(hit["doc_id"].as_str().unwrap().to_string())
            .or_insert(score);
    }
    run
}

#[test]
fn every_figure_of_every_mode_matches_trec_eval_on_the_hits_search_prints() {
    let milvus = MilvusServer::start();
    let ws = ingested(&milvus);
    let cross_encoder = crate::rerank::cross_encoder().display().to_string();
    let rerank = [
        "--rerank",
        "--rerank-model",
        &cross_encoder,
        "--rerank-top",
        "10",
    ];
    let mut eval = EVAL.to_vec();
    eval.push("--json");
    eval.extend(rerank);
    let report: Value = serde_json::from_str(
        &Run(run_at_root(&ws, &milvus, &eval))
            .expect_code(0)
            .stdout(),
    )
    .unwrap();
    assert_eq!(report["pipeline"], "beir-eval");
    assert_eq!(
        report["queries"], 22,
        "24 queries, 22 with a relevant judgement"
    );
    assert_eq!(report["skipped"], 2);
    let runs = report["runs"].as_array().unwrap();
    let labels: Vec<(&str, bool)> = runs
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap(),
                r["reranked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("dense", false),
            ("dense", true),
            ("sparse", false),
            ("sparse", true),
            ("hybrid", false),
            ("hybrid", true)
        ]
    );
    for run in runs {
        let mode = run["mode"].as_str().unwrap();
        // eval fetches 4 chunks per document it scores (100): ask search for as many.
        let mut search = vec!["search", PIPELINE, "--queries", QUERIES, "--json"];
        search.extend(["--limit", "400", "--mode", mode]);
        if run["reranked"] == true {
            search.extend(rerank);
        }
        let hits = Run(run_at_root(&ws, &milvus, &search))
            .expect_code(0)
            .stdout();
        let run_file = ws.write("run.json", serde_json::to_string(&trec_run(&hits)).unwrap());
        let reference: Value = serde_json::from_slice(&python_script(
            "trec_reference.py",
            &[
                repo_root().join(QRELS).as_os_str(),
                run_file.as_os_str(),
                "10".as_ref(),
                "100".as_ref(),
            ],
        ))
        .unwrap();
        assert_eq!(reference["queries"], 22);
        let metrics = run["metrics"].as_object().unwrap();
        let names: Vec<&String> = metrics.keys().collect();
        assert_eq!(names, ["mrr@10", "ndcg@10", "recall@10", "recall@100"]);
        for (name, value) in metrics {
            let (ours, theirs) = (value.as_f64().unwrap(), reference[name].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() < 1e-9,
                "{mode} reranked={}: {name} {ours} vs trec_eval {theirs}",
                run["reranked"]
            );
        }
        assert!(run["ms_per_query"].as_f64().unwrap() > 0.0);
    }
    // The answers are obvious: dense search ranks every query's best document first.
    assert_eq!(runs[0]["metrics"]["mrr@10"], 1.0);
}

#[test]
fn many_queries_give_the_hits_each_query_gets_alone_and_the_table_lists_each_mode() {
    let milvus = MilvusServer::start();
    let ws = ingested(&milvus);
    let many = Run(run_at_root(
        &ws,
        &milvus,
        &[
            "search",
            PIPELINE,
            "--queries",
            QUERIES,
            "--json",
            "--limit",
            "3",
        ],
    ))
    .expect_code(0)
    .stdout();
    let mut expected = String::new();
    for line in std::fs::read_to_string(repo_root().join(QUERIES))
        .unwrap()
        .lines()
    {
        let query: Value = serde_json::from_str(line).unwrap();
        let text = query["text"].as_str().unwrap();
        let alone = Run(run_at_root(
            &ws,
            &milvus,
            &["search", PIPELINE, text, "--json", "--limit", "3"],
        ))
        .expect_code(0)
        .stdout();
        for hit in alone.lines() {
            let mut hit: serde_json::Map<String, Value> = serde_json::from_str(hit).unwrap();
            let mut line = serde_json::Map::new();
            line.insert("query_id".into(), query["_id"].clone());
            line.append(&mut hit);
            expected.push_str(&serde_json::to_string(&line).unwrap());
            expected.push('\n');
        }
    }
    // Keys in one order on both sides (serde_json's map sorts them).
    let normalised = |lines: &str| -> String {
        lines
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string() + "\n")
            .collect()
    };
    assert_eq!(many.lines().count(), 24 * 3);
    assert_output_eq!(normalised(&many), normalised(&expected));

    // A reader that stops early (`| head -1`) ends the search quietly: exit
    // 0, no panic, the first line as the whole output has it.
    let long = [
        "search",
        PIPELINE,
        "--queries",
        QUERIES,
        "--json",
        "--limit",
        "400",
    ];
    let whole = Run(run_at_root(&ws, &milvus, &long))
        .expect_code(0)
        .stdout();
    assert!(
        whole.len() > 2 << 16,
        "{} bytes: more than a pipe holds",
        whole.len()
    );
    let script = format!("set -o pipefail; \"$0\" {} | head -1", long.join(" "));
    let head = Run(std::process::Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_vecpipe")])
        .current_dir(repo_root())
        .env("MILVUS_URI", &milvus.uri)
        .env("VECPIPE_OUT", ws.path(""))
        .output()
        .unwrap())
    .expect_code(0);
    assert_eq!(head.stderr(), "");
    assert_eq!(
        head.stdout(),
        format!("{}\n", whole.lines().next().unwrap())
    );

    let table = Run(run_at_root(&ws, &milvus, &EVAL))
        .expect_code(0)
        .stdout();
    let json_args = [&EVAL[..], &["--json"]].concat();
    let json: Value = serde_json::from_str(
        &Run(run_at_root(&ws, &milvus, &json_args))
            .expect_code(0)
            .stdout(),
    )
    .unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "beir-eval: 22 queries scored, 2 skipped (no relevant document judged)"
    );
    assert_eq!(
        lines.next().unwrap(),
        "mode               ndcg@10   recall@10  recall@100      mrr@10   ms/query"
    );
    for (line, run) in lines.zip(json["runs"].as_array().unwrap()) {
        let m = &run["metrics"];
        let figures = format!(
            "{:<14}  {:>10.4}  {:>10.4}  {:>10.4}  {:>10.4}",
            run["mode"].as_str().unwrap(),
            m["ndcg@10"].as_f64().unwrap(),
            m["recall@10"].as_f64().unwrap(),
            m["recall@100"].as_f64().unwrap(),
            m["mrr@10"].as_f64().unwrap()
        );
        assert_eq!(&line[..figures.len()], figures, "{table}");
    }
    assert_eq!(table.lines().count(), 2 + 3, "{table}");
    assert_eq!(json["missing_relevant"], serde_json::json!([]));

    // Two typos in the qrels: those documents cannot be found, and eval says so.
    let qrels = std::fs::read_to_string(repo_root().join(QRELS)).unwrap();
    let typos = ws.write(
        "typos.tsv",
        qrels
            .replace("q1\tvolcano\t2", "q1\tvolcanoe\t2")
            .replace("q2\thoneybee\t2", "q2\thoney-bee\t2"),
    );
    let typos = typos.to_str().unwrap();
    let asked = std::fs::read_to_string(repo_root().join(QUERIES)).unwrap();
    let asked: Vec<Value> = asked
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let typos_text = std::fs::read_to_string(typos).unwrap();
    let relevant: std::collections::BTreeSet<&str> = typos_text
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|f| f[2].trim() != "0" && asked.iter().any(|q| q["_id"] == f[0]))
        .map(|f| f[1])
        .collect();
    let args = ["eval", PIPELINE, "--queries", QUERIES, "--qrels", typos];
    let with_typos = Run(run_at_root(
        &ws,
        &milvus,
        &[&args[..], &["--json"]].concat(),
    ))
    .expect_code(0);
    let report: Value = serde_json::from_str(&with_typos.stdout()).unwrap();
    assert_eq!(
        report["missing_relevant"],
        serde_json::json!(["honey-bee", "volcanoe"])
    );
    assert_eq!(
        with_typos.log_lines(),
        [format!(
            " WARN vecpipe::eval: 2 of the {} documents the qrels judge relevant are not in the collection (honey-bee, volcanoe): they cannot be found, so every figure is lower than the search deserves; check the qrels' document ids against the corpus' ids",
            relevant.len()
        )]
    );
    let table = Run(run_at_root(&ws, &milvus, &args))
        .expect_code(0)
        .stdout();
    assert_eq!(
        table.lines().next().unwrap(),
        "beir-eval: 22 queries scored, 2 skipped (no relevant document judged); 2 relevant documents not in the collection"
    );
}

#[test]
fn bad_input_and_an_unreachable_server_exit_2_naming_the_problem() {
    let mut milvus = MilvusServer::start();
    let ws = Workspace::new();
    Run(run_at_root(
        &ws,
        &milvus,
        &["bm25", "fit", "--pipeline", PIPELINE],
    ))
    .expect_code(0);
    let qrels = ws.write(
        "qrels.tsv",
        "query-id\tcorpus-id\tscore\nq1\tvolcano\t2\nq2\thoneybee\thigh\n",
    );
    let queries = ws.write(
        "queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"volcano\"}\n{\"_id\": \"q2\"}\n",
    );
    let (qrels, queries) = (qrels.display().to_string(), queries.display().to_string());
    let run = Run(run_at_root(
        &ws,
        &milvus,
        &["eval", PIPELINE, "--queries", QUERIES, "--qrels", &qrels],
    ))
    .expect_code(2);
    assert_output_eq!(
        run.stderr(),
        format!("error: {qrels}:3: score `high` is not an integer\n")
    );
    for command in ["eval", "search"] {
        let mut args = vec![command, PIPELINE, "--queries", &queries];
        if command == "eval" {
            args.extend(["--qrels", QRELS]);
        }
        let run = Run(run_at_root(&ws, &milvus, &args)).expect_code(2);
        assert_output_eq!(
            run.stderr(),
            format!("error: {queries}:2: query `q2` has no `text`\n")
        );
        assert_eq!(run.stdout(), "");
    }
    // Nothing ingested yet: the collection is missing, a set-up problem.
    for args in [&EVAL[..], &["search", PIPELINE, "volcano"][..]] {
        let run = Run(run_at_root(&ws, &milvus, args)).expect_code(2);
        assert_output_eq!(
            run.stderr(),
            format!(
                "error: collection `beir_mini` does not exist at {}; run the pipeline first (`vecpipe run FILE`) to fill it\n",
                milvus.uri
            )
        );
    }
    milvus.stop();
    let run = Run(run_at_root(&ws, &milvus, &EVAL)).expect_code(2);
    assert!(
        run.stderr().starts_with(&format!(
            "error: cannot connect to Milvus at {}",
            milvus.uri
        )),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "");
}

/// `eval` on the real Milvus 2.3 server, which serves dense search only:
/// the example set without its BM25 stage, every figure checked against
/// trec_eval fed with the hits `search --queries` prints (before, both
/// failed on 2.3: "search result primary-key or score field name is empty").
#[test]
fn eval_on_milvus_2_3_scores_dense_search_as_trec_eval_does() {
    let milvus = MilvusServer::start_kind(MilvusKind::Real);
    let ws = Workspace::new();
    let dense_only = std::fs::read_to_string(repo_root().join(PIPELINE))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("type: bm25"))
        .collect::<Vec<_>>()
        .join("\n")
        // Its paths are relative to pipelines/; this copy lives elsewhere.
        .replace(
            "path: data/",
            &format!("path: {}/pipelines/data/", repo_root().display()),
        );
    let pipeline = ws.write("dense-eval.yaml", dense_only);
    let pipeline = pipeline.to_str().unwrap();
    Run(run_at_root(&ws, &milvus, &["run", pipeline])).expect_code(0);
    let report: Value = serde_json::from_str(
        &Run(run_at_root(
            &ws,
            &milvus,
            &[
                "eval",
                pipeline,
                "--queries",
                QUERIES,
                "--qrels",
                QRELS,
                "--json",
            ],
        ))
        .expect_code(0)
        .stdout(),
    )
    .unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{report}");
    assert_eq!(runs[0]["mode"], "dense");
    let hits = Run(run_at_root(
        &ws,
        &milvus,
        &[
            "search",
            pipeline,
            "--queries",
            QUERIES,
            "--json",
            "--limit",
            "400",
        ],
    ))
    .expect_code(0)
    .stdout();
    let run_file = ws.write("run.json", serde_json::to_string(&trec_run(&hits)).unwrap());
    let reference: Value = serde_json::from_slice(&python_script(
        "trec_reference.py",
        &[
            repo_root().join(QRELS).as_os_str(),
            run_file.as_os_str(),
            "10".as_ref(),
            "100".as_ref(),
        ],
    ))
    .unwrap();
    for (name, value) in runs[0]["metrics"].as_object().unwrap() {
        let (ours, theirs) = (value.as_f64().unwrap(), reference[name].as_f64().unwrap());
        assert!(
            (ours - theirs).abs() < 1e-9,
            "{name} {ours} vs trec_eval {theirs}"
        );
    }
    assert_eq!(runs[0]["metrics"]["mrr@10"], 1.0);
}
