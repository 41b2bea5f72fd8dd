//! Mask overlap: do two pruning runs keep the same connections?
//!
//! The Jaccard overlap |a ∧ b| / |a ∨ b| of the kept weights, overall and per layer, and the
//! overlap two *independent random* masks with the same per-layer counts would have on average
//! (chance), which is what an overlap should be read against: at 10% density two unrelated
//! masks already share about 5% by Jaccard. IMP's masks are nested (each round keeps a subset
//! of the last), so between its rounds j < k the overlap is exactly |m_k| / |m_j|.

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;
use crate::base::similarity::{Overlap, OverlapError, overlap};

/// Pairwise overlaps of labelled masks: `matrix[i][j]` is the overlap of masks i and j.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlapMatrix {
    pub labels: Vec<String>,
    /// Fraction of weights each mask keeps.
    pub densities: Vec<f64>,
    pub matrix: Vec<Vec<Overlap>>,
}

pub fn overlap_matrix(masks: &[(String, Mask)]) -> Result<OverlapMatrix, OverlapError> {
    let matrix = masks
        .iter()
        .map(|(_, a)| {
            masks
                .iter()
                .map(|(_, b)| overlap(a, b))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OverlapMatrix {
        labels: masks.iter().map(|(label, _)| label.clone()).collect(),
        densities: masks.iter().map(|(_, m)| m.density()).collect(),
        matrix,
    })
}

impl OverlapMatrix {
    /// A markdown table of the overall Jaccard overlaps, with chance in brackets.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| | density |");
        for label in &self.labels {
            out.push_str(&format!(" {label} |"));
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|".repeat(self.labels.len()));
        out.push('\n');
        for (i, row) in self.matrix.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {:.2}% |",
                self.labels[i],
                100.0 * self.densities[i]
            ));
            for cell in row {
                out.push_str(&format!(
                    " {:.3} ({:.3}) |",
                    cell.total.jaccard, cell.total.chance
                ));
            }
            out.push('\n');
        }
        out
    }
}

impl OverlapMatrix {
    /// The matrix as an SVG heat map: each cell's overall Jaccard overlap (darker = more
    /// shared), the number, and chance below it.
    pub fn to_svg(&self) -> String {
        let n = self.labels.len();
        let (cell, left, top) = (84usize, 220usize, 40usize);
        let (width, height) = (left + n * cell + 20, top + n * cell + 160);
        let escape = |text: &str| {
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"{left}\" y=\"24\" \
             font-size=\"15\">Mask overlap (Jaccard of kept weights; chance in brackets)</text>\n"
        );
        for (i, row) in self.matrix.iter().enumerate() {
            let y = top + i * cell;
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ({:.1}%)</text>\n",
                left - 8,
                y + cell / 2 + 4,
                escape(&self.labels[i]),
                100.0 * self.densities[i]
            ));
            for (j, overlap) in row.iter().enumerate() {
                let x = left + j * cell;
                let shade = (255.0 * (1.0 - overlap.total.jaccard)).round() as u8;
                let ink = if overlap.total.jaccard > 0.5 {
                    "#fff"
                } else {
                    "#000"
                };
                svg.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" \
                     fill=\"rgb({shade},{shade},255)\" stroke=\"#888\"/>\n\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\">{:.3}</text>\n\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\" \
                     font-size=\"10\">({:.3})</text>\n",
                    x + cell / 2,
                    y + cell / 2,
                    overlap.total.jaccard,
                    x + cell / 2,
                    y + cell / 2 + 14,
                    overlap.total.chance
                ));
            }
        }
        for (j, label) in self.labels.iter().enumerate() {
            let x = left + j * cell + cell / 2;
            let y = top + n * cell + 10;
            svg.push_str(&format!(
                "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(45 {x} {y})\">{}</text>\n",
                escape(label)
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::mask::LayerMask;
    use crate::base::similarity::{chance_jaccard, hamming};

    fn mask(layers: &[(&str, &[bool])]) -> Mask {
        Mask {
            layers: layers
                .iter()
                .map(|(name, keep)| {
                    let mut layer = LayerMask::dense(name, &[keep.len()]);
                    layer.keep = keep.to_vec();
                    layer
                })
                .collect(),
        }
    }

    #[test]
    fn hamming_of_hand_made_masks() {
        let (t, f) = (true, false);
        let a = mask(&[("x", &[t, t, f, f, t]), ("y", &[t, f])]);
        let b = mask(&[("x", &[t, f, t, f, t]), ("y", &[f, f])]);
        // x flips at 1 and 2, y at 0: 3 of 7 positions.
        assert_eq!(hamming(&a, &b).unwrap(), 3.0 / 7.0);
        assert_eq!(hamming(&a, &a).unwrap(), 0.0);
        let inverse = mask(&[("x", &[f, f, t, t, f]), ("y", &[f, t])]);
        assert_eq!(hamming(&a, &inverse).unwrap(), 1.0);
        assert!(hamming(&a, &mask(&[("x", &[t])])).is_err());
    }

    #[test]
    fn jaccard_of_hand_made_masks() {
        let (t, f) = (true, false);
        let a = mask(&[("x", &[t, t, f, f, t]), ("y", &[t, f])]);
        let b = mask(&[("x", &[t, f, t, f, t]), ("y", &[f, f])]);
        let o = overlap(&a, &b).unwrap();
        // x: both {0, 4} = 2, either {0, 1, 2, 4} = 4; y: both 0, either 1.
        assert_eq!((o.layers[0].both, o.layers[0].either), (2, 4));
        assert_eq!(o.layers[0].jaccard, 0.5);
        assert_eq!((o.layers[1].both, o.layers[1].either), (0, 1));
        assert_eq!(o.layers[1].jaccard, 0.0);
        assert_eq!((o.total.both, o.total.either), (2, 5));
        assert_eq!(o.total.jaccard, 0.4);
        // A mask with itself, and two empty masks, overlap fully.
        assert_eq!(overlap(&a, &a).unwrap().total.jaccard, 1.0);
        let empty = mask(&[("x", &[f, f])]);
        assert_eq!(overlap(&empty, &empty).unwrap().total.jaccard, 1.0);
        // Nested masks: the smaller over the larger.
        let inner = mask(&[("x", &[t, f, f, f, t]), ("y", &[f, f])]);
        assert_eq!(overlap(&a, &inner).unwrap().total.jaccard, 2.0 / 4.0);
    }

    #[test]
    fn chance_is_the_mean_overlap_of_random_masks() {
        // Exact for full and empty masks; p²/(2p − p²) for two masks of density p.
        assert_eq!(chance_jaccard(10, 10, 10), 1.0);
        assert_eq!(chance_jaccard(10, 0, 5), 0.0);
        let p: f64 = 0.1;
        assert!((chance_jaccard(1000, 100, 100) - p * p / (2.0 * p - p * p)).abs() < 1e-12);
        // Against a simulation: 2,000 pairs of random 100-of-1000 masks.
        let mut rng = crate::base::rng::Rng::for_purpose(3, "overlap-test");
        let mut sum = 0.0;
        for _ in 0..2000 {
            let draw = |rng: &mut crate::base::rng::Rng| {
                let mut positions: Vec<usize> = (0..1000).collect();
                rng.shuffle(&mut positions);
                let mut keep = vec![false; 1000];
                positions[..100].iter().for_each(|&i| keep[i] = true);
                keep
            };
            let (a, b) = (draw(&mut rng), draw(&mut rng));
            let o = overlap(&mask(&[("x", &a)]), &mask(&[("x", &b)])).unwrap();
            sum += o.total.jaccard;
        }
        let mean = sum / 2000.0;
        assert!(
            (mean - chance_jaccard(1000, 100, 100)).abs() < 0.003,
            "{mean}"
        );
    }

    #[test]
    fn masks_of_other_layers_are_refused() {
        let a = mask(&[("x", &[true, false])]);
        assert!(overlap(&a, &mask(&[("z", &[true, false])])).is_err());
        assert!(overlap(&a, &mask(&[("x", &[true])])).is_err());
        assert!(overlap(&a, &mask(&[])).is_err());
        let m = overlap_matrix(&[("a".into(), a.clone()), ("b".into(), a)]).unwrap();
        assert_eq!(m.matrix[0][1].total.jaccard, 1.0);
        assert!(
            m.to_markdown()
                .contains("| a | 50.00% | 1.000 (0.333) | 1.000 (0.333) |")
        );
    }
}
