//! Maps between places in a TOML text and dotted keys, so every configuration message can
//! name both the key and its line and column.

use std::ops::Range;

use toml_edit::{Document, Item, Table, Value};

/// 1-based (line, column) of a byte offset; the column counts characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted key whose key or value covers `offset`, the deepest one.
pub fn key_at(doc: &Document<&str>, offset: usize) -> Option<String> {
    let mut best = None;
    walk_table(doc.as_table(), "", offset, &mut best);
    best
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn covers(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset <= s.end)
}

fn walk_table(table: &Table, prefix: &str, offset: usize, best: &mut Option<String>) {
    for (key, item) in table.iter() {
        let path = join(prefix, key);
        let key_span = table.key(key).and_then(|k| k.span());
        match item {
            Item::Table(t) => {
                if covers(t.span(), offset) || covers(key_span, offset) {
                    *best = Some(path.clone());
                }
                walk_table(t, &path, offset, best);
            }
            Item::ArrayOfTables(arr) => {
                for t in arr.iter() {
                    if covers(t.span(), offset) {
                        *best = Some(path.clone());
                    }
                    walk_table(t, &path, offset, best);
                }
            }
            Item::Value(v) => {
                if covers(v.span(), offset) || covers(key_span, offset) {
                    *best = Some(path.clone());
                }
                if let Value::InlineTable(t) = v {
                    for (k, inner) in t.iter() {
                        if covers(inner.span(), offset) {
                            *best = Some(join(&path, k));
                        }
                    }
                }
            }
            Item::None => {}
        }
    }
}

/// The span of the value at a dotted key, or of the key itself when the value has none.
pub fn span_of(doc: &Document<&str>, key: &str) -> Option<Range<usize>> {
    let mut item = doc.as_item();
    for part in key.split('.') {
        item = item.get(part)?;
    }
    item.span().or_else(|| item.as_value().and_then(Value::span))
}

/// The span of the key itself (not its value) at a dotted key.
pub fn key_span_of(doc: &Document<&str>, key: &str) -> Option<Range<usize>> {
    let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut item = doc.as_item();
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        item = item.get(part)?;
    }
    item.as_table_like()?.key(leaf)?.span()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a = 1\n[workload.resource_limits]\nmemory_mb = 0\n";

    #[test]
    fn finds_the_key_under_an_offset_and_back() {
        let doc = Document::parse(TEXT).unwrap();
        let off = TEXT.find("0\n").unwrap();
        assert_eq!(key_at(&doc, off).as_deref(), Some("workload.resource_limits.memory_mb"));
        let span = span_of(&doc, "workload.resource_limits.memory_mb").unwrap();
        assert_eq!(line_col(TEXT, span.start), (3, 13));
        let key = key_span_of(&doc, "workload.resource_limits.memory_mb").unwrap();
        assert_eq!(line_col(TEXT, key.start), (3, 1));
    }
}
