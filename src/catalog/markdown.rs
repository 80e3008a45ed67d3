//! The Markdown table of a catalog: cells of a row, and the escaping that lets any name,
//! unit or help text read back unchanged.

/// The cells of a Markdown table row, unescaped `|` separating them; `None` for a line that
/// is not a row.
pub(super) fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let inner = line.strip_prefix('|')?;
    let mut cells = Vec::new();
    let mut cell = String::new();
    // The end of the last escaped character of `cell`: the padding trimmed from a cell's end
    // stops there (an escaped space is text).
    let mut kept = 0;
    // A cell's text without the padding around it.
    let trimmed = |cell: &str, kept: usize| {
        let end = cell.trim_end().len().max(kept);
        cell[..end].trim_start().to_owned()
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cell.push(c);
                if let Some(next) = chars.next() {
                    cell.push(next);
                }
                kept = cell.len();
            }
            '|' => {
                cells.push(trimmed(&cell, kept));
                cell.clear();
                kept = 0;
            }
            _ => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        cells.push(trimmed(&cell, kept));
    }
    Some(cells)
}

/// The characters escaped in a name, besides those of every cell: a name is written between
/// backticks, and label names are separated by commas.
pub(super) const CODE: &str = "`,";

/// `text` for a table cell: `\`, `|` and the characters of `also` escaped with a `\`, a line
/// feed as `\n`, a carriage return as `\r`, and whitespace at either end (which a cell's
/// padding would lose) with a `\` before it. [`unescape`] reverses it.
pub(super) fn escape(text: &str, also: &str) -> String {
    let start = text.len() - text.trim_start().len();
    let end = text.trim_end().len();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if also.contains(c) || (c.is_whitespace() && (i < start || i >= end)) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A cell's text with the escapes of [`escape`] undone (`\n` a line feed, `\r` a carriage
/// return, a `\` before any other character that character).
pub(super) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// `text` without the backticks around it (one on each side).
pub(super) fn unquote(text: &str) -> &str {
    text.strip_prefix('`')
        .and_then(|t| t.strip_suffix('`'))
        .unwrap_or(text)
}

/// `text` split at each `sep` that no `\` escapes.
pub(super) fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut from, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                parts.push(&text[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    parts
}
