//! Relevance judgements: BEIR's `qrels/*.tsv` (`query-id`, `corpus-id`,
//! `score`, a header line) or TREC's four columns (`qid 0 docid grade`).

use std::collections::HashMap;
use std::path::Path;

use super::metrics::Judgements;
use crate::search::{LineFileError, parse_lines};

/// Query id → its judgements.
pub type Qrels = HashMap<String, Judgements>;

/// Reads a qrels file. A first line whose grade is not a number is a header;
/// columns are split on tabs, or on runs of spaces when there is no tab.
pub fn read_qrels(path: &Path) -> Result<Qrels, LineFileError> {
    let lines = parse_lines(path, "judgements", |index, line| {
        let columns: Vec<&str> = if line.contains('\t') {
            line.split('\t').map(str::trim).collect()
        } else {
            line.split_whitespace().collect()
        };
        let (query, doc, grade) = match columns.as_slice() {
            [query, doc, grade] | [query, _, doc, grade] => (*query, *doc, *grade),
            _ => {
                return Err(format!(
                    "expected `query-id<TAB>corpus-id<TAB>score` (or TREC's 4 columns), found {} column(s)",
                    columns.len()
                ));
            }
        };
        match grade.parse::<i64>() {
            Ok(grade) => Ok(Some((query.to_string(), doc.to_string(), grade))),
            Err(_) if index == 0 => Ok(None), // the header
            Err(_) => Err(format!("score `{grade}` is not an integer")),
        }
    })?;
    let mut qrels = Qrels::new();
    for (query, doc, grade) in lines {
        qrels.entry(query).or_default().insert(doc, grade);
    }
    Ok(qrels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_beir_with_its_header_and_trec_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.tsv");
        std::fs::write(
            &path,
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td1\t0\n",
        )
        .unwrap();
        let qrels = read_qrels(&path).unwrap();
        assert_eq!(qrels.len(), 2);
        assert_eq!(
            qrels["q1"],
            Judgements::from([("d1".into(), 1), ("d2".into(), 2)])
        );
        assert_eq!(qrels["q2"], Judgements::from([("d1".into(), 0)]));
        std::fs::write(&path, "q1 0 d1 1\nq1 0 d3 -1\n").unwrap();
        assert_eq!(
            read_qrels(&path).unwrap()["q1"],
            Judgements::from([("d1".into(), 1), ("d3".into(), -1)])
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.tsv");
        std::fs::write(&path, "query-id\tcorpus-id\tscore\nq1\td1\thigh\n").unwrap();
        assert_eq!(
            read_qrels(&path).unwrap_err().to_string(),
            format!("{}:2: score `high` is not an integer", path.display())
        );
        std::fs::write(&path, "q1\td1\n").unwrap();
        assert_eq!(
            read_qrels(&path).unwrap_err().to_string(),
            format!(
                "{}:1: expected `query-id<TAB>corpus-id<TAB>score` (or TREC's 4 columns), found 2 column(s)",
                path.display()
            )
        );
        std::fs::write(&path, "query-id\tcorpus-id\tscore\n").unwrap();
        assert_eq!(
            read_qrels(&path).unwrap_err().to_string(),
            format!("{}: no judgements", path.display())
        );
    }
}
