//! The console's rendering benchmark: 100,000 events in the store, frames
//! drawn at 200x50 into ratatui's TestBackend (the same layout, widgets and
//! buffer diff as a real terminal, without the terminal's own write), the
//! time from a stream frame to its row drawn, and the process's memory.

use std::time::{Duration, Instant};

use micro::console::fixtures;
use micro::console::msg::Msg;
use micro::console::state::Tab;
use micro::console::update::update;
use micro::console::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time this thread has used: a frame's own work, without the time it
/// waited for a core another process held. On a busy machine the wall
/// clock's p99 measures the machine; this measures the frame.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let frames: usize = 1000;
    let before = rss_kib();
    let fill = Instant::now();
    let mut state = fixtures::with_events(fixtures::logged_in(200, 50, Tab::Events), events);
    let fill = fill.elapsed();
    let after_fill = rss_kib();
    let mut terminal = Terminal::new(TestBackend::new(200, 50))?;

    // Frames with the selection moving, so that every frame has new rows
    // and a new detail pane to lay out.
    let mut render = Vec::with_capacity(frames);
    let mut render_cpu = Vec::with_capacity(frames);
    let keys = [
        crossterm::event::KeyCode::Char('j'),
        crossterm::event::KeyCode::Char('j'),
        crossterm::event::KeyCode::PageDown,
    ];
    for i in 0..frames {
        let key = crossterm::event::KeyEvent::new(keys[i % keys.len()], crossterm::event::KeyModifiers::NONE);
        update(&mut state, Msg::Key(key));
        let (start, start_cpu) = (Instant::now(), thread_cpu());
        terminal.draw(|frame| view::render(&state, frame))?;
        render.push(start.elapsed());
        render_cpu.push(thread_cpu().saturating_sub(start_cpu));
    }

    // A stream frame in, its row on screen: update plus one frame, with the
    // view following the newest event.
    update(
        &mut state,
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('g'),
            crossterm::event::KeyModifiers::NONE,
        )),
    );
    let mut arrival = Vec::with_capacity(frames);
    for i in 0..frames as u64 {
        let msg = Msg::Stream(fixtures::stream_event(events + i));
        let start = Instant::now();
        update(&mut state, msg);
        terminal.draw(|frame| view::render(&state, frame))?;
        arrival.push(start.elapsed());
    }
    let shown = terminal.backend().to_string();
    let newest = format!("evt_01JFAKE{:010}", events + frames as u64 - 1);
    anyhow::ensure!(shown.contains(&newest[..20]), "the newest event is not on screen");

    let rss = rss_kib();
    println!(
        "events in store         {} (dropped {})",
        state.store.len(),
        state.store.dropped
    );
    println!(
        "bodies kept             {:.1} MiB",
        state.store.body_bytes() as f64 / 1048576.0
    );
    println!(
        "fill (update per event) {} total, {:.2} µs each",
        ms(fill),
        fill.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "render 200x50           p50 {}  p99 {}  max {}  (goal p99 <= 2 ms)",
        ms(percentile(&mut render, 0.50)),
        ms(percentile(&mut render, 0.99)),
        ms(percentile(&mut render, 1.0))
    );
    println!(
        "  its CPU time          p50 {}  p99 {}  max {}",
        ms(percentile(&mut render_cpu, 0.50)),
        ms(percentile(&mut render_cpu, 0.99)),
        ms(percentile(&mut render_cpu, 1.0))
    );
    println!("load average            {}", load_average());
    println!(
        "frame -> row on screen  p50 {}  p99 {}",
        ms(percentile(&mut arrival, 0.50)),
        ms(percentile(&mut arrival, 0.99))
    );
    println!(
        "resident memory         {:.1} MiB (empty {:.1} MiB, after fill {:.1} MiB; goal <= 60 MB)",
        rss as f64 / 1024.0,
        before as f64 / 1024.0,
        after_fill as f64 / 1024.0
    );
    Ok(())
}
