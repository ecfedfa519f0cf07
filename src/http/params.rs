//! Query parameters, read strictly: each at most once, only those an operation names, numbers
//! within their bounds; anything else is a 400 that says which.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;

/// A request's query parameters.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(seen, _)| seen == k) {
                return Err(ApiError::invalid_request(format!("query parameter {k:?} is given more than once")));
            }
        }
        Ok(Params(pairs))
    }
}

impl Params {
    /// Refuses a parameter the operation does not take (a typo would otherwise filter nothing).
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::invalid_request(format!(
                "unknown query parameter {:?}; this operation takes {}",
                truncate(k),
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// A parameter's value; an empty one counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A whole number between `min` and `max`, if given.
    pub fn number(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid_request(format!("{name} must be a whole number from {min} to {max}"))),
            },
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}
