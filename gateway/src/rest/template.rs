//! `google.api.http` path templates: parsing once at start-up, matching per request.
//!
//! Grammar (from `google/api/http.proto`):
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//! `{id}` is shorthand for `{id=*}`. `**` matches zero or more segments and may only be the
//! last segment. A template is flattened into a list of segment matchers plus the ranges of
//! segments each variable captures, so matching is a walk over two slices.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// One segment matcher of a flattened template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this (decoded) text.
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: zero or more segments (always last).
    Multi,
}

impl Segment {
    /// Lower is more specific: literals beat `*`, which beats `**`.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Single => 1,
            Segment::Multi => 2,
        }
    }
}

/// A variable of a template: the field it binds and the template segments it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The field path, e.g. `["book", "name"]` for `{book.name=shelves/*}`.
    pub field_path: Vec<String>,
    /// Index of the first template segment the variable captures.
    pub start: usize,
    /// One past the last template segment it captures.
    pub end: usize,
}

impl Variable {
    /// The dotted field path, e.g. `book.name`.
    pub fn dotted(&self) -> String {
        self.field_path.join(".")
    }
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template as written.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path template {:?}: {}",
            self.template, self.reason
        )
    }
}

impl std::error::Error for TemplateError {}

impl PathTemplate {
    /// Parses a template such as `/api/companies/{id}` or
    /// `/api/integrations/vessey/drivers:sync`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let fail = |reason: &str| TemplateError {
            template: template.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with '/'"))?;
        let (path, verb) = split_verb(rest);
        if let Some(verb) = verb
            && (verb.is_empty() || verb.contains(['/', '{', '}', '*']))
        {
            return Err(fail("invalid verb"));
        }

        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in split_outside_braces(path) {
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or_else(|| fail("a variable must be a whole segment"))?;
                let (field, pattern) = match inner.split_once('=') {
                    Some((field, pattern)) => (field, pattern),
                    None => (inner, "*"),
                };
                let field_path: Vec<String> = field.split('.').map(str::to_owned).collect();
                if field_path.iter().any(|ident| !is_ident(ident)) {
                    return Err(fail("invalid field path in variable"));
                }
                if pattern.contains(['{', '}']) {
                    return Err(fail("variables cannot be nested"));
                }
                let start = segments.len();
                for sub in pattern.split('/') {
                    segments.push(parse_plain_segment(sub).ok_or_else(|| fail("empty segment"))?);
                }
                variables.push(Variable {
                    field_path,
                    start,
                    end: segments.len(),
                });
            } else {
                if part.contains(['{', '}']) {
                    return Err(fail("unbalanced braces"));
                }
                segments.push(parse_plain_segment(part).ok_or_else(|| fail("empty segment"))?);
            }
        }

        if let Some(position) = segments.iter().position(|s| *s == Segment::Multi)
            && position + 1 != segments.len()
        {
            return Err(fail("'**' must be the last segment"));
        }
        let mut seen = std::collections::HashSet::new();
        if variables.iter().any(|v| !seen.insert(v.dotted())) {
            return Err(fail("a field is bound twice"));
        }

        Ok(Self {
            segments,
            variables,
            verb: verb.map(str::to_owned),
        })
    }

    /// The segment matchers.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The variables in template order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The custom verb (`sync` in `.../drivers:sync`).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// Matches a request path already split into decoded segments (see [`RequestPath`]).
    /// Returns the value of each variable (in [`Self::variables`] order), `/`-joined for
    /// multi-segment variables.
    pub fn match_path(&self, path: &RequestPath<'_>) -> Option<Vec<String>> {
        let segments: &[Cow<'_, str>] = match &self.verb {
            Some(verb) => {
                if path.verb != Some(verb.as_str()) {
                    return None;
                }
                &path.segments_before_verb
            }
            None => &path.segments,
        };
        let has_multi = self.segments.last() == Some(&Segment::Multi);
        let fixed = if has_multi {
            self.segments.len() - 1
        } else {
            self.segments.len()
        };
        if segments.len() < fixed || (!has_multi && segments.len() != fixed) {
            return None;
        }
        let literals_match =
            self.segments[..fixed]
                .iter()
                .zip(segments)
                .all(|(matcher, actual)| match matcher {
                    Segment::Literal(literal) => literal == actual,
                    Segment::Single => !actual.is_empty(),
                    Segment::Multi => false,
                });
        if !literals_match {
            return None;
        }
        let values = self
            .variables
            .iter()
            .map(|variable| {
                let end = if variable.end == self.segments.len() {
                    segments.len()
                } else {
                    variable.end
                };
                segments[variable.start..end].join("/")
            })
            .collect();
        Some(values)
    }

    /// Orders two templates that both matched a path: the more specific one is `Less`.
    /// Segment by segment, a literal beats `*` which beats `**`; then a verb beats none.
    pub fn specificity_cmp(&self, other: &Self) -> Ordering {
        for (mine, theirs) in self.segments.iter().zip(&other.segments) {
            match mine.rank().cmp(&theirs.rank()) {
                Ordering::Equal => {}
                decided => return decided,
            }
        }
        other
            .verb
            .is_some()
            .cmp(&self.verb.is_some())
            .then_with(|| other.segments.len().cmp(&self.segments.len()))
    }

    /// The OpenAPI form: every variable becomes `{field.path}` whatever its pattern; literal
    /// segments and the `:verb` stay as written.
    pub fn openapi_path(&self) -> String {
        let mut out = String::new();
        let mut index = 0;
        while index < self.segments.len() {
            out.push('/');
            if let Some(variable) = self.variables.iter().find(|v| v.start == index) {
                out.push('{');
                out.push_str(&variable.dotted());
                out.push('}');
                index = variable.end.max(index + 1);
                continue;
            }
            match &self.segments[index] {
                Segment::Literal(literal) => out.push_str(literal),
                Segment::Single => out.push('*'),
                Segment::Multi => out.push_str("**"),
            }
            index += 1;
        }
        if self.segments.is_empty() {
            out.push('/');
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }
}

/// A request path split once into percent-decoded segments, with the candidate `:verb` of
/// the last segment split off for templates that have one.
#[derive(Debug)]
pub struct RequestPath<'a> {
    segments: Vec<Cow<'a, str>>,
    segments_before_verb: Vec<Cow<'a, str>>,
    verb: Option<&'a str>,
}

impl<'a> RequestPath<'a> {
    /// Splits `path` (which starts with `/`). One trailing slash is ignored, so
    /// `/api/companies/` — the reference API's spelling of its list routes — matches
    /// `/api/companies`.
    pub fn parse(path: &'a str) -> Self {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let raw: Vec<&'a str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let segments: Vec<Cow<'a, str>> = raw.iter().map(|s| decode_segment(s)).collect();
        let (segments_before_verb, verb) = match raw.split_last() {
            Some((last, init)) => match last.rsplit_once(':') {
                Some((head, verb)) if !verb.is_empty() => {
                    let mut before: Vec<Cow<'a, str>> =
                        init.iter().map(|s| decode_segment(s)).collect();
                    before.push(decode_segment(head));
                    (before, Some(verb))
                }
                _ => (Vec::new(), None),
            },
            None => (Vec::new(), None),
        };
        Self {
            segments,
            segments_before_verb,
            verb,
        }
    }
}

/// Percent-decodes one path segment; text that is not valid percent-encoded UTF-8 is kept as
/// written (it then simply matches no literal, and a variable receives it verbatim).
fn decode_segment(segment: &str) -> Cow<'_, str> {
    percent_decode(segment, false).unwrap_or(Cow::Borrowed(segment))
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_as_space`, for query strings).
/// `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(text: &str, plus_as_space: bool) -> Option<Cow<'_, str>> {
    if !(text.contains('%') || (plus_as_space && text.contains('+'))) {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                let high = (hex[0] as char).to_digit(16)?;
                let low = (hex[1] as char).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
                index += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Splits `path` at the last `:` that follows the last `/` outside braces.
fn split_verb(path: &str) -> (&str, Option<&str>) {
    let mut depth = 0usize;
    let mut last_slash = 0;
    let mut colon = None;
    for (index, ch) in path.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                last_slash = index;
                colon = None;
            }
            ':' if depth == 0 && index > last_slash => colon = Some(index),
            _ => {}
        }
    }
    match colon {
        Some(index) => (&path[..index], Some(&path[index + 1..])),
        None => (path, None),
    }
}

/// Splits at `/` outside braces, so `{name=shelves/*}` stays one part.
fn split_outside_braces(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, ch) in path.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&path[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    parts
}

fn parse_plain_segment(text: &str) -> Option<Segment> {
    match text {
        "" => None,
        "*" => Some(Segment::Single),
        "**" => Some(Segment::Multi),
        literal => Some(Segment::Literal(
            percent_decode(literal, false)
                .map(Cow::into_owned)
                .unwrap_or_else(|| literal.to_owned()),
        )),
    }
}

fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn matches(template: &str, path: &str) -> Option<Vec<String>> {
        PathTemplate::parse(template)
            .unwrap()
            .match_path(&RequestPath::parse(path))
    }

    #[test]
    fn a_literal_template_matches_only_its_own_path() {
        assert_eq!(matches("/api/companies", "/api/companies"), Some(vec![]));
        assert_eq!(matches("/api/companies", "/api/companies/"), Some(vec![]));
        assert_eq!(matches("/api/companies", "/api/drivers"), None);
        assert_eq!(matches("/api/companies", "/api/companies/x"), None);
        assert_eq!(matches("/api/companies", "/api"), None);
    }

    #[test]
    fn a_simple_variable_captures_one_decoded_segment() {
        assert_eq!(
            matches("/api/companies/{id}", "/api/companies/a%20b"),
            Some(vec!["a b".to_owned()])
        );
        assert_eq!(matches("/api/companies/{id}", "/api/companies"), None);
        assert_eq!(matches("/api/companies/{id}", "/api/companies/a/b"), None);
    }

    #[test]
    fn a_variable_with_a_pattern_captures_several_segments() {
        let template = "/v1/{name=shelves/*/books/*}";
        assert_eq!(
            matches(template, "/v1/shelves/s1/books/b2"),
            Some(vec!["shelves/s1/books/b2".to_owned()])
        );
        assert_eq!(matches(template, "/v1/shelves/s1/boxes/b2"), None);
        let parsed = PathTemplate::parse(template).unwrap();
        assert_eq!(parsed.variables()[0].field_path, vec!["name"]);
        assert_eq!(parsed.openapi_path(), "/v1/{name}");
    }

    #[test]
    fn a_double_star_captures_the_rest_of_the_path() {
        let template = "/files/{path=**}";
        assert_eq!(
            matches(template, "/files/a/b/c"),
            Some(vec!["a/b/c".to_owned()])
        );
        assert_eq!(matches(template, "/files"), Some(vec![String::new()]));
        assert!(PathTemplate::parse("/files/**/x").is_err());
    }

    #[test]
    fn nested_field_paths_are_parsed() {
        let parsed = PathTemplate::parse("/v1/{book.shelf_id}/x").unwrap();
        assert_eq!(parsed.variables()[0].field_path, vec!["book", "shelf_id"]);
        assert_eq!(parsed.openapi_path(), "/v1/{book.shelf_id}/x");
    }

    #[test]
    fn a_verb_must_be_present_in_the_request() {
        let template = "/api/integrations/vessey/drivers:sync";
        assert_eq!(
            matches(template, "/api/integrations/vessey/drivers:sync"),
            Some(vec![])
        );
        assert_eq!(matches(template, "/api/integrations/vessey/drivers"), None);
        assert_eq!(
            matches(template, "/api/integrations/vessey/drivers:import"),
            None
        );
        assert_eq!(
            PathTemplate::parse(template).unwrap().openapi_path(),
            template
        );
    }

    #[test]
    fn a_verb_can_follow_a_variable() {
        assert_eq!(
            matches("/v1/{name}:cancel", "/v1/op-1:cancel"),
            Some(vec!["op-1".to_owned()])
        );
    }

    #[test]
    fn literals_are_more_specific_than_variables() {
        let watch = PathTemplate::parse("/api/tasks/watch").unwrap();
        let by_id = PathTemplate::parse("/api/tasks/{id}").unwrap();
        let rest = PathTemplate::parse("/api/{path=**}").unwrap();
        assert_eq!(watch.specificity_cmp(&by_id), Ordering::Less);
        assert_eq!(by_id.specificity_cmp(&watch), Ordering::Greater);
        assert_eq!(by_id.specificity_cmp(&rest), Ordering::Less);
        let verb = PathTemplate::parse("/v1/{name}:cancel").unwrap();
        let plain = PathTemplate::parse("/v1/{name}").unwrap();
        assert_eq!(verb.specificity_cmp(&plain), Ordering::Less);
    }

    #[test]
    fn malformed_templates_are_rejected() {
        for bad in [
            "api/x",
            "/api//x",
            "/api/{id",
            "/api/{id}x",
            "/api/{a={b}}",
            "/api/{1x}",
            "/api/x:",
            "/api/{id}/{id}",
        ] {
            assert!(
                PathTemplate::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn percent_decoding_handles_plus_and_rejects_bad_escapes() {
        assert_eq!(percent_decode("a+b%2Bc", true).unwrap(), "a b+c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert!(percent_decode("%zz", false).is_none());
        assert!(percent_decode("%ff", false).is_none());
        assert_eq!(percent_decode("%C3%A9", false).unwrap(), "é");
    }
}
