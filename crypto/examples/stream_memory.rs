//! Encrypts and then decrypts a stream of N MiB (default 1024) without ever holding it whole,
//! and prints the process's peak resident memory (VmHWM). Used by `bench/crypto.sh` to show that
//! memory use does not grow with the size of a part.
//!
//! `cargo run --release -p sealpost-crypto --example stream_memory -- 1024`

use std::time::Instant;

use sealpost_crypto::{Dek, PartDecryptor, PartEncryptor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1024);
    let dek = Dek::generate();
    let msg = [1u8; 16];
    let piece = vec![0x42u8; 1 << 20];
    let mut enc = PartEncryptor::new(&dek, &msg, 1);
    let header = enc.header();
    let mut dec = PartDecryptor::new(&dek, &msg, 1, &header)?;
    let started = Instant::now();
    let mut opened = 0usize;
    // Sealed chunks go straight into the decryptor, as they would through the database: at no
    // time is more than a chunk or two of the stream in memory.
    for _ in 0..mib {
        for chunk in enc.push(&piece)? {
            if let Some(p) = dec.push(chunk)? {
                opened += p.len();
            }
        }
    }
    if let Some(p) = dec.push(enc.finish()?)? {
        opened += p.len();
    }
    opened += dec.finish()?.len();
    assert_eq!(opened, mib << 20);
    let secs = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: unknown");
    println!("streamed {mib} MiB (encrypt+decrypt) in {secs:.2} s; peak {hwm}");
    Ok(())
}
