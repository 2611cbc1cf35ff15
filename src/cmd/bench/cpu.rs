//! Process CPU time (user + system, all threads) from `/proc/self/stat`, to charge each
//! slice with the CPU its system used: the slices run one at a time, so what the process
//! spent during one is that system's (its background threads included).

use std::time::Duration;

/// CPU time the process has used so far, or `None` where `/proc` is not readable. The
/// kernel counts it in clock ticks (`USER_HZ`, 100 per second on Linux): 10 ms resolution,
/// so a figure is meaningful summed over many slices.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, inside parentheses): utime is
    // field 14 and stime field 15 of the whole line, 12th and 13th after the ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_cpu_grows_with_work() {
        // Spins until the counter shows 50 ms more, however loaded the machine (at most
        // 20 s of wall time): a counter that never moves fails.
        let before = process_cpu().expect("/proc/self/stat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut now = before;
        while now < before + Duration::from_millis(50) && start.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            now = process_cpu().unwrap();
        }
        assert!(
            now >= before + Duration::from_millis(50),
            "{before:?} -> {now:?}"
        );
    }
}
