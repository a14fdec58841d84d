//! Property tests: any plaintext, cut into pieces at any boundaries, round-trips; any single
//! corruption of the sealed stream is refused.

use proptest::prelude::*;
use sealpost_crypto::{CHUNK_LEN, Dek, PartDecryptor, PartEncryptor};

const MSG: [u8; 16] = [9; 16];

fn seal(dek: &Dek, data: &[u8], cuts: &[usize]) -> ([u8; 8], Vec<Vec<u8>>) {
    let mut enc = PartEncryptor::new(dek, &MSG, 5);
    let mut chunks = Vec::new();
    let mut rest = data;
    for &cut in cuts {
        let (a, b) = rest.split_at(cut.min(rest.len()));
        chunks.extend(enc.push(a).expect("push"));
        rest = b;
    }
    chunks.extend(enc.push(rest).expect("push"));
    let header = enc.header();
    chunks.push(enc.finish().expect("finish"));
    (header, chunks)
}

fn open(dek: &Dek, header: &[u8], chunks: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut dec = PartDecryptor::new(dek, &MSG, 5, header).ok()?;
    let mut out = Vec::new();
    for c in chunks {
        if let Some(p) = dec.push(c.as_slice()).ok()? {
            out.extend_from_slice(&p);
        }
    }
    out.extend_from_slice(&dec.finish().ok()?);
    Some(out)
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        0..300usize,
        (CHUNK_LEN - 300)..(CHUNK_LEN + 300),
        0..(4 * CHUNK_LEN + 7)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_size_any_cuts_round_trips(size in sizes(), cuts in proptest::collection::vec(0..(CHUNK_LEN + 200), 0..6), seed in any::<u8>()) {
        let dek = Dek::generate();
        let data: Vec<u8> = (0..size).map(|i| (i as u8) ^ seed).collect();
        let (header, chunks) = seal(&dek, &data, &cuts);
        prop_assert_eq!(chunks.len(), size.div_ceil(CHUNK_LEN).max(1));
        prop_assert_eq!(open(&dek, &header, &chunks), Some(data));
    }

    #[test]
    fn any_single_corruption_is_refused(size in sizes(), which in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dek = Dek::generate();
        let data = vec![0x5a; size];
        let (header, mut chunks) = seal(&dek, &data, &[]);
        let ci = which.index(chunks.len());
        let bi = pos.index(chunks[ci].len());
        chunks[ci][bi] ^= 1 << bit;
        prop_assert_eq!(open(&dek, &header, &chunks), None);
    }
}
