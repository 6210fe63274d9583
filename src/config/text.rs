//! Where things are in r58.toml's text: lines for error messages, and
//! whether a table is there at all (an absent `[paths]` means the default
//! test path; serde alone cannot tell absent from empty).

/// The 1-based line of a byte offset.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Does the file set anything under `[name]` (a table, a dotted key)?
pub(super) fn has_table(text: &str, name: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        l.strip_prefix('[')
            .is_some_and(|r| r.starts_with(name) && r[name.len()..].starts_with(['.', ']']))
            || l.starts_with(&format!("{name} ="))
            || l.starts_with(&format!("{name}."))
    })
}

/// The 1-based line where `key` is set inside `[section]` (or the section
/// header itself when the key is absent or empty), for validation messages.
pub(super) fn line_of_key(text: &str, section: &str, key: &str) -> usize {
    let mut current = String::new();
    let mut header_line = 1;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if let Some(h) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = h.trim().to_string();
            if current == section {
                header_line = i + 1;
            }
            continue;
        }
        if current == section
            && !key.is_empty()
            && let Some((k, _)) = l.split_once('=')
            && k.trim() == key
        {
            return i + 1;
        }
    }
    header_line
}

/// The same inside the `n`th (1-based) `[[array]]` table.
pub(super) fn line_of_entry_key(text: &str, array: &str, n: usize, key: &str) -> usize {
    let header = format!("[[{array}]]");
    let mut seen = 0;
    let mut header_line = 1;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            if l.replace(' ', "") == header {
                seen += 1;
                if seen == n {
                    header_line = i + 1;
                }
            } else if seen == n {
                break;
            }
            continue;
        }
        if seen == n
            && let Some((k, _)) = l.split_once('=')
            && k.trim() == key
        {
            return i + 1;
        }
    }
    header_line
}
