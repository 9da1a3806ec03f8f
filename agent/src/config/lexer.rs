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

use super::diag::{Diagnostic, Diagnostics, Pos};

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
    defs: HashMap<String, String>,
    config_id: Option<String>,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// Files in the include chain, to catch loops.
    stack: Vec<PathBuf>,
}

impl<'a> Reader<'a> {
    pub fn new(diags: &'a mut Diagnostics, config_id: Option<String>) -> Reader<'a> {
        Reader {
            diags,
            defs: HashMap::new(),
            config_id,
            files: Vec::new(),
            stack: Vec::new(),
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
        self.read_text(path, &text, out);
        self.stack.pop();
    }

    /// Tokenizes `text` as if read from `path`.
    pub fn read_text(&mut self, path: &Path, text: &str, out: &mut Vec<Tok>) {
        let file = Arc::new(path.to_path_buf());
        for (n, raw) in text.lines().enumerate() {
            let line_no = n as u32 + 1;
            let Some((offset, line)) = self.conditional(raw) else {
                continue;
            };
            let trimmed = line.trim_start();
            if let Some(def) = trimmed.strip_prefix('$') {
                if let Some((name, value)) = def.split_once('=') {
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        let value = self.substitute(value.trim());
                        self.defs.insert(name.to_owned(), value);
                        continue;
                    }
                }
            }
            let mut words = Vec::new();
            self.tokenize(&file, line_no, offset, line, &mut words);
            if let Some(Tok::Word(first)) = words.first() {
                if first.text == "include" && !first.quoted {
                    self.include(path, &words, out);
                    continue;
                }
            }
            out.extend(words);
            out.push(Tok::Eol);
        }
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
                    let text = self.substitute(&inner);
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
                    let text = self.substitute(&word);
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

    /// Replaces `$NAME` and `${NAME}` by their definitions.
    fn substitute(&self, word: &str) -> String {
        if !word.contains('$') {
            return word.to_owned();
        }
        let mut out = String::new();
        let mut rest = word;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, used) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => (braced, braced.len() + 1),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            if name.is_empty() {
                out.push('$');
                rest = after;
                continue;
            }
            match self.defs.get(name) {
                Some(v) => out.push_str(v),
                // keepalived replaces only defined names: `$HOME`, `$1` or
                // awk's `$2` in a script line stay as written.
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

    fn include(&mut self, including: &Path, words: &[Tok], out: &mut Vec<Tok>) {
        let Some(Tok::Word(pattern)) = words.get(1) else {
            if let Some(Tok::Word(w)) = words.first() {
                self.diags.push(
                    Diagnostic::error(&w.pos, "include", "`include` needs a file name or glob")
                        .fix("write `include /etc/keepalived/conf.d/*.conf`"),
                );
            }
            return;
        };
        let base = including.parent().unwrap_or(Path::new("."));
        let full = if Path::new(&pattern.text).is_absolute() {
            PathBuf::from(&pattern.text)
        } else {
            base.join(&pattern.text)
        };
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    &pattern.pos,
                    &pattern.text,
                    format!("bad glob: {e}"),
                ));
                return;
            }
        };
        if matches.is_empty() {
            let has_glob = pattern.text.contains(['*', '?', '[']);
            let d = Diagnostic::error(
                &pattern.pos,
                &pattern.text,
                format!(
                    "`include {}` matches no file ({})",
                    pattern.text,
                    full.display()
                ),
            )
            .fix("fix the path (relative paths start from the including file's directory)");
            // keepalived skips an empty glob silently; a plain missing file is an error.
            self.diags.push(if has_glob { d.as_warning() } else { d });
        }
        let mut matches = matches;
        matches.sort();
        for m in matches {
            self.read_file(&m, out);
        }
    }
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
