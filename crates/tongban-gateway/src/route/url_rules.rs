//! URL rules of clause 6.2.3, checked when a route is registered: lowercase, words joined by
//! hyphens, resources named by plural nouns, no verbs in place of methods.

use std::fmt;

/// A rule of 6.2.3 that a path breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlRule {
    /// Starts with `/`, no empty segments, no query or fragment.
    Shape,
    /// Only lowercase letters, digits and hyphens.
    Lowercase,
    /// Words are joined by hyphens, never underscores.
    Hyphens,
    /// A collection (a segment followed by an id, or the last segment) is a plural noun.
    PluralNouns,
    /// The HTTP method says the action; the path names resources.
    NoVerbs,
}

/// What is wrong with a path: every rule it breaks, with the segment that breaks it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct UrlRuleViolation {
    pub path: String,
    pub broken: Vec<(UrlRule, String)>,
}

/// Words that are already plural or uncountable.
const UNCOUNTABLE: &[&str] = &[
    "data",
    "information",
    "news",
    "media",
    "feedback",
    "people",
    "children",
    "metadata",
    "series",
    "status",
    "health",
    "auth",
    "search",
    "statistics",
    "analytics",
    "settings",
];

const VERBS: &[&str] = &[
    "get", "query", "list", "add", "create", "insert", "update", "modify", "edit", "delete",
    "remove", "save", "set", "do", "fetch", "find",
];

// === impl UrlRule ===

impl UrlRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shape => "shape",
            Self::Lowercase => "lowercase",
            Self::Hyphens => "hyphens",
            Self::PluralNouns => "plural_nouns",
            Self::NoVerbs => "no_verbs",
        }
    }

    /// The rule in the words of 6.2.3, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Shape => "路径须以 / 开头，不含空段、查询串或片段",
            Self::Lowercase => "URL 须全部小写",
            Self::Hyphens => "单词之间用连字符 -，不用下划线 _",
            Self::PluralNouns => "资源名须为复数名词",
            Self::NoVerbs => "URL 中不用动词，动作由 HTTP 方法表达",
        }
    }
}

impl fmt::Display for UrlRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl UrlRuleViolation ===

impl UrlRuleViolation {
    fn describe(&self) -> String {
        let parts: Vec<String> = self
            .broken
            .iter()
            .map(|(r, seg)| format!("{}（{r}: {seg}）", r.describe()))
            .collect();
        format!("路径 {} 不符合 URL 规范：{}", self.path, parts.join("；"))
    }
}

/// Checks a route path (literal segments and `{param}` placeholders).
pub fn check(path: &str) -> Result<(), UrlRuleViolation> {
    let mut broken = Vec::new();
    let mut push = |r: UrlRule, s: &str| {
        if !broken.iter().any(|(b, _)| *b == r) {
            broken.push((r, s.to_owned()));
        }
    };
    if !path.starts_with('/') || path.contains(['?', '#']) || path.contains("//") {
        push(UrlRule::Shape, path);
    }
    if path == "/" {
        return Ok(());
    }
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            push(UrlRule::Shape, seg);
            continue;
        }
        if is_param(seg) {
            continue;
        }
        if seg.chars().any(|c| c.is_ascii_uppercase()) {
            push(UrlRule::Lowercase, seg);
        }
        if seg.contains('_') {
            push(UrlRule::Hyphens, seg);
        }
        let lower = seg.to_ascii_lowercase();
        if !lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            push(UrlRule::Lowercase, seg);
        }
        let words: Vec<&str> = lower.split(['-', '_']).filter(|w| !w.is_empty()).collect();
        if words.first().is_some_and(|w| VERBS.contains(w)) {
            push(UrlRule::NoVerbs, seg);
        }
        if is_structural(&lower, i) {
            continue;
        }
        let next_is_param = segments.get(i + 1).is_some_and(|s| is_param(s));
        let is_last = i + 1 == segments.len();
        if (next_is_param || is_last) && !words.last().is_some_and(|w| is_plural(w)) {
            push(UrlRule::PluralNouns, seg);
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(UrlRuleViolation {
            path: path.to_owned(),
            broken,
        })
    }
}

fn is_param(seg: &str) -> bool {
    seg.len() > 2 && seg.starts_with('{') && seg.ends_with('}')
}

/// `api` and version segments (`v1`, `v2`) are not resources.
fn is_structural(seg: &str, index: usize) -> bool {
    (index == 0 && seg == "api")
        || (seg.len() >= 2 && seg.starts_with('v') && seg[1..].chars().all(|c| c.is_ascii_digit()))
}

fn is_plural(word: &str) -> bool {
    UNCOUNTABLE.contains(&word)
        || (word.len() > 1 && word.ends_with('s') && !word.ends_with("ss"))
        || word.chars().all(|c| c.is_ascii_digit())
}
