//! Reads keepalived.conf files into tokens: `!`/`#` comments, quoted
//! strings, braces, `include` with globs relative to the including file,
//! `$NAME=value` definitions and `$NAME` / `${NAME}` uses, and keepalived's
//! conditional lines `@ID ...` / `@^ID ...` (config id, `-i` in keepalived).

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    diag::{Diagnostic, Diagnostics, Pos},
    expand,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub pos: Pos,
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Token),
    Open(Pos),
    Close(Pos),
    /// End of a line: statements are line-oriented.
    Eol,
}

const MAX_INCLUDE_DEPTH: usize = 16;

pub struct Reader<'a> {
    pub diags: &'a mut Diagnostics,
    defs: HashMap<String, Def>,
    config_id: Option<String>,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// Files in the include chain, to catch loops.
    stack: Vec<PathBuf>,
    /// keepalived's `include_check`: what every include checks, for the
    /// rest of the file that sets it (and the files it includes).
    include_checks: IncludeChecks,
}

impl<'a> Reader<'a> {
    pub fn new(diags: &'a mut Diagnostics, config_id: Option<String>) -> Reader<'a> {
        Reader {
            diags,
            defs: HashMap::new(),
            config_id,
            files: Vec::new(),
            stack: Vec::new(),
            include_checks: IncludeChecks::default(),
        }
    }

    /// Reads `path` (and what it includes) into `out`.
    pub fn read_file(&mut self, path: &Path, out: &mut Vec<Tok>) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) {
            self.diags.push(
                Diagnostic::file(path, "includes itself (an include loop)")
                    .fix("remove the `include` that leads back to this file"),
            );
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags.push(Diagnostic::file(
                path,
                "includes nested too deep (16 levels)",
            ));
            return;
        }
        if !check_config_file(path, self.diags) {
            return;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(
                    Diagnostic::file(path, format!("cannot read: {e}")).fix(format!(
                        "check that {} exists and is readable by root",
                        path.display()
                    )),
                );
                return;
            }
        };
        self.files.push(path.to_path_buf());
        self.stack.push(canonical);
        // An include_check in this file ends with it (keepalived).
        let checks = self.include_checks;
        self.read_text(path, &text, out);
        self.include_checks = checks;
        self.stack.pop();
    }

    /// Tokenizes `text` as if read from `path`.
    pub fn read_text(&mut self, path: &Path, text: &str, out: &mut Vec<Tok>) {
        let file = Arc::new(path.to_path_buf());
        let lines: Vec<&str> = text.lines().collect();
        let mut n = 0;
        while n < lines.len() {
            let line_no = n as u32 + 1;
            let raw = lines[n];
            n += 1;
            // `$NAME= \` starts a multiline definition: the lines that
            // follow, while they end in `\`, and the first that does not.
            if let Some((_, line)) = self.conditional(raw) {
                if let Some((name, value)) = definition(line) {
                    if let Some(first) = value.trim_end().strip_suffix('\\') {
                        let mut body = vec![first.to_owned()];
                        while n < lines.len() {
                            let l = lines[n];
                            n += 1;
                            match l.trim_end().strip_suffix('\\') {
                                Some(more) => body.push(more.to_owned()),
                                None => {
                                    body.push(l.to_owned());
                                    break;
                                }
                            }
                        }
                        body.retain(|l| !l.trim().is_empty());
                        self.defs.insert(
                            name.to_owned(),
                            Def {
                                text: body.join("\n"),
                                multiline: true,
                            },
                        );
                        continue;
                    }
                }
            }
            self.line(&file, line_no, raw, out, 0);
        }
    }

    /// One line: its `@ID` condition, a definition, a generator (~SEQ,
    /// ~LST), then definitions substituted (at use, as keepalived: a
    /// definition's own `$X` takes X's value at the time of use), then
    /// tokens or an include. What substitution makes is read as lines again
    /// (a multiline definition's lines, a `$IF_MAIN` that becomes `@main`).
    fn line(
        &mut self,
        file: &Arc<PathBuf>,
        line_no: u32,
        raw: &str,
        out: &mut Vec<Tok>,
        depth: usize,
    ) {
        let here = Pos {
            file: file.clone(),
            line: line_no,
            col: 1,
        };
        if depth > MAX_EXPANSION_DEPTH {
            self.diags.push(
                Diagnostic::error(
                    &here,
                    raw.trim(),
                    "definitions expand too deep (a definition that uses itself?)",
                )
                .fix("make sure no definition refers to itself, directly or through others"),
            );
            return;
        }
        let Some((offset, line)) = self.conditional(raw) else {
            return;
        };
        if let Some((name, value)) = definition(line) {
            self.defs.insert(
                name.to_owned(),
                Def {
                    text: value.trim().to_owned(),
                    multiline: false,
                },
            );
            return;
        }
        if let Some(generated) = expand::generator(line) {
            match generated {
                Ok(g) => {
                    for run in g.runs {
                        let saved: Vec<(String, Option<Def>)> = run
                            .iter()
                            .map(|(k, v)| {
                                let old = self.defs.insert(
                                    k.clone(),
                                    Def {
                                        text: v.clone(),
                                        multiline: false,
                                    },
                                );
                                (k.clone(), old)
                            })
                            .collect();
                        self.line(file, line_no, g.rest, out, depth + 1);
                        for (k, old) in saved {
                            match old {
                                Some(d) => self.defs.insert(k, d),
                                None => self.defs.remove(&k),
                            };
                        }
                    }
                }
                Err(e) => self.diags.push(
                    Diagnostic::error(&here, line.trim(), e)
                        .fix("write ~SEQ(var, start, step, end) or ~LST(var, v1, v2, ...) as keepalived.conf(5) shows"),
                ),
            }
            return;
        }
        let line = strip_comment(line);
        let substituted = self.substitute(file, line);
        if substituted != line {
            // Read what substitution made as lines of their own.
            for l in substituted.split('\n') {
                self.line(file, line_no, l, out, depth + 1);
            }
            return;
        }
        // An include's pattern is the rest of the line as written (its
        // braces are a glob's, not a block's).
        let lead = line.len() - line.trim_start().len();
        let body = line.trim();
        let kw_end = body.find(char::is_whitespace).unwrap_or(body.len());
        if &body[..kw_end] == "include_check" {
            let (checks, unknown) = self.include_checks.apply(body[kw_end..].split_whitespace());
            self.include_checks = checks;
            for w in unknown {
                let at = Pos {
                    file: file.clone(),
                    line: line_no,
                    col: 1,
                };
                self.diags.push(
                    Diagnostic::warning(&at, &w, format!("unknown include_check option `{w}`: ignored, as keepalived ignores it"))
                        .fix("use readable, match, wildcard_match or brace_match, each with an optional + or -")
                        .lenient(),
                );
            }
            return;
        }
        if let Some(checks) = include_checks(&body[..kw_end]) {
            let checks = checks.or(self.include_checks);
            let rest = &body[kw_end..];
            let skip = rest.len() - rest.trim_start().len();
            let at = |byte: usize| Pos {
                file: file.clone(),
                line: line_no,
                col: (offset + line[..byte].chars().count()) as u32 + 1,
            };
            let pattern = Token {
                text: rest.trim().trim_matches('"').to_owned(),
                pos: at(lead + kw_end + skip),
                quoted: false,
            };
            let keyword = Token {
                text: body[..kw_end].to_owned(),
                pos: at(lead),
                quoted: false,
            };
            self.include(file, &keyword, &pattern, checks, out);
            return;
        }
        let mut words = Vec::new();
        self.tokenize(file, line_no, offset, line, &mut words);
        if words.is_empty() {
            return;
        }
        out.extend(words);
        out.push(Tok::Eol);
    }

    /// keepalived's `@ID` / `@^ID` line prefixes: (column offset, the rest)
    /// when the line applies, None when it does not.
    fn conditional<'l>(&self, raw: &'l str) -> Option<(usize, &'l str)> {
        let lead = raw.len() - raw.trim_start().len();
        let rest = &raw[lead..];
        let Some(cond) = rest.strip_prefix('@') else {
            return Some((0, raw));
        };
        let end = cond.find(char::is_whitespace).unwrap_or(cond.len());
        let (id, body) = cond.split_at(end);
        let (negate, id) = match id.strip_prefix('^') {
            Some(id) => (true, id),
            None => (false, id),
        };
        let matches = self.config_id.as_deref() == Some(id);
        if matches != negate {
            let skipped = lead + 1 + end;
            Some((skipped, body))
        } else {
            None
        }
    }

    fn tokenize(
        &mut self,
        file: &Arc<PathBuf>,
        line: u32,
        offset: usize,
        text: &str,
        out: &mut Vec<Tok>,
    ) {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut i = 0;
        let pos = |byte: usize| Pos {
            file: file.clone(),
            line,
            col: (offset + text[..byte].chars().count()) as u32 + 1,
        };
        while i < chars.len() {
            let (at, c) = chars[i];
            match c {
                c if c.is_whitespace() => i += 1,
                '!' | '#' => break,
                '{' => {
                    out.push(Tok::Open(pos(at)));
                    i += 1;
                }
                '}' => {
                    out.push(Tok::Close(pos(at)));
                    i += 1;
                }
                '"' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < chars.len() && chars[j].1 != '"' {
                        j += 1;
                    }
                    let p = pos(at);
                    if j >= chars.len() {
                        self.diags.push(
                            Diagnostic::error(&p, &text[at..], "unterminated quoted string")
                                .fix("add the closing `\"` on the same line"),
                        );
                        return;
                    }
                    let inner: String = chars[start..j].iter().map(|(_, c)| c).collect();
                    let text = unplaceholder(&inner);
                    out.push(Tok::Word(Token {
                        text,
                        pos: p,
                        quoted: true,
                    }));
                    i = j + 1;
                }
                _ => {
                    let mut j = i;
                    while j < chars.len()
                        && !chars[j].1.is_whitespace()
                        && !matches!(chars[j].1, '{' | '}' | '"' | '!' | '#')
                    {
                        // `${NAME}` belongs to the word.
                        if chars[j].1 == '$' && chars.get(j + 1).is_some_and(|c| c.1 == '{') {
                            while j < chars.len() && chars[j].1 != '}' {
                                j += 1;
                            }
                        }
                        j += 1;
                    }
                    let j = j.min(chars.len());
                    let word: String = chars[i..j].iter().map(|(_, c)| c).collect();
                    let p = pos(at);
                    let text = unplaceholder(&word);
                    out.push(Tok::Word(Token {
                        text,
                        pos: p,
                        quoted: false,
                    }));
                    i = j;
                }
            }
        }
    }

    /// Replaces `$NAME` (followed by a blank, `,`, `)` or the end) and
    /// `${NAME}` by their definitions, and keepalived's predefined ones
    /// (`${_PWD}`, `${_INSTANCE}`, `${_ENV VAR}`, `${_RANDOM [MIN [MAX]]}`,
    /// `${_HASH}`, `${_BANG}`). Undefined names stay as written: `$HOME`,
    /// `$1` or awk's `$2` in a script line. A multiline definition is used
    /// only as the last thing on a line, as keepalived.
    fn substitute(&self, file: &Arc<PathBuf>, line: &str) -> String {
        if !line.contains('$') {
            return line.to_owned();
        }
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, used, braced) = if let Some(b) = after.strip_prefix('{') {
                match b.find('}') {
                    Some(end) => (&b[..end], end + 2, true),
                    None => ("", 0, true),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let next = after[end..].chars().next();
                if next.is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | ')')) {
                    ("", 0, false)
                } else {
                    (&after[..end], end, false)
                }
            };
            let at_end = after[used..].trim().is_empty();
            let value = if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                None
            } else if braced {
                self.predefined(file, name)
                    .or_else(|| self.defined(name, at_end))
            } else {
                self.defined(name, at_end)
            };
            match value {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('$');
                    out.push_str(&after[..used]);
                }
            }
            rest = &after[used..];
        }
        out.push_str(rest);
        out
    }

    fn defined(&self, name: &str, at_end: bool) -> Option<String> {
        self.defs
            .get(name)
            .filter(|d| at_end || !d.multiline)
            .map(|d| d.text.clone())
    }

    /// keepalived's predefined definitions (keepalived.conf(5)).
    fn predefined(&self, file: &Arc<PathBuf>, inside: &str) -> Option<String> {
        let mut words = inside.split_whitespace();
        let name = words.next()?;
        let args: Vec<&str> = words.collect();
        match (name, args.as_slice()) {
            ("_PWD", []) => Some(
                file.parent()
                    .map(|d| {
                        std::path::absolute(d)
                            .unwrap_or_else(|_| d.to_path_buf())
                            .display()
                            .to_string()
                    })
                    .unwrap_or_default(),
            ),
            ("_INSTANCE", []) => Some(self.config_id.clone().unwrap_or_default()),
            ("_HASH", []) => Some(HASH.to_string()),
            ("_BANG", []) => Some(BANG.to_string()),
            ("_ENV", [var]) => Some(std::env::var(var).unwrap_or_default()),
            ("_RANDOM", args) if args.len() <= 2 => {
                let min: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
                let max: u64 = args
                    .get(1)
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(32767)
                    .max(min);
                use std::hash::{BuildHasher as _, Hasher as _};
                let random = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                Some((min + random % (max - min + 1)).to_string())
            }
            _ => None,
        }
    }

    /// `include` and its checked variants (keepalived.conf(5)): the pattern
    /// relative to the including file's directory, braces expanded, then
    /// globbed. Plain `include` complains about nothing it cannot find (a
    /// warning here); `includer`/`includem`/`includew`/`includeb`/`includea`
    /// make what their checks find an error.
    fn include(
        &mut self,
        including: &Arc<PathBuf>,
        keyword: &Token,
        pattern: &Token,
        checks: IncludeChecks,
        out: &mut Vec<Tok>,
    ) {
        let keyword = keyword.text.as_str();
        if pattern.text.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    &pattern.pos,
                    keyword,
                    format!("`{keyword}` needs a file name or glob"),
                )
                .fix("write `include /etc/keepalived/conf.d/*.conf`"),
            );
            return;
        }
        let base = including.parent().unwrap_or(Path::new("."));
        let full = if Path::new(&pattern.text).is_absolute() {
            PathBuf::from(&pattern.text)
        } else {
            base.join(&pattern.text)
        };
        let complain = |diags: &mut Diagnostics, checked: bool, msg: String| {
            let d = Diagnostic::error(&pattern.pos, &pattern.text, msg)
                .fix("fix the path (relative paths start from the including file's directory)");
            diags.push(if checked { d } else { d.as_warning().lenient() });
        };
        let mut matches: Vec<PathBuf> = Vec::new();
        for alternative in expand::braces(&full.to_string_lossy()) {
            let found: Vec<PathBuf> = match glob::glob(&alternative) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    self.diags.push(Diagnostic::error(
                        &pattern.pos,
                        &pattern.text,
                        format!("bad glob `{alternative}`: {e}"),
                    ));
                    return;
                }
            };
            let wildcard = alternative.contains(['*', '?', '[']);
            if found.is_empty() && pattern.text.contains('{') {
                complain(
                    self.diags,
                    checks.brace || (wildcard && checks.wildcard),
                    format!(
                        "`{keyword} {}`: the alternative {alternative} matches no file",
                        pattern.text
                    ),
                );
            } else if found.is_empty() && wildcard && checks.wildcard {
                complain(
                    self.diags,
                    true,
                    format!(
                        "`{keyword} {}`: {alternative} matches no file",
                        pattern.text
                    ),
                );
            }
            matches.extend(found);
        }
        if matches.is_empty() {
            complain(
                self.diags,
                checks.matched,
                format!(
                    "`{keyword} {}` matches no file ({})",
                    pattern.text,
                    full.display()
                ),
            );
        }
        matches.sort();
        matches.dedup();
        for m in matches {
            if checks.readable {
                self.read_file(&m, out);
            } else {
                // keepalived's plain include skips what it cannot open.
                let before = self.diags.0.len();
                self.read_file(&m, out);
                for d in &mut self.diags.0[before..] {
                    if d.message.starts_with("cannot read") {
                        d.severity = super::diag::Severity::Warning;
                        d.lenient = true;
                    }
                }
            }
        }
    }
}

/// What an include keyword checks (keepalived's include_check options).
#[derive(Debug, Clone, Copy, Default)]
struct IncludeChecks {
    /// Every file found is readable.
    readable: bool,
    /// The pattern matches some file.
    matched: bool,
    /// Every wildcard alternative matches some file.
    wildcard: bool,
    /// Every brace alternative matches some file.
    brace: bool,
}

impl IncludeChecks {
    fn or(self, o: IncludeChecks) -> IncludeChecks {
        IncludeChecks {
            readable: self.readable || o.readable,
            matched: self.matched || o.matched,
            wildcard: self.wildcard || o.wildcard,
            brace: self.brace || o.brace,
        }
    }

    /// `include_check [[+|-]OPTION…]`: none is every check; a plain list
    /// replaces the checks, `+`/`-` add and remove. match, wildcard_match
    /// and brace_match include readable.
    fn apply<'w>(self, words: impl Iterator<Item = &'w str>) -> (IncludeChecks, Vec<String>) {
        let words: Vec<&str> = words.collect();
        let all = IncludeChecks {
            readable: true,
            matched: true,
            wildcard: true,
            brace: true,
        };
        if words.is_empty() {
            return (all, Vec::new());
        }
        let mut unknown = Vec::new();
        let mut c = if words.iter().any(|w| w.starts_with(['+', '-'])) {
            self
        } else {
            IncludeChecks::default()
        };
        let mut add = true;
        for w in words {
            let name = match w.strip_prefix('+') {
                Some(n) => {
                    add = true;
                    n
                }
                None => match w.strip_prefix('-') {
                    Some(n) => {
                        add = false;
                        n
                    }
                    None => w,
                },
            };
            match name {
                "readable" => c.readable = add,
                "match" => c.matched = add,
                "wildcard_match" => c.wildcard = add,
                "brace_match" => c.brace = add,
                other => unknown.push(other.to_owned()),
            }
        }
        c.readable |= c.matched || c.wildcard || c.brace;
        (c, unknown)
    }
}

/// `include` and keepalived's variants, with their checks.
fn include_checks(keyword: &str) -> Option<IncludeChecks> {
    let c = |matched, wildcard, brace| IncludeChecks {
        readable: true,
        matched,
        wildcard,
        brace,
    };
    match keyword {
        "include" => Some(IncludeChecks::default()),
        "includer" => Some(c(false, false, false)),
        "includem" => Some(c(true, false, false)),
        "includew" => Some(c(false, true, false)),
        "includeb" => Some(c(false, false, true)),
        "includea" => Some(c(true, true, true)),
        _ => None,
    }
}

/// A definition's value and whether it spans lines.
#[derive(Debug, Clone)]
struct Def {
    text: String,
    multiline: bool,
}

/// How deep substitutions and generators may nest.
const MAX_EXPANSION_DEPTH: usize = 32;

/// `${_HASH}` and `${_BANG}` become these until the line is split into
/// words, so they are not read as comments.
const HASH: char = '\u{E000}';
const BANG: char = '\u{E001}';

fn unplaceholder(word: &str) -> String {
    word.replace(HASH, "#").replace(BANG, "!")
}

/// `$NAME=value` (only blanks before the `$`, none before the `=`).
fn definition(line: &str) -> Option<(&str, &str)> {
    let def = line.trim_start().strip_prefix('$')?;
    let (name, value) = def.split_once('=')?;
    (!name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some((name, value))
}

/// The line up to its comment (`#` or `!` outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The seed's Q3: a config file must be a regular, non-executable file not
/// writable by group or others. Returns whether it may be read.
pub fn check_config_file(path: &Path, diags: &mut Diagnostics) -> bool {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            diags.push(
                Diagnostic::file(path, format!("cannot open: {e}")).fix(format!(
                    "check the path, or pass the right one with `-c` ({})",
                    path.display()
                )),
            );
            return false;
        }
    };
    let shown = path.display();
    if !meta.is_file() {
        diags.push(
            Diagnostic::file(
                path,
                "not a regular file (keepalived: \"not a regular non-executable file - skipping\")",
            )
            .fix(format!(
                "point -c at a file, not {}",
                if meta.is_dir() {
                    "a directory"
                } else {
                    "a special file"
                }
            )),
        );
        return false;
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 != 0 {
        diags.push(
            Diagnostic::file(
                path,
                "is executable (keepalived: \"not a regular non-executable file - skipping\")",
            )
            .fix(format!("chmod 644 {shown}")),
        );
        return false;
    }
    if mode & 0o022 != 0 {
        diags.push(
            Diagnostic::file(path, format!("is writable by {} (mode {:o}): anyone who can write it controls the scripts root runs", if mode & 0o002 != 0 { "others" } else { "its group" }, mode & 0o777))
                .fix(format!("chmod go-w {shown}")),
        );
        return false;
    }
    true
}
