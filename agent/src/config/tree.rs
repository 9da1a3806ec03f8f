//! Tokens -> a tree of statements. A statement is the words of one line;
//! a `{` on the same or the next line opens its block, `}` closes it.

use super::{
    diag::{Diagnostic, Diagnostics, Pos},
    lexer::{Tok, Token},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: Token,
    pub args: Vec<Token>,
    /// The block, when the statement has one.
    pub block: Option<Vec<Node>>,
}

impl Node {
    /// The first argument's text, if any.
    pub fn arg(&self, i: usize) -> Option<&Token> {
        self.args.get(i)
    }

    /// The statement's words: keyword then arguments (block entries like
    /// `192.168.1.8/24 dev eth0` are statements whose key is the address).
    pub fn words(&self) -> impl Iterator<Item = &Token> {
        std::iter::once(&self.key).chain(self.args.iter())
    }

    /// Block entries, or the words of the statement after the keyword when
    /// written on one line (`group { VI_1 VI_2 }`).
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

pub fn parse(tokens: &[Tok], diags: &mut Diagnostics) -> Vec<Node> {
    let mut p = Parser {
        tokens,
        at: 0,
        diags,
    };
    p.block(None)
}

struct Parser<'a> {
    tokens: &'a [Tok],
    at: usize,
    diags: &'a mut Diagnostics,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn skip_eols(&mut self) {
        while matches!(self.peek(), Some(Tok::Eol)) {
            self.at += 1;
        }
    }

    /// Statements until the `}` matching `opened` (or the end at top level).
    fn block(&mut self, opened: Option<&Pos>) -> Vec<Node> {
        let mut nodes = Vec::new();
        loop {
            self.skip_eols();
            match self.peek().cloned() {
                None => {
                    if let Some(pos) = opened {
                        self.diags.push(
                            Diagnostic::error(pos, "{", "this `{` is never closed")
                                .fix("add the matching `}` at the end of the block"),
                        );
                    }
                    return nodes;
                }
                Some(Tok::Close(pos)) => {
                    self.at += 1;
                    if opened.is_some() {
                        return nodes;
                    }
                    self.diags.push(
                        Diagnostic::error(&pos, "}", "`}` without a matching `{`")
                            .fix("remove it, or add the `{` it closes"),
                    );
                }
                Some(Tok::Open(pos)) => {
                    self.at += 1;
                    self.diags.push(
                        Diagnostic::error(&pos, "{", "a block without a keyword before it")
                            .fix("put the keyword (e.g. `vrrp_instance NAME`) before the `{`"),
                    );
                    let _ = self.block(Some(&pos));
                }
                Some(Tok::Word(key)) => {
                    self.at += 1;
                    nodes.push(self.statement(key));
                }
                Some(Tok::Eol) => unreachable!("skipped"),
            }
        }
    }

    fn statement(&mut self, key: Token) -> Node {
        let mut args = Vec::new();
        while let Some(Tok::Word(w)) = self.peek() {
            args.push(w.clone());
            self.at += 1;
        }
        // A `{` on this line, or alone at the start of the next one.
        let save = self.at;
        self.skip_eols();
        if let Some(Tok::Open(pos)) = self.peek().cloned() {
            self.at += 1;
            let block = self.block(Some(&pos));
            return Node {
                key,
                args,
                block: Some(block),
            };
        }
        self.at = save;
        Node {
            key,
            args,
            block: None,
        }
    }
}
