//! R-AT-2: verifying an API token costs the same whether its id is unknown or its secret is
//! wrong (and when it is right): one HMAC-SHA256 per pepper and a constant-time comparison.
//! Run: `cargo bench -p portcullis-core --bench api_tokens` and compare the three lines (and
//! the two with a rotation in progress).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::hmac;
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::apitoken::{self, Pepper};

fn bench(c: &mut Criterion) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"pepper-pepper-pepper-pepper-pepp");
    let old = hmac::Key::new(hmac::HMAC_SHA256, b"previous-previous-previous-previ");
    let minted = apitoken::mint(&key).unwrap();
    let secret = apitoken::parse(&minted.plaintext)
        .unwrap()
        .secret
        .to_string();
    let wrong = apitoken::mint(&key).unwrap();
    let wrong_secret = apitoken::parse(&wrong.plaintext)
        .unwrap()
        .secret
        .to_string();
    let stored = minted.hash;
    for (label, pepper) in [
        (
            "",
            Pepper {
                current: &key,
                previous: None,
            },
        ),
        (
            " (rotation)",
            Pepper {
                current: &key,
                previous: Some(&old),
            },
        ),
    ] {
        c.bench_function(&format!("api token: unknown id{label}"), |b| {
            b.iter(|| apitoken::verify(&pepper, std::hint::black_box(&secret), None))
        });
        c.bench_function(&format!("api token: wrong secret{label}"), |b| {
            b.iter(|| apitoken::verify(&pepper, std::hint::black_box(&wrong_secret), Some(&stored)))
        });
        c.bench_function(&format!("api token: right secret{label}"), |b| {
            b.iter(|| apitoken::verify(&pepper, std::hint::black_box(&secret), Some(&stored)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
