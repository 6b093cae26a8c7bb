//! Fingerprint throughput on a 50 KiB HTML page fed in 16 KiB chunks (as reads arrive):
//! each fingerprint alone, all together, and the calibration simhash with a removal.
//! Criterion reports MiB/s; the floor is `memchr`-free byte counting (`counts`).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use volley::fingerprint::{Fingerprinter, Removal, Want};

/// A 50 KiB page of HTML with the usual mix of tags, attributes, text and numbers.
fn page() -> Vec<u8> {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Catalogue</title>\
         <link rel=\"stylesheet\" href=\"/static/site.css\"></head><body>\n",
    );
    let mut i = 0u32;
    while s.len() < 50 * 1024 - 200 {
        s.push_str(&format!(
            "<div class=\"item\" id=\"item-{i}\"><a href=\"/products/{i}\">Widget number {i}</a> \
             <span class=\"price\">{}.{:02} EUR</span><p>Sturdy, light and made to last; ships \
             in {} days from the warehouse near the harbour.</p></div>\n",
            10 + i % 90,
            i % 100,
            1 + i % 7
        ));
        i += 1;
    }
    s.push_str("</body></html>\n");
    s.into_bytes()
}

fn run(body: &[u8], want: Want, removal: &Removal) {
    let mut f = Fingerprinter::with_removal(want, removal.clone());
    for c in body.chunks(16 * 1024) {
        f.update(c);
    }
    black_box(f.finish());
}

fn fingerprint(c: &mut Criterion) {
    let body = page();
    let mut g = c.benchmark_group("fingerprint_50k_html");
    g.throughput(Throughput::Bytes(body.len() as u64));
    let none = Removal::none();
    let cases = [
        (
            "counts",
            Want {
                counts: true,
                ..Want::default()
            },
        ),
        (
            "sha256",
            Want {
                sha256: true,
                ..Want::default()
            },
        ),
        (
            "simhash",
            Want {
                simhash: true,
                ..Want::default()
            },
        ),
        (
            "all",
            Want {
                counts: true,
                sha256: true,
                simhash: true,
            },
        ),
    ];
    for (name, want) in cases {
        g.bench_function(name, |b| b.iter(|| run(&body, want, &none)));
    }
    let removal = Removal::limited("products", 1);
    g.bench_function("simhash_with_removal", |b| {
        b.iter(|| {
            run(
                &body,
                Want {
                    simhash: true,
                    ..Want::default()
                },
                &removal,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, fingerprint);
criterion_main!(benches);
