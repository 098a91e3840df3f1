//! Audit reports: a trace of the access log as a page a person can read, or
//! as CSV for a spreadsheet.
//!
//! [`html`] writes one self-contained HTML document: a summary in plain
//! words, an inline SVG timeline of uses per day by consumer, and the trace
//! table, one row per access-log entry. It loads nothing: no scripts, no
//! style sheets, no fonts, no images by address (its Content-Security-Policy
//! forbids them as well), so it can be mailed, archived and opened offline.
//! [`csv`] writes the same rows, all of them, as RFC 4180 CSV. Both show only
//! what the entries and the name tables passed in hold; every row can be
//! checked against the ledger offline with `liutong verify --bundle`.

use crate::access::{AccessOutcome, AccessRecord};
use liutong_core::{format_utc, Timestamp};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a report shows.
pub struct ReportInput<'a> {
    /// e.g. "Uses of dataset Port container moves 2026 (3f0c…)".
    pub title: String,
    pub chain_id: String,
    /// The trace's filter in words, e.g. "dataset 3f0c…, all versions, 2026-11-01 to 2026-12-01".
    pub subject: String,
    pub generated_at: Timestamp,
    /// The newest block the node had when the trace ran.
    pub head_height: u64,
    /// Oldest first (the trace's order).
    pub entries: &'a [AccessRecord],
    /// Credit code (as text) -> legal name, for every party the entries name.
    pub names: &'a BTreeMap<String, String>,
    /// Dataset id (hex text) -> dataset name.
    pub datasets: &'a BTreeMap<String, String>,
}

const DAY_MS: u64 = 86_400_000;
/// Most rows the HTML table shows (the CSV has every row).
const MAX_TABLE_ROWS: usize = 10_000;
/// Longest span, in days, the timeline draws one bar per day for.
const DAILY_SPAN_DAYS: u64 = 120;
/// Most bars the timeline draws; longer spans than 7 × this get longer periods.
const MAX_BARS: u64 = 260;
/// How a private (zero-knowledge) use's consumer is shown.
const PRIVATE_LABEL: &str = "private (not named)";
/// One colour per named consumer, in legend order; cycles beyond ten.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bcbd22",
];
const PRIVATE_COLOUR: &str = "#555555";
const CSV_HEADER: &str = "logged_at,block,tx,request,dataset,dataset_name,version,action,provider,provider_name,\
consumer,consumer_name,grant,mode,outcome,bytes,rows,result,query,nullifier";

const CSS: &str = r#"body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;color:#1b1b1b;background:#fff;line-height:1.45}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}
.sub{color:#555;margin:0 0 1.25rem}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1.5rem;margin:0}
dl.summary dt{font-weight:600;color:#333}
dl.summary dd{margin:0}
.explain{background:#f6f8fa;border-left:4px solid #4e79a7;padding:.25rem 1rem .75rem;margin:1.5rem 0;max-width:62rem}
.explain h2{border:0;margin-top:.75rem}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.85em}
.chart svg{width:100%;height:auto;display:block;max-width:1200px}
.chart .grid{stroke:#e6e6e6;stroke-width:1}
.chart .axis{stroke:#888;stroke-width:1}
.chart text{font-size:11px;fill:#444}
.chart .seg:hover{opacity:.75}
ul.legend{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.35rem 1.5rem;font-size:.9rem}
.sw{display:inline-block;width:.85em;height:.85em;border-radius:2px;margin-right:.4em;vertical-align:-.08em}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f0f0f0}
tbody tr:nth-child(even){background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.o-acknowledged{color:#1a7f37;font-weight:600}
.o-disputed{color:#c62828;font-weight:600}
.o-unacknowledged{color:#6b6b6b}
.o-failed{color:#9a6700}
.private{color:#555;font-style:italic}
.code{color:#666;font-size:.8em;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.5rem 1rem}
.empty{font-size:1.05rem;color:#444}
footer{margin-top:2.5rem;color:#666;font-size:.85rem}
@media print{body{margin:0;max-width:none}.table-wrap{overflow:visible}}
"#;

/// A private use: made in zero-knowledge mode, or naming no consumer.
fn is_private(r: &AccessRecord) -> bool {
    r.private.is_some() || r.consumer.is_none()
}

/// Who used the data, as the report groups uses: a named consumer, or all
/// private uses together.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Named(String),
    Private,
}

impl Who {
    fn of(r: &AccessRecord) -> Who {
        match &r.consumer {
            Some(c) if !is_private(r) => Who::Named(c.as_str().to_string()),
            _ => Who::Private,
        }
    }

    /// The credit code, or `private`.
    fn key(&self) -> &str {
        match self {
            Who::Named(code) => code.as_str(),
            Who::Private => "private",
        }
    }

    /// "Name (code)", the code alone when the name is unknown, or the private label.
    fn label(&self, names: &BTreeMap<String, String>) -> String {
        match self {
            Who::Named(code) => match names.get(code) {
                Some(name) => format!("{name} ({code})"),
                None => code.clone(),
            },
            Who::Private => PRIVATE_LABEL.to_string(),
        }
    }
}

/// A consumer in the legend: most uses first.
struct Consumer {
    who: Who,
    uses: u64,
    colour: &'static str,
}

fn consumers(entries: &[AccessRecord]) -> Vec<Consumer> {
    let mut counts: BTreeMap<Who, u64> = BTreeMap::new();
    for e in entries {
        *counts.entry(Who::of(e)).or_insert(0) += 1;
    }
    let mut list: Vec<Consumer> = counts
        .into_iter()
        .map(|(who, uses)| Consumer {
            who,
            uses,
            colour: PRIVATE_COLOUR,
        })
        .collect();
    list.sort_by(|a, b| b.uses.cmp(&a.uses).then_with(|| a.who.cmp(&b.who)));
    let mut next = 0;
    for c in &mut list {
        if let Who::Named(_) = c.who {
            c.colour = PALETTE[next % PALETTE.len()];
            next += 1;
        }
    }
    list
}

/// Uses per period (a UTC day, or several days for long spans) per consumer.
struct Timeline {
    first_day: u64,
    last_day: u64,
    bucket_days: u64,
    /// Per bar: consumer index (into the legend) -> uses.
    bars: Vec<BTreeMap<usize, u64>>,
}

impl Timeline {
    fn of(entries: &[AccessRecord], consumers: &[Consumer]) -> Option<Timeline> {
        let first_day = entries.iter().map(|e| e.logged_at / DAY_MS).min()?;
        let last_day = entries.iter().map(|e| e.logged_at / DAY_MS).max()?;
        let span = last_day - first_day + 1;
        let bucket_days = if span <= DAILY_SPAN_DAYS {
            1
        } else if span <= 7 * MAX_BARS {
            7
        } else {
            span.div_ceil(MAX_BARS)
        };
        let n = span.div_ceil(bucket_days) as usize;
        let index: BTreeMap<Who, usize> = consumers.iter().enumerate().map(|(i, c)| (c.who.clone(), i)).collect();
        let mut bars: Vec<BTreeMap<usize, u64>> = vec![BTreeMap::new(); n];
        for e in entries {
            let bar = ((e.logged_at / DAY_MS - first_day) / bucket_days) as usize;
            if let (Some(slot), Some(&i)) = (bars.get_mut(bar), index.get(&Who::of(e))) {
                *slot.entry(i).or_insert(0) += 1;
            }
        }
        Some(Timeline {
            first_day,
            last_day,
            bucket_days,
            bars,
        })
    }

    fn start(&self, bar: usize) -> u64 {
        self.first_day + bar as u64 * self.bucket_days
    }

    /// "2026-11-25", or "2026-11-23 to 2026-11-29" for a longer period.
    fn period(&self, bar: usize) -> String {
        let start = self.start(bar);
        if self.bucket_days == 1 {
            day_text(start)
        } else {
            let end = (start + self.bucket_days - 1).min(self.last_day);
            format!("{} to {}", day_text(start), day_text(end))
        }
    }
}

/// The HTML page.
pub fn html(r: &ReportInput<'_>) -> String {
    let consumers = consumers(r.entries);
    let mut o = String::with_capacity(24 * 1024 + r.entries.len().min(MAX_TABLE_ROWS) * 1200);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<meta name=\"generator\" content=\"liutong audit report\">\n");
    let _ = write!(
        o,
        "<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n",
        esc(&r.title),
        CSS
    );
    let _ = write!(
        o,
        "<header>\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n</header>\n",
        esc(&r.title),
        esc(&r.subject)
    );

    summary(&mut o, r, &consumers);
    explanation(&mut o);

    match Timeline::of(r.entries, &consumers) {
        None => {
            let _ = write!(
                o,
                "<section>\n<h2>Uses</h2>\n<p class=\"empty\">No uses: the ledger holds no access-log entry \
                 matching this trace (up to block {}).</p>\n</section>\n",
                r.head_height
            );
        }
        Some(t) => {
            o.push_str("<section class=\"chart\">\n<h2>Uses over time, by consumer</h2>\n");
            svg(&mut o, &t, &consumers, r.names);
            legend(&mut o, &consumers, r.names);
            o.push_str("</section>\n");
            table(&mut o, r);
        }
    }

    let _ = write!(
        o,
        "<footer>\n<p>Generated {} by <code>liutong audit report</code> from chain <span class=\"mono\">{}</span> \
         at block {}. This page is self-contained: it loads nothing from the network.</p>\n</footer>\n",
        format_utc(r.generated_at),
        esc(&r.chain_id),
        r.head_height
    );
    o.push_str("</body>\n</html>\n");
    o
}

fn summary(o: &mut String, r: &ReportInput<'_>, consumers: &[Consumer]) {
    let entries = r.entries;
    let mut actions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut outcomes = [0u64; 4];
    let (mut bytes, mut rows, mut queries, mut private) = (0u64, 0u64, 0u64, 0u64);
    for e in entries {
        *actions.entry(e.action.as_str()).or_insert(0) += 1;
        let i = match e.outcome {
            AccessOutcome::Acknowledged => 0,
            AccessOutcome::Disputed => 1,
            AccessOutcome::Unacknowledged => 2,
            AccessOutcome::Failed => 3,
        };
        outcomes[i] += 1;
        bytes = bytes.saturating_add(e.bytes);
        if let Some(q) = &e.query {
            queries += 1;
            rows = rows.saturating_add(q.rows);
        }
        if is_private(e) {
            private += 1;
        }
    }
    let actions = actions
        .iter()
        .map(|(action, n)| {
            let word = match (*action, *n) {
                ("download", 1) => "download".to_string(),
                ("download", _) => "downloads".to_string(),
                ("query", 1) => "query".to_string(),
                ("query", _) => "queries".to_string(),
                (other, _) => esc(other),
            };
            format!("{} {word}", group(*n))
        })
        .collect::<Vec<_>>()
        .join(", ");

    o.push_str("<section>\n<h2>Summary</h2>\n<dl class=\"summary\">\n");
    let _ = write!(o, "<dt>Uses recorded</dt><dd>{}", group(entries.len() as u64));
    if !actions.is_empty() {
        let _ = write!(o, " ({actions})");
    }
    o.push_str("</dd>\n");
    let _ = write!(o, "<dt>Consumers</dt><dd>{}", group(consumers.len() as u64));
    if private > 0 {
        let _ = write!(o, " (private uses count as one: “{PRIVATE_LABEL}”)");
    }
    o.push_str("</dd>\n");
    let _ = writeln!(
        o,
        "<dt>Data served</dt><dd>{} ({} bytes)</dd>",
        human_bytes(bytes),
        group(bytes)
    );
    if queries > 0 {
        let _ = writeln!(
            o,
            "<dt>Rows returned by queries</dt><dd>{} (over {})</dd>",
            group(rows),
            if queries == 1 {
                "1 query".to_string()
            } else {
                format!("{} queries", group(queries))
            }
        );
    } else {
        o.push_str("<dt>Rows returned by queries</dt><dd>— (no queries)</dd>\n");
    }
    let _ = writeln!(
        o,
        "<dt>Outcomes</dt><dd><span class=\"o-acknowledged\">{} acknowledged</span> · \
         <span class=\"o-disputed\">{} disputed</span> · <span class=\"o-unacknowledged\">{} unacknowledged</span> · \
         <span class=\"o-failed\">{} failed</span></dd>",
        group(outcomes[0]),
        group(outcomes[1]),
        group(outcomes[2]),
        group(outcomes[3])
    );
    let _ = writeln!(o, "<dt>Private uses</dt><dd>{}</dd>", group(private));
    let first = entries.iter().min_by_key(|e| e.logged_at);
    let last = entries.iter().max_by_key(|e| e.logged_at);
    for (what, e) in [("First use recorded", first), ("Last use recorded", last)] {
        match e {
            Some(e) => {
                let _ = writeln!(
                    o,
                    "<dt>{what}</dt><dd>{} (block {})</dd>",
                    format_utc(e.logged_at),
                    e.height
                );
            }
            None => {
                let _ = writeln!(o, "<dt>{what}</dt><dd>—</dd>");
            }
        }
    }
    let _ = writeln!(o, "<dt>Chain</dt><dd class=\"mono\">{}</dd>", esc(&r.chain_id));
    let _ = writeln!(o, "<dt>Ledger head when traced</dt><dd>block {}</dd>", r.head_height);
    let _ = writeln!(
        o,
        "<dt>Report generated</dt><dd>{} (UTC)</dd>",
        format_utc(r.generated_at)
    );
    o.push_str("</dl>\n</section>\n");
}

fn explanation(o: &mut String) {
    o.push_str(
        "<section class=\"explain\">\n<h2>How to read this report</h2>\n\
<p>Each row of the trace is one entry of the access log: one use of data (a download of a dataset version, \
or a query run against it) that the provider's node recorded on the consortium's shared ledger, in the block \
shown. Times are when the ledger recorded the use, in UTC. The outcome says what the consumer confirmed:</p>\n<ul>\n\
<li><span class=\"o-acknowledged\">acknowledged</span>: the consumer signed a receipt confirming it received \
exactly the data committed on the ledger (for a query, exactly the result the provider recorded).</li>\n\
<li><span class=\"o-disputed\">disputed</span>: the consumer signed that what it received did not match.</li>\n\
<li><span class=\"o-unacknowledged\">unacknowledged</span>: no receipt came back; the entry rests on the \
provider's word alone.</li>\n\
<li><span class=\"o-failed\">failed</span>: a query that ran and failed (an error, the time or memory limit, a \
result too large). Nothing was sent, and it counted as a use all the same.</li>\n\
<li><span class=\"private\">private</span>: a zero-knowledge use. The ledger holds a proof that some valid \
grant was used, without naming the grant or the consumer; the consumer is revealed only to the auditors who \
open it.</li>\n</ul>\n\
<p>Nothing here needs to be taken on trust: every row can be verified offline, against the ledger's own \
signatures, with <code>liutong verify --bundle</code>.</p>\n</section>\n",
    );
}

fn svg(o: &mut String, t: &Timeline, consumers: &[Consumer], names: &BTreeMap<String, String>) {
    const W: f64 = 960.0;
    const H: f64 = 320.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 56.0;
    const PW: f64 = W - LEFT - RIGHT;
    const PH: f64 = H - TOP - BOTTOM;

    let n = t.bars.len().max(1);
    let max = t.bars.iter().map(|b| b.values().sum::<u64>()).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let top = max.div_ceil(step).saturating_mul(step).max(1);
    let y_of = |v: u64| TOP + PH - v as f64 / top as f64 * PH;
    let slot = PW / n as f64;
    let bar_w = (slot * 0.8).min(48.0);
    let labels: Vec<String> = consumers.iter().map(|c| c.who.label(names)).collect();
    let unit = if t.bucket_days == 1 { "day" } else { "period" };

    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" \
         aria-labelledby=\"timeline-title\">\n<title id=\"timeline-title\">Uses per {unit} by consumer</title>"
    );

    // Horizontal grid and y ticks.
    let mut v = 0u64;
    while v <= top {
        let y = y_of(v);
        let _ = writeln!(
            o,
            "<line class=\"grid\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>",
            LEFT,
            y,
            LEFT + PW,
            y,
            LEFT - 6.0,
            y,
            group(v)
        );
        v = match v.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }

    // Stacked bars: one segment per (period, consumer), in legend order from the bottom.
    for (i, bar) in t.bars.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let period = esc(&t.period(i));
        let mut below = 0u64;
        for (&c, &count) in bar {
            let (Some(consumer), Some(label)) = (consumers.get(c), labels.get(c)) else {
                continue;
            };
            let y = y_of(below + count);
            let h = y_of(below) - y;
            below += count;
            let _ = writeln!(
                o,
                "<rect class=\"seg\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\" \
                 data-period=\"{}\" data-consumer=\"{}\" data-count=\"{}\"><title>{} — {}: {}</title></rect>",
                x,
                y,
                bar_w,
                h,
                consumer.colour,
                period,
                esc(consumer.who.key()),
                count,
                period,
                esc(label),
                uses(count)
            );
        }
    }

    // The x axis, a few dates, and the axis labels.
    let base = TOP + PH;
    let _ = writeln!(
        o,
        "<line class=\"axis\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        LEFT,
        base,
        LEFT + PW,
        base
    );
    let every = n.div_ceil(6).max(1);
    for i in (0..t.bars.len()).step_by(every) {
        let cx = LEFT + (i as f64 + 0.5) * slot;
        let _ = writeln!(
            o,
            "<line class=\"axis\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            cx,
            base,
            cx,
            base + 4.0,
            cx,
            base + 17.0,
            day_text(t.start(i))
        );
    }
    let x_label = match t.bucket_days {
        1 => "Day (UTC) the ledger recorded the use".to_string(),
        7 => format!(
            "7-day weeks starting {} (UTC; the span is over {DAILY_SPAN_DAYS} days), by the day the ledger recorded the use",
            day_text(t.first_day)
        ),
        d => format!(
            "{d}-day periods starting {} (UTC), by the day the ledger recorded the use",
            day_text(t.first_day)
        ),
    };
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + PW / 2.0,
        H - 12.0,
        esc(&x_label)
    );
    let mid = TOP + PH / 2.0;
    let _ = writeln!(
        o,
        "<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">Uses</text>",
        mid, mid
    );
    o.push_str("</svg>\n");
}

fn legend(o: &mut String, consumers: &[Consumer], names: &BTreeMap<String, String>) {
    o.push_str("<ul class=\"legend\">\n");
    for c in consumers {
        let who = match &c.who {
            Who::Named(code) => match names.get(code) {
                Some(name) => format!("{} <span class=\"code\">{}</span>", esc(name), esc(code)),
                None => format!("<span class=\"code\">{}</span>", esc(code)),
            },
            Who::Private => format!("<span class=\"private\">{PRIVATE_LABEL}</span>"),
        };
        let _ = writeln!(
            o,
            "<li><span class=\"sw\" style=\"background:{}\"></span>{who} — {}</li>",
            c.colour,
            uses(c.uses)
        );
    }
    o.push_str("</ul>\n");
    if consumers.iter().filter(|c| matches!(c.who, Who::Named(_))).count() > PALETTE.len() {
        o.push_str("<p class=\"code\">Colours repeat after ten consumers; hover over a bar to see whose it is.</p>\n");
    }
}

fn table(o: &mut String, r: &ReportInput<'_>) {
    let total = r.entries.len();
    let shown = total.min(MAX_TABLE_ROWS);
    o.push_str("<section>\n<h2>Trace</h2>\n");
    let _ = writeln!(
        o,
        "<p>{}, oldest first. Hover over a shortened digest to see it whole.</p>",
        uses(total as u64)
    );
    if shown < total {
        let left = total - shown;
        let _ = writeln!(
            o,
            "<p class=\"note\">Showing the first {} of {} uses; {} left out of this table (the summary and the \
             chart above count them all). The CSV export (<code>--format csv</code>) has every row.</p>",
            group(shown as u64),
            group(total as u64),
            if left == 1 {
                "1 more is".to_string()
            } else {
                format!("{} more are", group(left as u64))
            }
        );
    }
    o.push_str(
        "<div class=\"table-wrap\">\n<table>\n<thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Block</th>\
<th scope=\"col\">Dataset</th><th scope=\"col\">Action</th><th scope=\"col\">Consumer</th><th scope=\"col\">Provider</th>\
<th scope=\"col\">Grant</th><th scope=\"col\">Outcome</th><th scope=\"col\">Bytes</th><th scope=\"col\">Rows</th>\
<th scope=\"col\">Request digest</th><th scope=\"col\">Result digest</th><th scope=\"col\">Tx</th></tr></thead>\n<tbody>\n",
    );
    for e in r.entries.iter().take(MAX_TABLE_ROWS) {
        row(o, r, e);
    }
    o.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn row(o: &mut String, r: &ReportInput<'_>, e: &AccessRecord) {
    let dataset_hex = e.dataset.to_string();
    let dataset = match r.datasets.get(&dataset_hex) {
        Some(name) => esc(name),
        None => format!("<span class=\"mono\">{}</span>", esc(&short(&dataset_hex))),
    };
    let private = is_private(e);
    let consumer = match (&e.consumer, private) {
        (Some(c), false) => party(r.names, c.as_str()),
        _ => match &e.private {
            Some(p) => format!(
                "<span class=\"private\" title=\"zero-knowledge use; nullifier {}\">{PRIVATE_LABEL}</span>",
                p.nullifier
            ),
            None => format!("<span class=\"private\">{PRIVATE_LABEL}</span>"),
        },
    };
    let grant = match (e.grant, private) {
        (Some(g), false) => {
            let g = g.to_string();
            format!("<span title=\"{}\">{}</span>", esc(&g), esc(&short(&g)))
        }
        _ => "—".to_string(),
    };
    let outcome = e.outcome.as_str();
    let mark = match e.outcome {
        AccessOutcome::Acknowledged => "✓",
        AccessOutcome::Disputed => "✗",
        AccessOutcome::Unacknowledged => "–",
        AccessOutcome::Failed => "!",
    };
    let reason = e
        .receipt
        .as_ref()
        .filter(|rc| !rc.reason.is_empty())
        .map(|rc| format!(" title=\"{}\"", esc(&rc.reason)))
        .unwrap_or_default();
    let rows = e
        .query
        .as_ref()
        .map(|q| group(q.rows))
        .unwrap_or_else(|| "—".to_string());
    let _ = writeln!(
        o,
        "<tr><td class=\"mono\" title=\"served at {} (provider's clock)\">{}</td><td class=\"num\">{}</td>\
         <td title=\"{}\">{} <span class=\"code\">v{}</span></td><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"mono\">{}</td><td class=\"o-{}\"{}>{} {}</td><td class=\"num\" title=\"{} bytes\">{}</td>\
         <td class=\"num\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
        format_utc(e.served_at),
        format_utc(e.logged_at),
        e.height,
        esc(&dataset_hex),
        dataset,
        e.version,
        esc(&e.action),
        consumer,
        party(r.names, e.provider.as_str()),
        grant,
        outcome,
        reason,
        mark,
        outcome,
        group(e.bytes),
        human_bytes(e.bytes),
        rows,
        digest_cell(&e.request.to_string()),
        digest_cell(&e.result.to_string()),
        digest_cell(&e.tx_id.to_string()),
    );
}

/// A party's legal name over its credit code, or the code alone.
fn party(names: &BTreeMap<String, String>, code: &str) -> String {
    match names.get(code) {
        Some(name) => format!("{}<br><span class=\"code\">{}</span>", esc(name), esc(code)),
        None => format!("<span class=\"mono\">{}</span>", esc(code)),
    }
}

/// Shortened hex with the whole value on hover.
fn digest_cell(hex: &str) -> String {
    format!("<span title=\"{}\">{}</span>", esc(hex), esc(&short(hex)))
}

/// RFC 4180 CSV with a header line, one line per entry, CRLF line ends.
pub fn csv(r: &ReportInput<'_>) -> String {
    let mut o = String::with_capacity(256 + r.entries.len() * 512);
    o.push_str(CSV_HEADER);
    o.push_str("\r\n");
    let name_of = |code: &str| r.names.get(code).cloned().unwrap_or_default();
    for e in r.entries {
        let private = is_private(e);
        let consumer = if private { None } else { e.consumer.as_ref() };
        let dataset = e.dataset.to_string();
        let dataset_name = r.datasets.get(&dataset).cloned().unwrap_or_default();
        // In header order.
        let cells: [String; 20] = [
            format_utc(e.logged_at),
            e.height.to_string(),
            e.tx_id.to_string(),
            e.request.to_string(),
            dataset,
            dataset_name,
            e.version.to_string(),
            e.action.clone(),
            e.provider.as_str().to_string(),
            name_of(e.provider.as_str()),
            consumer.map(|c| c.as_str().to_string()).unwrap_or_default(),
            consumer.map(|c| name_of(c.as_str())).unwrap_or_default(),
            match (e.grant, private) {
                (Some(g), false) => g.to_string(),
                _ => String::new(),
            },
            (if private { "private" } else { "public" }).to_string(),
            e.outcome.as_str().to_string(),
            e.bytes.to_string(),
            e.query.as_ref().map(|q| q.rows.to_string()).unwrap_or_default(),
            e.result.to_string(),
            e.query.as_ref().map(|q| q.query.to_string()).unwrap_or_default(),
            e.private.as_ref().map(|p| p.nullifier.to_string()).unwrap_or_default(),
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&csv_cell(cell));
        }
        o.push_str("\r\n");
    }
    o
}

/// One CSV field: a text a spreadsheet would run as a formula gets a
/// leading `'`; a field with a comma, quote or line break is quoted, its
/// quotes doubled (RFC 4180).
fn csv_cell(text: &str) -> String {
    let mut cell = String::with_capacity(text.len() + 3);
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        cell.push('\'');
    }
    cell.push_str(text);
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// HTML-escapes text for element content and quoted attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The first 12 characters and "…", or the text when it is that short.
fn short(text: &str) -> String {
    if text.chars().count() > 12 {
        let head: String = text.chars().take(12).collect();
        format!("{head}…")
    } else {
        text.to_string()
    }
}

/// The UTC date of a day number (days since 1970-01-01).
fn day_text(day: u64) -> String {
    let mut text = format_utc(day.saturating_mul(DAY_MS));
    text.truncate(10);
    text
}

/// "1 use", "3 uses", "12,345 uses".
fn uses(n: u64) -> String {
    if n == 1 {
        "1 use".to_string()
    } else {
        format!("{} uses", group(n))
    }
}

/// A count with thousands separators: 1234567 -> "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: "512 B", "1.5 KiB", "3.2 MiB".
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A y-axis step of 1, 2 or 5 × 10^k giving at most five intervals up to `max`.
fn nice_step(max: u64) -> u64 {
    let mut magnitude: u64 = 1;
    loop {
        for m in [1u64, 2, 5] {
            let step = m.saturating_mul(magnitude);
            if max.div_ceil(step) <= 5 {
                return step;
            }
        }
        match magnitude.checked_mul(10) {
            Some(next) => magnitude = next,
            None => return max.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::QueryEntry;
    use crate::grants::GrantId;
    use liutong_catalog::DatasetId;
    use liutong_core::{CreditCode, Digest};

    const PROVIDER: &str = "91350100M000100Y43";
    const BANK: &str = "91110105MA00AUDT04";
    const INSURER: &str = "91310000MA00000012";
    /// 2026-11-25T00:00:00Z.
    const DAY0: Timestamp = 1_795_564_800_000;

    fn code(text: &str) -> CreditCode {
        CreditCode::parse(text).expect("valid credit code")
    }

    fn entry(n: u8, at: Timestamp, consumer: Option<&str>) -> AccessRecord {
        AccessRecord {
            request: Digest([n; 32]),
            grant: consumer.map(|_| GrantId([n; 16])),
            dataset: DatasetId([0xd5; 16]),
            version: 2,
            action: "download".to_string(),
            provider: code(PROVIDER),
            consumer: consumer.map(code),
            result: Digest([0xee; 32]),
            bytes: 1536,
            served_at: at - 500,
            outcome: AccessOutcome::Acknowledged,
            receipt: None,
            query: None,
            private: None,
            tx_id: Digest([n.wrapping_add(100); 32]),
            height: 10 + u64::from(n),
            logged_at: at,
        }
    }

    fn names() -> BTreeMap<String, String> {
        BTreeMap::from([
            (PROVIDER.to_string(), "Xiamen Port Group".to_string()),
            (BANK.to_string(), "Bank of Example".to_string()),
            (INSURER.to_string(), "Example Insurance".to_string()),
        ])
    }

    fn datasets() -> BTreeMap<String, String> {
        BTreeMap::from([(
            DatasetId([0xd5; 16]).to_string(),
            "Port container moves 2026".to_string(),
        )])
    }

    fn input<'a>(
        entries: &'a [AccessRecord],
        names: &'a BTreeMap<String, String>,
        datasets: &'a BTreeMap<String, String>,
    ) -> ReportInput<'a> {
        ReportInput {
            title: "Uses of dataset Port container moves 2026".to_string(),
            chain_id: "liutong-test".to_string(),
            subject: "dataset d5d5…, all versions".to_string(),
            generated_at: DAY0 + 40 * DAY_MS,
            head_height: 500,
            entries,
            names,
            datasets,
        }
    }

    /// (period, consumer, count) of every bar segment.
    fn segments(html: &str) -> Vec<(String, String, u64)> {
        html.split("<rect class=\"seg\"")
            .skip(1)
            .map(|s| {
                let attr = |name: &str| -> String {
                    let key = format!(" {name}=\"");
                    let start = s.find(&key).expect("attribute") + key.len();
                    let len = s[start..].find('"').expect("attribute end");
                    s[start..start + len].to_string()
                };
                (
                    attr("data-period"),
                    attr("data-consumer"),
                    attr("data-count").parse().expect("count"),
                )
            })
            .collect()
    }

    #[test]
    fn html_escapes_names() {
        let entries = vec![entry(1, DAY0 + 1000, Some(BANK))];
        let mut names = names();
        names.insert(BANK.to_string(), "Bank <b>&\"Co\" 'x'".to_string());
        let mut datasets = datasets();
        datasets.insert(
            DatasetId([0xd5; 16]).to_string(),
            "<script>alert(1)</script>".to_string(),
        );
        let mut r = input(&entries, &names, &datasets);
        r.title = "Uses of <i>\"T\"</i> & more".to_string();
        let html = html(&r);
        assert!(html.contains("Bank &lt;b&gt;&amp;&quot;Co&quot; &#39;x&#39;"));
        assert!(!html.contains("Bank <b>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Uses of &lt;i&gt;&quot;T&quot;&lt;/i&gt; &amp; more"));
        assert!(!html.contains("<i>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn html_is_self_contained() {
        let entries = vec![
            entry(1, DAY0 + 1000, Some(BANK)),
            entry(2, DAY0 + DAY_MS, Some(INSURER)),
            entry(3, DAY0 + 2 * DAY_MS, None),
        ];
        let (names, datasets) = (names(), datasets());
        let html = html(&input(&entries, &names, &datasets));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
        for banned in [
            "<script", "<link", "src=", "url(", "@import", "<img", "<iframe", "<object", "<embed",
        ] {
            assert!(!html.contains(banned), "{banned}");
        }
        let rest = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!rest.contains("http://") && !rest.contains("https://") && !rest.contains("//cdn"));
        assert_eq!(html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(), 1);
        assert!(html.contains("liutong verify --bundle"));
        assert!(html.contains("<table>") && html.contains("</svg>"));
    }

    #[test]
    fn timeline_has_one_segment_per_day_and_consumer() {
        let mut entries = vec![
            entry(1, DAY0 + 1000, Some(BANK)),
            entry(2, DAY0 + 2000, Some(INSURER)),
            entry(3, DAY0 + 3000, Some(BANK)),
            entry(4, DAY0 + 4000, None),
            entry(5, DAY0 + 2 * DAY_MS + 5, Some(BANK)),
        ];
        entries[1].query = Some(QueryEntry {
            query: Digest([9; 32]),
            rows: 42,
            enforced: vec![],
            failure: None,
        });
        let (names, datasets) = (names(), datasets());
        let html = html(&input(&entries, &names, &datasets));
        let mut got = segments(&html);
        got.sort();
        let mut want = vec![
            ("2026-11-25".to_string(), BANK.to_string(), 2),
            ("2026-11-25".to_string(), INSURER.to_string(), 1),
            ("2026-11-25".to_string(), "private".to_string(), 1),
            ("2026-11-27".to_string(), BANK.to_string(), 1),
        ];
        want.sort();
        assert_eq!(got, want);
        // The empty day between is a gap: no segment names it.
        assert!(!html.contains("data-period=\"2026-11-26\""));
        assert!(html.contains("<title>2026-11-25 — Bank of Example (91110105MA00AUDT04): 2 uses</title>"));
        // The legend: name, code, total.
        assert!(html.contains("Bank of Example <span class=\"code\">91110105MA00AUDT04</span> — 3 uses"));
        assert!(html.contains(&format!("{PRIVATE_LABEL}</span> — 1 use")));
        assert!(html.contains("Day (UTC)"));
        // Summary: 3 consumers (private as one), 42 rows.
        assert!(html.contains("<dt>Consumers</dt><dd>3"));
        assert!(html.contains("<dt>Rows returned by queries</dt><dd>42"));
    }

    #[test]
    fn long_spans_are_bucketed_by_week() {
        let entries = vec![
            entry(1, DAY0, Some(BANK)),
            entry(2, DAY0 + 3 * DAY_MS, Some(BANK)),
            entry(3, DAY0 + 200 * DAY_MS, Some(BANK)),
        ];
        let (names, datasets) = (names(), datasets());
        let html = html(&input(&entries, &names, &datasets));
        let got = segments(&html);
        assert_eq!(got.len(), 2);
        assert!(got[0].0.starts_with("2026-11-25 to "));
        assert_eq!(got[0].2, 2);
        // Day 200 falls in the week starting day 196.
        assert!(got[1].0.starts_with(&day_text(DAY0 / DAY_MS + 196)));
        assert_eq!(got[1].2, 1);
        assert!(html.contains("7-day weeks starting 2026-11-25"));
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let mut entries = vec![entry(1, DAY0 + 1000, Some(BANK)), entry(2, DAY0 + 2000, Some(INSURER))];
        entries[0].action = "@SUM(A1)".to_string();
        let mut names = names();
        names.insert(BANK.to_string(), "Acme, \"Ltd\"".to_string());
        names.insert(INSURER.to_string(), "=HYPERLINK(\"x\")".to_string());
        names.insert(PROVIDER.to_string(), "line one\nline two".to_string());
        let mut datasets = datasets();
        datasets.insert(DatasetId([0xd5; 16]).to_string(), "-1+1".to_string());
        let csv = csv(&input(&entries, &names, &datasets));
        assert!(csv.starts_with(&format!("{CSV_HEADER}\r\n")));
        assert!(csv.contains(",\"Acme, \"\"Ltd\"\"\","));
        assert!(csv.contains(",\"'=HYPERLINK(\"\"x\"\")\","));
        assert!(csv.contains(",\"line one\nline two\","));
        assert!(csv.contains(",'-1+1,"));
        assert!(csv.contains(",'@SUM(A1),"));
        assert!(csv.ends_with("\r\n"));
        assert_eq!(csv.matches("\r\n").count(), 3);

        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("+86 592"), "'+86 592");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn csv_columns_follow_the_header() {
        let mut public = entry(1, DAY0 + 1000, Some(BANK));
        public.action = "query".to_string();
        public.query = Some(QueryEntry {
            query: Digest([7; 32]),
            rows: 12,
            enforced: vec!["columns: a, b".to_string()],
            failure: None,
        });
        let private = entry(2, DAY0 + 2000, None);
        let entries = vec![public, private];
        let (names, datasets) = (names(), datasets());
        let csv = csv(&input(&entries, &names, &datasets));
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 4); // header, two rows, and the empty text after the last CRLF
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header.len(), 20);
        let col = |line: &str, name: &str| -> String {
            let i = header.iter().position(|h| *h == name).expect("column");
            line.split(',').nth(i).expect("cell").to_string()
        };
        let (a, b) = (lines[1], lines[2]);
        assert_eq!(col(a, "logged_at"), format_utc(DAY0 + 1000));
        assert_eq!(col(a, "block"), "11");
        assert_eq!(col(a, "dataset"), DatasetId([0xd5; 16]).to_string());
        assert_eq!(col(a, "dataset_name"), "Port container moves 2026");
        assert_eq!(col(a, "version"), "2");
        assert_eq!(col(a, "consumer"), BANK);
        assert_eq!(col(a, "consumer_name"), "Bank of Example");
        assert_eq!(col(a, "provider_name"), "Xiamen Port Group");
        assert_eq!(col(a, "grant"), GrantId([1; 16]).to_string());
        assert_eq!(col(a, "mode"), "public");
        assert_eq!(col(a, "outcome"), "acknowledged");
        assert_eq!(col(a, "rows"), "12");
        assert_eq!(col(a, "query"), Digest([7; 32]).to_string());
        assert_eq!(col(a, "nullifier"), "");
        assert_eq!(col(b, "consumer"), "");
        assert_eq!(col(b, "consumer_name"), "");
        assert_eq!(col(b, "grant"), "");
        assert_eq!(col(b, "mode"), "private");
        assert_eq!(col(b, "rows"), "");
        assert_eq!(col(b, "tx"), Digest([102; 32]).to_string());
    }

    #[test]
    fn empty_trace() {
        let entries: Vec<AccessRecord> = vec![];
        let (names, datasets) = (names(), datasets());
        let r = input(&entries, &names, &datasets);
        let html = html(&r);
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert!(html.contains("No uses"));
        assert!(!html.contains("<rect"));
        assert!(!html.contains("<table>"));
        assert_eq!(csv(&r), format!("{CSV_HEADER}\r\n"));
    }

    #[test]
    fn long_traces_show_the_first_rows() {
        let entries: Vec<AccessRecord> = (0..MAX_TABLE_ROWS + 1)
            .map(|i| entry((i % 250) as u8, DAY0 + i as u64 * 1000, Some(BANK)))
            .collect();
        let (names, datasets) = (names(), datasets());
        let r = input(&entries, &names, &datasets);
        let html = html(&r);
        assert_eq!(html.matches("<tr><td").count(), MAX_TABLE_ROWS);
        assert!(html.contains("Showing the first 10,000 of 10,001 uses; 1 more is left out"));
        assert_eq!(csv(&r).matches("\r\n").count(), MAX_TABLE_ROWS + 2);
    }

    #[test]
    fn small_helpers() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab…");
        assert_eq!(short("abc"), "abc");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(group(0), "0");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(23), 5);
        assert_eq!(nice_step(480), 100);
        assert_eq!(day_text(DAY0 / DAY_MS), "2026-11-25");
        assert_eq!(esc("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
    }
}
