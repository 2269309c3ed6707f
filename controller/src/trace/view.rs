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

use super::report::{Interval, OVERFLOW_PID, VmRow};

pub struct LiveView {
    terminal: DefaultTerminal,
    state: ViewState,
    title: String,
    /// The last interval drawn, redrawn when a key changes the view.
    last: Option<Interval>,
}

/// What the keys change: the order of VMs and the first row shown.
#[derive(Debug, Default, Clone, Copy)]
pub struct ViewState {
    pub sort: Sort,
    pub scroll: usize,
}

/// The order of VMs in the table.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub enum Sort {
    #[default]
    Sends,
    Upcalls,
    Pid,
}

impl Sort {
    fn next(self) -> Self {
        match self {
            Sort::Sends => Sort::Upcalls,
            Sort::Upcalls => Sort::Pid,
            Sort::Pid => Sort::Sends,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Sends => "sends/s",
            Sort::Upcalls => "upcalls/s",
            Sort::Pid => "pid",
        }
    }
}

impl LiveView {
    pub fn start(title: &str) -> io::Result<Self> {
        Ok(Self { terminal: ratatui::try_init()?, state: ViewState::default(), title: title.into(), last: None })
    }

    pub fn draw(&mut self, now: &Interval) -> io::Result<()> {
        let (title, state) = (&self.title, &mut self.state);
        self.terminal.draw(|frame| render(frame, title, now, state))?;
        self.last = Some(now.clone());
        Ok(())
    }

    /// Waits up to `timeout` for a key and acts on it; true when the user
    /// asks to quit (q, Esc, Ctrl-C).
    pub fn quit_requested(&mut self, timeout: Duration) -> io::Result<bool> {
        if !event::poll(timeout)? {
            return Ok(false);
        }
        let Event::Key(key) = event::read()? else { return Ok(false) };
        let state = &mut self.state;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(true),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(true),
            KeyCode::Char('s') => state.sort = state.sort.next(),
            KeyCode::Down | KeyCode::Char('j') => state.scroll += 1,
            KeyCode::Up | KeyCode::Char('k') => state.scroll = state.scroll.saturating_sub(1),
            KeyCode::PageDown => state.scroll += 10,
            KeyCode::PageUp => state.scroll = state.scroll.saturating_sub(10),
            KeyCode::Home => state.scroll = 0,
            _ => return Ok(false),
        }
        if let Some(last) = self.last.take() {
            self.draw(&last)?;
        }
        Ok(false)
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// A log2 bucket bound in ns, with its unit ("<64µs").
fn ns(x: Option<u64>) -> String {
    match x {
        None => "-".into(),
        Some(n) => format!("<{}", duration(n)),
    }
}

fn duration(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{}s", n / 1_000_000_000),
        n if n >= 1_000_000 => format!("{}ms", n / 1_000_000),
        n if n >= 1_000 => format!("{}µs", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// A rate, short: 44171.3 -> "44.2k".
fn rate(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// Terminals at least this wide show the latency columns in the table.
const WIDE: u16 = 130;

/// Renders one frame; `state.scroll` is clamped to the rows there are.
pub fn render(frame: &mut Frame, title: &str, now: &Interval, state: &mut ViewState) {
    let [header, tables, charts, help] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(4), Constraint::Length(10), Constraint::Length(1)])
            .areas(frame.area());
    let per_s = |n: u64| if now.seconds > 0.0 { n as f64 / now.seconds } else { 0.0 };
    let ports: Vec<String> = now.ports.iter().take(8).map(|p| format!("{} {}", p.port, rate(per_s(p.sends)))).collect();
    let ports = if ports.is_empty() { "-".to_string() } else { ports.join(" · ") };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(title.to_string()).bold(),
            Line::from(format!("last {:.1} s; rates per second; latency bars start at their label", now.seconds)).dim(),
            Line::from(format!("busiest ports (port sends/s): {ports}")),
        ]),
        header,
    );
    let wide = frame.area().width >= WIDE;
    let rows = table_rows(now, state.sort, wide);
    // Inside the border; the last visible line may say what is hidden.
    let height = tables.height.saturating_sub(2) as usize;
    let (shown, hidden_above, hidden_below) = window(rows.len(), height, &mut state.scroll);
    let mut visible: Vec<Row> = Vec::new();
    if hidden_above > 0 {
        visible.push(Row::new(vec![format!("↑ {hidden_above} above")]).style(Style::new().italic()));
    }
    visible.extend(
        rows.into_iter().skip(shown.start).take(shown.len()).map(|(cells, style)| Row::new(cells).style(style)),
    );
    if hidden_below > 0 {
        visible.push(Row::new(vec![format!("↓ {hidden_below} more")]).style(Style::new().italic()));
    }
    // The last column fits "inject→EOI p50 <524µs p99 <524µs".
    let widths: &[u16] = if wide { &[19, 15, 16, 24, 14, 34] } else { &[19, 15, 16, 24] };
    let title = format!(" VMs and vCPUs, by {} ", state.sort.name());
    frame.render_widget(
        Table::new(visible, widths.iter().map(|&w| Constraint::Length(w))).block(Block::bordered().title(title)),
        tables,
    );
    let (mut s2i, mut i2e) = ([0u64; BUCKETS], [0u64; BUCKETS]);
    for v in now.vms.iter().flat_map(|vm| &vm.vectors).filter(|v| v.vector != u32::MAX) {
        for (total, x) in s2i.iter_mut().zip(v.send_to_inject_ns.counts) {
            *total += x;
        }
        for (total, x) in i2e.iter_mut().zip(v.inject_to_eoi_ns.counts) {
            *total += x;
        }
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(charts);
    frame.render_widget(histogram("send→inject", &s2i, left.width), left);
    frame.render_widget(histogram("inject→EOI", &i2e, right.width), right);
    let more = if wide { "" } else { "; 130+ columns add the p99 and EOI columns" };
    frame.render_widget(Paragraph::new(format!("q quit · s sort · ↑↓ PgUp PgDn scroll{more}")).dim(), help);
}

/// The rows to show out of `total` in `height` lines, with the counts
/// hidden above and below (each costs a line that says so).
fn window(total: usize, height: usize, scroll: &mut usize) -> (std::ops::Range<usize>, usize, usize) {
    if total <= height {
        *scroll = 0;
        return (0..total, 0, 0);
    }
    let height = height.max(3);
    *scroll = (*scroll).min(total - (height - 1));
    let above = usize::from(*scroll > 0);
    let mut room = height - above;
    if *scroll + room < total {
        room -= 1;
    }
    let shown = *scroll..(*scroll + room).min(total);
    (shown.clone(), shown.start, total - shown.end)
}

type Cells = (Vec<String>, Style);

/// Every row of the table: per VM (sorted), its vectors and fast path.
fn table_rows(now: &Interval, sort: Sort, wide: bool) -> Vec<Cells> {
    let per_s = |n: u64| if now.seconds > 0.0 { n as f64 / now.seconds } else { 0.0 };
    let upcalls = |vm: &VmRow| vm.vectors.iter().map(|v| v.injections).sum::<u64>();
    let mut vms: Vec<&VmRow> = now.vms.iter().collect();
    match sort {
        Sort::Sends => vms.sort_by(|a, b| b.sends.cmp(&a.sends).then(a.pid.cmp(&b.pid))),
        Sort::Upcalls => vms.sort_by(|a, b| upcalls(b).cmp(&upcalls(a)).then(a.pid.cmp(&b.pid))),
        Sort::Pid => vms.sort_by_key(|vm| vm.pid),
    }
    let mut rows = Vec::new();
    for vm in vms {
        let who = if vm.pid == OVERFLOW_PID { "other VMs".to_string() } else { format!("pid {}", vm.pid) };
        // Another VMM's writes are no sends: its row starts with its exits.
        let mut cells = match (vm.sends_per_s, vm.sends_in_kernel, vm.sends_to_userspace) {
            (Some(sends), Some(kernel), Some(userspace)) => vec![
                who,
                format!("{} sends/s", rate(sends)),
                format!("kernel {}/s", rate(per_s(kernel))),
                format!("userspace {}/s", rate(per_s(userspace))),
            ],
            _ => vec![who, "other VMM: no sends".to_string(), String::new(), String::new()],
        };
        if wide {
            cells.push(format!("exits {}/s", rate(per_s(vm.userspace_exits))));
            cells.push(format!("MMIO {}/s", rate(per_s(vm.mmio))));
        }
        rows.push((cells, Style::new().bold()));
        for v in vm.vectors.iter().filter(|v| v.injections > 0 && v.vector != u32::MAX) {
            let mut cells = vec![
                format!("  apic {} vec {:#04x}", v.apicid, v.vector),
                format!("{} upcalls/s", rate(v.injections_per_s)),
                format!("EOIs {}/s", rate(per_s(v.eois))),
                format!("send→inject p50 {}", ns(v.send_to_inject_ns.percentiles.p50)),
            ];
            if wide {
                cells.push(format!("p99 {}", ns(v.send_to_inject_ns.percentiles.p99)));
                cells.push(format!(
                    "inject→EOI p50 {} p99 {}",
                    ns(v.inject_to_eoi_ns.percentiles.p50),
                    ns(v.inject_to_eoi_ns.percentiles.p99)
                ));
            }
            rows.push((cells, Style::new()));
        }
        for v in &vm.fast_path {
            let o = &v.outcomes;
            let mut cells = vec![
                format!("  vcpu {} fast path", v.vcpu),
                format!("{} sends/s", rate(v.fast_sends_per_s)),
                format!("raised {}/s", rate(per_s(o.raised))),
                format!("coalesced {}/s", rate(per_s(o.coalesced))),
            ];
            if wide {
                cells.push(format!("masked {}/s", rate(per_s(o.masked))));
                cells.push(format!(
                    "pending {}/s, spurious {}/s",
                    rate(per_s(o.already_pending)),
                    rate(per_s(v.spurious_injections))
                ));
            }
            rows.push((cells, Style::new().dim()));
        }
    }
    if rows.is_empty() {
        rows.push((vec!["no KVM activity".to_string()], Style::new()));
    }
    rows
}

/// A log2 latency histogram over the buckets that hold samples, with
/// adjacent buckets merged until every bar fits `width`: the slow tail is
/// never cut off.
fn histogram<'a>(what: &str, buckets: &[u64; BUCKETS], width: u16) -> BarChart<'a> {
    const BAR: u16 = 6; // 5 columns ("134ms") and a gap
    let used: Vec<usize> = (0..BUCKETS).filter(|&b| buckets[b] > 0).collect();
    let (lo, hi) = match (used.first(), used.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => (8, 20),
    };
    let fits = (width.saturating_sub(2) / BAR).max(1) as usize;
    let mut group = 1;
    while (hi - lo) / group + 1 > fits {
        group *= 2;
    }
    let bars: Vec<Bar> = (lo..=hi)
        .step_by(group)
        .map(|b| {
            let n: u64 = buckets[b..(b + group).min(BUCKETS)].iter().sum();
            Bar::default().value(n).label(Line::from(duration(1u64 << b)))
        })
        .collect();
    let merged = if group > 1 { format!(", {group} buckets/bar") } else { String::new() };
    let samples: u64 = buckets.iter().sum();
    BarChart::default()
        .block(Block::bordered().title(format!(" {what}, n={samples}{merged} ")))
        .data(BarGroup::default().bars(&bars))
        .bar_width(BAR - 1)
        .bar_gap(1)
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::{
        bpf::doorbell::SendOutcomes,
        trace::report::{LatencyHistogram, PortRow, VcpuRow, VectorRow},
    };

    /// One VM with 16 vCPUs: a vector row and a fast-path row each, and a
    /// send taking 2^27 ns (134 ms) in the histogram's slow tail.
    fn sixteen_vcpus() -> Interval {
        let mut histogram = [0u64; BUCKETS];
        histogram[11] = 9;
        histogram[27] = 1;
        let latency = LatencyHistogram::of(histogram);
        let vectors = (0..16)
            .map(|apicid| VectorRow {
                apicid,
                vector: 0xf3,
                injections: 1000,
                eois: 1000,
                injections_per_s: 1000.0,
                send_to_inject_ns: latency.clone(),
                inject_to_eoi_ns: latency.clone(),
            })
            .collect();
        let fast_path = (0..16)
            .map(|vcpu| VcpuRow {
                vcpu,
                fast_sends_per_s: 44171.0,
                outcomes: SendOutcomes { fast_sends: 44171, raised: 1000, coalesced: 43171, ..Default::default() },
                spurious_injections: 43171,
            })
            .collect();
        let vm = VmRow {
            pid: 4242,
            sends: Some(44258),
            sends_in_kernel: Some(44171),
            sends_to_userspace: Some(87),
            userspace_sends_injected: Some(80),
            userspace_sends_not_injected: Some(7),
            sends_per_s: Some(44258.0),
            userspace_exits: 90,
            mmio: 44258,
            msi_set_irq: None,
            set_irq: 0,
            vcpu_wakeups: 0,
            xen_hypercalls: 0,
            pio: 0,
            vectors,
            fast_path,
        };
        let ports = [(3, 40000), (5, 4171), (1, 87)].map(|(port, sends)| PortRow { port, sends }).to_vec();
        Interval { seconds: 1.0, vms: vec![vm], ports }
    }

    fn screen(width: u16, height: u16, state: &mut ViewState) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
        terminal.draw(|frame| render(frame, "xevtchn trace: every KVM process", &sixteen_vcpus(), state)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>().trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Rows shown plus rows the view says it hides: every row accounted.
    fn accounted(text: &str) -> usize {
        let count = |marker: &str, word: &str| {
            text.lines()
                .find_map(|l| l.split(marker).nth(1).and_then(|r| r.split(word).next()?.trim().parse::<usize>().ok()))
                .unwrap_or(0)
        };
        let shown =
            text.lines().filter(|l| l.contains("apic ") || l.contains("fast path") || l.contains("pid 4242")).count();
        shown + count("↓ ", "more") + count("↑ ", "above")
    }

    #[test]
    fn a_small_terminal_says_what_it_hides_and_scrolls_to_it() {
        let mut state = ViewState::default();
        let top = screen(80, 24, &mut state);
        assert!(top.contains("more"), "{top}");
        assert_eq!(accounted(&top), 33, "1 VM row + 16 vector rows + 16 fast-path rows:\n{top}");
        assert!(top.contains("q quit · s sort"), "a help line:\n{top}");
        state.scroll = 1000;
        let bottom = screen(80, 24, &mut state);
        assert!(bottom.contains("above") && !bottom.contains("more"), "{bottom}");
        assert!(bottom.contains("vcpu 15 fast path"), "the last row is reachable:\n{bottom}");
        assert_eq!(accounted(&bottom), 33, "{bottom}");
    }

    #[test]
    fn every_number_has_its_unit_and_the_slow_tail_is_drawn() {
        let mut state = ViewState::default();
        let text = screen(200, 50, &mut state);
        assert_eq!(accounted(&text), 33, "{text}");
        assert!(text.contains("44.3k sends/s") && text.contains("kernel 44.2k/s") && text.contains("userspace 87/s"));
        assert!(text.contains("p99 <268ms"), "{text}");
        // The widest cell whole, unit included, at the narrowest wide layout.
        let wide = screen(WIDE, 40, &mut state);
        assert!(wide.contains("inject→EOI p50 <4µs p99 <268ms"), "{wide}");
        // The 2^27 ns bucket is a bar with its label, in both histograms.
        assert_eq!(text.lines().filter(|l| l.matches("134ms").count() == 2).count(), 1, "{text}");
        for width in [80, 100, 160] {
            let narrow = screen(width, 30, &mut state);
            assert_eq!(narrow.lines().filter(|l| l.matches("134ms").count() == 2).count(), 1, "{width}:\n{narrow}");
        }
    }

    #[test]
    fn every_panel_is_on_screen_at_80x24_and_200x50() {
        // `cargo test -p xevtchn every_panel -- --nocapture` shows them.
        for (w, h) in [(80, 24), (200, 50)] {
            let text = screen(w, h, &mut ViewState::default());
            println!("{w}x{h}:\n{text}\n");
            for panel in ["xevtchn trace", "busiest ports", "VMs and vCPUs", "send→inject", "inject→EOI", "q quit"]
            {
                assert!(text.contains(panel), "{w}x{h} shows {panel}:\n{text}");
            }
            assert_eq!(text.lines().count(), h as usize);
        }
    }
}
