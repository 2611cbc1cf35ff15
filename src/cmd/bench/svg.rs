//! A hand-written SVG plot: entries/s against batch size, one panel per entry size (log-log),
//! with the raw limit drawn in, and a panel of concurrent writers.

use std::fmt::Write as _;

use raftwal_benches::workload::{human_size, Cell};

use super::{Plan, Results, System};

const PANEL_W: f64 = 380.0;
const PANEL_H: f64 = 280.0;
const MARGIN_L: f64 = 62.0;
const MARGIN_R: f64 = 14.0;
const MARGIN_T: f64 = 30.0;
const MARGIN_B: f64 = 40.0;
const COLS: usize = 3;

fn style(s: System) -> (&'static str, &'static str, f64) {
    match s {
        System::Raw => ("#111111", "6,4", 2.0),
        System::RawAgain => ("#555555", "1,3", 1.0),
        System::RawOverwrite => ("#888888", "2,3", 1.5),
        System::Raftwal => ("#1f5fbf", "", 2.5),
        System::RaftEngine => ("#e07000", "", 2.0),
        System::RaftwalAhead => ("#7fa6e0", "4,2", 1.5),
        System::RaftwalNoTakeAhead => ("#5fbf7f", "3,2", 1.5),
    }
}

/// One panel's data: x labels and, per system, a y value (entries/s) per x.
struct Panel {
    title: String,
    x_labels: Vec<String>,
    x_title: &'static str,
    series: Vec<(System, Vec<Option<f64>>)>,
}

/// The SVG document.
pub fn plot(plan: &Plan, results: &Results, machine: &str) -> String {
    let mut panels = Vec::new();
    let mut sizes: Vec<usize> = plan.grid.iter().map(|c| c.entry_size).collect();
    sizes.dedup();
    let mut batches: Vec<usize> = plan.grid.iter().map(|c| c.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    for &size in &sizes {
        let series = plan
            .systems
            .iter()
            .map(|&s| {
                let ys = batches
                    .iter()
                    .map(|&b| {
                        results
                            .get(&(Cell::single(size, b), s))
                            .map(|x| x.entries_per_sec())
                    })
                    .collect();
                (s, ys)
            })
            .collect();
        panels.push(Panel {
            title: format!("{} entries", human_size(size as u64)),
            x_labels: batches.iter().map(|b| b.to_string()).collect(),
            x_title: "entries per fdatasync (batch)",
            series,
        });
    }
    if !plan.concurrent.is_empty() {
        let mut cells: Vec<Cell> = Vec::new();
        let base = Cell::single(256, 1);
        if plan.grid.contains(&base) {
            cells.push(base);
        }
        cells.extend(plan.concurrent.iter().copied());
        let series = plan
            .systems
            .iter()
            .map(|&s| {
                let ys = cells
                    .iter()
                    .map(|c| results.get(&(*c, s)).map(|x| x.entries_per_sec()))
                    .collect();
                (s, ys)
            })
            .collect();
        panels.push(Panel {
            title: "concurrent writers, 256B x1 each".to_owned(),
            x_labels: cells.iter().map(|c| c.writers.to_string()).collect(),
            x_title: "writers (raw: all in one batch)",
            series,
        });
    }

    let rows = panels.len().div_ceil(COLS).max(1);
    let width = PANEL_W * COLS as f64;
    let legend_h = 56.0;
    let height = PANEL_H * rows as f64 + legend_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="white"/><text x="10" y="18" font-size="14" font-weight="bold">raftwal bench: durable entries/s (log scale) vs batch size</text><text x="10" y="34" fill="#555">{}</text>"##,
        esc(machine)
    );
    // Legend.
    let mut lx = 10.0;
    for &s in &plan.systems {
        let (color, dash, w) = style(s);
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="46" x2="{}" y2="46" stroke="{color}" stroke-width="{w}" stroke-dasharray="{dash}"/><text x="{}" y="50">{}</text>"#,
            lx + 28.0,
            lx + 32.0,
            s.name()
        );
        lx += 130.0;
    }
    for (i, p) in panels.iter().enumerate() {
        let ox = (i % COLS) as f64 * PANEL_W;
        let oy = legend_h + (i / COLS) as f64 * PANEL_H;
        panel(&mut out, p, ox, oy);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, p: &Panel, ox: f64, oy: f64) {
    let (x0, y0) = (ox + MARGIN_L, oy + MARGIN_T);
    let (w, h) = (PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B);
    let values: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, ys)| ys.iter().flatten().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let (lo, hi) = if values.is_empty() {
        (0.0, 1.0)
    } else {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    };
    let n = p.x_labels.len().max(1);
    let xpos = |i: usize| {
        if n == 1 {
            x0 + w / 2.0
        } else {
            x0 + w * i as f64 / (n - 1) as f64
        }
    };
    let ypos = |v: f64| y0 + h - h * (v.log10() - lo) / (hi - lo);
    let _ = writeln!(
        out,
        r##"<g><rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#ccc"/><text x="{}" y="{}" font-size="12" font-weight="bold" text-anchor="middle">{}</text>"##,
        x0 + w / 2.0,
        y0 - 8.0,
        esc(&p.title)
    );
    // Decade grid lines.
    let mut d = lo;
    while d <= hi + 1e-9 {
        let y = ypos(10f64.powf(d));
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            x0 + w,
            x0 - 4.0,
            y + 4.0,
            si(10f64.powf(d))
        );
        d += 1.0;
    }
    for (i, l) in p.x_labels.iter().enumerate() {
        let x = xpos(i);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="#f3f3f3"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y0 + h,
            y0 + h + 14.0,
            esc(l)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
        x0 + w / 2.0,
        y0 + h + 30.0,
        p.x_title
    );
    for (s, ys) in &p.series {
        let (color, dash, sw) = style(*s);
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .filter_map(|(i, y)| {
                y.filter(|v| *v > 0.0)
                    .map(|v| format!("{:.1},{:.1}", xpos(i), ypos(v)))
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{sw}" stroke-dasharray="{dash}"/>"#,
            pts.join(" ")
        );
        for pt in &pts {
            let (x, y) = pt.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(out, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"#);
        }
    }
    out.push_str("</g>\n");
}

/// 1, 10, 100, 1k, 10k, 100k, 1M.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
