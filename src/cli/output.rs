//! How admin commands print their result on stdout: aligned tables and `key: value` blocks
//! for people, one JSON value per command for scripts (`--json`).
//!
//! JSON output uses snake_case field names that stay stable, RFC 3339 UTC times, `null` for
//! an absent value. Human output may change. Text from the database (names, scopes) is
//! cleaned of control characters before it reaches the terminal.

use std::io::Write;

use crate::clock::rfc3339;

/// The widest a table cell gets by default; longer text is cut and ends in `…`. Ids (client
/// ids, UUIDs) are shorter, so they are always printed whole.
pub const MAX_CELL: usize = 48;

/// An aligned table without borders: a header line, then one line per row, the columns
/// separated by two spaces, the last one not padded.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    max: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            max: vec![MAX_CELL; headers.len()],
            rows: vec![],
        }
    }

    /// Cuts the cells of column `index` to `max` characters (at least 2).
    pub fn max_width(mut self, index: usize, max: usize) -> Self {
        if let Some(m) = self.max.get_mut(index) {
            *m = max.max(2);
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are ignored.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).take(self.headers.len()).collect();
        cells.resize(self.headers.len(), String::new());
        for (cell, max) in cells.iter_mut().zip(&self.max) {
            *cell = fit(cell, *max);
        }
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i + 1 == line.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A table of `headers` and `rows` with the default cell width, rendered.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = Table::new(headers);
    for r in rows {
        t.row(r);
    }
    t.render()
}

/// A `key: value` block, the values aligned, each line indented by two spaces.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{key}:");
        out.push_str(&format!("  {label:<width$} {}\n", clean(value)));
    }
    out
}

/// Prints `text` on stdout as is. A closed pipe (`… | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write the output"))
        }
        _ => Ok(()),
    }
}

/// Prints `value` as one line of JSON on stdout (`--json`).
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    print(&format!("{value}\n"))
}

/// Prints `value` (a view of the admin API) as one line of JSON on stdout (`--json`): the
/// same text from the database and from `--server`.
pub fn json_of<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string(value)?))
}

/// Unix seconds of an RFC 3339 time of a view.
pub fn secs_of(text: &str) -> Option<i64> {
    ::time::OffsetDateTime::parse(text, &::time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A view's RFC 3339 time for people, as [`time`] prints it; other text is shown as is.
pub fn view_time(text: &str) -> String {
    secs_of(text).map_or_else(|| clean(text), time)
}

/// A time for people: `2026-11-29 12:00Z` (UTC, to the minute).
pub fn time(secs: i64) -> String {
    let full = rfc3339(secs);
    match (full.get(..10), full.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm}Z"),
        _ => full,
    }
}

/// A time for scripts: RFC 3339 UTC, or `null`.
pub fn json_time(secs: Option<i64>) -> serde_json::Value {
    secs.map_or(serde_json::Value::Null, |s| rfc3339(s).into())
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `text` without control characters (a stored name must not drive the terminal).
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `text` cleaned and cut to `max` characters, the last one `…` when cut.
fn fit(text: &str, max: usize) -> String {
    let text = clean(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_cut_long_cells() {
        let mut t = Table::new(&["ID", "NAME", "SCOPES"]).max_width(1, 6);
        t.row(["cli_a", "short", "a b"]);
        t.row(["cli_long_id", "much too long a name", "x"]);
        t.row(["cli_c", "tab\there", ""]);
        assert_eq!(
            t.render(),
            "ID           NAME    SCOPES\n\
             cli_a        short   a b\n\
             cli_long_id  much …  x\n\
             cli_c        tab?h…\n"
        );
        assert!(!t.is_empty());
    }

    #[test]
    fn cells_are_cut_at_the_default_width_but_ids_fit() {
        let uuid = "0194e0a4-7b5c-7d3e-9f00-0123456789ab";
        let long = "x".repeat(100);
        let out = table(&["TOKEN_ID", "NAME"], [vec![uuid.to_owned(), long]]);
        let line = out.lines().nth(1).unwrap();
        assert!(line.starts_with(uuid), "{line}");
        assert!(line.ends_with(&format!("{}…", "x".repeat(MAX_CELL - 1))), "{line}");
        // Missing cells are empty, extra ones dropped.
        assert_eq!(
            table(&["A", "B"], [vec!["1".to_owned()], vec!["1".into(), "2".into(), "3".into()]]),
            "A  B\n1\n1  2\n"
        );
    }

    #[test]
    fn fields_align_values() {
        let out = fields(&[("name", "x".into()), ("client_id", "cli_a".into()), ("bad", "a\u{1b}[2Jb".into())]);
        assert_eq!(out, "  name:      x\n  client_id: cli_a\n  bad:       a?[2Jb\n");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(1_800_000_000), "2027-01-15 08:00Z");
        assert_eq!(json_time(Some(1_800_000_000)), serde_json::json!("2027-01-15T08:00:00Z"));
        assert_eq!(json_time(None), serde_json::Value::Null);
    }
}
