//! Result formats: `table` (aligned, for people), `markdown` (for agents), `json` (the API's
//! object), `ndjson` (one row object per line, for pipes), `csv` (RFC 4180).
//!
//! Nothing is cut silently. `table` and `markdown` respect a character budget: over-wide cells
//! are cut first (with `…[N chars]`, the cell's full length), then rows, and a last line says
//! what was cut and how to get more. `json` carries `truncated` (and every statement's result
//! in `results`); `csv` and `ndjson` cannot carry a notice in-band, so theirs go to stderr
//! ([`Rendered::notices`]). One cell's text is decided in [`cell`], once for every format.

mod cell;
mod csv;
mod markdown;
mod ndjson;
mod table;

use clap::ValueEnum;

pub use cell::{cell_text, markdown_cell};

use crate::api::{Column, QueryResponse};
use crate::row::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Ndjson,
    Csv,
}

/// How to render a result.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// Character budget for `table` and `markdown`; 0 means none.
    pub max_chars: usize,
    /// The terminal width for `table` (None: not a terminal, no wrapping).
    pub width: Option<u16>,
    /// How NULL is written: `--null TEXT`. Default: an empty unquoted field in csv, `NULL` in
    /// table and markdown. Ignored by json and ndjson, which have a real null.
    pub null: Option<String>,
}

impl Options {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            max_chars: 0,
            width: None,
            null: None,
        }
    }
}

/// A rendered result: what goes to stdout, and notices for stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    pub stdout: String,
    /// One line each, for stderr: what csv and ndjson output could not say in-band.
    pub notices: Vec<String>,
}

/// Renders a result's stdout text. `max_chars` of 0 means no budget; `width` is the terminal
/// width for `table` (None: not a terminal, no wrapping). See [`render_output`] for the
/// notices csv and ndjson need on stderr.
pub fn render(
    response: &QueryResponse,
    format: Format,
    max_chars: usize,
    width: Option<u16>,
) -> String {
    let options = Options {
        max_chars,
        width,
        ..Options::new(format)
    };
    render_output(response, &options).stdout
}

/// Renders a result: stdout text and the notices for stderr.
pub fn render_output(response: &QueryResponse, options: &Options) -> Rendered {
    let mut notices = Vec::new();
    let stdout = match options.format {
        Format::Json => {
            let mut out = serde_json::to_string(response).unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Ndjson | Format::Csv => {
            let view = View::top(response);
            if response.results.len() > 1 {
                notices.push(not_printed(response));
            }
            if view.truncated {
                notices.push(format!(
                    "notice: showing the first {} rows; more exist; pass --max-rows N (0 = all) or aggregate in SQL",
                    view.rows.len()
                ));
            }
            if options.format == Format::Csv {
                csv::render(&view, options.null.as_deref().unwrap_or(""))
            } else {
                ndjson::render(&view)
            }
        }
        Format::Table | Format::Markdown => people(response, options),
    };
    Rendered { stdout, notices }
}

/// One statement's result as the formats see it.
pub(crate) struct View<'a> {
    /// Position, count and SQL, when the request ran several statements.
    pub statement: Option<(usize, usize, &'a str)>,
    pub query_id: &'a str,
    pub columns: &'a [Column],
    pub rows: &'a [Row],
    pub row_count: u64,
    pub truncated: bool,
    pub rows_affected: Option<u64>,
}

impl<'a> View<'a> {
    fn top(response: &'a QueryResponse) -> Self {
        Self {
            statement: None,
            query_id: &response.query_id,
            columns: &response.columns,
            rows: &response.rows,
            row_count: response.row_count,
            truncated: response.truncated,
            rows_affected: None,
        }
    }

    fn all(response: &'a QueryResponse) -> Vec<Self> {
        if response.results.len() <= 1 {
            return vec![Self::top(response)];
        }
        let count = response.results.len();
        response
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| Self {
                statement: Some((i + 1, count, r.statement.as_str())),
                query_id: &r.query_id,
                columns: &r.columns,
                rows: &r.rows,
                row_count: r.row_count,
                truncated: r.truncated,
                rows_affected: r.rows_affected,
            })
            .collect()
    }
}

/// `table` and `markdown`: every statement's result, each introduced by its statement when
/// there were several, sharing the character budget.
fn people(response: &QueryResponse, options: &Options) -> String {
    let views = View::all(response);
    let marker = options.null.as_deref().unwrap_or("NULL");
    let share = if options.max_chars == 0 {
        0
    } else {
        (options.max_chars / views.len()).max(1)
    };
    let mut out = String::new();
    for view in &views {
        let status = match view.statement {
            None => status_line(view, Some(response.elapsed_ms)),
            Some((index, count, sql)) => {
                let intro = format!("statement {index} of {count}: {}", summary(sql));
                match options.format {
                    Format::Markdown => out.push_str(&format!("{}\n\n", markdown_cell(&intro))),
                    _ => out.push_str(&format!("{}\n", cell::terminal_cell(&intro))),
                }
                status_line(view, None)
            }
        };
        let budget = Budget {
            max_chars: share,
            null_marker: marker,
            status: &status,
        };
        match options.format {
            Format::Markdown => out.push_str(&budget.fit(view, markdown_cell, &markdown::draw)),
            _ => {
                let width = options.width;
                out.push_str(&budget.fit(
                    view,
                    |t| cell::terminal_cell(t).into_owned(),
                    &|header: &[String], rows: &[Vec<String>]| table::draw(header, rows, width),
                ))
            }
        }
        if view.statement.is_some() {
            out.push('\n');
        }
    }
    if views.len() > 1 {
        out.push_str(&format!(
            "{} statements · {} ms\n",
            views.len(),
            response.elapsed_ms
        ));
    }
    out
}

/// A statement's SQL on one line, shortened for an introduction or a notice.
fn summary(sql: &str) -> String {
    let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    cell::cut(&line, Some(120)).0.into_owned()
}

/// The stderr notice of csv and ndjson when earlier statements' results were not printed.
fn not_printed(response: &QueryResponse) -> String {
    let count = response.results.len();
    let skipped: Vec<String> = response.results[..count - 1]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let size = match r.rows_affected {
                Some(n) => format!("{n} rows affected"),
                None => format!("{} rows", r.row_count),
            };
            format!("statement {} ({}: {size})", i + 1, summary(&r.statement))
        })
        .collect();
    format!(
        "notice: printed only the result of statement {count} of {count}; not printed: {}; use --format json, table or markdown to see every result",
        skipped.join(", ")
    )
}

fn status_line(view: &View<'_>, elapsed_ms: Option<u64>) -> String {
    let mut line = format!(
        "{} row{}",
        view.row_count,
        if view.row_count == 1 { "" } else { "s" }
    );
    if let Some(affected) = view.rows_affected {
        line.push_str(&format!(" · {affected} rows affected"));
    }
    line.push_str(&format!(" · query id {}", view.query_id));
    if let Some(ms) = elapsed_ms {
        line.push_str(&format!(" · {ms} ms"));
    }
    line.push('\n');
    line
}

/// Draws a header and (escaped, cut) rows.
type Draw<'a> = &'a dyn Fn(&[String], &[Vec<String>]) -> String;

/// Room kept for the lines that say what was cut.
const NOTICE_RESERVE: usize = 320;

/// Cells shorter than this are never cut, however small the budget.
const MIN_CELL_CHARS: usize = 40;

/// Fits one result into a character budget: cuts over-wide cells first, then rows.
struct Budget<'a> {
    /// 0 means none.
    max_chars: usize,
    null_marker: &'a str,
    /// The status line that follows the result (counted in the budget).
    status: &'a str,
}

impl Budget<'_> {
    fn fit(&self, view: &View<'_>, escape: impl Fn(&str) -> String, draw: Draw<'_>) -> String {
        let texts: Vec<Vec<String>> = view
            .rows
            .iter()
            .map(|row| {
                cell::raw_cells(row)
                    .into_iter()
                    .map(|raw| cell::display(&cell::cell(raw), self.null_marker))
                    .collect()
            })
            .collect();
        let header: Vec<String> = view.columns.iter().map(|c| escape(&c.name)).collect();
        let build = |shown: usize, cap: Option<usize>| {
            let mut cut_cells = 0;
            let rows: Vec<Vec<String>> = texts[..shown]
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|text| {
                            let (text, was_cut) = cell::cut(text, cap);
                            cut_cells += usize::from(was_cut);
                            escape(&text)
                        })
                        .collect()
                })
                .collect();
            (draw(&header, &rows), cut_cells)
        };
        let status_chars = self.status.chars().count();
        let size = |out: &str| out.chars().count() + status_chars;
        let fits_in = |out: &str, limit: usize| self.max_chars == 0 || size(out) <= limit;

        let total = texts.len();
        let mut shown = total;
        let mut cap = None;
        let (mut out, mut cut_cells) = build(shown, cap);
        if !fits_in(&out, self.max_chars) {
            // Once something is cut, the lines saying so must fit too.
            let limit = if self.max_chars > 4 * NOTICE_RESERVE {
                self.max_chars - NOTICE_RESERVE
            } else {
                self.max_chars
            };
            let fits = |out: &str| fits_in(out, limit);
            // Cut over-wide cells to an even share of the budget before giving up any row.
            let columns = view.columns.len().max(1);
            // Narrower still while the rows do not fit (padding and borders count too).
            let mut share = (self.max_chars / ((total + 3) * columns)).max(MIN_CELL_CHARS);
            while texts
                .iter()
                .flatten()
                .any(|t| t.len() > share && t.chars().nth(share).is_some())
            {
                cap = Some(share);
                (out, cut_cells) = build(shown, cap);
                if fits(&out) || share == MIN_CELL_CHARS {
                    break;
                }
                share = (share * 3 / 4).max(MIN_CELL_CHARS);
            }
            // Every row fits: give the cut cells as much of the budget as is left.
            if let Some(fitting) = cap.filter(|_| fits(&out)) {
                let longest = texts.iter().flatten().map(|t| t.chars().count()).max();
                let (mut low, mut high) = (fitting, longest.unwrap_or(fitting));
                while high - low > 16 {
                    let middle = low + (high - low) / 2;
                    if fits(&build(shown, Some(middle)).0) {
                        low = middle;
                    } else {
                        high = middle;
                    }
                }
                cap = Some(low);
                (out, cut_cells) = build(shown, cap);
            }
            // Then drop rows: shrink by the measured size per row, then step down until it fits.
            while shown > 0 && !fits(&out) {
                let per_row = size(&out) / (shown + 2);
                let excess = size(&out) - limit;
                shown = shown.saturating_sub((excess / per_row.max(1)).max(1));
                (out, cut_cells) = build(shown, cap);
            }
        }
        out.push_str(self.status);
        if cut_cells > 0 {
            out.push_str(&format!(
                "… {cut_cells} cell{} cut to {} characters (…[N chars] gives the full length) to fit the character budget; pass --max-chars 0 to see them whole\n",
                if cut_cells == 1 { "" } else { "s" },
                cap.unwrap_or_default()
            ));
        }
        if let Some(line) = rows_notice(view, shown) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn rows_notice(view: &View<'_>, shown: usize) -> Option<String> {
    let total = view.rows.len();
    if shown < total {
        Some(format!(
            "… showing {shown} of {total}{} rows (character budget); narrow the query, pass --max-chars 0, or use --format csv",
            if view.truncated { "+" } else { "" }
        ))
    } else if view.truncated {
        Some(format!(
            "… showing the first {total} rows; more exist (--max-rows {total}); pass --max-rows N (0 = all) or aggregate in SQL"
        ))
    } else {
        None
    }
}
