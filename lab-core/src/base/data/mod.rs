//! Data: MNIST-format IDX files, checksums, the LTH train/validation split.
//!
//! Everything here works on bytes, so it runs unchanged in wasm32 (the page fetches the
//! files). Finding files on disk and downloading them lives in [`native`].

pub mod error;
pub mod idx;
#[cfg(feature = "native")]
pub mod native;

use serde::{Deserialize, Serialize};

use crate::base::rng::Rng;
pub use error::DataError;
pub use idx::{IdxArray, maybe_gunzip, md5_hex, parse_idx};

/// Which MNIST-format data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    #[default]
    Mnist,
    FashionMnist,
}

/// The four files of an MNIST-format data set.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl DatasetKind {
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// md5 of each decompressed file, in [`FILE_NAMES`] order. Checking the content rather
    /// than the gzip container lets recompressed copies (Debian's, ours) pass.
    pub fn content_md5(self) -> [&'static str; 4] {
        match self {
            DatasetKind::Mnist => [
                "6bbc9ace898e44ae57da46a324031adb",
                "a25bea736e30d166cdddb491f175f624",
                "2646ac647ad5339dbf082846283269ea",
                "27ae3e4e09519cfbb04c329615203637",
            ],
            // Computed from Debian's dataset-fashion-mnist.
            DatasetKind::FashionMnist => [
                "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                "9018921c3c673c538a1fc5bad174d6f9",
                "8181f5470baa50b63fa0f6fddb340f0a",
                "15d484375f8d13e6eb1aabb0c3f46965",
            ],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The data set of a [`Self::name`] (the one place names are read).
    pub fn parse(name: &str) -> Option<DatasetKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Mean and standard deviation of the pixel intensities (scaled to [0, 1]) of the data
    /// set's 60,000 training images; inputs are standardised with its own values.
    pub fn pixel_stats(self) -> PixelStats {
        match self {
            // open_lth's and torchvision's values for MNIST.
            DatasetKind::Mnist => PixelStats {
                mean: 0.1307,
                std: 0.3081,
            },
            // Computed from the 60,000 training images (checked by a test on the real files).
            DatasetKind::FashionMnist => PixelStats {
                mean: 0.2860,
                std: 0.3530,
            },
        }
    }
}

/// What inputs are standardised with: x = (intensity − mean) / std.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelStats {
    pub mean: f32,
    pub std: f32,
}

impl Default for PixelStats {
    fn default() -> Self {
        DatasetKind::Mnist.pixel_stats()
    }
}

impl PixelStats {
    /// The network's input for a pixel intensity in [0, 1].
    pub fn standardise(&self, intensity: f32) -> f32 {
        (intensity - self.mean) / self.std
    }

    /// The inputs of the 256 grey levels.
    pub fn table(&self) -> [f32; 256] {
        std::array::from_fn(|v| self.standardise(v as f32 / 255.0))
    }
}

/// Checks one decompressed file against its canonical md5.
pub fn verify_checksum(kind: DatasetKind, index: usize, raw: &[u8]) -> Result<(), DataError> {
    let expected = kind.content_md5()[index];
    let actual = md5_hex(raw);
    if actual != expected {
        return Err(DataError::Checksum {
            file: FILE_NAMES[index].to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Images (row-major 28×28 grey levels) with labels 0–9.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    /// The data set's pixel statistics, which its inputs are standardised with.
    pub pixels: PixelStats,
}

pub const IMAGE_SIDE: usize = 28;
pub const IMAGE_SIZE: usize = IMAGE_SIDE * IMAGE_SIDE;
pub const CLASSES: usize = 10;

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices`, scaled and standardised as the networks see them,
    /// `[indices.len()][784]` row-major.
    pub fn standardised(&self, indices: &[usize]) -> Vec<f32> {
        let table = self.pixels.table();
        let mut pixels = Vec::with_capacity(indices.len() * IMAGE_SIZE);
        for &i in indices {
            pixels.extend(self.image(i).iter().map(|&p| table[p as usize]));
        }
        pixels
    }

    pub fn image(&self, index: usize) -> &[u8] {
        &self.images[index * IMAGE_SIZE..(index + 1) * IMAGE_SIZE]
    }

    /// The items at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Split {
        let mut images = Vec::with_capacity(indices.len() * IMAGE_SIZE);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Split {
            images,
            labels,
            pixels: self.pixels,
        }
    }

    /// A seeded, class-stratified random subset of `n` items (in split order): each class
    /// keeps its share of the split (largest remainders), so a subset is neither the easy
    /// first images nor short of a class.
    pub fn stratified(&self, n: usize, seed: u64) -> Split {
        if n >= self.len() {
            return self.clone();
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); CLASSES];
        for (i, &label) in self.labels.iter().enumerate() {
            by_class[label as usize].push(i);
        }
        let total = self.len() as f64;
        let exact: Vec<f64> = by_class
            .iter()
            .map(|c| n as f64 * c.len() as f64 / total)
            .collect();
        let mut quota: Vec<usize> = exact.iter().map(|q| q.floor() as usize).collect();
        let mut by_remainder: Vec<usize> = (0..CLASSES).collect();
        by_remainder.sort_by(|&a, &b| {
            (exact[b] - exact[b].floor())
                .total_cmp(&(exact[a] - exact[a].floor()))
                .then(a.cmp(&b))
        });
        let short = n - quota.iter().sum::<usize>();
        for &class in by_remainder.iter().take(short) {
            quota[class] += 1;
        }
        let mut chosen = Vec::with_capacity(n);
        for (class, members) in by_class.iter_mut().enumerate() {
            Rng::for_purpose(seed, &format!("stratified/class-{class}")).shuffle(members);
            chosen.extend_from_slice(&members[..quota[class].min(members.len())]);
        }
        chosen.sort_unstable();
        self.select(&chosen)
    }

    /// The first `n` items (or all).
    pub fn take(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * IMAGE_SIZE].to_vec(),
            labels: self.labels[..n].to_vec(),
            pixels: self.pixels,
        }
    }

    /// Builds a split from an images array and a labels array, checking they agree.
    pub fn from_idx(
        images_name: &str,
        images: IdxArray,
        labels_name: &str,
        labels: IdxArray,
    ) -> Result<Split, DataError> {
        if images.dims.len() != 3 || images.dims[1] != IMAGE_SIDE || images.dims[2] != IMAGE_SIDE {
            return Err(DataError::BadShape {
                file: images_name.to_string(),
                dims: images.dims,
            });
        }
        if labels.dims.len() != 1 {
            return Err(DataError::BadShape {
                file: labels_name.to_string(),
                dims: labels.dims,
            });
        }
        if images.len() != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_name.to_string(),
                labels: labels_name.to_string(),
                image_count: images.len(),
                label_count: labels.len(),
            });
        }
        if let Some(&label) = labels.data.iter().find(|&&l| l as usize >= CLASSES) {
            return Err(DataError::BadLabel {
                file: labels_name.to_string(),
                label,
            });
        }
        Ok(Split {
            images: images.data,
            labels: labels.data,
            pixels: PixelStats::default(),
        })
    }
}

/// The LTH protocol's three splits: 55,000 train, 5,000 validation, 10,000 test.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub kind: DatasetKind,
    pub train: Split,
    pub validation: Split,
    pub test: Split,
}

/// Images held out of the training set for validation (LTH paper: 5,000).
pub const VALIDATION_SIZE: usize = 5_000;
/// Training images after the hold-out, for MNIST and Fashion-MNIST alike (60,000 − 5,000).
pub const TRAIN_SIZE: usize = 60_000 - VALIDATION_SIZE;
/// The validation split is a fixed permutation of the 60,000 training images, the same for
/// every run and seed, so results of different runs are comparable.
const SPLIT_SEED: u64 = 0x0005_eed0_f1e7;
/// Evaluation subsets are drawn with this seed, the same for every run.
const EVAL_SUBSET_SEED: u64 = 0x000e_7a15_0b5e;

/// Whether to check the canonical checksums when loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksums {
    Verify,
    /// For subsets and synthetic test files.
    Skip,
}

impl Mnist {
    /// Builds the data set from the four files' bytes (gzipped or raw), in [`FILE_NAMES`]
    /// order. This is the entry point for browsers, which fetch the bytes themselves.
    pub fn from_file_bytes(
        kind: DatasetKind,
        files: [Vec<u8>; 4],
        checksums: Checksums,
    ) -> Result<Mnist, DataError> {
        let mut arrays = Vec::with_capacity(4);
        for (index, container) in files.into_iter().enumerate() {
            let name = FILE_NAMES[index];
            let raw = maybe_gunzip(name, container)?;
            if checksums == Checksums::Verify {
                verify_checksum(kind, index, &raw)?;
            }
            arrays.push(parse_idx(name, &raw)?);
        }
        let test_labels = arrays.pop().expect("four arrays");
        let test_images = arrays.pop().expect("four arrays");
        let train_labels = arrays.pop().expect("four arrays");
        let train_images = arrays.pop().expect("four arrays");
        let full_train = Split::from_idx(FILE_NAMES[0], train_images, FILE_NAMES[1], train_labels)?;
        let test = Split::from_idx(FILE_NAMES[2], test_images, FILE_NAMES[3], test_labels)?;
        Ok(Self::split(kind, full_train, test))
    }

    /// Holds out [`VALIDATION_SIZE`] training images (or a tenth of a small set).
    pub fn split(kind: DatasetKind, mut full_train: Split, mut test: Split) -> Mnist {
        full_train.pixels = kind.pixel_stats();
        test.pixels = kind.pixel_stats();
        let n = full_train.len();
        let held_out = if n > 2 * VALIDATION_SIZE {
            VALIDATION_SIZE
        } else {
            n / 10
        };
        let order = Rng::new(SPLIT_SEED).permutation(n);
        let validation = full_train.select(&order[..held_out]);
        let mut train_indices = order[held_out..].to_vec();
        // Keep the training set in file order: the per-run shuffle is the trainer's job.
        train_indices.sort_unstable();
        let train = full_train.select(&train_indices);
        Mnist {
            kind,
            train,
            validation,
            test,
        }
    }

    /// What an experiment's `train_subset` and `eval_subset` select (`None` = all): the
    /// first `train` training images, and a fixed class-stratified random `eval` of the
    /// validation and of the test images (the same for every run, so runs compare).
    pub fn limited(&self, train: Option<usize>, eval: Option<usize>) -> Mnist {
        let eval = eval.unwrap_or(usize::MAX);
        Mnist {
            kind: self.kind,
            train: self.train.take(train.unwrap_or(usize::MAX)),
            validation: self.validation.stratified(eval, EVAL_SUBSET_SEED),
            test: self.test.stratified(eval, EVAL_SUBSET_SEED),
        }
    }

    /// A smaller copy (first `train`/`validation`/`test` items), for quick tests.
    pub fn subset(&self, train: usize, validation: usize, test: usize) -> Mnist {
        Mnist {
            kind: self.kind,
            train: self.train.take(train),
            validation: self.validation.take(validation),
            test: self.test.take(test),
        }
    }
}
