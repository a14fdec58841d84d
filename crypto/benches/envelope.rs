//! Throughput of streaming part encryption and decryption (64 MiB part), and the cost of one
//! Argon2id passphrase derivation. Run with `bench/crypto.sh` to compare against OpenSSL.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealpost_crypto::{
    Dek, PartDecryptor, PartEncryptor, Passphrase, PassphraseKey, PassphraseSalt,
};
use std::hint::black_box;

const PART: usize = 64 << 20;
const MSG: [u8; 16] = [1; 16];

fn seal(dek: &Dek, plaintext: &[u8]) -> ([u8; 8], Vec<Vec<u8>>) {
    let mut enc = PartEncryptor::new(dek, &MSG, 1);
    let header = enc.header();
    let mut chunks = enc.push(plaintext).expect("push");
    chunks.push(enc.finish().expect("finish"));
    (header, chunks)
}

fn stream(c: &mut Criterion) {
    let dek = Dek::generate();
    let plaintext = vec![0x42u8; PART];
    let mut group = c.benchmark_group("part_64MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(PART as u64));
    group.bench_function("encrypt", |b| {
        b.iter(|| {
            // Fed in 1 MiB pieces, as a network or database reader would.
            let mut enc = PartEncryptor::new(&dek, &MSG, 1);
            let mut n = 0;
            for piece in plaintext.chunks(1 << 20) {
                n += enc.push(piece).expect("push").len();
            }
            black_box((n, enc.finish().expect("finish")))
        })
    });
    let (header, chunks) = seal(&dek, &plaintext);
    group.bench_function("decrypt", |b| {
        b.iter_batched(
            || chunks.clone(),
            |chunks| {
                let mut dec = PartDecryptor::new(&dek, &MSG, 1, &header).expect("header");
                let mut n = 0;
                for c in chunks {
                    n += dec.push(c).expect("opens").map_or(0, |p| p.len());
                }
                black_box(n + dec.finish().expect("last").len())
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn argon2(c: &mut Criterion) {
    let passphrase = Passphrase::new("correct horse battery staple".into());
    let salt = PassphraseSalt::generate();
    let mut group = c.benchmark_group("passphrase");
    group.sample_size(20);
    group.bench_function("argon2id_19MiB_t2_p1", |b| {
        b.iter(|| black_box(PassphraseKey::derive(&passphrase, &salt).expect("derive")))
    });
    group.finish();
}

criterion_group!(benches, stream, argon2);
criterion_main!(benches);
