//! The IDX loader on the real MNIST files, and each corrupt case on copies of them.

mod common;

use std::io::Write;

use lab_core::base::data::native::{DataSource, candidate_dirs, load_dir};
use lab_core::base::data::{Checksums, DataError, DatasetKind, FILE_NAMES, Mnist};

fn real_files() -> [Vec<u8>; 4] {
    let dir = candidate_dirs(DatasetKind::Mnist, &DataSource::default())
        .into_iter()
        .find(|d| d.join(format!("{}.gz", FILE_NAMES[0])).is_file())
        .expect("real MNIST gz files in ../shared/mnist or LTH_DATA");
    FILE_NAMES.map(|name| std::fs::read(dir.join(format!("{name}.gz"))).unwrap())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    lab_core::base::data::maybe_gunzip("t", bytes.to_vec()).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2_writer();
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn flate2_writer() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

#[test]
fn real_mnist_loads_with_the_lth_split() {
    let data = common::mnist();
    assert_eq!(data.train.len(), 55_000);
    assert_eq!(data.validation.len(), 5_000);
    assert_eq!(data.test.len(), 10_000);
    // The split is a fixed permutation: every class is in the validation set in
    // roughly its share (MNIST has 5,421 to 6,742 training images per class).
    let mut counts = [0usize; 10];
    for &l in &data.validation.labels {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (400..=620).contains(&c)),
        "{counts:?}"
    );
    // Deterministic: a second load gives the same validation images.
    let again =
        Mnist::from_file_bytes(DatasetKind::Mnist, real_files(), Checksums::Verify).unwrap();
    assert_eq!(again.validation.labels, data.validation.labels);
    assert_eq!(again.validation.images, data.validation.images);
}

#[test]
fn raw_and_gzipped_files_load_alike() {
    let files = real_files();
    let raw = files.clone().map(|f| gunzip(&f));
    let a = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Verify).unwrap();
    let b = Mnist::from_file_bytes(DatasetKind::Mnist, raw, Checksums::Verify).unwrap();
    assert_eq!(a.test.labels, b.test.labels);
}

#[test]
fn each_corrupt_file_gets_its_own_error() {
    let good = real_files();
    let raw_test_images = gunzip(&good[2]);

    // Truncated gzip stream.
    let mut files = good.clone();
    files[1] = files[1][..files[1].len() / 2].to_vec();
    let err = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Verify).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");

    // Truncated IDX content (gzip intact).
    let mut files = good.clone();
    files[2] = gzip(&raw_test_images[..raw_test_images.len() - 100]);
    let err = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Skip).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");

    // One flipped pixel: the checksum catches it.
    let mut flipped = raw_test_images.clone();
    flipped[5000] ^= 0xff;
    let mut files = good.clone();
    files[2] = gzip(&flipped);
    let err = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Verify).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte"));

    // Wrong magic number.
    let mut bad_magic = raw_test_images.clone();
    bad_magic[2] = 0x0c;
    let mut files = good.clone();
    files[2] = bad_magic;
    let err = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Skip).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { .. }), "{err}");

    // Image/label count mismatch: test labels cut to 9,999 (header fixed up).
    let mut labels = gunzip(&good[3]);
    labels.pop();
    labels[4..8].copy_from_slice(&9_999u32.to_be_bytes());
    let mut files = good.clone();
    files[3] = labels;
    let err = Mnist::from_file_bytes(DatasetKind::Mnist, files, Checksums::Skip).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                image_count: 10_000,
                label_count: 9_999,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_directory_without_the_files_says_where_it_looked() {
    let dir = std::env::temp_dir().join(format!("lth-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = load_dir(DatasetKind::Mnist, &dir).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn fashion_mnist() -> lab_core::base::data::Mnist {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        dir.is_dir(),
        "Fashion-MNIST is missing: install Debian's dataset-fashion-mnist (scripts/setup.sh core)"
    );
    load_dir(DatasetKind::FashionMnist, dir).unwrap()
}

#[test]
fn fashion_mnist_from_debian_loads() {
    let data = fashion_mnist();
    assert_eq!(data.train.len() + data.validation.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
}

/// Each data set is standardised with its own pixel statistics, measured here on its 60,000
/// training images.
#[test]
fn each_data_set_is_standardised_with_its_own_statistics() {
    let check = |data: &lab_core::base::data::Mnist| {
        let (mut sum, mut squares, mut n) = (0.0f64, 0.0f64, 0.0f64);
        for split in [&data.train, &data.validation] {
            for &p in &split.images {
                let x = f64::from(p) / 255.0;
                sum += x;
                squares += x * x;
                n += 1.0;
            }
        }
        let mean = sum / n;
        let std = (squares / n - mean * mean).sqrt();
        let stats = data.kind.pixel_stats();
        assert!(
            (f64::from(stats.mean) - mean).abs() < 5e-4,
            "{:?}: mean {mean}",
            data.kind
        );
        assert!(
            (f64::from(stats.std) - std).abs() < 5e-4,
            "{:?}: std {std}",
            data.kind
        );
        assert_eq!(data.train.pixels, stats);
        assert_eq!(data.test.pixels, stats);
    };
    check(&fashion_mnist());
    check(common::mnist());
}

/// Evaluation subsets are seeded, class-stratified random draws, not the first N images.
#[test]
fn evaluation_subsets_are_stratified_random_draws() {
    let data = common::mnist();
    let limited = data.limited(Some(500), Some(1000));
    assert_eq!(limited.train.len(), 500);
    assert_eq!(limited.test.len(), 1000);
    assert_eq!(limited.validation.len(), 1000);
    let counts = |labels: &[u8]| {
        let mut c = [0usize; 10];
        for &l in labels {
            c[l as usize] += 1;
        }
        c
    };
    let full = counts(&data.test.labels);
    let sub = counts(&limited.test.labels);
    for class in 0..10 {
        let share = 1000.0 * full[class] as f64 / 10_000.0;
        assert!(
            (sub[class] as f64 - share).abs() <= 1.0,
            "class {class}: {} vs {share}",
            sub[class]
        );
    }
    assert_ne!(
        limited.test.labels,
        data.test.take(1000).labels,
        "the first 1,000 images"
    );
    // The same draw every time.
    assert_eq!(
        data.limited(None, Some(1000)).test.images,
        limited.test.images
    );
}
