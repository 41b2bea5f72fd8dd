//! The IDX loader on the real MNIST files, and each corrupt case on copies of them.

mod common;

use std::io::Write;

use lab_core::data::native::{DataSource, candidate_dirs, load_dir};
use lab_core::data::{Checksums, DataError, DatasetKind, FILE_NAMES, Mnist};

fn real_files() -> [Vec<u8>; 4] {
    let dir = candidate_dirs(DatasetKind::Mnist, &DataSource::default())
        .into_iter()
        .find(|d| d.join(format!("{}.gz", FILE_NAMES[0])).is_file())
        .expect("real MNIST gz files in ../shared/mnist or LTH_DATA");
    FILE_NAMES.map(|name| std::fs::read(dir.join(format!("{name}.gz"))).unwrap())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    lab_core::data::maybe_gunzip("t", bytes.to_vec()).unwrap()
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

#[test]
fn fashion_mnist_from_debian_loads_when_installed() {
    let dir = std::path::Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        eprintln!("skipped: dataset-fashion-mnist is not installed (scripts/setup.sh installs it)");
        return;
    }
    let data = load_dir(DatasetKind::FashionMnist, dir).unwrap();
    assert_eq!(data.train.len() + data.validation.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
}
