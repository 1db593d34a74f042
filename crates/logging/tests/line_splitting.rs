//! Property tests of line splitting: whatever the input and however `read` chunks it, the
//! records give back every byte in order, none is longer than the limit, and they are the
//! same records as for the input in one piece.

use std::time::SystemTime;

use ctrd_logging::{MAX_RECORD, OwnedRecord, Splitter, Stream};
use proptest::prelude::*;

fn split(input: &[u8], cuts: &[usize], limit: usize) -> Vec<OwnedRecord> {
    let mut splitter = Splitter::with_limit(Stream::Stdout, limit);
    let mut out = Vec::new();
    let mut emit = |r: ctrd_logging::Record<'_>| out.push(OwnedRecord::from(r));
    let now = SystemTime::UNIX_EPOCH;
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts {
        splitter.push(&input[at..cut.max(at)], now, &mut emit);
        at = cut.max(at);
    }
    splitter.push(&input[at..], now, &mut emit);
    splitter.finish(now, &mut emit);
    out
}

fn joined(records: &[OwnedRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&r.bytes);
        if !r.partial {
            out.push(b'\n');
        }
    }
    out
}

/// Bytes with many newlines and long runs without one.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            1 => Just(b'\n'),
        ],
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn records_give_back_every_byte_whatever_the_chunks(
        data in input(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        limit in 1usize..40,
    ) {
        let records = split(&data, &cuts, limit);
        prop_assert_eq!(joined(&records), data.clone());
        prop_assert_eq!(&records, &split(&data, &[], limit));
        for (i, r) in records.iter().enumerate() {
            prop_assert!(r.bytes.len() <= limit);
            prop_assert!(!r.bytes.contains(&b'\n'));
            // A partial record is a full-limit piece of a long line, or the very end.
            if r.partial && i + 1 != records.len() {
                prop_assert_eq!(r.bytes.len(), limit);
            }
        }
    }
}

#[test]
fn a_trailing_fragment_comes_out_at_the_end() {
    let records = split(b"one\ntwo", &[2, 5], MAX_RECORD);
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[1].bytes.as_slice(), records[1].partial),
        (&b"two"[..], true)
    );
}

#[test]
fn long_lines_become_16_kib_partial_records() {
    let mut line = vec![b'x'; 3 * MAX_RECORD + 5];
    line.push(b'\n');
    let records = split(&line, &[1000, 20_000], MAX_RECORD);
    let shape: Vec<(usize, bool)> = records.iter().map(|r| (r.bytes.len(), r.partial)).collect();
    assert_eq!(
        shape,
        vec![
            (MAX_RECORD, true),
            (MAX_RECORD, true),
            (MAX_RECORD, true),
            (5, false)
        ]
    );
    // A line of exactly the limit is one whole record.
    let mut exact = vec![b'y'; MAX_RECORD];
    exact.push(b'\n');
    let records = split(&exact, &[MAX_RECORD], MAX_RECORD);
    assert_eq!(records.len(), 1);
    assert!(!records[0].partial);
}
