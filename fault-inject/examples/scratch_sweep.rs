// Scratch (not committed): run torture seeds with knobs from env, print failures compactly.
use fault_inject::torture::{Torture, TortureConfig};
use fault_inject::workload::WorkloadShape;

fn env(name: &str, d: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let a: u64 = env("FROM", 0.0) as u64;
    let b: u64 = env("TO", 100.0) as u64;
    let cycles = env("CYCLES", 40.0) as u64;
    let mut fails = 0;
    for seed in a..b {
        let mut cfg = TortureConfig::with_seed(seed);
        cfg.read_eio_rate = env("READ_EIO", 0.05);
        cfg.full_disk_rate = env("FULL", 0.05);
        cfg.page_writeback_rate = env("PAGES", 0.3);
        cfg.bit_flip_rate = env("FLIP", 0.1);
        cfg.fault_rate = env("FAULT", 0.3);
        cfg.reopen_after_error = env("REOPEN", 1.0) > 0.5;
        cfg.no_fallocate = env("NOFALLOC", 0.0) > 0.5;
        if env("SHORN", 0.0) > 0.5 {
            cfg.overwrite = fault_inject::Overwrite::Shorn;
        }
        cfg.opts.lazy_open = env("LAZY", 0.0) > 0.5;
        if env("LARGE", 0.0) > 0.5 {
            cfg.shape = WorkloadShape {
                max_batch: 8,
                max_payload: 1500,
            };
        }
        let mut t = match Torture::new(cfg) {
            Ok(t) => t,
            Err(v) => {
                println!("seed {seed}: NEW {}", v.what);
                continue;
            }
        };
        for _ in 0..cycles {
            if let Err(v) = t.cycle() {
                fails += 1;
                if env("VERBOSE", 0.0) > 0.5 {
                    println!("{v}");
                } else {
                    println!(
                        "seed {seed} cycle {}: {}",
                        t.stats().cycles + 1,
                        v.what.chars().take(300).collect::<String>()
                    );
                }
                break;
            }
        }
    }
    println!("{fails} failing seeds of {}", b - a);
}
