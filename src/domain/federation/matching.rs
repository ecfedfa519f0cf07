//! Matching an external token's verified claims to a federation rule: pure, over the claims.

use serde_json::Value;

use crate::domain::types::{ClientId, Scopes};

/// The most conditions one rule may hold, and the longest claim path and value.
pub const MAX_MATCHES: usize = 16;
const MAX_CLAIM_PATH: usize = 128;
const MAX_PATTERN: usize = 512;

/// A claim's expected value: exactly this text, or a glob in which `*` stands for any run of
/// characters (`/` and `:` included), where the operator wrote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPattern(String);

impl ClaimPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_PATTERN || s.chars().any(char::is_control) {
            return Err(format!("a claim value must be 1 to {MAX_PATTERN} bytes without control characters"));
        }
        if s.chars().all(|c| c == '*') {
            return Err("a claim value of only `*` matches anything: leave the condition out instead".into());
        }
        Ok(ClaimPattern(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches: literal parts in order, the first at the start unless the
    /// pattern starts with `*`, the last at the end unless it ends with `*`.
    pub fn matches(&self, text: &str) -> bool {
        let parts: Vec<&str> = self.0.split('*').collect();
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if parts.len() == 1 {
            return text == first;
        }
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        for middle in &parts[1..parts.len() - 1] {
            match rest.find(middle) {
                Some(at) => rest = &rest[at + middle.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// One condition: the claim at `path` (a top-level name, or names joined by `/` for nested
/// objects: `kubernetes.io/namespace`) must be a string, number or boolean whose text matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatch {
    pub path: String,
    pub pattern: ClaimPattern,
}

impl ClaimMatch {
    /// Parses `CLAIM=VALUE` as the operator writes it after `--match`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (path, value) = s.split_once('=').ok_or_else(|| format!("--match {s:?}: expected CLAIM=VALUE"))?;
        let valid_name = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'=');
        if path.len() > MAX_CLAIM_PATH || !path.split('/').all(valid_name) {
            return Err(format!("--match {path:?}: a claim name is visible ASCII, nested names joined by /"));
        }
        let pattern = ClaimPattern::parse(value).map_err(|e| format!("--match {path}: {e}"))?;
        Ok(ClaimMatch { path: path.to_owned(), pattern })
    }

    pub fn holds(&self, claims: &Value) -> bool {
        let mut at = claims;
        for name in self.path.split('/') {
            match at.get(name) {
                Some(v) => at = v,
                None => return false,
            }
        }
        match at {
            Value::String(s) => self.pattern.matches(s),
            Value::Number(n) => self.pattern.matches(&n.to_string()),
            Value::Bool(b) => self.pattern.matches(if *b { "true" } else { "false" }),
            _ => false,
        }
    }
}

/// A rule as stored: the client it binds, the issuer (by name), the audience the token must
/// carry, the conditions, and the caps on what it may get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationRule {
    pub id: String,
    pub client_id: ClientId,
    pub issuer: String,
    pub audience: String,
    pub matches: Vec<ClaimMatch>,
    pub max_ttl_days: i64,
    /// `None`: the client's scopes.
    pub scopes: Option<Scopes>,
}

impl FederationRule {
    /// Whether a token of `issuer` with these verified claims satisfies the rule: its `aud`
    /// (a string, or an array holding it) is the rule's audience and every condition holds.
    pub fn admits(&self, issuer: &str, claims: &Value) -> bool {
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        self.issuer == issuer && audience_ok && self.matches.iter().all(|m| m.holds(claims))
    }
}

/// Why no rule was chosen; both are answered with the same uniform failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRule {
    NoneMatches,
    Several,
}

/// The one rule a token satisfies. A token that satisfies several (of one client or of
/// several) is ambiguous — which caps, which workload's tokens? — and authenticates nobody.
pub fn choose<'a>(rules: &'a [FederationRule], issuer: &str, claims: &Value) -> Result<&'a FederationRule, NoRule> {
    let admitted: Vec<&FederationRule> = rules.iter().filter(|r| r.admits(issuer, claims)).collect();
    match admitted.as_slice() {
        [] => Err(NoRule::NoneMatches),
        [only] => Ok(only),
        _ => Err(NoRule::Several),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(id: &str, client: &str, matches: &[&str]) -> FederationRule {
        FederationRule {
            id: id.into(),
            client_id: ClientId::parse(client).unwrap(),
            issuer: "github".into(),
            audience: "https://tokensmith.example".into(),
            matches: matches.iter().map(|m| ClaimMatch::parse(m).unwrap()).collect(),
            max_ttl_days: 1,
            scopes: None,
        }
    }

    fn github(sub: &str) -> Value {
        json!({"iss": "https://token.actions.githubusercontent.com", "aud": "https://tokensmith.example",
               "sub": sub, "repository": "acme/deploy", "ref": "refs/heads/main", "run_attempt": 1})
    }

    #[test]
    fn globs_match_literal_parts_in_order_anchored_at_both_ends() {
        let p = |s: &str| ClaimPattern::parse(s).unwrap();
        assert!(p("repo:acme/deploy:ref:refs/heads/main").matches("repo:acme/deploy:ref:refs/heads/main"));
        assert!(!p("repo:acme/deploy:ref:refs/heads/main").matches("repo:acme/deploy:ref:refs/heads/main2"));
        assert!(p("repo:acme/*:ref:refs/heads/main").matches("repo:acme/x:ref:refs/heads/main"));
        assert!(!p("repo:acme/*:ref:refs/heads/main").matches("repo:acme-evil/x:ref:refs/heads/main"));
        assert!(!p("repo:acme/*").matches("xrepo:acme/x"), "anchored at the start");
        assert!(!p("*:main").matches("a:main:x"), "anchored at the end");
        assert!(p("a*a").matches("aa") && !p("a*a").matches("a"), "the parts may not overlap");
        assert!(ClaimPattern::parse("*").is_err() && ClaimPattern::parse("**").is_err());
        assert!(ClaimPattern::parse("").is_err() && ClaimPattern::parse("a\nb").is_err());
    }

    #[test]
    fn conditions_read_nested_claims_and_scalars_but_never_objects_or_arrays() {
        let claims = json!({"kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "ci"}},
                            "run_attempt": 2, "ok": true, "list": ["prod"]});
        assert!(ClaimMatch::parse("kubernetes.io/namespace=prod").unwrap().holds(&claims));
        assert!(ClaimMatch::parse("kubernetes.io/serviceaccount/name=ci").unwrap().holds(&claims));
        assert!(ClaimMatch::parse("run_attempt=2").unwrap().holds(&claims));
        assert!(ClaimMatch::parse("ok=true").unwrap().holds(&claims));
        assert!(!ClaimMatch::parse("list=prod").unwrap().holds(&claims));
        assert!(!ClaimMatch::parse("kubernetes.io=prod").unwrap().holds(&claims));
        assert!(!ClaimMatch::parse("missing=prod").unwrap().holds(&claims));
        for bad in ["noequals", "=x", "a//b=x", "a b=x", "a=", "a=*"] {
            assert!(ClaimMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_admits_its_issuer_and_audience_only_with_every_condition() {
        let r = rule("r1", "cli_a", &["sub=repo:acme/deploy:ref:refs/heads/main", "repository=acme/deploy"]);
        let token = github("repo:acme/deploy:ref:refs/heads/main");
        assert!(r.admits("github", &token));
        assert!(!r.admits("gitlab", &token), "another issuer");
        assert!(!r.admits("github", &github("repo:acme/deploy:pull_request")), "one condition fails");
        let mut other_aud = token.clone();
        other_aud["aud"] = json!("https://elsewhere.example");
        assert!(!r.admits("github", &other_aud));
        other_aud["aud"] = json!(["https://elsewhere.example", "https://tokensmith.example"]);
        assert!(r.admits("github", &other_aud), "an audience array holding the rule's");
        let mut no_aud = token;
        no_aud.as_object_mut().unwrap().remove("aud");
        assert!(!r.admits("github", &no_aud));
    }

    #[test]
    fn exactly_one_rule_is_chosen_or_nobody() {
        let token = github("repo:acme/deploy:ref:refs/heads/main");
        let a1 = rule("r2", "cli_a", &["repository=acme/deploy"]);
        let a2 = rule("r1", "cli_a", &["sub=repo:acme/*"]);
        let b = rule("r3", "cli_b", &["ref=refs/heads/*"]);
        assert_eq!(choose(&[a1.clone(), a2.clone()], "github", &token), Err(NoRule::Several), "even of one client");
        assert_eq!(choose(&[a1.clone(), b.clone()], "github", &token), Err(NoRule::Several));
        assert_eq!(choose(&[b], "github", &github("x")).map(|r| r.id.clone()), Ok("r3".into()));
        assert_eq!(choose(&[a1], "gitlab", &token), Err(NoRule::NoneMatches));
        assert_eq!(choose(&[], "github", &token), Err(NoRule::NoneMatches));
    }
}
