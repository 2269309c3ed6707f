//! The live terminal view of `xevtchn trace` and `xevtchn run`: a table
//! per VM (per APIC and vector: rates and latency percentiles) and the
//! log2 latency histograms of its upcalls. The terminal is restored on
//! drop, on `q`/Esc/Ctrl-C, and on panic (ratatui's hook).

use std::{io, time::Duration};

use ratatui::{
    DefaultTerminal, Frame,
    crossterm::event::{self, Event, KeyCode, KeyModifiers},
    layout::{Constraint, Layout},
    style::{Style, Stylize},
    text::Line,
    widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Row, Table},
};
use xevtchn_common::trace::BUCKETS;

use super::report::Interval;

pub struct LiveView {
    terminal: DefaultTerminal,
}

impl LiveView {
    pub fn start() -> io::Result<Self> {
        Ok(Self { terminal: ratatui::try_init()? })
    }

    pub fn draw(&mut self, title: &str, now: &Interval) -> io::Result<()> {
        self.terminal.draw(|frame| render(frame, title, now))?;
        Ok(())
    }

    /// Waits up to `timeout` for a key; true when the user asks to quit.
    pub fn quit_requested(timeout: Duration) -> io::Result<bool> {
        if !event::poll(timeout)? {
            return Ok(false);
        }
        Ok(match event::read()? {
            Event::Key(key) => {
                matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
            }
            _ => false,
        })
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn ns(x: Option<u64>) -> String {
    match x {
        None => "-".into(),
        Some(n) if n >= 1_000_000 => format!("<{}ms", n / 1_000_000),
        Some(n) if n >= 1_000 => format!("<{}µs", n / 1_000),
        Some(n) => format!("<{n}ns"),
    }
}

fn render(frame: &mut Frame, title: &str, now: &Interval) {
    let [header, tables, charts] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(6), Constraint::Length(12)]).areas(frame.area());
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(title.to_string()).bold(),
            Line::from(format!("last {:.1} s; q to quit", now.seconds)).dim(),
        ]),
        header,
    );
    let mut rows = Vec::new();
    let mut s2i = [0u64; BUCKETS];
    let mut i2e = [0u64; BUCKETS];
    for vm in &now.vms {
        rows.push(
            Row::new(vec![
                format!("pid {}", vm.pid),
                format!("{:.0} sends/s", vm.sends_per_s),
                format!("{} kernel", vm.sends_in_kernel),
                format!("{} userspace", vm.sends_to_userspace),
                format!("{} exits", vm.userspace_exits),
                String::new(),
            ])
            .style(Style::new().bold()),
        );
        for v in vm.vectors.iter().filter(|v| v.injections > 0 && v.vector != u32::MAX) {
            for (total, x) in s2i.iter_mut().zip(v.send_to_inject_histogram) {
                *total += x;
            }
            for (total, x) in i2e.iter_mut().zip(v.inject_to_eoi_histogram) {
                *total += x;
            }
            rows.push(Row::new(vec![
                format!("  apic {} vec {:#04x}", v.apicid, v.vector),
                format!("{:.0} upcalls/s", v.injections_per_s),
                format!("{} EOIs", v.eois),
                format!("send→inject p50 {}", ns(v.send_to_inject.p50_ns)),
                format!("p99 {}", ns(v.send_to_inject.p99_ns)),
                format!("inject→EOI p50 {} p99 {}", ns(v.inject_to_eoi.p50_ns), ns(v.inject_to_eoi.p99_ns)),
            ]));
        }
        for v in &vm.fast_path {
            let o = &v.outcomes;
            rows.push(
                Row::new(vec![
                    format!("  vcpu {} fast path", v.vcpu),
                    format!("{:.0} sends/s", v.fast_sends_per_s),
                    format!("{} raised", o.raised),
                    format!("{} coalesced", o.coalesced),
                    format!("{} masked", o.masked),
                    format!("{} pending, {} spurious", o.already_pending, v.spurious_injections),
                ])
                .style(Style::new().dim()),
            );
        }
    }
    if rows.is_empty() {
        rows.push(Row::new(vec!["no KVM activity".to_string()]));
    }
    let widths = [18, 18, 14, 26, 16, 34].map(Constraint::Length);
    frame.render_widget(Table::new(rows, widths).block(Block::bordered().title(" VMs and vCPUs ")), tables);
    let [left, right] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(charts);
    frame.render_widget(histogram(" send → inject (log2 ns) ", &s2i), left);
    frame.render_widget(histogram(" inject → EOI (log2 ns) ", &i2e), right);
}

fn histogram<'a>(title: &'a str, buckets: &[u64; BUCKETS]) -> BarChart<'a> {
    // Buckets from 256 ns to ~1 s cover what happens here.
    let bars: Vec<Bar> = (8..30)
        .map(|b| {
            let label = if b >= 20 {
                format!("{}m", 1u64 << (b - 20))
            } else if b >= 10 {
                format!("{}µ", 1u64 << (b - 10))
            } else {
                format!("{}", 1u64 << b)
            };
            Bar::default().value(buckets[b]).label(Line::from(label))
        })
        .collect();
    BarChart::default()
        .block(Block::bordered().title(title))
        .data(BarGroup::default().bars(&bars))
        .bar_width(4)
        .bar_gap(1)
}
