//! The `condition` of a detection: Sigma's expression language over named selections.
//!
//! ```text
//! selection and not filter
//! (exec or attach) and not 1 of allow_*
//! all of them
//! ```
//! Names resolve to the rule's own selections, then to macros. Sigma's deprecated
//! aggregation suffix (`| count() by user > 10`) is parsed by the Sigma importer, not here.

/// A parsed condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Ref(String),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// `1 of pattern` (`any`) or `all of pattern`; the pattern may end with `*`; `them` is
    /// every selection of the rule.
    Of {
        all: bool,
        pattern: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut w = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' | ' ' | '\t' | '\n' | '\r' => {
                if !w.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut w)));
                }
                match c {
                    '(' => out.push(Tok::Open),
                    ')' => out.push(Tok::Close),
                    _ => {}
                }
            }
            c => w.push(c),
        }
    }
    if !w.is_empty() {
        out.push(Tok::Word(w));
    }
    out
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.i) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn keyword(&mut self, k: &str) -> bool {
        if self.peek_word().is_some_and(|w| w.eq_ignore_ascii_case(k)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.and()?];
        while self.keyword("or") {
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Cond::And(vec![]))
        } else {
            Cond::Or(v)
        })
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.not()?];
        while self.keyword("and") {
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Cond::And(vec![]))
        } else {
            Cond::And(v)
        })
    }
    fn not(&mut self) -> Result<Cond, String> {
        if self.keyword("not") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Cond, String> {
        match self.toks.get(self.i).cloned() {
            Some(Tok::Open) => {
                self.i += 1;
                let c = self.or()?;
                if self.toks.get(self.i) != Some(&Tok::Close) {
                    return Err("missing ')'".into());
                }
                self.i += 1;
                Ok(c)
            }
            Some(Tok::Close) => Err("unexpected ')'".into()),
            None => Err("condition ends too early".into()),
            Some(Tok::Word(w)) => {
                let lw = w.to_ascii_lowercase();
                if matches!(lw.as_str(), "and" | "or") {
                    return Err(format!("unexpected {w:?}"));
                }
                self.i += 1;
                if (lw == "1" || lw == "any" || lw == "all") && self.keyword("of") {
                    let Some(pattern) = self.peek_word().map(str::to_string) else {
                        return Err(format!("'{w} of' needs a name pattern or 'them'"));
                    };
                    self.i += 1;
                    return Ok(Cond::Of {
                        all: lw == "all",
                        pattern,
                    });
                }
                if w.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!("'{w} of' is not supported; use '1 of' or 'all of'"));
                }
                Ok(Cond::Ref(w))
            }
        }
    }
}

/// Parses a condition.
pub fn parse(s: &str) -> Result<Cond, String> {
    let mut p = P { toks: lex(s), i: 0 };
    if p.toks.is_empty() {
        return Err("empty condition".into());
    }
    let c = p.or()?;
    if p.i != p.toks.len() {
        return Err(format!(
            "unexpected {:?} after a complete condition",
            p.toks[p.i]
        ));
    }
    Ok(c)
}

/// Whether `name` matches an `of` pattern (`selection*`, `them`).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern == "them" {
        return !name.starts_with('_');
    }
    match pattern.strip_suffix('*') {
        Some(p) => name.starts_with(p),
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(
            parse("a and not (b or c)").unwrap(),
            Cond::And(vec![
                Cond::Ref("a".into()),
                Cond::Not(Box::new(Cond::Or(vec![
                    Cond::Ref("b".into()),
                    Cond::Ref("c".into())
                ])))
            ])
        );
        assert_eq!(
            parse("1 of sel* and not all of them").unwrap(),
            Cond::And(vec![
                Cond::Of {
                    all: false,
                    pattern: "sel*".into()
                },
                Cond::Not(Box::new(Cond::Of {
                    all: true,
                    pattern: "them".into()
                }))
            ])
        );
        assert!(parse("a and").is_err());
        assert!(parse("(a").is_err());
        assert!(parse("a b").is_err());
        assert!(parse("2 of x").is_err());
    }
}
