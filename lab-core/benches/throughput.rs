//! `cargo bench -p lab-core --bench throughput`: LeNet-300-100 training throughput per
//! compiled backend (the same measurement as `lth bench`).

use lab_core::base::backend::BackendKind;
use lab_core::base::data::DatasetKind;
use lab_core::base::data::native::{DataSource, load};
use lab_core::report::bench::training_throughput;

fn main() {
    let (data, _) = load(
        DatasetKind::Mnist,
        &DataSource::default(),
        &mut |_, _, _| {},
    )
    .expect("MNIST: set LTH_DATA or keep ../shared/mnist");
    let steps = std::env::var("LTH_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    println!(
        "backend     ms/step   samples/s   first step ms   ({steps} steps, batch 60, Adam, masked)"
    );
    for backend in BackendKind::available() {
        let device = backend.device().expect("compiled-in backend");
        let t = training_throughput(&data, &device, steps).expect("reading the device");
        println!(
            "{:<10} {:>8.3} {:>11.0} {:>15.1}",
            backend.name(),
            t.ms_per_step,
            t.samples_per_second,
            t.first_step_ms
        );
    }
}
