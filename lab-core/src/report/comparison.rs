//! Other methods' results as points on DST's accuracy and cost charts: IMP's tickets and PaI's
//! scores (a report of one method drawn beside another's, so it lives above both).

use crate::methods::dst::Comparison;

impl Comparison {
    /// IMP's ticket at each round; its cost is every training up to that round (each at its
    /// round's density, rewound rounds from their rewind iteration).
    pub fn from_imp(report: &crate::methods::imp::ImpReport) -> Self {
        let iterations = report
            .rounds
            .first()
            .and_then(|r| r.curve.last())
            .map_or(1, |p| p.iteration)
            .max(1);
        let mut cost = 0.0;
        let points = report
            .rounds
            .iter()
            .map(|r| {
                let start = r.curve.first().map_or(0, |p| p.iteration);
                cost += r.weights_remaining * iterations.saturating_sub(start) as f64
                    / iterations as f64;
                (r.weights_remaining, r.test_accuracy, cost)
            })
            .collect();
        Self {
            label: "imp ticket".into(),
            points,
        }
    }

    /// Pruning at initialisation, one comparison per score; a collapsed network is at chance.
    pub fn from_pai(results: &[crate::methods::pai::PaiResult]) -> Vec<Self> {
        let mut comparisons: Vec<Self> = Vec::new();
        for r in results {
            let label = format!("pai {}", r.score);
            let point = (r.weights_remaining, r.test_accuracy(), r.weights_remaining);
            match comparisons.iter_mut().find(|c| c.label == label) {
                Some(c) => c.points.push(point),
                None => comparisons.push(Self {
                    label,
                    points: vec![point],
                }),
            }
        }
        comparisons
    }
}
