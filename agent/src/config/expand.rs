//! keepalived's line generators and brace globs, as pure functions:
//! `~SEQ(var, start, step, end)` / `~SEQx(...)` (hexadecimal) and
//! `~LST(var, v1, v2…)` / `~LST({A, B}, {1, 2}, {3, 4})` repeat the rest of
//! their line with `$var` bound to each value; `include` patterns expand
//! csh-style braces (`{a,b/{c,d}}`) before globbing, as glibc's GLOB_BRACE.

/// One generator at the start of a line: the bindings of each repetition
/// (variable, value) and the rest of the line.
#[derive(Debug, PartialEq, Eq)]
pub struct Generator<'l> {
    pub runs: Vec<Vec<(String, String)>>,
    pub rest: &'l str,
}

/// `~SEQ(…) rest` / `~SEQx(…) rest` / `~LST(…) rest`: None when the line
/// does not start with one, Err with what is wrong in it.
pub fn generator(line: &str) -> Option<Result<Generator<'_>, String>> {
    let t = line.trim_start();
    let (kind, after) = if let Some(a) = t.strip_prefix("~SEQx(") {
        ("SEQx", a)
    } else if let Some(a) = t.strip_prefix("~SEQ(") {
        ("SEQ", a)
    } else if let Some(a) = t.strip_prefix("~LST(") {
        ("LST", a)
    } else {
        return None;
    };
    let Some(end) = closing(after) else {
        return Some(Err(format!("~{kind} misses its closing `)`")));
    };
    let (spec, rest) = (&after[..end], &after[end + 1..]);
    let runs = if kind == "LST" {
        lst(spec)
    } else {
        seq(spec, kind == "SEQx")
    };
    Some(runs.map(|runs| Generator { runs, rest }))
}

/// The `)` closing the generator's `(` (braces of ~LST groups nest inside).
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ')' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn number(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i64::from_str_radix(h, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("`{s}` is not a number"))?;
    Ok(if neg { -v } else { v })
}

/// Most repetitions one generator may make (keepalived's own example makes
/// 65,024 with three nested ones; each of those is far smaller).
const MAX_RUNS: i64 = 100_000;

/// `var, end` | `var, start, end` | `var, start, step, end`.
fn seq(spec: &str, hex: bool) -> Result<Vec<Vec<(String, String)>>, String> {
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    let var = parts[0].to_owned();
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("~SEQ variable `{var}` is not a name"));
    }
    let nums = parts[1..]
        .iter()
        .map(|p| number(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, step, end) = match nums[..] {
        [end] => (if end >= 0 { 1 } else { -1 }, None, end),
        [start, end] => (start, None, end),
        [start, step, end] => (start, Some(step), end),
        _ => return Err("~SEQ takes (var, [start, [step,]] end)".into()),
    };
    let step = step.unwrap_or(if end >= start { 1 } else { -1 });
    if step == 0 {
        return Err("~SEQ step 0 never ends".into());
    }
    if hex && (start < 0 || end < 0) {
        return Err("~SEQx is only for positive numbers".into());
    }
    let count = if (step > 0 && start > end) || (step < 0 && start < end) {
        0
    } else {
        (end - start) / step + 1
    };
    if count > MAX_RUNS {
        return Err(format!("~SEQ makes {count} lines, more than {MAX_RUNS}"));
    }
    Ok((0..count)
        .map(|k| {
            let v = start + k * step;
            let text = if hex { format!("{v:x}") } else { v.to_string() };
            vec![(var.clone(), text)]
        })
        .collect())
}

/// Splits on commas outside braces.
fn top_level_items(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[from..].trim());
    out
}

fn group(item: &str) -> Vec<String> {
    match item.strip_prefix('{').and_then(|i| i.strip_suffix('}')) {
        Some(inner) => inner.split(',').map(|v| v.trim().to_owned()).collect(),
        None => vec![item.to_owned()],
    }
}

/// `var, v1, v2…` or `{A, B}, {a1, b1}, {a2, b2}…`.
fn lst(spec: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let items = top_level_items(spec);
    let vars = group(items[0]);
    if vars
        .iter()
        .any(|v| v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(format!("~LST variables `{}` are not names", items[0]));
    }
    if items.len() < 2 {
        return Err("~LST needs at least one value".into());
    }
    items[1..]
        .iter()
        .map(|item| {
            let values = group(item);
            if values.len() != vars.len() {
                return Err(format!(
                    "~LST value `{item}` has {} value(s) for {} variable(s)",
                    values.len(),
                    vars.len()
                ));
            }
            Ok(vars.iter().cloned().zip(values).collect())
        })
        .collect()
}

/// csh-style brace expansion: `a{b,c{d,e}}f` -> abf, acdf, acef. A brace
/// without a comma at its level stays as written (as GLOB_BRACE leaves `{}`).
pub fn braces(pattern: &str) -> Vec<String> {
    let bytes: Vec<char> = pattern.chars().collect();
    let Some(open) = bytes.iter().position(|&c| c == '{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &c) in bytes.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let text = |a: usize, b: usize| bytes[a..b].iter().collect::<String>();
    let Some(close) = close.filter(|_| !commas.is_empty()) else {
        // Not an alternation here: keep this brace, expand what follows.
        let head = text(0, open + 1);
        return braces(&text(open + 1, bytes.len()))
            .into_iter()
            .map(|t| format!("{head}{t}"))
            .collect();
    };
    let (prefix, suffix) = (text(0, open), text(close + 1, bytes.len()));
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = text(w[0] + 1, w[1]);
        out.extend(braces(&format!("{prefix}{alt}{suffix}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(line: &str) -> Vec<String> {
        generator(line)
            .unwrap()
            .unwrap()
            .runs
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    /// The examples of keepalived.conf(5).
    #[test]
    fn seq_and_lst_make_keepalived_s_examples() {
        assert_eq!(
            values("~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1"),
            ["SUBNET=0", "SUBNET=1", "SUBNET=2", "SUBNET=3"]
        );
        assert_eq!(
            values("~SEQx(SUBNET, 144, 16, 192) x"),
            ["SUBNET=90", "SUBNET=a0", "SUBNET=b0", "SUBNET=c0"]
        );
        assert_eq!(
            values("~SEQx(SUBNET, 0x90, 0x10, 0xc0) x"),
            values("~SEQx(SUBNET, 144, 16, 192) x")
        );
        assert_eq!(values("~SEQx(AD1, 0x12, -1, 0x0f) x").len(), 4);
        assert_eq!(values("~SEQ(N, 3) x"), ["N=1", "N=2", "N=3"]);
        assert_eq!(values("~SEQ(N, -2) x"), ["N=-1", "N=-2"]);
        assert_eq!(values("~SEQ(N, 5, 3) x"), ["N=5", "N=4", "N=3"]);
        assert_eq!(
            values("~LST({IP, IP1}, {10,1},{20,4}) 192.168.${IP}.${IP1}"),
            ["IP=10,IP1=1", "IP=20,IP1=4"]
        );
        assert_eq!(values("~LST(IP, 1, 2, 3) x"), ["IP=1", "IP=2", "IP=3"]);
        let g = generator("~SEQ(A, 1, 2) ~LST(B, x, y) line")
            .unwrap()
            .unwrap();
        assert_eq!(g.rest.trim(), "~LST(B, x, y) line");
        assert!(generator("priority 100").is_none());
        for bad in [
            "~SEQ(N, 1, 0, 5) x",
            "~SEQ(N, a) x",
            "~SEQ(N 1 2 x",
            "~LST({A,B}, {1}) x",
            "~SEQx(N, -1, 3) x",
            "~SEQ(N, 1000000) x",
        ] {
            assert!(generator(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn braces_expand_as_glob_brace() {
        assert_eq!(
            braces("foo/{,cat,dog}.conf"),
            ["foo/.conf", "foo/cat.conf", "foo/dog.conf"]
        );
        assert_eq!(
            braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(braces("a{b}c"), ["a{b}c"]);
        assert_eq!(braces("plain/*.conf"), ["plain/*.conf"]);
    }
}
