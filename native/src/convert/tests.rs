//! The chunk loop's own tests: cutting, row numbers, widening, a contract's budget.

use super::*;
use crate::contract::{Column, Contract};
use crate::parquet_file::Layout;

fn config(header: &[&str], outputs: Outputs, typing: Typing) -> Config {
    Config {
        header: header.iter().map(|h| h.to_string()).collect(),
        dialect: Dialect::new(b',', b'"', 1 << 20).unwrap(),
        outputs,
        typing,
        workers: 2,
        layout: Layout::default(),
    }
}

/// Feeds `data` in blocks of `step` bytes: the chunks' JSON Lines and the error, if any.
fn run(config: Config, data: &[u8], step: usize) -> (Converter, Vec<Chunk>, Option<Error>) {
    let mut converter = Converter::new(config).unwrap();
    let mut out = Vec::new();
    for block in data.chunks(step) {
        let (chunks, error) = converter.feed(block);
        out.extend(chunks);
        if error.is_some() {
            return (converter, out, error);
        }
    }
    let (chunks, error, _) = converter.finish();
    out.extend(chunks);
    (converter, out, error)
}

fn jsonl(chunks: &[Chunk]) -> String {
    let bytes: Vec<u8> = chunks
        .iter()
        .filter_map(|c| c.jsonl.clone())
        .flatten()
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn text_is_the_same_however_the_stream_is_cut() {
    let data = b"1,\"a\nb\"\n\n2,\"c\"\"\"\n3,\n";
    let want = "{\"x\":\"1\",\"y\":\"a\\nb\"}\n{\"x\":\"2\",\"y\":\"c\\\"\"}\n\
                {\"x\":\"3\",\"y\":\"\"}\n";
    for step in [1, 2, 5, 100] {
        let config = config(&["x", "y"], Outputs::JsonLines, Typing::Text);
        let (_, chunks, error) = run(config, data, step);
        assert_eq!(error, None);
        assert_eq!(jsonl(&chunks), want, "{step}");
    }
}

#[test]
fn a_bad_row_is_named_by_its_file_row_after_the_rows_before() {
    let data = b"1,a\n2,b\n\n3\n4,d\n";
    for step in [1, 3, 100] {
        let config = config(&["x", "y"], Outputs::JsonLines, Typing::Text);
        let (_, chunks, error) = run(config, data, step);
        let error = error.expect("a ragged row");
        assert_eq!(
            error.to_string(),
            "row 4: expected 2 fields as in the header, found 1"
        );
        // the chunks before the bad one are written (a chunk with a bad row is not)
        let written: usize = chunks.iter().map(|c| c.rows).sum();
        assert_eq!(written, if step == 100 { 0 } else { 2 }, "{step}");
    }
}

#[test]
fn a_late_value_widens_an_inferred_column_and_asks_for_a_restart() {
    let data = [&b"1,x\n".repeat(100)[..], b"1.5,y\n"].concat();
    let config = config(&["n", "s"], Outputs::Both, Typing::Infer);
    let (converter, _, error) = run(config, &data, 64);
    assert_eq!(error, None);
    assert!(converter.restart());
    assert_eq!(
        converter.widenings(),
        vec![Widening {
            column: 0,
            from: Kind::Int,
            to: Kind::Float,
            row: 102,
            value: "1.5".into()
        }]
    );
}

#[test]
fn a_contract_budget_is_counted_in_file_order() {
    let contract = Contract {
        columns: vec![Column {
            name: "n".into(),
            kind: Kind::Int,
            source: Some(0),
            checked: true,
            nullable: true,
            pattern: None,
            allowed: None,
        }],
        nulls: vec![Vec::new()],
        policy: Policy::DropRows {
            max_rejected_rows: 2,
        },
        report_limit: 1,
    };
    let typing = Typing::Contract(Arc::new(contract));
    let (_, chunks, error) = run(
        config(&["n"], Outputs::JsonLines, typing.clone()),
        b"1\nx\n2\ny\n",
        1,
    );
    assert_eq!(error, None);
    let rejected: Vec<u8> = chunks
        .iter()
        .filter_map(|c| c.rejected.clone())
        .flatten()
        .collect();
    assert_eq!(
        String::from_utf8(rejected).unwrap(),
        "{\"n\":\"x\",\"_row\":3,\"_errors\":\"n: not a valid int\"}\n\
         {\"n\":\"y\",\"_row\":5,\"_errors\":\"n: not a valid int\"}\n"
    );
    assert_eq!(jsonl(&chunks), "{\"n\":1}\n{\"n\":2}\n");
    let (_, _, error) = run(config(&["n"], Outputs::JsonLines, typing), b"x\ny\nz\n", 1);
    let Some(Error::Contract(violation)) = error else {
        panic!("the budget is exceeded");
    };
    assert_eq!((violation.bad_rows, violation.problems.len()), (3, 1));
    assert_eq!(violation.problems[0].row, 2);
    assert_eq!(
        violation.detail.as_deref(),
        Some("more than max_rejected_rows=2 rows rejected")
    );
}

#[test]
fn options_that_cannot_work_are_refused() {
    assert!(Dialect::new(b',', b',', 1).is_err());
    assert!(Dialect::new(b'\n', b'"', 1).is_err());
    let fixed = Typing::Fixed(vec![Kind::Int]);
    assert!(Converter::new(config(&["a", "b"], Outputs::Nothing, fixed)).is_err());
}
