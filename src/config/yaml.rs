//! Just enough YAML to read a `mediamtx.yml` for `r58 config import`:
//! block mappings and sequences by indentation, flow sequences `[a, b]`,
//! plain and quoted scalars, comments. Anything else (anchors, multi-line
//! strings, flow mappings) is refused with its line number rather than
//! guessed at. A one-off migration does not justify a YAML dependency.

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    Str(String),
    List(Vec<Yaml>),
    /// Keys in file order, each with its 1-based line.
    Map(Vec<(String, usize, Yaml)>),
}

impl Yaml {
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[Yaml] {
        match self {
            Yaml::List(l) => l,
            _ => &[],
        }
    }
}

/// One meaningful line: indentation, text without comment, line number.
struct Line {
    indent: usize,
    text: String,
    no: usize,
}

pub fn parse(src: &str) -> Result<Yaml, String> {
    let mut lines = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let no = i + 1;
        if raw.starts_with("---") || raw.starts_with("...") {
            continue;
        }
        let text = strip_comment(raw);
        if text.trim().is_empty() {
            continue;
        }
        if raw.contains('\t') && raw.trim_start_matches(' ').starts_with('\t') {
            return Err(format!("line {no}: tabs are not allowed for indentation"));
        }
        let indent = text.len() - text.trim_start().len();
        lines.push(Line {
            indent,
            text: text.trim().to_string(),
            no,
        });
    }
    let mut pos = 0;
    if lines.is_empty() {
        return Ok(Yaml::Map(vec![]));
    }
    let indent = lines[0].indent;
    let v = block(&lines, &mut pos, indent)?;
    if let Some(l) = lines.get(pos) {
        return Err(format!("line {}: unexpected indentation", l.no));
    }
    Ok(v)
}

/// A block (mapping or sequence) whose lines sit at `indent`.
fn block(lines: &[Line], pos: &mut usize, indent: usize) -> Result<Yaml, String> {
    let is_seq = lines[*pos].text == "-" || lines[*pos].text.starts_with("- ");
    if is_seq {
        let mut items = Vec::new();
        while let Some(l) = lines.get(*pos) {
            if l.indent != indent || !(l.text == "-" || l.text.starts_with("- ")) {
                break;
            }
            let rest = l.text[1..].trim_start().to_string();
            if rest.is_empty() {
                *pos += 1;
                items.push(child(lines, pos, indent)?);
            } else if split_key(&rest).is_some() {
                // `- key: value` starts a mapping indented past the dash.
                let inner = indent + (l.text.len() - rest.len());
                let mut sub = vec![Line {
                    indent: inner,
                    text: rest,
                    no: l.no,
                }];
                *pos += 1;
                while let Some(n) = lines.get(*pos) {
                    if n.indent < inner {
                        break;
                    }
                    sub.push(Line {
                        indent: n.indent,
                        text: n.text.clone(),
                        no: n.no,
                    });
                    *pos += 1;
                }
                let mut p = 0;
                items.push(block(&sub, &mut p, inner)?);
            } else {
                items.push(scalar(&rest, l.no)?);
                *pos += 1;
            }
        }
        return Ok(Yaml::List(items));
    }
    let mut map = Vec::new();
    while let Some(l) = lines.get(*pos) {
        if l.indent < indent {
            break;
        }
        if l.indent > indent {
            return Err(format!("line {}: unexpected indentation", l.no));
        }
        let Some((k, v)) = split_key(&l.text) else {
            return Err(format!("line {}: expected `key: value`", l.no));
        };
        let no = l.no;
        *pos += 1;
        let value = if v.is_empty() {
            child(lines, pos, indent)?
        } else {
            scalar(v, no)?
        };
        map.push((unquote(k), no, value));
    }
    Ok(Yaml::Map(map))
}

/// The nested block after `key:` or `-`, if the next line is deeper.
/// A sequence may sit at the same indentation as its key (common style).
fn child(lines: &[Line], pos: &mut usize, indent: usize) -> Result<Yaml, String> {
    match lines.get(*pos) {
        Some(n) if n.indent > indent => block(lines, pos, n.indent),
        Some(n) if n.indent == indent && n.text.starts_with("- ") => block(lines, pos, indent),
        _ => Ok(Yaml::Null),
    }
}

fn split_key(text: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') if i == 0 => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ':') if text[i + 1..].is_empty() || text[i + 1..].starts_with(' ') => {
                return Some((text[..i].trim(), text[i + 1..].trim()));
            }
            _ => {}
        }
    }
    None
}

fn scalar(v: &str, no: usize) -> Result<Yaml, String> {
    if v.starts_with(['&', '*', '|', '>', '{', '!']) {
        return Err(format!(
            "line {no}: `{v}` uses YAML this importer does not read (anchors, block strings, flow maps, tags)"
        ));
    }
    if let Some(inner) = v.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("line {no}: a `[` list must close on the same line"))?;
        let items = split_flow(inner)
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| scalar(&s, no))
            .collect::<Result<_, _>>()?;
        return Ok(Yaml::List(items));
    }
    match v {
        "~" | "null" => Ok(Yaml::Null),
        _ => Ok(Yaml::Str(unquote(v))),
    }
}

/// Split `a, "b,c", d` on the commas outside quotes.
fn split_flow(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None);
    for c in s.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        s[1..s.len() - 1].replace("''", "'")
    } else {
        s.to_string()
    }
}

/// Cut a `#` comment that is outside quotes and starts a word.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') if prev == ' ' || prev == '[' || prev == ',' => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev == ' ' || i == 0 => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = r#"
# STUN servers for ICE gathering
webrtcICEServers2:
  - url: stun:stun.l.google.com:19302
  - url: "turn:vps.example.no:3478"   # a comment
    username: AUTH_SECRET
    password: 'it''s secret'
webrtcICEHostNAT1To1IPs: ["65.109.32.111"]
webrtcLocalTCPAddress: :8190
webrtcAllowOrigins: ['*.preke.no', "http://localhost:*"]
paths:
  cam0:
    source: publisher
  mixer_program:
    source: publisher
    sourceOnDemand: no
  all_others:
"#;

    #[test]
    fn reads_the_fleet_shapes() {
        let y = parse(FLEET).unwrap();
        let servers = y.get("webrtcICEServers2").unwrap().as_list();
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0].get("url").unwrap().as_str(),
            Some("stun:stun.l.google.com:19302")
        );
        assert_eq!(
            servers[1].get("url").unwrap().as_str(),
            Some("turn:vps.example.no:3478")
        );
        assert_eq!(
            servers[1].get("password").unwrap().as_str(),
            Some("it's secret")
        );
        let hosts = y.get("webrtcICEHostNAT1To1IPs").unwrap().as_list();
        assert_eq!(hosts, [Yaml::Str("65.109.32.111".into())]);
        assert_eq!(
            y.get("webrtcLocalTCPAddress").unwrap().as_str(),
            Some(":8190")
        );
        let origins = y.get("webrtcAllowOrigins").unwrap().as_list();
        assert_eq!(origins[1], Yaml::Str("http://localhost:*".into()));
        let paths = y.get("paths").unwrap();
        let Yaml::Map(p) = paths else { panic!() };
        assert_eq!(
            p.iter().map(|(k, _, _)| k.as_str()).collect::<Vec<_>>(),
            ["cam0", "mixer_program", "all_others"]
        );
        assert_eq!(p[1].1, 14, "line numbers are kept");
        assert_eq!(p[2].2, Yaml::Null);
    }

    #[test]
    fn sequences_at_key_indentation_and_errors_with_lines() {
        let y = parse("a:\n- x\n- y\nb: 1\n").unwrap();
        assert_eq!(y.get("a").unwrap().as_list().len(), 2);
        assert_eq!(y.get("b").unwrap().as_str(), Some("1"));
        assert!(parse("a: &anchor 1\n").unwrap_err().starts_with("line 1:"));
        assert!(
            parse("a: |\n  text\n")
                .unwrap_err()
                .contains("block strings")
        );
        assert!(parse("a: 1\n   b: 2\n").unwrap_err().starts_with("line 2:"));
        assert!(parse("just text\n").unwrap_err().contains("key: value"));
    }
}
