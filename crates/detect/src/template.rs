//! Output message templates: `"{user.username} ran {exec.command} in {objectRef.namespace}/{objectRef.name}"`.
//! `{field}` is replaced by the field's values (joined by `,`), or `-` when it has none;
//! `{{` and `}}` are literal braces.

use crate::fields::{Ctx, Field};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Field(Field),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template(Vec<Part>);

/// Longest rendering of one field, so a huge body cannot make a huge alert.
const MAX_VALUE: usize = 512;

impl Template {
    pub fn parse(
        s: &str,
        map_field: &dyn Fn(&str) -> Result<Field, String>,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find(['{', '}']) {
            lit.push_str(&rest[..i]);
            let c = rest.as_bytes()[i];
            rest = &rest[i + 1..];
            if c == b'}' {
                if let Some(r) = rest.strip_prefix('}') {
                    lit.push('}');
                    rest = r;
                    continue;
                }
                return Err(format!(
                    "output: unmatched '}}' in {s:?} (write '}}}}' for a brace)"
                ));
            }
            if let Some(r) = rest.strip_prefix('{') {
                lit.push('{');
                rest = r;
                continue;
            }
            let end = rest
                .find('}')
                .ok_or_else(|| format!("output: unclosed '{{' in {s:?}"))?;
            let name = rest[..end].trim();
            let field = map_field(name).map_err(|e| format!("output: {e}"))?;
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Field(field));
            rest = &rest[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template(parts))
    }

    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.0.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f),
            Part::Lit(_) => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn render(&self, ctx: &Ctx<'_, '_>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => {
                    let start = out.len();
                    let mut first = true;
                    ctx.any(f, &mut |v| {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(&v.text());
                        out.len() - start > MAX_VALUE
                    });
                    if out.len() - start > MAX_VALUE {
                        let mut cut = start + MAX_VALUE;
                        while !out.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        out.truncate(cut);
                        out.push('…');
                    }
                    if first {
                        out.push('-');
                    }
                }
            }
        }
        out
    }
}
